//! API keys and the admin token: how they are made, stored and compared.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every key starts with this, so a leaked one is easy to recognise in a scan.
pub const KEY_PREFIX: &str = "sk_";

/// A new API key: 256 random bits. Only its hash is stored.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Characters of a key kept to tell it apart: the prefix and 7 of its random ones.
pub const SHOWN_CHARACTERS: usize = 10;

/// What may be shown of a key once it is made.
pub fn shown_part(key: &str) -> String {
    key.chars().take(SHOWN_CHARACTERS).collect()
}

/// Whether `key` has the shape of a key this service makes: a request carrying anything
/// else is refused before the database is asked.
pub fn is_well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The shortest admin token the service accepts.
pub const MIN_ADMIN_TOKEN_LENGTH: usize = 32;

/// Keys carry 256 bits of entropy, so one SHA-256 round is enough: there is nothing to
/// brute-force that a slow hash would protect.
pub fn hash_api_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Whether `given` is the admin token, in time independent of where they differ.
pub fn is_admin_token(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hash_stably() {
        let (a, b) = (generate_api_key(), generate_api_key());
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
        assert!(is_well_formed(&a));
        assert_eq!(shown_part(&a).len(), 10);
        assert!(!is_well_formed("sk_123"));
        assert!(!is_well_formed(&a.replace("sk_", "pk_")));
        assert!(!is_well_formed(&format!("{a}0")));
    }

    #[test]
    fn the_admin_token_matches_only_itself() {
        assert!(is_admin_token("secret-token", "secret-token"));
        assert!(!is_admin_token("secret-tokeN", "secret-token"));
        assert!(!is_admin_token("", "secret-token"));
    }
}
