//! The artifact conformance suite against the file backend.

use std::sync::Arc;

use super::*;
use crate::conformance::ArtifactSubject;

struct Files(tempfile::TempDir);

#[async_trait::async_trait]
impl ArtifactSubject for Files {
    async fn fresh(&self) -> Arc<dyn ArtifactStore> {
        Arc::new(FsArtifacts::open(self.0.path().join("artifacts")).unwrap())
    }

    async fn reopen(&self, store: Arc<dyn ArtifactStore>) -> Arc<dyn ArtifactStore> {
        drop(store);
        self.fresh().await
    }
}

crate::artifact_conformance!(Files(tempfile::tempdir().unwrap()));

#[tokio::test]
async fn an_unfinished_write_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsArtifacts::open(dir.path()).unwrap();
    let mut w = store.writer(&"a".repeat(64)).await.unwrap();
    w.write(b"partial").await.unwrap();
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
