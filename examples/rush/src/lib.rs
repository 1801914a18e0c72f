//! # rush: a ticket rush simulator
//!
//! Simulates an on-sale against the ticketrush library, in-process, on any backend: `N`
//! users join one session's queue in a burst, wait, are admitted FIFO, hold `1..=max` units
//! and then pay (the payment sandbox's succeeding card), are declined, walk away (the hold
//! expires) or pay and later cancel with a refund, in proportions given by a [`Mix`].
//! Users are state machines advanced by a few worker tasks ([`users`]), in rounds driven by
//! the host's admission timer ([`driver`]), on the system clock or a simulated one.
//!
//! The [`Report`] gives throughput per phase and per operation with latency percentiles
//! (HDR histograms), and correctness counters read back from the store and the sandbox,
//! never from the simulator's bookkeeping ([`checks`]): oversold units, FIFO inversions,
//! double charges, payments kept without a confirmed hold, and why any unit was not sold.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rush::RushError> {
//! let mut config = rush::Config::new(5_000, 500, rush::StoreKind::Memory);
//! config.sim_clock = true;
//! let report = rush::run(&config).await?;
//! assert_eq!(report.checks.violations(), 0);
//! println!("{}", report.to_text());
//! # Ok(()) }
//! ```
//!
//! Beside the simulator, [`locks`] compares the ways to keep one hot stock counter right
//! (no lock, optimistic, pessimistic, a Redis lock with a fencing token, one Redis script,
//! ticketrush on each store) on one workload: the `lock-strategies` binary and
//! `docs/LOCKS.md`.
//!
//! Guarantees of the simulator itself: a run on Redis or PostgreSQL works in its own key
//! prefix or schema and removes it at the end (also when the run fails after connecting),
//! unless [`Config::keep`] is set; an unreachable server is an error that says how to
//! start it, never a silent skip; the same seed gives the same crowd (behaviours and
//! quantities), though not the same interleaving of concurrent calls.

pub mod backend;
pub mod checks;
pub mod config;
pub mod driver;
pub mod error;
pub mod http;
pub mod locks;
pub mod metrics;
pub mod plot;
pub mod progress;
pub mod report;
pub mod seller;
pub mod users;

pub use checks::{Checks, Findings, Units};
pub use config::{Args, Config, Mix, Remote, StoreKind};
pub use driver::run;
pub use error::RushError;
pub use report::Report;
