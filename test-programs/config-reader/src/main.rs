//! `config-reader`: answers with the `wasi:config/store` value of the key in its path
//! (`GET /config/<key>` → `<key>=<value>`, or `<key> unset`), and `GET /config` with every
//! key. It imports `wasi:config/store`, so it deploys only as a function granted `variables`.

wit_bindgen::generate!({
    path: "wit",
    world: "reader",
    generate_all,
});

use wasi::config::store;
use wstd::http::{Body, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().to_owned();
    let text = match path.strip_prefix("/config/") {
        Some(key) => match store::get(key) {
            Ok(Some(value)) => format!("{key}={value}\n"),
            Ok(None) => format!("{key} unset\n"),
            Err(e) => format!("error: {e:?}\n"),
        },
        None => match store::get_all() {
            Ok(all) => all
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>(),
            Err(e) => format!("error: {e:?}\n"),
        },
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}
