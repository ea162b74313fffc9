//! `thumbnailer`: runs on every image uploaded to the `uploads` bucket (`[[functions.bucket]]`),
//! reads it with the bearer credential the platform gives it (`buckets = ["uploads:read",
//! "thumbs:write"]`), scales it to fit 160×160 and stores the PNG in `thumbs` under the same
//! key plus `.png`. The event is the AWS S3 event record a Lambda handler would read.
//!
//! A failure answers 500, so the platform retries the event and, past its attempts, moves it
//! to the dead-letter queue; a file that is not an image answers 200 (retrying would not help)
//! and says why in the log.

use wstd::http::{Body, Client, Method, Request, Response, StatusCode};

/// The largest side of a thumbnail.
const SIDE: u32 = 160;

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let mut body = request.into_body();
    let event = body.contents().await?.to_vec();
    Ok(match thumbnail(&event).await {
        Ok(msg) => reply(StatusCode::OK, msg),
        Err(msg) => {
            eprintln!("{msg}");
            reply(StatusCode::INTERNAL_SERVER_ERROR, msg)
        }
    })
}

async fn thumbnail(event: &[u8]) -> Result<String, String> {
    let event: serde_json::Value =
        serde_json::from_slice(event).map_err(|e| format!("not an S3 event: {e}"))?;
    let record = &event["Records"][0];
    let bucket = record["s3"]["bucket"]["name"].as_str().unwrap_or_default();
    let key = decode_key(record["s3"]["object"]["key"].as_str().unwrap_or_default());
    let (status, bytes) = storage(
        Method::GET,
        &format!("/buckets/{bucket}/objects/{key}"),
        Vec::new(),
    )
    .await?;
    if status != StatusCode::OK {
        return Err(format!("reading {bucket}/{key}: {status}"));
    }
    let image = match image::load_from_memory(&bytes) {
        Ok(i) => i,
        Err(e) => {
            println!("{key} is not an image this example reads (PNG, JPEG, GIF): {e}");
            return Ok("skipped\n".into());
        }
    };
    let thumb = image.thumbnail(SIDE, SIDE);
    let mut png = std::io::Cursor::new(Vec::new());
    thumb
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| format!("encoding the thumbnail: {e}"))?;
    let out = format!("/buckets/thumbs/objects/{key}.png");
    let (status, text) = storage(Method::PUT, &out, png.into_inner()).await?;
    if !status.is_success() {
        return Err(format!(
            "writing thumbs/{key}.png: {status} {}",
            String::from_utf8_lossy(&text)
        ));
    }
    println!(
        "{key}: {}x{} -> {}x{}",
        image.width(),
        image.height(),
        thumb.width(),
        thumb.height()
    );
    Ok(format!("thumbs/{key}.png\n"))
}

/// A call to the platform's object API with the function's bearer credential.
async fn storage(
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Vec<u8>), String> {
    let base = std::env::var("UPDRAFT_STORAGE_URL")
        .map_err(|_| "no UPDRAFT_STORAGE_URL: grant `buckets`")?;
    let token = std::env::var("UPDRAFT_STORAGE_TOKEN").unwrap_or_default();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-length", body.len());
    if !body.is_empty() {
        req = req.header("content-type", "image/png");
    }
    let req = req.body(Body::from(body)).map_err(|e| e.to_string())?;
    let resp = Client::new()
        .send(req)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let mut b = resp.into_body();
    let bytes = b.contents().await.map_err(|e| format!("{e:?}"))?.to_vec();
    Ok((status, bytes))
}

/// S3 event keys are form-encoded (`+` for a space, `%XX`); object paths take them
/// percent-encoded, so only `+` needs turning back into `%20`.
fn decode_key(key: &str) -> String {
    key.replace('+', "%20")
}

fn reply(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r
}
