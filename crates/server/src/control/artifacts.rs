//! Artifacts: `HEAD/GET/PUT /v1/artifacts/{digest}`, and `GET /v1/status`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::StreamExt;
use updraft_api::{ArtifactUploaded, Code, Status};
use updraft_store::StoreError;

use super::params::valid_digest;
use crate::State as AppState;
use crate::error::ApiError;

/// Largest component upload accepted (componentize-py output is ~40 MiB).
pub(crate) const MAX_ARTIFACT_BYTES: usize = 256 << 20;

type Shared = State<Arc<AppState>>;

pub(crate) async fn status(State(state): Shared) -> Json<Status> {
    let stats = state.engine.stats();
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        functions: state.gateway.snapshot().functions.len(),
        compilations: stats.compilations,
        cache_loads: stats.cache_loads,
        data_plane_url: state.data_url.get().cloned().unwrap_or_default(),
    })
}

pub(crate) async fn artifact_exists(
    State(state): Shared,
    Path(digest): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_digest(&digest)?;
    let stored = state.artifacts.exists(&digest).await?;
    if stored && state.engine.is_cached(&digest) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::new(
            Code::ArtifactNotFound,
            format!("artifact {digest} is not stored"),
        ))
    }
}

/// `PUT /v1/artifacts/{digest}`: streams the body into the artifact store (a temp file, hashed
/// as it arrives; memory stays flat whatever the size), answers `413` as soon as it passes
/// [`MAX_ARTIFACT_BYTES`] (at once when `content-length` says so), checks the digest, then
/// compiles. A body that is too large, mismatched or not a usable component leaves nothing
/// behind.
pub(crate) async fn upload_artifact(
    State(state): Shared,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    valid_digest(&digest)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ARTIFACT_BYTES as u64) {
        return Err(too_large());
    }
    let existed = state.artifacts.exists(&digest).await?;
    let mut writer = state.artifacts.writer(&digest).await?;
    let mut body = body.into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::BadRequest, format!("could not read the upload: {e}"))
        })?;
        if writer.written() + chunk.len() as u64 > MAX_ARTIFACT_BYTES as u64 {
            // Dropping the writer removes what was written.
            return Err(too_large());
        }
        writer.write(&chunk).await?;
    }
    let size = writer.written();
    match writer.commit().await {
        Ok(_) => {}
        Err(StoreError::DigestMismatch { actual, .. }) => {
            return Err(ApiError::new(
                Code::DigestMismatch,
                format!("the uploaded bytes hash to sha256 {actual}, not {digest}"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    if existed && state.engine.is_cached(&digest) {
        let result = ArtifactUploaded {
            digest,
            size,
            compiled: false,
            compile_ms: 0,
        };
        return Ok((StatusCode::OK, Json(result)));
    }
    // Compile (which validates); a bad upload that was not stored before is removed again.
    let bytes = state.artifacts.read(&digest).await?;
    let (engine, d) = (state.engine.clone(), digest.clone());
    let compiled = match tokio::task::spawn_blocking(move || engine.compile(&d, &bytes)).await? {
        Ok(c) => c,
        Err(e) => {
            if !existed {
                state.artifacts.delete(&digest).await?;
            }
            return Err(if e.is_user_error() {
                ApiError::new(Code::InvalidComponent, e.to_string())
            } else {
                ApiError::internal("compiling a component", e)
            });
        }
    };
    let result = ArtifactUploaded {
        digest,
        size,
        compiled: compiled.compiled_now,
        compile_ms: compiled.elapsed_ms,
    };
    let status = if result.compiled {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(result)))
}

fn too_large() -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!(
            "the upload is larger than the {} MiB an artifact may be",
            MAX_ARTIFACT_BYTES >> 20
        ),
    )
}
