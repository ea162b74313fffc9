//! Artifacts: `HEAD/GET/PUT /v1/artifacts/{digest}`, and `GET /v1/status`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use http_body_util::BodyExt;
use updraft_api::{ArtifactUploaded, Code, Status};

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

pub(crate) async fn upload_artifact(
    State(state): Shared,
    Path(digest): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    valid_digest(&digest)?;
    let bytes: Bytes = body
        .collect()
        .await
        .map_err(|e| {
            ApiError::new(
                Code::PayloadTooLarge,
                format!("could not read the upload (larger than {MAX_ARTIFACT_BYTES} bytes?): {e}"),
            )
        })?
        .to_bytes();
    let actual = updraft_engine::digest(&bytes);
    if actual != digest {
        return Err(ApiError::new(
            Code::DigestMismatch,
            format!("the uploaded bytes hash to sha256 {actual}, not {digest}"),
        ));
    }
    let size = bytes.len() as u64;
    if state.artifacts.exists(&digest).await? && state.engine.is_cached(&digest) {
        let result = ArtifactUploaded {
            digest,
            size,
            compiled: false,
            compile_ms: 0,
        };
        return Ok((StatusCode::OK, Json(result)));
    }
    // Compile (which validates) before storing: a bad upload leaves nothing behind.
    let (engine, d, b) = (state.engine.clone(), digest.clone(), bytes.clone());
    let compiled = tokio::task::spawn_blocking(move || engine.compile(&d, &b))
        .await?
        .map_err(|e| {
            if e.is_user_error() {
                ApiError::new(Code::InvalidComponent, e.to_string())
            } else {
                ApiError::internal("compiling a component", e)
            }
        })?;
    let mut writer = state.artifacts.writer(&digest).await?;
    writer.write(&bytes).await?;
    writer.commit().await?;
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
