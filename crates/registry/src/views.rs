//! The API's views of deployed state: functions with their runtime state, versions, aliases.

use updraft_api::{
    AliasInfo, CanaryInfo, FunctionInfo, RouteInfo, RuntimeInfo, VersionInfo, VersionList,
};
use updraft_store::{AliasRecord, FunctionRecord, VersionRecord};

use crate::build::Entry;
use crate::limits::{Limits, UNCAPPED_REUSE};

/// The API view of an alias.
pub(crate) fn alias_info(a: &AliasRecord) -> AliasInfo {
    AliasInfo {
        name: a.name.clone(),
        version: a.version,
        canary: a.canary.as_ref().map(|c| CanaryInfo {
            version: c.version,
            weight: c.weight,
            auto_rollback: c.auto_rollback,
            promote_after_ms: c.promote_after_ms,
            started_at: c.started_at,
        }),
        updated_at: a.updated_at,
    }
}

/// The API view of a function: its `live` version with the server's defaults filled in, and
/// that version's runtime state.
pub(crate) fn info(limits: &Limits, e: &Entry) -> Option<FunctionInfo> {
    let record = &e.record;
    let live = record.live()?;
    let spec = &live.spec;
    let eff = limits.resolve(spec);
    let runtime = e.version(live.version).map(|v| {
        let s = v.runtime.stats();
        RuntimeInfo {
            loaded: s.loaded,
            ready_instances: s.ready_instances,
            cold_starts: s.cold_starts,
            evictions: s.evictions,
            reuse_disabled: s.reuse_disabled,
        }
    });
    Some(FunctionInfo {
        name: record.name.clone(),
        app: record.app.clone(),
        digest: live.digest.clone(),
        version: live.version,
        latest_version: record.latest().map_or(live.version, |v| v.version),
        aliases: record.aliases.iter().map(alias_info).collect(),
        routes: spec
            .http
            .iter()
            .map(|t| RouteInfo {
                route: t.route.to_string(),
                methods: t.methods.iter().map(|m| m.as_str().to_owned()).collect(),
            })
            .collect(),
        timeout_ms: u64::try_from(eff.timeout.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: eff.memory,
        max_concurrency: eff.max_concurrency,
        min_instances: spec.min_instances,
        idle_timeout_ms: u64::try_from(eff.idle_timeout.as_millis()).unwrap_or(u64::MAX),
        instance_reuse: spec.instance_reuse.as_str().to_owned(),
        // Uncapped (a process function's default) shows as absent.
        max_reuse: eff.max_reuse.filter(|&n| n != UNCAPPED_REUSE),
        max_request_body: eff.max_request_body,
        max_response_body: eff.max_response_body,
        allowed_outbound_hosts: spec.allowed_outbound_hosts.clone(),
        env: spec.env.keys().cloned().collect(),
        secrets: spec.secrets.clone(),
        updated_at: live.created_at,
        runtime,
        kind: spec.runtime.as_str().to_owned(),
        handler: spec.handler.clone(),
        sandbox: None,
    })
}

/// The `aliases` column of a version: `live`, `live (canary 10%)`.
fn alias_labels(record: &FunctionRecord, n: u32) -> Vec<String> {
    let mut labels = Vec::new();
    for a in &record.aliases {
        if a.version == n {
            labels.push(match &a.canary {
                Some(c) => format!("{} ({}%)", a.name, 100 - u32::from(c.weight)),
                None => a.name.clone(),
            });
        }
        if let Some(c) = a.canary.as_ref().filter(|c| c.version == n) {
            labels.push(format!("{} (canary {}%)", a.name, c.weight));
        }
    }
    labels
}

pub(crate) fn version_info(record: &FunctionRecord, v: &VersionRecord) -> VersionInfo {
    VersionInfo {
        version: v.version,
        digest: v.digest.clone(),
        created_at: v.created_at,
        deployer: v.deployer.clone(),
        aliases: alias_labels(record, v.version),
        deleted_at: v.deleted_at,
        note: v.note.clone(),
    }
}

pub(crate) fn version_list(record: &FunctionRecord) -> VersionList {
    VersionList {
        function: record.name.clone(),
        versions: record
            .versions
            .iter()
            .rev()
            .map(|v| version_info(record, v))
            .collect(),
        aliases: record.aliases.iter().map(alias_info).collect(),
    }
}
