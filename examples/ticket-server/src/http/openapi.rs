//! `GET /openapi.json`: the API's OpenAPI document, generated at compile time by `utoipa`
//! from the handlers' `#[utoipa::path]` annotations and the request and answer types'
//! `ToSchema` derives: paths, methods, parameters and schemas come from the code itself (the
//! descriptions of each route's error answers are written next to its handler).
//! Unauthenticated.
//!
//! Conventions the document states once: errors answer [`ErrorBody`]
//! (`{"error": {"code", "message"}}`); routes marked with the `bearer` security scheme need
//! `Authorization: Bearer <access token>` (a JWT from `POST /api/auth/login`); instants are
//! integers, milliseconds since the Unix epoch; amounts are integer minor units.

use std::sync::LazyLock;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, ObjectBuilder, Type};
use utoipa::{Modify, OpenApi};

use crate::http::error::{ErrorBody, ErrorDetail};
use crate::runtime::state::AppState;

/// The name of the bearer-token security scheme the protected operations list.
pub const BEARER: &str = "bearer";

/// The document: every path and the schemas they reference.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketrush example server",
        version = env!("CARGO_PKG_VERSION"),
        description = "The whole ticket rush over HTTP: accounts, the catalogue, a fair \
            waiting queue with live Server-Sent Events, holds, checkout on the payment \
            provider's hosted page, by card or from the wallet, \
            reservations with cancel and refund, tickets checked at the gate, admin views. \
            Errors answer `{\"error\": {\"code\", \"message\"}}`; instants are milliseconds \
            since the Unix epoch; amounts are integer minor units."
    ),
    paths(
        crate::http::routes::meta::healthz,
        crate::http::routes::meta::ping,
        crate::http::middleware::metrics::scrape,
        openapi_json,
        crate::http::routes::auth::signup,
        crate::http::routes::auth::login,
        crate::http::routes::auth::refresh,
        crate::http::routes::auth::logout,
        crate::http::routes::auth::me,
        crate::http::routes::oauth::providers,
        crate::http::routes::oauth::start,
        crate::http::routes::oauth::callback,
        crate::http::routes::oauth::exchange,
        crate::http::routes::admin::catalog::create_event,
        crate::http::routes::admin::policy::set_policy,
        crate::http::routes::catalog::list_events,
        crate::http::routes::catalog::get_event,
        crate::http::routes::catalog::get_session,
        crate::http::routes::catalog::get_seats,
        crate::http::routes::queue::join,
        crate::http::routes::queue::my_place,
        crate::http::routes::queue::leave,
        crate::http::routes::queue_events::queue_events,
        crate::http::routes::my_events::my_events,
        crate::http::routes::holds::create_hold,
        crate::http::routes::holds::read_hold,
        crate::http::routes::holds::release_hold,
        crate::http::routes::holds::checkout,
        crate::http::routes::payments::webhook,
        crate::http::routes::payments::read_payment,
        crate::http::routes::reservations::my_reservations,
        crate::http::routes::reservations::cancel,
        crate::http::routes::notifications::list,
        crate::http::routes::notifications::mark_read,
        crate::http::routes::admin::sessions::session_stats,
        crate::http::routes::admin::sessions::audit,
        crate::http::routes::admin::sales::pause_sale,
        crate::http::routes::admin::sales::resume_sale,
        crate::http::routes::admin::sales::close_sale,
        crate::http::routes::admin::sales::cancel_show,
        crate::http::routes::admin::sales::read_sale,
        crate::http::routes::admin::sales::refund_run,
        crate::http::routes::admin::sales::change_capacity,
        crate::http::routes::reservations::cancellation_quote,
        crate::http::routes::reservations::admin_cancel,
        crate::http::routes::wallet_topups::start_topup,
        crate::http::routes::wallet_topups::read_topup,
        crate::http::routes::admin::security_audit::security_audit,
        crate::http::routes::admin::users::find_user,
        crate::http::routes::admin::users::read_user,
        crate::http::routes::admin::users::set_role,
        crate::http::routes::admin::users::set_tiers,
        crate::http::routes::admin::users::block,
        crate::http::routes::admin::users::unblock,
        crate::http::routes::admin::users::account_audit,
        crate::http::routes::wallet::read,
        crate::http::routes::tickets::my_tickets,
        crate::http::routes::tickets::my_ticket_qr,
        crate::http::routes::tickets::verify,
        crate::http::routes::demo_page::index,
        crate::http::routes::demo_page::script,
        crate::http::routes::demo_page::style,
        crate::http::routes::gate_page::gate,
        crate::http::routes::gate_page::gate_script,
        crate::http::routes::gate_page::gate_style,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerScheme),
    tags(
        (name = "meta", description = "Liveness, metrics and this document"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "catalog", description = "Events, sessions, stock and seat maps; creating events and policies (admin)"),
        (name = "queue", description = "A session's waiting queue"),
        (name = "queue_events", description = "My place in the queue as Server-Sent Events"),
        (name = "my_events", description = "My reservations and admissions as Server-Sent Events"),
        (name = "holds", description = "Holding units or seats and paying for them"),
        (name = "payments", description = "The payment provider's webhooks and my payments"),
        (name = "reservations", description = "My reservations; cancel by the session's refund policy (quote first); an admin's cancellation on a buyer's behalf"),
        (name = "notifications", description = "My in-app notifications, with read marks"),
        (name = "admin", description = "Operator views (admin)"),
        (name = "wallet", description = "My wallet"),
        (name = "tickets", description = "My tickets and the gate's scan"),
        (name = "demo_page", description = "The demo page, the gate page and their assets"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` scheme: an access token (JWT) in `Authorization: Bearer …`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/auth/login` or `/api/auth/refresh`",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The route of the document.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This OpenAPI document",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", body = Object, content_type = "application/json"),
    )
)]
pub(crate) async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

/// A string schema that takes one of `values`.
pub(crate) fn text_enum<I, S>(values: I, description: &str) -> Object
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(Into::into)))
        .description(Some(description))
        .build()
}

/// A schema that is `null` or a string taking one of `values`.
pub(crate) fn nullable_text_enum<I, S>(values: I, description: &str) -> Object
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let values = values
        .into_iter()
        .map(|v| serde_json::Value::String(v.into()))
        .chain([serde_json::Value::Null]);
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}
