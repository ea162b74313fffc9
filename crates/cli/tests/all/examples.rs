//! `examples/thumbnails` end to end, as a browser would use it: `updraft deploy` builds its two
//! components from source and publishes its page; the page's API hands out a presigned PUT;
//! the upload (preflight and PUT from the page's origin) lands in `uploads`; the triggered
//! `thumbnailer` writes a 160-pixel PNG to `thumbs`; the API lists and serves it.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::support::{TestServer, run_cli};

/// Copies the example's sources (not its build output) to `to`, sharing its `target` so the
/// build reuses what is compiled there.
fn copy_example(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "target" {
            continue;
        }
        if src.is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_example(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The width and height in a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let at = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (at(16), at(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thumbnails_example_uploads_triggers_and_lists() {
    let s = TestServer::start().await;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/thumbnails");
    let dir = tempfile::tempdir().unwrap();
    copy_example(&example, dir.path());
    let target = example.join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("target")).unwrap();
    // This server's listeners instead of `updraft up`'s defaults.
    let page_origin = s.url("").trim_end_matches('/').to_owned();
    let manifest = std::fs::read_to_string(dir.path().join("updraft.toml"))
        .unwrap()
        .replace("http://127.0.0.1:3002", &s.s3_url)
        .replace("\"http://127.0.0.1:3000\"", &format!("\"{page_origin}\""));
    std::fs::write(dir.path().join("updraft.toml"), manifest).unwrap();
    let (ok, out, err) = run_cli(&s, &["deploy", dir.path().to_str().unwrap()], None);
    assert!(ok, "{out}{err}");

    let page = s.http.get(s.url("/")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("<h1>Thumbnails</h1>"));

    let r = s
        .http
        .post(s.url("/api/uploads?name=sample.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let upload: Value = r.json().await.unwrap();
    let (key, url) = (
        upload["key"].as_str().unwrap().to_owned(),
        upload["url"].as_str().unwrap().to_owned(),
    );
    assert!(
        url.starts_with(&s.s3_url) && url.contains("X-Amz-Signature="),
        "{url}"
    );
    // What the browser does: a preflight, then the PUT, both from the page's origin.
    let r = s
        .http
        .request(Method::OPTIONS, &url)
        .header("origin", &page_origin)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let sample = std::fs::read(example.join("sample.png")).unwrap();
    let r = s
        .http
        .put(&url)
        .header("origin", &page_origin)
        .header("content-type", "image/png")
        .body(sample)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        page_origin.as_str()
    );

    let thumb = format!("{key}.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list: Value = s
            .http
            .get(s.url("/api/thumbs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list.as_array().unwrap().iter().any(|t| t["key"] == thumb) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no thumbnail: {list} {}",
            s.api_json("/v1/functions/thumbnailer/logs?limit=50").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s
        .http
        .get(s.url(&format!("/api/thumbs/{thumb}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    assert_eq!(png_size(&png), (160, 120), "320x240 scaled to fit 160x160");
    s.stop().await;
}
