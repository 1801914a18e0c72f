//! The clean-up against the real services (a missing one fails the test, as everywhere): a
//! dropped namespace leaves nothing behind, also when its test panicked, and touches nothing
//! else.

use ticketrush_test_support::{Namespace, unique_name};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Against the real Redis (a missing one fails, as everywhere): a dropped namespace
/// leaves no key, also when the test panicked.
#[test]
fn a_redis_namespace_is_emptied_when_dropped_also_on_panic() {
    let url = ticketrush_test_support::redis_url();
    let name = {
        let url = url.clone();
        std::thread::spawn(move || {
            let ns = Namespace::redis_at(&url, "unit");
            let name = ns.name().to_owned();
            block_on(async {
                let mut conn =
                    ns.connected(ticketrush_test_support::redis::connect(ns.url()).await);
                for i in 0..3 {
                    redis::cmd("SET")
                        .arg(format!("{name}:{i}"))
                        .arg(i)
                        .exec_async(&mut conn)
                        .await
                        .expect("SET");
                }
                assert_eq!(ns.left().await.expect("count"), 3);
            });
            // Panics on purpose, as a failing test would; the namespace is dropped while
            // unwinding.
            panic!("{name}")
        })
        .join()
        .expect_err("the thread panicked")
        .downcast::<String>()
        .expect("the name")
    };
    assert_eq!(
        block_on(ticketrush_test_support::redis::count_prefix(&url, &name)).expect("count"),
        0
    );

    // Explicitly: clear keeps the guard armed, remove reports.
    let ns = Namespace::redis_at(&url, "unit");
    block_on(async {
        let mut conn = ns.connected(ticketrush_test_support::redis::connect(ns.url()).await);
        redis::cmd("SET")
            .arg(format!("{}:x", ns.name()))
            .arg(1)
            .exec_async(&mut conn)
            .await
            .expect("SET");
        assert_eq!(ns.clear().await.expect("clear"), 1);
        assert_eq!(ns.left().await.expect("count"), 0);
        assert_eq!(ns.remove().await.expect("remove"), 0);
    });
}

/// Against the real PostgreSQL: a dropped namespace leaves none of its schemas (the name
/// and `<name>_…`), also when the test panicked, and touches no other schema.
#[test]
fn a_postgres_namespace_drops_its_schemas_when_dropped_also_on_panic() {
    use sqlx::Connection;
    let url = ticketrush_test_support::database_url();
    let bystander = unique_name("unit");
    let name = {
        let (url, bystander) = (url.clone(), bystander.clone());
        std::thread::spawn(move || {
            let ns = Namespace::postgres_at(&url, "unit");
            let name = ns.name().to_owned();
            block_on(async {
                let mut conn =
                    ns.connected(ticketrush_test_support::postgres::connect(ns.url()).await);
                for schema in [name.clone(), format!("{name}_app"), bystander] {
                    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
                        .execute(&mut conn)
                        .await
                        .expect("create schema");
                }
                let mut side = ticketrush_test_support::postgres::connect_in(ns.url(), &name)
                    .await
                    .expect("side connection");
                sqlx::raw_sql("CREATE TABLE t (x int)")
                    .execute(&mut side)
                    .await
                    .expect("a table in the namespace's schema");
                side.close().await.expect("close");
                conn.close().await.expect("close");
                assert_eq!(ns.left().await.expect("count"), 2);
            });
            panic!("{name}")
        })
        .join()
        .expect_err("the thread panicked")
        .downcast::<String>()
        .expect("the name")
    };
    assert_eq!(
        block_on(ticketrush_test_support::postgres::count_schemas(
            &url, &name
        ))
        .expect("count"),
        0
    );
    // Another test's schema is not of this name: it stays (then goes).
    assert_eq!(
        block_on(ticketrush_test_support::postgres::drop_schemas(
            &url, &bystander
        ))
        .expect("drop"),
        1
    );
}
