//! Tickets over HTTP: a buyer's tickets with their signed codes, and the gate's scan.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/me/tickets?limit=&cursor=` | a page of my tickets: one per unit or seat of each of up to `limit` (1..=500, default 50) CONFIRMED reservations (newest reservation first), with `next_cursor`; each with its signed `code`, `status` (`valid` or `used`) and `used_at` |
//! | `GET /api/me/tickets/{id}/qr.svg` | one of my tickets as a QR code (`image/svg+xml`, `Cache-Control: no-store`) holding exactly its signed `code`; `{id}` is the `ticket_id` the list gives (`<reservation id>-<n>`, n from 1); no such ticket, another user's or a number beyond the reservation's units: 404 alike; a reservation not CONFIRMED: 409 `TICKET_NOT_VALID` |
//! | `POST /api/tickets/verify` | the gate (a `GATE` or `ADMIN` account): `{"code": "…", "session_id": "…"}` → 200 on the ticket's first scan at its own session, marking it used; 409 `TICKET_ALREADY_USED` on any later scan (the message says when); 409 `WRONG_SESSION` for a ticket of another session; 422 `INVALID_TICKET` for a forged, tampered or malformed code; 409 `TICKET_NOT_VALID` when its reservation is not CONFIRMED (cancelled, refunded) or does not match |
//!
//! A refused scan marks nothing; the scan itself is [`crate::services::tickets::scan`] (the
//! library's atomic check-in). The routes are described for `GET /openapi.json` by their
//! `#[utoipa::path]` (tag `tickets`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use ticket_core::model::page::HoldCursor;
use ticket_core::{Error, Refusal, SessionId, Timestamp};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AuthUser, GateUser, JsonBody};
use crate::http::middleware::cache::no_store;
use crate::http::paging::PageParams;
use crate::http::params::{path_id, user_of};
use crate::runtime::state::AppState;
use crate::services::tickets::{
    self, Admitted, CodeError, ScanError, TicketCodeError, TicketError, TicketId,
};

/// The routes of tickets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me/tickets", get(my_tickets))
        .route("/api/me/tickets/{id}/qr.svg", get(my_ticket_qr))
        .route("/api/tickets/verify", post(verify))
}

impl From<TicketError> for ApiError {
    fn from(e: TicketError) -> Self {
        match e {
            TicketError::InvalidRequest(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION", m)
            }
        }
    }
}

impl From<CodeError> for ApiError {
    fn from(e: CodeError) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_TICKET",
            e.to_string(),
        )
    }
}

/// 409 `TICKET_NOT_VALID`: a genuine code whose reservation does not admit anyone.
fn not_valid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "TICKET_NOT_VALID", message)
}

/// A ticket as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TicketAnswer {
    /// The ticket: one per unit or seat of a reservation.
    ticket_id: String,
    /// Its reservation (hold).
    #[schema(format = "uuid")]
    reservation_id: String,
    /// Its session.
    #[schema(format = "uuid")]
    session_id: String,
    /// Its grade.
    grade: String,
    /// Its seat, for a seated session.
    seat: Option<String>,
    /// The signed code to show at the gate: `TR1.<payload>.<HMAC-SHA256>`.
    code: String,
    /// `valid`, or `used` once scanned at the gate.
    #[schema(schema_with = ticket_status_schema)]
    status: &'static str,
    /// When it was scanned, epoch ms.
    used_at: Option<i64>,
}

/// A ticket's `status` before its scan.
const VALID: &str = "valid";
/// A ticket's `status` once scanned.
const USED: &str = "used";

/// The schema of [`TicketAnswer::status`].
fn ticket_status_schema() -> utoipa::openapi::Object {
    crate::http::openapi::text_enum([VALID, USED], "`valid`, or `used` once scanned at the gate")
}

/// `GET /api/me/tickets`: a page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TicketsAnswer {
    /// One per unit or seat of each confirmed reservation of the page, newest reservation
    /// first.
    tickets: Vec<TicketAnswer>,
    /// Pass it as `cursor` for the next page (a position among my reservations); `null`
    /// when this page is the last.
    #[schema(
        pattern = "^(0|-?[1-9][0-9]{0,17})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    next_cursor: Option<String>,
}

