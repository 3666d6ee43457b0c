//! Login tokens: HS256 JWTs with the algorithm pinned, and `exp`, `iat`, `jti` and `sub`
//! required. A token is only as good as the store says: its account must still exist (with the
//! same id, so a deleted and re-created user does not revive old tokens) and its `jti` must not
//! be revoked. That check is the caller's, through [`premise_store::Store::token_subject`].

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// How far in the future an `iat` may lie (clock skew between replicas).
const MAX_IAT_SKEW_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The account's id at the time of login.
    pub uid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed, badly signed or expired: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("token has expired")]
    Expired,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime_secs: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("lifetime_secs", &self.lifetime_secs).finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(secret: &[u8], lifetime_secs: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime_secs,
        }
    }

    /// A new token for the account, valid from `now` for the configured lifetime.
    pub fn issue(&self, username: &str, user_id: &str, now: i64) -> (String, Claims) {
        let claims = Claims {
            sub: username.to_owned(),
            uid: user_id.to_owned(),
            iat: now,
            exp: now + self.lifetime_secs,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, claims)
    }

    /// Checks signature, algorithm, expiry and that `iat` is not in the future, relative to
    /// `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims;
        if claims.iat > now + MAX_IAT_SKEW_SECS {
            return Err(TokenError::IssuedInFuture);
        }
        // RFC 7519: not accepted *on or after* `exp` (the library only refuses after it).
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip() {
        let tokens = Tokens::new(KEY, 3600);
        let now = 1_800_000_000;
        let (token, claims) = tokens.issue("admin", "uid-1", now);
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(tokens.verify(&token, now).unwrap(), claims);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn rejects_other_keys_alg_none_expiry_and_future_iat() {
        let tokens = Tokens::new(KEY, 3600);
        let now = 1_800_000_000;
        let (token, _) =
            Tokens::new(b"another key, also thirty-two bytes", 3600).issue("admin", "u", now);
        assert!(tokens.verify(&token, now).is_err(), "foreign key");

        let (good, _) = tokens.issue("admin", "u", now);
        let payload = good.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(tokens.verify(&format!("{none_header}.{payload}."), now).is_err(), "alg none");
        let hs512 = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        let sig = good.split('.').nth(2).unwrap();
        assert!(tokens.verify(&format!("{hs512}.{payload}.{sig}"), now).is_err(), "alg swap");

        let expired = Tokens::new(KEY, -10).issue("admin", "u", now).0;
        assert!(tokens.verify(&expired, now).is_err(), "expired");
        let (short, claims) = Tokens::new(KEY, 5).issue("admin", "u", now);
        assert!(tokens.verify(&short, claims.exp - 1).is_ok());
        assert!(matches!(tokens.verify(&short, claims.exp), Err(TokenError::Expired)), "on exp");
        let future = Tokens::new(KEY, 3600).issue("admin", "u", now + 3600).0;
        assert!(matches!(tokens.verify(&future, now), Err(TokenError::IssuedInFuture)));
        assert!(tokens.verify("not.a.jwt", now).is_err());
    }
}
