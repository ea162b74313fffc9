//! Secrets: set per project, sealed at rest (the value is nowhere in the database files),
//! injected only into the functions that list them, new values reach new instances, and no
//! API answer, listing, log line or CLI output shows a value.

use std::io::Write;

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::HTTP_ECHO;

use crate::support::{ServeProcess, TestServer, echo_fields, expect_error, serve, updraft};

const VALUE: &str = "sk_live_s3cr3t-Ωmega";
const NEW_VALUE: &str = "sk_live_rotated-42";

async fn set_secret(s: &TestServer, key: &str, name: &str, value: &str) -> reqwest::Response {
    s.http
        .put(format!("{}/v1/secrets/{name}", s.control_url))
        .bearer_auth(key)
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap()
}

/// Two functions from one manifest: `echo` lists the secret, `plain` does not.
fn manifest(secrets: &str) -> String {
    format!(
        "[app]\nname = \"app\"\n\
         [[functions]]\nname = \"echo\"\ncomponent = \"e.wasm\"\n{secrets}\n\
         [[functions.http]]\nroute = \"/echo/...\"\n\
         [[functions]]\nname = \"plain\"\ncomponent = \"e.wasm\"\n\
         [[functions.http]]\nroute = \"/plain\"\n"
    )
}

async fn greeting(s: &TestServer, path: &str) -> String {
    let body = s.get(path).await.text().await.unwrap();
    echo_fields(&body)["greeting"].clone()
}

#[tokio::test]
async fn a_secret_reaches_only_the_functions_granted_it_and_no_answer_shows_it() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    let granted = manifest("secrets = [\"GREETING\"]");
    // A deploy naming a secret the project does not have changes nothing.
    let (status, body) = s
        .deploy(&granted, &[("echo", &digest), ("plain", &digest)])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("secret `GREETING` is not set"),
        "{body}"
    );
    assert_eq!(
        s.api_json("/v1/functions").await["functions"],
        json!([]),
        "a failed deploy stored something"
    );

    let resp = set_secret(&s, &s.token, "GREETING", VALUE).await;
    assert_eq!(resp.status(), 201);
    let set: Value = resp.json().await.unwrap();
    assert_eq!(set["created"], true);
    s.deploy_ok(&granted, &[("echo", &digest), ("plain", &digest)])
        .await;
    assert_eq!(greeting(&s, "/echo").await, VALUE);
    assert_eq!(greeting(&s, "/plain").await, "-");

    // A new value reaches the functions granted it (their next instance), and says which.
    let resp = set_secret(&s, &s.token, "GREETING", NEW_VALUE).await;
    assert_eq!(resp.status(), 200);
    let set: Value = resp.json().await.unwrap();
    assert_eq!(set["created"], false);
    assert_eq!(set["restarted"], json!(["echo"]));
    assert_eq!(greeting(&s, "/echo").await, NEW_VALUE);
    assert_eq!(greeting(&s, "/plain").await, "-");
    s.platform_line("echo", "", |l| l.contains("secret GREETING changed"))
        .await;
    // A guest printing its secret has it masked in its log (the echo guest logs its path).
    assert_eq!(greeting(&s, &format!("/echo/{NEW_VALUE}")).await, NEW_VALUE);
    s.logs_until("echo", "limit=1000", |lines| {
        lines.iter().any(|l| l["line"] == "echo stdout /echo/***")
    })
    .await;

    // No answer carries a value.
    for path in [
        "/v1/secrets",
        "/v1/functions",
        "/v1/functions/echo",
        "/v1/functions/echo/versions",
        "/v1/functions/echo/versions/1",
        "/v1/functions/echo/logs?limit=1000",
        "/v1/functions/echo/invocations",
        "/v1/usage",
        "/v1/status",
        "/metrics",
    ] {
        let text = s
            .api(Method::GET, path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for v in [VALUE, NEW_VALUE] {
            assert!(!text.contains(v), "{path} shows a secret value: {text}");
        }
    }
    let list = s.api_json("/v1/secrets").await;
    assert_eq!(list["secrets"][0]["name"], "GREETING");
    assert_eq!(list["secrets"][0]["used_by"], json!(["echo"]));
    let info = s.api_json("/v1/functions/echo").await;
    assert_eq!(info["secrets"], json!(["GREETING"]));

    // A secret in use can't be deleted; once no kept version lists it, it can.
    let resp = s
        .api(Method::DELETE, "/v1/secrets/GREETING")
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 409, "conflict").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("echo"));
    s.api(Method::DELETE, "/v1/functions/echo")
        .send()
        .await
        .unwrap();
    let resp = s
        .api(Method::DELETE, "/v1/secrets/GREETING")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = s
        .api(Method::DELETE, "/v1/secrets/GREETING")
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "secret_not_found").await;
    s.stop().await;
}

