//! Small site files (and their gzipped forms) kept in memory by digest: a site file never
//! changes under its digest, so an entry is never stale. Bounded in bytes; when full, entries
//! are dropped in no particular order until the new one fits.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Largest file kept.
const MAX_FILE: u64 = 1 << 20;

pub(super) struct FileCache {
    cap: u64,
    inner: Mutex<(HashMap<String, Bytes>, u64)>,
}

impl FileCache {
    pub(super) fn new(cap: u64) -> Self {
        Self {
            cap,
            inner: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// The largest file worth keeping (0 with no cache).
    pub(super) fn max_file(&self) -> u64 {
        MAX_FILE.min(self.cap / 16)
    }

    pub(super) fn get(&self, key: &str) -> Option<Bytes> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }

    /// Keeps `bytes` under `key` if small enough; returns them.
    pub(super) fn put(&self, key: String, bytes: Bytes) -> Bytes {
        let len = bytes.len() as u64;
        if len > self.max_file() {
            return bytes;
        }
        if let Ok(mut guard) = self.inner.lock() {
            let (map, used) = &mut *guard;
            while *used + len > self.cap {
                let Some(k) = map.keys().next().cloned() else {
                    break;
                };
                if let Some(old) = map.remove(&k) {
                    *used -= old.len() as u64;
                }
            }
            if let Some(old) = map.insert(key, bytes.clone()) {
                *used -= old.len() as u64;
            }
            *used += len;
        }
        bytes
    }
}
