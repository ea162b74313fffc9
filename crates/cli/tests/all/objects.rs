//! Object storage end to end: buckets and S3 keys through the control API, then boto3 (AWS's
//! own client, from PyPI) through every S3 operation Updraft implements and every refusal
//! (`test-programs/py-clients/s3_suite.py`).

use serde_json::{Value, json};
use updraft_test_guests::PY_CLIENTS;

mod cors;
mod durability;
mod functions;
mod triggers;

use crate::projects::create_project;
use crate::support::TestServer;

/// POSTs JSON to a control API path as project `project`; the status and body.
async fn post(s: &TestServer, project: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = s
        .api(reqwest::Method::POST, path)
        .header("x-updraft-project", project)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn bucket(s: &TestServer, project: &str, name: &str, public_read: bool) {
    let (status, body) = post(
        s,
        project,
        "/v1/buckets",
        json!({"name": name, "public_read": public_read}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn key(s: &TestServer, project: &str, buckets: &[&str]) -> Value {
    let (status, body) = post(s, project, "/v1/s3-keys", json!({"buckets": buckets})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["secret_access_key"].as_str().unwrap().len(), 40);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_passes_every_operation_and_is_refused_what_it_may_not_do() {
    let Some(python) = PY_CLIENTS else {
        // Only when python3 is missing on a developer machine; CI requires it.
        eprintln!("skipped: no python3 to run boto3");
        return;
    };
    let s = TestServer::start().await;
    create_project(&s, "other", &[]).await;
    bucket(&s, "default", "photos", false).await;
    bucket(&s, "default", "public-site", true).await;
    bucket(&s, "other", "elsewhere", false).await;
    let config = json!({
        "bucket": "photos",
        "public": "public-site",
        "full": key(&s, "default", &[]).await,
        "readonly": key(&s, "default", &["photos:read"]).await,
        "other": key(&s, "other", &[]).await,
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test-programs/py-clients/s3_suite.py"
    );
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(&s.s3_url)
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boto3 suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
    // The control API sees what boto3 stored.
    let listed = s.api_json("/v1/buckets").await;
    let names: Vec<&str> = listed["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["photos", "public-site"], "{listed}");
    assert!(
        listed["usage"]["bytes"].as_u64().unwrap() > 100 << 20,
        "{listed}"
    );
    s.stop().await;
}

/// Past `[objects] max_object_bytes` boto3 hears `EntityTooLarge`, past the project's object
/// quota `QuotaExceeded`; replacing an object is not a new one; a bad `[objects]` key is
/// refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_quotas_answer_s3_error_codes() {
    let Some(python) = PY_CLIENTS else {
        eprintln!("skipped: no python3 to run boto3");
        return;
    };
    for (text, why) in [
        ("[objects]\nmax_part_bytes = \"1MiB\"\n", "at least 5242880"),
        ("[objects]\ndomain = \"Bad Domain\"\n", "domain"),
        ("[objects]\nmax_buckets = 0\n", "max_buckets"),
        ("[objects]\nmax_files = 3\n", "max_files"),
    ] {
        let err = updraft_server::FileConfig::parse("server.toml", text).unwrap_err();
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
    let s = TestServer::start_with(
        "[objects]\nmax_object_bytes = \"64KiB\"\nmax_project_objects = 2\n",
    )
    .await;
    bucket(&s, "default", "small", false).await;
    let k = key(&s, "default", &[]).await;
    let script = r#"
import sys, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def code(fn):
    try:
        fn()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"] + "/" + str(e.response["ResponseMetadata"]["HTTPStatusCode"])
print(code(lambda: s3.put_object(Bucket="small", Key="a", Body=b"x" * 1024)))
print(code(lambda: s3.put_object(Bucket="small", Key="big", Body=b"x" * (100 << 10))))
print(code(lambda: s3.put_object(Bucket="small", Key="b", Body=b"y")))
print(code(lambda: s3.put_object(Bucket="small", Key="c", Body=b"z")))
print(code(lambda: s3.put_object(Bucket="small", Key="a", Body=b"replaced")))
print(len(s3.list_objects_v2(Bucket="small")["Contents"]))
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", script, &s.s3_url])
        .arg(k["access_key_id"].as_str().unwrap())
        .arg(k["secret_access_key"].as_str().unwrap())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "ok",
            "EntityTooLarge/400",
            "ok",
            "QuotaExceeded/403",
            "ok",
            "2"
        ],
        "{stdout}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_control_api_checks_bucket_names_grants_and_ownership() {
    let s = TestServer::start().await;
    create_project(&s, "other", &[]).await;
    bucket(&s, "other", "theirs", false).await;
    for (body, want) in [
        (json!({"name": "../etc"}), "bucket name"),
        (json!({"name": "UPPER"}), "lower-case"),
        (json!({"nam": "typo"}), "unknown field"),
    ] {
        let (status, out) = post(&s, "default", "/v1/buckets", body).await;
        assert_eq!(status, 400, "{out}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(want),
            "{out}"
        );
    }
    let (status, out) = post(&s, "default", "/v1/buckets", json!({"name": "theirs"})).await;
    assert_eq!(status, 409, "{out}");
    // A grant may name only the project's own buckets, with `read` or `write`.
    let (status, out) = post(&s, "default", "/v1/s3-keys", json!({"buckets": ["theirs"]})).await;
    assert_eq!(status, 400, "{out}");
    bucket(&s, "default", "mine", false).await;
    let (status, out) = post(
        &s,
        "default",
        "/v1/s3-keys",
        json!({"buckets": ["mine:admin"]}),
    )
    .await;
    assert_eq!(status, 400, "{out}");
    let minted = key(&s, "default", &["mine:read", "mine:write"]).await;
    let listed = s.api_json("/v1/s3-keys").await;
    assert_eq!(listed["keys"][0]["grants"][0]["write"], true, "{listed}");
    assert!(
        listed.to_string().find("secret").is_none(),
        "secrets are shown once: {listed}"
    );
    // Another project cannot delete this project's bucket or key.
    let id = minted["access_key_id"].as_str().unwrap();
    let resp = s
        .api(reqwest::Method::DELETE, &format!("/v1/s3-keys/{id}"))
        .header("x-updraft-project", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = s
        .api(reqwest::Method::DELETE, "/v1/buckets/mine")
        .header("x-updraft-project", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = s
        .api(reqwest::Method::DELETE, &format!("/v1/s3-keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = s
        .api(reqwest::Method::DELETE, "/v1/buckets/mine")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    s.stop().await;
}

/// `updraft bucket`, `s3-key`, `cp`, `ls` and `rm` against a running server: a 3 MiB file up
/// and back, keys with odd characters, a listing, a delete, and the errors they print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_buckets_keys_and_copies_files_both_ways() {
    use crate::support::run_cli;
    let s = TestServer::start().await;
    let cli = |args: &[&str]| run_cli(&s, args, None);
    let (ok, out, err) = cli(&["bucket", "create", "files", "--public-read"]);
    assert!(
        ok && out.contains("created bucket files (public read)"),
        "{out}{err}"
    );
    let (ok, _, err) = cli(&["bucket", "create", "files"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("photo one.jpg");
    let bytes: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&src, &bytes).unwrap();
    let src = src.to_str().unwrap().to_owned();
    let (ok, out, err) = cli(&["cp", &src, "s3://files/2024/"]);
    assert!(
        ok && out.contains("s3://files/2024/photo one.jpg"),
        "{out}{err}"
    );
    let (ok, out, err) = cli(&["cp", &src, "s3://files/odd key+%?#.bin"]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = cli(&["ls", "s3://files/2024/"]);
    assert!(
        ok && out.contains("photo one.jpg") && out.contains("3.0 MiB"),
        "{out}"
    );
    let (ok, out, _) = cli(&["ls", "s3://files", "--json"]);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert!(
        ok && listed["objects"].as_array().unwrap().len() == 2,
        "{out}"
    );
    assert_eq!(listed["objects"][0]["content_type"], "image/jpeg", "{out}");
    let back = dir.path().join("back.bin");
    let (ok, _, err) = cli(&["cp", "s3://files/odd key+%?#.bin", back.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(std::fs::read(&back).unwrap() == bytes, "round trip");
    let (ok, _, err) = cli(&["cp", "s3://files/missing", back.to_str().unwrap()]);
    assert!(!ok && err.contains("no object"), "{err}");
    let (ok, out, _) = cli(&["bucket", "list"]);
    assert!(
        ok && out.contains("files") && out.contains("public read"),
        "{out}"
    );
    assert!(out.contains("2 objects"), "{out}");
    let (ok, out, _) = cli(&["s3-key", "create", "--bucket", "files:read", "--json"]);
    let key: Value = serde_json::from_str(&out).unwrap();
    assert!(
        ok && key["access_key_id"].as_str().unwrap().starts_with("AKUP"),
        "{out}"
    );
    let (ok, out, _) = cli(&["s3-key", "list"]);
    assert!(ok && out.contains("files:read"), "{out}");
    assert!(
        !out.contains(key["secret_access_key"].as_str().unwrap()),
        "{out}"
    );
    let (ok, _, err) = cli(&["s3-key", "create", "--bucket", "files:admin"]);
    assert!(
        !ok && err.contains("`admin` is not `read` or `write`"),
        "{err}"
    );
    let (ok, _, err) = cli(&["bucket", "delete", "files"]);
    assert!(!ok && err.contains("not empty"), "{err}");
    for key in [
        "s3://files/2024/photo one.jpg",
        "s3://files/odd key+%?#.bin",
    ] {
        let (ok, out, err) = cli(&["rm", key]);
        assert!(ok, "{out}{err}");
    }
    let (ok, _, err) = cli(&["rm", "s3://files/odd key+%?#.bin"]);
    assert!(!ok && err.contains("no object"), "{err}");
    let (ok, out, err) = cli(&["bucket", "delete", "files"]);
    assert!(ok && out.contains("deleted bucket files"), "{out}{err}");
    s.stop().await;
}
