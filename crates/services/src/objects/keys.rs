//! S3 access keys: an id (`AKUP` and 16 upper-case letters and digits, like AWS's `AKIA...`)
//! recorded with its project and grants, and a secret derived from the id with HMAC-SHA256
//! under a key the server derives from its secret key. The secret is stored nowhere: it is
//! shown once when the key is made, and recomputed to check a signature. Deleting the record
//! revokes the key; replacing the server's secret key revokes every key.

use base64::Engine as _;
use ring::hmac;
use serde::Serialize;
use updraft_store::objects::S3KeyRecord;

/// The prefix of every access key id.
pub const KEY_PREFIX: &str = "AKUP";

/// The prefix of a function's access key id (derived, not stored; see
/// [`S3Keys::function_key_id`]).
pub const FUNCTION_KEY_PREFIX: &str = "AKFN";

/// The alphabet of key ids after their prefix (base32's).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Mints ids and derives secrets.
pub struct S3Keys {
    key: hmac::Key,
}

/// A key as made: its record and its secret (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct MintedKey {
    /// What is stored.
    #[serde(flatten)]
    pub record: S3KeyRecord,
    /// The secret access key.
    pub secret_access_key: String,
}

impl S3Keys {
    /// Keys derived with `key` (keep it to the server: anyone holding it can sign as any key).
    pub fn new(key: hmac::Key) -> Self {
        Self { key }
    }

    /// A fresh access key id.
    pub fn new_id(&self) -> String {
        let random: [u8; 16] = rand::random();
        format!("{KEY_PREFIX}{}", tail(&random))
    }

    /// The access key id of function `function` of `project` granted `grants` (as the
    /// manifest writes them): the same for the same three, so every version and restart with
    /// those grants signs with one key, and nobody without the server's key can derive it.
    pub fn function_key_id(&self, project: &str, function: &str, grants: &[String]) -> String {
        let mac = hmac::sign(
            &self.key,
            format!("s3-function\0{project}\0{function}\0{}", grants.join("\0")).as_bytes(),
        );
        format!("{FUNCTION_KEY_PREFIX}{}", tail(mac.as_ref()))
    }

    /// The secret of access key `id`: 40 characters, as AWS's are.
    pub fn secret(&self, id: &str) -> String {
        let mac = hmac::sign(&self.key, format!("s3-secret\0{id}").as_bytes());
        let mut s = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
        s.truncate(40);
        s
    }
}

/// 16 characters of [`ALPHABET`] from the first 16 bytes.
fn tail(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(16)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}
