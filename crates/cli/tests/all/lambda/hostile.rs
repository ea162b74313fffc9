//! The hostile side of process functions: a handler that tries to leave its sandbox, and code
//! a deploy must refuse.

use std::time::Duration;

use super::{Kind, app, config, deployed, info};
use crate::support::{TestServer, expect_error, run_cli};

/// A hostile handler stays in its sandbox: no data directory, no other function's code, no
/// writes outside its private `/tmp`, whose size is capped, no signals out, no system calls the
/// seccomp filter denies (the Node.js and Rust tests run under the same filter). The host's
/// enforcement is probed first; a mechanism it lacks is reported, not assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_handler_stays_in_its_sandbox() {
    let (s, _dir) = deployed(Kind::Python, "", "tmp_size = \"16MiB\"\n").await;
    let (_, got) = info(&s, "escape").await;
    let function = s.api_json("/v1/functions/h").await;
    let sandbox = &function["sandbox"];
    assert_eq!(sandbox["helper"], true, "{function}");
    if sandbox["filesystem"] == true {
        for denied in ["list_root", "read_shadow"] {
            assert_eq!(got[denied], "PermissionError", "{denied}: {got}");
        }
        // The data directory is unreadable, or (under a private /tmp) only the empty
        // skeleton its code is mounted in; other functions' code is not there.
        assert_ne!(got["read_data_dir_db"], "ok", "{got}");
        let listing = got["list_data_dir"].to_string();
        assert!(
            !listing.contains("updraft.db") && !listing.contains("secrets.key"),
            "{got}"
        );
        if let Some(bundles) = got["list_other_bundles"].as_array() {
            assert_eq!(bundles.len(), 1, "only its own code: {got}");
        }
    }
    assert_ne!(got["write_code"], "ok", "{got}");
    assert_eq!(got["write_tmp"], "ok", "{got}");
    if sandbox["private_tmp"] == true {
        assert_eq!(got["tmpdir"], "/tmp");
        assert_ne!(got["write_tmp_past_cap"], "ok", "{got}");
    }
    if sandbox["signals"] == true {
        assert_eq!(got["signal_parent"], "PermissionError", "{got}");
    }
    // Seccomp filters are in every kernel a server runs (3.5+), so the filter must take.
    assert_eq!(
        sandbox["syscalls"],
        cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
        "{function}"
    );
    if cgroup_v1_writable() {
        assert_eq!(
            sandbox["memory_cgroup"], true,
            "a writable memory cgroup goes unused: {function}"
        );
    }
    if sandbox["memory_cgroup"] == true {
        // Its `memory` (128 MiB) and its `/tmp` (16 MiB); a child it starts is inside, out of
        // the watchdog's sight but not the kernel's.
        assert_eq!(got["cgroup_limit"], 144 << 20, "{got}");
        assert_eq!(got["fork_alloc"], -9, "{got}");
        // Memory outside its RSS (an anonymous file) is in the cgroup: the kernel stops it at
        // the cap, and the invocation fails as out of memory, naming the limit.
        let body = expect_error(s.get("/r/memfd").await, 500, "function_failed").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("memory limit of 128MiB"), "{body}");
        let (_, after) = info(&s, "info").await;
        assert_eq!(after["count"], 1, "a fresh process: {after}");
    }
    if sandbox["syscalls"] == true {
        for call in ["keyctl", "io_uring_setup", "unshare_user"] {
            assert_eq!(got["syscalls"][call], "EPERM", "{call}: {got}");
        }
    }
    // Another process (this test; another function's, as well) that finds the environment's
    // Runtime API is turned away at once: it neither waits for nor sees an invocation.
    let api = got["runtime_api"].as_str().unwrap();
    let stolen = reqwest::Client::new()
        .get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match stolen {
        Ok(r) => panic!("another process reached the Runtime API: {}", r.status()),
        Err(e) => assert!(!e.is_timeout(), "it was let in and waited: {e}"),
    }
    let (_, again) = info(&s, "info").await;
    assert_eq!(again["param"], "info", "the environment still serves");
    // Only Lambda's variables and the function's own: nothing of the server's environment.
    let keys: Vec<&str> = got["env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!keys.contains(&"CARGO_MANIFEST_DIR"), "{keys:?}");
    assert!(keys.contains(&"AWS_LAMBDA_RUNTIME_API"), "{keys:?}");
    s.stop().await;
}

