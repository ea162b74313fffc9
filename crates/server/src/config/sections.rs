//! Small sections of the configuration file and their defaults: `[tracing]`, `[pricing]`'s
//! default table, `[pool]`, `[auth]`, and `[projects] base_domain`'s check.

use updraft_api::Prices;

/// Where spans are exported (`[tracing]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingConfig {
    /// OTLP/HTTP traces endpoint (`http://host:4318/v1/traces`); `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "updraft".to_owned(),
        }
    }
}

/// The default price table: AWS Lambda's x86 list prices in us-east-1 (per request and per
/// GB-second), without the free tier.
pub fn default_prices() -> Prices {
    Prices {
        per_million_requests: 0.20,
        per_gb_second: 0.000_016_666_7,
        free_requests: 0,
        free_gb_seconds: 0.0,
        currency: "USD".to_owned(),
        source: "AWS Lambda x86 list prices, us-east-1 (override in [pricing])".to_owned(),
    }
}

/// Settings of the pooling instance allocator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// `Some(false)`: on-demand allocation; `None`: probe the machine.
    pub enabled: Option<bool>,
    /// Instances alive at once.
    pub max_instances: u32,
    /// Bytes of each linear memory kept mapped between instances (reset with `memset` rather
    /// than `madvise`, which avoids page faults and cross-core TLB shootdowns on reuse).
    pub memory_keep_resident: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            enabled: None,
            max_instances: 1_000,
            memory_keep_resident: 64 << 10,
        }
    }
}

/// A base domain, lower-cased, if it is one.
pub(super) fn base_domain(d: &str) -> Option<String> {
    updraft_registry::domain_name(d.trim().trim_matches('.'))
}

/// `[auth]`, over the defaults `d`.
pub(super) fn auth(
    a: &super::raw::RawAuth,
    d: &updraft_services::auth::AuthConfig,
) -> Result<updraft_services::auth::AuthConfig, String> {
    let duration = |key: &str, v: &Option<String>, default: std::time::Duration| match v {
        None => Ok(default),
        Some(s) => match updraft_manifest::parse_duration(s) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("auth.{key}: must be more than 0")),
            Err(e) => Err(format!("auth.{key}: {e}")),
        },
    };
    let at_least_one = |key: &str, v: Option<u32>, default: u32| match v {
        Some(0) => Err(format!("auth.{key}: must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    Ok(updraft_services::auth::AuthConfig {
        access_token_ttl: duration("access_token_ttl", &a.access_token_ttl, d.access_token_ttl)?,
        refresh_reuse_grace: duration(
            "refresh_reuse_grace",
            &a.refresh_reuse_grace,
            d.refresh_reuse_grace,
        )?,
        signup_enabled: a.signup.unwrap_or(d.signup_enabled),
        anonymous_enabled: a.anonymous.unwrap_or(d.anonymous_enabled),
        min_password_length: a.min_password_length.unwrap_or(d.min_password_length),
        per_ip_per_minute: at_least_one(
            "per_ip_per_minute",
            a.per_ip_per_minute,
            d.per_ip_per_minute,
        )?,
        per_account_per_hour: at_least_one(
            "per_account_per_hour",
            a.per_account_per_hour,
            d.per_account_per_hour,
        )?,
        confirm_email: a.confirm_email.unwrap_or(d.confirm_email),
        otp_ttl: duration("otp_ttl", &a.otp_ttl, d.otp_ttl)?,
        smtp: a.smtp.as_ref().map(smtp).transpose()?,
        oidc: a
            .oidc
            .iter()
            .flatten()
            .map(oidc)
            .collect::<Result<_, _>>()?,
        redirect_urls: match &a.redirect_urls {
            None => d.redirect_urls.clone(),
            Some(urls) => {
                for u in urls {
                    if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() < 10 {
                        return Err(format!(
                            "auth.redirect_urls: `{u}` is not an http(s) URL prefix"
                        ));
                    }
                }
                urls.clone()
            }
        },
    })
}

/// `[auth.smtp]`. The password comes from a file (`password_file`, read now) or an
/// environment variable (`password_env`), never from the config file itself.
fn smtp(s: &super::raw::RawSmtp) -> Result<updraft_services::auth::mail::SmtpConfig, String> {
    use updraft_services::auth::mail::{SmtpConfig, SmtpSecurity};
    let security = match s.security.as_deref().unwrap_or("starttls") {
        "tls" => SmtpSecurity::Tls,
        "starttls" => SmtpSecurity::StartTls,
        "none" => SmtpSecurity::None,
        other => {
            return Err(format!(
                "auth.smtp.security: `{other}` is not one of tls, starttls, none"
            ));
        }
    };
    let port = s.port.unwrap_or(match security {
        SmtpSecurity::Tls => 465,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::None => 25,
    });
    if s.host.trim().is_empty() {
        return Err("auth.smtp.host: must be a host name".to_owned());
    }
    let password = match (&s.password_file, &s.password_env) {
        (Some(_), Some(_)) => {
            return Err("auth.smtp: give password_file or password_env, not both".to_owned());
        }
        (Some(f), None) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("auth.smtp.password_file: {f}: {e}"))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        (None, Some(v)) => {
            Some(std::env::var(v).map_err(|_| format!("auth.smtp.password_env: ${v} is not set"))?)
        }
        (None, None) => None,
    };
    let credentials = match (&s.username, password) {
        (Some(u), Some(p)) => Some((u.clone(), p)),
        (None, None) => None,
        _ => return Err("auth.smtp: username and a password go together".to_owned()),
    };
    let config = SmtpConfig {
        host: s.host.trim().to_owned(),
        port,
        security,
        credentials,
        from: s.from.clone(),
    };
    // Checks `from` (and TLS setup) now rather than at the first message.
    updraft_services::auth::mail::Smtp::new(&config)?;
    Ok(config)
}

/// `[auth] trusted_proxies`.
pub(super) fn trusted_proxies(a: &super::raw::RawAuth) -> Result<Vec<super::Cidr>, String> {
    a.trusted_proxies
        .iter()
        .flatten()
        .map(|s| super::Cidr::parse(s).map_err(|e| format!("auth.trusted_proxies: {e}")))
        .collect()
}

/// `[[auth.oidc]]`: a provider. The client secret comes from a file or an environment
/// variable, never from the config file itself.
fn oidc(o: &super::raw::RawOidc) -> Result<updraft_services::auth::OidcProvider, String> {
    let at = |key: &str| format!("auth.oidc `{}`: {key}", o.name);
    if o.name.is_empty()
        || !o
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!(
            "auth.oidc: name `{}` must be letters, digits and '-'",
            o.name
        ));
    }
    if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
        return Err(format!(
            "{}: `{}` is not an http(s) URL",
            at("issuer"),
            o.issuer
        ));
    }
    let secret = match (&o.client_secret_file, &o.client_secret_env) {
        (Some(f), None) => std::fs::read_to_string(f)
            .map_err(|e| format!("{}: {f}: {e}", at("client_secret_file")))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        (None, Some(v)) => {
            std::env::var(v).map_err(|_| format!("{}: ${v} is not set", at("client_secret_env")))?
        }
        _ => return Err(at("give client_secret_file or client_secret_env (one)")),
    };
    Ok(updraft_services::auth::OidcProvider {
        name: o.name.clone(),
        issuer: o.issuer.trim_end_matches('/').to_owned(),
        client_id: o.client_id.clone(),
        client_secret: secret,
        scopes: o
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]),
    })
}
