//! Money: integer minor units with a currency. Never floating point.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// An ISO 4217-style currency code: three ASCII upper-case letters (`KRW`, `EUR`, `USD`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Validates a currency code.
    pub fn new(code: &str) -> Result<Self, InvalidInput> {
        match code.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(InvalidInput::Money(format!(
                "currency must be three upper-case letters, got {code:?}"
            ))),
        }
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-negative amount in the currency's minor unit (cents, won, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in minor units; never negative.
    pub amount_minor: i64,
    /// The currency.
    pub currency: Currency,
}

/// `"9000 KRW"`: the amount in minor units, then the currency.
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.amount_minor, self.currency)
    }
}

impl Money {
    /// A validated amount (`amount_minor >= 0`).
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, InvalidInput> {
        if amount_minor < 0 {
            return Err(InvalidInput::Money(format!(
                "amount must not be negative, got {amount_minor}"
            )));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self {
            amount_minor: 0,
            currency,
        }
    }

    /// `self + other`; errors on a currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, InvalidInput> {
        if self.currency != other.currency {
            return Err(InvalidInput::Money(format!(
                "cannot add {} to {}",
                other.currency, self.currency
            )));
        }
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or_else(|| InvalidInput::Money("amount overflow".into()))?;
        Ok(Money {
            amount_minor,
            ..self
        })
    }

    /// `self * n`; errors on overflow.
    pub fn checked_mul(self, n: u32) -> Result<Money, InvalidInput> {
        let amount_minor = self
            .amount_minor
            .checked_mul(i64::from(n))
            .ok_or_else(|| InvalidInput::Money("amount overflow".into()))?;
        Ok(Money {
            amount_minor,
            ..self
        })
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_checked() {
        let krw = Currency::new("KRW").unwrap();
        let usd = Currency::new("USD").unwrap();
        assert!(Currency::new("krw").is_err());
        assert!(Currency::new("KRWX").is_err());
        assert!(Money::new(-1, krw).is_err());
        let a = Money::new(150_000, krw).unwrap();
        assert_eq!(a.checked_mul(2).unwrap().amount_minor, 300_000);
        assert!(a.checked_add(Money::zero(usd)).is_err());
        assert!(Money::new(i64::MAX, krw).unwrap().checked_mul(2).is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"amount_minor":150000,"currency":"KRW"}"#);
    }
}
