//! The data writer: one thread owns `data.db`'s write connection and commits queued writes in
//! groups. Each write runs in its own savepoint (a failed one is undone alone), the group
//! commits once (one fsync for all of them), and only then does each caller hear its outcome.
//! A busy moment therefore costs one fsync per group, not per write.

use std::sync::mpsc::{self, Receiver, Sender};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

/// Most writes in one group (one transaction).
const GROUP: usize = 512;

/// What a write sees while it runs.
pub(crate) struct Ctx<'c> {
    pub(crate) conn: &'c Connection,
    /// The last revision handed out; a write takes the next ones.
    pub(crate) seq: &'c mut u64,
    /// Set to undo this write's changes while still answering `Ok`.
    pub(crate) rollback: bool,
    /// Document changes this write made, announced once the group commits.
    pub(crate) changes: Vec<crate::DocChange>,
    /// Whether this write logged a change of a watched key-value store.
    pub(crate) logged: bool,
}

impl Ctx<'_> {
    /// The next revision.
    pub(crate) fn next_revision(&mut self) -> u64 {
        *self.seq += 1;
        *self.seq
    }
}

trait Job: Send {
    /// Runs inside the group's transaction; returns whether to keep its changes.
    fn run(&mut self, ctx: &mut Ctx<'_>) -> bool;
    /// Answers the caller once the group committed (or failed to).
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Typed<T, F> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnOnce(&mut Ctx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = f(ctx);
        let keep = out.is_ok() && !ctx.rollback;
        self.out = Some(out);
        keep
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let out = match (committed, self.out) {
            (Ok(()), Some(out)) => out,
            (Ok(()), None) => Err(StoreError::Backend("the write did not run".into())),
            // Even a write that failed on its own is reported as the commit's failure: its
            // caller must not assume anything was stored.
            (Err(e), _) => Err(StoreError::Backend(e.into())),
        };
        let _ = self.reply.send(out);
    }
}

/// Where committed document changes are announced, in commit order.
pub(crate) type Announce = tokio::sync::broadcast::Sender<std::sync::Arc<crate::DocChange>>;

/// The handle to the writer thread; dropping every handle stops it.
pub(crate) struct Writer {
    tx: Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the thread on `conn`, whose last revision is `seq`.
    pub(crate) fn start(
        conn: Connection,
        seq: u64,
        announce: Announce,
        committed: tokio::sync::watch::Sender<u64>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("updraft-data-writer".into())
            .spawn(move || run(conn, seq, rx, announce, committed))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self { tx })
    }

    /// Runs `f` in the next group and returns its result once the group is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Typed {
            f: Some(f),
            out: None,
            reply,
        });
        self.tx
            .send(job)
            .map_err(|_| StoreError::Backend("the data writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the data writer stopped mid-write".into()))?
    }
}

fn run(
    conn: Connection,
    mut seq: u64,
    rx: Receiver<Box<dyn Job>>,
    announce: Announce,
    committed: tokio::sync::watch::Sender<u64>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        // Let the writers woken by the last group queue their next writes first: under load
        // this gathers bigger groups (fewer commits and thread switches) at the cost of one
        // yield.
        std::thread::yield_now();
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut changes = Vec::new();
        let mut logged = false;
        let outcome = commit(&conn, &mut seq, &mut group, &mut changes, &mut logged);
        if outcome.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            // In commit order, before any writer hears back: a subscriber that then reads
            // the log never misses what an answered write changed.
            if logged || !changes.is_empty() {
                committed.send_replace(seq);
            }
            for c in changes {
                let _ = announce.send(std::sync::Arc::new(c));
            }
        }
        for job in group {
            job.finish(outcome.clone());
        }
    }
}

fn commit(
    conn: &Connection,
    seq: &mut u64,
    group: &mut [Box<dyn Job>],
    changes: &mut Vec<crate::DocChange>,
    logged: &mut bool,
) -> Result<(), String> {
    let start = *seq;
    exec(conn, "BEGIN IMMEDIATE")?;
    for job in group.iter_mut() {
        exec(conn, "SAVEPOINT job")?;
        let mut ctx = Ctx {
            conn,
            seq,
            rollback: false,
            changes: Vec::new(),
            logged: false,
        };
        let keep = job.run(&mut ctx);
        if keep {
            changes.append(&mut ctx.changes);
            *logged |= ctx.logged;
        } else {
            exec(conn, "ROLLBACK TO job")?;
        }
        exec(conn, "RELEASE job")?;
    }
    if *seq != start {
        conn.prepare_cached("UPDATE data_meta SET seq = ?1")
            .and_then(|mut s| s.execute([i64::try_from(*seq).unwrap_or(i64::MAX)]))
            .map_err(|e| e.to_string())?;
    }
    exec(conn, "COMMIT")
}

/// Runs one statement, prepared once per connection.
fn exec(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(|e| e.to_string())
}
