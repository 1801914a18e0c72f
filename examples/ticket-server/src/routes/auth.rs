//! (being written)

use axum::Router;

use crate::state::AppState;

/// The routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
}
