//! The `updraft` binary end to end: a real `serve` process, `deploy`, `functions`, `invoke`,
//! `logs`, a manifest error, and `kill -9` followed by a restart.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use updraft_test_guests::HTTP_ECHO;

use crate::support::{BIN, serve, updraft};

fn write_app(dir: &Path, route: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(HTTP_ECHO, dir.join("echo.wasm")).unwrap();
    std::fs::write(
        dir.join("updraft.toml"),
        format!(
            "[app]\nname = \"cli-app\"\n\n[[functions]]\nname = \"echo\"\ncomponent = \"echo.wasm\"\n\
             build = \"true\"\nenv = {{ GREETING = \"from-cli\" }}\n\n[[functions.http]]\nroute = \"{route}\"\n"
        ),
    )
    .unwrap();
}

fn get(url: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(url) {
            Ok(r) => return r,
            // The port is bound before the readiness line, so this is only ever a transient
            // connection error; retry briefly rather than fail.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("GET {url}: {e}"),
        }
    }
}

/// A blocking GET (these tests drive real processes, not an async runtime).
fn http_get(url: &str) -> Result<(u16, String), reqwest::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::get(url).await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    })
}

#[test]
fn cli_deploys_invokes_and_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app = tmp.path().join("app");
    write_app(&app, "/cli/:name");
    let mut server = serve(&data);

    let out = updraft(&server, &data, &["deploy", app.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "deploy failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("deployed app cli-app"), "{stdout}");
    assert!(
        stdout.contains(&format!("{}/cli/:name", server.data_url)),
        "{stdout}"
    );

    let (status, body) = get(&format!("{}/cli/ada", server.data_url));
    assert_eq!(status, 200);
    assert!(body.contains("greeting: from-cli"), "{body}");
    assert!(body.contains("x-updraft-param-name: ada"), "{body}");

    let out = updraft(&server, &data, &["functions", "--json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["functions"][0]["name"], "echo");
    let out = updraft(&server, &data, &["functions"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("echo") && table.contains("/cli/:name"),
        "{table}"
    );

    let out = updraft(
        &server,
        &data,
        &[
            "invoke",
            "echo",
            "-X",
            "GET",
            "--path",
            "/cli/direct",
            "-d",
            "body!",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("path: /cli/direct") && stdout.contains("body: body!"),
        "{stdout}"
    );

    // Logs arrive within the writer's flush interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = updraft(&server, &data, &["logs", "echo", "--json"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("echo stdout /cli/direct") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs never showed the invocation: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A manifest error names file, line and key, and deploys nothing.
    write_app(&app, "cli/oops");
    let out = updraft(&server, &data, &["deploy", app.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "{}:11: functions[0].http[0].route: must start with '/'",
        app.join("updraft.toml").display()
    );
    assert!(
        stderr.contains(&expected),
        "expected `{expected}` in:\n{stderr}"
    );

    // kill -9, restart on the same data dir: the acknowledged deploy is still served.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut server = serve(&data);
    let (status, body) = get(&format!("{}/cli/again", server.data_url));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("x-updraft-param-name: again"), "{body}");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn cli_canary_versions_alias_and_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app = tmp.path().join("app");
    write_app(&app, "/v");
    let mut server = serve(&data);
    let run = |args: &[&str]| {
        let out = updraft(&server, &data, args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success(), stdout, stderr)
    };
    let dir = app.to_str().unwrap();
    let (ok, stdout, stderr) = run(&["deploy", dir]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1 (new)"), "{stdout}");
    // A changed manifest deployed as a 10% canary: live stays on 1.
    let manifest = std::fs::read_to_string(app.join("updraft.toml")).unwrap();
    std::fs::write(
        app.join("updraft.toml"),
        manifest.replace("from-cli", "canary"),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(&["deploy", dir, "--canary", "10", "--auto-rollback"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1, canary 2 at 10% (new)"), "{stdout}");
    let (ok, table, _) = run(&["versions", "echo"]);
    assert!(ok);
    assert!(table.starts_with("VERSION"), "{table}");
    assert!(table.contains("live (canary 10%)"), "{table}");
    assert!(table.contains("live (90%)"), "{table}");
    // Rollback first drops the canary...
    let (ok, stdout, stderr) = run(&["rollback", "echo"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("dropped canary version 2"), "{stdout}");
    // ...an alias can point anywhere...
    let (ok, stdout, stderr) = run(&["alias", "set", "echo", "live", "2"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("live → version 2"), "{stdout}");
    let (status, body) = get(&format!("{}/v", server.data_url));
    assert_eq!(status, 200);
    assert!(body.contains("greeting: canary"), "{body}");
    // ...and rollback then goes back a version.
    let (ok, stdout, _) = run(&["rollback", "echo", "--json"]);
    assert!(ok);
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["alias"]["version"], 1);
    let (ok, _, stderr) = run(&["alias", "set", "echo", "live", "9"]);
    assert!(!ok);
    assert!(stderr.contains("has no version 9"), "{stderr}");
    let (ok, _, stderr) = run(&["alias", "set", "echo", "live", "1", "--canary", "2"]);
    assert!(!ok);
    assert!(stderr.contains("VERSION=PERCENT"), "{stderr}");
    let (ok, stdout, _) = run(&["alias", "list", "echo"]);
    assert!(ok && stdout.contains("live → version 1"), "{stdout}");
    let (ok, stdout, _) = run(&["invoke", "echo", "--version", "2"]);
    assert!(ok && stdout.contains("greeting: canary"), "{stdout}");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "serve",
        "up",
        "deploy",
        "invoke",
        "functions",
        "logs",
        "versions",
        "alias",
        "rollback",
        "alias set",
        "alias list",
        "alias delete",
        "usage",
        "invocations",
        "queue",
        "queue create",
        "queue send",
        "queue receive",
        "queue ack",
        "queue purge",
        "queue key",
        "topic",
        "topic publish",
        "topic subscribe",
        "async",
        "bucket create",
        "bucket list",
        "s3-key create",
        "cp",
        "ls",
        "rm",
    ] {
        let cmd: Vec<&str> = cmd.split(' ').collect();
        let out = Command::new(BIN).args(&cmd).arg("--help").output().unwrap();
        assert!(out.status.success(), "{cmd:?} --help failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: updraft"),
            "{cmd:?}"
        );
    }
}
