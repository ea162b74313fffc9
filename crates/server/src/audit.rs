//! The audit log's recorder: every change made through the control API (deploys, alias moves,
//! rollbacks, deletions, keys, secrets, queues and topics, projects) is recorded with who made
//! it, when, on what and how it ended, before the answer goes out. Reads, invokes and message
//! traffic are not changes of the platform and are not recorded; a change a key's role does
//! not allow is recorded as `denied` ([`denied`], called by the role check).
//!
//! Entries never carry a secret: not a key, not a secret's value, not a request body; a
//! failure's detail is the API's error message.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use serde_json::Value;
use updraft_store::{AuditRecord, now_ms};

/// Who is acting, in which project: put on each request by the role check (which knows the
/// key) for the recorder.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    /// The key's id, or `admin`.
    pub(crate) id: String,
    /// The project the request acts in.
    pub(crate) project: String,
}

/// Largest answer read for its detail (every audited answer is a small JSON document).
const MAX_READ: usize = 1 << 20;
/// Longest detail kept.
const MAX_DETAIL: usize = 300;

/// The action a change is recorded as; `None`: not a change of the platform.
pub(crate) fn action(method: &Method, route: &str) -> Option<&'static str> {
    if *method == Method::GET || *method == Method::HEAD {
        return None;
    }
    let delete = *method == Method::DELETE;
    Some(match route {
        // Invokes and message traffic use the platform; they don't change it.
        "/v1/functions/{name}/invoke"
        | "/v1/functions/{name}/invocations"
        | "/v1/queues/{q}/messages"
        | "/v1/queues/{q}/messages/batch"
        | "/v1/queues/{q}/messages/receive"
        | "/v1/queues/{q}/messages/ack"
        | "/v1/queues/{q}/messages/{receipt}"
        | "/v1/topics/{t}/publish" => return None,
        "/v1/artifacts/{digest}" => "artifact.upload",
        "/v1/apps" => "deploy",
        "/v1/functions/{name}" => "function.delete",
        "/v1/functions/{name}/aliases/{alias}" if delete => "alias.delete",
        "/v1/functions/{name}/aliases/{alias}" => "alias.set",
        "/v1/functions/{name}/rollback" => "rollback",
        "/v1/queues" => "queue.create",
        "/v1/queues/{q}" => "queue.delete",
        "/v1/queues/{q}/keys" => "queue.key",
        "/v1/queues/{q}/purge" => "queue.purge",
        "/v1/topics" => "topic.create",
        "/v1/topics/{t}" => "topic.delete",
        "/v1/topics/{t}/keys" => "topic.key",
        "/v1/topics/{t}/subscriptions/{queue}" if delete => "topic.unsubscribe",
        "/v1/topics/{t}/subscriptions/{queue}" => "topic.subscribe",
        "/v1/keys" => "key.create",
        "/v1/keys/{id}" => "key.revoke",
        "/v1/secrets/{name}" if delete => "secret.delete",
        "/v1/secrets/{name}" => "secret.set",
        "/v1/projects" => "project.create",
        "/v1/projects/{name}" => "project.delete",
        "/v1/projects/{name}/domains" => "project.domains",
        "/v1/projects/{name}/cors" => "project.cors",
        "/v1/users/{id}" => "user.delete",
        "/v1/users/{id}/disable" => "user.disable",
        "/v1/users/{id}/enable" => "user.enable",
        "/v1/users/{id}/revoke-sessions" => "user.revoke_sessions",
        "/v1/auth/keys/rotate" => "auth.rotate_keys",
        // A change this table does not know is still recorded, by its route.
        _ => "other",
    })
}

/// The project a change belongs to: the one a `/v1/projects/{name}` path names, else the
/// caller's.
fn project_of(caller: &Actor, path: &str) -> String {
    path.strip_prefix("/v1/projects/")
        .and_then(|rest| rest.split('/').next())
        .filter(|p| !p.is_empty())
        .map_or_else(|| caller.project.clone(), str::to_owned)
}

fn truncate(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL)
        .collect();
    if s.chars().count() > MAX_DETAIL {
        out.push('…');
    }
    out
}

