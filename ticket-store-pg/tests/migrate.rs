//! `PgStore::migrate`: schema migrations, then the functions of `sql/`, each file applied
//! again only when its checksum changes, safely from several processes at once.

mod common;

use sqlx::PgConnection;
use ticket_store_pg::PgStore;

/// Every row of the installer's records: file, checksum, when and by which transaction it
/// was written.
async fn records(conn: &mut PgConnection) -> Vec<(String, Vec<u8>, String, String)> {
    sqlx::query_as(
        "SELECT file, checksum, applied_at::text, xmin::text FROM _ticketrush_functions
          ORDER BY file",
    )
    .fetch_all(conn)
    .await
    .expect("records")
}

/// Every function of the schema: name, oid and the transaction that last wrote it (a
/// `CREATE OR REPLACE` rewrites the row, so the xmin changes even when the text does not).
async fn functions(conn: &mut PgConnection) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT p.proname::text, p.oid::text, p.xmin::text FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = current_schema() ORDER BY 1, 2",
    )
    .fetch_all(conn)
    .await
    .expect("functions")
}

async fn source_of(conn: &mut PgConnection, name: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = current_schema() AND p.proname = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
    .expect("prosrc")
}

/// The `.sql` files under `sql/` and `sql/lib/`.
fn files_on_disk() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
    let mut names = Vec::new();
    for (dir, prefix) in [(root.to_owned(), ""), (format!("{root}/lib"), "lib/")] {
        for entry in std::fs::read_dir(dir).expect("sql/") {
            let name = entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8");
            if name.ends_with(".sql") {
                names.push(format!("{prefix}{name}"));
            }
        }
    }
    names.sort();
    names
}

#[tokio::test]
async fn every_sql_file_is_recorded_once_migrated() {
    let store = common::isolated_store(64).await;
    let mut c = common::side_connection(&store).await;
    let recorded: Vec<String> = records(&mut c).await.into_iter().map(|r| r.0).collect();
    assert_eq!(recorded, files_on_disk());
    // the functions the Rust code calls exist
    for name in [
        "tr_hold_batch",
        "tr_transition",
        "tr_check_in",
        "tr_join_batch",
        "tr_admit",
    ] {
        assert!(source_of(&mut c, name).await.is_some(), "{name}");
    }
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let store = common::isolated_store(64).await;
    let mut c = common::side_connection(&store).await;
    let (before, fns_before) = (records(&mut c).await, functions(&mut c).await);
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert_eq!(records(&mut c).await, before);
    assert_eq!(functions(&mut c).await, fns_before);
}

#[tokio::test]
async fn a_changed_checksum_applies_that_file_again_and_no_other() {
    let store = common::isolated_store(64).await;
    let mut c = common::side_connection(&store).await;
    let original = source_of(&mut c, "tr_stats").await.expect("tr_stats");
    // as if stats.sql had changed since it was applied: another body, another checksum
    sqlx::raw_sql(
        "CREATE OR REPLACE FUNCTION tr_stats(p_session uuid, p_now bigint, p_actor jsonb)
         RETURNS jsonb LANGUAGE sql AS $$ SELECT '{\"broken\":true}'::jsonb $$;
         UPDATE _ticketrush_functions SET checksum = decode(repeat('00', 32), 'hex')
          WHERE file = 'stats.sql';",
    )
    .execute(&mut c)
    .await
    .expect("tamper");
    let before = records(&mut c).await;

    store.migrate().await.expect("migrate");

    assert_eq!(source_of(&mut c, "tr_stats").await, Some(original));
    let after = records(&mut c).await;
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        if old.0 == "stats.sql" {
            assert_ne!(new.1, old.1, "checksum recorded again");
            assert_ne!(new.3, old.3, "record rewritten");
        } else {
            assert_eq!(new, old, "{} was applied again", old.0);
        }
    }
    store.migrate().await.expect("migrate again");
    assert_eq!(records(&mut c).await, after);
}

#[tokio::test]
async fn functions_of_a_file_no_longer_shipped_are_dropped() {
    let store = common::isolated_store(64).await;
    let mut c = common::side_connection(&store).await;
    sqlx::raw_sql(
        "CREATE FUNCTION tr_gone(x integer) RETURNS integer LANGUAGE sql AS $$ SELECT x $$;
         CREATE FUNCTION tr_gone(x text) RETURNS text LANGUAGE sql AS $$ SELECT x $$;
         INSERT INTO _ticketrush_functions (file, checksum, functions)
         VALUES ('gone.sql', decode(repeat('11', 32), 'hex'), '{tr_gone}');",
    )
    .execute(&mut c)
    .await
    .expect("an old build's file");

    store.migrate().await.expect("migrate");

    assert_eq!(source_of(&mut c, "tr_gone").await, None);
    let recorded: Vec<String> = records(&mut c).await.into_iter().map(|r| r.0).collect();
    assert_eq!(recorded, files_on_disk());
}

#[tokio::test]
async fn concurrent_migrations_of_a_fresh_schema_both_succeed() {
    for _ in 0..3 {
        let config = common::isolated_config();
        let first = PgStore::connect(config.clone()).await.expect("connect");
        let mut second_config = config;
        second_config.drop_schema_on_drop = false;
        let second = PgStore::connect(second_config).await.expect("connect");
        let (a, b) = tokio::join!(first.migrate(), second.migrate());
        a.expect("first migrate");
        b.expect("second migrate");
        let mut c = common::side_connection(&first).await;
        let recorded: Vec<String> = records(&mut c).await.into_iter().map(|r| r.0).collect();
        assert_eq!(recorded, files_on_disk());
        let stats: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT tr_stats(gen_random_uuid(), 0, 'null')")
                .fetch_optional(&mut c)
                .await
                .expect("tr_stats runs");
        assert_eq!(stats, Some(serde_json::json!({"nf": "session"})));
        drop(second);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_reapply_changed_files_and_all_succeed() {
    let store = common::isolated_store(64).await;
    let mut c = common::side_connection(&store).await;
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(common::another_server(&store).await);
    }
    for _ in 0..3 {
        // every file "changed": one racer drops and creates all functions again, the others
        // wait for its commit and find nothing to do (without the lock, concurrent
        // CREATE OR REPLACE of one function fails with "tuple concurrently updated")
        sqlx::query("UPDATE _ticketrush_functions SET checksum = decode(repeat('00', 32), 'hex')")
            .execute(&mut c)
            .await
            .expect("tamper");
        let racers: Vec<_> = servers
            .iter()
            .map(|s| {
                let s = s.clone();
                tokio::spawn(async move { s.migrate().await })
            })
            .collect();
        for racer in racers {
            racer.await.expect("task").expect("migrate");
        }
        let stale: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM _ticketrush_functions
              WHERE checksum = decode(repeat('00', 32), 'hex')",
        )
        .fetch_one(&mut c)
        .await
        .expect("count");
        assert_eq!(stale, 0);
        let recorded: Vec<String> = records(&mut c).await.into_iter().map(|r| r.0).collect();
        assert_eq!(recorded, files_on_disk());
    }
}
