//! Queue positions with 1 000 000 users waiting: reads at the head, middle and tail of the
//! line, and join / leave latency, with the block counters of `queue_line_counts` (after,
//! migration `0004_line_counts`) and with the `count(*)` of the waiting ahead (before).
//!
//! ```text
//! cargo bench -p ticket-store-pg --bench positions
//! ```
//! One fresh schema `tr_test_bench_<uuid>` (dropped at the end), one general-admission
//! session, then `BENCH_WAITING` (default 1 000 000) WAITING tickets with sequence numbers
//! `0..n` written by one `INSERT … SELECT generate_series` (the counters are built by the
//! same statement-level trigger that maintains them for joins), `queues` set to match,
//! `VACUUM ANALYZE`, `CHECKPOINT`. Then, with the counters (after):
//! * a position read, `SELECT tr_line_position(session, seq)`, at the head (seq 0), the middle
//!   (n/2) and the tail (n-1), `BENCH_READS` times each (default 200);
//! * `WaitingQueue::view` of the users at those places (the whole call: settle, counts,
//!   position);
//! * `BENCH_OPS` (default 200) joins of new users, then leaves of users spread over the line.
//!
//! Then before: the triggers disabled and `tr_line_position` replaced by the `count(*)` the
//! view used before (`count(*) FROM queue_tickets WHERE … state = 'WAITING' AND seq <= s`),
//! and the same measures (the reads `BENCH_READS_BEFORE` times, default 10). Figures are
//! medians and 90th percentiles in microseconds, sequential calls from one task.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use ticket_core::ids::{SessionId, UserId};
use ticket_core::model::queue::JoinRequest;
use ticket_core::store::WaitingQueue;
use ticket_core::testkit::{Fixture, T0};
use ticket_store_pg::{PgConfig, PgStore};
use ticketrush_test_support::{Service, unique_name};

/// The counters' position function, as `migrate` installs it.
const AFTER: &str = include_str!("../sql/lib/line.sql");

/// The position as the view counted it before the counters.
const BEFORE: &str = "CREATE OR REPLACE FUNCTION tr_line_position(p_session uuid, p_seq bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    pos bigint;
BEGIN
    SELECT count(*) INTO pos FROM queue_tickets
     WHERE session_id = p_session AND state = 'WAITING' AND seq <= p_seq;
    RETURN pos;
END $$;";

const TRIGGERS: &str = "queue_line_counts_ins, queue_line_counts_upd, queue_line_counts_del";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| {
        v.parse().unwrap_or_else(|_| panic!("{name}={v}"))
    })
}

/// Median and 90th percentile, in microseconds.
fn summary(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    format!("{:.0} | {:.0}", at(0.5), at(0.9))
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.expect(sql);
}

struct Bench {
    store: PgStore,
    session: SessionId,
    n: u64,
    ops: u64,
}

impl Bench {
    fn bulk_user(i: u64) -> UserId {
        UserId::new(format!("bulk-{i}")).expect("user")
    }

    /// Position reads and views at the head, middle and tail.
    async fn reads(&self, label: &str, reads: u64) {
        for (place, seq) in [("head", 0), ("middle", self.n / 2), ("tail", self.n - 1)] {
            let mut times = Vec::new();
            let mut pos = 0i64;
            for _ in 0..reads {
                let t = Instant::now();
                pos = sqlx::query_scalar("SELECT tr_line_position($1, $2)")
                    .bind(self.session.as_uuid())
                    .bind(i64::try_from(seq).expect("seq"))
                    .fetch_one(self.store.pool())
                    .await
                    .expect("position");
                times.push(t.elapsed());
            }
            println!(
                "| {label} | position read, {place} (position {pos}) | {reads} | {} |",
                summary(times)
            );
            let mut times = Vec::new();
            let u = Self::bulk_user(seq);
            for _ in 0..reads {
                let t = Instant::now();
                let v = self.store.view(self.session, &u, T0).await.expect("view");
                times.push(t.elapsed());
                assert_eq!(v.position, Some(u64::try_from(pos).expect("pos")));
            }
            println!("| {label} | view, {place} | {reads} | {} |", summary(times));
        }
    }

