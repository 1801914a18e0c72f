//! Start-up administration: the admin account from the configuration.

use crate::accounts::Role;
use crate::auth::hash_password;
use crate::error::ApiError;
use crate::state::AppState;

/// Creates (or promotes) the admin account named by `--admin-email` / `--admin-password`;
/// nothing when they are not set. Safe when several processes start at once.
pub async fn ensure_admin(state: &AppState) -> Result<(), ApiError> {
    let (Some(email), Some(password)) = (&state.config.admin_email, &state.config.admin_password)
    else {
        return Ok(());
    };
    let password = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                e.to_string(),
            )
        })??;
    state
        .accounts
        .ensure_admin(email, &hash, state.clock.now())
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                e.to_string(),
            )
        })?;
    tracing::info!(email = %email, role = Role::Admin.as_str(), "admin account ready");
    Ok(())
}
