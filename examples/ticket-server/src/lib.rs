//! The ticketrush example server: the whole ticket rush over HTTP on any backend (REST,
//! Server-Sent Events, a demo page, `/openapi.json`, `/metrics`). This crate is the
//! application around the library: accounts, a wallet, ticket codes and the HTTP API live
//! here; the ticket rush itself lives in `ticket-core`. The README's "The example server"
//! section lists every route.
//!
//! Everything correctness needs is stored in the chosen backend (memory, Redis or
//! PostgreSQL), never only in one process's memory, so several server processes can share
//! one Redis or PostgreSQL.
//!
//! # Where things are
//!
//! | folder | what it holds |
//! |---|---|
//! | [`http`] | **ticketrush behind axum**: the router, one module per resource under [`http::routes`], the extractors ([`http::extract`]), the error → HTTP mapping ([`http::error`]), the middleware ([`http::middleware`]: rate limits, client IP, CORS, cache headers, metrics) and the OpenAPI document ([`http::openapi`]). Handlers parse, call a service or a store, and map the result. |
//! | [`services`] | the app's rules that are neither HTTP nor storage: sign-up, login and refresh ([`services::login`]), sign-in throttling, password hashing, the catalogue listing, cancellation with refund, ticket codes and the gate's scan, wallet top-ups and wallet payments, where payment events go, session figures, blocking |
//! | [`stores`] | the app's own stores (accounts, wallet and top-ups, throttle, security audit), each with a memory, a Redis (`lua/*.lua`) and a PostgreSQL implementation; the PostgreSQL tables come from one set of sqlx migrations (`migrations/`) |
//! | [`live`] | this process's live view of the sales for the event streams: one change-feed follower per session, fanned out in memory to every watcher (queue positions from an in-memory copy of the line) and to every user's own stream |
//! | [`runtime`] | configuration (clap), the shared state, background jobs, start-up bootstrap (admin account, demo event, webhooks) and serving with graceful shutdown |
//!
//! Someone who wants only "the library behind axum" reads [`http`]: it needs
//! [`runtime::state::AppState`] (the library's services plus the app's stores) and nothing
//! else from this crate.

pub mod http;
pub mod live;
pub mod runtime;
pub mod services;
pub mod stores;
