//! Documents: the rule matrix (owner, another user, anonymous, viewer and deployer keys, the
//! admin key) for every operation, queries on declared fields refused rather than filtered,
//! conditional writes, merge patches, and bad input (JSON, sizes, filters, rules at deploy).

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::HTTP_ECHO;

mod backup;
mod changes;
mod cli;
mod credentials;
mod triggers;
mod usage;

use crate::auth::sign_up;
use crate::projects::key_of;
use crate::support::{TestServer, expect_error};

pub(super) const RULES: &str = r#"
[[collections]]
name = "notes"
indexes = ["owner", "n"]
[collections.rules]
list = "auth != null && doc.owner == auth.uid"
get = "auth != null && doc.owner == auth.uid"
create = "auth != null && newDoc.owner == auth.uid"
update = "auth != null && doc.owner == auth.uid && newDoc.owner == doc.owner"
delete = "auth != null && doc.owner == auth.uid"

[[collections]]
name = "open"
indexes = ["n"]
"#;

pub(super) async fn deploy(s: &TestServer, collections: &str) -> (u16, Value) {
    let digest = s.upload_guest(HTTP_ECHO).await;
    let text = format!(
        "[app]\nname = \"app\"\n[[functions]]\nname = \"echo\"\ncomponent = \"e.wasm\"\n\
         [[functions.http]]\nroute = \"/echo\"\n{collections}"
    );
    s.deploy(&text, &[("echo", &digest)]).await
}

