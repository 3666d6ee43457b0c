//! The sealed form of a settings backup (`POST /v1/settings/backup`): the settings as JSON,
//! encrypted and authenticated with XChaCha20-Poly1305 under a key derived from the backup's
//! password with Argon2id (19 MiB, 2 passes, as OWASP recommends), a fresh random salt and
//! nonce each time. The result is base64 of `PRB1 | salt (16) | nonce (24) | ciphertext+tag`.
//! A wrong password and altered data are the same failure: the tag does not verify.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const MAGIC: &[u8; 4] = b"PRB1";
const SALT: usize = 16;
const NONCE: usize = 24;

/// Why sealed data could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not base64, too short, or not a Premise backup.
    Malformed,
    /// The password is wrong or the data was altered.
    Rejected,
}

fn key(password: &str, salt: &[u8]) -> chacha20poly1305::Key {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("valid Argon2 parameters");
    let mut key = chacha20poly1305::Key::default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut key)
        .expect("a 16-byte salt and a 32-byte key are within Argon2's limits");
    key
}

/// `plaintext` sealed under `password`.
pub fn seal(password: &str, plaintext: &[u8]) -> String {
    let mut salt = [0u8; SALT];
    let mut nonce = [0u8; NONCE];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(&key(password, &salt));
    let sealed = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: MAGIC })
        .expect("encryption with a valid key and nonce cannot fail");
    let mut out = Vec::with_capacity(MAGIC.len() + SALT + NONCE + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The plaintext `data` seals, if `password` is the one it was sealed with.
pub fn open(password: &str, data: &str) -> Result<Vec<u8>, OpenError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| OpenError::Malformed)?;
    if bytes.len() < MAGIC.len() + SALT + NONCE + 16 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(OpenError::Malformed);
    }
    let (salt, rest) = bytes[MAGIC.len()..].split_at(SALT);
    let (nonce, sealed) = rest.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().expect("split at the nonce's length");
    XChaCha20Poly1305::new(&key(password, salt))
        .decrypt(&XNonce::from(nonce), Payload { msg: sealed, aad: MAGIC })
        .map_err(|_| OpenError::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_opens_it_and_any_change_is_caught() {
        let data = seal("correct horse", b"{\"settings\":1}");
        assert_eq!(open("correct horse", &data).unwrap(), b"{\"settings\":1}");
        assert_ne!(
            seal("correct horse", b"x"),
            seal("correct horse", b"x"),
            "fresh salt and nonce"
        );
        assert_eq!(open("wrong horse", &data), Err(OpenError::Rejected));
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(&data).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(open("correct horse", &altered), Err(OpenError::Rejected));
        assert_eq!(open("correct horse", "not base64!"), Err(OpenError::Malformed));
        assert_eq!(open("correct horse", "UFJCMQ=="), Err(OpenError::Malformed));
    }
}
