//! The hello example: a `wasi:http/proxy` component written with `wstd`.
//!
//! `GET /hello` answers `Hello, world!`; `GET /hello/<name>` answers `Hello, <name>!`. The
//! greeting word comes from the `GREETING` environment variable set in `updraft.toml`.

use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_owned());
    let name = request
        .uri()
        .path()
        .strip_prefix("/hello/")
        .filter(|n| !n.is_empty())
        .unwrap_or("world")
        .to_owned();
    println!("greeting {name}");
    Ok(Response::new(Body::from(format!("{greeting}, {name}!\n"))))
}
