//! Email flows through the development mailbox: confirmation, recovery, magic links, codes,
//! forged hosts and redirects.

use serde_json::{Value, json};

use super::{PASSWORD, auth_url, post, sign_in};
use crate::support::TestServer;

/// The body of the newest message to `to` in the development mailbox.
async fn newest_mail(s: &TestServer, to: &str) -> String {
    let mail = s.api_json(&format!("/v1/auth/mail?to={to}")).await;
    mail["messages"][0]["body"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The link and the code of a mailed message.
fn link_and_code(body: &str) -> (String, String) {
    let link = body
        .lines()
        .find(|l| l.starts_with("http"))
        .unwrap()
        .to_owned();
    let code = body
        .lines()
        .find_map(|l| l.strip_prefix("Or enter this code: "))
        .unwrap()
        .to_owned();
    (link, code)
}

#[tokio::test]
async fn email_confirmation_recovery_and_magic_links_go_through_the_mailbox() {
    let s = TestServer::start_with(
        "[auth]\nconfirm_email = true\nredirect_urls = [\"http://app.test/\"]\n",
    )
    .await;
    // Sign-up answers the user, not a session, until the email is confirmed.
    let resp = post(
        &s,
        "localhost",
        "/signup",
        json!({"email": "gus@example.com", "password": PASSWORD}),
    )
    .await;
    let user: Value = resp.json().await.unwrap();
    assert!(user.get("access_token").is_none(), "{user}");
    assert_eq!(user["email"], "gus@example.com");
    let v: Value = sign_in(&s, "gus@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error_code"], "email_not_confirmed");
    let (link, code) = link_and_code(&newest_mail(&s, "gus@example.com").await);
    assert!(link.contains("type=signup"), "{link}");
    assert_eq!(code.len(), 6);
    // A wrong code is refused; the right one (once) confirms and signs in.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let resp = post(
        &s,
        "localhost",
        "/verify",
        json!({"type": "signup", "email": "gus@example.com", "token": wrong}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let session: Value = post(
        &s,
        "localhost",
        "/verify",
        json!({"type": "signup", "email": "gus@example.com", "token": code}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(session["access_token"].is_string(), "{session}");
    assert!(session["user"]["email_confirmed_at"].is_string());
    let again = post(
        &s,
        "localhost",
        "/verify",
        json!({"type": "signup", "email": "gus@example.com", "token": code}),
    )
    .await;
    assert_eq!(again.status(), 403, "a code works once");
    assert_eq!(sign_in(&s, "gus@example.com", PASSWORD).await.status(), 200);

    // Recovery: the same answer for unknown accounts, and no mail for them.
    for email in ["gus@example.com", "nobody@example.com"] {
        let resp = post(&s, "localhost", "/recover", json!({ "email": email })).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "{}");
    }
    assert_eq!(newest_mail(&s, "nobody@example.com").await, "");
    let (link, _) = link_and_code(&newest_mail(&s, "gus@example.com").await);
    assert!(link.starts_with(&s.data_url), "{link}");
    // Following the link signs in; then the password can be changed.
    let session: Value = s
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap();
    let resp = s
        .http
        .put(auth_url(&s, "/user"))
        .bearer_auth(token)
        .json(&json!({"password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sign_in(&s, "gus@example.com", "a brand new password")
            .await
            .status(),
        200
    );
    assert_eq!(
        s.http.get(&link).send().await.unwrap().status(),
        403,
        "a link works once"
    );

    // A forged Host can't point a recovery link elsewhere.
    let resp = post(
        &s,
        "evil.example",
        "/recover",
        json!({"email": "gus@example.com"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (link, _) = link_and_code(&newest_mail(&s, "gus@example.com").await);
    assert!(!link.contains("evil.example"), "{link}");

    // Magic link with an allowed redirect: the session arrives in the fragment.
    let resp = s
        .http
        .post(auth_url(&s, "/otp?redirect_to=http://app.test/welcome"))
        .json(&json!({"email": "hal@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (link, _) = link_and_code(&newest_mail(&s, "hal@example.com").await);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://app.test/welcome#access_token="),
        "{location}"
    );
    // A redirect not on the list is ignored (no open redirect).
    let resp = s
        .http
        .post(auth_url(&s, "/otp?redirect_to=http://evil.test/"))
        .json(&json!({"email": "hal@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (link, _) = link_and_code(&newest_mail(&s, "hal@example.com").await);
    assert!(!link.contains("evil.test"), "{link}");
    s.stop().await;
}

/// A mail server that accepts every message and keeps its text: enough SMTP for a client
/// that sends without authentication or TLS.
async fn fake_smtp() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = inbox.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut message = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                message.push_str(&l);
                                message.push('\n');
                            }
                            kept.lock().unwrap().push(message);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, inbox)
}

#[tokio::test]
async fn mail_goes_through_the_configured_smtp_server() {
    let (port, inbox) = fake_smtp().await;
    let s = TestServer::start_with(&format!(
        "[auth]\nconfirm_email = true\n[auth.smtp]\nhost = \"127.0.0.1\"\nport = {port}\n\
         security = \"none\"\nfrom = \"Shop <no-reply@shop.test>\"\n"
    ))
    .await;
    let resp = post(
        &s,
        "localhost",
        "/signup",
        json!({"email": "ivy@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let messages = inbox.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert!(m.contains("To: ivy@example.com"), "{m}");
    assert!(m.contains("From: Shop <no-reply@shop.test>"), "{m}");
    assert!(m.contains("Subject: Confirm your email"), "{m}");
    assert!(m.contains("Or enter this code: "), "{m}");
    // Nothing went to the development mailbox.
    assert_eq!(newest_mail(&s, "ivy@example.com").await, "");
    s.stop().await;
}