/// Mistakes a deploy catches: a handler whose file is not in the code, a `provided` function
/// without a `bootstrap`, a bundle that is not a zip; nothing of them is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_refuses_code_that_cannot_run() {
    let s = TestServer::start_with(&config("")).await;
    let dir = app(Kind::Python, "");
    let manifest = dir.path().join("updraft.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("app.handler", "main.handler")).unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(!ok, "{out}");
    assert!(
        err.contains("handler `main.handler`: the code has no main.py"),
        "{err}"
    );
    assert!(err.contains("app.py"), "it lists what is there: {err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("code")).unwrap();
    std::fs::write(dir.path().join("code/handler.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(
        dir.path().join("updraft.toml"),
        "[app]\nname = \"x\"\n[[functions]]\nname = \"b\"\nruntime = \"provided\"\ncode = \"code\"\n",
    )
    .unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(!ok, "{out}");
    assert!(err.contains("executable `bootstrap`"), "{err}");

    // A zip named as code must be one.
    std::fs::write(dir.path().join("code.zip"), "not a zip").unwrap();
    std::fs::write(
        dir.path().join("updraft.toml"),
        "[app]\nname = \"x\"\n[[functions]]\nname = \"b\"\nruntime = \"provided\"\ncode = \"code.zip\"\n",
    )
    .unwrap();
    let (ok, _, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(!ok && err.contains("is not a zip file"), "{err}");
    // And the server checks uploads itself: a zip with an entry escaping its directory.
    let evil = {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("../../escape", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap().into_inner()
    };
    let (status, body, _) = s.upload(&evil).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("outside the bundle"), "{body}");
    assert!(
        s.api_json("/v1/functions").await["functions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}

/// A process that leaks a little in each short invocation (too quick for the watchdog's 10 ms
/// samples) is replaced once it has used more than its `memory`: its answers stand, the next
/// invocation gets a fresh process, and the log says why. (The cgroup's cap is 512 MiB higher,
/// so it is not what stops it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_grows_past_its_memory_between_samples_is_replaced() {
    let (s, _dir) = deployed(Kind::Python, "", "").await;
    let (_, first) = info(&s, "info").await;
    let mut replaced = false;
    for _ in 0..60 {
        let resp = s.get("/r/grow").await;
        let status = resp.status();
        let body = resp.text().await.unwrap();
        // A slow machine may let the watchdog see it mid-invocation: that fails the invocation.
        if status == 500 {
            assert!(body.contains("memory limit of 128MiB"), "{body}");
            replaced = true;
            break;
        }
        assert_eq!(status, 200, "{body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        if got["pid"] != first["pid"] {
            assert_eq!(got["count"], 1, "a fresh process: {got}");
            // The log says why.
            super::lines_until(&s, "h", |l| {
                l.iter()
                    .any(|l| l.contains("past its memory limit of 128 MiB: it is replaced"))
            })
            .await;
            replaced = true;
            break;
        }
    }
    assert!(
        replaced,
        "240 MiB kept by a 128 MiB function and still served"
    );

    s.stop().await;
}

/// Whether this host has a cgroup v1 memory hierarchy this process may make cgroups in (as
/// root on most such hosts): where it has, the server must use it.
fn cgroup_v1_writable() -> bool {
    let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
        return false;
    };
    let Some(path) = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    }) else {
        return false;
    };
    let probe = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(path.trim_start_matches('/'))
        .join(format!("updraft-test-probe-{}", std::process::id()));
    let made = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    made
}
