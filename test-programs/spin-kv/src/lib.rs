//! `spin-kv`: a component built with the Spin SDK (Rust `spin-sdk` 5.2), using Spin's
//! key-value store and variables exactly as a Spin app would. See test-programs/README.md.

use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::{Error, Store};

fn open(label: &str) -> Result<Store, String> {
    let opened = if label == "default" {
        Store::open_default()
    } else {
        Store::open(label)
    };
    opened.map_err(|e| match e {
        Error::AccessDenied => "access-denied".to_owned(),
        Error::NoSuchStore => "no-such-store".to_owned(),
        Error::StoreTableFull => "store-table-full".to_owned(),
        Error::Other(m) => format!("other: {m}"),
    })
}

fn text(status: u16, body: String) -> Response {
    Response::builder().status(status).body(body).build()
}

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    // `/<mount>/...`: the first segment is the route's.
    let full = req.path().to_owned();
    let path = full
        .trim_start_matches('/')
        .split_once('/')
        .map_or(String::new(), |(_, r)| format!("/{r}"));
    let label = req
        .query()
        .split('&')
        .find_map(|kv| kv.strip_prefix("store="))
        .unwrap_or("default")
        .to_owned();
    if let Some(name) = path.strip_prefix("/var/") {
        return Ok(match spin_sdk::variables::get(name) {
            Ok(v) => text(200, v),
            Err(e) => text(404, format!("{e:?}")),
        });
    }
    let store = match open(&label) {
        Ok(s) => s,
        Err(e) => return Ok(text(403, e)),
    };
    let key = path.trim_start_matches("/kv/");
    Ok(match (req.method(), path.as_str()) {
        (Method::Get, "/keys") => text(200, store.get_keys()?.join("\n")),
        (Method::Get, _) => match store.get(key)? {
            Some(v) => text(200, String::from_utf8_lossy(&v).into_owned()),
            None => text(404, "absent".into()),
        },
        (Method::Put, _) => {
            store.set(key, req.body())?;
            text(200, format!("exists={}", store.exists(key)?))
        }
        (Method::Delete, _) => {
            store.delete(key)?;
            text(200, format!("exists={}", store.exists(key)?))
        }
        _ => text(405, "method".into()),
    })
}
