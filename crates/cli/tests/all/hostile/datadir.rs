//! The data directory and the admin token: one server per directory, no symlink followed, no
//! tampered compiled code loaded, and the admin token never handed to a guest.

use std::time::{Duration, Instant};

use updraft_test_guests::HTTP_ECHO;

use crate::support::{BIN, TestServer, echo_fields, serve};

#[test]
fn a_second_server_on_a_data_dir_in_use_exits_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut first = serve(&data);
    let mut second = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
            "--s3-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second server on the same data directory kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "in use by another updraft server (pid {})",
            first.child.id()
        )),
        "{stderr}"
    );
    // The first one is unaffected.
    let mut conn =
        std::net::TcpStream::connect(first.control_url.trim_start_matches("http://")).unwrap();
    std::io::Write::write_all(
        &mut conn,
        b"GET /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut conn, &mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    first.child.kill().unwrap();
    let _ = first.child.wait();
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_as_the_token_file_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let target = tmp.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    std::os::unix::fs::symlink(&target, data.join("admin-token")).unwrap();
    let s = TestServer::start_at(&data).await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    let meta = std::fs::symlink_metadata(data.join("admin-token")).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the token file is a new regular file"
    );
    assert_eq!(
        s.api_json("/v1/functions").await["functions"],
        serde_json::json!([])
    );
    s.stop().await;
}

#[tokio::test]
async fn tampered_compiled_code_is_discarded_and_compiled_again() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    s.deploy_guest(HTTP_ECHO, "app", "echo", &["/echo"], "")
        .await;
    s.stop().await;
    let cwasm = cached(&tmp.path().join("compiled"));
    let mut code = std::fs::read(&cwasm).unwrap();
    let middle = code.len() / 2;
    code[middle] ^= 0xff;
    std::fs::write(&cwasm, &code).unwrap();

    let s = TestServer::start_at(tmp.path()).await;
    assert_eq!(s.get("/echo").await.status(), 200);
    let status = s.status().await;
    assert_eq!(status["compilations"], 1, "compiled again: {status}");
    assert_ne!(
        std::fs::read(&cwasm).unwrap(),
        code,
        "the tampered file was replaced"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_admin_token_never_reaches_a_guest() {
    let s = TestServer::serving(
        HTTP_ECHO,
        "app",
        "echo",
        &["/echo"],
        "allow_version_pinning = true",
    )
    .await;
    let seen = |token: Option<String>, pin: bool| {
        let mut req = s.http.get(s.url("/echo"));
        if let Some(t) = token {
            req = req.header("authorization", t);
        }
        if pin {
            req = req.header("x-updraft-version", "1");
        }
        async move {
            let body = req.send().await.unwrap().text().await.unwrap();
            echo_fields(&body)["authorization"].clone()
        }
    };
    let admin = format!("Bearer {}", s.token);
    assert_eq!(seen(Some(admin.clone()), true).await, "-");
    assert_eq!(seen(Some(admin), false).await, "-");
    // The function's own credentials pass through untouched.
    assert_eq!(
        seen(Some("Bearer app-user-token".to_owned()), false).await,
        "Bearer app-user-token"
    );
    assert_eq!(
        seen(Some("Bearer upd_not-the-admin".to_owned()), true).await,
        "Bearer upd_not-the-admin"
    );
    s.stop().await;
}

fn cached(dir: &std::path::Path) -> std::path::PathBuf {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            return cached(&p);
        }
        if p.extension().is_some_and(|e| e == "cwasm") {
            return p;
        }
    }
    panic!("no compiled code under {}", dir.display());
}
