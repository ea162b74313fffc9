//! Metering endpoints: invocation records, usage with a cost estimate and quotas, and the
//! Prometheus `/metrics` text.
//!
//! Reads flush the log writer first, so an invocation whose response the caller has seen is
//! counted (its record is written when the response body is done).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use updraft_api::{
    Code, FunctionUsage, Invocation, InvocationList, Prices, StorageUsage, UsageBucket,
    UsageFigures, UsageReport,
};
use updraft_store::{InvocationQuery, Usage, UsageQuery, now_ms};

use super::params::{not_found, parse_since};
use crate::State as AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type Shared = State<Arc<AppState>>;
type Params<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The figures of `u`, priced; `free`: apply the free tier (to a whole report, not a bucket).
pub(crate) fn figures(u: &Usage, prices: &Prices, free: bool) -> UsageFigures {
    let gb_seconds = u.gb_seconds();
    let (free_requests, free_gb) = if free {
        (prices.free_requests, prices.free_gb_seconds)
    } else {
        (0, 0.0)
    };
    let requests = u.invocations.saturating_sub(free_requests) as f64;
    let compute = (gb_seconds - free_gb).max(0.0);
    UsageFigures {
        invocations: u.invocations,
        errors: u.errors,
        cold_starts: u.cold_starts,
        billed_ms: u.billed_ms,
        gb_seconds,
        estimated_cost: requests / 1e6 * prices.per_million_requests
            + compute * prices.per_gb_second,
        data_reads: u.data_reads,
        data_writes: u.data_writes,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageParams {
    function: Option<String>,
    since: Option<String>,
    by: Option<String>,
}

pub(crate) async fn usage(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    params: Params<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let until_ms = now_ms();
    let since_ms = parse_since(p.since.as_deref().unwrap_or("24h"))?;
    if since_ms > until_ms {
        return Err(ApiError::new(
            Code::BadRequest,
            "since: must be in the past",
        ));
    }
    let bucket_ms = match p.by.as_deref() {
        None => None,
        Some("hour") => Some(HOUR_MS),
        Some("day") => Some(DAY_MS),
        Some(other) => {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("by: `{other}` is not a bucket size (use hour or day)"),
            ));
        }
    };
    if let Some(f) = &p.function
        && state
            .gateway
            .snapshot()
            .function(&caller.project, f)
            .is_none()
    {
        return Err(not_found(f));
    }
    let q = UsageQuery {
        function: p.function.clone(),
        since_ms,
        until_ms: until_ms + 1,
        bucket_ms,
    };
    state.telemetry.flush().await;
    crate::meter::flush(&state).await;
    let summary = state.telemetry.usage(&caller.project, &q).await?;
    let storage = match state.kv.store().kv_usage(&caller.project).await {
        Ok(u) => Some(StorageUsage {
            bytes: u.bytes,
            quota_bytes: state.kv.config().max_project_bytes,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the project's storage usage");
            None
        }
    };
    let prices = &state.prices;
    let now = now_ms();
    Ok(Json(UsageReport {
        since_ms,
        until_ms,
        function: p.function.clone(),
        by: p.by,
        totals: figures(&summary.totals, prices, true),
        functions: summary
            .functions
            .iter()
            .map(|(f, u)| FunctionUsage {
                function: f.clone(),
                usage: figures(u, prices, false),
            })
            .collect(),
        buckets: summary
            .buckets
            .iter()
            .map(|(start_ms, u)| UsageBucket {
                start_ms: *start_ms,
                usage: figures(u, prices, false),
            })
            .collect(),
        prices: prices.clone(),
        quotas: state
            .registry
            .quotas(&caller.project, p.function.as_deref())
            .iter()
            .map(|q| q.status(now))
            .collect(),
        storage,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvocationParams {
    since: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    errors: bool,
}

pub(crate) async fn function_invocations(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    params: Params<InvocationParams>,
) -> Result<Json<InvocationList>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))?;
    let q = InvocationQuery {
        function: Some(name.clone()),
        request_id: None,
        since_ms: p.since.as_deref().map(parse_since).transpose()?,
        errors_only: p.errors,
        limit: p.limit.unwrap_or(100),
    };
    let invocations = read(&state, &caller.project, q).await?;
    if invocations.is_empty()
        && state
            .gateway
            .snapshot()
            .function(&caller.project, &name)
            .is_none()
    {
        return Err(not_found(&name));
    }
    Ok(Json(InvocationList { invocations }))
}

pub(crate) async fn invocation(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
    Path(request_id): Path<String>,
) -> Result<Json<Invocation>, ApiError> {
    let well_formed = request_id.len() == 32
        && request_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(ApiError::new(
            Code::BadRequest,
            format!("`{request_id}` is not a request id (32 lower-case hex characters)"),
        ));
    }
    let q = InvocationQuery {
        request_id: Some(request_id.clone()),
        limit: 1,
        ..Default::default()
    };
    read(&state, &caller.project, q)
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                Code::InvocationNotFound,
                format!("no invocation record with request id `{request_id}`"),
            )
        })
}

async fn read(
    state: &Arc<AppState>,
    project: &str,
    q: InvocationQuery,
) -> Result<Vec<Invocation>, ApiError> {
    state.telemetry.flush().await;
    Ok(state.telemetry.invocations(project, &q).await?)
}

/// `GET /metrics`: the data plane's series plus the server's own. A project's key sees its
/// project's series only; the admin key every project's.
pub(crate) async fn metrics(
    State(state): Shared,
    Extension(caller): Extension<Caller>,
) -> Response {
    let only = caller.scope.as_deref();
    let mut text = state.gateway.dispatcher().metrics().render(only);
    let snapshot = state.gateway.snapshot();
    let functions = match only {
        Some(p) => snapshot.project(p).map_or(0, |p| p.functions.len()),
        None => snapshot.all_functions().count(),
    };
    let dropped = state.telemetry.dropped();
    text.push_str(&format!(
        "# HELP updraft_functions Functions deployed.\n# TYPE updraft_functions gauge\n\
         updraft_functions {functions}\n\
         # HELP updraft_telemetry_dropped_total Log lines and invocation records dropped because \
         the writer's queue was full.\n# TYPE updraft_telemetry_dropped_total counter\n\
         updraft_telemetry_dropped_total {dropped}\n\
         # HELP updraft_build_info The running Updraft version.\n# TYPE updraft_build_info gauge\n\
         updraft_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    text.push_str(&super::queues::metrics(&state, only).await);
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
