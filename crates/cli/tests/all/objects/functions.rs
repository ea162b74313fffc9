//! Functions granted buckets (`buckets = ["inbox:read", "outbox:write"]`) reach them with the
//! credentials the platform injects: S3 requests signed by `aws-sigv4` (the AWS SDKs' signer)
//! inside a real guest (`s3-client`), path and virtual-host style, at `s3.updraft.internal`;
//! plain HTTP with the bearer credential; and boto3 picking the variables up unchanged. Each
//! reaches only what is granted, an ungranted function nothing, and the credentials die with
//! the function. An upload-triggered function writing into the bucket that triggers it does
//! not trigger itself (the loop guard).

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use updraft_test_guests::{PY_CLIENTS, S3_CLIENT};

use super::bucket;
use crate::projects::create_project;
use crate::support::TestServer;

const APP: &str = r#"[app]
name = "media"

[[functions]]
name = "mover"
component = "s3.wasm"
buckets = ["inbox:read", "outbox:write"]
[[functions.http]]
route = "/mover/..."

[[functions]]
name = "nogrant"
component = "s3.wasm"
[[functions.http]]
route = "/nogrant/..."
"#;

/// A request through a function's route; the status and body.
async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (u16, String) {
    let mut req = s.http.request(method, s.url(path)).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn put(s: &TestServer, bucket: &str, key: &str, body: &'static str) {
    let r = s
        .api(Method::PUT, &format!("/v1/buckets/{bucket}/objects/{key}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

async fn get(s: &TestServer, bucket: &str, key: &str) -> (u16, String) {
    let r = s
        .api(Method::GET, &format!("/v1/buckets/{bucket}/objects/{key}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Runs boto3 with the function's variables (the endpoint pointed at the real listener, as
/// the engine does for guests), reading `inbox/hello.txt` and writing `inbox/nope`: prints
/// what each did.
async fn boto3(s: &TestServer, env: &Value) -> Option<String> {
    let python = PY_CLIENTS?;
    let script = r#"
import boto3
from botocore.exceptions import ClientError
s3 = boto3.client("s3")  # everything from AWS_* variables
def code(fn):
    try:
        return fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
print(code(lambda: s3.get_object(Bucket="inbox", Key="hello.txt")["Body"].read().decode()))
print(code(lambda: s3.put_object(Bucket="inbox", Key="nope", Body=b"x") and "ok"))
"#;
    let mut cmd = tokio::process::Command::new(python);
    cmd.args(["-c", script]).env_remove("AWS_PROFILE");
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        cmd.env(k, env[k].as_str().unwrap());
    }
    cmd.env("AWS_ENDPOINT_URL_S3", &s.s3_url);
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_function_reaches_its_buckets_as_granted_and_nothing_else() {
    let s = TestServer::start().await;
    create_project(&s, "rival", &[]).await;
    bucket(&s, "rival", "rival-files", false).await;
    let digest = s.upload_guest(S3_CLIENT).await;
    // A grant of another project's bucket fails the deploy and changes nothing.
    let stolen = APP.replace("\"outbox:write\"", "\"outbox:write\", \"rival-files\"");
    let (status, err) = s
        .deploy(&stolen, &[("mover", &digest), ("nogrant", &digest)])
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err.to_string().contains("belongs to another project"),
        "{err}"
    );
    // The granted buckets are made at deploy.
    s.deploy_ok(APP, &[("mover", &digest), ("nogrant", &digest)])
        .await;
    put(&s, "inbox", "hello.txt", "hello").await;

    let (status, env) = call(&s, Method::GET, "/mover/env", &[], "").await;
    assert_eq!(status, 200, "{env}");
    let env: Value = serde_json::from_str(&env).unwrap();
    let key_id = env["AWS_ACCESS_KEY_ID"].as_str().unwrap();
    assert!(key_id.starts_with("AKFN"), "{env}");
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"].as_str().unwrap().len(), 40);
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_ENDPOINT_URL_S3"], "http://s3.updraft.internal");
    let token = env["UPDRAFT_STORAGE_TOKEN"].as_str().unwrap().to_owned();
    let (_, none) = call(&s, Method::GET, "/nogrant/env", &[], "").await;
    assert_eq!(none, "{}", "an ungranted function gets no credentials");

    // S3, signed in the guest: path style and virtual-host style, each grant as granted.
    let s3 = |path: &'static str| format!("/mover/s3{path}");
    let (status, body) = call(&s, Method::GET, &s3("/inbox/hello.txt"), &[], "").await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    let (status, body) = call(
        &s,
        Method::GET,
        &s3("/hello.txt"),
        &[("x-virtual", "inbox")],
        "",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello"),
        "virtual-host style"
    );
    let (status, body) = call(&s, Method::GET, &s3("/inbox?list-type=2"), &[], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Key>hello.txt</Key>"), "{body}");
    let (status, body) = call(&s, Method::PUT, &s3("/outbox/out.txt"), &[], "written").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&s, "outbox", "out.txt").await, (200, "written".into()));
    for (method, path, why) in [
        (Method::PUT, "/inbox/nope.txt", "inbox is read-only"),
        (Method::GET, "/outbox/out.txt", "outbox is write-only"),
        (Method::GET, "/rival-files/x", "another project's bucket"),
        (Method::PUT, "/rival-files/x", "another project's bucket"),
        (
            Method::DELETE,
            "/inbox",
            "managing buckets takes a key without grants",
        ),
    ] {
        let (status, body) = call(&s, method, &s3(path), &[], "x").await;
        assert_eq!(status, 403, "{why}: {body}");
        assert!(body.contains("<Code>AccessDenied</Code>"), "{why}: {body}");
    }
    // Refused before its body is read: the guest, still sending a MiB, hears S3's error
    // rather than a broken connection.
    let big: &'static str = Box::leak("x".repeat(1 << 20).into_boxed_str());
    let (status, body) = call(&s, Method::PUT, &s3("/inbox/big.bin"), &[], big).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");

    // Plain HTTP with the bearer credential: the same grants.
    let plain = |path: &'static str| format!("/mover/plain/buckets{path}");
    let (status, body) = call(&s, Method::GET, &plain("/inbox/objects/hello.txt"), &[], "").await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    let (status, body) = call(&s, Method::GET, &plain("/inbox/objects?prefix=he"), &[], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello.txt"), "{body}");
    let (status, body) = call(
        &s,
        Method::PUT,
        &plain("/outbox/objects/p.txt"),
        &[],
        "plain",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(get(&s, "outbox", "p.txt").await, (200, "plain".into()));
    let (status, body) = call(&s, Method::PUT, &plain("/inbox/objects/x"), &[], "x").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("grant it `bucket` or `bucket:write`"),
        "{body}"
    );
    let (status, body) = call(&s, Method::DELETE, &plain("/outbox/objects/p.txt"), &[], "").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(&s, Method::GET, &plain("/rival-files/objects/x"), &[], "").await;
    assert_eq!(status, 404, "another project's bucket is not there: {body}");

    // Without a grant the platform's hosts are refused inside the guest.
    let (status, body) = call(&s, Method::GET, "/nogrant/s3/inbox/hello.txt", &[], "").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // AWS's own client picks the variables up unchanged.
    if let Some(out) = boto3(&s, &env).await {
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["hello", "AccessDenied"],
            "{out}"
        );
    }

    // The bearer credential from outside: a changed one is refused.
    let storage = |t: &str| {
        s.http
            .get(s.url("/_updraft/storage/v1/buckets/inbox/objects/hello.txt"))
            .bearer_auth(t)
    };
    let r = storage(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let r = storage(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());
    // No credential, or a project key instead of a function's: refused too.
    let r = s
        .http
        .get(s.url("/_updraft/storage/v1/buckets/inbox/objects/hello.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = storage(&s.token).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());

    // Gone with the function: both credentials.
    let r = s
        .api(Method::DELETE, "/v1/functions/mover")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = storage(&token).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap());
    if let Some(out) = boto3(&s, &env).await {
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["InvalidAccessKeyId", "InvalidAccessKeyId"],
            "{out}"
        );
    }
    s.stop().await;
}

const LOOP: &str = r#"[app]
name = "copies"

[[functions]]
name = "copier"
component = "s3.wasm"
buckets = ["loopy"]
env = { COPY_PREFIX = "copy-" }
[[functions.bucket]]
bucket = "loopy"
events = ["created"]
"#;

async fn keys(s: &TestServer) -> Vec<String> {
    let listed = s.api_json("/v1/buckets/loopy/objects").await;
    listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_writing_into_the_bucket_that_triggers_it_does_not_trigger_itself() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(S3_CLIENT).await;
    s.deploy_ok(LOOP, &[("copier", &digest)]).await;
    put(&s, "loopy", "a.txt", "first").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !keys(&s).await.contains(&"copy-a.txt".to_owned()) {
        assert!(
            std::time::Instant::now() < deadline,
            "never copied: {}",
            s.api_json("/v1/functions/copier/logs?limit=50").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&s, "loopy", "copy-a.txt").await, (200, "first".into()));
    // A second upload is copied too; by then the copy's own change has long been fed (changes
    // are fed in commit order) and skipped: no copy of a copy, however long one waits.
    put(&s, "loopy", "b.txt", "second").await;
    while !keys(&s).await.contains(&"copy-b.txt".to_owned()) {
        assert!(std::time::Instant::now() < deadline, "b.txt never copied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = keys(&s).await;
    assert_eq!(
        after.len(),
        4,
        "a copy triggered its writer: {:?}",
        &after[..after.len().min(6)]
    );
    assert_eq!(after, ["a.txt", "b.txt", "copy-a.txt", "copy-b.txt"]);
    let inv = s
        .api_json("/v1/functions/copier/invocations?limit=50")
        .await;
    assert_eq!(
        inv["invocations"].as_array().map(Vec::len),
        Some(2),
        "one run per outside upload: {inv}"
    );
    s.stop().await;
}
