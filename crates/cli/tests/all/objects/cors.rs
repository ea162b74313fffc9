//! Bucket CORS: boto3 sets, reads and deletes a bucket's rules; browsers' preflights are
//! answered from them (or refused with 403), allowed origins are marked on answers, and a
//! presigned PUT from an allowed origin goes through.

use serde_json::Value;
use updraft_test_guests::PY_CLIENTS;

use super::{bucket, key};
use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_cors_rules_answer_preflights_and_mark_allowed_answers() {
    let Some(python) = PY_CLIENTS else {
        eprintln!("skipped: no python3 to run boto3");
        return;
    };
    let s = TestServer::start().await;
    bucket(&s, "default", "web-uploads", false).await;
    let k = key(&s, "default", &[]).await;
    let readonly = key(&s, "default", &["web-uploads:read"]).await;
    let script = r#"
import json, sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
def client(k, s):
    return boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=k,
                        aws_secret_access_key=s, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3, ro = client(sys.argv[2], sys.argv[3]), client(sys.argv[4], sys.argv[5])
def code(fn):
    try:
        fn()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]
out = {}
out["get_none"] = code(lambda: s3.get_bucket_cors(Bucket="web-uploads"))
out["bad"] = code(lambda: s3.put_bucket_cors(Bucket="web-uploads", CORSConfiguration={
    "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]}))
out["readonly_put"] = code(lambda: ro.put_bucket_cors(Bucket="web-uploads", CORSConfiguration={
    "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}))
out["put"] = code(lambda: s3.put_bucket_cors(Bucket="web-uploads", CORSConfiguration={
    "CORSRules": [{"AllowedOrigins": ["https://app.example", "http://*.localhost:3000"],
                   "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["content-type", "x-amz-*"],
                   "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}))
rules = s3.get_bucket_cors(Bucket="web-uploads")["CORSRules"]
out["rules"] = rules
out["presigned"] = s3.generate_presigned_url("put_object",
    Params={"Bucket": "web-uploads", "Key": "from-browser.txt"}, ExpiresIn=300)
print(json.dumps(out))
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", script, &s.s3_url])
        .arg(k["access_key_id"].as_str().unwrap())
        .arg(k["secret_access_key"].as_str().unwrap())
        .arg(readonly["access_key_id"].as_str().unwrap())
        .arg(readonly["secret_access_key"].as_str().unwrap())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["get_none"], "NoSuchCORSConfiguration");
    assert_eq!(out["bad"], "MalformedXML");
    assert_eq!(out["readonly_put"], "AccessDenied");
    assert_eq!(out["put"], "ok");
    let rule = &out["rules"][0];
    assert_eq!(rule["AllowedMethods"], serde_json::json!(["GET", "PUT"]));
    assert_eq!(rule["MaxAgeSeconds"], 600);

    let url = format!("{}/web-uploads/from-browser.txt", s.s3_url);
    let preflight = |origin: &'static str, method: &'static str, headers: &'static str| {
        let mut r = s
            .http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            r = r.header("access-control-request-headers", headers);
        }
        r.send()
    };
    let r = preflight("https://app.example", "PUT", "content-type, x-amz-date")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "GET, PUT");
    assert_eq!(h["access-control-max-age"], "600");
    // A wildcard origin; then what no rule allows.
    let r = preflight("http://shop.localhost:3000", "GET", "")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (origin, method, headers) in [
        ("https://evil.example", "PUT", ""),
        ("https://app.example", "DELETE", ""),
        ("https://app.example", "PUT", "authorization"),
    ] {
        let r = preflight(origin, method, headers).await.unwrap();
        assert_eq!(r.status(), 403, "{origin} {method} {headers}");
        assert!(r.text().await.unwrap().contains("AccessForbidden"));
    }

    // The browser's PUT through the presigned URL, from the allowed origin.
    let r = s
        .http
        .put(out["presigned"].as_str().unwrap())
        .header("origin", "https://app.example")
        .body("hello from a page")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(r.headers()["access-control-expose-headers"], "ETag");
    let r = s
        .http
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    s.stop().await;
}
