//! `updraft backup` / `updraft restore`: an online snapshot taken while documents are being
//! written is consistent (a writer's documents form a prefix), a restore brings keys and
//! documents back on a running server and on another one, and bad uploads and other keys are
//! refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use super::{RULES, call, deploy};
use crate::projects::key_of;
use crate::support::{TestServer, expect_error};

fn updraft(s: &TestServer, args: &[&str]) -> (bool, String) {
    let (ok, out, err) = crate::support::run_cli(s, args, None);
    (ok, format!("{out}{err}"))
}

/// The collections of [`RULES`] and the key-value store `s`.
async fn seed(s: &TestServer) {
    assert_eq!(deploy(s, RULES).await.0, 200);
    let r = s.api(Method::PUT, "/v1/kv/stores/s").send().await.unwrap();
    assert!(r.status().is_success());
}

async fn set_key(s: &TestServer, key: &str, value: &str) {
    let r = s
        .api(Method::PUT, &format!("/v1/kv/stores/s/keys/{key}"))
        .body(value.to_owned())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn get_key(s: &TestServer, key: &str) -> Option<String> {
    let r = s
        .api(Method::GET, &format!("/v1/kv/stores/s/keys/{key}"))
        .send()
        .await
        .unwrap();
    (r.status() == 200).then_some(r.text().await.unwrap())
}

async fn doc_exists(s: &TestServer, id: &str) -> bool {
    let r = call(
        s,
        Method::GET,
        &format!("/collections/open/docs/{id}"),
        Some(&s.token),
    )
    .send()
    .await
    .unwrap();
    r.status() == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_is_consistent_and_restores_on_this_server_and_another() {
    let s = TestServer::start().await;
    seed(&s).await;
    set_key(&s, "k", "before").await;
    for i in 0..50 {
        let r = call(
            &s,
            Method::PUT,
            &format!("/collections/open/docs/base{i}"),
            Some(&s.token),
        )
        .json(&json!({"n": i}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
    }

    // A writer keeps creating w0, w1, ... one after another while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (http, url, token) = (
            s.http.clone(),
            s.url("/_updraft/db/v1/collections/open/docs"),
            s.token.clone(),
        );
        let (stop, written) = (stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let r = http
                    .put(format!("{url}/w{i}"))
                    .bearer_auth(&token)
                    .json(&json!({"n": i}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                i += 1;
                written.store(i, Ordering::SeqCst);
            }
        })
    };
    while written.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.backup");
    let path = file.to_str().unwrap().to_owned();
    let (ok, out) = tokio::task::block_in_place(|| updraft(&s, &["backup", &path]));
    assert!(ok && out.contains("backed up the database"), "{out}");
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let total = written.load(Ordering::SeqCst);
    assert!(
        std::fs::read(&file)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
    // Not over an existing file.
    let (ok, out) = tokio::task::block_in_place(|| updraft(&s, &["backup", &path]));
    assert!(!ok && out.contains("creating"), "{out}");

    // Change everything, then restore (confirmation needed).
    set_key(&s, "k", "after").await;
    set_key(&s, "extra", "x").await;
    let r = call(
        &s,
        Method::DELETE,
        "/collections/open/docs/base0",
        Some(&s.token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let (ok, out) = tokio::task::block_in_place(|| updraft(&s, &["restore", &path]));
    assert!(!ok && out.contains("--yes"), "{out}");
    let (ok, out) =
        tokio::task::block_in_place(|| updraft(&s, &["restore", &path, "--yes", "--json"]));
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["stores"], 1);
    assert_eq!(get_key(&s, "k").await.as_deref(), Some("before"));
    assert_eq!(get_key(&s, "extra").await, None);
    assert!(doc_exists(&s, "base0").await);
    // The snapshot is one moment: the writer's documents in it are exactly w0..w(n-1).
    let in_backup = report["documents"].as_u64().unwrap() as usize - 50;
    assert!(
        in_backup >= 20 && in_backup <= total,
        "{in_backup} of {total}"
    );
    for i in 0..total {
        assert_eq!(
            doc_exists(&s, &format!("w{i}")).await,
            i < in_backup,
            "w{i} of {in_backup}"
        );
    }
    // Writes go on after it, with revisions past every earlier one.
    let r = call(
        &s,
        Method::PUT,
        "/collections/open/docs/next",
        Some(&s.token),
    )
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    let next: Value = r.json().await.unwrap();
    assert!(next["revision"].as_u64().unwrap() > 50 + total as u64);

    // Another server takes the same backup (its collections come with it).
    let other = TestServer::start().await;
    let (ok, out) = tokio::task::block_in_place(|| {
        updraft(
            &other,
            &["restore", &path, "--yes", "--only-project", "default"],
        )
    });
    assert!(
        ok && out.contains("restored project default: 1 stores with 1 keys, 2 collections"),
        "{out}"
    );
    assert_eq!(get_key(&other, "k").await.as_deref(), Some("before"));
    assert!(doc_exists(&other, "base49").await);
    let r = call(
        &other,
        Method::GET,
        "/collections/open/docs?where=n%20%3E%3D%2048",
        Some(&other.token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        200,
        "queries on the restored collection's indexes"
    );
}

#[tokio::test]
async fn only_the_admin_backs_up_and_restores_and_bad_uploads_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path()).await;
    seed(&s).await;
    set_key(&s, "k", "v").await;
    let owner = key_of(&s, "default", "owner").await;
    for (method, path) in [(Method::GET, "/v1/backup"), (Method::POST, "/v1/restore")] {
        let r = s
            .http
            .request(method, format!("{}{path}", s.control_url))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
    }
    for (body, status, needle) in [
        (Vec::new(), 400, "must be a backup file"),
        (
            b"definitely not sqlite".to_vec(),
            400,
            "not a backup of this data",
        ),
    ] {
        let r = s
            .api(Method::POST, "/v1/restore")
            .body(body)
            .send()
            .await
            .unwrap();
        let e = expect_error(r, status, "bad_request").await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains(needle),
            "{e}"
        );
    }
    // A project that does not exist, or a parameter that is not one, is refused.
    let backup = s
        .api(Method::GET, "/v1/backup")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for (query, status, code) in [
        ("?project=nope", 404, "project_not_found"),
        ("?projet=default", 400, "bad_request"),
    ] {
        let r = s
            .api(Method::POST, &format!("/v1/restore{query}"))
            .body(backup.clone())
            .send()
            .await
            .unwrap();
        expect_error(r, status, code).await;
    }
    // A backup read to the end leaves no temporary file in the data directory.
    let r = s.api(Method::GET, "/v1/backup").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"SQLite format 3\0"));
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".backup-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
