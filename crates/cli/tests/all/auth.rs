//! End-user auth: sign-up and sign-in in Supabase Auth's shapes, refresh rotation and reuse
//! detection, sign-out, identical answers for unknown accounts, rate limits, route policies
//! (tampered, expired, `alg: none`, foreign and other-project tokens refused; the verified
//! user handed to the guest), the admin API, and a token verified by PyJWT from the JWKS URL.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use updraft_test_guests::{HTTP_ECHO, PY_CLIENTS};

use crate::support::{TestServer, expect_error};

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) fn auth_url(s: &TestServer, path: &str) -> String {
    s.url(&format!("/_updraft/auth/v1{path}"))
}

/// POSTs to the auth API with `Host: host` (`localhost`: the host the URL names, as clients
/// send it).
pub(crate) async fn post(s: &TestServer, host: &str, path: &str, body: Value) -> reqwest::Response {
    let mut req = s.http.post(auth_url(s, path));
    if host != "localhost" {
        req = req.header("host", host);
    }
    req.json(&body).send().await.unwrap()
}

pub(crate) async fn sign_up(s: &TestServer, host: &str, email: &str) -> Value {
    let resp = post(
        s,
        host,
        "/signup",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

pub(super) async fn sign_in(s: &TestServer, email: &str, password: &str) -> reqwest::Response {
    post(
        s,
        "localhost",
        "/token?grant_type=password",
        json!({"email": email, "password": password}),
    )
    .await
}

async fn refresh(s: &TestServer, token: &str) -> reqwest::Response {
    post(
        s,
        "localhost",
        "/token?grant_type=refresh_token",
        json!({ "refresh_token": token }),
    )
    .await
}

/// The JSON of a JWT's `part` (0: header, 1: payload).
pub(super) fn jwt_part(token: &str, part: usize) -> Value {
    let segment = token.split('.').nth(part).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

#[tokio::test]
async fn sign_up_sign_in_refresh_rotation_and_sign_out() {
    let s = TestServer::start_with("[auth]\nrefresh_reuse_grace = \"1s\"\n").await;
    let session = sign_up(&s, "localhost", "Ada@Example.com").await;
    // GoTrue's session shape, with an ES256 access token.
    for key in [
        "access_token",
        "refresh_token",
        "expires_in",
        "expires_at",
        "user",
    ] {
        assert!(session.get(key).is_some(), "no {key}: {session}");
    }
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["user"]["email"], "ada@example.com");
    assert_eq!(session["user"]["aud"], "authenticated");
    let access = session["access_token"].as_str().unwrap();
    let header = jwt_part(access, 0);
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    let claims = jwt_part(access, 1);
    assert_eq!(claims["sub"], session["user"]["id"]);
    assert_eq!(claims["aud"], "authenticated");
    assert_eq!(claims["iss"], "updraft:default");
    assert_eq!(claims["role"], "authenticated");
    assert!(claims["session_id"].is_string());
    // The email is taken now.
    let again = post(
        &s,
        "localhost",
        "/signup",
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(again.status(), 422);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error_code"], "user_already_exists");

    // Wrong password and unknown account: the same answer.
    let wrong = sign_in(&s, "ada@example.com", "wrong password!").await;
    let unknown = sign_in(&s, "nobody@example.com", "wrong password!").await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        wrong.text().await.unwrap(),
        unknown.text().await.unwrap(),
        "the answers tell accounts apart"
    );
    let signed_in: Value = sign_in(&s, "ADA@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = signed_in["access_token"].as_str().unwrap().to_owned();

    // GET /user with the token.
    let me: Value = s
        .http
        .get(auth_url(&s, "/user"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.com");
    let resp = s.http.get(auth_url(&s, "/user")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Refresh: a new pair each time; the used one works again only within the grace window.
    let r0 = signed_in["refresh_token"].as_str().unwrap().to_owned();
    let first: Value = refresh(&s, &r0).await.json().await.unwrap();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r0, r1);
    assert_eq!(
        jwt_part(first["access_token"].as_str().unwrap(), 1)["session_id"],
        jwt_part(&token, 1)["session_id"]
    );
    assert_eq!(
        refresh(&s, &r0).await.status(),
        200,
        "a second tab within the grace window"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let reused = refresh(&s, &r0).await;
    assert_eq!(reused.status(), 400);
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["error_code"], "refresh_token_already_used");
    // The whole family is gone: the newest token of that session no longer works.
    assert_eq!(refresh(&s, &r1).await.status(), 400);
    assert_eq!(refresh(&s, "not-a-token").await.status(), 400);

    // Sign-out everywhere: every session's refresh token stops working.
    let a: Value = sign_in(&s, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let b: Value = sign_in(&s, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let resp = s
        .http
        .post(auth_url(&s, "/logout?scope=local"))
        .bearer_auth(a["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        refresh(&s, a["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    let b2: Value = refresh(&s, b["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let resp = s
        .http
        .post(auth_url(&s, "/logout"))
        .bearer_auth(b2["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        refresh(&s, b2["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );

    // Anonymous users, later linked to an email.
    let anon: Value = post(&s, "localhost", "/signup", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(anon["user"]["is_anonymous"], true);
    let linked: Value = s
        .http
        .put(auth_url(&s, "/user"))
        .bearer_auth(anon["access_token"].as_str().unwrap())
        .json(&json!({"email": "anon@example.com", "password": PASSWORD, "data": {"plan": "free"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(linked["is_anonymous"], false);
    assert_eq!(linked["user_metadata"]["plan"], "free");
    assert_eq!(
        sign_in(&s, "anon@example.com", PASSWORD).await.status(),
        200
    );

    // Bad input is named.
    for (path, body, code) in [
        (
            "/signup",
            json!({"email": "not-an-email", "password": PASSWORD}),
            "validation_failed",
        ),
        (
            "/signup",
            json!({"email": "x@example.com", "password": "short"}),
            "weak_password",
        ),
        (
            "/signup",
            json!({"email": "x@example.com"}),
            "validation_failed",
        ),
        ("/token?grant_type=magic", json!({}), "validation_failed"),
    ] {
        let resp = post(&s, "localhost", path, body).await;
        assert!(resp.status().is_client_error(), "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error_code"], code, "{path}: {v}");
    }
    // A body past the auth API's 64 KiB, and one that is not JSON, are refused before any
    // work is done for them.
    let huge = json!({"email": "big@example.com", "password": "p".repeat(100 << 10)});
    for body in [huge.to_string(), "{not json".to_owned()] {
        let resp = s
            .http
            .post(auth_url(&s, "/signup"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error_code"], "validation_failed", "{v}");
    }
    assert!(
        s.api_json("/v1/users").await["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["email"] != "big@example.com")
    );
    s.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_alike_for_every_account() {
    let s = TestServer::start_with("[auth]\nper_account_per_hour = 3\nper_ip_per_minute = 1000\n")
        .await;
    sign_up(&s, "localhost", "bea@example.com").await;
    for email in ["bea@example.com", "ghost@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(
                sign_in(&s, email, "wrong password!")
                    .await
                    .status()
                    .as_u16(),
            );
        }
        assert_eq!(statuses, [400, 400, 400, 429], "{email}");
    }
    // The right password is refused too once the account's budget is spent.
    let resp = sign_in(&s, "bea@example.com", PASSWORD).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error_code"], "over_request_rate_limit");
    s.stop().await;
    let s = TestServer::start_with("[auth]\nper_ip_per_minute = 3\n").await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let email = format!("user{i}@example.com");
        let resp = post(
            &s,
            "localhost",
            "/signup",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    s.stop().await;
}

/// A token from `/token` verifies with a standard library using only the JWKS URL; one signed
/// with another key, or for another audience, does not pass our gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_tokens_from_the_jwks_url_and_foreign_tokens_are_refused() {
    let Some(python) = PY_CLIENTS else {
        eprintln!("skipped: no python3 to run PyJWT");
        return;
    };
    let s = TestServer::start().await;
    deploy_policies(&s).await;
    let session = sign_up(&s, "localhost", "dee@example.com").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let jwks = auth_url(&s, "/.well-known/jwks.json");
    let script = r#"
import json, sys, jwt
from cryptography.hazmat.primitives.asymmetric import ec
url, token = sys.argv[1], sys.argv[2]
key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key, algorithms=["ES256"], audience="authenticated", issuer="updraft:default")
# A token we could not have issued: signed correctly, by another key, under our key's id.
other = ec.generate_private_key(ec.SECP256R1())
kid = jwt.get_unverified_header(token)["kid"]
foreign = jwt.encode(dict(claims), other, algorithm="ES256", headers={"kid": kid})
print(json.dumps({"sub": claims["sub"], "foreign": foreign}))
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", script, &jwks, &token])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sub"], session["user"]["id"]);
    let resp = s
        .http
        .get(s.url("/me"))
        .bearer_auth(v["foreign"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "unauthorized").await;
    // After a key rotation old tokens still verify, new ones use the new key, and both keys
    // are published.
    let rotated: Value = s
        .api(Method::POST, "/v1/auth/keys/rotate")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = rotated["kid"].as_str().unwrap();
    let keys: Value = s
        .http
        .get(&jwks)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let resp = s
        .http
        .get(s.url("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let fresh = sign_in(&s, "dee@example.com", PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        jwt_part(fresh["access_token"].as_str().unwrap(), 0)["kid"],
        kid
    );
    s.stop().await;
}

#[tokio::test]
async fn owners_list_disable_and_delete_users() {
    let s = TestServer::start().await;
    deploy_policies(&s).await;
    let session = sign_up(&s, "localhost", "eve@example.com").await;
    let id = session["user"]["id"].as_str().unwrap().to_owned();
    let list = s.api_json("/v1/users").await;
    assert_eq!(list["users"][0]["email"], "eve@example.com");
    let shown = s.api_json("/v1/users/eve@example.com").await;
    assert_eq!(shown["id"], id.as_str());
    // Disabling ends its sessions and refuses its sign-ins (with the usual answer).
    let resp = s
        .api(Method::POST, &format!("/v1/users/{id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        refresh(&s, session["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    let resp = sign_in(&s, "eve@example.com", PASSWORD).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error_code"], "invalid_credentials");
    s.api(Method::POST, &format!("/v1/users/{id}/enable"))
        .send()
        .await
        .unwrap();
    let again: Value = sign_in(&s, "eve@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let resp = s
        .api(Method::POST, &format!("/v1/users/{id}/revoke-sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(
        refresh(&s, again["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    let resp = s
        .api(Method::DELETE, &format!("/v1/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = s
        .api(Method::GET, &format!("/v1/users/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "user_not_found").await;
    // A viewer may not read users; the audit log has the changes.
    let audit = s.api_json("/v1/audit").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.disable",
        "user.enable",
        "user.revoke_sessions",
        "user.delete",
    ] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    s.stop().await;
}

/// Deploys the echo guest with a route per policy.
pub(super) async fn deploy_policies(s: &TestServer) {
    let digest = s.upload_guest(HTTP_ECHO).await;
    let manifest = "[app]\nname = \"app\"\n[[functions]]\nname = \"echo\"\ncomponent = \"e.wasm\"\n\
        [[functions.http]]\nroute = \"/open\"\n\
        [[functions.http]]\nroute = \"/me\"\nauth = \"user\"\n\
        [[functions.http]]\nroute = \"/admin\"\nauth = { claims = { role = [\"admin\"] } }\n\
        [[functions.http]]\nroute = \"/ops\"\nauth = \"key\"\n";
    s.deploy_ok(manifest, &[("echo", &digest)]).await;
}

mod email;
mod oidc;
mod routes;

/// Supabase's own auth client (`@supabase/auth-js`) signs up, signs out, signs in, reads the
/// user, refreshes, updates metadata and verifies its token with `getClaims` (from the JWKS)
/// against Updraft with only the URL changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supabase_auth_js_works_with_only_the_url_changed() {
    let Some(dir) = updraft_test_guests::JS_CLIENTS else {
        eprintln!("skipped: npm was not available to install @supabase/auth-js");
        return;
    };
    let s = TestServer::start().await;
    let out = tokio::process::Command::new("node")
        .current_dir(dir)
        .args([
            "supabase-auth.mjs",
            &auth_url(&s, ""),
            "jo@example.com",
            PASSWORD,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["signed_up"], "jo@example.com");
    assert_eq!(seen["wrong_password"]["code"], "invalid_credentials");
    assert_eq!(seen["same_user"], true);
    assert_eq!(seen["rotated"], true);
    assert_eq!(seen["plan"], "pro");
    assert_eq!(seen["claims_sub"], seen["user_id"]);
    // The user it made is the project's.
    let users = s.api_json("/v1/users").await;
    assert_eq!(users["users"][0]["email"], "jo@example.com");
    s.stop().await;
}
