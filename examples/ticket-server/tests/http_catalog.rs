//! The catalogue routes over real HTTP on every backend (memory, Redis, PostgreSQL):
//! creating events (GA and seated), reading them back, stock per grade, the seat map, sales
//! policies, listing with search, status, dates and paging, and bad input answering the
//! documented error while changing nothing.

mod common;

use common::{Answer, Kind, Server, admin_token, call, server, user_token};
use serde_json::{Value, json};
use ticket_core::Timestamp;
use ticket_core::ids::{EventId, SessionId};
use ticket_core::model::hold::Selection;
use ticket_core::model::inventory::SeatId;
use ticket_core::service::HoldCommand;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn now_ms(server: &Server) -> i64 {
    server.state.clock.now().as_millis()
}

/// A GA session body: sales open at `open`, close a day later, start an hour after that.
fn ga_session(open: i64, grades: Value) -> Value {
    json!({
        "starts_at": open + DAY + HOUR,
        "sales_open_at": open,
        "sales_close_at": open + DAY,
        "grades": grades,
    })
}

fn seated_session(open: i64, seats: Value) -> Value {
    json!({
        "starts_at": open + DAY + HOUR,
        "sales_open_at": open,
        "sales_close_at": open + DAY,
        "seats": seats,
    })
}

fn ga_event(name: &str, open: i64) -> Value {
    json!({
        "name": name,
        "sessions": [ga_session(open, json!([
            {"grade": "GA", "capacity": 100, "price_minor": 55_000, "currency": "KRW"},
            {"grade": "VIP", "capacity": 10, "price_minor": 150_000, "currency": "KRW"},
        ]))],
    })
}

fn seats_json() -> Value {
    json!([
        {"id": "A-1", "section": "Floor", "grade": "R", "price_minor": 120_000, "currency": "KRW"},
        {"id": "A-2", "section": "Floor", "grade": "R", "price_minor": 110_000, "currency": "KRW"},
        {"id": "B-1", "section": "Balcony", "grade": "S", "price_minor": 80_000, "currency": "KRW"},
    ])
}

async fn post_event(server: &Server, token: Option<&str>, body: &Value) -> Answer {
    call(
        server,
        "POST",
        "/api/admin/events",
        token,
        &[],
        Some(&body.to_string()),
    )
    .await
}

async fn get(server: &Server, path: &str) -> Answer {
    call(server, "GET", path, None, &[], None).await
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.json["error"]["code"], code, "{answer:?}");
    assert!(
        answer.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{answer:?}"
    );
}

async fn listed_total(server: &Server) -> u64 {
    let a = get(server, "/api/events").await;
    assert_eq!(a.status, 200, "{a:?}");
    a.json["total"].as_u64().expect("total")
}

