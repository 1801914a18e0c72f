//! The organiser's controls over a session's sale (admins only; anyone else: 403, no token:
//! 401).
//!
//! | route | does |
//! |---|---|
//! | `POST /api/admin/sessions/{id}/pause` | pause the sale: no admissions and no new holds until resumed (holds made before may still be paid; waiting users keep their place) |
//! | `POST /api/admin/sessions/{id}/resume` | resume a paused sale (an admission round runs at once) |
//! | `POST /api/admin/sessions/{id}/close` | close the sale for good (only a cancel may follow) |
//! | `POST /api/admin/sessions/{id}/cancel` | cancel the show: nothing more is sold, and the refund run of every confirmed reservation starts in the background |
//! | `GET /api/admin/sessions/{id}/sale` | the switch and the session's status |
//! | `GET /api/admin/sessions/{id}/refund-run` | the cancelled show's refund run: the last pass's counts, complete or not |
//! | `POST /api/admin/sessions/{id}/capacity` | add or remove units or seats while selling (`Idempotency-Key` required) |
//!
//! The four switch moves take an optional body `{"reason": "…"}` (at most 500 characters)
//! and answer the switch and `changed` (`false`: it already stood there, nothing was
//! written): they are idempotent by nature, so they take no `Idempotency-Key` (like the
//! other admin POSTs). Every move and capacity change is recorded by the
//! library in the session's audit trail (`GET /api/admin/audit?session_id=`), with the
//! admin as the operator, and as a change in the session's feed (the live streams follow
//! it). Illegal moves (a closed sale does not reopen, a cancelled show stays cancelled) are
//! 409 `ILLEGAL_SALE_TRANSITION` and change nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use ticket_core::model::audit::Actor;
use ticket_core::model::idempotency::IdempotencyKey;
use ticket_core::model::inventory::{Grade, SeatId};
use ticket_core::model::sale::{
    CapacityDelta, CapacityOutcome, MAX_REASON_LEN, SaleState, SaleStateOutcome, SaleSwitch,
};
use ticket_core::{Error, SessionId};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminUser, AuthUser, JsonBody};
use crate::http::params::{idempotency_key, path_id};
use crate::http::routes::catalog::dto::{SeatRequest, StatusView, build_seat};
use crate::http::routes::queue::{sale_name, sale_schema};
use crate::runtime::state::AppState;
use crate::services::refund_runs::{self, RunProgress};

/// The routes of the organiser's controls.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/sessions/{id}/pause", post(pause_sale))
        .route("/api/admin/sessions/{id}/resume", post(resume_sale))
        .route("/api/admin/sessions/{id}/close", post(close_sale))
        .route("/api/admin/sessions/{id}/cancel", post(cancel_show))
        .route("/api/admin/sessions/{id}/sale", get(read_sale))
        .route("/api/admin/sessions/{id}/refund-run", get(refund_run))
        .route("/api/admin/sessions/{id}/capacity", post(change_capacity))
}

/// The optional body of a switch move.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (recorded in the audit trail): at most 500 characters (and 500 bytes of UTF-8),
    /// no control characters.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f]*$")]
    #[serde(default)]
    pub reason: Option<String>,
}

/// A sale switch as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SwitchView {
    /// `open`, `paused`, `closed` or `cancelled`.
    #[schema(schema_with = sale_schema)]
    pub state: String,
    /// When it was last moved, epoch ms (`null`: never moved).
    pub since: Option<i64>,
    /// Why it was last moved.
    pub reason: Option<String>,
}

impl From<&SaleSwitch> for SwitchView {
    fn from(s: &SaleSwitch) -> Self {
        Self {
            state: sale_name(s.state),
            since: s.since.map(|t| t.as_millis()),
            reason: s.reason.clone(),
        }
    }
}

/// The answer of a switch move.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SwitchAnswer {
    /// The switch after the call.
    pub switch: SwitchView,
    /// `false` when it already stood there (nothing was written).
    pub changed: bool,
}

/// The answer of `GET /api/admin/sessions/{id}/sale`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SaleAnswer {
    /// The switch.
    pub switch: SwitchView,
    /// The session's status now: the switch over the sales window.
    pub status: StatusView,
}

