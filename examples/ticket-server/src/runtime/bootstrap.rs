//! Start-up administration: the admin account from the configuration.

use axum::http::StatusCode;

use crate::http::error::ApiError;
use crate::runtime::state::AppState;
use crate::services::auth::{hash_password, verify_password};
use crate::stores::accounts::{AccountError, Role};

/// Makes sure the admin account named by `--admin-email` / `--admin-password` exists;
/// nothing when they are not set. Safe when several processes start at once.
///
/// * No account has the email: it is created as an admin.
/// * The account is an admin: if `--admin-password` no longer matches its password, the
///   new one takes effect (rehashed; its tokens are revoked, as any password change does).
///   A matching password changes nothing, so a restart does not log the admin out.
/// * The account is not an admin (someone signed up with that email): the server refuses
///   to start with a message saying what to do. It is never promoted.
pub async fn ensure_admin(state: &AppState) -> Result<(), ApiError> {
    let (Some(email), Some(password)) = (&state.config.admin_email, &state.config.admin_password)
    else {
        return Ok(());
    };
    let refuse = |e: AccountError, id: Option<String>| {
        let id = id.map(|id| format!(" (account {id})")).unwrap_or_default();
        ApiError::new(
            StatusCode::CONFLICT,
            "NOT_AN_ADMIN",
            format!("--admin-email {email}{id}: {e}"),
        )
    };
    let unavailable = |e: AccountError| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            format!("admin account: {e}"),
        )
    };
    match state.accounts.user_by_email(email).await {
        Ok(user) if user.role != Role::Admin => {
            let email = user.email.clone();
            return Err(refuse(
                AccountError::NotAnAdmin { email },
                Some(user.id.to_string()),
            ));
        }
        Ok(user) => {
            let (password, stored) = (password.clone(), user.password_hash.clone());
            let same =
                blocking(move || Ok(verify_password(&password, &stored).unwrap_or(false))).await?;
            if same {
                tracing::info!(email = %email, "admin account ready");
                return Ok(());
            }
        }
        Err(AccountError::NotFound) => {}
        Err(e) => return Err(unavailable(e)),
    }
    let password = password.clone();
    let hash = blocking(move || hash_password(&password).map_err(ApiError::from)).await?;
    match state
        .accounts
        .ensure_admin(email, &hash, state.clock.now())
        .await
    {
        Ok(user) => {
            tracing::info!(email = %email, user = %user.id, role = Role::Admin.as_str(), "admin account ready");
            Ok(())
        }
        Err(e @ AccountError::NotAnAdmin { .. }) => Err(refuse(e, None)),
        Err(e) => Err(unavailable(e)),
    }
}

/// Runs CPU-heavy password work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?
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
