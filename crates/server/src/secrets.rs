//! Project secrets at rest: sealed with ChaCha20-Poly1305 under the server's secret key before
//! they reach the store, opened only to go into the environment of the functions granted them.
//!
//! The key is 32 random bytes, hex-encoded in a file: `<data dir>/secrets.key` (created at the
//! first start, mode 0600), or the file `[secrets] key_file` names (the operator's, kept apart
//! from the data: a copy of the data directory alone then opens nothing). A sealed value is a
//! format byte, a random 96-bit nonce and the ciphertext with its tag; the project and the
//! secret's name are its associated data, so a sealed value moved to another row does not open.
//!
//! Values never leave the server but into a guest's environment: no API answer, CLI output or
//! log line carries one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use updraft_dispatch::BoxFuture;
use updraft_registry::SecretSource;
use updraft_store::MetadataStore;

use crate::ServerError;

/// File name of the generated key inside the data directory.
pub(crate) const KEY_FILE: &str = "secrets.key";

/// The first byte of a sealed value: this format.
const FORMAT: u8 = 1;

/// Largest secret value accepted.
pub(crate) const MAX_SECRET_BYTES: usize = 64 << 10;

/// The server's secret key.
pub(crate) struct SecretKey {
    key: LessSafeKey,
    /// Signs function credentials (derived from the key, for that purpose only).
    credentials: ring::hmac::Key,
    /// Derives S3 secret access keys (likewise).
    s3_keys: ring::hmac::Key,
}

fn aad(project: &str, name: &str) -> Vec<u8> {
    format!("updraft-secret\0{project}\0{name}").into_bytes()
}

impl SecretKey {
    /// Reads the key from `configured`, or from `<data dir>/secrets.key`, creating that one
    /// (0600) if it does not exist.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a key file that is not 64 hex digits; I/O errors.
    pub(crate) fn load_or_create(
        data_dir: &Path,
        configured: Option<&Path>,
    ) -> Result<Self, ServerError> {
        let path: PathBuf = configured.map_or_else(|| data_dir.join(KEY_FILE), Path::to_path_buf);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && configured.is_none() => {
                let fresh = hex::encode(rand::random::<[u8; 32]>());
                crate::auth::write_private(&path, &fresh)
                    .map_err(ServerError::io("writing the secrets key file"))?;
                fresh
            }
            Err(e) => {
                return Err(ServerError::Config(format!(
                    "secrets key file {}: {e}",
                    path.display()
                )));
            }
        };
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                ServerError::Config(format!(
                    "secrets key file {}: must hold 64 hex digits (32 bytes)",
                    path.display()
                ))
            })?;
        Self::from_bytes(&bytes)
            .ok_or_else(|| ServerError::Config("secrets key: not a usable key".to_owned()))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        let derived = ring::hmac::sign(&root, b"updraft function credentials v1");
        let s3 = ring::hmac::sign(&root, b"updraft s3 secret keys v1");
        Some(Self {
            key: LessSafeKey::new(key),
            credentials: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
            s3_keys: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s3.as_ref()),
        })
    }

    /// The key function credentials are signed with.
    pub(crate) fn credentials(&self) -> &ring::hmac::Key {
        &self.credentials
    }

    /// The key S3 secret access keys are derived with.
    pub(crate) fn s3_keys(&self) -> ring::hmac::Key {
        self.s3_keys.clone()
    }

    /// Seals `value` as secret `name` of `project`.
    pub(crate) fn seal(&self, project: &str, name: &str, value: &[u8]) -> Vec<u8> {
        let nonce_bytes = rand::random::<[u8; NONCE_LEN]>();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + value.len() + 16);
        out.push(FORMAT);
        out.extend_from_slice(&nonce_bytes);
        let mut body = value.to_vec();
        // Sealing only fails for inputs past ChaCha20's 256 GiB limit.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad(project, name)),
                &mut body,
            )
            .is_err()
        {
            return Vec::new();
        }
        out.extend_from_slice(&body);
        out
    }

    /// Opens what [`SecretKey::seal`] made for secret `name` of `project`.
    pub(crate) fn open(&self, project: &str, name: &str, sealed: &[u8]) -> Option<String> {
        let (&format, rest) = sealed.split_first()?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(project, name)), &mut body)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// Opens secrets for the registry.
pub(crate) struct StoredSecrets {
    pub(crate) metadata: Arc<dyn MetadataStore>,
    pub(crate) key: Arc<SecretKey>,
}

impl SecretSource for StoredSecrets {
    fn values<'a>(
        &'a self,
        project: &'a str,
        names: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>, String>> {
        Box::pin(async move {
            let stored = self
                .metadata
                .secrets(project)
                .await
                .map_err(|e| e.to_string())?;
            let mut out = BTreeMap::new();
            for s in stored.into_iter().filter(|s| names.contains(&s.name)) {
                let value = self.key.open(project, &s.name, &s.sealed).ok_or_else(|| {
                    format!(
                        "secret `{}` of project `{project}` does not open with this server's \
                         secrets key (was the key file replaced?)",
                        s.name
                    )
                })?;
                out.insert(s.name, value);
            }
            Ok(out)
        })
    }
}

impl updraft_services::auth::Sealer for SecretKey {
    fn seal(&self, project: &str, name: &str, value: &str) -> Vec<u8> {
        SecretKey::seal(self, project, name, value.as_bytes())
    }

    fn open(&self, project: &str, name: &str, sealed: &[u8]) -> Option<String> {
        SecretKey::open(self, project, name, sealed)
    }
}

#[cfg(test)]
mod tests;
