//! The embedded object store: commits, conditions, quotas, listing order, multipart, blobs.

#![allow(clippy::unwrap_used)]

use tokio::io::AsyncReadExt;

use super::prefix_successor;
use super::*;
use crate::data::DataStore;

const QUOTA: ObjectQuota = ObjectQuota {
    max_bytes: 1 << 30,
    max_objects: 1000,
};

fn open(dir: &std::path::Path) -> FsObjects {
    FsObjects::open(DataStore::open(dir).unwrap(), dir.join("objects")).unwrap()
}

async fn with_bucket(dir: &std::path::Path) -> FsObjects {
    let s = open(dir);
    s.create_bucket(&BucketInfo {
        name: "b".into(),
        project: "p".into(),
        public_read: false,
        cors: None,
        created_at: 1,
    })
    .await
    .unwrap();
    s
}

async fn blob(s: &FsObjects, bytes: &[u8]) -> BlobRef {
    let mut w = s.blob_writer().await.unwrap();
    w.write(bytes).await.unwrap();
    w.finish().await.unwrap()
}

fn put(key: &str, blob: BlobRef) -> ObjectPut {
    ObjectPut {
        how: "Put",
        bucket: "b".into(),
        key: key.into(),
        etag: format!("etag-{}", blob.size),
        blob,
        attrs: ObjectAttrs::default(),
        condition: PutCondition::Any,
        writer: None,
    }
}

async fn read_all(s: &FsObjects, id: &str, offset: u64, len: u64) -> Vec<u8> {
    let mut r = s.read_blob(id, offset, len).await.unwrap().unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    out
}

fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("objects/blobs"))
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum()
}

#[tokio::test]
async fn a_put_replaces_the_object_and_its_old_blob_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_bucket(dir.path()).await;
    let first = s
        .put_object(put("a/1", blob(&s, b"hello").await), QUOTA)
        .await
        .unwrap();
    assert_eq!(read_all(&s, &first.blob, 1, 3).await, b"ell");
    let second = s
        .put_object(put("a/1", blob(&s, b"bye!").await), QUOTA)
        .await
        .unwrap();
    assert!(s.read_blob(&first.blob, 0, 5).await.unwrap().is_none());
    assert_eq!(blob_files(dir.path()), 1);
    assert_eq!(
        s.usage("p").await.unwrap(),
        ObjectUsage {
            objects: 1,
            bytes: 4
        }
    );
    drop(s);
    let s = open(dir.path());
    let got = s.head_object("b", "a/1").await.unwrap().unwrap();
    assert_eq!(got, second);
    assert_eq!(read_all(&s, &got.blob, 0, 100).await, b"bye!");
    let gone = s.delete_object("b", "a/1", None).await.unwrap().unwrap();
    assert_eq!(gone.key, "a/1");
    assert_eq!(blob_files(dir.path()), 0);
    assert_eq!(s.usage("p").await.unwrap(), ObjectUsage::default());
    assert!(s.delete_object("b", "a/1", None).await.unwrap().is_none());
}

#[tokio::test]
async fn conditions_and_quotas_refuse_without_leaving_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_bucket(dir.path()).await;
    s.put_object(put("k", blob(&s, b"one").await), QUOTA)
        .await
        .unwrap();
    let mut p = put("k", blob(&s, b"two").await);
    p.condition = PutCondition::Absent;
    assert!(matches!(
        s.put_object(p, QUOTA).await,
        Err(ObjectError::PreconditionFailed(_))
    ));
    let mut p = put("k", blob(&s, b"two").await);
    p.condition = PutCondition::Matches("nope".into());
    assert!(matches!(
        s.put_object(p, QUOTA).await,
        Err(ObjectError::PreconditionFailed(_))
    ));
    let mut p = put("k", blob(&s, b"two").await);
    p.condition = PutCondition::Matches("etag-3".into());
    s.put_object(p, QUOTA).await.unwrap();
    let small = ObjectQuota {
        max_bytes: 10,
        max_objects: 2,
    };
    let err = s
        .put_object(put("big", blob(&s, &[0; 8]).await), small)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ObjectError::QuotaExceeded { what: "bytes", .. }),
        "{err}"
    );
    s.put_object(put("x", blob(&s, b"1").await), small)
        .await
        .unwrap();
    let err = s
        .put_object(put("y", blob(&s, b"1").await), small)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ObjectError::QuotaExceeded {
                what: "objects",
                ..
            }
        ),
        "{err}"
    );
    // Replacing an object is not a new one.
    s.put_object(put("x", blob(&s, b"2").await), small)
        .await
        .unwrap();
    let mut p = put("k", blob(&s, b"z").await);
    p.bucket = "missing".into();
    assert!(matches!(
        s.put_object(p, QUOTA).await,
        Err(ObjectError::NoSuchBucket(_))
    ));
    assert_eq!(
        blob_files(dir.path()),
        2,
        "only the two stored objects' blobs"
    );
}

