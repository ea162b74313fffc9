//! Static sites end to end: `updraft deploy` uploads `[site] dir` (only files the server
//! lacks), the data plane serves it behind the function routes with each rule checked over
//! HTTP (directories, redirects, rewrites, SPA fallback, 404 page, headers, ETags and 304,
//! ranges, cache headers, types, precompressed and on-the-fly compression), a redeploy swaps
//! it atomically under load, and rollback brings the previous version back.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use updraft_test_guests::HTTP_ECHO;

use crate::support::{TestServer, run_cli};

const MANIFEST: &str = r#"[app]
name = "web"

[[functions]]
name = "api"
component = "echo.wasm"
[[functions.http]]
route = "/api/..."

[site]
dir = "public"
spa = true

[[site.redirects]]
from = "/old/*"
to = "/new/:splat"
status = 308

[[site.rewrites]]
from = "/blog/*"
to = "/about/index.html"

[[site.headers]]
for = "/assets/*"
values = { "x-frame-options" = "DENY" }
"#;

fn write(dir: &Path, path: &str, bytes: &[u8]) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// An app directory with the echo function and a site whose index says `marker`.
fn app(marker: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("updraft.toml"), MANIFEST).unwrap();
    std::fs::copy(HTTP_ECHO, d.join("echo.wasm")).unwrap();
    let p = |s: &str| format!("public/{s}");
    write(d, &p("index.html"), format!("<h1>{marker}</h1>").as_bytes());
    write(d, &p("about/index.html"), b"<h1>about</h1>");
    write(d, &p("404.html"), b"<h1>no such page</h1>");
    let js = "console.log('fingerprinted asset');\n".repeat(100);
    write(d, &p("assets/app.3f9a1c2b.js"), js.as_bytes());
    write(d, &p("style.css"), b"body { color: red }");
    write(d, &p("style.css.br"), b"pretend brotli bytes");
    write(d, &p("app.wasm"), b"\0asm\x01\0\0\0");
    write(d, &p("data.bin"), &(0..=255u8).collect::<Vec<u8>>());
    write(d, &p(".hidden"), b"never uploaded");
    write(d, &p("odd name é+.txt"), b"odd");
    dir
}

/// A GET that does not follow redirects (the test checks them).
fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut r = client.get(s.url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r
}

