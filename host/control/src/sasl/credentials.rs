//! Password storage: an argon2id hash for PLAIN and SCRAM verifiers for
//! SCRAM-SHA-256, both derived when the password is set.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use super::scram;
use crate::store::ScramKeys;

/// Why credentials could not be derived.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct CredentialError(String);

/// Hashes `password` for PLAIN and derives the SCRAM keys.
pub fn derive(
    password: &str,
    scram_iterations: u32,
) -> Result<(String, ScramKeys), CredentialError> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| CredentialError(error.to_string()))?
        .to_string();
    let scram_salt: [u8; 16] = rand::random();
    let keys = scram::derive_keys(
        password,
        &scram_salt,
        scram_iterations.max(scram::MIN_ITERATIONS),
    );
    Ok((hash, keys))
}

/// Checks `password` against an argon2 PHC string. CPU-heavy on purpose:
/// call it off the async executor.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash that matches no password, checked for unknown users so that an
/// attacker cannot tell them from known ones by the time a reply takes.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random: [u8; 16] = rand::random();
        Argon2::default()
            .hash_password(&random, &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}
