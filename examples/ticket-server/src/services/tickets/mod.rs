//! Tickets with signed codes: their ids, their codes, and how a hold's tickets are numbered.
//!
//! A **ticket** is one unit of a CONFIRMED reservation (a hold): hold `h` covering `k` units
//! or seats has the tickets `h-1` … `h-k` ([`TicketId`]), numbered in the hold's own order
//! of units or seats, so every process derives the same tickets from the same hold.
//!
//! A ticket's **code** is `TR1.<payload>.<signature>` (both parts base64url, no padding):
//! the payload is a small JSON object naming the ticket, its hold, session and owner, and the
//! signature is HMAC-SHA256 over `TR1.<payload>` ([`TicketSigner`]). The signing key is
//! derived from the server's JWT secret with a fixed label, so every process started with the
//! same `--jwt-secret` checks every other's codes, and a code is never a valid access token
//! or the other way round. Signatures are compared in constant time. A code says nothing
//! about whether the ticket is still good: the gate checks the reservation's state and
//! marks the ticket used.
//!
//! Whether a ticket was used is the library's business: the gate checks it in with
//! [`ticket_core::service::GateService::check_in`], one atomic store step that marks it only
//! while its reservation is CONFIRMED and at its own session, and that a cancellation of the
//! same reservation cannot slip past.
//!
//! One ticket of the caller's is drawn as a QR code holding exactly its code
//! ([`qr_svg`], [`my_ticket_code`]).

mod gate;
mod owned;
mod qr;

pub use gate::{Admitted, ScanError, scan};
pub use owned::{OwnedTicket, owned_tickets};
pub use qr::{MODULE_PX, QUIET_ZONE, QrError, TicketCodeError, my_ticket_code, qr_svg};

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::digest::consts::U64;
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ticket_core::model::hold::Hold;
use ticket_core::model::selection::{HoldItems, MAX_UNITS_PER_HOLD};
use ticket_core::{HoldId, SessionId, UserId};

/// The version prefix of every code this build signs and accepts.
pub const CODE_PREFIX: &str = "TR1";

/// The longest code accepted, in bytes; longer input is refused before any decoding.
pub const MAX_CODE_LEN: usize = 1024;

/// The label the code key is derived with from the server's secret (HMAC-SHA256 keyed by the
/// secret over this label): codes and access tokens never share a key.
const KEY_LABEL: &[u8] = b"ticketrush ticket codes v1";

type HmacSha256 = Hmac<Sha256>;

/// One SHA-256 block: an HMAC-SHA256 key as HMAC uses it.
type KeyBlock = GenericArray<u8, U64>;

/// A malformed ticket id or number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The ticket id or number is malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Result of the ticket id operations.
pub type Result<T, E = TicketError> = std::result::Result<T, E>;

/// Why a ticket code was refused. Either way nothing is marked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not a code of this format (wrong prefix, parts, encoding, length or payload).
    #[error("malformed ticket code: {0}")]
    Malformed(&'static str),
    /// Well formed, but the signature does not match: tampered with, forged, or signed
    /// with another deployment's secret.
    #[error("the ticket code's signature does not match")]
    Forged,
}

// ---------------------------------------------------------------------------------------------
// ticket ids

/// A ticket: unit `n` (1-based) of hold `hold`. Written `<hold id>-<n>`, e.g.
/// `0190f0c8-…-5b2e-2`; parsing accepts only this canonical form, so one ticket has one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketId {
    hold: HoldId,
    n: u32,
}

impl TicketId {
    /// Unit `n` of `hold`; `n` must be 1..=[`MAX_UNITS_PER_HOLD`].
    pub fn new(hold: HoldId, n: u32) -> Result<Self> {
        if n == 0 || n > MAX_UNITS_PER_HOLD {
            return Err(TicketError::InvalidRequest(format!(
                "ticket number must be 1..={MAX_UNITS_PER_HOLD}, got {n}"
            )));
        }
        Ok(Self { hold, n })
    }

    /// The hold (reservation) the ticket belongs to.
    pub const fn hold(&self) -> HoldId {
        self.hold
    }

    /// The ticket's number within its hold, from 1.
    pub const fn number(&self) -> u32 {
        self.n
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.hold, self.n)
    }
}

impl FromStr for TicketId {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || TicketError::InvalidRequest(format!("malformed ticket id {s:?}"));
        let (hold, n) = s.rsplit_once('-').ok_or_else(bad)?;
        let hold_id: HoldId = hold.parse().map_err(|_| bad())?;
        let number: u32 = n.parse().map_err(|_| bad())?;
        let id = Self::new(hold_id, number)?;
        // Only the canonical spelling (lower-case hyphenated UUID, no leading zeros or sign).
        if id.to_string() != s {
            return Err(bad());
        }
        Ok(id)
    }
}

/// One ticket of a hold, as derived from the hold's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLine {
    /// The ticket.
    pub id: TicketId,
    /// Its price grade.
    pub grade: String,
    /// Its seat, for a seated hold.
    pub seat: Option<String>,
}

