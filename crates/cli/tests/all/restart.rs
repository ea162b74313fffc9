//! Restarting on the same data directory serves everything with no redeploy and no compile.

use updraft_test_guests::HTTP_ECHO;

use crate::support::{TestServer, echo_fields};

#[tokio::test]
async fn restart_serves_deployed_functions_from_the_compiled_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    s.deploy_guest(
        HTTP_ECHO,
        "app",
        "echo",
        &["/echo"],
        "env = { GREETING = \"again\" }",
    )
    .await;
    assert_eq!(s.get("/echo").await.status(), 200);
    let first = s.status().await;
    assert_eq!(first["compilations"], 1);
    let cached: Vec<_> = walk(&tmp.path().join("compiled"));
    assert_eq!(
        cached.len(),
        1,
        "one compiled artifact in the cache: {cached:?}"
    );
    let mtime = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    let token = s.token.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the admin token file is private");
    }
    // Only the token's hash is in the database.
    for file in ["updraft.db", "updraft.db-wal"] {
        let bytes = std::fs::read(tmp.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{file}"
        );
    }
    s.stop().await;

    let s = TestServer::start_at(tmp.path()).await;
    assert_eq!(s.token, token, "the admin token survives a restart");
    let status = s.status().await;
    assert_eq!(status["functions"], 1);
    assert_eq!(
        status["compilations"], 0,
        "restart must not recompile: {status}"
    );
    // Scaled to zero after a restart: the code is loaded on the first request, not before.
    assert_eq!(status["cache_loads"], 0, "{status}");
    let resp = s.get("/echo").await;
    assert_eq!(resp.status(), 200);
    let status = s.status().await;
    assert_eq!(status["cache_loads"], 1, "{status}");
    assert_eq!(status["compilations"], 0, "{status}");
    assert_eq!(
        std::fs::metadata(&cached[0]).unwrap().modified().unwrap(),
        mtime
    );
    assert_eq!(
        echo_fields(&resp.text().await.unwrap())["greeting"],
        "again"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_missing_cache_entry_is_recompiled_from_the_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    s.deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    s.stop().await;
    std::fs::remove_dir_all(tmp.path().join("compiled")).unwrap();

    let s = TestServer::start_at(tmp.path()).await;
    let status = s.status().await;
    assert_eq!(status["compilations"], 1, "{status}");
    assert_eq!(s.get("/echo").await.status(), 200);
    s.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|e| e == "cwasm") {
            out.push(p);
        }
    }
    out
}
