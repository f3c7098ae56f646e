//! Amounts and currencies, parsed at the edge so that nothing inside holds an invalid one.

use std::fmt;

use super::input::Rejection;

/// An amount in the currency's minor unit, within the API's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 99_999_999;

    pub fn new(value: i64) -> Result<Self, AmountError> {
        if value < Self::MIN {
            Err(AmountError::TooSmall)
        } else if value > Self::MAX {
            Err(AmountError::TooLarge)
        } else {
            Ok(Amount(value))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountError {
    TooSmall,
    TooLarge,
}

/// An ISO 4217 currency code, lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    /// Accepts any case; returns `None` for a code that ISO 4217 does not list.
    pub fn parse(code: &str) -> Option<Self> {
        if code.len() != 3 {
            return None;
        }
        let upper = code.to_ascii_uppercase();
        ISO_4217.binary_search(&upper.as_str()).ok()?;
        Some(Currency(upper.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Currencies already stored were validated when they came in.
    pub fn from_stored(code: String) -> Self {
        Currency(code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::input::checked(deserializer, |value: i64| {
            Amount::new(value).map_err(|e| match e {
                AmountError::TooSmall => {
                    Rejection::new("amount_too_small", format!("Invalid {{param}}: must be at least {}.", Amount::MIN))
                }
                AmountError::TooLarge => {
                    Rejection::new("amount_too_large", format!("Invalid {{param}}: must be at most {}.", Amount::MAX))
                }
            })
        })
    }
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::input::integer_schema(Amount::MIN, Amount::MAX, "An amount in the currency's minor unit.")
    }
}

impl utoipa::ToSchema for Amount {}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <String as serde::Deserialize>::deserialize(deserializer)?;
        Currency::parse(&code).ok_or_else(|| {
            Rejection::new(
                "invalid_currency",
                format!(
                    "Invalid currency: {}. Use a three-letter ISO 4217 code, such as eur.",
                    crate::error::clip(&code)
                ),
            )
            .into_error()
        })
    }
}

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, schema::Type};
        // Lower and upper case listed; the server also takes mixed case.
        let codes = ISO_4217.iter().map(|c| c.to_ascii_lowercase()).chain(ISO_4217.iter().map(|c| (*c).to_owned()));
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some("An ISO 4217 currency code, in any case."))
            .into()
    }
}

impl utoipa::ToSchema for Currency {}

/// The active codes of ISO 4217 (list one, 2024), sorted for binary search.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CLF",
    "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR",
    "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP",
    "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
    "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG",
    "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_list_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn currency_is_case_insensitive_and_lower_cased() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "eur");
        assert_eq!(Currency::parse("eUr").unwrap().as_str(), "eur");
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "usd");
    }

    #[test]
    fn unknown_currencies_are_refused() {
        for bad in ["xyz", "eu", "euro", "", "€€€", "e u"] {
            assert!(Currency::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn amount_bounds() {
        assert_eq!(Amount::new(0), Err(AmountError::TooSmall));
        assert_eq!(Amount::new(-5), Err(AmountError::TooSmall));
        assert_eq!(Amount::new(1).unwrap().get(), 1);
        assert_eq!(Amount::new(99_999_999).unwrap().get(), 99_999_999);
        assert_eq!(Amount::new(100_000_000), Err(AmountError::TooLarge));
    }
}
