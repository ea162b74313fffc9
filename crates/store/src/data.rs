//! [`DataStore`]: the SQLite backend of application data ([`crate::KvStore`] and
//! [`crate::DocStore`]), in its own database file (`data.db`) so application traffic never
//! queues behind deploys or log batches. Writes go through the group-committing writer thread
//! (`synchronous = FULL`: durable when they return); reads use a small pool of `query_only`
//! connections on the caller's thread (WAL: readers never wait for the writer, and a point
//! read takes microseconds).
//!
//! The server's own connections to `data.db` use SQLite's `unix-excl` VFS: the first holds an
//! exclusive lock on the file for the process, and the WAL index lives in this process's heap
//! instead of a shared `-shm` file. Transactions then take no `fcntl` locks, and the WAL-index
//! mutex the writer and the readers share is never held across a system call: with a shared
//! `-shm`, a read beside a busy writer (a key-value `get` next to every `set`) stalled on that
//! mutex several times per request. The price: no other process may open `data.db` while the
//! server runs (backups go through the server: `updraft backup`).

mod backup;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub use backup::Restored;
pub(crate) use writer::Ctx;
use writer::Writer;

use crate::{StoreError, io_err, lock};

/// Committed changes held for subscribers that have not taken them yet.
pub(crate) const CHANGES_BUFFERED: usize = 4096;

/// Read connections kept open between reads.
const READERS: usize = 8;

/// Statements each connection keeps prepared (rusqlite's default is 16). The writer runs the
/// statements of key-value, documents, objects and sites (about 70 in all); past the capacity
/// its cache evicts the least recently used one and a mixed load prepares statements again
/// on every write.
pub(crate) const STATEMENTS: usize = 128;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE data_meta (seq INTEGER NOT NULL);
INSERT INTO data_meta (seq) VALUES (0);
CREATE TABLE kv_stores (
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) WITHOUT ROWID;
CREATE TABLE kv (
    project     TEXT NOT NULL,
    store       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       BLOB NOT NULL,
    revision    INTEGER NOT NULL,
    expires_at  INTEGER,
    PRIMARY KEY (project, store, key)
) WITHOUT ROWID;
CREATE INDEX kv_by_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE kv_usage (
    project     TEXT PRIMARY KEY,
    keys        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // Documents: collections with their settings, and the documents (one expression index per
    // declared field is added when a collection declares it).
    r#"
CREATE TABLE doc_collections (
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) WITHOUT ROWID;
CREATE TABLE docs (
    project     TEXT NOT NULL,
    collection  TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, collection, id)
);
"#,
    // The change log of documents: one row per committed write, by its revision.
    r#"
