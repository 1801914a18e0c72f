//! Reading script replies, and mapping Redis failures to `ticket_core` errors.

use redis::Value;
use ticket_core::{Error, Refusal, Result};

/// A Redis failure: the outcome is unknown to the caller (`Unavailable`).
pub(crate) fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(Box::new(e))
}

fn unexpected(what: &str, v: &Value) -> Error {
    Error::Corrupt(format!("unexpected reply for {what}: {v:?}"))
}

/// A string (bulk or simple).
pub(crate) fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).map_err(|_| unexpected(what, v)),
        Value::SimpleString(s) => Ok(s),
        _ => Err(unexpected(what, v)),
    }
}

/// A string, or `None` for nil or an empty string.
pub(crate) fn opt_text<'a>(v: &'a Value, what: &str) -> Result<Option<&'a str>> {
    match v {
        Value::Nil => Ok(None),
        _ => text(v, what).map(|s| (!s.is_empty()).then_some(s)),
    }
}

/// An integer (integer reply or a numeric string).
pub(crate) fn int(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => text(v, what)?
            .parse::<i64>()
            .map_err(|_| unexpected(what, v)),
    }
}

/// An optional integer (nil or empty is `None`).
pub(crate) fn opt_int(v: &Value, what: &str) -> Result<Option<i64>> {
    match v {
        Value::Nil => Ok(None),
        Value::Int(n) => Ok(Some(*n)),
        _ => match opt_text(v, what)? {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| unexpected(what, v)),
        },
    }
}

/// A non-negative count.
pub(crate) fn count(v: &Value, what: &str) -> Result<u64> {
    u64::try_from(int(v, what)?).map_err(|_| unexpected(what, v))
}

/// An array.
pub(crate) fn array<'a>(v: &'a Value, what: &str) -> Result<&'a [Value]> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(unexpected(what, v)),
    }
}

/// Element `i` of an array reply.
pub(crate) fn at<'a>(a: &'a [Value], i: usize, what: &str) -> Result<&'a Value> {
    a.get(i)
        .ok_or_else(|| Error::Corrupt(format!("reply for {what} has no element {i}")))
}

/// Parses a JSON document stored by this backend.
pub(crate) fn json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("stored {what} unreadable: {e}")))
}

/// Serialises a value this backend stores.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Corrupt(format!("not serialisable: {e}")))
}

/// A refusal returned by a script as JSON (`{"code": "SOLD_OUT", …}`).
pub(crate) fn refusal(v: &Value) -> Error {
    match text(v, "refusal").and_then(|s| json::<Refusal>(s, "refusal")) {
        Ok(r) => Error::Refused(r),
        Err(e) => e,
    }
}

/// Splits a tagged script reply `{tag, …}` into its tag and the rest.
pub(crate) fn tagged<'a>(v: &'a Value, what: &str) -> Result<(&'a str, &'a [Value])> {
    let a = array(v, what)?;
    let (tag, rest) = a.split_first().ok_or_else(|| unexpected(what, v))?;
    Ok((text(tag, what)?, rest))
}