/// The answer of `GET /api/admin/sessions/{id}/refund-run`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundRunAnswer {
    /// The session's switch state (`cancelled` once the show is; no run before).
    #[schema(schema_with = sale_schema)]
    pub sale: String,
    /// The run as this server process knows it; `null` when no pass ran here (not
    /// cancelled, or another process runs it).
    pub run: Option<RunProgress>,
}

/// The reason of a move: the body's, or a default naming the move (no body, `null`, `{}`).
/// 400 for a body that is not `{"reason": "…"}`; over 500 characters: 400.
/// Most seats one capacity request may add or remove (the library takes up to 10 000; the
/// body limit allows about this many).
const MAX_SEATS_PER_REQUEST: usize = 200;

fn reason_of(body: &Bytes, default: &str) -> Result<String, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(default.to_owned());
    }
    let invalid = |e: serde_json::Error| ApiError::validation(format!("invalid body: {e}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    if value.is_null() {
        // `null` is no body, as the schema says.
        return Ok(default.to_owned());
    }
    if !value.is_object() {
        return Err(ApiError::validation("the body must be a JSON object"));
    }
    let parsed: ReasonBody = serde_json::from_value(value).map_err(invalid)?;
    match parsed.reason {
        None => Ok(default.to_owned()),
        Some(r) if r.chars().count() > MAX_REASON_LEN => Err(ApiError::validation(format!(
            "reason must be at most {MAX_REASON_LEN} characters"
        ))),
        Some(r) => Ok(r),
    }
}

/// The admin as the library's actor.
fn operator(admin: &AuthUser) -> Actor {
    Actor::Operator(admin.id.to_string())
}

/// One switch move (idempotent by nature: a repeat answers `changed: false`).
async fn move_switch(
    state: &AppState,
    admin: &AuthUser,
    raw_id: &str,
    body: &Bytes,
    to: SaleState,
) -> Result<Json<SwitchAnswer>, ApiError> {
    let session: SessionId = path_id(raw_id)?;
    let verb = match to {
        SaleState::Open => "resumed",
        SaleState::Paused => "paused",
        SaleState::Closed => "closed",
        SaleState::Cancelled => "cancelled",
    };
    let reason = reason_of(body, &format!("{verb} by an admin"))?;
    let actor = operator(admin);
    let sales = &state.rush.sales;
    let out: SaleStateOutcome = match to {
        SaleState::Open => sales.resume(session, actor, &reason).await?,
        SaleState::Paused => sales.pause(session, actor, &reason).await?,
        SaleState::Closed => sales.close(session, actor, &reason).await?,
        SaleState::Cancelled => sales.cancel_show(session, actor, &reason).await?,
    };
    let answer = SwitchAnswer {
        switch: SwitchView::from(&out.switch),
        changed: out.changed,
    };
    // This process's live copies take the switch at once (the feed's change agrees).
    state.live.note_sale_switch(session, out.switch);
    tracing::info!(admin = %admin.id, %session, to = to.as_str(), changed = answer.changed, "sale switch moved");
    if to == SaleState::Cancelled {
        // Also on a repeat: a run cut short goes on (a complete one changes nothing).
        refund_runs::start(state, session);
    }
    Ok(Json(answer))
}

