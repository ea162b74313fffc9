//! `updraft` as separate processes: the CLI run against a server, and `updraft serve` started
//! (and restarted after a `kill -9`) on a data directory.

use std::path::Path;

use super::{BIN, TestServer};

/// Runs the `updraft` binary against `server`, as a user would.
pub(crate) fn updraft(
    server: &ServeProcess,
    data_dir: &Path,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .arg("--server")
        .arg(&server.control_url)
        .arg("--data-dir")
        .arg(data_dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A real `updraft serve` process.
pub(crate) struct ServeProcess {
    pub(crate) child: std::process::Child,
    pub(crate) data_url: String,
    pub(crate) control_url: String,
    pub(crate) s3_url: String,
}

/// Starts `updraft serve` on ephemeral ports and waits for its readiness lines.
pub(crate) fn serve(data_dir: &Path) -> ServeProcess {
    serve_with(data_dir, &[])
}

/// Starts `updraft serve` with extra arguments (`--config`).
pub(crate) fn serve_with(data_dir: &Path, extra: &[&str]) -> ServeProcess {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
            "--s3-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut data_url, mut control_url, mut s3_url) = (None, None, None);
    while data_url.is_none() || control_url.is_none() || s3_url.is_none() {
        let line = lines
            .next()
            .expect("serve exited before it was ready")
            .unwrap();
        if let Some(u) = line.strip_prefix("data plane listening on ") {
            data_url = Some(u.trim().to_owned());
        }
        if let Some(u) = line.strip_prefix("control API listening on ") {
            control_url = Some(u.trim().to_owned());
        }
        if let Some(u) = line.strip_prefix("S3 API listening on ") {
            s3_url = Some(u.trim().to_owned());
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServeProcess {
        child,
        data_url: data_url.unwrap(),
        control_url: control_url.unwrap(),
        s3_url: s3_url.unwrap(),
    }
}

/// Runs the `updraft` binary against `s` (its control API and admin token) with `stdin`;
/// returns (success, stdout, stderr). Call it from a multi-threaded runtime (`block_in_place`
/// or a `multi_thread` test): the server runs in this process.
pub(crate) fn run_cli(
    s: &TestServer,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--server", &s.control_url, "--token", &s.token])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Real `updraft serve` processes on `dir/data` with the configuration file `text` (written to
/// `dir/server.toml`): the admin token, and a way to start the server again on the same
/// directory (after a `kill -9`, say).
pub(crate) struct ConfiguredServe {
    pub(crate) token: String,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl ConfiguredServe {
    /// Starts the first process.
    pub(crate) fn start(dir: &Path, text: &str) -> (Self, ServeProcess) {
        let config = dir.join("server.toml");
        std::fs::write(&config, text).unwrap();
        let data = dir.join("data");
        let server = serve_with(&data, &["--config", config.to_str().unwrap()]);
        let token = std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        (
            Self {
                token,
                data,
                config,
            },
            server,
        )
    }

    /// Starts the server again on the same data and configuration.
    pub(crate) fn restart(&self) -> ServeProcess {
        serve_with(&self.data, &["--config", self.config.to_str().unwrap()])
    }
}

/// Deploys `manifest` on a server process through its control API, uploading each
/// `(function, guest path)` first.
pub(crate) async fn deploy_to(
    http: &reqwest::Client,
    control: &str,
    token: &str,
    manifest: &str,
    guests: &[(&str, &str)],
) {
    use sha2::Digest as _;
    let mut artifacts = serde_json::Map::new();
    for (function, path) in guests {
        let bytes = std::fs::read(path).unwrap();
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        let r = http
            .put(format!("{control}/v1/artifacts/{digest}"))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        artifacts.insert((*function).to_owned(), digest.into());
    }
    let r = http
        .post(format!("{control}/v1/apps"))
        .bearer_auth(token)
        .json(&serde_json::json!({"manifest": manifest, "artifacts": artifacts}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
