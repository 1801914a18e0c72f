//! The resume cursor of `GET /api/me/events`: for every session the stream follows, the
//! feed sequence up to which the stream has handed out that user's changes. An event's id is
//! the cursor after it, so a client that reconnects with `Last-Event-ID` resumes every
//! session exactly where it stopped, on any server process.
//!
//! Text form: `1.` followed by base64url (no padding) of, per session in id order, the 16
//! bytes of its id and its sequence as LEB128. About 20 bytes per session.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ticket_core::SessionId;

/// The longest cursor accepted (text form): about 600 sessions.
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// Per session, the last feed sequence handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserCursor(pub BTreeMap<SessionId, u64>);

/// Why a cursor text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event id of this stream")]
pub struct BadCursor;

impl fmt::Display for UserCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = Vec::with_capacity(self.0.len() * 20);
        for (session, seq) in &self.0 {
            bytes.extend_from_slice(session.as_uuid().as_bytes());
            let mut n = *seq;
            loop {
                let low = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    bytes.push(low);
                    break;
                }
                bytes.push(low | 0x80);
            }
        }
        write!(f, "1.{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl FromStr for UserCursor {
    type Err = BadCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_CURSOR_LEN {
            return Err(BadCursor);
        }
        let body = s.strip_prefix("1.").ok_or(BadCursor)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| BadCursor)?;
        let mut out = BTreeMap::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (id, tail) = rest.split_at_checked(16).ok_or(BadCursor)?;
            let id: [u8; 16] = id.try_into().map_err(|_| BadCursor)?;
            let mut seq: u64 = 0;
            let mut shift = 0u32;
            let mut used = 0;
            loop {
                let b = *tail.get(used).ok_or(BadCursor)?;
                used += 1;
                if shift > 63 || (shift == 63 && (b & 0x7f) > 1) {
                    return Err(BadCursor);
                }
                seq |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            rest = &tail[used..];
            let session = SessionId::from_uuid(uuid::Uuid::from_bytes(id));
            if out.insert(session, seq).is_some() {
                return Err(BadCursor);
            }
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::Timestamp;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let mut c = UserCursor::default();
        for (i, seq) in [0u64, 1, 127, 128, 300, u64::MAX].into_iter().enumerate() {
            let at = Timestamp::from_millis(1_700_000_000_000 + i as i64);
            c.0.insert(SessionId::new_at(at), seq);
        }
        let text = c.to_string();
        assert_eq!(text.parse::<UserCursor>(), Ok(c));
        assert_eq!("1.".parse::<UserCursor>(), Ok(UserCursor::default()));
        for bad in ["", "2.AA", "1.!!", "1.AAAA", "12"] {
            assert_eq!(bad.parse::<UserCursor>(), Err(BadCursor), "{bad}");
        }
    }
}