/// Pauses the sale.
#[utoipa::path(
    post,
    path = "/api/admin/sessions/{id}/pause",
    operation_id = "pause_sale",
    tag = "admin",
    summary = "Pause a session's sale (admin)",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional: why", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The switch now, and whether this call moved it", body = SwitchAnswer),
        (status = 400, description = "A malformed id or body, an unknown field, or a reason over 500 characters: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "The sale is closed or the show cancelled (`ILLEGAL_SALE_TRANSITION`); nothing changes", body = ErrorBody),
        (status = 422, description = "A reason the library refuses (over 500 bytes, control characters): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn pause_sale(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SwitchAnswer>, ApiError> {
    move_switch(&state, &admin, &id, &body, SaleState::Paused).await
}

/// Resumes a paused sale.
#[utoipa::path(
    post,
    path = "/api/admin/sessions/{id}/resume",
    operation_id = "resume_sale",
    tag = "admin",
    summary = "Resume a paused sale (admin)",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional: why", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The switch now, and whether this call moved it", body = SwitchAnswer),
        (status = 400, description = "A malformed id or body, an unknown field, or a reason over 500 characters: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "The sale is closed or the show cancelled (`ILLEGAL_SALE_TRANSITION`); nothing changes", body = ErrorBody),
        (status = 422, description = "A reason the library refuses (over 500 bytes, control characters): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn resume_sale(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SwitchAnswer>, ApiError> {
    move_switch(&state, &admin, &id, &body, SaleState::Open).await
}

/// Closes the sale for good.
#[utoipa::path(
    post,
    path = "/api/admin/sessions/{id}/close",
    operation_id = "close_sale",
    tag = "admin",
    summary = "Close a session's sale early (admin)",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional: why", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The switch now, and whether this call moved it", body = SwitchAnswer),
        (status = 400, description = "A malformed id or body, an unknown field, or a reason over 500 characters: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "The show was cancelled (`ILLEGAL_SALE_TRANSITION`); nothing changes", body = ErrorBody),
        (status = 422, description = "A reason the library refuses (over 500 bytes, control characters): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn close_sale(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SwitchAnswer>, ApiError> {
    move_switch(&state, &admin, &id, &body, SaleState::Closed).await
}

/// Cancels the show and starts refunding every confirmed reservation in full.
#[utoipa::path(
    post,
    path = "/api/admin/sessions/{id}/cancel",
    operation_id = "cancel_show",
    tag = "admin",
    summary = "Cancel a session's show and refund everyone (admin)",
    description = "Nothing more is sold; the refund run (every confirmed reservation refunded in full, exactly once; HELD holds released) starts in the background and is followed with `GET /api/admin/sessions/{id}/refund-run`. A repeat starts the run again if it is not running (harmless: each pass is idempotent).",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
    ),
    request_body(content = Option<ReasonBody>, description = "Optional: why", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The switch now (`cancelled`), and whether this call moved it", body = SwitchAnswer),
        (status = 400, description = "A malformed id or body, an unknown field, or a reason over 500 characters: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 422, description = "A reason the library refuses (over 500 bytes, control characters): `VALIDATION`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_show(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SwitchAnswer>, ApiError> {
    move_switch(&state, &admin, &id, &body, SaleState::Cancelled).await
}

/// The switch and the session's status.
#[utoipa::path(
    get,
    path = "/api/admin/sessions/{id}/sale",
    operation_id = "read_sale",
    tag = "admin",
    summary = "A session's sale switch and status (admin)",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The switch as stored and the status it gives", body = SaleAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn read_sale(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<SaleAnswer>, ApiError> {
    let session: SessionId = path_id(&id)?;
    let s = state.rush.stores().inventory.session(session).await?;
    let switch = state.rush.sales.switch(session).await?;
    Ok(Json(SaleAnswer {
        status: switch.status(&s, state.clock.now()).into(),
        switch: SwitchView::from(&switch),
    }))
}

/// The cancelled show's refund run.
#[utoipa::path(
    get,
    path = "/api/admin/sessions/{id}/refund-run",
    operation_id = "read_refund_run",
    tag = "admin",
    summary = "A cancelled show's refund run (admin)",
    params(("id" = String, Path, format = "uuid", description = "The session's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The switch and the run's progress as this process knows it (the last pass's counts)", body = RefundRunAnswer),
        (status = 400, description = "A malformed id: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn refund_run(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<RefundRunAnswer>, ApiError> {
    let session: SessionId = path_id(&id)?;
    let switch = state.rush.sales.switch(session).await?;
    Ok(Json(RefundRunAnswer {
        sale: sale_name(switch.state),
        run: state.refund_runs.progress(session),
    }))
}

/// A capacity change: exactly one of four kinds, told by `kind` (its schema, closed, is
/// written by hand below: the derive leaves the tagged variants open).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CapacityBody {
    /// More units of a general-admission grade (waiting users are admitted into them).
    AddUnits {
        /// The grade.
        grade: String,
        /// How many, 1 to 10 000 000.
        units: u32,
    },
    /// Fewer units of a general-admission grade: only units on sale can go (else 409
    /// `CAPACITY_IN_USE`).
    RemoveUnits {
        /// The grade.
        grade: String,
        /// How many, 1 to 10 000 000.
        units: u32,
    },
    /// New seats in a seated session (their grade must be one the session sells).
    AddSeats {
        /// The seats, 1 to 10 000, each id once.
        seats: Vec<SeatRequest>,
    },
    /// Free seats withdrawn from a seated session (a held or sold one: 409).
    RemoveSeats {
        /// The seats' ids, 1 to 10 000, each once.
        seats: Vec<String>,
    },
}

impl utoipa::PartialSchema for CapacityBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, OneOfBuilder, Ref};
        use utoipa::openapi::{ObjectBuilder, Type};
        const ID: &str = r"^[A-Za-z0-9._-]{1,32}$";
        let kind = |k: &str| crate::http::openapi::text_enum([k], "What the change does");
        let units_change = |k: &str, description: &str| {
            ObjectBuilder::new()
                .property("kind", kind(k))
                .required("kind")
                .property(
                    "grade",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(ID))
                        .description(Some("The grade: 1 to 32 letters, digits, `-`, `_` or `.`")),
                )
                .required("grade")
                .property(
                    "units",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(10_000_000))
                        .description(Some("How many units")),
                )
                .required("units")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(description))
                .build()
        };
        let seats_change = |k: &str,
                            items: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                            description: &str| {
            ObjectBuilder::new()
                .property("kind", kind(k))
                .required("kind")
                .property(
                    "seats",
                    ArrayBuilder::new()
                        .items(items)
                        .min_items(Some(1))
                        // What fits the default 64 KiB body limit (a seat object is up
                        // to ~130 bytes); larger changes go in several requests.
                        .max_items(Some(MAX_SEATS_PER_REQUEST)),
                )
                .required("seats")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
                .description(Some(description))
                .build()
        };
        OneOfBuilder::new()
            .item(units_change(
                "add_units",
                "More units of a general-admission grade (waiting users are admitted into them)",
            ))
            .item(units_change(
                "remove_units",
                "Fewer units of a general-admission grade: only units on sale can go (else 409 `CAPACITY_IN_USE`)",
            ))
            .item(seats_change(
                "add_seats",
                Ref::from_schema_name("SeatRequest").into(),
                "New seats (each id once) in a seated session, of grades it sells",
            ))
            .item(seats_change(
                "remove_seats",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(ID))
                    .description(Some("A seat id"))
                    .build()
                    .into(),
                "Free seats (each id once) withdrawn from a seated session (a held or sold one: 409)",
            ))
            .description(Some("Exactly one capacity change, told by `kind`"))
            .into()
    }
}

