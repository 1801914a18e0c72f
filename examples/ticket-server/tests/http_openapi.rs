//! `GET /openapi.json`: the OpenAPI document generated from the handlers' annotations. It
//! lists every route the router serves with exactly the methods it serves, no more: the
//! expected table below is checked against the document, against the `.route(…)` calls in
//! the server's source (so a route added without documentation fails here) and against the
//! running router. Protected operations declare the bearer scheme and answer 401 without a
//! token; every documented error answers the shared error schema; and real answers of a
//! memory server match the schemas documented for their status, key for key.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{Server, admin_token, call, ga_session, memory_server, user_token};
use serde_json::{Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Anyone, no token.
    Anyone,
    /// Any account: `Authorization: Bearer <access token>`.
    User,
    /// An admin account.
    Admin,
}

/// One route the router serves.
struct Route {
    method: &'static str,
    path: &'static str,
    who: Who,
    /// Whether the `Idempotency-Key` header is required.
    idempotency_key: bool,
}

const fn route(method: &'static str, path: &'static str, who: Who) -> Route {
    Route {
        method,
        path,
        who,
        idempotency_key: false,
    }
}

const fn keyed(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        who: Who::User,
        idempotency_key: true,
    }
}

const fn admin_keyed(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        who: Who::Admin,
        idempotency_key: true,
    }
}

/// Every route of the API.
const ROUTES: &[Route] = &[
    route("GET", "/healthz", Who::Anyone),
    route("GET", "/api/ping", Who::Anyone),
    route("GET", "/metrics", Who::Anyone),
    route("GET", "/openapi.json", Who::Anyone),
    route("POST", "/api/auth/signup", Who::Anyone),
    route("POST", "/api/auth/login", Who::Anyone),
    route("POST", "/api/auth/refresh", Who::Anyone),
    route("POST", "/api/auth/logout", Who::User),
    route("GET", "/api/me", Who::User),
    route("GET", "/api/auth/providers", Who::Anyone),
    route("GET", "/api/auth/oauth/{provider}/start", Who::Anyone),
    route("GET", "/api/auth/oauth/{provider}/callback", Who::Anyone),
    route("POST", "/api/auth/oauth/exchange", Who::Anyone),
    route("POST", "/api/admin/events", Who::Admin),
    route("PUT", "/api/admin/sessions/{id}/policy", Who::Admin),
    route("GET", "/api/events", Who::Anyone),
    route("GET", "/api/events/{id}", Who::Anyone),
    route("GET", "/api/sessions/{id}", Who::Anyone),
    route("GET", "/api/sessions/{id}/seats", Who::Anyone),
    route("POST", "/api/sessions/{id}/queue", Who::User),
    route("GET", "/api/sessions/{id}/queue", Who::User),
    route("DELETE", "/api/sessions/{id}/queue", Who::User),
    route("GET", "/api/sessions/{id}/queue/events", Who::User),
    route("GET", "/api/me/events", Who::User),
    route("GET", "/api/me/notifications", Who::User),
    route("POST", "/api/me/notifications/{id}/read", Who::User),
    keyed("POST", "/api/holds"),
    route("GET", "/api/holds/{id}", Who::User),
    route("DELETE", "/api/holds/{id}", Who::User),
    keyed("POST", "/api/holds/{id}/checkout"),
    route("POST", "/api/payments/webhook", Who::Anyone),
    route("GET", "/api/payments/{id}", Who::User),
    route("GET", "/api/me/reservations", Who::User),
    keyed("POST", "/api/reservations/{id}/cancel"),
    route("GET", "/api/admin/sessions/{id}/stats", Who::Admin),
    route("POST", "/api/admin/sessions/{id}/pause", Who::Admin),
    route("POST", "/api/admin/sessions/{id}/resume", Who::Admin),
    route("POST", "/api/admin/sessions/{id}/close", Who::Admin),
    route("POST", "/api/admin/sessions/{id}/cancel", Who::Admin),
    route("GET", "/api/admin/sessions/{id}/sale", Who::Admin),
    route("GET", "/api/admin/sessions/{id}/refund-run", Who::Admin),
    admin_keyed("POST", "/api/admin/sessions/{id}/capacity"),
    route(
        "GET",
        "/api/reservations/{id}/cancellation-quote",
        Who::User,
    ),
    admin_keyed("POST", "/api/admin/reservations/{id}/cancel"),
    route("GET", "/api/admin/audit", Who::Admin),
    keyed("POST", "/api/me/wallet/topups"),
    route("GET", "/api/me/wallet/topups/{id}", Who::User),
    route("GET", "/api/admin/security-audit", Who::Admin),
    route("GET", "/api/admin/users", Who::Admin),
    route("GET", "/api/admin/users/{id}", Who::Admin),
    route("PUT", "/api/admin/users/{id}/role", Who::Admin),
    route("PUT", "/api/admin/users/{id}/tiers", Who::Admin),
    route("POST", "/api/admin/users/{id}/block", Who::Admin),
    route("POST", "/api/admin/users/{id}/unblock", Who::Admin),
    route("GET", "/api/admin/account-audit", Who::Admin),
    route("GET", "/api/me/wallet", Who::User),
    route("GET", "/api/me/tickets", Who::User),
    route("GET", "/api/me/tickets/{id}/qr.svg", Who::User),
    route("POST", "/api/tickets/verify", Who::Admin),
    route("GET", "/", Who::Anyone),
    route("GET", "/app.js", Who::Anyone),
    route("GET", "/app.css", Who::Anyone),
    route("GET", "/gate", Who::Anyone),
    route("GET", "/gate.js", Who::Anyone),
    route("GET", "/gate.css", Who::Anyone),
];

