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

/// Registers this server's webhook route with the in-process sandbox and trusts the key it
/// hands back. `base_url` is where the server is reachable (`http://127.0.0.1:8080`). With a
/// shared sandbox (`--payment-sandbox-url`) nothing is registered here: the deployment's
/// endpoint is registered once at the sandbox, and its key given as `--webhook-secret` is
/// trusted (without one, webhooks are refused and payments settle by polling).
pub fn connect_sandbox_webhooks(state: &AppState, base_url: &str) -> Result<(), ApiError> {
    let internal =
        |e: String| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e);
    let Some(sandbox) = &state.sandbox else {
        let Some(secret) = &state.config.webhook_secret else {
            tracing::warn!(
                "no --webhook-secret for the shared sandbox: webhooks are refused, \
                 payments settle by polling"
            );
            return Ok(());
        };
        let key = secret
            .trim()
            .parse()
            .map_err(|e: payment_sandbox::signature::KeyError| {
                internal(format!("--webhook-secret: {e}"))
            })?;
        return state
            .webhook_verifier
            .set(payment_sandbox::signature::Verifier::new([key]))
            .map_err(|_| internal("webhooks are already connected".into()));
    };
    let endpoint = sandbox
        .register_endpoint(payment_sandbox::delivery::EndpointConfig {
            url: format!("{}/api/payments/webhook", base_url.trim_end_matches('/')),
            ..payment_sandbox::delivery::EndpointConfig::default()
        })
        .map_err(|e| internal(e.to_string()))?;
    let key = endpoint
        .verification_key
        .parse()
        .map_err(|e: payment_sandbox::signature::KeyError| internal(e.to_string()))?;
    state
        .webhook_verifier
        .set(payment_sandbox::signature::Verifier::new([key]))
        .map_err(|_| internal("webhooks are already connected".into()))?;
    Ok(())
}
