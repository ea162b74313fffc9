//! Who invoked, as Lambda tells a handler: `Lambda-Runtime-Client-Context` and
//! `Lambda-Runtime-Cognito-Identity` on `invocation/next`, read by runtime clients into
//! `context.client_context` and `context.identity`.
//!
//! - The client context is the caller's, given to a direct invoke in `X-Amz-Client-Context`
//!   (base64 JSON, at most 3,583 bytes) exactly as on Lambda's Invoke API; as on Lambda, only
//!   synchronous invokes carry it.
//! - The identity is Updraft's verified end user (an HTTP route's JWT), in the place Lambda
//!   puts a Cognito identity pool's: `cognitoIdentityId` is the user's id (`sub`),
//!   `cognitoIdentityPoolId` is `updraft:<project>`.
//!
//! Both go out as JSON with every non-ASCII character escaped, since a header value is
//! ASCII.

use base64::Engine as _;
use http::HeaderMap;
use serde_json::{Value, json};

/// Lambda's header for the client context on `Invoke`.
pub(crate) const CLIENT_CONTEXT: &str = "x-amz-client-context";
/// Lambda's limit on it, base64 included.
pub(crate) const MAX_CLIENT_CONTEXT: usize = 3583;

/// The client context of a direct invoke, as the JSON text the runtime gets; `Err` names what
/// is wrong with it.
pub(crate) fn client_context(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(raw) = headers.get(CLIENT_CONTEXT) else {
        return Ok(None);
    };
    let raw = raw.as_bytes();
    if raw.len() > MAX_CLIENT_CONTEXT {
        return Err(format!(
            "X-Amz-Client-Context is {} bytes; at most {MAX_CLIENT_CONTEXT} are allowed",
            raw.len()
        ));
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| format!("X-Amz-Client-Context is not base64: {e}"))?;
    let value: Value = serde_json::from_slice(&json)
        .map_err(|e| format!("X-Amz-Client-Context is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("X-Amz-Client-Context must be a JSON object".into());
    }
    Ok(Some(ascii_json(&value)))
}

/// The verified end user of an HTTP request (`x-updraft-user-id`, set by the gateway only),
/// as a Cognito identity.
pub(crate) fn cognito_identity(headers: &HeaderMap, project: &str) -> Option<String> {
    let user = headers.get("x-updraft-user-id")?;
    let user = String::from_utf8_lossy(user.as_bytes());
    Some(ascii_json(&json!({
        "cognitoIdentityId": user,
        "cognitoIdentityPoolId": format!("updraft:{project}"),
    })))
}

/// Compact JSON with every non-ASCII character as a `\u` escape (outside strings JSON is
/// ASCII already).
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CLIENT_CONTEXT, value.parse().unwrap());
        h
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn a_client_context_is_decoded_and_kept_ascii() {
        assert_eq!(client_context(&HeaderMap::new()), Ok(None));
        let got = client_context(&with(&b64(r#"{"custom": {"who": "Zoë 🦀"}}"#)))
            .unwrap()
            .unwrap();
        assert!(got.is_ascii(), "{got}");
        assert!(http::HeaderValue::from_str(&got).is_ok());
        let back: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(back["custom"]["who"], "Zoë 🦀");
    }

    #[test]
    fn a_bad_client_context_is_refused_naming_the_problem() {
        let err = |v: &str| client_context(&with(v)).unwrap_err();
        assert!(err("not base64!").contains("not base64"));
        assert!(err(&b64("{oops")).contains("not JSON"));
        assert!(err(&b64("[1, 2]")).contains("JSON object"));
        let big = b64(&format!(r#"{{"custom": {{"x": "{}"}}}}"#, "a".repeat(3000)));
        assert!(err(&big).contains("at most 3583"));
    }

    #[test]
    fn the_verified_user_is_the_cognito_identity() {
        assert_eq!(cognito_identity(&HeaderMap::new(), "p"), None);
        let mut h = HeaderMap::new();
        h.insert("x-updraft-user-id", "user-1".parse().unwrap());
        let got: Value = serde_json::from_str(&cognito_identity(&h, "shop").unwrap()).unwrap();
        assert_eq!(
            got,
            json!({"cognitoIdentityId": "user-1", "cognitoIdentityPoolId": "updraft:shop"})
        );
    }
}
