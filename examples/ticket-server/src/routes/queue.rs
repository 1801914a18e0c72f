//! The waiting queue of a session.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/sessions/{id}/queue` | join (idempotent: the same ticket again) |
//! | `GET /api/sessions/{id}/queue` | my place in the queue (runs an admission round first) |
//! | `DELETE /api/sessions/{id}/queue` | leave it (idempotent); the next waiting user moves up |
//!
//! Live updates of the same answer: [`crate::routes::queue_events`].

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use ticket_core::model::queue::QueueView;
use ticket_core::{SessionId, UserId};

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::routes::params::{path_id, user_of};
use crate::state::AppState;

/// The routes of the queue.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/sessions/{id}/queue",
        post(join).get(my_place).delete(leave),
    )
}

/// The queue as a buyer sees it.
pub(crate) fn queue_answer(view: &QueueView) -> Value {
    let t = &view.ticket;
    let status = serde_json::to_value(t.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_lowercase))
        .unwrap_or_default();
    json!({
        "ticket_id": t.id.to_string(),
        "status": status,
        "position": view.position,
        "waiting": view.waiting,
        "eta_seconds": view.eta.map(|d| d.as_secs()),
        "admission_expires_at": t.expires_at.map(|e| e.as_millis()),
        "outlook": view.outlook,
    })
}

/// Runs an admission round (so a freed or open slot is taken at once; polls and the SSE
/// stream run rounds while someone watches) and answers the caller's place.
async fn admit_and_view(
    state: &AppState,
    session: SessionId,
    user: &UserId,
) -> Result<Value, ApiError> {
    let admitted = state
        .admission_rounds
        .run(&state.rush.admission, session)
        .await?;
    state.metrics.admitted(admitted);
    let view = state.rush.admission.view(session, user).await?;
    Ok(queue_answer(&view))
}

async fn join(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    let user = user_of(&me)?;
    state.rush.admission.join(session, &user).await?;
    Ok(Json(admit_and_view(&state, session, &user).await?))
}

async fn my_place(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    // Polling runs admission rounds too, so a line moves while anyone watches it, on any
    // server process (a round is one atomic step in the shared store).
    Ok(Json(admit_and_view(&state, session, &user_of(&me)?).await?))
}

async fn leave(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let session: SessionId = path_id(&id)?;
    let user = user_of(&me)?;
    state.rush.admission.leave(session, &user).await?;
    Ok(Json(admit_and_view(&state, session, &user).await?))
}
