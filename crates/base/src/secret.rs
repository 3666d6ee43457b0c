//! A secret setting (a token, a password, an app secret): its `Debug` never shows it, only
//! whether it is set, and it is read with [`Secret::expose`] where it is used.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A value that must never reach a log line. It deserialises from a string or a whole number,
/// because an environment variable of digits arrives as a number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"[hidden]\"" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_or_number(d).map(Self)
    }
}

/// A string setting whose value may be all digits (an environment variable of digits arrives as
/// a number), for `#[serde(deserialize_with = "premise_base::text_or_number")]`.
pub fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct TextOrNumber;
    impl serde::de::Visitor<'_> for TextOrNumber {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a whole number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(TextOrNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_itself_and_reads_digits_as_text() {
        let secret: Secret = serde_json::from_str("\"s3cret\"").unwrap();
        assert_eq!(format!("{secret:?}"), "\"[hidden]\"");
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
        let digits: Secret = serde_json::from_str("123456").unwrap();
        assert_eq!(digits.expose(), "123456");
    }
}