/// A request to the document API as `token` (`None`: anonymous).
pub(super) fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let req = s
        .http
        .request(method, s.url(&format!("/_updraft/db/v1{path}")));
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn rules_decide_for_users_and_keys_pass_them() {
    let s = TestServer::start().await;
    let (code, body) = deploy(&s, RULES).await;
    assert_eq!(code, 200, "{body}");
    let ann = sign_up(&s, "localhost", "ann@example.com").await;
    let bob = sign_up(&s, "localhost", "bob@example.com").await;
    let (ann_id, ann) = (
        ann["user"]["id"].as_str().unwrap().to_owned(),
        ann["access_token"].as_str().unwrap().to_owned(),
    );
    let bob = bob["access_token"].as_str().unwrap().to_owned();
    let viewer = key_of(&s, "default", "viewer").await;
    let deployer = key_of(&s, "default", "deployer").await;
    let admin = s.token.clone();

    // create: only a user writing a note they own, or a deployer/admin key.
    let mine = json!({"owner": ann_id, "text": "ann's", "n": 1});
    let r = call(&s, Method::POST, "/collections/notes/docs", Some(&ann))
        .json(&mine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"], mine);
    assert!(created["revision"].as_u64().unwrap() > 0);
    for (who, token, want) in [
        ("bob as ann", Some(bob.as_str()), 403),
        ("anonymous", None, 403),
        ("viewer", Some(viewer.as_str()), 403),
        ("deployer", Some(deployer.as_str()), 201),
        ("admin", Some(admin.as_str()), 201),
    ] {
        let r = call(&s, Method::POST, "/collections/notes/docs", token)
            .json(&mine)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "create as {who}");
    }

    // get, update (PUT and PATCH), delete: the owner and keys; nobody else.
    let doc = format!("/collections/notes/docs/{id}");
    for (who, token, get, update) in [
        ("owner", Some(ann.as_str()), 200, 200),
        ("other user", Some(bob.as_str()), 403, 403),
        ("anonymous", None, 403, 403),
        ("viewer key", Some(viewer.as_str()), 200, 403),
        ("deployer key", Some(deployer.as_str()), 200, 200),
        ("admin key", Some(admin.as_str()), 200, 200),
    ] {
        assert_eq!(
            status(call(&s, Method::GET, &doc, token)).await,
            get,
            "get as {who}"
        );
        let put = call(&s, Method::PUT, &doc, token).json(&json!({"owner": ann_id, "n": 2}));
        assert_eq!(status(put).await, update, "put as {who}");
        let patch = call(&s, Method::PATCH, &doc, token).json(&json!({"text": who}));
        assert_eq!(status(patch).await, update, "patch as {who}");
    }
    // The owner may not give the note away (update rule: newDoc.owner == doc.owner).
    let r = call(&s, Method::PATCH, &doc, Some(&ann))
        .json(&json!({"owner": "someone-else"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    // A missing document is no different for a user the rule denies.
    assert_eq!(
        status(call(
            &s,
            Method::GET,
            "/collections/notes/docs/nope",
            Some(&bob)
        ))
        .await,
        403
    );
    assert_eq!(
        status(call(
            &s,
            Method::GET,
            "/collections/notes/docs/nope",
            Some(&deployer)
        ))
        .await,
        404
    );

    // list: a query the rule allows for every result passes; one that would return another's
    // note is refused as a whole, not filtered.
    let own = format!("/collections/notes/docs?where=owner%20%3D%3D%20%22{ann_id}%22");
    let r = call(&s, Method::GET, &own, Some(&ann))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["docs"].as_array().unwrap().len(), 3, "{page}");
    let r = call(&s, Method::GET, &own, Some(&bob))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    let r = call(&s, Method::GET, "/collections/notes/docs", None)
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    let r = call(&s, Method::GET, "/collections/notes/docs", Some(&viewer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A collection with no rules: keys only.
    let r = call(&s, Method::POST, "/collections/open/docs", Some(&ann))
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 403, "forbidden").await;
    assert!(body.to_string().contains("no `create` rule"), "{body}");

    // delete: the owner, then it is gone.
    assert_eq!(
        status(call(&s, Method::DELETE, &doc, Some(&bob))).await,
        403
    );
    assert_eq!(
        status(call(&s, Method::DELETE, &doc, Some(&ann))).await,
        204
    );
    assert_eq!(status(call(&s, Method::GET, &doc, Some(&admin))).await, 404);
    // A tampered token is not anonymous: it is refused.
    let tampered = format!("{}x", &ann[..ann.len() - 1]);
    assert_eq!(
        status(call(&s, Method::GET, &doc, Some(&tampered))).await,
        401
    );
    s.stop().await;
}

#[tokio::test]
async fn queries_page_through_declared_fields_and_writes_are_conditional() {
    let s = TestServer::start().await;
    let (code, body) = deploy(&s, RULES).await;
    assert_eq!(code, 200, "{body}");
    let key = s.token.clone();
    for n in 0..25 {
        let r = call(
            &s,
            Method::PUT,
            &format!("/collections/open/docs/d{n:02}"),
            Some(&key),
        )
        .json(&json!({"n": n % 5, "label": format!("doc {n}")}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
    }
    // n >= 3 ordered by n descending, 4 at a time: every match once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "/collections/open/docs?where=n%20%3E%3D%203&order=n:desc&limit=4".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = call(&s, Method::GET, &url, Some(&key))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in page["docs"].as_array().unwrap() {
            seen.push((
                d["data"]["n"].as_i64().unwrap(),
                d["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);

    // Conditional writes.
    let doc = "/collections/open/docs/d00";
    let r = call(&s, Method::GET, doc, Some(&key)).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = call(&s, Method::PUT, doc, Some(&key))
        .header("if-none-match", "*")
        .json(&json!({"n": 9}))
        .send()
        .await
        .unwrap();
    expect_error(r, 412, "precondition_failed").await;
    let r = call(&s, Method::PATCH, doc, Some(&key))
        .header("if-match", etag.as_str())
        .json(&json!({"label": null, "extra": {"a": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], json!({"n": 0, "extra": {"a": 1}}));
    let r = call(&s, Method::PATCH, doc, Some(&key))
        .header("if-match", etag.as_str())
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    expect_error(r, 412, "precondition_failed").await;
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let s = TestServer::start_with("[documents]\nmax_document_bytes = \"1KiB\"\n").await;
    // A rule that is not CEL fails the deploy, naming it.
    let bad = "[[collections]]\nname = \"c\"\n[collections.rules]\nget = \"doc.owner ==\"\n";
    let (code, body) = deploy(&s, bad).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_manifest");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rule `get`"),
        "{body}"
    );
    for bad in [
        "[[collections]]\nname = \"../x\"\n",
        "[[collections]]\nname = \"c\"\nindexes = [\"a') OR 1=1\"]\n",
        "[[collections]]\nname = \"c\"\n[collections.rules]\nread = \"true\"\n",
    ] {
        let (code, body) = deploy(&s, bad).await;
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (400, Some("invalid_manifest")),
            "{bad}: {body}"
        );
    }
    let (code, body) = deploy(&s, RULES).await;
    assert_eq!(code, 200, "{body}");
    let key = s.token.clone();
    let post = |body: &'static str| {
        call(&s, Method::POST, "/collections/open/docs", Some(&key))
            .header("content-type", "application/json")
            .body(body)
    };
    for (body, code) in [("{", 400), ("[1]", 400), ("\"text\"", 400)] {
        let r = post(body).send().await.unwrap();
        expect_error(r, code, "bad_request").await;
    }
    let big = json!({"x": "y".repeat(2000)}).to_string();
    let r = call(&s, Method::POST, "/collections/open/docs", Some(&key))
        .body(big)
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "payload_too_large").await;
    let r = call(&s, Method::POST, "/collections/open/docs", Some(&key))
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "payload_too_large").await;
    for q in [
        "where=label%20%3D%3D%20%22x%22", // not an indexed field
        "where=n%20~%201",                // no such op
        "where=n%20%3D%3D%20nope",        // not JSON
        "where=n%20in%201",               // in takes a list
        "order=n:sideways",
        "limit=0",
        "limit=100000",
        "cursor=garbage",
        "select=n",
    ] {
        let r = call(
            &s,
            Method::GET,
            &format!("/collections/open/docs?{q}"),
            Some(&key),
        )
        .send()
        .await
        .unwrap();
        expect_error(r, 400, "bad_request").await;
    }
    let r = call(&s, Method::GET, "/collections/nope/docs/x", Some(&key))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "collection_not_found").await;
    let r = call(&s, Method::GET, "/collections/open/docs", Some("Basic x"))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_document_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, mut server) = crate::support::ConfiguredServe::start(dir.path(), "");
    let token = serve.token.clone();
    let http = reqwest::Client::new();
    // Deploy the collections through the control API of the spawned server.
    let manifest = format!(
        "[app]\nname = \"app\"\n[[functions]]\nname = \"echo\"\ncomponent = \"e.wasm\"\n{RULES}"
    );
    crate::support::deploy_to(
        &http,
        &server.control_url,
        &token,
        &manifest,
        &[("echo", HTTP_ECHO)],
    )
    .await;
    let base = format!("{}/_updraft/db/v1/collections/open/docs", server.data_url);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (http, base, token, acked) = (http.clone(), base.clone(), token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("w{w}-{i}");
                let r = http
                    .put(format!("{base}/{id}"))
                    .bearer_auth(&token)
                    .json(&json!({"n": i, "writer": w}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push((id, i)),
                    _ => break,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 400 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let mut server = serve.restart();
    let base = format!("{}/_updraft/db/v1/collections/open/docs", server.data_url);
    for (id, n) in &acked {
        let r = http
            .get(format!("{base}/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {id} is gone");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"]["n"], *n);
    }
    eprintln!(
        "{} acknowledged document writes before kill -9, all kept",
        acked.len()
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