fn names(answer: &Answer) -> Vec<String> {
    answer.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Admins create GA and seated events; anyone reads them, their stock and seat maps.
async fn admins_create_ga_and_seated_events_and_everyone_reads_them(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let now = now_ms(&server);

    // General admission, on sale now.
    let created = post_event(
        &server,
        Some(&admin),
        &ga_event("Rust Conf Live", now - HOUR),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let event_id = created.json["id"].as_str().expect("id").to_owned();
    assert_eq!(created.json["name"], "Rust Conf Live");
    assert_eq!(created.json["status"], "on_sale");
    let session = &created.json["sessions"][0];
    assert_eq!(session["kind"], "general");
    assert_eq!(session["status"], "on_sale");
    assert_eq!(session["sales_open_at"], now - HOUR);
    assert_eq!(session["sales_close_at"], now - HOUR + DAY);
    assert_eq!(session["starts_at"], now + DAY);
    let ga_session_id = session["id"].as_str().expect("session id").to_owned();

    let read = get(&server, &format!("/api/events/{event_id}")).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json, created.json, "read back as created");
    // And in the library's store, with the ids the API answered.
    let stored = server
        .state
        .rush
        .stores()
        .inventory
        .event(event_id.parse::<EventId>().expect("event id"))
        .await
        .expect("stored");
    assert_eq!(stored.sessions[0].id.to_string(), ga_session_id);

    let stock = get(&server, &format!("/api/sessions/{ga_session_id}")).await;
    assert_eq!(stock.status, 200, "{stock:?}");
    assert_eq!(stock.json["event_id"], event_id.as_str());
    assert_eq!(stock.json["status"], "on_sale");
    assert_eq!(
        stock.json["grades"],
        json!([
            {"grade": "GA", "capacity": 100, "available": 100, "held": 0, "sold": 0,
             "price_minor": 55_000, "currency": "KRW"},
            {"grade": "VIP", "capacity": 10, "available": 10, "held": 0, "sold": 0,
             "price_minor": 150_000, "currency": "KRW"},
        ])
    );
    // A GA session has no seat map.
    let seats = get(&server, &format!("/api/sessions/{ga_session_id}/seats")).await;
    assert_error(&seats, 404, "NOT_SEATED");

    // Seated, sales opening tomorrow.
    let body = json!({
        "name": "Opera Night",
        "sessions": [seated_session(now + DAY, seats_json())],
    });
    let created = post_event(&server, Some(&admin), &body).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.json["status"], "upcoming");
    let session = &created.json["sessions"][0];
    assert_eq!(session["kind"], "seated");
    assert_eq!(session["status"], "upcoming");
    assert_eq!(
        session["grades"],
        json!([
            {"grade": "R", "capacity": 2, "price_minor": 110_000, "currency": "KRW"},
            {"grade": "S", "capacity": 1, "price_minor": 80_000, "currency": "KRW"},
        ])
    );
    let seated_id = session["id"].as_str().expect("session id").to_owned();
    let map = get(&server, &format!("/api/sessions/{seated_id}/seats")).await;
    assert_eq!(map.status, 200, "{map:?}");
    assert_eq!(
        map.json,
        json!([
            {"id": "A-1", "section": "Floor", "grade": "R", "price_minor": 120_000,
             "currency": "KRW", "status": "available"},
            {"id": "A-2", "section": "Floor", "grade": "R", "price_minor": 110_000,
             "currency": "KRW", "status": "available"},
            {"id": "B-1", "section": "Balcony", "grade": "S", "price_minor": 80_000,
             "currency": "KRW", "status": "available"},
        ])
    );
    let stock = get(&server, &format!("/api/sessions/{seated_id}")).await;
    assert_eq!(stock.status, 200, "{stock:?}");
    assert_eq!(stock.json["kind"], "seated");
    assert_eq!(stock.json["grades"][0]["capacity"], 2);
    assert_eq!(stock.json["grades"][0]["available"], 2);
}

/// A held seat shows as held on the map and in the grade's counters.
async fn the_seat_map_and_counters_follow_holds(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let now = now_ms(&server);
    let body = json!({
        "name": "Seats on sale",
        "sessions": [seated_session(now - HOUR, seats_json())],
    });
    let created = post_event(&server, Some(&admin), &body).await;
    assert_eq!(created.status, 201, "{created:?}");
    let session_id = created.json["sessions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // No queue for this session, so the library holds directly.
    let policy = json!({"queue": {"require_admission": false, "max_active": 10,
        "max_admissions_per_minute": 10, "max_waiting": null}});
    let set = call(
        &server,
        "PUT",
        &format!("/api/admin/sessions/{session_id}/policy"),
        Some(&admin),
        &[],
        Some(&policy.to_string()),
    )
    .await;
    assert_eq!(set.status, 200, "{set:?}");
    server
        .state
        .rush
        .holds
        .hold(
            HoldCommand {
                session: session_id.parse::<SessionId>().expect("session id"),
                user: ticket_core::UserId::new("buyer").expect("user"),
                tier: None,
                selection: Selection::Seats {
                    seats: vec![SeatId::new("A-2").expect("seat")],
                },
            },
            Some("hold-1"),
        )
        .await
        .expect("hold");
    let map = get(&server, &format!("/api/sessions/{session_id}/seats")).await;
    let states: Vec<(&str, &str)> = map
        .json
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("A-1", "available"), ("A-2", "held"), ("B-1", "available")]
    );
    let stock = get(&server, &format!("/api/sessions/{session_id}")).await;
    let r = &stock.json["grades"][0];
    assert_eq!(
        (&r["grade"], &r["available"], &r["held"], &r["sold"]),
        (&json!("R"), &json!(1), &json!(1), &json!(0))
    );
}