/// The tickets of `hold`, numbered from 1 in the hold's order of units or seats (whatever
/// its state: whether they are good is the caller's question).
pub fn tickets_of(hold: &Hold) -> Vec<TicketLine> {
    let lines: Vec<(String, Option<String>)> = match &hold.items {
        HoldItems::Units {
            grade, quantity, ..
        } => (0..*quantity)
            .map(|_| (grade.as_str().to_owned(), None))
            .collect(),
        HoldItems::Seats { seats } => seats
            .iter()
            .map(|s| (s.grade.as_str().to_owned(), Some(s.id.as_str().to_owned())))
            .collect(),
    };
    lines
        .into_iter()
        .zip(1u32..)
        .filter_map(|((grade, seat), n)| {
            TicketId::new(hold.id, n)
                .ok()
                .map(|id| TicketLine { id, grade, seat })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// codes

/// What a valid code says: which ticket, of which session, owned by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaims {
    /// The ticket (its hold is [`TicketId::hold`]).
    pub ticket: TicketId,
    /// The hold's session.
    pub session: SessionId,
    /// The hold's owner (the library's user id).
    pub user: UserId,
}

/// The JSON payload of a code.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    /// Ticket id.
    t: String,
    /// Hold id (the ticket id's hold, repeated for readers of the payload).
    h: String,
    /// Session id.
    s: String,
    /// User id.
    u: String,
}

/// Signs and checks ticket codes with HMAC-SHA256. Every process of one deployment must
/// derive it from the same secret, so a code printed by one is accepted by all. Cheap to
/// clone.
#[derive(Clone)]
pub struct TicketSigner {
    key: KeyBlock,
}

impl fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketSigner(<redacted>)")
    }
}

impl TicketSigner {
    /// The signer of a deployment whose shared secret (`--jwt-secret`) is `secret`: the key
    /// is HMAC-SHA256 keyed by `secret` over a fixed label, so it differs from the token key.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac = mac_with(&key_block(secret));
        mac.update(KEY_LABEL);
        Self {
            key: key_block(&mac.finalize().into_bytes()),
        }
    }

    /// A signer with a random key: its codes are checked by this process only (for a server
    /// started without a shared secret).
    pub fn random() -> std::result::Result<Self, rand_core::OsError> {
        let mut secret = [0u8; 32];
        rand_core::TryRngCore::try_fill_bytes(&mut rand_core::OsRng, &mut secret)?;
        Ok(Self::from_secret(&secret))
    }

    /// The code of `claims`: `TR1.<payload>.<signature>`. Deterministic: the same ticket
    /// always has the same code.
    pub fn sign(&self, claims: &TicketClaims) -> String {
        let payload = serde_json::json!({
            "t": claims.ticket.to_string(),
            "h": claims.ticket.hold().to_string(),
            "s": claims.session.to_string(),
            "u": claims.user.as_str(),
        })
        .to_string();
        let signed = format!("{CODE_PREFIX}.{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = mac_with(&self.key);
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// Checks `code` and returns what it says. The signature is checked (in constant time)
    /// before the payload is read; any change to the code is [`CodeError::Forged`] or
    /// [`CodeError::Malformed`].
    pub fn verify(&self, code: &str) -> std::result::Result<TicketClaims, CodeError> {
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(CodeError::Malformed("empty or too long"));
        }
        let mut parts = code.split('.');
        let (Some(prefix), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CodeError::Malformed("expected three dot-separated parts"));
        };
        if prefix != CODE_PREFIX {
            return Err(CodeError::Malformed("unknown version prefix"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| CodeError::Malformed("signature is not base64url"))?;
        let mut mac = mac_with(&self.key);
        mac.update(prefix.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| CodeError::Forged)?;
        // Signed by us from here on: anything unreadable is another format, not a forgery.
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CodeError::Malformed("payload is not base64url"))?;
        let payload: Payload = serde_json::from_slice(&payload)
            .map_err(|_| CodeError::Malformed("payload is not a ticket"))?;
        let ticket: TicketId = payload
            .t
            .parse()
            .map_err(|_| CodeError::Malformed("ticket id"))?;
        let hold: HoldId = payload
            .h
            .parse()
            .map_err(|_| CodeError::Malformed("hold id"))?;
        if hold != ticket.hold() {
            return Err(CodeError::Malformed("ticket and hold disagree"));
        }
        Ok(TicketClaims {
            ticket,
            session: payload
                .s
                .parse()
                .map_err(|_| CodeError::Malformed("session id"))?,
            user: UserId::new(payload.u).map_err(|_| CodeError::Malformed("user id"))?,
        })
    }
}

