//! Host capabilities are granted per function, deny by default: an interface a function was not
//! granted is absent from its imports, so a component that imports it cannot be deployed as
//! that function; granted, it works and sees only its own function's grant.

use updraft_test_guests::{CONFIG_READER, HTTP_ECHO};

use crate::support::{TestServer, manifest};

#[tokio::test]
async fn config_is_granted_by_variables_and_absent_without_them() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(CONFIG_READER).await;

    // Not granted: the deploy fails naming the import and how to grant it; nothing is served.
    let (status, body) = s
        .deploy(
            &manifest("app", "reader", &["/config/..."], ""),
            &[("reader", &digest)],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_component", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("wasi:config/store") && message.contains("variables"),
        "{message}"
    );
    assert_eq!(s.get("/config/region").await.status(), 404);

    // Granted: the guest reads its variables.
    s.deploy_ok(
        &manifest(
            "app",
            "reader",
            &["/config/..."],
            "variables = { region = \"eu-west\", \"api.url\" = \"https://example.com\" }",
        ),
        &[("reader", &digest)],
    )
    .await;
    let resp = s.get("/config/region").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "region=eu-west\n");
    let resp = s.get("/config/missing").await;
    assert_eq!(resp.text().await.unwrap(), "missing unset\n");

    // An empty table grants the interface with nothing in it.
    s.deploy_ok(
        &manifest("app", "reader", &["/config/..."], "variables = {}"),
        &[("reader", &digest)],
    )
    .await;
    assert_eq!(
        s.get("/config/region").await.text().await.unwrap(),
        "region unset\n"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_function_sees_only_its_own_variables() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(CONFIG_READER).await;
    let echo = s.upload_guest(HTTP_ECHO).await;
    let text = "[app]\nname = \"app\"\n\
        [[functions]]\nname = \"a\"\ncomponent = \"a.wasm\"\nvariables = { secret = \"a's\" }\n\
        [[functions.http]]\nroute = \"/a/...\"\n\
        [[functions]]\nname = \"b\"\ncomponent = \"b.wasm\"\nvariables = { other = \"b's\" }\n\
        [[functions.http]]\nroute = \"/b/...\"\n\
        [[functions]]\nname = \"plain\"\ncomponent = \"plain.wasm\"\n\
        [[functions.http]]\nroute = \"/plain\"\n";
    s.deploy_ok(text, &[("a", &digest), ("b", &digest), ("plain", &echo)])
        .await;
    // The guest's path is the route's full path: `/a/<anything>` lists every key.
    assert_eq!(s.get("/a/x").await.text().await.unwrap(), "secret=a's\n");
    assert_eq!(s.get("/b/x").await.text().await.unwrap(), "other=b's\n");
    // A component that does not import the interface deploys without the grant as before.
    assert_eq!(s.get("/plain").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn bad_variable_names_are_manifest_errors() {
    let s = TestServer::start().await;
    let digest = s.upload_guest(CONFIG_READER).await;
    let (status, body) = s
        .deploy(
            &manifest(
                "app",
                "reader",
                &[],
                "variables = { \"no spaces\" = \"x\" }",
            ),
            &[("reader", &digest)],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_manifest", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("variables"),
        "{body}"
    );
    s.stop().await;
}
