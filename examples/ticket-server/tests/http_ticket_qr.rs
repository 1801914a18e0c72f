//! `GET /api/me/tickets/{id}/qr.svg` on every backend: the SVG is XML with an `<svg>` root,
//! and an independent decoder (`rqrr`) reads back from it exactly the signed code that
//! `GET /api/me/tickets` lists and the gate admits; only the ticket's owner gets it, anyone
//! else gets the answer of a ticket that does not exist; a reservation that is not
//! CONFIRMED (held, cancelled) has none; the answer is never stored by a cache.

mod common;

use common::user_token;
use common::{Answer, Kind, Server, admin_token, buy, call, ga_session, join_and_hold, server};
use ticket_core::SessionId;

/// The QR route's raw answer: status, headers and body text.
struct Qr {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Qr {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

async fn qr(s: &Server, token: Option<&str>, ticket: &str) -> Qr {
    let mut req = reqwest::Client::new().get(format!("{}/api/me/tickets/{ticket}/qr.svg", s.url));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.expect("request");
    Qr {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.expect("body"),
    }
}

async fn my_tickets(s: &Server, token: &str) -> Vec<serde_json::Value> {
    let answer = call(s, "GET", "/api/me/tickets", Some(token), &[], None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json["tickets"].as_array().expect("tickets").clone()
}

async fn verify_at(s: &Server, token: &str, code: &str, session: SessionId) -> Answer {
    let body = serde_json::json!({ "code": code, "session_id": session.to_string() }).to_string();
    call(
        s,
        "POST",
        "/api/tickets/verify",
        Some(token),
        &[],
        Some(&body),
    )
    .await
}

fn error_of(qr: &Qr) -> (u16, String) {
    (
        qr.status,
        qr.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The text the QR code drawn by `svg` holds, read by `rqrr`: the SVG is parsed as XML,
/// its one path of dark modules rasterised (8 pixels a module, quiet zone white).
fn decode_svg(svg: &str) -> String {
    let doc = roxmltree::Document::parse(svg).expect("the answer is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "the root is <svg>");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let view_box: Vec<usize> = root
        .attribute("viewBox")
        .expect("a viewBox")
        .split(' ')
        .map(|n| n.parse().expect("a whole number"))
        .collect();
    let &[0, 0, size, height] = view_box.as_slice() else {
        panic!("viewBox {view_box:?}");
    };
    assert_eq!(size, height, "square");
    let mut dark = vec![vec![false; size]; size];
    let mut paths = 0;
    for node in root.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "svg" => {}
            "rect" => assert_eq!(node.attribute("fill"), Some("#fff"), "white ground"),
            "path" => {
                paths += 1;
                assert_eq!(node.attribute("fill"), Some("#000"));
                let d = node.attribute("d").expect("d");
                // Each sub-path is one run of dark modules: `M{x} {y}h{n}v1h-{n}z`.
                for run in d.split('M').filter(|r| !r.is_empty()) {
                    let (at, rest) = run.split_once('h').expect("h");
                    let (x, y) = at.split_once(' ').expect("x y");
                    let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
                    let n: usize = rest.split_once('v').expect("v").0.parse().unwrap();
                    assert_eq!(rest, format!("{n}v1h-{n}z"), "a run: {run}");
                    for cell in &mut dark[y][x..x + n] {
                        *cell = true;
                    }
                }
            }
            other => panic!("unexpected element <{other}> in the QR image"),
        }
    }
    assert_eq!(paths, 1);
    const PX: usize = 8;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(size * PX, size * PX, |x, y| {
        if dark[y / PX][x / PX] { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (_, text) = grids[0].decode().expect("a readable QR code");
    text
}

/// Each of my tickets' QR code holds exactly its listed code, which the gate admits: scanning
/// the QR code and pasting the code are the same thing. The answer is `no-store`.
async fn a_tickets_qr_code_holds_exactly_its_code(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let gate = admin_token(&s).await;
    let (me, _) = user_token(&s);
    buy(&s, session, &me, "buy", 2).await;
    let tickets = my_tickets(&s, &me).await;
    assert_eq!(tickets.len(), 2);
    let mut decoded = Vec::new();
    for t in &tickets {
        let id = t["ticket_id"].as_str().unwrap();
        let code = t["code"].as_str().unwrap();
        let answer = qr(&s, Some(&me), id).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("content-type"), "image/svg+xml");
        assert_eq!(answer.header("cache-control"), "no-store");
        assert_eq!(answer.header("pragma"), "no-cache");
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
        assert!(
            answer
                .header("content-security-policy")
                .contains("default-src 'none'")
        );
        assert!(
            answer.body.len() < 32 * 1024,
            "small: {} bytes",
            answer.body.len()
        );
        let text = decode_svg(&answer.body);
        assert_eq!(text, code, "the QR code holds the ticket's code");
        decoded.push(text);
    }
    assert_ne!(decoded[0], decoded[1], "each ticket its own code");
    // What a scanner reads from the QR code is what the gate takes.
    let first = verify_at(&s, &gate, &decoded[0], session).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["ticket_id"], tickets[0]["ticket_id"]);
    // A used ticket keeps its QR code; the gate says it was used.
    let again = qr(&s, Some(&me), tickets[0]["ticket_id"].as_str().unwrap()).await;
    assert_eq!(again.status, 200);
    assert_eq!(decode_svg(&again.body), decoded[0]);
    let used = verify_at(&s, &gate, &decoded[0], session).await;
    assert_eq!(
        used.json["error"]["code"], "TICKET_ALREADY_USED",
        "{used:?}"
    );
}

/// Only the owner gets a ticket's QR code: another user, gate staff or an admin get the
/// same 404 as for a ticket that does not exist; no token, 401; a malformed id, the same 404 (it names no ticket).
async fn only_the_owner_gets_a_tickets_qr_code(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let admin = admin_token(&s).await;
    let (me, _) = user_token(&s);
    let (other, _) = user_token(&s);
    let hold = buy(&s, session, &me, "buy", 2).await.0;
    let mine = format!("{hold}-1");
    assert_eq!(qr(&s, Some(&me), &mine).await.status, 200);

    let missing = qr(&s, Some(&other), &format!("{}-1", uuid::Uuid::now_v7())).await;
    assert_eq!(error_of(&missing), (404, "NOT_FOUND".to_owned()));
    for (who, token, id) in [
        ("another user", &other, mine.clone()),
        ("an admin", &admin, mine.clone()),
        ("another user", &other, format!("{hold}-2")),
        (
            "the owner, a number beyond the units",
            &me,
            format!("{hold}-3"),
        ),
        (
            "the owner, the last number there is",
            &me,
            format!("{hold}-100"),
        ),
    ] {
        let refused = qr(&s, Some(token), &id).await;
        assert_eq!(
            (refused.status, refused.json()),
            (missing.status, missing.json()),
            "{who} asking for {id}: answered like a missing ticket"
        );
        assert_eq!(refused.header("content-type"), "application/json");
        assert!(!refused.body.contains("TR1."), "no code leaks");
    }
    let anonymous = qr(&s, None, &mine).await;
    assert_eq!(error_of(&anonymous), (401, "UNAUTHORIZED".to_owned()));
    for bad in [
        "x".to_owned(),
        hold.clone(),
        format!("{hold}-0"),
        format!("{hold}-01"),
        format!("{hold}-101"),
        format!("{}-1", hold.to_uppercase()),
        format!("{}-1", hold.replace('-', "")),
    ] {
        let refused = qr(&s, Some(&me), &bad).await;
        assert_eq!(
            error_of(&refused),
            (404, "NOT_FOUND".to_owned()),
            "{bad}: {}",
            refused.body
        );
    }
}

/// A reservation that is not CONFIRMED has no valid ticket, so no QR code: held (not paid
/// yet) and cancelled (refunded) answer 409 `TICKET_NOT_VALID` with the state, to its owner.
async fn unconfirmed_and_cancelled_reservations_have_no_qr_code(kind: Kind) {
    let s = server(kind, &[]).await;
    let session = ga_session(&s, 5).await;
    let (me, _) = user_token(&s);
    let held = join_and_hold(&s, session, &me, "hold", 1).await;
    let refused = qr(&s, Some(&me), &format!("{held}-1")).await;
    assert_eq!(error_of(&refused), (409, "TICKET_NOT_VALID".to_owned()));
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("held, not confirmed"),
        "{}",
        refused.body
    );
    let released = call(
        &s,
        "DELETE",
        &format!("/api/holds/{held}"),
        Some(&me),
        &[],
        None,
    )
    .await;
    assert_eq!(released.status, 200, "{released:?}");

    let bought = buy(&s, session, &me, "buy", 1).await.0;
    let ticket = format!("{bought}-1");
    assert_eq!(qr(&s, Some(&me), &ticket).await.status, 200);
    let cancelled = call(
        &s,
        "POST",
        &format!("/api/reservations/{bought}/cancel"),
        Some(&me),
        &[("idempotency-key", "cancel")],
        None,
    )
    .await;
    assert_eq!(cancelled.json["status"], "refunded", "{cancelled:?}");
    let refused = qr(&s, Some(&me), &ticket).await;
    assert_eq!(error_of(&refused), (409, "TICKET_NOT_VALID".to_owned()));
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refunded, not confirmed"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("TR1."), "no code");
}

common::on_all_backends!(
    a_tickets_qr_code_holds_exactly_its_code,
    only_the_owner_gets_a_tickets_qr_code,
    unconfirmed_and_cancelled_reservations_have_no_qr_code,
);
