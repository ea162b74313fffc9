//! Logs can't be used against neighbours: a function flooding its log with empty lines is cut
//! at its per-invocation and per-second budgets, while another function's lines and every
//! invocation record still arrive.

use serde_json::Value;
use updraft_test_guests::{HTTP_ECHO, HTTP_MISBEHAVE};

use crate::support::{TestServer, manifest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_cut_at_its_budgets_and_spares_the_neighbours() {
    let s = TestServer::start_with("[logs]\nmax_lines_per_second = 50\n").await;
    let noisy = s.upload_guest(HTTP_MISBEHAVE).await;
    let quiet = s.upload_guest(HTTP_ECHO).await;
    let m = format!(
        "{}\n[[functions]]\nname = \"quiet\"\ncomponent = \"q.wasm\"\n[[functions.http]]\nroute = \"/quiet\"\n",
        manifest("app", "noisy", &["/noisy"], "")
    );
    s.deploy_ok(&m, &[("noisy", &noisy), ("quiet", &quiet)])
        .await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let resp = s.get("/noisy?flood=100000").await;
        assert_eq!(resp.text().await.unwrap(), "flooded\n");
    }
    let resp = s.get("/quiet").await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-updraft-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // The neighbour's lines and record arrive.
    s.logs_until("quiet", &format!("request_id={id}"), |l| {
        l.iter().any(|l| l["line"] == "echo stdout /quiet")
    })
    .await;
    let record = s.api_json(&format!("/v1/invocations/{id}")).await;
    assert_eq!(record["status"], 200, "{record}");
    // The flood kept within its budget: at most 50 lines in each wall-clock second it spanned
    // (plus one notice a second saying what was dropped), nowhere near the 500 000 empty lines
    // it printed. The bound follows the time the floods took: a loaded machine stretches them
    // over more seconds, each with its own 50 lines.
    let lines = s.logs_until("noisy", "limit=5000", |l| !l.is_empty()).await;
    let seconds = started.elapsed().as_secs() as usize + 2;
    assert!(
        lines.len() <= 51 * seconds,
        "{} lines stored over at most {seconds} seconds",
        lines.len()
    );
    let platform: Vec<&Value> = lines.iter().filter(|l| l["stream"] == "platform").collect();
    assert!(
        platform.iter().any(|l| {
            let t = l["line"].as_str().unwrap();
            t.contains("10000 lines") || t.contains("max_lines_per_second")
        }),
        "{platform:?}"
    );
    // Every invocation of the noisy function has its record too.
    let list = s.api_json("/v1/functions/noisy/invocations").await;
    assert_eq!(list["invocations"].as_array().unwrap().len(), 5, "{list}");
    s.stop().await;
}