#[tokio::test]
async fn listing_is_in_byte_order_within_the_prefix_and_after_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_bucket(dir.path()).await;
    for k in ["a", "a/b", "a/c", "a0", "aé", "a/\u{10FFFF}", "b"] {
        s.put_object(put(k, blob(&s, b"x").await), QUOTA)
            .await
            .unwrap();
    }
    let keys = |v: Vec<ObjectMeta>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
    assert_eq!(
        keys(s.list_objects("b", "", None, 100).await.unwrap()),
        ["a", "a/b", "a/c", "a/\u{10FFFF}", "a0", "aé", "b"]
    );
    assert_eq!(
        keys(s.list_objects("b", "a/", None, 100).await.unwrap()),
        ["a/b", "a/c", "a/\u{10FFFF}"]
    );
    assert_eq!(
        keys(s.list_objects("b", "a/", Some(b"a/b\0"), 1).await.unwrap()),
        ["a/c"]
    );
    // Skipping a whole common prefix: start after its successor.
    let past = prefix_successor(b"a/").unwrap();
    assert_eq!(
        keys(s.list_objects("b", "", Some(&past), 100).await.unwrap())[0],
        "a0"
    );
    assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_successor(b""), None);
}

#[tokio::test]
async fn multipart_uploads_complete_or_abort_and_clean_their_parts() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_bucket(dir.path()).await;
    let u = s
        .create_upload("b", "big", ObjectAttrs::default())
        .await
        .unwrap();
    s.put_part(&u.id, 1, blob(&s, b"aaa").await, "e1", QUOTA)
        .await
        .unwrap();
    s.put_part(&u.id, 1, blob(&s, b"AAA").await, "e1b", QUOTA)
        .await
        .unwrap();
    s.put_part(&u.id, 2, blob(&s, b"bb").await, "e2", QUOTA)
        .await
        .unwrap();
    let parts = s.parts(&u.id).await.unwrap();
    assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
    // An open upload's parts count toward the project (a replaced part once).
    assert_eq!(s.usage("p").await.unwrap().bytes, 5);
    let small = ObjectQuota {
        max_bytes: 6,
        max_objects: 10,
    };
    assert!(matches!(
        s.put_part(&u.id, 3, blob(&s, b"xx").await, "e3", small)
            .await,
        Err(ObjectError::QuotaExceeded { what: "bytes", .. })
    ));
    assert_eq!(parts[0].etag, "e1b");
    assert_eq!(
        blob_files(dir.path()),
        2,
        "the replaced part's blob is gone"
    );
    assert_eq!(s.uploads("b", "b").await.unwrap().len(), 1);
    assert!(matches!(
        s.delete_bucket("b").await,
        Err(ObjectError::BucketNotEmpty(_))
    ));
    let whole = blob(&s, b"AAAbb").await;
    let meta = s
        .complete_upload(&u.id, put("big", whole), QUOTA)
        .await
        .unwrap();
    assert_eq!(meta.size, 5);
    // The parts counted no more once the object (counted instead) committed.
    assert_eq!(
        s.usage("p").await.unwrap(),
        ObjectUsage {
            objects: 1,
            bytes: 5
        }
    );
    assert_eq!(
        blob_files(dir.path()),
        1,
        "parts removed once the object commits"
    );
    assert!(s.upload(&u.id).await.unwrap().is_none());
    assert!(matches!(
        s.put_part(&u.id, 3, blob(&s, b"c").await, "e3", QUOTA)
            .await,
        Err(ObjectError::NoSuchUpload(_))
    ));
    let u2 = s
        .create_upload("b", "other", ObjectAttrs::default())
        .await
        .unwrap();
    s.put_part(&u2.id, 1, blob(&s, b"zz").await, "e", QUOTA)
        .await
        .unwrap();
    assert_eq!(s.usage("p").await.unwrap().bytes, 7);
    s.abort_upload(&u2.id).await.unwrap();
    assert_eq!(
        s.usage("p").await.unwrap().bytes,
        5,
        "an aborted upload's parts count no more"
    );
    assert_eq!(blob_files(dir.path()), 1);
    assert!(matches!(
        s.abort_upload(&u2.id).await,
        Err(ObjectError::NoSuchUpload(_))
    ));
    s.delete_object("b", "big", None).await.unwrap();
    s.delete_bucket("b").await.unwrap();
    assert!(s.bucket("b").await.unwrap().is_none());
}

