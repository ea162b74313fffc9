//! Argon2id password hashes at OWASP's parameters: 19 MiB of memory, 2 passes, 1 lane.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::AuthError;

fn argon2() -> Argon2<'static> {
    // OWASP's first recommendation for Argon2id: m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password`'s hash (on a blocking thread: it takes tens of ms).
pub(crate) async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::internal("hashing a password", e))
    })
    .await
    .map_err(|e| AuthError::internal("hashing a password", e))?
}

/// Whether `password` matches `phc` (a PHC string). The comparison is the hash crate's,
/// constant-time.
pub(crate) async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password: checked against when an account does not exist, so the
/// answer takes as long as for one that does.
pub(crate) fn dummy_hash() -> String {
    let salt = SaltString::generate(&mut OsRng);
    let random = hex::encode(rand::random::<[u8; 16]>());
    argon2()
        .hash_password(random.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}
