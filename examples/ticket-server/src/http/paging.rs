//! The paging parameters of the list routes: `?limit=` (1 to [`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and `?cursor=` (the `next_cursor` of the previous page, an opaque
//! token the server wrote), read as text so every problem gets a clear 400 `VALIDATION`.

use std::fmt::Display;
use std::str::FromStr;

use serde::Deserialize;
use ticket_core::model::page::MAX_PAGE_LIMIT;

use crate::http::error::ApiError;

/// The largest page of any list route (the library's largest page).
pub const MAX_LIMIT: usize = MAX_PAGE_LIMIT;

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 50;

/// The pattern of a hold or audit cursor as the server writes it:
/// `<epoch ms>_<lower-case hyphenated uuid>`.
pub const TIME_CURSOR_PATTERN: &str =
    "^(0|-?[1-9][0-9]{0,17})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// `?limit=&cursor=`, as text.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items, 1 to 500 (default 50).
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Continue after this item: the `next_cursor` of the previous page.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(0|-?[1-9][0-9]{0,17})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub cursor: Option<String>,
}

/// The page size asked for: [`DEFAULT_LIMIT`] when absent, 400 unless decimal digits from
/// 1 to `max`.
pub fn limit(raw: Option<&str>, max: usize) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT.min(max));
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::validation(format!(
            "limit must be an integer from 1 to {max}, not {raw:?}"
        ))),
    }
}

/// A cursor the server wrote: parsed, and refused (400) unless written exactly as the
/// server writes it.
pub fn cursor<C>(raw: Option<&str>) -> Result<Option<C>, ApiError>
where
    C: FromStr + Display,
{
    let Some(raw) = raw else { return Ok(None) };
    match raw.parse::<C>() {
        Ok(c) if c.to_string() == raw => Ok(Some(c)),
        _ => Err(ApiError::validation(format!(
            "cursor must be a next_cursor of this list, not {:?}",
            raw.chars().take(80).collect::<String>()
        ))),
    }
}

impl PageParams {
    /// The page size and cursor, or why they are malformed.
    pub fn parse<C>(&self) -> Result<(usize, Option<C>), ApiError>
    where
        C: FromStr + Display,
    {
        Ok((
            limit(self.limit.as_deref(), MAX_LIMIT)?,
            cursor(self.cursor.as_deref())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticket_core::model::page::HoldCursor;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(limit(None, 500).ok(), Some(50));
        assert_eq!(limit(Some("500"), 500).ok(), Some(500));
        for bad in ["0", "501", "+5", "-1", "ten", ""] {
            assert!(limit(Some(bad), 500).is_err(), "{bad}");
        }
        let c = "1700000000000_018bcfe5-6800-7000-8000-000000000001";
        assert!(cursor::<HoldCursor>(Some(c)).is_ok_and(|c| c.is_some()));
        let upper = c.to_uppercase();
        assert!(cursor::<HoldCursor>(Some(&upper)).is_err());
        assert!(cursor::<HoldCursor>(Some("nope")).is_err());
        for not_canonical in [
            "-0_00000000-0000-0000-0000-000000000000",
            "03413_bc7b75c1-b85a-4503-cf38-9adcbfb08ce5",
        ] {
            assert!(
                cursor::<HoldCursor>(Some(not_canonical)).is_err(),
                "{not_canonical}"
            );
        }
        assert!(cursor::<HoldCursor>(Some("0_00000000-0000-0000-0000-000000000000")).is_ok());
        let re_ok = regex_like(c);
        assert!(re_ok);
    }

    /// The documented pattern accepts what the server writes (a hand check of its shape).
    fn regex_like(c: &str) -> bool {
        let (ms, id) = c.split_once('_').unwrap_or_default();
        TIME_CURSOR_PATTERN.starts_with("^(0|-?[1-9][0-9]{0,17})_")
            && ms.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 36
    }
}
