//! `updraft db`: documents from the command line, and JSON-lines export and import (a round
//! trip of 2,500 documents; a malformed line writes nothing; who may import).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::{RULES, call, deploy};
use crate::support::{TestServer, expect_error};

use crate::support::run_cli as updraft;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_writes_queries_exports_and_imports_documents() {
    let s = TestServer::start().await;
    assert_eq!(deploy(&s, RULES).await.0, 200);

    let (ok, out, err) = updraft(
        &s,
        &["db", "put", "open", "a", r#"{"n": 1, "tag": "x"}"#],
        None,
    );
    assert!(ok && out.starts_with("created a (revision "), "{out}{err}");
    let (ok, out, _) = updraft(&s, &["db", "patch", "open", "a", r#"{"tag": null}"#], None);
    assert!(ok && out.starts_with("patched a"), "{out}");
    let (ok, out, _) = updraft(&s, &["db", "get", "open", "a"], None);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(ok);
    assert_eq!(doc["data"], json!({"n": 1}));
    let (ok, id, _) = updraft(&s, &["db", "create", "open"], Some(r#"{"n": 2}"#));
    assert!(ok && id.trim().len() == 20, "{id}");
    let (ok, out, _) = updraft(&s, &["db", "query", "open", "--where", "n >= 2"], None);
    assert!(
        ok && out.contains("ID") && out.contains(id.trim()) && !out.contains("\na "),
        "{out}"
    );
    let (ok, out, _) = updraft(&s, &["db", "collections"], None);
    assert!(
        ok && out.contains("notes") && out.contains("owner, n"),
        "{out}"
    );
    let (ok, out, _) = updraft(&s, &["db", "delete", "open", "a"], None);
    assert!(ok && out.starts_with("deleted a"), "{out}");
    let (ok, _, err) = updraft(&s, &["db", "get", "open", "a"], None);
    assert!(!ok && err.contains("no document `a`"), "{err}");
    let (ok, _, err) = updraft(&s, &["db", "put", "open", "b", "{not json"], None);
    assert!(!ok && err.contains("not valid JSON"), "{err}");

    // Import 2,500 documents (three requests), one without an id; export them back.
    let mut lines = String::new();
    for i in 0..2_500 {
        lines.push_str(
            &json!({"id": format!("d{i:04}"), "data": {"n": i, "s": "é/\"x\""}}).to_string(),
        );
        lines.push('\n');
    }
    lines.push_str("{\"data\": {\"n\": -1}}\n\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, &lines).unwrap();
    let (ok, out, err) = updraft(&s, &["db", "import", "open", file.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("imported 2501 documents into open (2501 created, 0 replaced)"),
        "{out}"
    );
    // Again from stdin: every one with an id replaced, the one without created again.
    let (ok, out, _) = updraft(&s, &["db", "import", "open", "--json"], Some(&lines));
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["created"].as_u64(), v["replaced"].as_u64()),
        (Some(1), Some(2500))
    );

    let export = dir.path().join("out.jsonl");
    let (ok, _, err) = updraft(
        &s,
        &["db", "export", "open", "--out", export.to_str().unwrap()],
        None,
    );
    assert!(ok && err.contains("exported 2503 documents"), "{err}");
    let exported: BTreeMap<String, Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| {
            let d: Value = serde_json::from_str(l).unwrap();
            (d["id"].as_str().unwrap().to_owned(), d["data"].clone())
        })
        .collect();
    assert_eq!(exported.len(), 2503);
    assert_eq!(exported["d1234"], json!({"n": 1234, "s": "é/\"x\""}));
    assert_eq!(exported.values().filter(|d| d["n"] == -1).count(), 2);
    assert_eq!(exported[id.trim()], json!({"n": 2}));

    // A malformed line anywhere writes nothing of its request, and names the line.
    let bad = "{\"id\": \"new1\", \"data\": {}}\n{\"id\": \"new2\", \"data\": []}\n";
    let (ok, _, err) = updraft(&s, &["db", "import", "open"], Some(bad));
    assert!(
        !ok && err.contains("line 2: `data` must be the document's JSON object"),
        "{err}"
    );
    let r = call(
        &s,
        Method::GET,
        "/collections/open/docs/new1",
        Some(&s.token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 404, "a line before the bad one was written");
}

#[tokio::test]
async fn only_writing_keys_import_and_requests_are_bounded() {
    let s = TestServer::start().await;
    assert_eq!(deploy(&s, RULES).await.0, 200);
    let import = |token: Option<&str>, body: String| {
        call(&s, Method::POST, "/collections/open/import", token).body(body)
    };
    let one = "{\"data\": {\"n\": 1}}\n".to_owned();
    expect_error(
        import(None, one.clone()).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    let too_many = one.repeat(1001);
    let e = expect_error(
        import(Some(&s.token), too_many).send().await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{e}"
    );
    for (body, needle) in [
        ("{\"id\": \"../x\", \"data\": {}}\n", "line 1"),
        ("[1]\n", "line 1: not a JSON object"),
        ("{\"id\": 5, \"data\": {}}\n", "`id` must be a string"),
        ("\u{0}nope\n", "not JSON"),
    ] {
        let e = expect_error(
            import(Some(&s.token), body.to_owned())
                .send()
                .await
                .unwrap(),
            400,
            "bad_request",
        )
        .await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {e}"
        );
    }
    let r = call(&s, Method::POST, "/collections/nope/import", Some(&s.token))
        .body(one.clone())
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "collection_not_found").await;
    let r = import(Some(&s.token), one).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