/// An HMAC key as one SHA-256 block: `key` padded with zeros, or its SHA-256 digest padded
/// when longer than a block. This is exactly HMAC's own key preparation (RFC 2104), so
/// HMAC keyed by the block equals HMAC keyed by `key`, and building it cannot fail.
fn key_block(key: &[u8]) -> KeyBlock {
    let mut block = KeyBlock::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// HMAC-SHA256 keyed by `key`.
fn mac_with(key: &KeyBlock) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::Timestamp;

    fn claims(n: u32) -> TicketClaims {
        let now = Timestamp::from_millis(1_700_000_000_000);
        TicketClaims {
            ticket: TicketId::new(HoldId::new_at(now), n).unwrap(),
            session: SessionId::new_at(now),
            user: UserId::new("user-1").unwrap(),
        }
    }

    /// `code` with the character at `i` replaced by another base64url character.
    fn flip(code: &str, i: usize) -> String {
        let mut bytes = code.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn codes_round_trip_across_processes_sharing_the_secret() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let (one, two) = (
            TicketSigner::from_secret(secret),
            TicketSigner::from_secret(secret),
        );
        let c = claims(3);
        let code = one.sign(&c);
        assert!(code.starts_with("TR1."), "{code}");
        assert_eq!(code, two.sign(&c), "deterministic");
        assert_eq!(two.verify(&code), Ok(c.clone()));
        assert_ne!(one.sign(&claims(4)), code);
        assert_eq!(
            TicketSigner::from_secret(b"another secret of thirty-two bytes!").verify(&code),
            Err(CodeError::Forged)
        );
        assert_eq!(
            TicketSigner::random().unwrap().verify(&code),
            Err(CodeError::Forged)
        );
    }

    #[test]
    fn any_change_is_refused() {
        let signer = TicketSigner::from_secret(b"secret");
        let code = signer.sign(&claims(1));
        let (payload_at, sig_at) = (5, code.len() - 3);
        assert_eq!(
            signer.verify(&flip(&code, payload_at)),
            Err(CodeError::Forged)
        );
        assert!(signer.verify(&flip(&code, sig_at)).is_err());
        // another ticket's payload under this ticket's signature
        let other = signer.sign(&claims(2));
        let (head, _) = other.rsplit_once('.').unwrap();
        let (_, sig) = code.rsplit_once('.').unwrap();
        assert_eq!(
            signer.verify(&format!("{head}.{sig}")),
            Err(CodeError::Forged)
        );
        for bad in [
            String::new(),
            "garbage".into(),
            "TR1.x".into(),
            format!("{code}.x"),
            code.replacen("TR1", "TR2", 1),
            format!("{code}="),
            format!("TR1.{}.!!", URL_SAFE_NO_PAD.encode("{}")),
            "x".repeat(MAX_CODE_LEN + 1),
        ] {
            assert!(
                matches!(signer.verify(&bad), Err(CodeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn signed_nonsense_is_malformed_not_accepted() {
        let signer = TicketSigner::from_secret(b"secret");
        let sign_raw = |payload: &str| {
            let signed = format!("TR1.{}", URL_SAFE_NO_PAD.encode(payload));
            let mut mac = mac_with(&signer.key);
            mac.update(signed.as_bytes());
            format!(
                "{signed}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        let c = claims(1);
        let other_hold = HoldId::new_at(Timestamp::from_millis(1));
        for payload in [
            "not json".to_owned(),
            "{}".to_owned(),
            serde_json::json!({"t": "x-1", "h": c.ticket.hold().to_string(), "s": c.session.to_string(), "u": "u"}).to_string(),
            serde_json::json!({"t": c.ticket.to_string(), "h": other_hold.to_string(), "s": c.session.to_string(), "u": "u"}).to_string(),
            serde_json::json!({"t": c.ticket.to_string(), "h": c.ticket.hold().to_string(), "s": c.session.to_string(), "u": ""}).to_string(),
        ] {
            assert!(
                matches!(signer.verify(&sign_raw(&payload)), Err(CodeError::Malformed(_))),
                "{payload}"
            );
        }
    }

    #[test]
    fn key_blocks_are_hmac_keys() {
        for key in [&b""[..], b"short", &[7u8; 64], &[9u8; 65], &[1u8; 200]] {
            let mut ours = mac_with(&key_block(key));
            let mut theirs = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
            ours.update(b"m");
            theirs.update(b"m");
            assert_eq!(ours.finalize().into_bytes(), theirs.finalize().into_bytes());
        }
    }

    #[test]
    fn ticket_ids_have_one_spelling() {
        let c = claims(7);
        let text = c.ticket.to_string();
        assert_eq!(text.parse::<TicketId>(), Ok(c.ticket));
        assert!(text.ends_with("-7"));
        let hold = c.ticket.hold();
        for bad in [
            format!("{hold}-0"),
            format!("{hold}-07"),
            format!("{hold}-+7"),
            format!("{hold}-101"),
            format!("{hold}"),
            format!("{}-7", hold.as_uuid().simple()),
            format!("{}-7", hold.to_string().to_uppercase()),
            "7".into(),
        ] {
            assert!(bad.parse::<TicketId>().is_err(), "{bad}");
        }
        assert!(TicketId::new(hold, 0).is_err());
    }
}
