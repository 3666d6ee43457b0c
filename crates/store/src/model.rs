//! The rows the store hands out and takes in.

use premise_wire::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A stored account. `password_hash` is a PHC string (Argon2id).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub must_change_password: bool,
    pub created_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

/// What a bearer token's subject resolves to right now: the account it names (if it still
/// exists) and whether the token itself was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: String,
    pub role: Role,
    pub revoked: bool,
}

pub(crate) fn parse_role(raw: &str) -> Result<Role, crate::StoreError> {
    Role::parse("role", raw)
        .map_err(|_| crate::StoreError::Corrupt(format!("unknown role {raw:?}")))
}
