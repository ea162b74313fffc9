//! Route policies (`auth = "user" | "key" | { claims }`) checked by the gateway, and CORS for
//! the routes and the auth API.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use super::{PASSWORD, auth_url, deploy_policies, jwt_part, sign_up};
use crate::support::{TestServer, echo_fields, expect_error};

#[tokio::test]
async fn route_policies_verify_before_the_function_runs() {
    let s = TestServer::start_with("[auth]\naccess_token_ttl = \"2s\"\n").await;
    deploy_policies(&s).await;
    let session = sign_up(&s, "localhost", "cy@example.com").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let get = |path: &str, bearer: Option<&str>| {
        let mut req = s
            .http
            .get(s.url(path))
            .header("x-updraft-user-id", "spoofed");
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        async move { req.send().await.unwrap() }
    };
    // Public: anyone; a client can't claim to be a user.
    let body = get("/open", None).await.text().await.unwrap();
    assert_eq!(echo_fields(&body).get("x-updraft-user-id"), None, "{body}");
    // User: 401 without or with a bad token, the verified user handed over with one.
    let body = expect_error(get("/me", None).await, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signed-in user")
    );
    let resp = get("/me", Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let fields = echo_fields(&resp.text().await.unwrap());
    assert_eq!(fields["x-updraft-user-id"], user_id);
    let claims: Value = serde_json::from_str(&fields["x-updraft-claims"]).unwrap();
    assert_eq!(claims["email"], "cy@example.com");
    // Tampered: a changed payload, a changed signature, `alg: none`, garbage.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = jwt_part(&token, 1);
    payload["role"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let hs256 = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    for (what, t) in [
        ("forged payload", forged.as_str()),
        ("changed signature", bad_sig.as_str()),
        ("alg none", none.as_str()),
        ("alg HS256", hs256.as_str()),
        ("garbage", "not.a.jwt"),
    ] {
        expect_error(get("/me", Some(t)).await, 401, "unauthorized").await;
        expect_error(get("/admin", Some(t)).await, 401, "unauthorized").await;
        let _ = what;
    }
    // Claims: a user without the role gets 403.
    let body = expect_error(get("/admin", Some(&token)).await, 403, "forbidden").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("role"));
    // Key: a project key works and never reaches the guest; a user token does not.
    let resp = get("/ops", Some(&s.token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        echo_fields(&resp.text().await.unwrap())["authorization"],
        "-"
    );
    expect_error(get("/ops", Some(&token)).await, 401, "unauthorized").await;
    // Another project's user is not this project's.
    let created = s
        .api(Method::POST, "/v1/projects")
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let theirs = sign_up(&s, "shop.localhost", "cy@example.com").await;
    assert_eq!(
        jwt_part(theirs["access_token"].as_str().unwrap(), 1)["iss"],
        "updraft:shop"
    );
    expect_error(
        get("/me", theirs["access_token"].as_str()).await,
        401,
        "unauthorized",
    )
    .await;
    // Expired (the server was configured with 2 s tokens).
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let body = expect_error(get("/me", Some(&token)).await, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("xpired"),
        "{body}"
    );
    s.stop().await;
}

/// Browsers may call the auth API and function routes from the origins the project lists;
/// preflights are answered by the gateway; other origins get no CORS headers.
#[tokio::test]
async fn cors_lets_listed_origins_call_routes_and_the_auth_api() {
    let s = TestServer::start().await;
    deploy_policies(&s).await;
    let app = "http://app.test:5173";
    let resp = s
        .api(Method::PUT, "/v1/projects/default/cors")
        .json(&json!({"origins": ["HTTP://APP.TEST:5173"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["cors_origins"],
        json!([app])
    );
    for bad in [
        "app.test",
        "http://app.test/path",
        "ftp://app.test",
        "http://app.test:99999",
    ] {
        let resp = s
            .api(Method::PUT, "/v1/projects/default/cors")
            .json(&json!({ "origins": [bad] }))
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, "bad_request").await;
    }
    // A preflight for the auth API from the app's origin.
    let resp = s
        .http
        .request(Method::OPTIONS, auth_url(&s, "/token?grant_type=password"))
        .header("origin", app)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, apikey")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], app);
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(h["access-control-allow-headers"], "content-type, apikey");
    // The call itself, and a function route, carry the header; another origin gets none.
    let resp = s
        .http
        .post(auth_url(&s, "/signup"))
        .header("origin", app)
        .json(&json!({"email": "fay@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], app);
    let resp = s
        .http
        .get(s.url("/open"))
        .header("origin", app)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], app);
    assert!(
        resp.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-updraft-request-id")
    );
    let resp = s
        .http
        .get(s.url("/open"))
        .header("origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = s
        .http
        .request(Method::OPTIONS, s.url("/open"))
        .header("origin", "http://evil.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    s.stop().await;
}

/// Behind a trusted proxy the rate limits count the client `X-Forwarded-For` names; from
/// anyone else the header is ignored (a client can't dodge its budget by forging it).
#[tokio::test]
async fn rate_limits_follow_forwarded_for_only_from_trusted_proxies() {
    let sign_ins = |s: &TestServer, forwarded: &'static str| {
        let req = s
            .http
            .post(auth_url(s, "/token?grant_type=password"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": "nobody@example.com", "password": "whatever pw"}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // Trusted (the test client connects from 127.0.0.1): each forwarded client has its own
    // budget of 2.
    let s = TestServer::start_with(
        "[auth]\nper_ip_per_minute = 2\nper_account_per_hour = 1000\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .await;
    let mut statuses = Vec::new();
    for client in ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"] {
        statuses.push(sign_ins(&s, client).await);
    }
    assert_eq!(statuses, [400, 400, 429, 400]);
    s.stop().await;
    // Not trusted: forged headers share the connection's budget.
    let s = TestServer::start_with("[auth]\nper_ip_per_minute = 2\nper_account_per_hour = 1000\n")
        .await;
    let mut statuses = Vec::new();
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        statuses.push(sign_ins(&s, client).await);
    }
    assert_eq!(statuses, [400, 400, 429]);
    s.stop().await;
}
