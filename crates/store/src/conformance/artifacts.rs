//! The [`ArtifactStore`] suite.

use super::Outcome;
use std::sync::Arc;

use super::ArtifactSubject;
use crate::{ArtifactStore, StoreError};

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn put(store: &dyn ArtifactStore, bytes: &[u8]) -> Result<u64, StoreError> {
    let mut w = store.writer(&digest(bytes)).await?;
    // In uneven chunks, as an upload arrives.
    for chunk in bytes.chunks(7) {
        w.write(chunk).await?;
    }
    w.commit().await
}

/// Bytes are stored under their digest and verified; storing them again is harmless;
/// deleting is idempotent.
pub async fn artifacts_are_content_addressed_and_verified(
    subject: &dyn ArtifactSubject,
) -> Outcome {
    let store = subject.fresh().await;
    let bytes = b"\0asm fake component bytes";
    let d = digest(bytes);
    assert!(!store.exists(&d).await?);
    assert!(matches!(
        store.read(&d).await,
        Err(StoreError::NoSuchArtifact { .. })
    ));
    assert_eq!(put(&*store, bytes).await?, bytes.len() as u64);
    assert!(store.exists(&d).await?);
    assert_eq!(store.read(&d).await?, bytes);
    assert_eq!(put(&*store, bytes).await?, bytes.len() as u64);
    // Bytes that hash to something else are refused under this digest, and leave nothing.
    let wrong = digest(b"other");
    let mut w = store.writer(&wrong).await?;
    w.write(bytes).await?;
    assert_eq!(w.written(), bytes.len() as u64);
    assert!(matches!(
        w.commit().await,
        Err(StoreError::DigestMismatch { .. })
    ));
    assert!(!store.exists(&wrong).await?);
    store.delete(&d).await?;
    store.delete(&d).await?;
    assert!(!store.exists(&d).await?);
    Ok(())
}

/// A write that is never committed (an upload cut off) leaves no artifact.
pub async fn an_unfinished_write_leaves_nothing(subject: &dyn ArtifactSubject) -> Outcome {
    let store = subject.fresh().await;
    let bytes = b"half an upload";
    let d = digest(bytes);
    let mut w = store.writer(&d).await?;
    w.write(&bytes[..4]).await?;
    drop(w);
    assert!(!store.exists(&d).await?);
    assert!(store.read(&d).await.is_err());
    Ok(())
}

/// Names that are not digests (`../`, upper case, short) are refused before touching storage.
pub async fn digests_that_are_not_digests_are_refused(subject: &dyn ArtifactSubject) -> Outcome {
    let store = subject.fresh().await;
    let bad = [
        "../../etc/passwd".to_owned(),
        digest(b"x").to_uppercase(),
        "abc".to_owned(),
        format!("{}/", &digest(b"x")[..63]),
        String::new(),
    ];
    for d in bad {
        assert!(
            matches!(store.exists(&d).await, Err(StoreError::InvalidDigest(_))),
            "{d}"
        );
        assert!(matches!(
            store.writer(&d).await.err(),
            Some(StoreError::InvalidDigest(_))
        ));
        assert!(matches!(
            store.read(&d).await,
            Err(StoreError::InvalidDigest(_))
        ));
        assert!(matches!(
            store.delete(&d).await,
            Err(StoreError::InvalidDigest(_))
        ));
    }
    Ok(())
}

/// Two uploads of the same artifact at once both succeed, and the result is whole.
pub async fn concurrent_writers_of_one_digest(subject: &dyn ArtifactSubject) -> Outcome {
    let store: Arc<dyn ArtifactStore> = subject.fresh().await;
    let bytes: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, bytes) = (store.clone(), bytes.clone());
            tokio::spawn(async move { put(&*store, &bytes).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await??, bytes.len() as u64);
    }
    assert_eq!(store.read(&digest(&bytes)).await?, bytes);
    Ok(())
}

/// Committed artifacts survive a reopen.
pub async fn artifacts_survive_a_reopen(subject: &dyn ArtifactSubject) -> Outcome {
    let store = subject.fresh().await;
    let bytes = b"kept";
    put(&*store, bytes).await?;
    let store = subject.reopen(store).await;
    assert_eq!(store.read(&digest(bytes)).await?, bytes);
    Ok(())
}

/// Listing shows every committed artifact (not writes in progress) with when it was stored.
pub async fn stored_artifacts_are_listed(subject: &dyn ArtifactSubject) -> Outcome {
    let store = subject.fresh().await;
    assert!(store.list().await?.is_empty());
    let before = crate::now_ms() - 5_000;
    put(&*store, b"one").await?;
    put(&*store, b"two").await?;
    let mut open = store.writer(&digest(b"three")).await?;
    open.write(b"thr").await?;
    let mut listed = store.list().await?;
    listed.sort();
    let mut want = vec![digest(b"one"), digest(b"two")];
    want.sort();
    assert_eq!(
        listed.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        want
    );
    assert!(listed.iter().all(|(_, ms)| *ms >= before), "{listed:?}");
    drop(open);
    store.delete(&digest(b"one")).await?;
    assert_eq!(store.list().await?.len(), 1);
    Ok(())
}
