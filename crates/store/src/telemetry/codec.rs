//! The compact encoding of a chunk's log lines and invocation records: varints, zigzag deltas
//! from the chunk's first id or time, length-prefixed strings. Project and function are the
//! chunk's, not repeated per entry.

use updraft_api::{ErrorClass, Invocation, Trigger};

use crate::{LogRecord, StoreError};

/// Appends `v` as a LEB128 varint.
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`put`] and friends wrote.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn done(&self) -> bool {
        self.bytes.is_empty()
    }

    fn get(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or_else(truncated)?;
            self.bytes = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(StoreError::Corrupt(
            "telemetry chunk: varint too long".into(),
        ))
    }

    fn get_i(&mut self) -> Result<i64, StoreError> {
        let v = self.get()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn get_str(&mut self) -> Result<String, StoreError> {
        let n = usize::try_from(self.get()?).map_err(|_| truncated())?;
        if n > self.bytes.len() {
            return Err(truncated());
        }
        let (s, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        String::from_utf8(s.to_vec())
            .map_err(|_| StoreError::Corrupt("telemetry chunk: a string is not UTF-8".into()))
    }

    fn get_u32(&mut self) -> Result<u32, StoreError> {
        u32::try_from(self.get()?).map_err(|_| StoreError::Corrupt("telemetry chunk: u32".into()))
    }
}

fn truncated() -> StoreError {
    StoreError::Corrupt("telemetry chunk is truncated".into())
}

const STREAMS: [&str; 3] = ["stdout", "stderr", "platform"];

/// Appends one line (its id and time as deltas from the chunk's first).
pub(crate) fn put_line(out: &mut Vec<u8>, r: &LogRecord, first_id: i64, first_ms: i64) {
    put_i(out, r.id - first_id);
    put_i(out, r.ts_ms - first_ms);
    put(out, r.version.map_or(0, |v| u64::from(v) + 1));
    match STREAMS.iter().position(|s| *s == r.stream) {
        Some(i) => put(out, i as u64),
        None => {
            put(out, 3);
            put_str(out, &r.stream);
        }
    }
    put_str(out, &r.request_id);
    put_str(out, &r.line);
}

/// Reads one line of a chunk of `project`'s `function`.
pub(crate) fn get_line(
    r: &mut Reader<'_>,
    (project, function): (&str, &str),
    first_id: i64,
    first_ms: i64,
) -> Result<LogRecord, StoreError> {
    let id = first_id + r.get_i()?;
    let ts_ms = first_ms + r.get_i()?;
    let version = match r.get_u32()? {
        0 => None,
        v => Some(v - 1),
    };
    let stream = match r.get()? {
        i @ 0..=2 => STREAMS[i as usize].to_owned(),
        _ => r.get_str()?,
    };
    Ok(LogRecord {
        id,
        project: project.to_owned(),
        function: function.to_owned(),
        version,
        request_id: r.get_str()?,
        ts_ms,
        stream,
        line: r.get_str()?,
    })
}

/// In the order of their codes (append only: stored records keep their codes).
const TRIGGERS: [Trigger; 9] = [
    Trigger::Http,
    Trigger::Invoke,
    Trigger::Async,
    Trigger::Schedule,
    Trigger::Queue,
    Trigger::Topic,
    Trigger::Db,
    Trigger::Kv,
    Trigger::Bucket,
];

/// Appends one invocation record (its start as a delta from the chunk's first).
pub(crate) fn put_invocation(out: &mut Vec<u8>, i: &Invocation, first_ms: i64) {
    put_str(out, &i.request_id);
    put(out, u64::from(i.version));
    put(
        out,
        TRIGGERS.iter().position(|t| *t == i.trigger).unwrap_or(0) as u64,
    );
    put_i(out, i.started_ms - first_ms);
    put(out, i.duration_us);
    put(out, i.billed_ms);
    put(out, i.memory_mb);
    put(out, i.peak_memory_bytes);
    put(out, u64::from(i.cold));
    put(out, u64::from(i.status));
    put(
        out,
        i.error.map_or(0, |e| {
            ErrorClass::ALL.iter().position(|c| *c == e).unwrap_or(0) + 1
        }) as u64,
    );
    match &i.trace_id {
        None => put(out, 0),
        Some(t) => {
            put(out, 1);
            put_str(out, t);
        }
    }
}

/// Reads one invocation record of a chunk of `project`'s `function`.
pub(crate) fn get_invocation(
    r: &mut Reader<'_>,
    (project, function): (&str, &str),
    first_ms: i64,
) -> Result<Invocation, StoreError> {
    let request_id = r.get_str()?;
    let version = r.get_u32()?;
    let trigger = usize::try_from(r.get()?)
        .ok()
        .and_then(|i| TRIGGERS.get(i).copied())
        .ok_or_else(|| StoreError::Corrupt("telemetry chunk: unknown trigger".into()))?;
    let started_ms = first_ms + r.get_i()?;
    let duration_us = r.get()?;
    let billed_ms = r.get()?;
    let memory_mb = r.get()?;
    let peak_memory_bytes = r.get()?;
    let cold = r.get()? != 0;
    let status = u16::try_from(r.get()?)
        .map_err(|_| StoreError::Corrupt("telemetry chunk: status".into()))?;
    let error = match r.get()? {
        0 => None,
        e => Some(
            usize::try_from(e - 1)
                .ok()
                .and_then(|i| ErrorClass::ALL.get(i).copied())
                .ok_or_else(|| StoreError::Corrupt("telemetry chunk: unknown error".into()))?,
        ),
    };
    let trace_id = match r.get()? {
        0 => None,
        _ => Some(r.get_str()?),
    };
    Ok(Invocation {
        request_id,
        project: project.to_owned(),
        function: function.to_owned(),
        version,
        trigger,
        started_ms,
        duration_us,
        billed_ms,
        memory_mb,
        peak_memory_bytes,
        gb_seconds: Invocation::gb_seconds(memory_mb, billed_ms),
        cold,
        status,
        error,
        trace_id,
    })
}
