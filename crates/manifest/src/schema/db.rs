//! `[[functions.db]]` (a function runs on changes to a collection's documents),
//! `[[functions.kv]]` (on changes to a key-value store's keys) and
//! `collections = [...]` (the collections a function may reach through the document API with
//! the credential the platform gives it). Both name collections the app declares.
//!
//! ```toml
//! [[functions]]
//! name = "on-order"
//! collections = ["orders", "invoices"]
//! [[functions.db]]
//! collection = "orders"
//! events = ["created", "updated"]
//! ```

use serde::{Deserialize, Serialize};

use super::{
    Checker, DEFAULT_MAX_ATTEMPTS, MAX_BATCH_SIZE, MAX_MAX_ATTEMPTS, Retry, Step, check_count, key,
};
use crate::collections::{Collection, is_store_name};
use updraft_api::check_resource_name;

/// The changes a `[[functions.db]]` trigger can ask for.
pub const DB_EVENTS: [&str; 3] = ["created", "updated", "deleted"];
/// The changes a `[[functions.kv]]` trigger can ask for.
pub const KV_EVENTS: [&str; 2] = ["set", "deleted"];
/// The changes a `[[functions.bucket]]` trigger can ask for.
pub const BUCKET_EVENTS: [&str; 2] = ["created", "removed"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBucketTrigger {
    bucket: String,
    events: Option<Vec<String>>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    suffix: String,
    batch_size: Option<i64>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
}

/// One `[[functions.bucket]]` table: the function runs when objects are created (put, copied,
/// assembled from parts) or removed in a bucket, delivered at least once through the event
/// log after the object is committed, as CloudEvents (`dev.updraft.bucket.created|removed`)
/// whose data is an AWS S3 event record. The bucket is created at deploy if missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketTrigger {
    /// `bucket = "uploads"`.
    pub bucket: String,
    /// `events = ["created"]`: the changes that run it (both when left out).
    pub events: Vec<String>,
    /// `prefix = "incoming/"`: only keys starting with this.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// `suffix = ".jpg"`: only keys ending with this.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
    /// `batch_size = 10`: changes per invocation (more than 1: CloudEvents batch mode).
    pub batch_size: u32,
    /// Retries and dead letters.
    pub retry: Retry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKvTrigger {
    store: String,
    events: Option<Vec<String>>,
    batch_size: Option<i64>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
}

/// One `[[functions.kv]]` table: the function runs when keys of a key-value store are set or
/// deleted, delivered at least once through the event log as CloudEvents
/// (`dev.updraft.kv.set|deleted`). The store is created at deploy if missing, and logs its
/// changes from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvTrigger {
    /// `store = "sessions"`.
    pub store: String,
    /// `events = ["set"]`: the changes that run it (both when left out).
    pub events: Vec<String>,
    /// `batch_size = 10`: changes per invocation (more than 1: CloudEvents batch mode).
    pub batch_size: u32,
    /// Retries and dead letters.
    pub retry: Retry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDbTrigger {
    collection: String,
    events: Option<Vec<String>>,
    batch_size: Option<i64>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
}

/// One `[[functions.db]]` table: the function runs on changes to a collection's documents,
/// delivered at least once through the event log as CloudEvents
/// (`dev.updraft.db.created|updated|deleted`) with the document before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbTrigger {
    /// `collection = "orders"`: one of the app's `[[collections]]`.
    pub collection: String,
    /// `events = ["created", "deleted"]`: the changes that run it (all three when left out).
    pub events: Vec<String>,
    /// `batch_size = 10`: changes per invocation (more than 1: CloudEvents batch mode).
    pub batch_size: u32,
    /// Retries and dead letters.
    pub retry: Retry,
}

/// The checked settings every change trigger shares.
struct Common {
    events: Vec<String>,
    batch_size: u32,
    retry: Retry,
}

/// Checks a change trigger's `events` (out of `allowed`; all when left out), `batch_size`,
/// `max_attempts` and `dead_letter`, reporting under `functions[i].<table>[j]`.
#[allow(clippy::too_many_arguments)]
fn common(
    c: &mut Checker<'_>,
    (i, table, j): (usize, &str, usize),
    allowed: &[&str],
    events: Option<Vec<String>>,
    batch_size: Option<i64>,
    max_attempts: Option<i64>,
    dead_letter: Option<String>,
) -> Common {
    let at = |k: &str| {
        vec![
            key("functions"),
            Step::Index(i),
            key(table),
            Step::Index(j),
            key(k),
        ]
    };
    let names = allowed.join(", ");
    let mut out: Vec<String> = Vec::new();
    match events {
        None => out = allowed.iter().map(|e| (*e).to_owned()).collect(),
        Some(list) if list.is_empty() => {
            c.report(&at("events"), format!("list at least one of {names}"));
        }
        Some(list) => {
            for e in list {
                if !allowed.contains(&e.as_str()) {
                    c.report(&at("events"), format!("`{e}` is not one of {names}"));
                } else if !out.contains(&e) {
                    out.push(e);
                }
            }
        }
    }
    let batch_size = check_count(c, &at("batch_size"), batch_size, 1, MAX_BATCH_SIZE).unwrap_or(1);
    let max_attempts = check_count(c, &at("max_attempts"), max_attempts, 1, MAX_MAX_ATTEMPTS)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if let Some(q) = &dead_letter
        && let Err(e) = check_resource_name("queue", q)
    {
        c.report(&at("dead_letter"), e);
    }
    Common {
        events: out,
        batch_size,
        retry: Retry {
            max_attempts,
            dead_letter,
        },
    }
}