/// The methods a route can be registered with.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

fn table() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect()
}

/// (METHOD, path) of every operation of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.to_uppercase().as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

async fn document(server: &Server) -> Value {
    let answer = call(server, "GET", "/openapi.json", None, &[], None).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.json.is_object(),
        "the document is JSON: {:?}",
        answer.json
    );
    answer.json
}

/// Every `.route("path", get(..).post(..))` in the server's source, comments left out.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    collect_rs(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "the server's source is where it was");
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (i, _) in code.match_indices(".route(") {
            let args = call_args(&code[i + ".route(".len()..]);
            let path = args
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("{}: a route without a literal path", file.display()));
            let handlers = &args[args.find(',').expect("a method router")..];
            let methods = method_calls(handlers);
            assert!(
                !methods.is_empty(),
                "{}: no method in .route({args})",
                file.display()
            );
            for m in methods {
                assert_ne!(m, "ANY", "{}: `any` cannot be documented", file.display());
                out.insert((m, path.to_owned()));
            }
        }
    }
    out
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text up to the parenthesis that closes the call whose arguments `rest` starts with.
fn call_args(rest: &str) -> &str {
    let mut depth = 1;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &rest[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unclosed .route(")
}

/// The axum method routers called in `text` (`get(`, `.post(`, …), upper-case.
fn method_calls(text: &str) -> Vec<String> {
    let names = [
        "get", "post", "put", "delete", "patch", "head", "options", "trace", "any",
    ];
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for name in names {
        for (i, _) in text.match_indices(&format!("{name}(")) {
            let before = i.checked_sub(1).map(|j| bytes[j]);
            if before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_')) {
                out.push(name.to_uppercase());
            }
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-0000-0000-000000000000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_served() {
    let s = memory_server(&[]).await;
    let doc = document(&s).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert_eq!(doc["info"]["title"], "ticketrush example server");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    // The table, the document and the source agree, route for route and method for method.
    assert_eq!(
        ROUTES.len(),
        table().len(),
        "the table lists each route once"
    );
    assert_eq!(documented(&doc), table(), "the document vs the table");
    assert_eq!(
        routes_in_source(),
        table(),
        "the router's .route(…) calls vs the table: document a new route with \
         #[utoipa::path], list it in ApiDoc and in this table"
    );
    let paths: BTreeSet<&str> = ROUTES.iter().map(|r| r.path).collect();
    assert_eq!(doc["paths"].as_object().expect("paths").len(), paths.len());

    // Operation ids are unique; every operation has a tag of the document and a summary.
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for r in ROUTES {
        let op = operation(&doc, r.method, r.path);
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id), "operationId {id} is used twice");
        let tag = op["tags"][0].as_str().expect("a tag");
        assert!(
            tags.contains(tag),
            "{} {}: tag {tag} is not declared",
            r.method,
            r.path
        );
        assert!(
            op["summary"].is_string(),
            "{} {} has a summary",
            r.method,
            r.path
        );
    }

    // The running router serves every documented operation and nothing else on its paths.
    for r in ROUTES {
        let answer = call(&s, r.method, &concrete(r.path), None, &[], None).await;
        assert_ne!(answer.status, 405, "{} {} is served", r.method, r.path);
        assert!(
            answer.status != 404 || !answer.json.is_null(),
            "{} {} is routed (a handler's 404 has an error body)",
            r.method,
            r.path
        );
    }
    for path in &paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if ROUTES.iter().any(|r| r.path == *path && r.method == method) {
                continue;
            }
            let answer = call(&s, method, &concrete(path), None, &[], None).await;
            assert_eq!(answer.status, 405, "{method} {path} is not served");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_operations_declare_the_bearer_scheme() {
    let s = memory_server(&[]).await;
    let doc = document(&s).await;
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");
    for r in ROUTES {
        let op = operation(&doc, r.method, r.path);
        let what = format!("{} {}", r.method, r.path);
        let needs_token = r.who != Who::Anyone;
        if needs_token {
            assert_eq!(op["security"], json!([{ "bearer": [] }]), "{what}");
            assert!(op["responses"]["401"].is_object(), "{what} documents 401");
        } else {
            assert!(op["security"].is_null(), "{what} needs no token");
        }
        if r.who == Who::Admin {
            let forbidden = op["responses"]["403"]["description"].as_str();
            assert!(
                forbidden.is_some_and(|d| d.contains("FORBIDDEN")),
                "{what}: an admin route documents 403 FORBIDDEN"
            );
        }
        // And the router agrees: without a token, exactly the protected routes answer 401
        // (and the webhook, which the provider's signature authenticates instead, and the
        // refresh, whose credential is the refresh token in the body or the cookie).
        let signed = matches!(r.path, "/api/payments/webhook" | "/api/auth/refresh");
        let answer = call(&s, r.method, &concrete(r.path), None, &[], None).await;
        assert_eq!(
            answer.status == 401,
            needs_token || signed,
            "{what}: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_and_error_answers_are_documented() {
    let s = memory_server(&[]).await;
    let doc = document(&s).await;
    let error_ref = "#/components/schemas/ErrorBody";
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error"]));
    assert_eq!(
        resolve(&doc, &error["properties"]["error"])["required"],
        json!(["code", "message"])
    );
    let mut errors = 0;
    for r in ROUTES {
        let op = operation(&doc, r.method, r.path);
        let what = format!("{} {}", r.method, r.path);
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let param = |name: &str, place: &str| {
            params
                .iter()
                .find(|p| p["name"] == name && p["in"] == place)
                .cloned()
        };
        // Every `{x}` of the path is a required path parameter.
        for segment in r.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let p = param(name, "path").unwrap_or_else(|| panic!("{what}: no {name}"));
                assert_eq!(p["required"], true, "{what}: {name}");
            }
        }
        let key = param("Idempotency-Key", "header");
        assert_eq!(key.is_some(), r.idempotency_key, "{what}: Idempotency-Key");
        if let Some(key) = key {
            assert_eq!(key["required"], true, "{what}: the key is required");
        }
        let responses = op["responses"].as_object().expect("responses");
        // (a 2xx, or the 3xx of a browser redirect: the social login's start and callback)
        assert!(
            responses
                .keys()
                .any(|k| k.starts_with('2') || k.starts_with('3')),
            "{what} documents its success"
        );
        for (status, response) in responses {
            if status.as_str() < "400" {
                continue;
            }
            errors += 1;
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"], error_ref,
                "{what} {status} answers the error schema"
            );
            assert!(response["description"].is_string(), "{what} {status}");
        }
    }
    assert!(errors > 100, "error answers are documented ({errors})");
    // Query parameters from their structs.
    let events = operation(&doc, "GET", "/api/events");
    let names: BTreeSet<&str> = events["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["q", "status", "from", "to", "page", "per_page"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_hold_the_main_types() {
    let s = memory_server(&[]).await;
    let doc = document(&s).await;
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ErrorBody",
        "ErrorDetail",
        "Credentials",
        "TokenAnswer",
        "MeAnswer",
        "CreateEventRequest",
        "EventView",
        "EventPage",
        "SessionStock",
        "SeatView",
        "SalesPolicy",
        "QueueAnswer",
        "HoldRequest",
        "HoldAnswer",
        "CheckoutBody",
        "CheckoutAnswer",
        "PaymentAnswer",
        "ReservationAnswer",
        "CancelAnswer",
        "StatsAnswer",
        "AuditAnswer",
        "WalletAnswer",
        "EntryAnswer",
        "TopUpBody",
        "TopUpAnswer",
        "TicketsAnswer",
        "VerifyAnswer",
    ] {
        assert!(schemas.contains_key(name), "components.schemas.{name}");
    }
    // Every reference resolves.
    let text = doc.to_string();
    for (i, _) in text.match_indices("\"$ref\":\"") {
        let rest = &text[i + 8..];
        let target = &rest[..rest.find('"').expect("ref end")];
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("an outside reference {target}"));
        assert!(schemas.contains_key(name), "{target} resolves");
    }
    // The library's policy defaults are the documented ones.
    let policy = &schemas["SalesPolicy"]["properties"];
    let defaults = serde_json::to_value(ticket_core::model::policy::SalesPolicy::default())
        .expect("policy json");
    for (field, value) in defaults.as_object().expect("policy") {
        assert_eq!(&policy[field]["default"], value, "default of {field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_their_documented_schemas() {
    let s = memory_server(&[]).await;
    let doc = document(&s).await;
    let session = ga_session(&s, 10).await;
    let (token, _) = user_token(&s);
    let admin = admin_token(&s).await;
    let me = Some(token.as_str());
    let mut checked = 0;
    let mut check = |method: &str, path: &str, status: u16, body: &Value| {
        let op = operation(&doc, method, path);
        let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {path} documents {status}");
        let problems = validate(&doc, schema, body, "$");
        assert!(
            problems.is_empty(),
            "{method} {path} {status}: {problems:#?}\n{body:#}"
        );
        checked += 1;
    };

    let a = call(&s, "GET", "/api/events", None, &[], None).await;
    check("GET", "/api/events", a.status, &a.json);
    let a = call(
        &s,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
        &[],
        None,
    )
    .await;
    check("GET", "/api/sessions/{id}", a.status, &a.json);
    let queue = format!("/api/sessions/{session}/queue");
    let a = call(&s, "POST", &queue, me, &[], None).await;
    check("POST", "/api/sessions/{id}/queue", a.status, &a.json);
    assert_eq!(a.json["status"], "active", "{a:?}");

    // A refused hold: the error body, then a hold.
    let bad = call(
        &s,
        "POST",
        "/api/holds",
        me,
        &[("idempotency-key", "h0")],
        Some(r#"{"session_id": "not-an-id"}"#),
    )
    .await;
    assert_eq!(bad.status, 400);
    check("POST", "/api/holds", bad.status, &bad.json);
    let body = json!({ "session_id": session.to_string(), "grade": "GA", "quantity": 2 });
    let hold = call(
        &s,
        "POST",
        "/api/holds",
        me,
        &[("idempotency-key", "h1")],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(hold.status, 201, "{hold:?}");
    check("POST", "/api/holds", hold.status, &hold.json);
    let id = hold.json["id"].as_str().expect("hold id").to_owned();
    let a = call(&s, "GET", &format!("/api/holds/{id}"), me, &[], None).await;
    check("GET", "/api/holds/{id}", a.status, &a.json);

    let paid = call(
        &s,
        "POST",
        &format!("/api/holds/{id}/checkout"),
        me,
        &[("idempotency-key", "c1")],
        Some(r#"{"method":"card","card_number":"4242424242424242"}"#),
    )
    .await;
    assert_eq!(paid.status, 200, "{paid:?}");
    check("POST", "/api/holds/{id}/checkout", paid.status, &paid.json);
    let payment = paid.json["payment_id"].as_str().expect("payment id");
    let a = call(
        &s,
        "GET",
        &format!("/api/payments/{payment}"),
        me,
        &[],
        None,
    )
    .await;
    check("GET", "/api/payments/{id}", a.status, &a.json);
    let a = call(&s, "GET", "/api/me/reservations", me, &[], None).await;
    check("GET", "/api/me/reservations", a.status, &a.json);
    assert_eq!(a.json["reservations"].as_array().map(Vec::len), Some(1));
    let a = call(&s, "GET", "/api/me/tickets", me, &[], None).await;
    check("GET", "/api/me/tickets", a.status, &a.json);

    // A checkout on the provider's hosted page answers the same documented shape.
    let body = json!({ "session_id": session.to_string(), "grade": "GA", "quantity": 1 });
    let again = call(&s, "POST", &queue, me, &[], None).await;
    assert_eq!(again.json["status"], "active", "{again:?}");
    let second = call(
        &s,
        "POST",
        "/api/holds",
        me,
        &[("idempotency-key", "h2")],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(second.status, 201, "{second:?}");
    let second = second.json["id"].as_str().expect("hold id").to_owned();
    let hosted = call(
        &s,
        "POST",
        &format!("/api/holds/{second}/checkout"),
        me,
        &[("idempotency-key", "c2")],
        Some(r#"{"method":"hosted"}"#),
    )
    .await;
    assert_eq!(hosted.status, 200, "{hosted:?}");
    assert!(hosted.json["payment_url"].is_string(), "{hosted:?}");
    check(
        "POST",
        "/api/holds/{id}/checkout",
        hosted.status,
        &hosted.json,
    );
    let a = call(
        &s,
        "POST",
        "/api/me/wallet/topups",
        me,
        &[("idempotency-key", "w1")],
        Some(r#"{"amount": 1000, "card_number": "4242424242424242"}"#),
    )
    .await;
    check("POST", "/api/me/wallet/topups", a.status, &a.json);
    let topup = a.json["id"].as_str().expect("top-up id");
    let a = call(
        &s,
        "GET",
        &format!("/api/me/wallet/topups/{topup}"),
        me,
        &[],
        None,
    )
    .await;
    check("GET", "/api/me/wallet/topups/{id}", a.status, &a.json);
    let a = call(&s, "GET", "/api/me/wallet", me, &[], None).await;
    check("GET", "/api/me/wallet", a.status, &a.json);
    assert_eq!(a.json["entries"].as_array().map(Vec::len), Some(1));

    let admin = Some(admin.as_str());
    let stats = format!("/api/admin/sessions/{session}/stats");
    let a = call(&s, "GET", &stats, admin, &[], None).await;
    check("GET", "/api/admin/sessions/{id}/stats", a.status, &a.json);
    let audit = format!("/api/admin/audit?session_id={session}");
    let a = call(&s, "GET", &audit, admin, &[], None).await;
    check("GET", "/api/admin/audit", a.status, &a.json);
    assert!(a.json["records"].as_array().is_some_and(|r| !r.is_empty()));
    let policy = format!("/api/admin/sessions/{session}/policy");
    let a = call(&s, "PUT", &policy, admin, &[], Some("{}")).await;
    check("PUT", "/api/admin/sessions/{id}/policy", a.status, &a.json);
    let a = call(&s, "GET", "/api/me", admin, &[], None).await;
    check("GET", "/api/me", a.status, &a.json);
    let a = call(&s, "GET", "/api/me", None, &[], None).await;
    check("GET", "/api/me", a.status, &a.json);
    assert_eq!(checked, 19);
}

/// `schema`, or the component it references.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => {
            let name = target
                .strip_prefix("#/components/schemas/")
                .expect("a local reference");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// What is wrong with `value` under `schema` (a JSON Schema subset: `$ref`, `oneOf`, `type`,
/// `enum`, `properties` with `required`, where an object must have exactly the documented
/// keys, `additionalProperties` and `items`).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut problems = Vec::new();
    if let Some(choices) = schema["oneOf"].as_array() {
        if !choices
            .iter()
            .any(|c| validate(doc, c, value, at).is_empty())
        {
            problems.push(format!("{at}: {value} matches no oneOf branch"));
        }
        return problems;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let type_ok = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !type_ok {
        problems.push(format!("{at}: {actual} where the schema says {types:?}"));
        return problems;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                let keys: BTreeSet<&String> = map.keys().collect();
                let documented: BTreeSet<&String> = props.keys().collect();
                if keys != documented {
                    problems.push(format!(
                        "{at}: keys {keys:?} but the schema's properties are {documented:?}"
                    ));
                }
                for required in schema["required"].as_array().into_iter().flatten() {
                    let name = required.as_str().unwrap_or_default();
                    if !map.contains_key(name) {
                        problems.push(format!("{at}: required {name} is missing"));
                    }
                }
                for (k, v) in map {
                    if let Some(p) = props.get(k) {
                        problems.extend(validate(doc, p, v, &format!("{at}.{k}")));
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                let each = &schema["additionalProperties"];
                for (k, v) in map {
                    problems.extend(validate(doc, each, v, &format!("{at}.{k}")));
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, v) in items.iter().enumerate() {
                problems.extend(validate(doc, &schema["items"], v, &format!("{at}[{i}]")));
            }
        }
        _ => {}
    }
    problems
}

/// The validator itself refuses what it should (so a pass above means something).
#[test]
fn the_validator_catches_mismatches() {
    let doc = json!({ "components": { "schemas": { "E": {
        "type": "object",
        "required": ["code"],
        "properties": { "code": { "type": "string", "enum": ["A"] }, "n": { "type": ["integer", "null"] } }
    } } } });
    let schema = json!({ "$ref": "#/components/schemas/E" });
    assert!(validate(&doc, &schema, &json!({ "code": "A", "n": null }), "$").is_empty());
    let wrong: BTreeMap<&str, Value> = BTreeMap::from([
        ("extra key", json!({ "code": "A", "n": 1, "x": 1 })),
        ("missing key", json!({ "code": "A" })),
        ("enum", json!({ "code": "B", "n": 1 })),
        ("type", json!({ "code": "A", "n": "1" })),
        ("not an object", json!([])),
    ]);
    for (what, value) in wrong {
        assert!(!validate(&doc, &schema, &value, "$").is_empty(), "{what}");
    }
}

/// Every object a request body can hold is closed: `additionalProperties: false` (the
/// handlers refuse unknown fields, and the document must say so). The one exception is the
/// payment provider's webhook, whose body is the provider's signed event, read as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_body_refuses_unknown_fields() {
    let server = memory_server(&[]).await;
    let doc = document(&server).await;
    let mut open = Vec::new();
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            if path == "/api/payments/webhook" {
                continue;
            }
            for (media, body) in content {
                bodies += 1;
                let at = format!("{} {path} {media}", method.to_uppercase());
                closed_objects(&doc, &body["schema"], &at, &mut open);
            }
        }
    }
    assert!(bodies >= 9, "request bodies found: {bodies}");
    assert!(open.is_empty(), "open objects in request bodies: {open:#?}");
}

/// Collects the places under `schema` where an object with properties does not say
/// `additionalProperties: false`.
fn closed_objects(doc: &Value, schema: &Value, at: &str, open: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if schema.get("properties").is_some() && schema["additionalProperties"] != json!(false) {
        open.push(at.to_owned());
    }
    for keyword in ["oneOf", "anyOf", "allOf"] {
        for (i, branch) in schema[keyword].as_array().into_iter().flatten().enumerate() {
            closed_objects(doc, branch, &format!("{at}/{keyword}/{i}"), open);
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            closed_objects(doc, prop, &format!("{at}/{name}"), open);
        }
    }
    if schema.get("items").is_some() {
        closed_objects(doc, &schema["items"], &format!("{at}/items"), open);
    }
}
