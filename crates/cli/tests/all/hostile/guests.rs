//! Guests that spin in pure compute hold no worker thread: the server, other functions and
//! other loops carry on, and each loop ends at its own deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use updraft_test_guests::{HTTP_ECHO, HTTP_MISBEHAVE};

use crate::support::{ServeProcess, serve, updraft};

/// Writes an app with a misbehaving function `spin` (timeout `spin_timeout`) and a well-behaved
/// `echo`, and deploys it to `server`.
fn deploy_spin_and_echo(server: &ServeProcess, data: &Path, app: &Path, spin_timeout: &str) {
    std::fs::create_dir_all(app).unwrap();
    std::fs::copy(HTTP_MISBEHAVE, app.join("spin.wasm")).unwrap();
    std::fs::copy(HTTP_ECHO, app.join("echo.wasm")).unwrap();
    std::fs::write(
        app.join("updraft.toml"),
        format!(
            "[app]\nname = \"hostile\"\n\n\
             [[functions]]\nname = \"spin\"\ncomponent = \"spin.wasm\"\ntimeout = \"{spin_timeout}\"\n\
             [[functions.http]]\nroute = \"/spin\"\n\n\
             [[functions]]\nname = \"echo\"\ncomponent = \"echo.wasm\"\n\
             [[functions.http]]\nroute = \"/echo\"\n"
        ),
    )
    .unwrap();
    let out = updraft(
        server,
        data,
        &["deploy", app.to_str().unwrap(), "--no-build"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_guests_on_every_core_block_neither_the_server_nor_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = serve(&data);
    deploy_spin_and_echo(&server, &data, &tmp.path().join("app"), "3s");
    // A bound, so that a server that does block fails the test instead of hanging it.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // Warm the code so the loops start at once.
    let warm = http.get(format!("{}/spin", server.data_url)).send().await;
    assert_eq!(warm.unwrap().status(), 200);

    // Twice as many spinning guests as the machine has cores.
    let loops = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let spinning: Vec<_> = (0..loops)
        .map(|_| {
            let req = http.get(format!("{}/spin?loop", server.data_url));
            tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), started.elapsed())
            })
        })
        .collect();
    // Wait until every loop is running (the server's own gauge), not for a guessed while.
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    let gauge = format!(
        "updraft_concurrency_in_use{{project=\"default\",function=\"spin\",version=\"1\"}} {loops}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = http
            .get(format!("{}/metrics", server.control_url))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|l| l == gauge) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the loops never all ran: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // While they spin: the control API, another function and the health check answer at once
    // (before: only once a worker thread came free, i.e. after a loop's whole timeout).
    for path in ["/v1/health", "/v1/functions"] {
        let t = Instant::now();
        let resp = http
            .get(format!("{}{path}", server.control_url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().as_u16() < 500, "{path}: {}", resp.status());
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{path} took {:?} while guests spun",
            t.elapsed()
        );
    }
    let t = Instant::now();
    let resp = http
        .get(format!("{}/echo", server.data_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "another function took {:?} while guests spun",
        t.elapsed()
    );

    // Every loop ends at its own deadline, none queued behind another.
    for task in spinning {
        let (status, at) = task.await.unwrap();
        assert_eq!(status, 504);
        assert!(
            at < Duration::from_millis(4500),
            "a loop with a 3 s timeout ended after {at:?}"
        );
    }
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// Long runs move to `[sandbox] long_run_threads` idle-priority threads and share them, but
/// each still gets its turns and finishes with its answer (a run lost on the way, or one never
/// polled again after the move, would end at its timeout instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_runs_sharing_one_thread_all_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("server.toml");
    std::fs::write(
        &config,
        "[sandbox]\nlong_run_after = \"1ms\"\nlong_run_threads = 1\n",
    )
    .unwrap();
    let mut server = crate::support::serve_with(&data, &["--config", config.to_str().unwrap()]);
    deploy_spin_and_echo(&server, &data, &tmp.path().join("app"), "60s");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let working: Vec<_> = (0..4)
        .map(|_| {
            let req = http.get(format!("{}/spin?work=100", server.data_url));
            tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            })
        })
        .collect();
    // Short requests don't queue behind the long runs' share.
    let resp = http
        .get(format!("{}/echo", server.data_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for task in working {
        let (status, body) = task.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "worked 100\n"));
    }
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
