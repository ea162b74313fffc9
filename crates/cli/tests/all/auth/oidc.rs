//! Sign-in with OpenID Connect against a real provider (node-oidc-provider, from npm): the
//! browser's round trip through its login and consent pages with PKCE, state and nonce; the
//! identity linked to one user; forged states refused.

use std::process::{Child, Command};

use serde_json::Value;

use super::auth_url;
use crate::support::TestServer;

/// The provider process, killed when dropped.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A browser: curl with a cookie jar in `dir`, following nothing by itself, filling in the
/// provider's login (as `login`) and consent pages, stopping at the first URL that starts
/// with `until`.
fn browse(dir: &std::path::Path, start: String, until: &str, login: &str) -> String {
    let jar = dir.join("cookies.txt");
    let body = dir.join("page.html");
    let step = |url: &str, form: Option<&str>| -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.arg("-s")
            .arg("-b")
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code} %{redirect_url}"]);
        if let Some(f) = form {
            cmd.args(["-d", f]);
        }
        let out = cmd.arg(url).output().expect("running curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (code, location) = text.split_once(' ').unwrap_or((&text, ""));
        (code.parse().unwrap_or(0), location.to_owned())
    };
    let mut url = start;
    for _ in 0..20 {
        if url.starts_with(until) {
            return url;
        }
        let (code, location) = step(&url, None);
        if (300..400).contains(&code) {
            url = location;
            continue;
        }
        assert_eq!(
            code,
            200,
            "GET {url}; the provider said: {}",
            std::fs::read_to_string(dir.join("provider.log")).unwrap_or_default()
        );
        // An interaction page: log in, or give consent, on its own URL.
        let html = std::fs::read_to_string(&body).unwrap();
        let form = if html.contains("name=\"prompt\" value=\"login\"") {
            format!("prompt=login&login={login}&password=any")
        } else {
            "prompt=consent".to_owned()
        };
        let (code, location) = step(&url, Some(&form));
        assert!((300..400).contains(&code), "POST {url}: {code}");
        url = location;
    }
    panic!("the sign-in never came back to {until}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_round_trip_against_a_real_provider() {
    let Some(dir) = updraft_test_guests::JS_CLIENTS else {
        eprintln!("skipped: npm was not available to install oidc-provider");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("client-secret");
    std::fs::write(&secret, "test-secret\n").unwrap();
    let port = free_port();
    let s = TestServer::start_with(&format!(
        "[[auth.oidc]]\nname = \"test\"\nissuer = \"http://127.0.0.1:{port}\"\n\
         client_id = \"updraft\"\nclient_secret_file = \"{}\"\nscopes = [\"openid\", \"email\"]\n",
        secret.display()
    ))
    .await;
    let callback = auth_url(&s, "/callback");
    // Its output goes to files: a pipe closed early would make its next line kill it.
    let child = Command::new("node")
        .current_dir(dir)
        .args(["oidc-provider.mjs", &port.to_string(), &callback])
        .stdout(std::fs::File::create(tmp.path().join("provider.out")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("provider.log")).unwrap())
        .spawn()
        .unwrap();
    let mut provider = Provider(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(tmp.path().join("provider.out"))
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            provider.0.try_wait().unwrap().is_none(),
            "the provider exited: {}",
            std::fs::read_to_string(tmp.path().join("provider.log")).unwrap_or_default()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the provider never got ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let sign_in = || async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http
            .get(auth_url(&s, "/authorize?provider=test"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let to_provider = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            to_provider.contains("code_challenge_method=S256"),
            "{to_provider}"
        );
        assert!(to_provider.contains("nonce="), "{to_provider}");
        let back = browse(tmp.path(), to_provider, &callback, "alice");
        let session: Value = http.get(&back).send().await.unwrap().json().await.unwrap();
        (session, back)
    };
    let (session, back) = sign_in().await;
    assert!(session["access_token"].is_string(), "{session}");
    assert_eq!(session["user"]["email"], "alice@example.com");
    assert_eq!(session["user"]["app_metadata"]["provider"], "test");
    // The same identity signs in as the same user; the code and state work once.
    let (again, _) = sign_in().await;
    assert_eq!(again["user"]["id"], session["user"]["id"]);
    expect_error_gotrue(
        s.http.get(&back).send().await.unwrap(),
        403,
        "bad_oauth_state",
    )
    .await;
    // A forged state, an unknown provider.
    let forged = auth_url(&s, "/callback?code=abc&state=forged");
    expect_error_gotrue(
        s.http.get(&forged).send().await.unwrap(),
        403,
        "bad_oauth_state",
    )
    .await;
    let unknown = auth_url(&s, "/authorize?provider=nope");
    expect_error_gotrue(
        s.http.get(&unknown).send().await.unwrap(),
        400,
        "provider_not_found",
    )
    .await;
    let users = s.api_json("/v1/users").await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    s.stop().await;
}

/// Checks a GoTrue-shaped error answer.
async fn expect_error_gotrue(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status().as_u16(), status);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error_code"], code, "{v}");
}