/// Admins set a session's policy; bad policies and non-admins change nothing.
async fn admins_set_a_sessions_policy_and_bad_policies_change_nothing(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let user = user_token(&server).0;
    let now = now_ms(&server);
    let created = post_event(&server, Some(&admin), &ga_event("Policy Show", now + HOUR)).await;
    assert_eq!(created.status, 201, "{created:?}");
    let session_id = created.json["sessions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/admin/sessions/{session_id}/policy");
    let policy = json!({
        "tiers": ["BASIC", "GOLD"],
        "max_units_per_user": 2,
        "presales": [{"min_tier": "GOLD", "opens_at": now}],
        "grade_rules": [{"grade": "VIP", "min_tier": "GOLD"}],
        "queue": {"require_admission": true, "max_active": 50,
                  "max_admissions_per_minute": 100, "max_waiting": 5000},
    });
    let set = call(
        &server,
        "PUT",
        &path,
        Some(&admin),
        &[],
        Some(&policy.to_string()),
    )
    .await;
    assert_eq!(set.status, 200, "{set:?}");
    // a flag left out takes its default, and the answer shows it
    let mut answered = policy.clone();
    answered["queue"]["presale_skips_queue"] = json!(false);
    // and the refund policy left out is the default: free cancellation until the start
    answered["refund"] = json!({
        "cancel_until_before_start_secs": 0,
        "tiers": [{"before_start_secs": 0, "fee_bps": 0}],
    });
    assert_eq!(set.json, answered);
    let sid: SessionId = session_id.parse().expect("session id");
    let stored = server
        .state
        .rush
        .stores()
        .policies
        .policy(sid)
        .await
        .expect("policy");
    assert_eq!(stored.max_units_per_user, Some(2));

    // Fields left out take their defaults.
    let partial = call(
        &server,
        "PUT",
        &path,
        Some(&admin),
        &[],
        Some(r#"{"max_units_per_user": 6}"#),
    )
    .await;
    assert_eq!(partial.status, 200, "{partial:?}");
    assert_eq!(partial.json["max_units_per_user"], 6);
    assert_eq!(partial.json["tiers"], json!([]));
    let in_force = partial.json.clone();

    let bad = |body: &'static str| {
        let (server, path, admin) = (&server, &path, &admin);
        async move { call(server, "PUT", path, Some(admin), &[], Some(body)).await }
    };
    assert_error(
        &bad(r#"{"max_units_per_user": 0}"#).await,
        422,
        "VALIDATION",
    );
    assert_error(
        &bad(r#"{"tiers": ["GOLD"], "presales": [{"min_tier": "PLATINUM", "opens_at": 0}]}"#).await,
        422,
        "VALIDATION",
    );
    assert_error(
        &bad(r#"{"tiers": ["GOLD", "GOLD"]}"#).await,
        422,
        "VALIDATION",
    );
    assert_error(
        &bad(r#"{"max_units_per_user": "two"}"#).await,
        400,
        "VALIDATION",
    );
    assert_error(&bad(r#"{"max_units_per_user": "#).await, 400, "VALIDATION");
    // Presales must open before public sales (which open in an hour).
    let late = format!(
        r#"{{"tiers": ["GOLD"], "presales": [{{"min_tier": "GOLD", "opens_at": {}}}]}}"#,
        now + 2 * HOUR
    );
    let a = call(&server, "PUT", &path, Some(&admin), &[], Some(&late)).await;
    assert_error(&a, 422, "VALIDATION");
    let ok = r#"{"max_units_per_user": 1}"#;
    assert_error(
        &call(&server, "PUT", &path, Some(&user), &[], Some(ok)).await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &call(&server, "PUT", &path, None, &[], Some(ok)).await,
        401,
        "UNAUTHORIZED",
    );
    // Unknown fields (top level or nested) are refused, not ignored; out-of-range numbers
    // too; the policy in force stays as it was (checked at the end).
    for body in [
        r#"{"max_units_per_user": 3, "max_units_per_usr": 1}"#,
        r#"{"queue": {"require_admission": true, "max_active": 5, "max_admissions_per_minute": 5, "max_waiting": null, "burst": 9}}"#,
        r#"{"presales": [{"min_tier": "GOLD", "opens_at": 0, "tier": "GOLD"}], "tiers": ["GOLD"]}"#,
        r#"{"grade_rules": [{"grade": "GA", "min_tier": "GOLD", "x": 1}], "tiers": ["GOLD"]}"#,
    ] {
        assert_error(&bad(body).await, 400, "VALIDATION");
    }
    for body in [
        r#"{"queue": {"require_admission": true, "max_active": 5, "max_admissions_per_minute": 10000001, "max_waiting": null}}"#,
        r#"{"queue": {"require_admission": true, "max_active": 1000001, "max_admissions_per_minute": 5, "max_waiting": null}}"#,
        r#"{"max_units_per_user": 10001}"#,
    ] {
        assert_error(&bad(body).await, 422, "VALIDATION");
    }
    let unknown = format!(
        "/api/admin/sessions/{}/policy",
        SessionId::new_at(Timestamp::from_millis(now))
    );
    assert_error(
        &call(&server, "PUT", &unknown, Some(&admin), &[], Some(ok)).await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &call(
            &server,
            "PUT",
            "/api/admin/sessions/not-an-id/policy",
            Some(&admin),
            &[],
            Some(ok),
        )
        .await,
        400,
        "VALIDATION",
    );

    // Nothing changed.
    let stored = server
        .state
        .rush
        .stores()
        .policies
        .policy(sid)
        .await
        .expect("policy");
    assert_eq!(serde_json::to_value(&stored).expect("json"), in_force);
}

/// Listing: search, status and date filters, paging; bad queries answer 400.
async fn listing_searches_filters_by_status_and_date_and_pages(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let now = now_ms(&server);
    // On sale (starts in a day), upcoming (starts in ~3 days), closed (started).
    for (name, open) in [
        ("Rust Conf Live", now - HOUR),
        ("Jazz Night", now + 2 * DAY),
        ("Rust Meetup Archive", now - 3 * DAY),
    ] {
        let a = post_event(&server, Some(&admin), &ga_event(name, open)).await;
        assert_eq!(a.status, 201, "{a:?}");
    }

    let all = get(&server, "/api/events").await;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!(
        (&all.json["total"], &all.json["page"], &all.json["per_page"]),
        (&json!(3), &json!(1), &json!(20))
    );
    // Earliest session first.
    assert_eq!(
        names(&all),
        ["Rust Meetup Archive", "Rust Conf Live", "Jazz Night"]
    );

    let rust = get(&server, "/api/events?q=RUST").await;
    assert_eq!(names(&rust), ["Rust Meetup Archive", "Rust Conf Live"]);
    let spaced = get(&server, "/api/events?q=conf%20live").await;
    assert_eq!(names(&spaced), ["Rust Conf Live"]);
    let none = get(&server, "/api/events?q=opera").await;
    assert_eq!((names(&none).len(), &none.json["total"]), (0, &json!(0)));

    for (status, expected) in [
        ("on_sale", "Rust Conf Live"),
        ("upcoming", "Jazz Night"),
        ("closed", "Rust Meetup Archive"),
    ] {
        let a = get(&server, &format!("/api/events?status={status}")).await;
        assert_eq!(names(&a), [expected], "status={status}");
        assert_eq!(a.json["items"][0]["status"], status);
    }
    let a = get(&server, "/api/events?q=rust&status=on_sale").await;
    assert_eq!(names(&a), ["Rust Conf Live"]);

    // Dates: sessions start at now-2d+1h, now+1d, now+3d+1h.
    let a = get(&server, &format!("/api/events?from={now}")).await;
    assert_eq!(names(&a), ["Rust Conf Live", "Jazz Night"]);
    let a = get(
        &server,
        &format!("/api/events?from={now}&to={}", now + 2 * DAY),
    )
    .await;
    assert_eq!(names(&a), ["Rust Conf Live"]);
    let a = get(&server, &format!("/api/events?to={now}")).await;
    assert_eq!(names(&a), ["Rust Meetup Archive"]);

    // Paging.
    let p1 = get(&server, "/api/events?per_page=2").await;
    assert_eq!(names(&p1), ["Rust Meetup Archive", "Rust Conf Live"]);
    assert_eq!(p1.json["total"], 3);
    let p2 = get(&server, "/api/events?per_page=2&page=2").await;
    assert_eq!(names(&p2), ["Jazz Night"]);
    assert_eq!(
        (&p2.json["page"], &p2.json["per_page"]),
        (&json!(2), &json!(2))
    );
    let p3 = get(&server, "/api/events?per_page=2&page=3").await;
    assert_eq!((names(&p3).len(), &p3.json["total"]), (0, &json!(3)));

    for bad in [
        "per_page=0",
        "per_page=101",
        "page=0",
        "page=-1",
        "status=soon",
        "page=1000001",
        "from=tomorrow",
        "colour=red",
    ] {
        let a = get(&server, &format!("/api/events?{bad}")).await;
        assert_error(&a, 400, "VALIDATION");
    }
    // `from` after `to` is a valid query of an empty range (the schema cannot forbid it).
    let empty = get(&server, "/api/events?from=10&to=5").await;
    assert_eq!((empty.status, &empty.json["total"]), (200, &json!(0)));
}

/// Malformed (400) or refused (422) events, and non-admins, create nothing.
async fn bad_event_definitions_answer_the_documented_error_and_create_nothing(kind: Kind) {
    let server = server(kind, &[]).await;
    let admin = admin_token(&server).await;
    let user = user_token(&server).0;
    let now = now_ms(&server);
    let grade = |capacity: Value, price: Value, currency: &str| {
        json!({"name": "Show", "sessions": [ga_session(now, json!([
            {"grade": "GA", "capacity": capacity, "price_minor": price, "currency": currency}
        ]))]})
    };

    // Malformed JSON, wrong types, missing or unknown fields: 400.
    for raw in [
        "{",
        "not json",
        r#"{"name": 42, "sessions": []}"#,
        r#"{"sessions": []}"#,
        r#"{"name": "Show", "sessions": {}, "extra": 1}"#,
    ] {
        let a = call(
            &server,
            "POST",
            "/api/admin/events",
            Some(&admin),
            &[],
            Some(raw),
        )
        .await;
        assert_error(&a, 400, "VALIDATION");
    }
    for body in [
        grade(json!("ten"), json!(100), "KRW"),
        grade(json!(-1), json!(100), "KRW"),
        grade(json!(5_000_000_000u64), json!(100), "KRW"),
        grade(json!(10), json!(1.5), "KRW"),
    ] {
        assert_error(
            &post_event(&server, Some(&admin), &body).await,
            400,
            "VALIDATION",
        );
    }
    // Without a JSON content type.
    let a = call(
        &server,
        "POST",
        "/api/admin/events",
        Some(&admin),
        &[("content-type", "text/plain")],
        None,
    )
    .await;
    assert_error(&a, 400, "VALIDATION");

    // Well-formed but refused by the rules: 422.
    let seat = |id: &str| json!({"id": id, "section": "Floor", "grade": "R", "price_minor": 1000, "currency": "KRW"});
    let refused = [
        grade(json!(0), json!(100), "KRW"),
        grade(json!(10), json!(-1), "KRW"),
        grade(json!(10), json!(100), "krw"),
        grade(json!(10), json!(100), "EURO"),
        json!({"name": "  ", "sessions": [ga_session(now, json!([
            {"grade": "GA", "capacity": 1, "price_minor": 1, "currency": "KRW"}]))]}),
        json!({"name": "No sessions", "sessions": []}),
        json!({"name": "Seats twice", "sessions": [seated_session(now, json!([seat("A-1"), seat("A-1")]))]}),
        json!({"name": "No seats", "sessions": [seated_session(now, json!([]))]}),
        json!({"name": "Bad seat", "sessions": [seated_session(now, json!([seat("A 1")]))]}),
        json!({"name": "Both", "sessions": [{
            "starts_at": now + 2 * DAY, "sales_open_at": now, "sales_close_at": now + DAY,
            "grades": [{"grade": "GA", "capacity": 1, "price_minor": 1, "currency": "KRW"}],
            "seats": [seat("A-1")]}]}),
        json!({"name": "Neither", "sessions": [{
            "starts_at": now + 2 * DAY, "sales_open_at": now, "sales_close_at": now + DAY}]}),
        json!({"name": "Closes after start", "sessions": [{
            "starts_at": now + DAY, "sales_open_at": now, "sales_close_at": now + 2 * DAY,
            "grades": [{"grade": "GA", "capacity": 1, "price_minor": 1, "currency": "KRW"}]}]}),
        json!({"name": "Two currencies", "sessions": [ga_session(now, json!([
            {"grade": "GA", "capacity": 1, "price_minor": 1, "currency": "KRW"},
            {"grade": "VIP", "capacity": 1, "price_minor": 1, "currency": "USD"}]))]}),
    ];
    for body in &refused {
        let a = post_event(&server, Some(&admin), body).await;
        assert_error(&a, 422, "VALIDATION");
    }

    // Not an admin, or no token at all, even with a good body.
    let good = ga_event("Good Show", now);
    assert_error(
        &post_event(&server, Some(&user), &good).await,
        403,
        "FORBIDDEN",
    );
    assert_error(&post_event(&server, None, &good).await, 401, "UNAUTHORIZED");
    assert_error(
        &post_event(&server, Some("forged.token.here"), &good).await,
        401,
        "UNAUTHORIZED",
    );

    // Nothing was created.
    assert_eq!(listed_total(&server).await, 0);
    let a = post_event(&server, Some(&admin), &good).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(listed_total(&server).await, 1);
}

/// Unknown ids answer 404, malformed ones 400.
async fn unknown_and_malformed_ids_answer_404_and_400(kind: Kind) {
    let server = server(kind, &[]).await;
    let unknown_event = EventId::new_at(server.state.clock.now());
    let unknown_session = SessionId::new_at(server.state.clock.now());
    for path in [
        format!("/api/events/{unknown_event}"),
        format!("/api/sessions/{unknown_session}"),
        format!("/api/sessions/{unknown_session}/seats"),
        // An event id is not a session id, nor the other way round.
        format!("/api/sessions/{unknown_event}"),
    ] {
        assert_error(&get(&server, &path).await, 404, "NOT_FOUND");
    }
    for path in [
        "/api/events/42",
        "/api/events/not-a-uuid",
        "/api/sessions/xyz",
        "/api/sessions/xyz/seats",
    ] {
        assert_error(&get(&server, path).await, 400, "VALIDATION");
    }
}

/// The demo event is created once per namespace and is on sale.
async fn the_demo_event_is_on_sale_once_per_namespace(kind: Kind) {
    let s = server(kind, &[]).await;
    let first = ticket_server::runtime::demo::ensure_demo_event(&s.state)
        .await
        .expect("demo");
    let again = ticket_server::runtime::demo::ensure_demo_event(&s.state)
        .await
        .expect("again");
    assert_eq!(first, again, "a second start keeps the stored event");
    assert_eq!(
        first.id,
        ticket_server::runtime::demo::demo_event_id(&s.state.config.namespace)
    );
    let listed = call(&s, "GET", "/api/events?status=on_sale", None, &[], None).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(
        listed.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["id"] == first.id.to_string()),
        "{listed:?}"
    );
    let ga = first.sessions[0].id;
    let session = call(&s, "GET", &format!("/api/sessions/{ga}"), None, &[], None).await;
    assert_eq!(session.json["grades"][0]["available"], 100, "{session:?}");
    let seated = first.sessions[1].id;
    let seats = call(
        &s,
        "GET",
        &format!("/api/sessions/{seated}/seats"),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(seats.json.as_array().map(Vec::len), Some(40), "{seats:?}");
}

common::on_all_backends!(
    admins_create_ga_and_seated_events_and_everyone_reads_them,
    the_seat_map_and_counters_follow_holds,
    admins_set_a_sessions_policy_and_bad_policies_change_nothing,
    listing_searches_filters_by_status_and_date_and_pages,
    bad_event_definitions_answer_the_documented_error_and_create_nothing,
    unknown_and_malformed_ids_answer_404_and_400,
    the_demo_event_is_on_sale_once_per_namespace,
);