/// Validates function `i`'s `[[functions.db]]` tables (collection names are checked against
/// the app's collections later, by [`check_collections`]).
pub(super) fn db_triggers(c: &mut Checker<'_>, i: usize, raw: Vec<RawDbTrigger>) -> Vec<DbTrigger> {
    let mut out: Vec<DbTrigger> = Vec::new();
    for (j, t) in raw.into_iter().enumerate() {
        if out.iter().any(|o| o.collection == t.collection) {
            let path = [
                key("functions"),
                Step::Index(i),
                key("db"),
                Step::Index(j),
                key("collection"),
            ];
            c.report(
                &path,
                format!(
                    "`{}` is watched twice; list its events in one table",
                    t.collection
                ),
            );
        }
        let k = common(
            c,
            (i, "db", j),
            &DB_EVENTS,
            t.events,
            t.batch_size,
            t.max_attempts,
            t.dead_letter,
        );
        out.push(DbTrigger {
            collection: t.collection,
            events: k.events,
            batch_size: k.batch_size,
            retry: k.retry,
        });
    }
    out
}

/// Validates function `i`'s `[[functions.kv]]` tables.
pub(super) fn kv_triggers(c: &mut Checker<'_>, i: usize, raw: Vec<RawKvTrigger>) -> Vec<KvTrigger> {
    let mut out: Vec<KvTrigger> = Vec::new();
    for (j, t) in raw.into_iter().enumerate() {
        let path = [
            key("functions"),
            Step::Index(i),
            key("kv"),
            Step::Index(j),
            key("store"),
        ];
        if !is_store_name(&t.store) {
            c.report(&path, format!("`{}` is not a valid store name", t.store));
        } else if out.iter().any(|o| o.store == t.store) {
            c.report(
                &path,
                format!(
                    "`{}` is watched twice; list its events in one table",
                    t.store
                ),
            );
        }
        let k = common(
            c,
            (i, "kv", j),
            &KV_EVENTS,
            t.events,
            t.batch_size,
            t.max_attempts,
            t.dead_letter,
        );
        out.push(KvTrigger {
            store: t.store,
            events: k.events,
            batch_size: k.batch_size,
            retry: k.retry,
        });
    }
    out
}

/// Validates function `i`'s `[[functions.bucket]]` tables.
pub(super) fn bucket_triggers(
    c: &mut Checker<'_>,
    i: usize,
    raw: Vec<RawBucketTrigger>,
) -> Vec<BucketTrigger> {
    let mut out: Vec<BucketTrigger> = Vec::new();
    for (j, t) in raw.into_iter().enumerate() {
        let at = |k: &str| {
            vec![
                key("functions"),
                Step::Index(i),
                key("bucket"),
                Step::Index(j),
                key(k),
            ]
        };
        if let Err(e) = updraft_api::check_bucket_name(&t.bucket) {
            c.report(&at("bucket"), e);
        } else if out.iter().any(|o| o.bucket == t.bucket) {
            c.report(
                &at("bucket"),
                format!(
                    "`{}` is watched twice; list its events in one table",
                    t.bucket
                ),
            );
        }
        for (k, v) in [("prefix", &t.prefix), ("suffix", &t.suffix)] {
            if v.len() > 1024 {
                c.report(&at(k), "at most 1024 bytes (the longest key)".to_owned());
            }
        }
        let k = common(
            c,
            (i, "bucket", j),
            &BUCKET_EVENTS,
            t.events,
            t.batch_size,
            t.max_attempts,
            t.dead_letter,
        );
        out.push(BucketTrigger {
            bucket: t.bucket,
            events: k.events,
            prefix: t.prefix,
            suffix: t.suffix,
            batch_size: k.batch_size,
            retry: k.retry,
        });
    }
    out
}

/// Checks function `i`'s `buckets` grant: each `name`, `name:read` or `name:write`, each
/// bucket named once.
pub(super) fn bucket_grants(c: &mut Checker<'_>, i: usize, grants: &[String]) {
    for (j, g) in grants.iter().enumerate() {
        let at = [
            key("functions"),
            Step::Index(i),
            key("buckets"),
            Step::Index(j),
        ];
        if let Err(e) = updraft_api::parse_bucket_grants(std::slice::from_ref(g)) {
            c.report(&at, e);
        } else {
            let name = |s: &str| s.split(':').next().unwrap_or_default().to_owned();
            if grants[..j].iter().any(|o| name(o) == name(g)) {
                c.report(
                    &at,
                    format!("bucket `{}` is granted twice; name it once", name(g)),
                );
            }
        }
    }
}

/// Checks that function `i`'s `collections` grant and `[[functions.db]]` tables name
/// collections the app declares.
pub(super) fn check_collections(
    c: &mut Checker<'_>,
    i: usize,
    grant: &[String],
    triggers: &[DbTrigger],
    declared: &[Collection],
) {
    let known = |name: &str| declared.iter().any(|d| d.name == name);
    let unknown = |name: &str| {
        if is_store_name(name) {
            format!("`{name}` is not one of the app's [[collections]]")
        } else {
            format!("`{name}` is not a valid collection name")
        }
    };
    for (j, name) in grant.iter().enumerate() {
        let path = [
            key("functions"),
            Step::Index(i),
            key("collections"),
            Step::Index(j),
        ];
        if !known(name) {
            c.report(&path, unknown(name));
        } else if grant[..j].contains(name) {
            c.report(&path, format!("`{name}` is listed twice"));
        }
    }
    for (j, t) in triggers.iter().enumerate() {
        if !known(&t.collection) {
            let path = [
                key("functions"),
                Step::Index(i),
                key("db"),
                Step::Index(j),
                key("collection"),
            ];
            c.report(&path, unknown(&t.collection));
        }
    }
}
