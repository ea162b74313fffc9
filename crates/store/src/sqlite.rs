//! The SQLite backend's implementations of [`MetadataStore`] and [`TelemetryStore`]: each call
//! runs the [`Store`]'s synchronous SQLite code on Tokio's blocking pool.

use std::sync::Arc;

use tokio::sync::broadcast;
use updraft_api::Invocation;

use crate::{
    AliasRecord, ApiKeyRecord, AuditQuery, AuditRecord, DeployOptions, DeployOutcome,
    DeployedFunction, FunctionRecord, InvocationQuery, LogQuery, LogRecord, MetadataStore,
    ProjectRecord, Pruned, SecretRecord, Store, StoreError, TelemetryStore, UsageQuery,
    UsageSummary,
};

impl Store {
    /// Runs `f` with this store on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(Box::new(e))))
    }
}

fn own(s: &str) -> String {
    s.to_owned()
}

#[async_trait::async_trait]
impl MetadataStore for Store {
    async fn admin_tokens(&self) -> Result<Vec<String>, StoreError> {
        self.run(Store::admin_tokens).await
    }

    async fn add_admin_token(&self, token_sha256: &str) -> Result<(), StoreError> {
        let t = own(token_sha256);
        self.run(move |s| s.add_admin_token(&t)).await
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let k = key.clone();
        self.run(move |s| s.create_api_key(&k)).await
    }

    async fn api_keys(&self, project: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let p = project.map(own);
        self.run(move |s| s.api_keys(p.as_deref())).await
    }

    async fn delete_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let i = own(id);
        self.run(move |s| s.delete_api_key(&i)).await
    }

    async fn create_project(&self, project: &ProjectRecord) -> Result<bool, StoreError> {
        let p = project.clone();
        self.run(move |s| s.create_project(&p)).await
    }

    async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        self.run(Store::projects).await
    }

    async fn set_project_domains(&self, id: &str, domains: &[String]) -> Result<bool, StoreError> {
        let (i, d) = (own(id), domains.to_vec());
        self.run(move |s| s.set_project_domains(&i, &d)).await
    }

    async fn set_project_cors(&self, id: &str, origins: &[String]) -> Result<bool, StoreError> {
        let (i, o) = (own(id), origins.to_vec());
        self.run(move |s| s.set_project_cors(&i, &o)).await
    }

    async fn delete_project(&self, id: &str) -> Result<bool, StoreError> {
        let i = own(id);
        self.run(move |s| s.delete_project(&i)).await
    }

    async fn grant_artifact(&self, project: &str, digest: &str) -> Result<(), StoreError> {
        let (p, d) = (own(project), own(digest));
        self.run(move |s| s.grant_artifact(&p, &d)).await
    }

    async fn has_artifact(&self, project: &str, digest: &str) -> Result<bool, StoreError> {
        let (p, d) = (own(project), own(digest));
        self.run(move |s| s.has_artifact(&p, &d)).await
    }

    async fn forget_artifact(&self, digest: &str) -> Result<(), StoreError> {
        let d = own(digest);
        self.run(move |s| s.forget_artifact(&d)).await
    }

    async fn put_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let (p, n, s) = (own(project), own(name), sealed.to_vec());
        self.run(move |st| st.put_secret(&p, &n, &s)).await
    }

    async fn secrets(&self, project: &str) -> Result<Vec<SecretRecord>, StoreError> {
        let p = own(project);
        self.run(move |s| s.secrets(&p)).await
    }

    async fn delete_secret(&self, project: &str, name: &str) -> Result<bool, StoreError> {
        let (p, n) = (own(project), own(name));
        self.run(move |s| s.delete_secret(&p, &n)).await
    }

    async fn append_audit(&self, entry: &AuditRecord) -> Result<i64, StoreError> {
        let e = entry.clone();
        self.run(move |s| s.append_audit(&e)).await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let q = q.clone();
        self.run(move |s| s.audit(&q)).await
    }

    async fn expire_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.run(move |s| s.expire_audit(before_ms)).await
    }

    async fn referenced_artifacts(&self) -> Result<Vec<String>, StoreError> {
        self.run(Store::referenced_artifacts).await
    }

    async fn deploy_app(
        &self,
        project: &str,
        app: &str,
        manifest: &str,
        functions: &[DeployedFunction],
        options: &DeployOptions,
    ) -> Result<DeployOutcome, StoreError> {
        let (p, a, m) = (own(project), own(app), own(manifest));
        let (f, o) = (functions.to_vec(), options.clone());
        self.run(move |s| s.deploy_app(&p, &a, &m, &f, &o)).await
    }

    async fn functions(&self, project: &str) -> Result<Vec<FunctionRecord>, StoreError> {
        let p = own(project);
        self.run(move |s| s.functions(&p)).await
    }

    async fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.run(Store::all_functions).await
    }

    async fn function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let (p, n) = (own(project), own(name));
        self.run(move |s| s.function(&p, &n)).await
    }

    async fn version_manifest(
        &self,
        project: &str,
        function: &str,
        version: u32,
    ) -> Result<Option<String>, StoreError> {
        let (p, f) = (own(project), own(function));
        self.run(move |s| s.version_manifest(&p, &f, version)).await
    }

    async fn set_alias(
        &self,
        project: &str,
        function: &str,
        alias: &AliasRecord,
        keep: usize,
    ) -> Result<(FunctionRecord, Pruned), StoreError> {
        let (p, f, a) = (own(project), own(function), alias.clone());
        self.run(move |s| s.set_alias(&p, &f, &a, keep)).await
    }

    async fn delete_alias(
        &self,
        project: &str,
        function: &str,
        alias: &str,
    ) -> Result<bool, StoreError> {
        let (p, f, a) = (own(project), own(function), own(alias));
        self.run(move |s| s.delete_alias(&p, &f, &a)).await
    }

    async fn set_version_note(
        &self,
        project: &str,
        function: &str,
        version: u32,
        note: &str,
    ) -> Result<(), StoreError> {
        let (p, f, n) = (own(project), own(function), own(note));
        self.run(move |s| s.set_version_note(&p, &f, version, &n))
            .await
    }

    async fn delete_function(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<Pruned>, StoreError> {
        let (p, n) = (own(project), own(name));
        self.run(move |s| s.delete_function(&p, &n)).await
    }
}

