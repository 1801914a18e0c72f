//! Request bodies as Stripe takes them: `application/x-www-form-urlencoded`, nested
//! parameters spelled with brackets (`metadata[ticketrush_hold]=…`,
//! `payment_intent_data[capture_method]=manual`, `expand[]=latest_charge`).

use std::collections::BTreeMap;

use ticket_core::gateway::GatewayError;

/// Stripe's metadata limits: 50 keys, keys up to 40 characters (no square brackets),
/// values up to 500 characters.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

/// The longest idempotency key Stripe accepts.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// A form body: ordered `(key, value)` pairs, encoded by the HTTP client. The order is
/// deterministic (metadata in key order), so a repeated request sends the very same body,
/// as Stripe's idempotency check requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value`.
    pub(crate) fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Adds every entry of `metadata` as `prefix[key]=value`.
    pub(crate) fn metadata(&mut self, prefix: &str, metadata: &BTreeMap<String, String>) {
        for (k, v) in metadata {
            self.0.push((format!("{prefix}[{k}]"), v.clone()));
        }
    }

    /// The pairs, in order.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Checks metadata against Stripe's limits before anything is sent (leaving room for
/// `reserved` keys of the gateway's own), so a request Stripe would refuse is
/// [`GatewayError::Invalid`] without a round trip.
pub(crate) fn check_metadata(
    metadata: &BTreeMap<String, String>,
    reserved: usize,
) -> Result<(), GatewayError> {
    let max = MAX_METADATA_KEYS - reserved;
    if metadata.len() > max {
        return Err(GatewayError::Invalid(format!(
            "metadata has {} keys; at most {max} fit (Stripe takes {MAX_METADATA_KEYS})",
            metadata.len()
        )));
    }
    for (k, v) in metadata {
        if k.is_empty()
            || k.chars().count() > MAX_METADATA_KEY_CHARS
            || k.contains(['[', ']'])
            || k.chars().any(char::is_control)
        {
            return Err(GatewayError::Invalid(format!(
                "metadata key {k:?}: 1 to {MAX_METADATA_KEY_CHARS} characters, no brackets"
            )));
        }
        if v.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(GatewayError::Invalid(format!(
                "metadata value of {k:?} is longer than {MAX_METADATA_VALUE_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// Checks an idempotency key: 1 to 255 printable ASCII characters (it travels in a header).
pub(crate) fn check_idempotency_key(key: &str) -> Result<(), GatewayError> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(GatewayError::Invalid(format!(
            "idempotency key {key:?}: 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )));
    }
    Ok(())
}

/// The idempotency key of an operation whose request carries none (confirm, cancel, void,
/// expire): derived from the operation and Stripe's id, so a repeat of the same operation
/// on the same object is recognised by Stripe and answered with the first answer.
pub(crate) fn derived_key(operation: &str, id: &str) -> String {
    format!("ticketrush-{operation}-{id}")
}

/// `id` when it is a Stripe id (`pi_…`, `cs_test_…`: ASCII letters, digits and `_`), safe
/// as a path segment; anything else could change the request's path and is refused.
pub(crate) fn path_id(id: &str) -> Result<&str, GatewayError> {
    if !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id)
    } else {
        Err(GatewayError::Invalid(format!("{id:?} is not a Stripe id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_limits() {
        let ok = BTreeMap::from([("ticketrush_hold".to_owned(), "x".repeat(500))]);
        assert!(check_metadata(&ok, 0).is_ok());
        for (k, v) in [
            ("", "v"),
            ("a[b]", "v"),
            (&*"k".repeat(41), "v"),
            ("k", &*"v".repeat(501)),
        ] {
            let m = BTreeMap::from([(k.to_owned(), v.to_owned())]);
            assert!(check_metadata(&m, 0).is_err(), "{k:?}");
        }
        let many: BTreeMap<String, String> =
            (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_metadata(&many, 0).is_ok());
        assert!(check_metadata(&many, 1).is_err());
    }

    #[test]
    fn ids_and_keys() {
        assert!(path_id("pi_3MtwBwLkdIwHu7ix28a3tqPa").is_ok());
        assert!(
            path_id("cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY").is_ok()
        );
        for bad in ["", "pi_1/../../v1/refunds", "pi 1", "pi_1?x=1"] {
            assert!(path_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_idempotency_key("ticketrush-checkout-1").is_ok());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key("a b").is_err());
        assert!(check_idempotency_key(&"k".repeat(256)).is_err());
        assert_eq!(derived_key("confirm", "pi_1"), "ticketrush-confirm-pi_1");
    }
}
