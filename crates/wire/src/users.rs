//! Users, passwords and login (`docs/onprem-api.md` section 2).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Rejection;

/// A user name the On-Premises client would accept: 4 to 32 characters of letters, digits and
/// `_ . - @`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Rejection> {
        let len = raw.chars().count();
        if !(4..=32).contains(&len) {
            return Err(Rejection::invalid(field, "must be 4 to 32 characters long"));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c)) {
            return Err(Rejection::invalid(
                field,
                "may contain only letters, digits and the characters _ . - @",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The special characters the On-Premises password policy counts.
pub const PASSWORD_SPECIALS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// A password that satisfies the On-Premises policy: 8 to 64 characters with at least one digit,
/// one upper-case letter, one lower-case letter and one special character. Its `Debug` never
/// shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Checks the rules in order and names the first one broken.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Rejection> {
        let len = raw.chars().count();
        let rules: [(bool, &str); 5] = [
            ((8..=64).contains(&len), "must be 8 to 64 characters long"),
            (raw.chars().any(|c| c.is_ascii_digit()), "must contain at least one digit"),
            (
                raw.chars().any(|c| c.is_ascii_uppercase()),
                "must contain at least one upper-case letter",
            ),
            (
                raw.chars().any(|c| c.is_ascii_lowercase()),
                "must contain at least one lower-case letter",
            ),
            (
                raw.chars().any(|c| PASSWORD_SPECIALS.contains(c)),
                "must contain at least one special character (one of !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~)",
            ),
        ];
        match rules.iter().find(|(ok, _)| !ok) {
            Some((_, rule)) => Err(Rejection::invalid(field, format!("password {rule}"))),
            None => Ok(Self(raw.to_owned())),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    #[serde(rename = "ROLE_ADMIN")]
    Admin,
    #[serde(rename = "ROLE_USER")]
    User,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ROLE_ADMIN",
            Self::User => "ROLE_USER",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, Rejection> {
        match raw {
            "ROLE_ADMIN" => Ok(Self::Admin),
            "ROLE_USER" => Ok(Self::User),
            other => Err(Rejection::invalid(
                field,
                format!("'{other}' is not one of ROLE_ADMIN, ROLE_USER"),
            )),
        }
    }
}

/// `POST /v1/users/login` body; it is optional, and so is its one field.
#[derive(Debug, Default, Deserialize)]
pub struct LoginRequest {
    pub new_password: Option<String>,
}

impl LoginRequest {
    pub fn new_password(&self) -> Result<Option<Password>, Rejection> {
        self.new_password.as_deref().map(|p| Password::parse("new_password", p)).transpose()
    }
}

/// `POST /v1/users` body.
#[derive(Debug, Deserialize)]
pub struct CreateUserRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    /// Not in Meta's samples, which only create `ROLE_USER` accounts; accepted so that an
    /// operator can create further administrators. Same spelling as the `GET` answer.
    #[serde(rename = "ROLES")]
    pub roles: Option<String>,
}

impl CreateUserRequest {
    pub fn parse(&self) -> Result<(Username, Password, Role), Rejection> {
        let username = self.username.as_deref().ok_or_else(|| Rejection::missing("username"))?;
        let password = self.password.as_deref().ok_or_else(|| Rejection::missing("password"))?;
        let role = match self.roles.as_deref() {
            Some(raw) => Role::parse("ROLES", raw)?,
            None => Role::User,
        };
        Ok((Username::parse("username", username)?, Password::parse("password", password)?, role))
    }
}

/// `PUT /v1/users/{username}` body.
#[derive(Debug, Deserialize)]
pub struct UpdateUserRequest {
    pub password: Option<String>,
}

impl UpdateUserRequest {
    pub fn parse(&self) -> Result<Password, Rejection> {
        let raw = self.password.as_deref().ok_or_else(|| Rejection::missing("password"))?;
        Password::parse("password", raw)
    }
}

/// One entry of `users[]` in a login answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginToken {
    pub token: String,
    pub expires_after: String,
}

/// One entry of `users[]` in a user answer. `ROLES` is upper-case, as On-Premises spelled it,
/// and only present where On-Premises showed it (`GET`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    #[serde(rename = "ROLES", skip_serializing_if = "Option::is_none")]
    pub roles: Option<Role>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn password_rules_name_the_first_rule_broken() {
        let cases = [
            ("Sh0rt!", "8 to 64"),
            (&"Aa1!".repeat(17) as &str, "8 to 64"),
            ("NoDigits!!", "digit"),
            ("nouppercase1!", "upper-case"),
            ("NOLOWERCASE1!", "lower-case"),
            ("NoSpecial123", "special"),
        ];
        for (raw, rule) in cases {
            let err = Password::parse("new_password", raw).unwrap_err();
            assert_eq!(err.code, ErrorCode::ParameterValueInvalid, "{raw}");
            assert!(err.details.starts_with("new_password: "), "{}", err.details);
            assert!(err.details.contains(rule), "{raw}: {}", err.details);
        }
        for ok in ["Secret123!", "aB3$aB3$", &"aB3~".repeat(16)] {
            assert!(Password::parse("p", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn password_debug_hides_the_text() {
        let p = Password::parse("p", "Secret123!").unwrap();
        assert!(!format!("{p:?}").contains("Secret"));
    }

    #[test]
    fn usernames() {
        assert!(Username::parse("u", "abc").is_err());
        assert!(Username::parse("u", &"a".repeat(33)).is_err());
        assert!(Username::parse("u", "has space").is_err());
        assert_eq!(Username::parse("u", "ops.user-1@acme").unwrap().as_str(), "ops.user-1@acme");
    }
}