#[async_trait::async_trait]
impl TelemetryStore for Store {
    fn write(&self, record: LogRecord) {
        self.logs().write(record);
    }

    fn record(&self, invocation: Invocation) {
        self.logs().record(invocation);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.logs().subscribe()
    }

    fn dropped(&self) -> u64 {
        self.logs().dropped()
    }

    async fn flush(&self) {
        let _ = self
            .run(|s| {
                s.logs().flush();
                Ok(())
            })
            .await;
    }

    async fn query_logs(&self, project: &str, q: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let (p, q) = (own(project), q.clone());
        self.run(move |s| s.query_logs(&p, &q)).await
    }

    async fn invocations(
        &self,
        project: &str,
        q: &InvocationQuery,
    ) -> Result<Vec<Invocation>, StoreError> {
        let (p, q) = (own(project), q.clone());
        self.run(move |s| s.invocations(&p, &q)).await
    }

    async fn usage(&self, project: &str, q: &UsageQuery) -> Result<UsageSummary, StoreError> {
        let (p, q) = (own(project), q.clone());
        self.run(move |s| s.usage(&p, &q)).await
    }

    async fn record_data_usage(&self, rows: Vec<crate::DataUsage>) -> Result<(), StoreError> {
        self.run(move |s| s.record_data_usage(&rows)).await
    }

    async fn forget_project(&self, project: &str) -> Result<(), StoreError> {
        let p = own(project);
        self.run(move |s| {
            s.logs().flush();
            s.forget_project_telemetry(&p)
        })
        .await
    }
}

mod auth;

#[cfg(test)]
mod tests;
