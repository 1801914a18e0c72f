//! Tickets over HTTP on every backend (memory, Redis, PostgreSQL): a buyer lists the
//! tickets of their confirmed reservations with signed codes; the gate (an admin) admits
//! each ticket once; forged, tampered and cancelled tickets are refused without marking
//! anything; strangers see nothing of anyone else's.

mod common;

use common::{Answer, Kind, Server, admin_token, buy, call, ga_session, server, user_token};
use ticket_core::SessionId;
use ticket_server::tickets::{TicketClaims, TicketId, TicketSigner};

async fn my_tickets(server: &Server, token: &str) -> Vec<serde_json::Value> {
    let answer = call(server, "GET", "/api/me/tickets", Some(token), &[], None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json["tickets"].as_array().unwrap().clone()
}

async fn verify(server: &Server, token: Option<&str>, code: &str) -> Answer {
    let body = serde_json::json!({ "code": code }).to_string();
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
    let ids: Vec<TicketId> = ids.iter().map(|t| t.parse().unwrap()).collect();
    server.state.tickets.used(&ids).await.unwrap().len()
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
        error_code(&verify(&s, Some(&me), code1).await),
        (403, Some("FORBIDDEN")),
        "a buyer is not a gate"
    );
    assert_eq!(
        error_code(&verify(&s, None, code1).await),
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
        let refused = verify(&s, Some(&gate), &bad).await;
        assert_eq!(
            error_code(&refused),
            (422, Some("INVALID_TICKET")),
            "{bad}: {refused:?}"
        );
    }
    for body in [
        "{}",
        r#"{"code":1}"#,
        r#"{"code":"x","extra":1}"#,
        "not json",
    ] {
        let refused = call(
            &s,
            "POST",
            "/api/tickets/verify",
            Some(&gate),
            &[],
            Some(body),
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
    let first = verify(&s, Some(&gate), code1).await;
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
    let again = verify(&s, Some(&gate), code1).await;
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
        error_code(&verify(&s, Some(&gate), &tampered(code1)).await),
        (422, Some("INVALID_TICKET"))
    );
    // the second ticket, scanned with surrounding whitespace from a scanner
    let second = verify(&s, Some(&gate), &format!(" {code2}\n")).await;
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
        let refused = verify(&s, Some(&gate), &code).await;
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
        error_code(&verify(&s, Some(&gate), &unknown).await),
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
        let refused = verify(&s, Some(&gate), &code).await;
        assert_eq!(
            error_code(&refused),
            (409, Some("TICKET_NOT_VALID")),
            "{refused:?}"
        );
    }
    let all = [
        TicketId::new(hold, 1).unwrap(),
        TicketId::new(hold, 2).unwrap(),
    ];
    assert!(s.state.tickets.used(&all).await.unwrap().is_empty());
    let good = sign(TicketId::new(hold, 1).unwrap(), session, &me_id);
    assert_eq!(verify(&s, Some(&gate), &good).await.status, 200);
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
            tokio::spawn(async move { verify(&s, Some(&gate), &code).await })
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

common::on_all_backends!(
    buyers_list_tickets_and_the_gate_admits_each_once,
    a_cancelled_reservations_tickets_are_not_valid,
    a_genuine_code_must_match_its_reservation,
    racing_gates_admit_a_ticket_once,
);