/// A page of the caller's tickets with their signed codes: the tickets of up to `limit`
/// confirmed reservations, newest first. A page may hold fewer (a bounded number of my
/// reservations is read per request, and unconfirmed ones have no tickets) and still have a
/// `next_cursor`; paging until `next_cursor` is `null` lists every ticket once.
#[utoipa::path(
    get,
    path = "/api/me/tickets",
    tag = "tickets",
    summary = "My tickets, a page at a time",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A ticket per unit or seat of each confirmed reservation of the page", body = TicketsAnswer),
        (status = 400, description = "A bad `limit` or `cursor`, or an unknown parameter: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn my_tickets(
    State(state): State<AppState>,
    me: AuthUser,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    let (limit, cursor) = query.parse::<HoldCursor>()?;
    let (owned, next) = tickets::owned_tickets(
        &state.rush,
        &state.ticket_codes,
        &user_of(&me)?,
        cursor,
        limit,
    )
    .await?;
    let tickets = owned
        .into_iter()
        .map(|t| TicketAnswer {
            ticket_id: t.line.id.to_string(),
            reservation_id: t.hold.to_string(),
            session_id: t.session.to_string(),
            code: t.code,
            grade: t.line.grade,
            seat: t.line.seat,
            status: if t.used_at.is_some() { USED } else { VALID },
            used_at: t.used_at.map(Timestamp::as_millis),
        })
        .collect();
    Ok(Json(TicketsAnswer {
        tickets,
        next_cursor: next.map(|c| c.to_string()),
    }))
}

/// The policy of the QR image: it is an image, never a document that runs or loads anything.
const QR_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// One of the caller's tickets as a QR code holding exactly its signed code (what
/// `GET /api/me/tickets` lists as `code`, what the gate's scan takes). The code is a bearer
/// credential: the answer is `no-store`, and someone else's ticket is answered as if it did
/// not exist.
#[utoipa::path(
    get,
    path = "/api/me/tickets/{id}/qr.svg",
    operation_id = "my_ticket_qr",
    tag = "tickets",
    summary = "One of my tickets as a QR code (SVG)",
    params(("id" = String, Path, pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-([1-9][0-9]?|100)$", description = "The ticket, as `GET /api/me/tickets` lists it (`ticket_id`): its reservation's id and its number within that reservation, `<reservation id>-<n>` with n from 1 (a reservation of several units or seats has one ticket per unit or seat)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The QR code (byte mode, error correction M, with its quiet zone) of the ticket's signed code, as an SVG image", body = String, content_type = "image/svg+xml", headers(("Cache-Control" = String, description = "`no-store`: the code is a bearer credential"), ("Pragma" = String, description = "`no-cache`"))),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 404, description = "No such ticket: a malformed id, no such reservation, another user's, or a number beyond its units (answered alike): `NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "Its reservation is not confirmed (held, paying, cancelled, refunded, …): `TICKET_NOT_VALID`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn my_ticket_qr(
    State(state): State<AppState>,
    me: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // A malformed id names no ticket: answered like one that does not exist.
    let ticket: TicketId = id
        .parse()
        .map_err(|_: TicketError| ApiError::not_found("ticket"))?;
    let code = tickets::my_ticket_code(&state.rush, &state.ticket_codes, &user_of(&me)?, ticket)
        .await
        .map_err(|e| match e {
            TicketCodeError::NotFound => ApiError::not_found("ticket"),
            e @ TicketCodeError::NotConfirmed(_) => not_valid(format!("ticket {ticket}: {e}")),
            TicketCodeError::Lookup(e) => e.into(),
        })?;
    let svg = tickets::qr_svg(&code).map_err(|e| {
        tracing::error!("ticket {ticket}: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    })?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(QR_CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    Ok(no_store((headers, svg)))
}

/// Body of `POST /api/tickets/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// The scanned code (surrounding whitespace from a scanner is ignored).
    #[schema(min_length = 1, max_length = 1024)]
    code: String,
    /// The session this gate checks in: a ticket of another session is refused with 409
    /// `WRONG_SESSION` and marks nothing.
    #[schema(format = "uuid")]
    session_id: String,
}

/// The answer to a first scan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct VerifyAnswer {
    /// Always `true`: a refused scan answers an error.
    valid: bool,
    /// Always `true`: a later scan answers 409 `TICKET_ALREADY_USED`.
    first_use: bool,
    /// The ticket.
    ticket_id: String,
    /// Its reservation.
    #[schema(format = "uuid")]
    reservation_id: String,
    /// Its session.
    #[schema(format = "uuid")]
    session_id: String,
    /// Its buyer.
    user_id: String,
    /// Its grade.
    grade: String,
    /// Its seat, for a seated session.
    seat: Option<String>,
    /// This scan's time, epoch ms.
    used_at: i64,
    /// The gate (admin) account that scanned it.
    used_by: String,
}

/// The gate's scan: checks a ticket code and marks the ticket used, once.
#[utoipa::path(
    post,
    path = "/api/tickets/verify",
    operation_id = "verify_ticket",
    tag = "tickets",
    summary = "Scan a ticket at the gate (GATE or ADMIN)",
    request_body = VerifyBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket's first scan: it is now used", body = VerifyAnswer),
        (status = 400, description = "Malformed body or `session_id`: `VALIDATION`", body = ErrorBody),
        (status = 401, description = "No valid access token: `UNAUTHORIZED`, `TOKEN_EXPIRED`", body = ErrorBody),
        (status = 403, description = "Neither a `GATE` nor an `ADMIN` account: `FORBIDDEN`", body = ErrorBody),
        (status = 409, description = "Already scanned (`TICKET_ALREADY_USED`, the message says when), a ticket of another session than `session_id` (`WRONG_SESSION`), or its reservation is not confirmed or does not match (`TICKET_NOT_VALID`); nothing is marked", body = ErrorBody),
        (status = 422, description = "A forged, tampered or malformed code: `INVALID_TICKET`", body = ErrorBody),
        (status = 503, description = "Storage unavailable: `UNAVAILABLE` (with `Retry-After`)", body = ErrorBody),
    )
)]
async fn verify(
    State(state): State<AppState>,
    GateUser(gate): GateUser,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let at_session: SessionId = path_id(&body.session_id)?;
    let by = gate.id.to_string();
    let scanned = tickets::scan(
        &state.rush,
        &state.ticket_codes,
        body.code.trim(),
        at_session,
        &by,
    )
    .await;
    match scanned {
        Ok(Admitted { line, hold, at }) => Ok(Json(VerifyAnswer {
            valid: true,
            first_use: true,
            ticket_id: line.id.to_string(),
            reservation_id: hold.id.to_string(),
            session_id: hold.session.to_string(),
            user_id: hold.user.as_str().to_owned(),
            grade: line.grade,
            seat: line.seat,
            used_at: at.as_millis(),
            used_by: by,
        })),
        Err(e) => Err(scan_error(e)),
    }
}

