//! 1 000 payments through the payment sandbox with duplicated (30 %), reordered (30 %),
//! delayed (up to twice the hold TTL) and first-attempt-failing (10 %) webhooks, on every
//! backend, in both capture modes. Prints the counts; fails on any double confirmation,
//! confirmed-but-unpaid, paid-but-neither-confirmed-nor-refunded, unaudited refund, broken
//! conservation, double capture, capture without a confirmed reservation or authorization
//! left open.

use ticket_core::service::CapturePreference;
use ticketrush_e2e::backends::Backend;
use ticketrush_e2e::fault_matrix::{MatrixConfig, run};

/// One matrix at a time: run side by side on two cores they would measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn matrix(backend: Backend, config: MatrixConfig) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let report = run(&backend, &config).await;
    backend.cleanup().await;
    println!("{report}");
    report.assert_clean();
    assert_eq!(report.checkouts, 1_000, "1 000 buyers paid:\n{report}");
    assert!(report.payments >= 1_000, "1 000 payments:\n{report}");
    match config.capture {
        CapturePreference::Automatic => assert!(
            report.refunded_late > 0,
            "late payments were exercised:\n{report}"
        ),
        _ => {
            assert_eq!(
                report.refunded_late, 0,
                "with manual capture a late payment is voided, never charged:\n{report}"
            );
            assert!(
                report.voided > 0,
                "late authorizations were exercised:\n{report}"
            );
        }
    }
    assert!(
        report.duplicates_seen > 0 && report.out_of_order_seen > 0,
        "the faults reached the receiver:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_on_memory() {
    matrix(Backend::memory(), MatrixConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_on_redis() {
    matrix(Backend::redis().await, MatrixConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_on_postgres() {
    // Every transition of one session waits for the stock row and a WAL flush (confirmed
    // tickets are durable), so PostgreSQL serves this single hot session more slowly than
    // the others: a longer TTL keeps the mix of outcomes comparable.
    let config = MatrixConfig {
        hold_ttl: std::time::Duration::from_secs(3),
        ..MatrixConfig::default()
    };
    matrix(Backend::pg().await, config).await;
}

fn manual() -> MatrixConfig {
    MatrixConfig {
        capture: CapturePreference::ManualWhenSupported,
        ..MatrixConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_manual_capture_on_memory() {
    matrix(Backend::memory(), manual()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_manual_capture_on_redis() {
    matrix(Backend::redis().await, manual()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_manual_capture_on_postgres() {
    let config = MatrixConfig {
        hold_ttl: std::time::Duration::from_secs(3),
        ..manual()
    };
    matrix(Backend::pg().await, config).await;
}
