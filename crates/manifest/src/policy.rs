//! Route policies: who may call a route (`auth = ...` on `[[functions.http]]`).
//!
//! ```toml
//! [[functions.http]]
//! route = "/admin/..."
//! auth = { claims = { role = ["admin"], "app_metadata.plan" = "pro" } }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutePolicy {
    /// Anyone (the default).
    #[default]
    Public,
    /// A signed-in end user of the project: a valid access token from its auth API.
    User,
    /// A caller with an API key of the project (`updraft key create`).
    Key,
    /// A signed-in end user whose token's claims match: each claim (a dotted path into the
    /// token, like `app_metadata.plan`) must equal one of the listed values.
    Claims(BTreeMap<String, Vec<String>>),
}

impl RoutePolicy {
    /// Whether this is the default.
    pub fn is_public(&self) -> bool {
        *self == Self::Public
    }

    /// Whether a verified user's `claims` (the token's JSON) satisfy the policy; `None` if it
    /// does, else the first claim that did not match.
    pub fn unmet<'a>(&'a self, claims: &Value) -> Option<&'a str> {
        let Self::Claims(wanted) = self else {
            return None;
        };
        wanted.iter().find_map(|(path, allowed)| {
            let found = path
                .split('.')
                .try_fold(claims, |v, k| v.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            let ok = found.is_some_and(|f| allowed.contains(&f));
            (!ok).then_some(path.as_str())
        })
    }

    /// Reads `auth = ...` from the manifest; `Err` says what is wrong.
    pub(crate) fn parse(v: &toml::Value) -> Result<Self, String> {
        const HINT: &str =
            "use \"public\", \"user\", \"key\" or { claims = { role = [\"admin\"] } }";
        match v {
            toml::Value::String(s) => match s.as_str() {
                "public" => Ok(Self::Public),
                "user" => Ok(Self::User),
                "key" => Ok(Self::Key),
                other => Err(format!("`{other}` is not a route policy: {HINT}")),
            },
            toml::Value::Table(t) => {
                if let Some(k) = t.keys().find(|k| *k != "claims") {
                    return Err(format!("unknown key `{k}` in a route policy: {HINT}"));
                }
                let Some(toml::Value::Table(claims)) = t.get("claims") else {
                    return Err(format!("a route policy table needs `claims`: {HINT}"));
                };
                if claims.is_empty() {
                    return Err(
                        "`claims` names no claim (use \"user\" for any signed-in user)".into(),
                    );
                }
                let mut out = BTreeMap::new();
                for (name, allowed) in claims {
                    if name.is_empty() || name.split('.').any(str::is_empty) {
                        return Err(format!("`{name}` is not a claim path"));
                    }
                    let values: Vec<String> = match allowed {
                        toml::Value::String(s) => vec![s.clone()],
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<_>>()
                            .ok_or_else(|| format!("claim `{name}`: values must be strings"))?,
                        toml::Value::Boolean(b) => vec![b.to_string()],
                        _ => return Err(format!("claim `{name}`: a string or a list of strings")),
                    };
                    if values.is_empty() {
                        return Err(format!("claim `{name}` lists no value"));
                    }
                    out.insert(name.clone(), values);
                }
                Ok(Self::Claims(out))
            }
            _ => Err(format!("not a route policy: {HINT}")),
        }
    }
}

#[cfg(test)]
mod tests;