    /// Joins of new users, then leaves spread over the line (and of the new users).
    async fn writes(&self, label: &str, first: u64) {
        let mut joins = Vec::new();
        for i in first..first + self.ops {
            let user = UserId::new(format!("new-{i}")).expect("user");
            let t = Instant::now();
            self.store
                .join(JoinRequest {
                    session: self.session,
                    user,
                    now: T0,
                    pre_queue: false,
                    max_waiting: None,
                })
                .await
                .expect("join");
            joins.push(t.elapsed());
        }
        println!(
            "| {label} | join (tail of {} waiting) | {} | {} |",
            self.n,
            self.ops,
            summary(joins)
        );
        let mut leaves = Vec::new();
        let stride = self.n / self.ops;
        for k in 0..self.ops {
            // spread over the line, never the head/middle/tail users read above
            let seq = k * stride + 1 + first / self.ops;
            let t = Instant::now();
            self.store
                .leave(self.session, &Self::bulk_user(seq), T0)
                .await
                .expect("leave");
            leaves.push(t.elapsed());
        }
        println!(
            "| {label} | leave (spread over the line) | {} | {} |",
            self.ops,
            summary(leaves)
        );
    }
}

fn main() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let n = env_or("BENCH_WAITING", 1_000_000);
    let reads = env_or("BENCH_READS", 200);
    let reads_before = env_or("BENCH_READS_BEFORE", 10);
    let ops = env_or("BENCH_OPS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut config = PgConfig::new(&url).with_schema(unique_name("bench"));
        config.drop_schema_on_drop = true;
        let store = Service::Postgres.connected(&url, PgStore::connect(config).await);
        store.migrate().await.expect("migrate");
        let f = Fixture::general(store.stores(), 1_000, Duration::ZERO).await;
        let pool = store.pool().clone();
        let fill = Instant::now();
        sqlx::query(
            "INSERT INTO queue_tickets (id, session_id, user_id, state, pre_queue, seq, joined_at)
             SELECT gen_random_uuid(), $1, 'bulk-' || g, 'WAITING', false, g, 0
               FROM generate_series(0, $2 - 1) AS g",
        )
        .bind(f.session.as_uuid())
        .bind(i64::try_from(n).expect("n"))
        .execute(&pool)
        .await
        .expect("fill");
        sqlx::query("UPDATE queues SET next_seq = $2, waiting = $2 WHERE session_id = $1")
            .bind(f.session.as_uuid())
            .bind(i64::try_from(n).expect("n"))
            .execute(&pool)
            .await
            .expect("queues");
        let filled = fill.elapsed();
        exec(&pool, "VACUUM ANALYZE queue_tickets").await;
        exec(&pool, "VACUUM ANALYZE queue_line_counts").await;
        exec(&pool, "VACUUM ANALYZE queues").await;
        exec(&pool, "CHECKPOINT").await;
        let counters: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_line_counts")
            .fetch_one(&pool)
            .await
            .expect("counters");
        println!(
            "# {n} waiting filled in {:.1} s ({counters} counter rows); {} cores",
            filled.as_secs_f64(),
            std::thread::available_parallelism().map_or(0, |c| c.get())
        );
        println!("| version | measure | calls | median µs | p90 µs |");
        println!("|---|---|---|---|---|");
        let b = Bench {
            store,
            session: f.session,
            n,
            ops,
        };
        b.reads("after (counters)", reads).await;
        b.writes("after (counters)", 0).await;
        for t in TRIGGERS.split(", ") {
            exec(
                &pool,
                &format!("ALTER TABLE queue_tickets DISABLE TRIGGER {t}"),
            )
            .await;
        }
        exec(&pool, BEFORE).await;
        // the positions are read against the line as it is now (the leaves above)
        b.reads("before (count(*))", reads_before).await;
        b.writes("before (count(*))", ops).await;
        exec(&pool, AFTER).await;
    });
}