/// What to say about an answer: a failure's message; what a deploy published; which role a
/// new key has.
fn detail(action: &str, status: u16, body: &Value) -> String {
    if status >= 400 {
        return truncate(body["error"]["message"].as_str().unwrap_or(""));
    }
    match action {
        "deploy" => {
            let published: Vec<String> = body["published"]
                .as_object()
                .map(|m| m.iter().map(|(f, v)| format!("{f} v{v}")).collect())
                .unwrap_or_default();
            let removed: Vec<&str> = body["removed"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut d = if published.is_empty() {
                "nothing changed".to_owned()
            } else {
                format!("published {}", published.join(", "))
            };
            if !removed.is_empty() {
                d.push_str(&format!("; removed {}", removed.join(", ")));
            }
            truncate(&d)
        }
        "key.create" => format!("role {}", body["role"].as_str().unwrap_or("?")),
        "secret.set" => match body["restarted"].as_array() {
            Some(r) if !r.is_empty() => truncate(&format!(
                "restarted {}",
                r.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => String::new(),
        },
        "rollback" => truncate(body["message"].as_str().unwrap_or("")),
        _ => String::new(),
    }
}

/// The target of a change: its path under `/v1/`, and for a creation the new resource's name.
fn target(path: &str, action: &str, body: &Value) -> String {
    let base = path.trim_start_matches("/v1/").to_owned();
    let created = match action {
        "deploy" => body["app"].as_str(),
        "key.create" => body["id"].as_str(),
        "queue.create" => body["queue"]["name"].as_str(),
        "topic.create" => body["topic"]["name"].as_str(),
        "project.create" => body["name"].as_str(),
        _ => None,
    };
    match created {
        Some(name) => format!("{base}/{name}"),
        None => base,
    }
}

fn outcome(status: u16) -> &'static str {
    match status {
        s if s < 400 => "ok",
        401 | 403 => "denied",
        _ => "failed",
    }
}

/// Middleware (inside the role check, which hands it the [`Actor`]): records the change the
/// request made, once it is answered.
pub(crate) async fn record(
    State(state): State<Arc<crate::State>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(action) = action(req.method(), &route) else {
        return next.run(req).await;
    };
    let Some(caller) = req.extensions().get::<Actor>().cloned() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    let action = if action == "other" {
        format!("{} {route}", req.method())
    } else {
        action.to_owned()
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_READ)
        .await
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    // A new project, or a key made for another project, belongs to that project.
    let project = match (
        action.as_str(),
        json["project"].as_str(),
        json["name"].as_str(),
    ) {
        ("key.create", Some(p), _) | ("project.create", _, Some(p)) => p.to_owned(),
        _ => project_of(&caller, &path),
    };
    let entry = AuditRecord {
        id: 0,
        project,
        ts_ms: now_ms(),
        actor: caller.id.clone(),
        target: target(&path, &action, &json),
        outcome: outcome(status).to_owned(),
        status,
        detail: detail(&action, status, &json),
        action,
    };
    append(&state, &entry).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// Records a change the caller's role does not allow.
pub(crate) async fn denied(
    state: &crate::State,
    caller: &Actor,
    method: &Method,
    route: &str,
    path: &str,
    why: &str,
) {
    let Some(action) = action(method, route) else {
        return;
    };
    let entry = AuditRecord {
        id: 0,
        project: project_of(caller, path),
        ts_ms: now_ms(),
        actor: caller.id.clone(),
        action: action.to_owned(),
        target: path.trim_start_matches("/v1/").to_owned(),
        outcome: "denied".to_owned(),
        status: 403,
        detail: truncate(why),
    };
    append(state, &entry).await;
}

async fn append(state: &crate::State, entry: &AuditRecord) {
    if let Err(e) = state.metadata.append_audit(entry).await {
        // The change itself happened (or was refused); only its record is missing.
        tracing::error!(error = %e, action = %entry.action, target = %entry.target, "could not write an audit entry");
    }
}

#[cfg(test)]
mod tests;
