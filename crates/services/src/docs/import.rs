//! Importing documents as JSON lines (`POST /collections/{c}/import`, `updraft db import`): one
//! document per line, in the shape the API shows and `updraft db export` writes
//! (`{"id": "...", "data": {...}}`; other fields are ignored, a missing `id` gets a new one).
//! Each line is created or replaced. Every line is checked before anything is written, so a
//! malformed request writes nothing; the writes then go to the store a few at a time (the
//! writer commits them in groups). Keys that may write only: rules do not govern bulk loads.

use futures::StreamExt as _;
use serde_json::{Value, json};
use updraft_store::Condition;

use super::{DocCaller, DocError, DocService, Who, json::new_id, query};

/// Most documents one import request may carry.
pub const MAX_IMPORT_LINES: usize = 1000;
/// Writes in flight at once during an import.
const IN_FLIGHT: usize = 32;

/// `e` with the line it came from in its message (its kind, and so its status, kept).
fn at_line(line: usize, e: DocError) -> DocError {
    let m = |s: String| format!("line {line}: {s}");
    match e {
        DocError::Invalid(s) => DocError::Invalid(m(s)),
        DocError::Denied(s) => DocError::Denied(m(s)),
        DocError::NoDocument(s) => DocError::NoDocument(s),
        DocError::Precondition(s) => DocError::Precondition(m(s)),
        DocError::TooLarge(s) => DocError::TooLarge(m(s)),
        DocError::Quota(s) => DocError::Quota(m(s)),
        DocError::TooMany(s) => DocError::TooMany(m(s)),
        DocError::Storage(s) => DocError::Storage(m(s)),
        other => other,
    }
}

impl DocService {
    /// Creates or replaces the documents of `lines` (JSON lines) in `coll`; answers how many
    /// were created and replaced.
    ///
    /// # Errors
    /// [`DocError::Invalid`] naming the first bad line (nothing written);
    /// [`DocError::Denied`] for a caller that is not a writing key; the first failed write's
    /// error, naming its line (the lines before it may be written).
    pub async fn import(
        &self,
        caller: &DocCaller,
        coll: &str,
        lines: &[u8],
    ) -> Result<Value, DocError> {
        if !matches!(caller.who, Who::Key { write: true }) {
            return Err(DocError::Denied(
                "importing documents needs a deployer key or better".into(),
            ));
        }
        let text = std::str::from_utf8(lines)
            .map_err(|_| DocError::Invalid("the body is not UTF-8 JSON lines".into()))?;
        let mut docs: Vec<(usize, String, Value)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            if docs.len() == MAX_IMPORT_LINES {
                return Err(DocError::Invalid(format!(
                    "at most {MAX_IMPORT_LINES} documents per import request; send the rest in another"
                )));
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| DocError::Invalid(format!("line {n}: not JSON: {e}")))?;
            let Value::Object(mut o) = v else {
                return Err(DocError::Invalid(format!(
                    "line {n}: not a JSON object like {{\"id\": \"...\", \"data\": {{...}}}}"
                )));
            };
            let data = match o.remove("data") {
                Some(d @ Value::Object(_)) => d,
                _ => {
                    return Err(DocError::Invalid(format!(
                        "line {n}: `data` must be the document's JSON object"
                    )));
                }
            };
            let id = match o.remove("id") {
                None | Some(Value::Null) => new_id(),
                Some(Value::String(id)) => {
                    query::check_id(&id).map_err(|e| at_line(n, e))?;
                    id
                }
                Some(_) => {
                    return Err(DocError::Invalid(format!(
                        "line {n}: `id` must be a string"
                    )));
                }
            };
            docs.push((n, id, data));
        }
        // Checked before any write: a missing collection writes nothing either.
        self.collection_for(caller, coll).await?;
        let mut writes = futures::stream::iter(docs)
            .map(|(n, id, data)| async move {
                self.put(caller, coll, &id, data, Condition::Any)
                    .await
                    .map_err(|e| at_line(n, e))
            })
            .buffered(IN_FLIGHT);
        let (mut created, mut replaced) = (0u64, 0u64);
        while let Some(r) = writes.next().await {
            match r? {
                (_, true) => created += 1,
                (_, false) => replaced += 1,
            }
        }
        Ok(json!({ "created": created, "replaced": replaced }))
    }
}
