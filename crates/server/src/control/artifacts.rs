//! Artifacts: `HEAD/GET/PUT /v1/artifacts/{digest}`, and `GET /v1/status`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use futures::StreamExt;
use updraft_api::{ArtifactUploaded, Code, Status};
use updraft_store::StoreError;

use super::params::valid_digest;
use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Largest component upload accepted (componentize-py output is ~40 MiB).
pub(crate) const MAX_ARTIFACT_BYTES: usize = 256 << 20;

type Shared = State<Arc<AppState>>;

pub(crate) async fn status(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Json<Status> {
    let stats = state.engine.stats();
    let functions = state
        .gateway
        .snapshot()
        .project(&caller.project)
        .map_or(0, |p| p.functions.len());
    Json(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        functions,
        compilations: stats.compilations,
        cache_loads: stats.cache_loads,
        data_plane_url: project_url(
            state.data_url.get().map_or("", String::as_str),
            &caller.project,
            state.gateway.base_domain(),
        ),
    })
}

/// Where `project`'s routes are served: the data plane's URL, with `<project>.<base>` as its
/// host for any project but `default` (which answers on every other host).
fn project_url(data_url: &str, project: &str, base: &str) -> String {
    if project == updraft_api::DEFAULT_PROJECT || data_url.is_empty() {
        return data_url.to_owned();
    }
    let (scheme, rest) = data_url.split_once("://").unwrap_or(("http", data_url));
    let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
    match port {
        "" => format!("{scheme}://{project}.{base}"),
        p => format!("{scheme}://{project}.{base}:{p}"),
    }
}

pub(crate) async fn artifact_exists(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(digest): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_digest(&digest)?;
    // Another project's upload is not this project's: it answers like a missing one.
    let stored = state
        .metadata
        .has_artifact(&caller.project, &digest)
        .await?
        && state.artifacts.exists(&digest).await?;
    if stored && (state.engine.is_cached(&digest) || state.process.is_prepared(&digest)) {
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
    Extension(caller): Extension<Caller>,
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
    if existed && (state.engine.is_cached(&digest) || state.process.is_prepared(&digest)) {
        state
            .metadata
            .grant_artifact(&caller.project, &digest)
            .await?;
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
    if updraft_process::bundle::is_bundle(&bytes) {
        return upload_bundle(&state, &caller, digest, size, existed, bytes).await;
    }
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
    granted(&state, &caller, result).await
}

/// Lets `caller`'s project deploy the artifact: 201 when it was compiled (or unpacked) now,
/// 200 when it already was.
async fn granted(
    state: &AppState,
    caller: &Caller,
    result: ArtifactUploaded,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    state
        .metadata
        .grant_artifact(&caller.project, &result.digest)
        .await?;
    let status = if result.compiled {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(result)))
}

/// A process function's bundle: checked and unpacked (its "compile"); refused with the reason
/// if it is not a usable bundle.
async fn upload_bundle(
    state: &AppState,
    caller: &Caller,
    digest: String,
    size: u64,
    existed: bool,
    bytes: Vec<u8>,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    let started = std::time::Instant::now();
    if let Err(e) = state.process.prepare_bundle(&digest, bytes).await {
        if !existed {
            state.artifacts.delete(&digest).await?;
        }
        return Err(if e.user_error {
            ApiError::new(Code::InvalidComponent, format!("invalid bundle: {e}"))
        } else {
            ApiError::internal("unpacking a bundle", e)
        });
    }
    let result = ArtifactUploaded {
        digest,
        size,
        compiled: true,
        compile_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    granted(state, caller, result).await
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
