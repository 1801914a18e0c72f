//! The buyer's hosted payment page (feature `server`): plain server-rendered HTML, a little
//! CSS, no JavaScript. See [`hosted_page_router`].

use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, routing::post};
use serde::Deserialize;
use ticket_core::gateway::{CheckoutSessionId, CheckoutSessionStatus, IntentStatus};
use ticket_core::model::money::Money;

use crate::cards::{CHALLENGE_CODE, numbers};
use crate::gateway::{HostedSession, PayError, PayOutcome, Sandbox};
use crate::intent::CURRENCIES;

/// The buyer's payment page of checkout sessions, without an API key (the session id in
/// the URL is the buyer's capability, as with the providers' hosted pages):
///
/// | method and path | does |
/// |---|---|
/// | `GET /pay/{id}` | the form: amount, description, card number, expiry, CVC, name, "Cancel and return" |
/// | `POST /pay/{id}` | one payment attempt (`application/x-www-form-urlencoded`: `card_number`, `expiry`, `cvc`, `name`) |
/// | `POST /pay/{id}/challenge` | the one-time code (`code`) of a card that asks for a challenge |
/// | `GET /pay/{id}/cancel` | `303` to `return_url?…&session_id=<id>&canceled=1`; the session stays open |
///
/// A payment that succeeds (or is authorized) answers `303 See Other` to the session's
/// `return_url` with `session_id=<id>` added to its query; a decline renders the form again
/// with the reason (`402`) and the session stays open for another card; malformed card
/// details render it with what is wrong (`400`) and create nothing. An expired session's
/// page says so (`410`) and a complete one's "already paid" (`200`): neither takes a
/// payment. Every string the page shows that came from a request (description, metadata,
/// messages) is HTML-escaped; card numbers are never logged nor shown back.
///
/// Merged into [`crate::http::router`] (where these routes need no API key either); an app
/// can also mount it under a prefix of its own server, with
/// [`crate::SandboxConfig::public_url`] naming that prefix so sessions' URLs point at it.
pub fn hosted_page_router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/pay/{id}", get(show).post(pay))
        .route("/pay/{id}/challenge", post(challenge))
        .route("/pay/{id}/cancel", get(cancel))
        .with_state(sandbox)
}

