//! The key-value HTTP API (`/_updraft/kv/v1`) against careless and hostile callers: no key,
//! another project's key, a viewer writing, stale revisions, odd keys, limits, the quota, bad
//! increments and expiry.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::projects::{create_project, key_of};
use crate::support::{TestServer, expect_error};

/// The data plane's API for keys and admins, against careless and hostile callers.
#[tokio::test]
async fn the_http_api_answers_bad_callers_clearly() {
    let s = TestServer::start_with(
        "[key_value]\nmax_value_bytes = \"1KiB\"\nmax_project_bytes = \"4KiB\"\n",
    )
    .await;
    create_project(&s, "other", &[]).await;
    let viewer = key_of(&s, "default", "viewer").await;
    let deployer = key_of(&s, "default", "deployer").await;
    let outsider = key_of(&s, "other", "owner").await;
    let kv = |path: &str| s.url(&format!("/_updraft/kv/v1{path}"));
    let send = |method: Method, path: &str, token: &str| {
        s.http
            .request(method, kv(path))
            .bearer_auth(token.to_owned())
    };

    // No key, a bad key, another project's key.
    let r = s.http.get(kv("/stores")).send().await.unwrap();
    expect_error(r, 401, "unauthorized").await;
    let r = send(Method::GET, "/stores", "nope").send().await.unwrap();
    expect_error(r, 401, "unauthorized").await;
    let r = send(Method::GET, "/stores", &outsider)
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;

    let r = send(Method::PUT, "/stores/notes", &deployer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A viewer reads but cannot write.
    let r = send(Method::PUT, "/stores/notes/keys/a", &viewer)
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    let r = send(Method::PUT, "/stores/notes/keys/a", &deployer)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = send(Method::GET, "/stores/notes/keys/a", &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "x");
    // The other project's owner, on its own host, does not see `default`'s store.
    let r = s
        .http
        .get(kv("/stores/notes/keys/a"))
        .header("host", "other.localhost")
        .bearer_auth(&outsider)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "store_not_found").await;

    // Conditions: a stale revision, a write-if-absent over an existing key.
    let r = send(Method::PUT, "/stores/notes/keys/a", &deployer)
        .header("if-match", "\"999999\"")
        .body("y")
        .send()
        .await
        .unwrap();
    expect_error(r, 412, "precondition_failed").await;
    let r = send(Method::PUT, "/stores/notes/keys/a", &deployer)
        .header("if-none-match", "*")
        .body("y")
        .send()
        .await
        .unwrap();
    expect_error(r, 412, "precondition_failed").await;
    let r = send(Method::PUT, "/stores/notes/keys/a", &deployer)
        .header("if-match", etag.as_str())
        .body("y")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(Method::PUT, "/stores/notes/keys/a", &deployer)
        .header("if-match", "yesterday")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request").await;

    // Odd keys are keys: `../`, spaces, unicode, `%`, `?` (percent-encoded in the path).
    for key in ["../../etc/passwd", "a b", "ключ", "100%", "q?x=1", "a/b/"] {
        let enc: String = key
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let path = format!("/stores/notes/keys/{enc}");
        let r = send(Method::PUT, &path, &deployer)
            .body(key.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{key}");
        let r = send(Method::GET, &path, &viewer).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), key);
    }
    let r = send(Method::GET, "/stores/notes/keys?prefix=..%2F", &viewer)
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["keys"], json!(["../../etc/passwd"]));

    // Limits: a long key, a big value, the project quota; bad store names; missing things.
    let long = "k".repeat(1025);
    let r = send(
        Method::PUT,
        &format!("/stores/notes/keys/{long}"),
        &deployer,
    )
    .send()
    .await
    .unwrap();
    expect_error(r, 400, "bad_request").await;
    let r = send(Method::PUT, "/stores/notes/keys/big", &deployer)
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "payload_too_large").await;
    // Past the mount's body limit too: still JSON naming the limit, not the framework's text.
    let r = send(Method::PUT, "/stores/notes/keys/huge", &deployer)
        .body(vec![b'x'; 64 << 10])
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 413, "payload_too_large").await;
    assert!(body.to_string().contains("max_value_bytes"), "{body}");
    for i in 0..3 {
        let r = send(
            Method::PUT,
            &format!("/stores/notes/keys/fill{i}"),
            &deployer,
        )
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "fill{i}");
    }
    let r = send(Method::PUT, "/stores/notes/keys/fill3", &deployer)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    expect_error(r, 507, "storage_quota_exceeded").await;
    let r = send(Method::PUT, "/stores/..%2Fetc", &deployer)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request").await;
    let r = send(Method::GET, "/stores/nope/keys/a", &viewer)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "store_not_found").await;
    let r = send(Method::GET, "/stores/notes/keys/nope", &viewer)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "item_not_found").await;

    // Increments: malformed bodies, a non-integer value.
    for body in [
        "",
        "{",
        "{\"increment\": \"1\"}",
        "{\"increment\": 1, \"x\": 2}",
    ] {
        let r = send(Method::POST, "/stores/notes/keys/n", &deployer)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "bad_request").await;
    }
    let r = send(Method::POST, "/stores/notes/keys/a", &deployer)
        .json(&json!({"increment": 1}))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "conflict").await;

    // Expiry: a key with a 1 s ttl is gone after it.
    let r = send(Method::PUT, "/stores/notes/keys/brief?ttl=1", &deployer)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = send(Method::GET, "/stores/notes/keys/brief", &viewer)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "item_not_found").await;
    let r = send(Method::PUT, "/stores/notes/keys/brief?ttl=0", &deployer)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request").await;
    s.stop().await;
}
