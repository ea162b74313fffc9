//! The metadata, telemetry and auth conformance suites against the SQLite backend.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::conformance::{AuthSubject, MetadataSubject, TelemetrySubject};
use crate::{AuthStore, MetadataStore, Store, TelemetryStore};

struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn open(&self) -> Store {
        Store::open(self.0.path()).unwrap()
    }
}

#[async_trait::async_trait]
impl MetadataSubject for Sqlite {
    async fn fresh(&self) -> Arc<dyn MetadataStore> {
        Arc::new(self.open())
    }

    async fn reopen(&self, store: Arc<dyn MetadataStore>) -> Arc<dyn MetadataStore> {
        drop(store);
        Arc::new(self.open())
    }
}

#[async_trait::async_trait]
impl TelemetrySubject for Sqlite {
    async fn fresh(&self) -> Arc<dyn TelemetryStore> {
        Arc::new(self.open())
    }

    async fn reopen(&self, store: Arc<dyn TelemetryStore>) -> Arc<dyn TelemetryStore> {
        store.flush().await;
        drop(store);
        Arc::new(self.open())
    }
}

#[async_trait::async_trait]
impl AuthSubject for Sqlite {
    async fn fresh(&self) -> Arc<dyn AuthStore> {
        Arc::new(self.open())
    }

    async fn reopen(&self, store: Arc<dyn AuthStore>) -> Arc<dyn AuthStore> {
        drop(store);
        Arc::new(self.open())
    }
}

mod auth {
    use super::Sqlite;
    crate::auth_conformance!(Sqlite::new());
}

mod metadata {
    use super::Sqlite;
    crate::metadata_conformance!(Sqlite::new());
}

mod telemetry {
    use super::Sqlite;
    crate::telemetry_conformance!(Sqlite::new());
}