impl utoipa::ToSchema for CapacityBody {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("SeatRequest".to_owned(), SeatRequest::schema()));
        <SeatRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

/// The library's delta from a body (400 for a malformed grade or seat id; 422 for what
/// the library refuses).
fn delta_of(body: CapacityBody) -> Result<CapacityDelta, ApiError> {
    let seats = match &body {
        CapacityBody::AddSeats { seats } => seats.len(),
        CapacityBody::RemoveSeats { seats } => seats.len(),
        _ => 0,
    };
    if seats > MAX_SEATS_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "at most {MAX_SEATS_PER_REQUEST} seats per request, got {seats}"
        )));
    }
    let grade = |g: String| Grade::new(g).map_err(|e| ApiError::validation(e.to_string()));
    Ok(match body {
        CapacityBody::AddUnits { grade: g, units } => CapacityDelta::AddUnits {
            grade: grade(g)?,
            units,
        },
        CapacityBody::RemoveUnits { grade: g, units } => CapacityDelta::RemoveUnits {
            grade: grade(g)?,
            units,
        },
        CapacityBody::AddSeats { seats } => CapacityDelta::AddSeats {
            seats: seats
                .iter()
                .map(build_seat)
                .collect::<Result<Vec<_>, ApiError>>()?,
        },
        CapacityBody::RemoveSeats { seats } => CapacityDelta::RemoveSeats {
            seats: seats
                .into_iter()
                .map(|s| SeatId::new(s).map_err(|e| ApiError::validation(e.to_string())))
                .collect::<Result<Vec<_>, ApiError>>()?,
        },
    })
}

