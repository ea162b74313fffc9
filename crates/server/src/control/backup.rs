//! `GET /v1/backup` and `POST /v1/restore` (the admin's): the database (every project's
//! key-value stores and document collections) as one SQLite file, taken online and restored
//! online (see `updraft_store`'s `DataStore::backup_to` and `restore_from`).
//!
//! A backup is written to a private temporary directory inside the data directory, opened,
//! unlinked, then streamed from the open file. A restore's upload is streamed to such a file (at most
//! [`MAX_RESTORE_BYTES`]), checked, then applied in one transaction; `?project=` restores one
//! project's data and leaves the others'.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::response::Response;
use futures::StreamExt as _;
use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use updraft_api::Code;
use updraft_store::StoreError;

use crate::State as AppState;
use crate::error::ApiError;

/// The largest restore upload.
pub(crate) const MAX_RESTORE_BYTES: u64 = 64 << 30;

/// A private temporary directory in the data directory (same file system as `data.db`).
fn scratch(state: &AppState) -> Result<tempfile::TempDir, ApiError> {
    tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(&state.data_dir)
        .map_err(|e| ApiError::internal("creating a temporary directory", e))
}

/// Streams a consistent snapshot of the database.
pub(crate) async fn backup(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let dir = scratch(&state)?;
    let path = dir.path().join("data.db");
    state
        .data
        .backup_to(&path)
        .await
        .map_err(|e| ApiError::internal("taking the backup", e))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal("opening the backup", e))?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    // Unlinked now: the open file is read to its end, and nothing is left behind however the
    // stream ends.
    drop(dir);
    let stream = futures::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 << 10];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreQuery {
    /// Restore only this project's data.
    project: Option<String>,
}

/// Replaces the database (or one project's part of it) with the uploaded backup.
pub(crate) async fn restore(
    State(state): State<Arc<AppState>>,
    q: Result<Query<RestoreQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    // Rows of a project that does not exist would be orphans no one can reach or delete.
    if let Some(p) = &q.project
        && state.registry.projects(Some(p)).await.is_empty()
    {
        return Err(updraft_registry::Error::project_not_found(p).into());
    }
    let dir = scratch(&state)?;
    let path = dir.path().join("restore.db");
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::internal("creating the upload file", e))?;
    let mut body = req.into_body().into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::new(Code::BadRequest, format!("the upload broke off: {e}")))?;
        received += chunk.len() as u64;
        if received > MAX_RESTORE_BYTES {
            return Err(ApiError::new(
                Code::PayloadTooLarge,
                format!("a backup may be at most {} GiB", MAX_RESTORE_BYTES >> 30),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal("writing the upload", e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| ApiError::internal("writing the upload", e))?;
    drop(file);
    if received == 0 {
        return Err(ApiError::new(
            Code::BadRequest,
            "the body must be a backup file (from `updraft backup`)",
        ));
    }
    let restored = state
        .data
        .restore_from(&path, q.project.as_deref())
        .await
        .map_err(|e| match e {
            StoreError::Invalid(m) => ApiError::new(Code::BadRequest, m),
            e => ApiError::internal("restoring the backup", e),
        })?;
    // The document service reloads collections (their rules may differ now); stores that
    // served functions are granted exist again even if the backup predates them.
    state.docs.reload();
    for record in state.registry.snapshot().all_records() {
        if q.project.as_deref().is_some_and(|p| p != record.project) {
            continue;
        }
        for v in &record.versions {
            for store in &v.spec.key_value_stores {
                let _ = state
                    .kv
                    .store()
                    .kv_create_store(&record.project, store)
                    .await;
            }
        }
    }
    tracing::warn!(
        project = q.project.as_deref().unwrap_or("(every project)"),
        bytes = received,
        "database restored from a backup"
    );
    Ok(Json(json!({
        "project": q.project,
        "bytes": received,
        "stores": restored.stores,
        "keys": restored.keys,
        "collections": restored.collections,
        "documents": restored.documents,
    })))
}
