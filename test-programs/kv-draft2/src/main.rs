//! `kv-draft2`: drives `wasi:keyvalue@0.2.0-draft2` from HTTP requests, one operation per
//! path, on the store named by `?store=` (default `default`). See test-programs/README.md.

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

/// A CAS loop: read, add one, swap; again on conflict. Returns the value written.
fn cas_increment(bucket: &store::Bucket, key: &str) -> Result<u64, String> {
    let mut cas = atomics::Cas::new(bucket, key).map_err(|e| error(&e))?;
    loop {
        let current = cas.current().map_err(|e| error(&e))?;
        let n: u64 = current
            .map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0))
            .unwrap_or(0);
        match atomics::swap(cas, (n + 1).to_string().as_bytes()) {
            Ok(()) => return Ok(n + 1),
            Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
            Err(atomics::CasError::StoreError(e)) => return Err(error(&e)),
        }
    }
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
    // The benchmark's reference: the same guest, no key-value calls.
    if op == "noop" {
        return Ok(answer(200, "ok".into()));
    }
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
        // The benchmark's load: one get and one set.
        "touch" => (|| {
            let old = bucket.get(key).map_err(|e| error(&e))?;
            bucket.set(key, &body).map_err(|e| error(&e))?;
            Ok(format!("had {} bytes", old.map_or(0, |v| v.len())))
        })(),
        "set" => bucket.set(key, &body).map(|()| "set".into()).map_err(|e| error(&e)),
        "del" => bucket.delete(key).map(|()| "deleted".into()).map_err(|e| error(&e)),
        "exists" => bucket.exists(key).map(|b| b.to_string()).map_err(|e| error(&e)),
        "incr" => {
            let by = query(&q, "by").and_then(|b| b.parse().ok()).unwrap_or(1);
            atomics::increment(&bucket, key, by)
                .map(|n| n.to_string())
                .map_err(|e| error(&e))
        }
        "cas-incr" => cas_increment(&bucket, key).map(|n| n.to_string()),
        // Read a CAS handle, let "someone else" write, then swap: must fail.
        "cas-race" => (|| {
            let cas = atomics::Cas::new(&bucket, key).map_err(|e| error(&e))?;
            bucket.set(key, b"interfered").map_err(|e| error(&e))?;
            match atomics::swap(cas, &body) {
                Ok(()) => Ok("swapped".to_owned()),
                Err(atomics::CasError::CasFailed(fresh)) => Ok(format!(
                    "cas-failed, now {}",
                    String::from_utf8_lossy(&fresh.current().ok().flatten().unwrap_or_default())
                )),
                Err(atomics::CasError::StoreError(e)) => Err(error(&e)),
            }
        })(),
        "list" => (|| {
            let mut keys = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = bucket.list_keys(cursor.as_deref()).map_err(|e| error(&e))?;
                pages += 1;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Ok(format!("pages={pages}\n{}", keys.join("\n")))
        })(),
        // Body: `k=v` lines; set them all, then get them and `missing`.
        "batch" => (|| {
            let text = String::from_utf8_lossy(&body).into_owned();
            let pairs: Vec<(String, Vec<u8>)> = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
                .collect();
            batch::set_many(&bucket, &pairs).map_err(|e| error(&e))?;
            let mut keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
            keys.push("missing".into());
            let got = batch::get_many(&bucket, &keys).map_err(|e| error(&e))?;
            batch::delete_many(&bucket, &keys[..1]).map_err(|e| error(&e))?;
            Ok(got
                .into_iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={}\n", String::from_utf8_lossy(&v)),
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
