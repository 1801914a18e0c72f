//! Tickets over HTTP on every backend (memory, Redis, PostgreSQL): a buyer lists the
//! tickets of their confirmed reservations with signed codes; the gate (an admin) admits
//! each ticket once; forged, tampered and cancelled tickets are refused without marking
//! anything; strangers see nothing of anyone else's.

mod common;

use common::{Answer, Kind, Server, admin_token, buy, call, ga_session, server, user_token};
use ticket_core::SessionId;
use ticket_server::services::tickets::{TicketClaims, TicketId, TicketSigner};

async fn my_tickets(server: &Server, token: &str) -> Vec<serde_json::Value> {
    let answer = call(server, "GET", "/api/me/tickets", Some(token), &[], None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json["tickets"].as_array().unwrap().clone()
}

/// A scan of `code` at the gate of `session`.
async fn verify_at(server: &Server, token: Option<&str>, code: &str, session: SessionId) -> Answer {
    let body = serde_json::json!({ "code": code, "session_id": session.to_string() }).to_string();
    call(
        server,
        "POST",
        "/api/tickets/verify",
        token,
        &[],
        Some(&body),
    )
    .await
}

fn error_code(answer: &Answer) -> (u16, Option<&str>) {
    (answer.status, answer.json["error"]["code"].as_str())
}

/// How many tickets the store has marked used, of `ids`.
async fn used_count(server: &Server, ids: &[&str]) -> usize {
    let mut n = 0;
    for id in ids {
        let id: TicketId = id.parse().unwrap();
        let marks = server.state.rush.gate.check_ins(id.hold()).await.unwrap();
        n += marks.iter().filter(|m| m.ticket == id.number()).count();
    }
    n
}

/// `code` with one character of its payload changed.
fn tampered(code: &str) -> String {
    let mut bytes = code.as_bytes().to_vec();
    let i = 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A buyer's tickets carry signed codes; the gate admits each once; refusals mark nothing.
async fn buyers_list_tickets_and_the_gate_admits_each_once(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 10).await;
    let gate = admin_token(&s).await;
    let (me, me_id) = user_token(&s);
    let (other, _) = user_token(&s);
    let hold = buy(&s, session, &me, "buy-1", 2).await.0;
    // an unpaid hold has no tickets
    let joined = call(
        &s,
        "POST",
        &format!("/api/sessions/{session}/queue"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(joined.json["status"], "active", "{joined:?}");
    let unpaid = call(
        &s,
        "POST",
        "/api/holds",
        Some(&me),
        &[("idempotency-key", "hold-2")],
        Some(&format!(
            r#"{{"session_id":"{session}","grade":"GA","quantity":1}}"#
        )),
    )
    .await;
    assert_eq!(unpaid.status, 201, "{unpaid:?}");

    let tickets = my_tickets(&s, &me).await;
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    for (i, t) in tickets.iter().enumerate() {
        assert_eq!(t["ticket_id"], format!("{hold}-{}", i + 1));
        assert_eq!(t["reservation_id"], hold.as_str());
        assert_eq!(t["session_id"], session.to_string());
        assert_eq!(t["grade"], "GA");
        assert_eq!(t["seat"], serde_json::Value::Null);
        assert_eq!(t["status"], "valid");
        assert_eq!(t["used_at"], serde_json::Value::Null);
        assert!(t["code"].as_str().unwrap().starts_with("TR1."), "{t}");
    }
    let (t1, t2) = (&tickets[0], &tickets[1]);
    let (id1, id2) = (
        t1["ticket_id"].as_str().unwrap(),
        t2["ticket_id"].as_str().unwrap(),
    );
    let (code1, code2) = (t1["code"].as_str().unwrap(), t2["code"].as_str().unwrap());
    assert_ne!(code1, code2);
    assert_eq!(my_tickets(&s, &me).await, tickets, "codes are stable");
    // nobody else sees them
    assert!(my_tickets(&s, &other).await.is_empty());
    assert_eq!(
        error_code(&call(&s, "GET", "/api/me/tickets", None, &[], None).await),
        (401, Some("UNAUTHORIZED"))
    );

    // Refusals mark nothing.
    assert_eq!(
        error_code(&verify_at(&s, Some(&me), code1, session).await),
        (403, Some("FORBIDDEN")),
        "a buyer is not a gate"
    );
    assert_eq!(
        error_code(&verify_at(&s, None, code1, session).await),
        (401, Some("UNAUTHORIZED"))
    );
    let foreign =
        TicketSigner::from_secret(b"another deployment's secret, 32+ bytes").sign(&TicketClaims {
            ticket: id1.parse().unwrap(),
            session,
            user: ticket_core::UserId::new(me_id.clone()).unwrap(),
        });
    let (head1, _) = code1.rsplit_once('.').unwrap();
    let (_, sig2) = code2.rsplit_once('.').unwrap();
    for bad in [
        tampered(code1),
        format!("{}x", code1),
        format!("{head1}.{sig2}"),
        foreign,
        "garbage".into(),
        String::new(),
        code1.replacen("TR1", "TR2", 1),
    ] {
        let refused = verify_at(&s, Some(&gate), &bad, session).await;
        assert_eq!(
            error_code(&refused),
            (422, Some("INVALID_TICKET")),
            "{bad}: {refused:?}"
        );
    }
    let with_session = |rest: &str| format!(r#"{{"session_id":"{session}",{rest}}}"#);
    for body in [
        "{}".to_owned(),
        with_session(r#""code":1"#),
        with_session(r#""code":"x","extra":1"#),
        "not json".to_owned(),
        // the session being checked in is required, and must be an id
        format!(r#"{{"code":"{code1}"}}"#),
        format!(r#"{{"code":"{code1}","session_id":"not-a-session"}}"#),
        format!(r#"{{"code":"{code1}","session_id":null}}"#),
    ] {
        let refused = call(
            &s,
            "POST",
            "/api/tickets/verify",
            Some(&gate),
            &[],
            Some(&body),
        )
        .await;
        assert_eq!(
            error_code(&refused),
            (400, Some("VALIDATION")),
            "{body}: {refused:?}"
        );
    }
    assert_eq!(
        used_count(&s, &[id1, id2]).await,
        0,
        "refusals marked nothing"
    );
    assert!(
        my_tickets(&s, &me)
            .await
            .iter()
            .all(|t| t["status"] == "valid")
    );

    // The first scan admits, the second says when.
    let before = s.state.clock.now().as_millis();
    let first = verify_at(&s, Some(&gate), code1, session).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["valid"], true);
    assert_eq!(first.json["first_use"], true);
    assert_eq!(first.json["ticket_id"], id1);
    assert_eq!(first.json["reservation_id"], hold.as_str());
    assert_eq!(first.json["session_id"], session.to_string());
    assert_eq!(first.json["user_id"], me_id.as_str());
    assert_eq!(first.json["grade"], "GA");
    let used_at = first.json["used_at"].as_i64().unwrap();
    assert!(used_at >= before, "{first:?}");
    let again = verify_at(&s, Some(&gate), code1, session).await;
    assert_eq!(
        error_code(&again),
        (409, Some("TICKET_ALREADY_USED")),
        "{again:?}"
    );
    let message = again.json["error"]["message"].as_str().unwrap();
    assert!(message.contains(&used_at.to_string()), "{message}");
    assert!(message.contains('T') && message.contains('Z'), "{message}");
    assert_eq!(used_count(&s, &[id1, id2]).await, 1);

    let listed = my_tickets(&s, &me).await;
    assert_eq!(listed[0]["status"], "used");
    assert_eq!(listed[0]["used_at"], used_at);
    assert_eq!(listed[1]["status"], "valid", "the other ticket is its own");
    assert_eq!(listed[0]["code"], code1, "the code does not change");
    // a tampered copy of a used code is still refused as invalid
    assert_eq!(
        error_code(&verify_at(&s, Some(&gate), &tampered(code1), session).await),
        (422, Some("INVALID_TICKET"))
    );
    // the second ticket, scanned with surrounding whitespace from a scanner
    let second = verify_at(&s, Some(&gate), &format!(" {code2}\n"), session).await;
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(second.json["ticket_id"], id2);
}

/// A cancelled reservation has no tickets, and its codes are refused.
async fn a_cancelled_reservations_tickets_are_not_valid(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let gate = admin_token(&s).await;
    let (me, _) = user_token(&s);
    let hold = buy(&s, session, &me, "buy", 1).await.0;
    let tickets = my_tickets(&s, &me).await;
    assert_eq!(tickets.len(), 1);
    let code = tickets[0]["code"].as_str().unwrap().to_owned();
    let id = tickets[0]["ticket_id"].as_str().unwrap().to_owned();

    let cancelled = call(
        &s,
        "POST",
        &format!("/api/reservations/{hold}/cancel"),
        Some(&me),
        &[("idempotency-key", "cancel")],
        None,
    )
    .await;
    assert_eq!(cancelled.json["status"], "refunded", "{cancelled:?}");
    assert!(
        my_tickets(&s, &me).await.is_empty(),
        "no ticket of a cancelled reservation"
    );
    for _ in 0..2 {
        let refused = verify_at(&s, Some(&gate), &code, session).await;
        assert_eq!(
            error_code(&refused),
            (409, Some("TICKET_NOT_VALID")),
            "{refused:?}"
        );
        assert!(
            refused.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("refunded"),
            "{refused:?}"
        );
    }
    assert_eq!(used_count(&s, &[&id]).await, 0, "nothing marked");

    // A genuine code of a reservation this deployment does not know.
    let (stranger, stranger_id) = user_token(&s);
    let unknown = s.state.ticket_codes.sign(&TicketClaims {
        ticket: TicketId::new(ticket_core::HoldId::new_at(s.state.clock.now()), 1).unwrap(),
        session,
        user: ticket_core::UserId::new(stranger_id).unwrap(),
    });
    assert_eq!(
        error_code(&verify_at(&s, Some(&gate), &unknown, session).await),
        (409, Some("TICKET_NOT_VALID"))
    );
    assert!(my_tickets(&s, &stranger).await.is_empty());
}

/// A genuinely signed code for a unit, session or user the reservation does not have is
/// refused.
async fn a_genuine_code_must_match_its_reservation(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let gate = admin_token(&s).await;
    let (me, me_id) = user_token(&s);
    let hold: ticket_core::HoldId = buy(&s, session, &me, "buy", 1).await.0.parse().unwrap();
    let me_id = ticket_core::UserId::new(me_id).unwrap();
    let sign = |ticket: TicketId, session: SessionId, user: &ticket_core::UserId| {
        s.state.ticket_codes.sign(&TicketClaims {
            ticket,
            session,
            user: user.clone(),
        })
    };
    let other_session = SessionId::new_at(s.state.clock.now());
    let other_user = ticket_core::UserId::new("someone-else").unwrap();
    for code in [
        // a unit the reservation does not have
        sign(TicketId::new(hold, 2).unwrap(), session, &me_id),
        sign(TicketId::new(hold, 1).unwrap(), other_session, &me_id),
        sign(TicketId::new(hold, 1).unwrap(), session, &other_user),
    ] {
        let refused = verify_at(&s, Some(&gate), &code, session).await;
        assert_eq!(
            error_code(&refused),
            (409, Some("TICKET_NOT_VALID")),
            "{refused:?}"
        );
    }
    assert!(s.state.rush.gate.check_ins(hold).await.unwrap().is_empty());
    let good = sign(TicketId::new(hold, 1).unwrap(), session, &me_id);
    assert_eq!(verify_at(&s, Some(&gate), &good, session).await.status, 200);
}

/// Sixteen gates scanning one code at once admit it once.
async fn racing_gates_admit_a_ticket_once(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let gate = admin_token(&s).await;
    let (me, _) = user_token(&s);
    buy(&s, session, &me, "buy", 1).await;
    let code = my_tickets(&s, &me).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = std::sync::Arc::new(s);
    let scans: Vec<_> = (0..16)
        .map(|_| {
            let (s, gate, code) = (s.clone(), gate.clone(), code.clone());
            tokio::spawn(async move { verify_at(&s, Some(&gate), &code, session).await })
        })
        .collect();
    let mut admitted = 0;
    for scan in scans {
        let answer = scan.await.unwrap();
        match answer.status {
            200 => admitted += 1,
            _ => assert_eq!(
                error_code(&answer),
                (409, Some("TICKET_ALREADY_USED")),
                "{answer:?}"
            ),
        }
    }
    assert_eq!(admitted, 1, "exactly one gate lets the holder in");
}

/// A ticket scanned at another session's gate is refused with 409 `WRONG_SESSION` and
/// marks nothing, whatever the state of its reservation; at its own gate it goes in.
async fn a_ticket_is_valid_only_at_its_own_session(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let elsewhere = ga_session(&s, 3).await;
    let gate = admin_token(&s).await;
    let (me, _) = user_token(&s);
    buy(&s, session, &me, "buy", 2).await;
    let tickets = my_tickets(&s, &me).await;
    let code = tickets[0]["code"].as_str().unwrap().to_owned();
    let id = tickets[0]["ticket_id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let refused = verify_at(&s, Some(&gate), &code, elsewhere).await;
        assert_eq!(
            error_code(&refused),
            (409, Some("WRONG_SESSION")),
            "{refused:?}"
        );
        assert!(
            refused.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&session.to_string()),
            "the message names the ticket's session: {refused:?}"
        );
    }
    assert_eq!(used_count(&s, &[&id]).await, 0, "nothing marked");
    assert!(
        my_tickets(&s, &me)
            .await
            .iter()
            .all(|t| t["status"] == "valid")
    );
    // at its own session it goes in, once; another session's gate still refuses it
    assert_eq!(verify_at(&s, Some(&gate), &code, session).await.status, 200);
    assert_eq!(
        error_code(&verify_at(&s, Some(&gate), &code, elsewhere).await),
        (409, Some("WRONG_SESSION"))
    );
    assert_eq!(used_count(&s, &[&id]).await, 1);
}

/// A scan and the holder's cancellation of the same reservation, raced over HTTP: in every
/// round exactly one wins (admitted and kept, or refunded and refused at the gate).
async fn a_scan_and_a_cancellation_never_both_win(kind: Kind) {
    let s = std::sync::Arc::new(server(kind, &[]).await);
    const ROUNDS: usize = 12;
    let session = ga_session(&s, ROUNDS as u32).await;
    let gate = admin_token(&s).await;
    let mut scans_won = 0u64;
    for round in 0..ROUNDS {
        let (me, _) = user_token(&s);
        let hold = buy(&s, session, &me, &format!("buy-{round}"), 1).await.0;
        let code = my_tickets(&s, &me).await[0]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let scan = {
            let (s, gate) = (s.clone(), gate.clone());
            tokio::spawn(async move { verify_at(&s, Some(&gate), &code, session).await })
        };
        let cancel = {
            let s = s.clone();
            tokio::spawn(async move {
                call(
                    &s,
                    "POST",
                    &format!("/api/reservations/{hold}/cancel"),
                    Some(&me),
                    &[("idempotency-key", "cancel")],
                    None,
                )
                .await
            })
        };
        let (scan, cancel) = (scan.await.unwrap(), cancel.await.unwrap());
        match (scan.status, cancel.status) {
            (200, 409) => {
                assert_eq!(
                    error_code(&cancel).1,
                    Some("TICKET_ALREADY_USED"),
                    "{cancel:?}"
                );
                scans_won += 1;
            }
            (409, 200) => {
                assert_eq!(error_code(&scan).1, Some("TICKET_NOT_VALID"), "{scan:?}");
                assert_eq!(cancel.json["status"], "refunded", "{cancel:?}");
            }
            _ => panic!("round {round}: scan {scan:?} and cancel {cancel:?}"),
        }
    }
    let (available, held, sold) = common::totals(&s, session).await;
    assert_eq!(
        (available, held, sold),
        (ROUNDS as u64 - scans_won, 0, scans_won)
    );
}

/// A `GATE` account (role granted by an admin through the API) scans tickets and can do
/// nothing else: it cannot queue, hold, pay, top up, or use an admin route.
async fn a_gate_account_scans_tickets_and_nothing_else(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 3).await;
    let admin = admin_token(&s).await;
    let creds = r#"{"email":"gate-staff@example.com","password":"correct horse battery 9"}"#;
    let signup = call(&s, "POST", "/api/auth/signup", None, &[], Some(creds)).await;
    assert_eq!(signup.status, 201, "{signup:?}");
    let id = signup.json["id"].as_str().unwrap().to_owned();
    let granted = call(
        &s,
        "PUT",
        &format!("/api/admin/users/{id}/role"),
        Some(&admin),
        &[],
        Some(r#"{"role":"GATE"}"#),
    )
    .await;
    assert_eq!(granted.status, 200, "{granted:?}");
    let login = call(&s, "POST", "/api/auth/login", None, &[], Some(creds)).await;
    assert_eq!(login.status, 200, "{login:?}");
    let gate = login.json["access_token"].as_str().unwrap().to_owned();

    let (me, _) = user_token(&s);
    buy(&s, session, &me, "buy", 1).await;
    let code = my_tickets(&s, &me).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(verify_at(&s, Some(&gate), &code, session).await.status, 200);

    let sid = session.to_string();
    let hold = format!(r#"{{"session_id":"{sid}","grade":"GA","quantity":1}}"#);
    let refused = [
        ("POST", format!("/api/sessions/{sid}/queue"), None),
        ("POST", "/api/holds".to_owned(), Some(hold)),
        (
            "POST",
            "/api/me/wallet/topups".to_owned(),
            Some(r#"{"amount":1000,"card_number":"4242424242424242"}"#.to_owned()),
        ),
        ("GET", format!("/api/admin/sessions/{sid}/stats"), None),
        (
            "GET",
            "/api/admin/users?email=gate-staff@example.com".to_owned(),
            None,
        ),
        (
            "PUT",
            format!("/api/admin/users/{id}/role"),
            Some(r#"{"role":"ADMIN"}"#.to_owned()),
        ),
    ];
    for (method, path, body) in refused {
        let a = call(
            &s,
            method,
            &path,
            Some(&gate),
            &[("idempotency-key", "gate-tries")],
            body.as_deref(),
        )
        .await;
        assert_eq!(
            error_code(&a),
            (403, Some("FORBIDDEN")),
            "{method} {path}: {a:?}"
        );
    }
    let (available, held, sold) = common::totals(&s, session).await;
    assert_eq!(
        (available, held, sold),
        (2, 0, 1),
        "the gate account took nothing"
    );
}

common::on_all_backends!(
    a_gate_account_scans_tickets_and_nothing_else,
    a_ticket_is_valid_only_at_its_own_session,
    a_scan_and_a_cancellation_never_both_win,
    buyers_list_tickets_and_the_gate_admits_each_once,
    a_cancelled_reservations_tickets_are_not_valid,
    a_genuine_code_must_match_its_reservation,
    racing_gates_admit_a_ticket_once,
);
