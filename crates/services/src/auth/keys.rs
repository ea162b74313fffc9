//! Per-project signing keys: ECDSA P-256 (ES256), made on first use, the private half sealed
//! by the server's [`Sealer`] before it is stored. Rotation adds a key and retires the others:
//! they stay in the JWKS and keep verifying until the tokens they signed have expired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use updraft_store::{AuthStore, SigningKeyRecord, now_ms};

use super::AuthError;

/// Seals and opens the private halves of signing keys (the server's secret key).
pub trait Sealer: Send + Sync + 'static {
    /// Seals `value` as `name` of `project`.
    fn seal(&self, project: &str, name: &str, value: &str) -> Vec<u8>;
    /// Opens what [`Sealer::seal`] made; `None` if it does not open.
    fn open(&self, project: &str, name: &str, sealed: &[u8]) -> Option<String>;
}

/// The keys of one project, ready to sign and verify.
pub(crate) struct ProjectKeys {
    /// The key new tokens are signed with: its id and key.
    pub(crate) signing: (String, EncodingKey),
    /// Every key that still verifies, by id.
    pub(crate) verifying: HashMap<String, DecodingKey>,
    jwks: Value,
}

impl ProjectKeys {
    /// `{"keys": [...]}`: the public keys, newest first.
    pub(crate) fn jwks(&self) -> Value {
        self.jwks.clone()
    }
}

/// Every project's keys, loaded (or made) on first use and kept in memory.
pub(crate) struct Keys {
    store: Arc<dyn AuthStore>,
    sealer: Arc<dyn Sealer>,
    cache: RwLock<HashMap<String, Arc<ProjectKeys>>>,
    changing: tokio::sync::Mutex<()>,
}

fn sealed_name(kid: &str) -> String {
    format!("auth-signing-key:{kid}")
}

impl Keys {
    pub(crate) fn new(store: Arc<dyn AuthStore>, sealer: Arc<dyn Sealer>) -> Self {
        Self {
            store,
            sealer,
            cache: RwLock::default(),
            changing: tokio::sync::Mutex::default(),
        }
    }

    /// The keys of `project`, made if it has none.
    pub(crate) async fn of(&self, project: &str) -> Result<Arc<ProjectKeys>, AuthError> {
        if let Some(k) = read(&self.cache).get(project) {
            return Ok(k.clone());
        }
        let _one_at_a_time = self.changing.lock().await;
        if let Some(k) = read(&self.cache).get(project) {
            return Ok(k.clone());
        }
        let mut stored = self.store.signing_keys(project).await?;
        if !stored.iter().any(|k| k.retired_at.is_none()) {
            let key = self.generate(project)?;
            self.store.rotate_signing_key(project, &key).await?;
            stored = self.store.signing_keys(project).await?;
        }
        let keys = Arc::new(self.build(project, &stored)?);
        write(&self.cache).insert(project.to_owned(), keys.clone());
        Ok(keys)
    }

    /// Adds a new signing key to `project`; keys retired longer ago than `ttl` (no token they
    /// signed is valid any more) are dropped.
    pub(crate) async fn rotate(&self, project: &str, ttl: Duration) -> Result<String, AuthError> {
        let _one_at_a_time = self.changing.lock().await;
        let key = self.generate(project)?;
        self.store.rotate_signing_key(project, &key).await?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // A minute of slack for clocks and tokens in flight.
        let before = now_ms().saturating_sub(ttl_ms.saturating_add(60_000));
        self.store.drop_retired_keys(project, before).await?;
        let stored = self.store.signing_keys(project).await?;
        let keys = Arc::new(self.build(project, &stored)?);
        write(&self.cache).insert(project.to_owned(), keys);
        tracing::info!(project, kid = %key.kid, "auth signing key rotated");
        Ok(key.kid)
    }

    /// Forgets `project`'s keys (it was deleted).
    pub(crate) fn forget(&self, project: &str) {
        write(&self.cache).remove(project);
    }

    fn generate(&self, project: &str) -> Result<SigningKeyRecord, AuthError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| AuthError::internal("making a signing key", e))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| AuthError::internal("reading a new signing key", e))?;
        let point = pair.public_key().as_ref();
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(AuthError::internal(
                "reading a new signing key",
                "unexpected public key length",
            ));
        };
        let kid = hex::encode(rand::random::<[u8; 8]>());
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["verify"],
        });
        Ok(SigningKeyRecord {
            sealed: self
                .sealer
                .seal(project, &sealed_name(&kid), &hex::encode(pkcs8.as_ref())),
            public_jwk: jwk.to_string(),
            created_at: now_ms(),
            retired_at: None,
            kid,
        })
    }

    fn build(&self, project: &str, stored: &[SigningKeyRecord]) -> Result<ProjectKeys, AuthError> {
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        let mut signing = None;
        for k in stored.iter().rev() {
            let jwk: Value = serde_json::from_str(&k.public_jwk)
                .map_err(|e| AuthError::internal("reading a stored public key", e))?;
            let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
                return Err(AuthError::internal(
                    "reading a stored public key",
                    "no x or y",
                ));
            };
            let decoding = DecodingKey::from_ec_components(x, y)
                .map_err(|e| AuthError::internal("reading a stored public key", e))?;
            verifying.insert(k.kid.clone(), decoding);
            published.push(jwk);
            if k.retired_at.is_none() && signing.is_none() {
                let der = self
                    .sealer
                    .open(project, &sealed_name(&k.kid), &k.sealed)
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(|| {
                        AuthError::internal(
                            "opening a signing key",
                            format!(
                                "the signing key of project `{project}` does not open with this \
                                 server's secrets key"
                            ),
                        )
                    })?;
                signing = Some((k.kid.clone(), EncodingKey::from_ec_der(&der)));
            }
        }
        let signing =
            signing.ok_or_else(|| AuthError::internal("loading signing keys", "no current key"))?;
        Ok(ProjectKeys {
            signing,
            verifying,
            jwks: json!({ "keys": published }),
        })
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
