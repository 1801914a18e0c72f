//! Four app servers (each its own `RedisStore`: own connection, own coalescing batches, own
//! caches) sell one session together; see
//! `ticket_core::testkit::app_servers_sell_one_session_without_overselling`.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_servers_sell_one_session_without_overselling() {
    let first = common::isolated_store(64).await;
    let mut others = Vec::new();
    for _ in 1..4 {
        others.push(common::another_server(&first).await.stores());
    }
    ticket_core::testkit::app_servers_sell_one_session_without_overselling(first.stores(), others)
        .await;
}