#[tokio::test]
async fn buckets_are_unique_on_the_server_and_sweeps_remove_only_unnamed_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_bucket(dir.path()).await;
    let mut other = s.bucket("b").await.unwrap().unwrap();
    other.project = "q".into();
    assert!(matches!(
        s.create_bucket(&other).await,
        Err(ObjectError::BucketExists { owned: false, .. })
    ));
    let kept = s
        .put_object(put("k", blob(&s, b"x").await), QUOTA)
        .await
        .unwrap();
    let orphan = blob(&s, b"never committed").await;
    let removed = s.sweep_blobs(crate::now_ms() + 1000).await.unwrap();
    assert_eq!(removed, 1);
    assert!(s.read_blob(&orphan.id, 0, 1).await.unwrap().is_none());
    assert!(s.read_blob(&kept.blob, 0, 1).await.unwrap().is_some());
    // Ids that are not blob ids name nothing.
    assert!(s.read_blob("../../data.db", 0, 1).await.unwrap().is_none());
    let key = S3KeyRecord {
        id: "AKUPTEST".into(),
        project: "p".into(),
        grants: vec![BucketGrant {
            bucket: "b".into(),
            read: true,
            write: false,
        }],
        name: "ci".into(),
        created_at: 5,
    };
    s.create_s3_key(&key).await.unwrap();
    assert_eq!(s.s3_key("AKUPTEST").await.unwrap().unwrap(), key);
    assert!(matches!(
        s.delete_s3_key("q", "AKUPTEST").await,
        Err(ObjectError::NoSuchKeyId(_))
    ));
    s.delete_s3_key("p", "AKUPTEST").await.unwrap();
    assert!(s.s3_keys("p").await.unwrap().is_empty());
}

#[tokio::test]
async fn watched_buckets_log_committed_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_bucket(dir.path()).await;
    s.put_object(put("before", blob(&s, b"x").await), QUOTA)
        .await
        .unwrap();
    assert!(matches!(
        s.watch_bucket("nope").await,
        Err(ObjectError::NoSuchBucket(_))
    ));
    s.watch_bucket("b").await.unwrap();
    s.watch_bucket("b").await.unwrap();
    let mut commits = s.data.commits();
    commits.borrow_and_update();
    let mut by_function = put("a b.jpg", blob(&s, b"hello").await);
    by_function.writer = Some("thumbnailer".into());
    s.put_object(by_function, QUOTA).await.unwrap();
    assert!(commits.has_changed().unwrap(), "feeds are woken");
    let mut refused = put("a b.jpg", blob(&s, b"again").await);
    refused.condition = PutCondition::Absent;
    assert!(s.put_object(refused, QUOTA).await.is_err());
    s.delete_object("b", "a b.jpg", Some("cleaner"))
        .await
        .unwrap();
    s.delete_object("b", "never", None).await.unwrap();
    let changes = s.object_changes("b", 0, 10).await.unwrap();
    let seen: Vec<(&str, &str, u64)> = changes
        .iter()
        .map(|c| (c.key.as_str(), c.event.as_str(), c.size))
        .collect();
    assert_eq!(
        seen,
        [
            ("a b.jpg", "ObjectCreated:Put", 5),
            ("a b.jpg", "ObjectRemoved:Delete", 0)
        ]
    );
    assert!(changes[0].revision < changes[1].revision);
    let writers: Vec<Option<&str>> = changes.iter().map(|c| c.writer.as_deref()).collect();
    assert_eq!(writers, [Some("thumbnailer"), Some("cleaner")]);
    let after = s
        .object_changes("b", changes[0].revision, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(s.trim_object_changes(crate::now_ms() + 1).await.unwrap(), 2);
}
