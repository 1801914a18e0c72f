//! The admin routes (admins only; anyone else 403, no token 401): the catalogue
//! ([`catalog`], [`policy`]), operator views of sessions ([`sessions`]), the organiser's
//! controls over a sale ([`sales`]), accounts
//! ([`users`]) and the security audit ([`security_audit`]).

use axum::Router;

use crate::runtime::state::AppState;

pub mod catalog;
pub mod policy;
pub mod sales;
pub mod security_audit;
pub mod sessions;
pub mod users;

/// Every admin route.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(catalog::router())
        .merge(policy::router())
        .merge(sessions::router())
        .merge(sales::router())
        .merge(security_audit::router())
        .merge(users::router())
}
