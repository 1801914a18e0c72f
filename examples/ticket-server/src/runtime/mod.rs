//! Running the server: configuration, the shared state, background jobs, start-up bootstrap
//! and serving until a shutdown signal.

pub mod background;
pub mod bootstrap;
pub mod config;
pub mod demo;
pub mod serve;
pub mod state;