#[tokio::test]
async fn bad_secrets_are_refused_and_projects_keep_their_own() {
    let s = TestServer::start().await;
    for (name, value, status, code) in [
        ("../etc", "x", 400, "bad_request"),
        ("1ABC", "x", 400, "bad_request"),
        ("A-B", "x", 400, "bad_request"),
        ("NUL", "a\0b", 400, "bad_request"),
    ] {
        let resp = set_secret(&s, &s.token, name, value).await;
        if name == "../etc" {
            // The path does not even match the route.
            assert!(resp.status().is_client_error(), "{}", resp.status());
            continue;
        }
        let body = expect_error(resp, status, code).await;
        assert!(!body.to_string().contains("a\\u0000b"), "{body}");
    }
    let huge = "x".repeat(65 * 1024);
    expect_error(
        set_secret(&s, &s.token, "HUGE", &huge).await,
        413,
        "payload_too_large",
    )
    .await;
    // A body that is not the expected JSON is named without being echoed back.
    let resp = s
        .api(Method::PUT, "/v1/secrets/RAW")
        .header("content-type", "application/json")
        .body(format!("{{\"valu\": \"{VALUE}\"}}"))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, "bad_request").await;
    assert!(!body.to_string().contains(VALUE), "{body}");

    // Another project: its own value under the same name, invisible from default.
    let created = s
        .api(Method::POST, "/v1/projects")
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let owner: Value = s
        .api(Method::POST, "/v1/keys")
        .json(&json!({"role": "owner", "project": "shop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = owner["key"].as_str().unwrap().to_owned();
    assert_eq!(
        set_secret(&s, &s.token, "GREETING", VALUE).await.status(),
        201
    );
    assert_eq!(
        set_secret(&s, &owner, "GREETING", "shop's own")
            .await
            .status(),
        201
    );
    let shop_list: Value = s
        .http
        .get(format!("{}/v1/secrets", s.control_url))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shop_list["secrets"].as_array().unwrap().len(), 1);
    // A deployer may deploy functions using secrets but not set them.
    let deployer: Value = s
        .api(Method::POST, "/v1/keys")
        .json(&json!({"role": "deployer", "project": "shop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = set_secret(&s, deployer["key"].as_str().unwrap(), "X", "v").await;
    expect_error(resp, 403, "forbidden").await;
    // Shop's function sees shop's value (shop uploads the code itself).
    let bytes = std::fs::read(HTTP_ECHO).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let up = s
        .http
        .put(format!("{}/v1/artifacts/{digest}", s.control_url))
        .bearer_auth(&owner)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(up.status().is_success());
    let resp = s
        .http
        .post(format!("{}/v1/apps", s.control_url))
        .bearer_auth(&owner)
        .json(&json!({
            "manifest": manifest("secrets = [\"GREETING\"]"),
            "artifacts": {"echo": digest, "plain": digest},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = s
        .http
        .get(s.url("/echo"))
        .header("host", "shop.localhost")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(echo_fields(&body)["greeting"], "shop's own");
    s.stop().await;
}

/// `updraft secret set` reads the value from stdin and never prints it; the value is sealed
/// in the database files and still works after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_secrets_from_stdin_and_the_database_holds_no_value() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server: ServeProcess = serve(&data);
    let mut child = std::process::Command::new(crate::support::BIN)
        .args([
            "secret",
            "set",
            "STRIPE_KEY",
            "--server",
            &server.control_url,
        ])
        .arg("--data-dir")
        .arg(&data)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{VALUE}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("created secret STRIPE_KEY"), "{printed}");
    assert!(!printed.contains(VALUE), "{printed}");
    let out = updraft(&server, &data, &["secret", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("STRIPE_KEY") && !text.contains(VALUE),
        "{text}"
    );
    // Sealed at rest: no database file holds the value; the key file is private.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
                "{} holds the secret in the clear",
                path.display()
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secrets.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // It opens again after a restart (and `kill -9` lost nothing acknowledged).
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    server = serve(&data);
    let out = updraft(&server, &data, &["secret", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["secrets"][0]["name"], "STRIPE_KEY");
    let out = updraft(&server, &data, &["secret", "delete", "STRIPE_KEY"]);
    assert!(out.status.success(), "{out:?}");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// After a restart a sealed secret opens again; with the key file replaced it does not, and
/// the function using it is not served without it (the others are).
#[tokio::test]
async fn a_replaced_key_leaves_functions_using_secrets_unserved() {
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    let digest = s.upload_guest(HTTP_ECHO).await;
    assert_eq!(
        set_secret(&s, &s.token, "GREETING", VALUE).await.status(),
        201
    );
    s.deploy_ok(
        &manifest("secrets = [\"GREETING\"]"),
        &[("echo", &digest), ("plain", &digest)],
    )
    .await;
    s.stop().await;
    let s = TestServer::start_at(tmp.path()).await;
    assert_eq!(greeting(&s, "/echo/x").await, VALUE);
    s.stop().await;
    std::fs::write(tmp.path().join("secrets.key"), hex::encode([1u8; 32])).unwrap();
    let s = TestServer::start_at(tmp.path()).await;
    expect_error(s.get("/echo/x").await, 404, "route_not_found").await;
    assert_eq!(greeting(&s, "/plain").await, "-");
    s.stop().await;
}
