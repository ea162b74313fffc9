//! The configuration file's shape as serde reads it: every key optional, unknown keys refused.
//! `FileConfig::from_toml` turns it into checked values with defaults filled in.

use std::collections::BTreeMap;

use serde::Deserialize;
use updraft_manifest::Quotas;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) maxima: RawMaxima,
    #[serde(default)]
    pub(super) concurrency: RawConcurrency,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) sandbox: RawSandbox,
    #[serde(default)]
    pub(super) pool: RawPool,
    #[serde(default)]
    pub(super) versions: RawVersions,
    #[serde(default)]
    pub(super) canary: RawCanary,
    #[serde(default)]
    pub(super) metering: RawMetering,
    #[serde(default)]
    pub(super) logs: RawLogs,
    #[serde(default)]
    pub(super) pricing: RawPricing,
    #[serde(default)]
    pub(super) quotas: BTreeMap<String, Quotas>,
    #[serde(default)]
    pub(super) tracing: RawTracing,
    #[serde(default)]
    pub(super) events: RawEvents,
    #[serde(default)]
    pub(super) projects: RawProjects,
    #[serde(default)]
    pub(super) secrets: RawSecrets,
    #[serde(default)]
    pub(super) audit: RawAudit,
    #[serde(default)]
    pub(super) key_value: RawKeyValue,
    #[serde(default)]
    pub(super) documents: RawDocuments,
    #[serde(default)]
    pub(super) objects: super::objects::RawObjects,
    #[serde(default)]
    pub(super) sites: super::objects::RawSites,
    #[serde(default)]
    pub(super) process: super::process::RawProcess,
    #[serde(default)]
    pub(super) auth: RawAuth,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) access_token_ttl: Option<String>,
    pub(super) refresh_reuse_grace: Option<String>,
    pub(super) signup: Option<bool>,
    pub(super) anonymous: Option<bool>,
    pub(super) min_password_length: Option<usize>,
    pub(super) per_ip_per_minute: Option<u32>,
    pub(super) per_account_per_hour: Option<u32>,
    pub(super) confirm_email: Option<bool>,
    pub(super) otp_ttl: Option<String>,
    pub(super) redirect_urls: Option<Vec<String>>,
    pub(super) smtp: Option<RawSmtp>,
    pub(super) trusted_proxies: Option<Vec<String>>,
    pub(super) oidc: Option<Vec<RawOidc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    pub(super) name: String,
    pub(super) issuer: String,
    pub(super) client_id: String,
    pub(super) client_secret_file: Option<String>,
    pub(super) client_secret_env: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) security: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) from: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocuments {
    pub(super) max_document_bytes: Option<String>,
    pub(super) page_size: Option<usize>,
    pub(super) max_page: Option<usize>,
    pub(super) changes_max_age: Option<String>,
    pub(super) max_streams: Option<usize>,
    pub(super) max_streams_per_user: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyValue {
    pub(super) max_key_bytes: Option<String>,
    pub(super) max_value_bytes: Option<String>,
    pub(super) max_project_bytes: Option<String>,
    pub(super) max_batch: Option<usize>,
    pub(super) page_size: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) max_age: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecrets {
    pub(super) key_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProjects {
    pub(super) base_domain: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    pub(super) retry_base: Option<String>,
    pub(super) retry_max: Option<String>,
    pub(super) max_inflight: Option<u32>,
    pub(super) max_queue_depth: Option<u64>,
    pub(super) async_result_max_age: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetering {
    pub(super) enabled: Option<bool>,
    pub(super) retention: Option<String>,
    pub(super) max_size: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogs {
    pub(super) enabled: Option<bool>,
    pub(super) max_age: Option<String>,
    pub(super) max_size: Option<String>,
    pub(super) max_lines_per_second: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPricing {
    pub(super) per_million_requests: Option<f64>,
    pub(super) per_gb_second: Option<f64>,
    pub(super) free_requests: Option<u64>,
    pub(super) free_gb_seconds: Option<f64>,
    pub(super) currency: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTracing {
    pub(super) otlp_endpoint: Option<String>,
    pub(super) service_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVersions {
    pub(super) keep: Option<usize>,
    pub(super) unused_artifact_grace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    pub(super) window: Option<String>,
    pub(super) min_requests: Option<u64>,
    pub(super) max_error_rate_increase: Option<f64>,
    pub(super) max_latency_ratio: Option<f64>,
    pub(super) latency_margin: Option<String>,
    pub(super) check_interval: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) timeout: Option<String>,
    pub(super) memory: Option<String>,
    pub(super) max_concurrency: Option<u32>,
    pub(super) idle_timeout: Option<String>,
    pub(super) max_request_body: Option<String>,
    pub(super) max_response_body: Option<String>,
    pub(super) max_reuse: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaxima {
    pub(super) timeout: Option<String>,
    pub(super) memory: Option<String>,
    pub(super) max_concurrency: Option<u32>,
    pub(super) min_instances: Option<u32>,
    pub(super) max_request_body: Option<String>,
    pub(super) max_response_body: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConcurrency {
    pub(super) global_max: Option<u32>,
    pub(super) queue_timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) max_headers: Option<usize>,
    pub(super) max_header_bytes: Option<String>,
    pub(super) header_read_timeout: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) control_max_connections: Option<usize>,
    pub(super) h2_keep_alive_interval: Option<String>,
    pub(super) h2_keep_alive_timeout: Option<String>,
    pub(super) h2_max_concurrent_streams: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub(super) enabled: Option<bool>,
    pub(super) max_instances: Option<u32>,
    pub(super) memory_keep_resident: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSandbox {
    pub(super) max_resources: Option<usize>,
    pub(super) max_field_bytes: Option<String>,
    pub(super) max_outbound_requests: Option<usize>,
    pub(super) long_run_after: Option<String>,
    pub(super) long_run_threads: Option<usize>,
}
