//! Exact money: integer minor units (cents) inside, a JSON number with at
//! most two decimals on the wire. No float arithmetic ever touches an
//! amount: a wire number is read through its shortest decimal text.

use std::fmt;

use serde::{Serialize, Serializer};

/// An amount in minor units (cents).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(u64);

impl Money {
    /// 1,000,000.00: the largest price the catalog accepts.
    pub const MAX_PRICE: Money = Money(100_000_000);
    pub const ZERO: Money = Money(0);

    pub const fn from_minor(minor: u64) -> Self {
        Money(minor)
    }

    pub const fn minor(self) -> u64 {
        self.0
    }

    /// Parses `12`, `12.5` or `12.34`: digits, at most two decimals, no
    /// sign, no exponent.
    pub fn parse_decimal(text: &str) -> Result<Self, String> {
        let invalid = || Err("must be a non-negative amount with at most two decimals".to_owned());
        let (units, fraction) = text.split_once('.').unwrap_or((text, ""));
        if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
            return invalid();
        }
        if fraction.len() > 2
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || (text.contains('.') && fraction.is_empty())
        {
            return invalid();
        }
        let units: u64 = units.parse().map_err(|_| "is too large".to_owned())?;
        let cents: u64 = format!("{fraction:0<2}").parse().unwrap_or(0);
        units
            .checked_mul(100)
            .and_then(|minor| minor.checked_add(cents))
            .map(Money)
            .ok_or_else(|| "is too large".to_owned())
    }

    /// Reads a JSON number. A float is taken through its shortest
    /// round-trip text (`19.99` stays `19.99`), never multiplied as a float.
    pub fn from_json(number: &serde_json::Number) -> Result<Self, String> {
        if let Some(whole) = number.as_u64() {
            return whole.checked_mul(100).map(Money).ok_or_else(|| "is too large".to_owned());
        }
        match number.as_f64() {
            Some(value) if value >= 0.0 && value.is_finite() => Money::parse_decimal(&format!("{value}")),
            _ => Err("must be a non-negative amount with at most two decimals".into()),
        }
    }

    /// A price: more than zero, at most [`Money::MAX_PRICE`].
    pub fn price_from_json(number: &serde_json::Number) -> Result<Self, String> {
        let price = Money::from_json(number)?;
        if price == Money::ZERO {
            return Err("must be greater than 0".into());
        }
        if price > Money::MAX_PRICE {
            return Err(format!("must be at most {}", Money::MAX_PRICE));
        }
        Ok(price)
    }

    pub fn checked_mul(self, quantity: u64) -> Option<Money> {
        self.0.checked_mul(quantity).map(Money)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// On the wire a JSON number. The division is IEEE correctly rounded, so
/// the double is the one nearest the exact amount, and JSON's shortest
/// form of it prints the amount's own digits (`19.99`, `10.0`).
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0 as f64 / 100.0)
    }
}

/// Read back from what [`Serialize`] wrote (events carry prices): a JSON
/// number with at most two decimals.
impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        Money::from_json(&number).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(json: &str) -> serde_json::Number {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(Money::parse_decimal("19.99"), Ok(Money(1999)));
        assert_eq!(Money::parse_decimal("19.9"), Ok(Money(1990)));
        assert_eq!(Money::parse_decimal("19"), Ok(Money(1900)));
        assert_eq!(Money::parse_decimal("0.01"), Ok(Money(1)));
        for bad in ["", "-1", "1.234", "1.", ".5", "1e3", "abc", "1.2.3", " 1"] {
            assert!(Money::parse_decimal(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn json_numbers_convert_without_float_error() {
        assert_eq!(Money::from_json(&number("0.1")), Ok(Money(10)));
        assert_eq!(Money::from_json(&number("0.29")), Ok(Money(29)));
        assert_eq!(Money::from_json(&number("1234567.89")), Ok(Money(123456789)));
        assert_eq!(Money::from_json(&number("5")), Ok(Money(500)));
        assert_eq!(Money::from_json(&number("5.0")), Ok(Money(500)));
        assert!(Money::from_json(&number("19.999")).is_err());
        assert!(Money::from_json(&number("-1")).is_err());
        assert!(Money::from_json(&number("1e-3")).is_err());
    }

    #[test]
    fn prices_are_positive_and_bounded() {
        assert!(Money::price_from_json(&number("0")).is_err());
        assert!(Money::price_from_json(&number("0.00")).is_err());
        assert!(Money::price_from_json(&number("1000000.01")).is_err());
        assert_eq!(Money::price_from_json(&number("1000000")), Ok(Money::MAX_PRICE));
    }

    #[test]
    fn amounts_serialize_as_their_own_digits() {
        for (minor, json) in [(1999, "19.99"), (10, "0.1"), (1000, "10.0"), (29, "0.29"), (123456789, "1234567.89")] {
            assert_eq!(serde_json::to_string(&Money(minor)).unwrap(), json);
        }
    }

    #[test]
    fn every_cent_amount_up_to_the_max_price_survives_the_wire() {
        // Sampled: a wire round trip (serialize, parse back) is exact.
        for minor in (0..=Money::MAX_PRICE.minor()).step_by(9973).chain([1, 99, 100_000_000]) {
            let json = serde_json::to_string(&Money(minor)).unwrap();
            assert_eq!(Money::from_json(&number(&json)), Ok(Money(minor)), "{json}");
        }
    }
}
