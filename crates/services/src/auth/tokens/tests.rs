use std::sync::Arc;

use super::*;
use crate::auth::keys::{Keys, Sealer};

struct Plain;
impl Sealer for Plain {
    fn seal(&self, _: &str, _: &str, value: &str) -> Vec<u8> {
        value.as_bytes().to_vec()
    }
    fn open(&self, _: &str, _: &str, sealed: &[u8]) -> Option<String> {
        String::from_utf8(sealed.to_vec()).ok()
    }
}

fn claims(aud: &str, iss: &str, exp: i64) -> Claims {
    Claims {
        iss: iss.to_owned(),
        sub: "u".to_owned(),
        aud: aud.to_owned(),
        exp,
        iat: 0,
        email: String::new(),
        phone: String::new(),
        role: "authenticated".to_owned(),
        aal: "aal1".to_owned(),
        session_id: "s".to_owned(),
        is_anonymous: false,
        app_metadata: Value::Null,
        user_metadata: Value::Null,
        amr: Vec::new(),
    }
}

#[tokio::test]
async fn tokens_for_another_audience_issuer_time_or_project_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(updraft_store::Store::open(dir.path()).unwrap());
    let keys = Keys::new(store, Arc::new(Plain));
    let p = keys.of("p").await.unwrap();
    let q = keys.of("q").await.unwrap();
    let later = updraft_store::now_ms() / 1000 + 600;
    let good = issue(&p, &claims(AUDIENCE, &issuer("p"), later)).unwrap();
    assert_eq!(verify(&p, "p", &good).unwrap().sub, "u");
    for (what, token, project, keys) in [
        (
            "wrong audience",
            issue(&p, &claims("other", &issuer("p"), later)).unwrap(),
            "p",
            &p,
        ),
        (
            "wrong issuer",
            issue(&p, &claims(AUDIENCE, &issuer("q"), later)).unwrap(),
            "p",
            &p,
        ),
        (
            "expired",
            issue(&p, &claims(AUDIENCE, &issuer("p"), 1)).unwrap(),
            "p",
            &p,
        ),
        ("another project's key", good.clone(), "q", &q),
    ] {
        let e = verify(keys, project, &token).unwrap_err();
        assert_eq!(e.status, 401, "{what}");
    }
}
