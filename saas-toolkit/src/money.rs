//! Money as integer minor units with an ISO 4217 currency (lower case), and fee arithmetic.

use std::fmt;

use serde::{Deserialize, Serialize};

use saas_core::{ServiceError, ServiceResult};

/// An ISO 4217 currency code, stored lower-case (`usd`, `eur`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "usd")]
pub struct Currency(String);

impl Currency {
    /// Parses a three-letter code in any case.
    pub fn parse(code: &str) -> ServiceResult<Self> {
        let code = code.trim();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Self(code.to_ascii_lowercase()))
        } else {
            Err(ServiceError::invalid_field("currency", "Enter a three-letter ISO 4217 currency code."))
        }
    }

    /// The lower-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value).map_err(|e| e.message().to_owned())
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in minor units (cents) of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units; never a float.
    pub amount_cents: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// `amount_cents` of `currency`.
    pub fn new(amount_cents: i64, currency: Currency) -> Self {
        Self { amount_cents, currency }
    }

    /// A positive amount (payments, transfers); zero or negative is a validation error.
    pub fn positive(amount_cents: i64, currency: Currency) -> ServiceResult<Self> {
        if amount_cents <= 0 {
            return Err(ServiceError::invalid_field("amount_cents", "Ensure this value is greater than 0."));
        }
        Ok(Self::new(amount_cents, currency))
    }

    /// `percent` % of the amount, rounded down (10000 at 15 % → 1500; 9999 → 1499).
    pub fn percent_floor(&self, percent: u32) -> Money {
        Money::new(percent_floor(self.amount_cents, percent), self.currency.clone())
    }

    /// The sum of two amounts of the same currency (overflow or a currency mismatch is an error).
    pub fn checked_add(&self, other: &Money) -> ServiceResult<Money> {
        self.same_currency(other)?;
        let sum = self.amount_cents.checked_add(other.amount_cents).ok_or_else(overflow)?;
        Ok(Money::new(sum, self.currency.clone()))
    }

    /// The difference of two amounts of the same currency.
    pub fn checked_sub(&self, other: &Money) -> ServiceResult<Money> {
        self.same_currency(other)?;
        let diff = self.amount_cents.checked_sub(other.amount_cents).ok_or_else(overflow)?;
        Ok(Money::new(diff, self.currency.clone()))
    }

    fn same_currency(&self, other: &Money) -> ServiceResult<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(ServiceError::bad_request(
                "money.currency_mismatch",
                format!("cannot combine {} with {}", self.currency, other.currency),
            ))
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount_cents < 0 { "-" } else { "" };
        let abs = self.amount_cents.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency.as_str().to_ascii_uppercase())
    }
}

/// `amount * percent / 100`, rounded down, computed without overflow.
pub fn percent_floor(amount_cents: i64, percent: u32) -> i64 {
    let product = i128::from(amount_cents) * i128::from(percent);
    i64::try_from(product.div_euclid(100)).unwrap_or(i64::MAX)
}

fn overflow() -> ServiceError {
    ServiceError::bad_request("money.overflow", "The amount is out of range.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_is_the_floor_of_the_percentage() {
        assert_eq!(percent_floor(10_000, 15), 1500);
        assert_eq!(percent_floor(9_999, 15), 1499);
        assert_eq!(percent_floor(100, 15), 15);
        assert_eq!(percent_floor(1, 15), 0);
        assert_eq!(percent_floor(i64::MAX, 100), i64::MAX);
    }

    #[test]
    fn currencies_are_lower_case_codes() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        assert!(Currency::parse("dollars").is_err());
        let money: Money = serde_json::from_str(r#"{"amount_cents": 1234, "currency": "EUR"}"#).unwrap();
        assert_eq!(money.to_string(), "12.34 EUR");
        assert!(serde_json::from_str::<Money>(r#"{"amount_cents": 1, "currency": "e1"}"#).is_err());
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_non_positive_amounts() {
        let usd = Currency::parse("usd").unwrap();
        let eur = Currency::parse("eur").unwrap();
        let a = Money::new(500, usd.clone());
        assert_eq!(a.checked_add(&Money::new(250, usd.clone())).unwrap().amount_cents, 750);
        assert_eq!(a.checked_sub(&Money::new(600, usd.clone())).unwrap().amount_cents, -100);
        assert_eq!(a.checked_add(&Money::new(1, eur)).unwrap_err().code(), "money.currency_mismatch");
        assert_eq!(Money::positive(0, usd).unwrap_err().code(), "validation.failed");
        assert_eq!(a.percent_floor(15).amount_cents, 75);
    }
}