/// The payment form as posted. Every field defaults to empty so that a missing one renders
/// the form with a message, not a bare `422`.
#[derive(Debug, Default, Deserialize)]
struct CardForm {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    cvc: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct ChallengeForm {
    #[serde(default)]
    code: String,
}

/// Escapes `s` for HTML text and attribute values (double- or single-quoted).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// `amount` for people: grouped digits and the currency's decimals, then its code
/// (`15,000 KRW`, `1,234.50 USD`).
fn format_amount(amount: &Money) -> String {
    let code = amount.currency.as_str();
    let exponent = CURRENCIES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(0, |(_, e)| *e);
    let minor = amount.amount_minor.unsigned_abs();
    let unit = 10u64.pow(exponent);
    let whole = (minor / unit).to_string();
    let mut grouped = String::new();
    for (i, d) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(d);
    }
    let sign = if amount.amount_minor < 0 { "-" } else { "" };
    if exponent == 0 {
        format!("{sign}{grouped} {code}")
    } else {
        let frac = minor % unit;
        format!(
            "{sign}{grouped}.{frac:0width$} {code}",
            width = exponent as usize
        )
    }
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f4f8;color:#1f2330}\
main{max-width:26rem;margin:2rem auto;background:#fff;border-radius:12px;padding:1.5rem 1.75rem;box-shadow:0 2px 12px #0002}\
.brand{margin:0;color:#6b7080;font-size:.8rem;letter-spacing:.06em;text-transform:uppercase}\
h1{margin:.25rem 0 .25rem;font-size:2rem}\
.desc{margin:0 0 1rem;color:#3a3f50;overflow-wrap:anywhere}\
label{display:block;margin:.75rem 0 0;font-size:.9rem;color:#3a3f50}\
input{display:block;width:100%;margin-top:.25rem;padding:.55rem .65rem;font:inherit;border:1px solid #c4c7d2;border-radius:6px}\
.row{display:flex;gap:.75rem}.row label{flex:1}\
button{width:100%;margin-top:1.25rem;padding:.7rem;font:inherit;font-weight:600;color:#fff;background:#4254d6;border:0;border-radius:6px;cursor:pointer}\
.error{margin:1rem 0 0;padding:.6rem .75rem;border-radius:6px;background:#fdecec;color:#8a1c1c;overflow-wrap:anywhere}\
.note{margin:1rem 0 0;padding:.6rem .75rem;border-radius:6px;background:#eef1fd;color:#27308a}\
.cancel{display:block;margin-top:1rem;text-align:center;color:#6b7080}\
details{margin-top:1.25rem;font-size:.85rem;color:#6b7080}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem .75rem;margin:.5rem 0 0}dt{color:#6b7080}dd{margin:0;overflow-wrap:anywhere}\
code{font-size:.85em}";

/// A whole page around `body`, with the headers a payment page wants: not cached, not
/// framed, no referrer, and a policy that allows no script at all.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · payment sandbox</title><style>{STYLE}</style></head>\
         <body><main><p class=\"brand\">Payment sandbox · test mode</p>{body}</main></body></html>\n",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        // A return_url was checked when its session was created (no whitespace or control
        // characters), so this cannot happen; say so rather than panic.
        Err(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "<h1>Something went wrong</h1><p>The return address is not valid.</p>",
        ),
    }
}

/// The path of the session's page (from its `url`, so it holds under the prefix the page
/// is mounted at).
fn page_path(view: &HostedSession) -> String {
    reqwest::Url::parse(&view.session.url).map_or_else(
        |_| format!("/pay/{}", view.session.id),
        |u| u.path().to_owned(),
    )
}

fn header_block(view: &HostedSession) -> String {
    let mut out = format!("<h1>{}</h1>", escape(&format_amount(&view.session.amount)));
    if !view.description.is_empty() {
        out.push_str(&format!(
            "<p class=\"desc\">{}</p>",
            escape(&view.description)
        ));
    }
    out
}

fn metadata_block(view: &HostedSession) -> String {
    if view.session.metadata.is_empty() {
        return String::new();
    }
    let rows: String = view
        .session
        .metadata
        .iter()
        .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)))
        .collect();
    format!("<details><summary>Order details</summary><dl>{rows}</dl></details>")
}

fn test_cards_block() -> String {
    format!(
        "<details><summary>Test cards</summary><dl>\
         <dt><code>{}</code></dt><dd>succeeds</dd>\
         <dt><code>{}</code></dt><dd>declined</dd>\
         <dt><code>{}</code></dt><dd>insufficient funds</dd>\
         <dt><code>{}</code></dt><dd>asks for a one-time code (<code>{CHALLENGE_CODE}</code>)</dd>\
         </dl><p>Any future expiry, any 3-digit CVC.</p></details>",
        numbers::SUCCEEDS,
        numbers::DECLINED,
        numbers::INSUFFICIENT_FUNDS,
        numbers::REQUIRES_CHALLENGE,
    )
}

fn message_block(class: &str, message: Option<&str>) -> String {
    message.map_or_else(String::new, |m| {
        format!("<p class=\"{class}\" role=\"alert\">{}</p>", escape(m))
    })
}

/// The card form, with `error` shown above it.
fn form_page(status: StatusCode, view: &HostedSession, error: Option<&str>) -> Response {
    let path = escape(&page_path(view));
    let amount = escape(&format_amount(&view.session.amount));
    let verb = if view.session.capture_method == ticket_core::gateway::CaptureMethod::Manual {
        "Authorize"
    } else {
        "Pay"
    };
    let body = format!(
        "{header}{error}\
         <form method=\"post\" action=\"{path}\">\
         <label>Card number<input name=\"card_number\" inputmode=\"numeric\" autocomplete=\"cc-number\" maxlength=\"23\" required></label>\
         <div class=\"row\"><label>Expiry (MM/YY)<input name=\"expiry\" autocomplete=\"cc-exp\" placeholder=\"MM/YY\" maxlength=\"7\" required></label>\
         <label>CVC<input name=\"cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" maxlength=\"4\" required></label></div>\
         <label>Name on card<input name=\"name\" autocomplete=\"cc-name\" maxlength=\"100\" required></label>\
         <button type=\"submit\">{verb} {amount}</button></form>\
         <a class=\"cancel\" href=\"{path}/cancel\">Cancel and return</a>{metadata}{cards}",
        header = header_block(view),
        error = message_block("error", error),
        metadata = metadata_block(view),
        cards = test_cards_block(),
    );
    page(status, "Pay", &body)
}

/// The one-time-code form of a pending challenge, with `error` shown above it.
fn challenge_page(status: StatusCode, view: &HostedSession, error: Option<&str>) -> Response {
    let path = escape(&page_path(view));
    let body = format!(
        "{header}{error}\
         <p class=\"note\">Your bank asks you to confirm this payment with the one-time code it sent you \
         (in the sandbox: <code>{CHALLENGE_CODE}</code>).</p>\
         <form method=\"post\" action=\"{path}/challenge\">\
         <label>One-time code<input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"12\" required></label>\
         <button type=\"submit\">Confirm</button></form>\
         <a class=\"cancel\" href=\"{path}\">Use another card</a>\
         <a class=\"cancel\" href=\"{path}/cancel\">Cancel and return</a>",
        header = header_block(view),
        error = message_block("error", error),
    );
    page(status, "Confirm your payment", &body)
}

fn paid_page(view: &HostedSession) -> Response {
    let back = return_link(view);
    let body = format!(
        "{header}<p class=\"note\">This order is already paid. Nothing more will be charged.</p>{back}",
        header = header_block(view),
    );
    page(StatusCode::OK, "Already paid", &body)
}

fn expired_page(view: &HostedSession) -> Response {
    let back = return_link(view);
    let body = format!(
        "{header}<p class=\"error\">This payment page has expired: no payment can be made on it any more.</p>{back}",
        header = header_block(view),
    );
    page(StatusCode::GONE, "Expired", &body)
}

fn return_link(view: &HostedSession) -> String {
    let mut url = match reqwest::Url::parse(&view.session.return_url) {
        Ok(url) => url,
        Err(_) => return String::new(),
    };
    url.query_pairs_mut()
        .append_pair("session_id", view.session.id.as_str());
    format!(
        "<a class=\"cancel\" href=\"{}\">Return to the shop</a>",
        escape(url.as_str())
    )
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        "<h1>Payment page not found</h1><p>Check the link the shop gave you.</p>",
    )
}

fn unavailable(message: &str) -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        &format!(
            "<h1>Please try again</h1>{}",
            message_block("error", Some(message))
        ),
    )
}

fn session_id(raw: &str) -> Option<CheckoutSessionId> {
    CheckoutSessionId::new(raw).ok()
}

/// The page as the session stands: the form, the challenge, "already paid" or "expired".
fn current_page(sandbox: &Sandbox, id: &CheckoutSessionId) -> Response {
    let Ok(view) = sandbox.hosted_session(id) else {
        return not_found();
    };
    match view.session.status {
        CheckoutSessionStatus::Complete => paid_page(&view),
        CheckoutSessionStatus::Expired => expired_page(&view),
        CheckoutSessionStatus::Open => {
            if view
                .attempt
                .as_ref()
                .is_some_and(|i| i.status == IntentStatus::RequiresAction)
            {
                challenge_page(StatusCode::OK, &view, None)
            } else {
                form_page(StatusCode::OK, &view, None)
            }
        }
    }
}

/// The answer to an attempt (a payment or a challenge's code).
fn after_attempt(
    sandbox: &Sandbox,
    id: &CheckoutSessionId,
    outcome: Result<PayOutcome, PayError>,
) -> Response {
    let view = match sandbox.hosted_session(id) {
        Ok(view) => view,
        Err(_) => return not_found(),
    };
    match outcome {
        Ok(PayOutcome::Completed { return_to }) => see_other(&return_to),
        Ok(PayOutcome::ChallengeRequired) => challenge_page(StatusCode::OK, &view, None),
        Ok(PayOutcome::Declined(failure)) => form_page(
            StatusCode::PAYMENT_REQUIRED,
            &view,
            Some(&format!(
                "{} ({}) Try another card.",
                failure.message, failure.code
            )),
        ),
        Err(PayError::InvalidCard(m)) => form_page(StatusCode::BAD_REQUEST, &view, Some(&m)),
        Err(PayError::Expired) => expired_page(&view),
        Err(PayError::Complete) => paid_page(&view),
        Err(PayError::NotFound(_)) => not_found(),
        Err(PayError::NoChallenge) => form_page(
            StatusCode::CONFLICT,
            &view,
            Some("No verification is pending for this payment: enter your card."),
        ),
        Err(e @ PayError::Unavailable(_)) => unavailable(&e.to_string()),
    }
}

/// What is wrong with the card details other than the number (checked by the sandbox's
/// test cards), when anything is.
fn card_details_problem(form: &CardForm) -> Option<&'static str> {
    let expiry = form.expiry.trim();
    let valid_expiry = expiry.split_once('/').is_some_and(|(m, y)| {
        let (m, y) = (m.trim(), y.trim());
        m.len() <= 2
            && (y.len() == 2 || y.len() == 4)
            && y.bytes().all(|b| b.is_ascii_digit())
            && m.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
    });
    let cvc = form.cvc.trim();
    let name = form.name.trim();
    if form.card_number.trim().is_empty() {
        Some("Enter the card number.")
    } else if !valid_expiry {
        Some("Enter the expiry as MM/YY.")
    } else if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        Some("Enter the 3- or 4-digit security code (CVC).")
    } else if name.is_empty() || name.chars().count() > 100 {
        Some("Enter the name on the card (at most 100 characters).")
    } else {
        None
    }
}

async fn show(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    match session_id(&id) {
        Some(id) => current_page(&sandbox, &id),
        None => not_found(),
    }
}

async fn pay(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let Some(id) = session_id(&id) else {
        return not_found();
    };
    if let Some(problem) = card_details_problem(&form) {
        let outcome = match sandbox.hosted_session(&id) {
            // A closed session says so whatever was typed.
            Ok(v) if v.session.status == CheckoutSessionStatus::Expired => Err(PayError::Expired),
            Ok(v) if v.session.status == CheckoutSessionStatus::Complete => Err(PayError::Complete),
            _ => Err(PayError::InvalidCard(problem.to_owned())),
        };
        return after_attempt(&sandbox, &id, outcome);
    }
    let outcome = sandbox.pay_checkout_session(&id, &form.card_number);
    after_attempt(&sandbox, &id, outcome)
}

async fn challenge(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let Some(id) = session_id(&id) else {
        return not_found();
    };
    let outcome = sandbox.answer_checkout_challenge(&id, &form.code);
    after_attempt(&sandbox, &id, outcome)
}

async fn cancel(State(sandbox): State<Sandbox>, Path(id): Path<String>) -> Response {
    let Some(id) = session_id(&id) else {
        return not_found();
    };
    match sandbox.checkout_cancel_url(&id) {
        Ok(url) => see_other(&url),
        Err(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::model::money::Currency;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#x27;"
        );
    }

    #[test]
    fn amounts_are_shown_with_their_currency_decimals() {
        let m = |n, c| Money {
            amount_minor: n,
            currency: Currency::new(c).unwrap(),
        };
        assert_eq!(format_amount(&m(15_000, "KRW")), "15,000 KRW");
        assert_eq!(format_amount(&m(123_456_789, "USD")), "1,234,567.89 USD");
        assert_eq!(format_amount(&m(5, "EUR")), "0.05 EUR");
        assert_eq!(format_amount(&m(100, "JPY")), "100 JPY");
    }

    #[test]
    fn card_details_are_checked() {
        let ok = CardForm {
            card_number: "4242".into(),
            expiry: "12/34".into(),
            cvc: "123".into(),
            name: "A B".into(),
        };
        assert_eq!(card_details_problem(&ok), None);
        for bad in [
            CardForm {
                expiry: "13/34".into(),
                ..ok_form()
            },
            CardForm {
                expiry: "1234".into(),
                ..ok_form()
            },
            CardForm {
                cvc: "12a".into(),
                ..ok_form()
            },
            CardForm {
                name: " ".into(),
                ..ok_form()
            },
            CardForm {
                card_number: String::new(),
                ..ok_form()
            },
        ] {
            assert!(card_details_problem(&bad).is_some(), "{bad:?}");
        }
    }

    fn ok_form() -> CardForm {
        CardForm {
            card_number: "4242424242424242".into(),
            expiry: "12/34".into(),
            cvc: "123".into(),
            name: "A B".into(),
        }
    }
}