async fn fetch(
    s: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Vec<u8>) {
    let r = get(s, path, headers).send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_deploys_with_its_app_and_every_rule_holds_over_http() {
    let s = TestServer::start().await;
    let dir = app("v1");
    let cli = |args: &[&str]| run_cli(&s, args, None);
    let (ok, out, err) = cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}{err}");

    // Files, directories and their index, types and cache headers.
    let (status, h, body) = fetch(&s, "/", &[]).await;
    assert_eq!((status, body.as_slice()), (200, &b"<h1>v1</h1>"[..]));
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    let etag = header(&h, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let (status, h, _) = fetch(&s, "/about", &[]).await;
    assert_eq!((status, header(&h, "location")), (301, "/about/"));
    let (status, _, body) = fetch(&s, "/about/", &[]).await;
    assert_eq!((status, body.as_slice()), (200, &b"<h1>about</h1>"[..]));
    let (_, h, _) = fetch(&s, "/app.wasm", &[]).await;
    assert_eq!(header(&h, "content-type"), "application/wasm");
    // Names with spaces, `+` and non-ASCII, percent-encoded in the URL.
    let (status, _, body) = fetch(&s, "/odd%20name%20%C3%A9+.txt", &[]).await;
    assert_eq!((status, body.as_slice()), (200, &b"odd"[..]));
    // Function routes win over files.
    let (status, _, body) = fetch(&s, "/api/hello", &[]).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("/api/hello"));

    // 304 on a matching ETag; one range; an unsatisfiable one.
    let (status, _, body) = fetch(&s, "/", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (304, 0));
    let (status, h, body) = fetch(&s, "/data.bin", &[("range", "bytes=10-13")]).await;
    assert_eq!((status, body.as_slice()), (206, &[10u8, 11, 12, 13][..]));
    assert_eq!(header(&h, "content-range"), "bytes 10-13/256");
    let (status, h, _) = fetch(&s, "/data.bin", &[("range", "bytes=999-")]).await;
    assert_eq!((status, header(&h, "content-range")), (416, "bytes */256"));

    // Compression: gzip on the fly, a deployed .br sibling, identity when not accepted.
    let js = "/assets/app.3f9a1c2b.js";
    let (status, h, body) = fetch(&s, js, &[("accept-encoding", "gzip")]).await;
    assert_eq!((status, header(&h, "content-encoding")), (200, "gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, "console.log('fingerprinted asset');\n".repeat(100));
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&h, "x-frame-options"), "DENY", "[[site.headers]]");
    assert_eq!(header(&h, "vary"), "Accept-Encoding");
    let (_, h, body) = fetch(&s, js, &[("accept-encoding", "gzip;q=0")]).await;
    assert_eq!((header(&h, "content-encoding"), body.len()), ("", 3600));
    let (_, h, body) = fetch(&s, "/style.css", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(header(&h, "content-encoding"), "br");
    assert_eq!(body, b"pretend brotli bytes");

    // Redirects keep the query; rewrites serve in place; the SPA fallback takes paths without
    // an extension but never hides a missing asset, which gets the 404 page.
    let (status, h, _) = fetch(&s, "/old/a/b?x=1", &[]).await;
    assert_eq!((status, header(&h, "location")), (308, "/new/a/b?x=1"));
    let (status, _, body) = fetch(&s, "/blog/2026/post", &[]).await;
    assert_eq!((status, body.as_slice()), (200, &b"<h1>about</h1>"[..]));
    let (status, _, body) = fetch(&s, "/dashboard/settings", &[]).await;
    assert_eq!((status, body.as_slice()), (200, &b"<h1>v1</h1>"[..]));
    let (status, _, body) = fetch(&s, "/missing.png", &[]).await;
    assert_eq!(
        (status, body.as_slice()),
        (404, &b"<h1>no such page</h1>"[..])
    );
    // Hidden files are not uploaded; paths never climb; only GET and HEAD.
    assert_eq!(fetch(&s, "/.hidden", &[]).await.0, 404);
    // (The client may resolve `%2e%2e` itself; whatever arrives, only site files come back:
    // a refusal, or the SPA's index for an extension-less path.)
    for bad in [
        "/%2e%2e/updraft.toml",
        "/a/%2E%2E/%2E%2E/etc/passwd",
        "/..%5c..%5cupdraft.toml",
    ] {
        let (status, _, body) = fetch(&s, bad, &[]).await;
        assert!(
            status == 400 || status == 404 || body == b"<h1>v1</h1>",
            "{bad}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = s.http.post(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 405);

    // A redeploy uploads only the changed file and makes version 2; one that changes
    // nothing keeps it; rollback brings version 1 back.
    std::fs::write(dir.path().join("public/index.html"), "<h1>v2</h1>").unwrap();
    let (ok, out, err) = cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert_eq!(fetch(&s, "/", &[]).await.2, b"<h1>v2</h1>");
    let (ok, out, err) = cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let shown = s.api_json("/v1/site").await;
    assert_eq!(
        (
            shown["live"].as_u64(),
            shown["versions"].as_array().unwrap().len()
        ),
        (Some(2), 2),
        "{shown}"
    );
    let (ok, out, err) = cli(&["site", "rollback"]);
    assert!(ok && out.contains("1 (live)"), "{out}{err}");
    assert_eq!(fetch(&s, "/", &[]).await.2, b"<h1>v1</h1>");
    s.stop().await;
}

/// Uploads `files` (path → bytes) and deploys them as the site of app `app`.
async fn deploy_site(s: &TestServer, app: &str, files: &[(&str, Vec<u8>)]) -> (u16, Value) {
    let mut site = BTreeMap::new();
    for (path, bytes) in files {
        let digest = hex::encode(Sha256::digest(bytes));
        let r = s
            .api(Method::PUT, &format!("/v1/site/files/{digest}"))
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        site.insert(*path, json!({"digest": digest, "size": bytes.len()}));
    }
    let manifest = format!("[app]\nname = \"{app}\"\n\n[site]\ndir = \"public\"\n");
    let r = s
        .api(Method::POST, "/v1/apps")
        .json(&json!({"manifest": manifest, "artifacts": {}, "site": site}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_swaps_the_whole_site_at_once_under_load() {
    let s = TestServer::start().await;
    let page = |c: u8| vec![c; 2 << 20];
    let (status, body) = deploy_site(
        &s,
        "web",
        &[("/index.html", page(b'a')), ("/b.html", page(b'a'))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Readers of both pages while version 2 goes live: every answer is one version, whole.
    // Each reads version 1 once, then all are released together as the deploy starts, and
    // each reads on until it sees version 2.
    let started = std::sync::Arc::new(tokio::sync::Barrier::new(5));
    let mut readers = Vec::new();
    for path in ["/", "/b.html", "/", "/b.html"] {
        let (http, url, started) = (s.http.clone(), s.url(path), started.clone());
        readers.push(tokio::spawn(async move {
            let read = || async {
                let r = http.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let body = r.bytes().await.unwrap();
                assert_eq!(body.len(), 2 << 20, "a whole page");
                assert!(body.iter().all(|b| *b == body[0]), "one version per answer");
                body[0]
            };
            let mut seen = vec![read().await];
            started.wait().await;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while seen.last() != Some(&b'b') {
                assert!(
                    std::time::Instant::now() < deadline,
                    "version 2 never served"
                );
                seen.push(read().await);
            }
            seen
        }));
    }
    started.wait().await;
    let (status, body) = deploy_site(
        &s,
        "web",
        &[("/index.html", page(b'b')), ("/b.html", page(b'b'))],
    )
    .await;
    assert_eq!(
        (status, body["site_version"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    for r in readers {
        // Version 1 until the swap, version 2 from then on: never back.
        let seen = r.await.unwrap();
        let swap = seen.iter().position(|b| *b == b'b').unwrap();
        assert!(swap > 0, "{seen:?}");
        assert!(seen[..swap].iter().all(|b| *b == b'a'), "{seen:?}");
    }
    assert!(fetch(&s, "/", &[]).await.2.iter().all(|b| *b == b'b'));

    // One site per project; files must be uploaded; the manifest's [site] is checked.
    let (status, body) = deploy_site(&s, "other", &[("/x.html", b"x".to_vec())]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("belongs to app `web`"), "{body}");
    let r = s
        .api(Method::POST, "/v1/apps")
        .json(&json!({"manifest": "[app]\nname = \"web\"\n[site]\ndir = \"public\"\n",
                      "artifacts": {}, "site": {"/x.html": {"digest": "ab".repeat(32), "size": 1}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("was not uploaded"));
    let r = s
        .api(Method::POST, "/v1/apps")
        .json(
            &json!({"manifest": "[app]\nname = \"web\"\n[site]\ndir = \"../etc\"\n",
                      "artifacts": {}, "site": {}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("site.dir"));
    let r = s
        .api(Method::PUT, &format!("/v1/site/files/{}", "ab".repeat(32)))
        .body("not those bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a file must hash to its digest");
    // Deploying the app without [site] takes the site down.
    let r = s
        .api(Method::POST, "/v1/apps")
        .json(&json!({"manifest": "[app]\nname = \"web\"\n", "artifacts": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(fetch(&s, "/b.html", &[]).await.0, 404);
    s.stop().await;
}

/// What a careless or hostile client sends the site API: bad digests, paths that climb, files
/// past the limits, versions that do not exist, and a bad `[sites]` config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_api_refuses_bad_input_clearly() {
    for (text, why) in [
        ("[sites]\nmax_files = 0\n", "sites.max_files"),
        (
            "[sites]\nmax_file_bytes = \"lots\"\n",
            "sites.max_file_bytes",
        ),
        ("[sites]\ncache = 1\n", "cache"),
    ] {
        let err = updraft_server::FileConfig::parse("server.toml", text).unwrap_err();
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
    let s = TestServer::start_with("[sites]\nmax_file_bytes = \"1KiB\"\nmax_files = 2\n").await;
    let api = |method: Method, path: &str| s.api(method, path);
    let status_and_text =
        |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    // Digests that are not SHA-256 hex (one could name a path) and malformed bodies.
    let r = api(Method::POST, "/v1/site/files/missing")
        .json(&json!({"digests": ["../../admin-token"]}))
        .send()
        .await
        .unwrap();
    let (status, text) = status_and_text(r).await;
    assert_eq!(status, 400, "{text}");
    let r = api(Method::POST, "/v1/site/files/missing")
        .json(&json!({"digest": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = api(Method::PUT, "/v1/site/files/not-a-digest")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Past max_file_bytes: refused, and nothing stored under the digest.
    let big = vec![b'x'; 2048];
    let digest = hex::encode(Sha256::digest(&big));
    let r = api(Method::PUT, &format!("/v1/site/files/{digest}"))
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, text) = status_and_text(r).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("max_file_bytes"), "{text}");
    let r = api(Method::POST, "/v1/site/files/missing")
        .json(&json!({"digests": [digest]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["missing"], json!([digest]));
    // Site paths that climb or are not paths; more files than max_files.
    for bad in [
        "/../etc/passwd",
        "no-slash.html",
        "/a//b.html",
        "/a/./b.html",
        "/a\\b.html",
    ] {
        let (status, body) = deploy_site(&s, "web", &[(bad, b"x".to_vec())]).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.to_string().contains("site path"), "{bad}: {body}");
    }
    let three: Vec<(&str, Vec<u8>)> = ["/a.html", "/b.html", "/c.html"]
        .into_iter()
        .map(|p| (p, p.as_bytes().to_vec()))
        .collect();
    let (status, body) = deploy_site(&s, "web", &three).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("max_files"), "{body}");
    // Rollback with no site, to a version that does not exist, with a bad body.
    let r = api(Method::POST, "/v1/site/rollback").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let (status, _) = deploy_site(&s, "web", &three[..1]).await;
    assert_eq!(status, 200);
    let r = api(Method::POST, "/v1/site/rollback")
        .json(&json!({"version": 9}))
        .send()
        .await
        .unwrap();
    let (status, text) = status_and_text(r).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no site version 9"), "{text}");
    let r = api(Method::POST, "/v1/site/rollback")
        .json(&json!({"version": "latest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}