CREATE TABLE doc_changes (
    revision    INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    collection  TEXT NOT NULL,
    id          TEXT NOT NULL,
    op          TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX doc_changes_by_collection ON doc_changes (project, collection, revision);
"#,
    // The change log of watched key-value stores (those `[[functions.kv]]` triggers follow).
    r#"
ALTER TABLE kv_stores ADD COLUMN watched INTEGER NOT NULL DEFAULT 0;
CREATE TABLE kv_changes (
    revision    INTEGER PRIMARY KEY,
    project     TEXT NOT NULL,
    store       TEXT NOT NULL,
    key         TEXT NOT NULL,
    op          TEXT NOT NULL,
    value       BLOB,
    size        INTEGER NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX kv_changes_by_store ON kv_changes (project, store, revision);
"#,
    // Object storage: buckets (names unique on the server), objects by their key's bytes,
    // each project's totals, multipart uploads and their parts, S3 access keys.
    r#"
CREATE TABLE buckets (
    name        TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    public_read INTEGER NOT NULL DEFAULT 0,
    cors        TEXT,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX buckets_by_project ON buckets (project, name);
CREATE TABLE objects (
    bucket      TEXT NOT NULL,
    key         BLOB NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    modified_at INTEGER NOT NULL,
    blob        TEXT NOT NULL,
    attrs       TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE INDEX objects_by_blob ON objects (blob);
CREATE TABLE object_usage (
    project     TEXT PRIMARY KEY,
    objects     INTEGER NOT NULL,
    bytes       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    bucket      TEXT NOT NULL,
    key         BLOB NOT NULL,
    attrs       TEXT NOT NULL,
    initiated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_key ON uploads (bucket, key, initiated_at);
CREATE TABLE parts (
    upload      TEXT NOT NULL,
    number      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    blob        TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
CREATE INDEX parts_by_blob ON parts (blob);
CREATE TABLE s3_keys (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    grants      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX s3_keys_by_project ON s3_keys (project);
"#,
    // The change log of watched buckets (those `[[functions.bucket]]` triggers follow).
    r#"
ALTER TABLE buckets ADD COLUMN watched INTEGER NOT NULL DEFAULT 0;
CREATE TABLE object_changes (
    revision    INTEGER PRIMARY KEY,
    bucket      TEXT NOT NULL,
    key         BLOB NOT NULL,
    event       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX object_changes_by_bucket ON object_changes (bucket, revision);
"#,
    // Who made each change: the function whose credentials wrote it (the loop guard).
    "ALTER TABLE object_changes ADD COLUMN writer TEXT;",
    // Static sites: versions of each project's site and the live one.
    r#"
CREATE TABLE site_versions (
    project     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    app         TEXT NOT NULL,
    config      TEXT NOT NULL,
    files       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    deployer    TEXT NOT NULL,
    PRIMARY KEY (project, version)
) WITHOUT ROWID;
CREATE TABLE site_live (
    project     TEXT PRIMARY KEY,
    version     INTEGER NOT NULL
) WITHOUT ROWID;
"#,
];

/// The SQLite backend of [`crate::KvStore`] and [`crate::DocStore`]: `data.db` in the data
/// directory. Cheap to clone.
#[derive(Clone)]
pub struct DataStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    /// Committed document changes, in commit order.
    announce: writer::Announce,
    /// The last revision of a commit that logged changes (documents, or a watched store's).
    commits: tokio::sync::watch::Receiver<u64>,
    readers: Mutex<Vec<Connection>>,
}

impl DataStore {
    /// Opens (creating if needed) `data.db` in `dir`, running migrations.
    ///
    /// # Errors
    /// [`StoreError`] if the directory or database cannot be created or opened.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join("data.db");
        let conn = open_writer(&path, LIVE_VFS)?;
        let seq: i64 = conn.query_row("SELECT seq FROM data_meta", [], |r| r.get(0))?;
        let (announce, _) = tokio::sync::broadcast::channel(CHANGES_BUFFERED);
        let seq = u64::try_from(seq).unwrap_or(0);
        let (committed, commits) = tokio::sync::watch::channel(seq);
        let writer = Writer::start(conn, seq, announce.clone(), committed)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer,
                announce,
                commits,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `f` on a read connection from the pool (opening one if none is free).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.inner.path)?,
        };
        let out = f(&conn);
        let mut pool = lock(&self.inner.readers);
        if pool.len() < READERS {
            pool.push(conn);
        }
        out
    }

    /// Document changes as they commit, in commit order. A receiver that falls more than
    /// [`CHANGES_BUFFERED`] behind gets `Lagged` and must read the rest from the change log.
    pub(crate) fn announcements(&self) -> tokio::sync::broadcast::Receiver<Arc<crate::DocChange>> {
        self.inner.announce.subscribe()
    }

    /// Changes (its value: the last revision) after every commit that logged changes: of
    /// documents, or of a watched key-value store. Change feeds wait on it, then read the logs.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.commits.clone()
    }

    /// Runs `f` in the writer's next group; returns once the group is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }
}

/// The VFS of the live `data.db`'s connections (see the module's doc).
#[cfg(unix)]
const LIVE_VFS: Option<&str> = Some("unix-excl");
#[cfg(not(unix))]
const LIVE_VFS: Option<&str> = None;

/// Opens the live `data.db` (`vfs`: [`LIVE_VFS`]) or another file (a snapshot: `None`) for
/// writing, migrating it.
fn open_writer(path: &Path, vfs: Option<&str>) -> Result<Connection, StoreError> {
    let mut conn = open_with(path, rusqlite::OpenFlags::default(), vfs)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a group is on disk when its writes are answered (survives a crash of the machine,
    // not only of the process).
    conn.pragma_update(None, "synchronous", "FULL")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    if version < MIGRATIONS.len() {
        let tx = conn.transaction()?;
        for m in &MIGRATIONS[version..] {
            tx.execute_batch(m)?;
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(MIGRATIONS.len()).unwrap_or(0),
        )?;
        tx.commit()?;
    }
    Ok(conn)
}

/// A read connection to the live `data.db`, opened after the writer. Opened read-write but
/// `query_only`: `unix-excl` relies on the process's exclusive lock only for connections
/// that may write; a read-only one takes `fcntl` locks of its own on every transaction.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_live(path)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// A connection to the live `data.db` that is not the writer's and may write (only a backup's
/// `VACUUM INTO`, to another file, does), opened after the writer.
fn open_live(path: &Path) -> Result<Connection, StoreError> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = open_with(path, flags, LIVE_VFS)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Opens `path` with `flags` through `vfs` (`None`: SQLite's default).
fn open_with(
    path: &Path,
    flags: rusqlite::OpenFlags,
    vfs: Option<&str>,
) -> Result<Connection, StoreError> {
    let conn = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs)?,
        None => Connection::open_with_flags(path, flags)?,
    };
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(conn)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
