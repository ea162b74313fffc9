//! Functions reach the document API with the credential the platform injects
//! (`UPDRAFT_DB_URL`, `UPDRAFT_DB_TOKEN`), through a plain HTTP client (`db-proxy`): scoped to
//! the collections the manifest grants, at `updraft.internal` only under `/_updraft/`, refused
//! when altered, and dead once the function is gone.

use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::DB_PROXY;

use super::call;
use crate::support::{TestServer, expect_error};

const COLLECTIONS: &str = "[[collections]]\nname = \"orders\"\nindexes = [\"n\"]\n\n\
                           [[collections]]\nname = \"users\"\n";

fn app(with_granted: bool) -> String {
    let granted = if with_granted {
        "[[functions]]\nname = \"orders-fn\"\ncomponent = \"p.wasm\"\ncollections = [\"orders\"]\n\
         [[functions.http]]\nroute = \"/collections/...\"\n\n"
    } else {
        ""
    };
    format!(
        "[app]\nname = \"shop\"\n\n{granted}[[functions]]\nname = \"plain\"\ncomponent = \"p.wasm\"\n\
         [[functions.http]]\nroute = \"/plain\"\n\n{COLLECTIONS}"
    )
}

/// A call through a function: `path` on the data plane with `headers`.
fn through(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut req = s.http.request(method, s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

#[tokio::test]
async fn a_function_uses_its_granted_collections_with_the_injected_credential_and_nothing_else() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(DB_PROXY).await;
    s.deploy_ok(&app(true), &[("orders-fn", &digest), ("plain", &digest)])
        .await;

    // Writes and reads of its granted collection, rules not applying.
    let r = through(
        &s,
        Method::PUT,
        "/collections/orders/docs/a",
        &[("content-type", "application/json")],
    )
    .body(r#"{"n": 1}"#)
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = call(
        &s,
        Method::GET,
        "/collections/orders/docs/a",
        Some(&s.token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["data"], json!({"n": 1}));
    let r = through(
        &s,
        Method::GET,
        "/collections/orders/docs?where=n%20%3D%3D%201",
        &[],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["docs"][0]["id"], "a", "{page}");

    // Another collection, existing or not: refused alike (no probing).
    for path in ["/collections/users/docs/x", "/collections/nope/docs/x"] {
        let r = through(&s, Method::GET, path, &[]).send().await.unwrap();
        let e = expect_error(r, 403, "forbidden").await;
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is not granted collection"),
            "{e}"
        );
    }

    // An altered credential, or none, is not the function's.
    let r = through(
        &s,
        Method::GET,
        "/collections/orders/docs/a",
        &[("x-token", "updfn1.e30.AAAA")],
    )
    .send()
    .await
    .unwrap();
    expect_error(r, 401, "unauthorized").await;

    // The platform host serves only the platform's APIs, and only to granted functions.
    let r = through(
        &s,
        Method::GET,
        "/collections/x",
        &[("x-url", "http://updraft.internal/v1/projects")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().starts_with("error: "));
    s.platform_line("orders-fn", "", |l| l.contains("only the platform's APIs"))
        .await;
    let r = through(
        &s,
        Method::GET,
        "/plain",
        &[(
            "x-url",
            "http://updraft.internal/_updraft/db/v1/collections/orders/docs/a",
        )],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 502, "an ungranted function reached the API");
    s.platform_line("plain", "", |l| l.contains("need a grant"))
        .await;
    // A function without the grant has no credential either.
    let r = through(&s, Method::GET, "/plain", &[])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);

    // The credential works from anywhere while its function is served, and stops with it.
    let token = through(&s, Method::GET, "/collections/x", &[("x-echo-token", "1")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(token.starts_with("updfn1."), "{token}");
    let get = || call(&s, Method::GET, "/collections/orders/docs/a", Some(&token)).send();
    assert_eq!(get().await.unwrap().status(), 200);
    // Bulk import is for writing keys only, not a function's credential.
    let r = call(&s, Method::POST, "/collections/orders/import", Some(&token))
        .body("{\"data\": {}}\n")
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    let r = call(&s, Method::GET, "/collections/users/docs/x", Some(&token))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    s.deploy_ok(&app(false), &[("plain", &digest)]).await;
    let e = expect_error(get().await.unwrap(), 401, "unauthorized").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer served"),
        "{e}"
    );
}
