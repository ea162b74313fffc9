//! `kv-draft`: drives `wasi:keyvalue@0.2.0-draft` (numeric cursors, unsigned counters) from
//! HTTP requests, on the store named by `?store=` (default `default`). See
//! test-programs/README.md.

wit_bindgen::generate!({
    path: "wit",
    world: "guest",
    generate_all,
});

use wasi::keyvalue::{atomics, batch, store};
use wstd::http::{Body, Request, Response, StatusCode};

fn query<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn error(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(m) => format!("other: {m}"),
    }
}

fn answer(status: u16, text: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().to_owned();
    let q = request.uri().query().unwrap_or("").to_owned();
    let mut incoming = request.into_body();
    let body = incoming.contents().await?.to_vec();
    let name = query(&q, "store").unwrap_or("default");
    // `/<mount>/<op>/<key>`: the first segment is the route's, the key may hold `/`.
    let rest = path
        .trim_start_matches('/')
        .split_once('/')
        .map_or("", |(_, r)| r);
    let (op, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket = match store::open(name) {
        Ok(b) => b,
        Err(e) => return Ok(answer(403, format!("open {name}: {}\n", error(&e)))),
    };
    let out = match op {
        "open" => Ok("opened".to_owned()),
        "get" => match bucket.get(key) {
            Ok(Some(v)) => Ok(String::from_utf8_lossy(&v).into_owned()),
            Ok(None) => return Ok(answer(404, "absent".into())),
            Err(e) => Err(error(&e)),
        },
        "set" => bucket.set(key, &body).map(|()| "set".into()).map_err(|e| error(&e)),
        "del" => bucket.delete(key).map(|()| "deleted".into()).map_err(|e| error(&e)),
        "incr" => {
            let by = query(&q, "by").and_then(|b| b.parse().ok()).unwrap_or(1);
            atomics::increment(&bucket, key, by)
                .map(|n| n.to_string())
                .map_err(|e| error(&e))
        }
        "list" => (|| {
            let mut keys = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = bucket.list_keys(cursor).map_err(|e| error(&e))?;
                pages += 1;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Ok(format!("pages={pages}\n{}", keys.join("\n")))
        })(),
        "batch" => (|| {
            let keys: Vec<String> = String::from_utf8_lossy(&body)
                .lines()
                .map(str::to_owned)
                .collect();
            let got = batch::get_many(&bucket, &keys).map_err(|e| error(&e))?;
            Ok(got
                .into_iter()
                .zip(&keys)
                .map(|(v, k)| match v {
                    Some((k, v)) => format!("{k}={}\n", String::from_utf8_lossy(&v)),
                    None => format!("{k} absent\n"),
                })
                .collect())
        })(),
        _ => return Ok(answer(400, format!("unknown operation `{op}`\n"))),
    };
    Ok(match out {
        Ok(text) => answer(200, text),
        Err(e) => answer(500, format!("error: {e}\n")),
    })
}