/// One grade's counts after a capacity change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GradeCountsView {
    /// The grade.
    pub grade: String,
    /// Units (or seats) in the plan.
    pub capacity: u32,
    /// On sale.
    pub available: u32,
    /// In live holds.
    pub held: u32,
    /// Sold.
    pub sold: u32,
}

/// What a capacity change did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacityAnswer {
    /// Units or seats in the session's plan now.
    pub capacity: u64,
    /// The counts of the grades the change touched, read in the same atomic step.
    pub grades: Vec<GradeCountsView>,
}

impl From<&CapacityOutcome> for CapacityAnswer {
    fn from(o: &CapacityOutcome) -> Self {
        let capacity = match &o.plan {
            ticket_core::model::inventory::InventoryPlan::General { grades } => {
                grades.iter().map(|g| u64::from(g.capacity)).sum()
            }
            ticket_core::model::inventory::InventoryPlan::Seated { seats } => seats.len() as u64,
        };
        Self {
            capacity,
            grades: o
                .grades
                .iter()
                .map(|g| GradeCountsView {
                    grade: g.grade.as_str().to_owned(),
                    capacity: g.capacity,
                    available: g.available,
                    held: g.held,
                    sold: g.sold,
                })
                .collect(),
        }
    }
}

/// Changes what the session sells, once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/admin/sessions/{id}/capacity",
    operation_id = "change_capacity",
    tag = "admin",
    summary = "Add or remove units or seats while selling (admin)",
    params(
        ("id" = String, Path, format = "uuid", description = "The session's id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$", description = "Required; 1 to 255 printable ASCII characters. A repeat with the same key and body answers the first outcome and changes nothing more"),
    ),
    request_body = CapacityBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plan's capacity and the touched grades' counts after the change", body = CapacityAnswer),
        (status = 400, description = "Malformed JSON, an unknown `kind` or field, a malformed id, grade or seat id, or a missing or malformed `Idempotency-Key`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Not an admin: `FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "No such session: `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Units held or sold cannot go (`CAPACITY_IN_USE`), seats held or sold (`SEATS_UNAVAILABLE`), seats that exist already (`SEATS_EXIST`), the show was cancelled (`SESSION_CANCELLED`), or a request with this key is still running (`IN_FLIGHT`); nothing changes", body = ErrorBody),
        (status = 422, description = "A change the library refuses (zero or too many units, a grade or seat the session does not have (`UNKNOWN_ITEM`), units in a seated session or seats in a general one, a seat listed twice, a bad price): `VALIDATION`; this key was used with another body: `IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub(crate) async fn change_capacity(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Json<CapacityAnswer>, ApiError> {
    let session: SessionId = path_id(&id)?;
    let key = idempotency_key(&headers)?;
    if !body.is_object() {
        return Err(ApiError::validation("the body must be a JSON object"));
    }
    let parsed: CapacityBody = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::validation(format!("invalid body: {e}")))?;
    let delta = delta_of(parsed)?;
    let reason = format!("capacity {} by an admin", delta.describe());
    let idem = IdempotencyKey::new(&admin.id.to_string(), "capacity", &key)
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let payload = serde_json::json!({ "session": session.to_string(), "body": body });
    let actor = operator(&admin);
    let answer: CapacityAnswer = state
        .rush
        .idempotency
        .run(&idem, &payload, || async {
            let out = state
                .rush
                .sales
                .change_capacity(session, delta, actor, &reason)
                .await?;
            Ok::<_, Error>(CapacityAnswer::from(&out))
        })
        .await?;
    state.live.stock_moved(session);
    tracing::info!(admin = %admin.id, %session, capacity = answer.capacity, "capacity changed");
    Ok(Json(answer))
}