/// The answer to a scan that let no one in.
fn scan_error(e: ScanError) -> ApiError {
    match e {
        ScanError::Code(e) => e.into(),
        e @ (ScanError::NoReservation(_) | ScanError::Mismatch(_)) => not_valid(e.to_string()),
        ScanError::AlreadyUsed { ticket, at, gate } => ApiError::new(
            StatusCode::CONFLICT,
            "TICKET_ALREADY_USED",
            format!(
                "ticket {ticket} was already used at {} ({} ms since the epoch), scanned by {gate}",
                utc_text(at),
                at.as_millis()
            ),
        ),
        ScanError::Lookup(e) => e.into(),
        ScanError::CheckIn { ticket, source } => scan_refused(ticket, source),
    }
}

/// The answer to a check-in the library refused; nothing was marked.
fn scan_refused(ticket: TicketId, e: Error) -> ApiError {
    match e {
        Error::Refused(Refusal::WrongSession { session }) => ApiError::new(
            StatusCode::CONFLICT,
            "WRONG_SESSION",
            format!("ticket {ticket} is for session {session}, not the one checked in here"),
        ),
        Error::Refused(Refusal::NotConfirmed { state }) => not_valid(format!(
            "ticket {ticket}: its reservation is {}, not confirmed",
            state.as_str().to_lowercase()
        )),
        Error::Refused(Refusal::TicketOutOfRange { .. }) => {
            not_valid(format!("ticket {ticket} does not match its reservation"))
        }
        Error::NotFound { .. } => {
            not_valid(format!("ticket {ticket}: its reservation does not exist"))
        }
        other => other.into(),
    }
}

/// `at` as an RFC 3339 UTC time with milliseconds, e.g. `2025-05-17T19:30:00.000Z`.
fn utc_text(at: Timestamp) -> String {
    let ms = at.as_millis();
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::model::hold::HoldState;

    #[test]
    fn times_read_as_utc() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (1_735_689_599_999, "2024-12-31T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(utc_text(Timestamp::from_millis(ms)), text);
        }
    }

    #[test]
    fn ticket_errors_map_to_documented_answers() {
        let forged: ApiError = CodeError::Forged.into();
        assert_eq!(
            (forged.status, forged.code.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_TICKET")
        );
        let malformed: ApiError = CodeError::Malformed("x").into();
        assert_eq!(malformed.code, "INVALID_TICKET");
        let now = Timestamp::from_millis(1);
        let ticket = TicketId::new(ticket_core::HoldId::new_at(now), 1).unwrap();
        let wrong: ApiError = scan_refused(
            ticket,
            Refusal::WrongSession {
                session: SessionId::new_at(now),
            }
            .into(),
        );
        assert_eq!(
            (wrong.status, wrong.code.as_str()),
            (StatusCode::CONFLICT, "WRONG_SESSION")
        );
        let cancelled: ApiError = scan_refused(
            ticket,
            Refusal::NotConfirmed {
                state: HoldState::Cancelled,
            }
            .into(),
        );
        assert_eq!(
            (cancelled.status, cancelled.code.as_str()),
            (StatusCode::CONFLICT, "TICKET_NOT_VALID")
        );
    }
}
