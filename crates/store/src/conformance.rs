//! The conformance suites of the storage traits: what every backend must do, written against
//! the traits only. A backend is done when it passes its trait's suite: the embedded backends'
//! tests run them here, and PostgreSQL and S3 backends will run them unchanged.
//!
//! Each suite has a subject trait (a way to make a fresh, empty store and to reopen one as after
//! a crash of the process holding it) and a macro that expands to one `#[tokio::test]` per case:
//!
//! ```ignore
//! struct Sqlite(tempfile::TempDir);
//! #[async_trait::async_trait]
//! impl updraft_store::conformance::MetadataSubject for Sqlite { /* fresh, reopen */ }
//! updraft_store::metadata_conformance!(Sqlite::new());
//! ```

#![allow(missing_docs)]

pub mod artifacts;
pub mod auth;
pub mod docs;
pub mod kv;
pub mod metadata;
pub mod telemetry;

use std::sync::Arc;

use crate::{ArtifactStore, AuthStore, MetadataStore, TelemetryStore};

/// What a case returns: an error (a failed call, a missing value) fails the test with it, so
/// the suites never unwrap.
pub type Outcome = Result<(), Failure>;

/// Why a case failed.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// `Some`, or an error saying a value was expected.
pub(crate) trait Found<T> {
    fn found(self) -> Result<T, &'static str>;
}

impl<T> Found<T> for Option<T> {
    fn found(self) -> Result<T, &'static str> {
        self.ok_or("expected a value, found none")
    }
}

/// What the metadata suite needs of a backend.
#[async_trait::async_trait]
pub trait MetadataSubject: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn MetadataStore>;
    /// The same store as `store`, opened again after it is dropped.
    async fn reopen(&self, store: Arc<dyn MetadataStore>) -> Arc<dyn MetadataStore>;
}

/// What the telemetry suite needs of a backend.
#[async_trait::async_trait]
pub trait TelemetrySubject: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn TelemetryStore>;
    /// The same store as `store`, opened again after it is flushed and dropped.
    async fn reopen(&self, store: Arc<dyn TelemetryStore>) -> Arc<dyn TelemetryStore>;
}

/// What the auth suite needs of a backend.
#[async_trait::async_trait]
pub trait AuthSubject: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn AuthStore>;
    /// The same store as `store`, opened again after it is dropped.
    async fn reopen(&self, store: Arc<dyn AuthStore>) -> Arc<dyn AuthStore>;
}

/// What the key-value suite needs of a backend.
#[async_trait::async_trait]
pub trait KvSubject: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn crate::KvStore>;
    /// The same store as `store`, opened again after it is dropped.
    async fn reopen(&self, store: Arc<dyn crate::KvStore>) -> Arc<dyn crate::KvStore>;
}

/// What the document suite needs of a backend.
#[async_trait::async_trait]
pub trait DocSubject: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn crate::DocStore>;
    /// The same store as `store`, opened again after it is dropped.
    async fn reopen(&self, store: Arc<dyn crate::DocStore>) -> Arc<dyn crate::DocStore>;
}

/// What the artifact suite needs of a backend.
#[async_trait::async_trait]
pub trait ArtifactSubject: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn ArtifactStore>;
    /// The same store as `store`, opened again after it is dropped.
    async fn reopen(&self, store: Arc<dyn ArtifactStore>) -> Arc<dyn ArtifactStore>;
}

/// One `#[tokio::test]` per case of a suite, each given `$subject` (made fresh per case).
#[macro_export]
macro_rules! conformance_cases {
    ($suite:ident, $subject:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> $crate::conformance::Outcome {
                let subject = $subject;
                $crate::conformance::$suite::$case(&subject).await
            }
        )*
    };
}

/// The [`MetadataStore`] suite against the [`MetadataSubject`] `$subject` makes.
#[macro_export]
macro_rules! metadata_conformance {
    ($subject:expr) => {
        $crate::conformance_cases!(metadata, $subject;
            admin_tokens_are_kept,
            api_keys_are_kept_listed_by_project_and_deleted,
            deploy_replaces_the_apps_functions_and_survives_reopen,
            a_function_name_belongs_to_one_app,
            changes_publish_versions_and_live_follows,
            canary_deploys_leave_live_and_routes_create_their_aliases,
            retention_keeps_aliased_versions_and_orphans_unused_artifacts,
            version_numbers_are_never_reused,
            projects_do_not_see_each_other,
            projects_are_created_listed_and_deleted,
            audit_entries_are_kept_listed_and_expired,
            concurrent_deploys_get_distinct_versions,
        );
    };
}

/// The [`TelemetryStore`] suite against the [`TelemetrySubject`] `$subject` makes.
#[macro_export]
macro_rules! telemetry_conformance {
    ($subject:expr) => {
        $crate::conformance_cases!(telemetry, $subject;
            lines_are_written_queried_and_kept_across_reopen,
            ids_are_given_when_queued_and_followers_see_lines_at_once,
            time_and_request_filters,
            usage_sums_match_hand_computed_figures,
            data_usage_sums_per_function_and_minute,
            large_batches_keep_every_record_and_field,
            invocations_are_found_by_request_id_and_filtered,
            limits_are_exact_across_batches,
            projects_do_not_see_each_other,
        );
    };
}

/// The [`AuthStore`] suite against the [`AuthSubject`] `$subject` makes.
#[macro_export]
macro_rules! auth_conformance {
    ($subject:expr) => {
        $crate::conformance_cases!(auth, $subject;
            users_are_kept_per_project_with_unique_emails,
            refresh_tokens_rotate_and_reuse_revokes_the_session,
            sessions_end_one_others_or_all,
            signing_keys_rotate_and_retired_ones_go,
            one_time_tokens_work_once_and_mail_is_kept,
        );
    };
}

/// The [`ArtifactStore`] suite against the [`ArtifactSubject`] `$subject` makes.
#[macro_export]
macro_rules! artifact_conformance {
    ($subject:expr) => {
        $crate::conformance_cases!(artifacts, $subject;
            artifacts_are_content_addressed_and_verified,
            an_unfinished_write_leaves_nothing,
            digests_that_are_not_digests_are_refused,
            concurrent_writers_of_one_digest,
            artifacts_survive_a_reopen,
            stored_artifacts_are_listed,
        );
    };
}

/// The [`KvStore`](crate::KvStore) suite against the [`KvSubject`] `$subject` makes.
#[macro_export]
macro_rules! kv_conformance {
    ($subject:expr) => {
        $crate::conformance_cases!(kv, $subject;
            stores_are_created_listed_and_deleted,
            writes_need_an_existing_store,
            values_survive_reopen,
            conditions_guard_writes_and_batches_are_atomic,
            increments_are_atomic_and_checked,
            expired_keys_are_absent_and_purged,
            listing_pages_by_prefix,
            the_quota_is_checked_in_the_write,
            projects_do_not_see_each_other,
            watched_stores_log_their_changes,
        );
    };
}

/// The [`DocStore`](crate::DocStore) suite against the [`DocSubject`] `$subject` makes.
#[macro_export]
macro_rules! doc_conformance {
    ($subject:expr) => {
        $crate::conformance_cases!(docs, $subject;
            documents_are_written_read_and_kept,
            conditions_and_revisions_guard_writes,
            queries_filter_sort_and_page_on_declared_fields,
            projects_and_collections_do_not_see_each_other,
            changes_are_logged_and_announced_in_commit_order,
        );
    };
}
