#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn site(spa: bool) -> Site {
    Site {
        dir: "public".into(),
        spa,
        not_found: None,
        redirects: Vec::new(),
        rewrites: Vec::new(),
        headers: Vec::new(),
    }
}

fn files(digest: &str) -> BTreeMap<String, SiteFile> {
    BTreeMap::from([(
        "/index.html".to_owned(),
        SiteFile {
            digest: digest.into(),
            size: 5,
        },
    )])
}

#[tokio::test]
async fn versions_publish_once_per_change_roll_back_and_belong_to_one_app() {
    let dir = tempfile::tempdir().unwrap();
    let s = DataStore::open(dir.path()).unwrap();
    assert!(s.live_site("p").await.unwrap().is_none());
    let v1 = s
        .publish_site("p", "web", site(false), files("a"), "me")
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let same = s
        .publish_site("p", "web", site(false), files("a"), "me")
        .await
        .unwrap();
    assert_eq!(same.version, 1, "nothing changed: no new version");
    let v2 = s
        .publish_site("p", "web", site(true), files("b"), "me")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert!(matches!(
        s.publish_site("p", "other", site(false), files("c"), "me")
            .await,
        Err(SiteError::OwnedByOtherApp(a)) if a == "web"
    ));
    assert_eq!(s.set_live_site("p", 1).await.unwrap().files, files("a"));
    assert_eq!(s.live_site("p").await.unwrap().unwrap().version, 1);
    assert!(matches!(
        s.set_live_site("p", 9).await,
        Err(SiteError::NotFound(_))
    ));
    let digests = s.site_digests().await.unwrap();
    assert!(digests.contains("a") && digests.contains("b"));
    assert!(!s.unpublish_site("p", "other").await.unwrap());
    assert!(s.unpublish_site("p", "web").await.unwrap());
    assert!(s.live_sites().await.unwrap().is_empty());
    assert_eq!(s.site_versions("p").await.unwrap().len(), 2);
    // Survives a reopen.
    drop(s);
    let s = DataStore::open(dir.path()).unwrap();
    assert_eq!(s.site_versions("p").await.unwrap()[0].version, 2);
    for n in 0..12 {
        s.publish_site("p", "web", site(false), files(&format!("d{n}")), "me")
            .await
            .unwrap();
    }
    let kept = s.site_versions("p").await.unwrap();
    assert_eq!(kept.len(), KEEP_SITE_VERSIONS as usize);
    assert_eq!(kept[0].version, 14);
}
