//! `[site]`: the app's static files, uploaded with it and served on the project's host where no
//! function route matches; and `[[buckets]]`, the buckets the app declares (made or updated at
//! deploy: `public_read`, `cors_origins`).
//!
//! ```toml
//! [site]
//! dir = "public"            # the files, relative to updraft.toml
//! spa = true                # unknown paths without an extension get /index.html
//! not_found = "404.html"    # the page for a miss (default: 404.html if the site has one)
//!
//! [[site.redirects]]
//! from = "/docs/*"          # an exact path, or a prefix ending in `*`
//! to = "/manual/:splat"     # `:splat` is what `*` matched; may be an http(s) URL
//! status = 301              # 301 (default), 302, 303, 307 or 308
//!
//! [[site.rewrites]]
//! from = "/app/*"
//! to = "/app/index.html"    # served in place, the URL unchanged
//!
//! [[site.headers]]
//! for = "/assets/*"
//! values = { "x-frame-options" = "DENY" }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::collections::Problems;
use crate::error::Step;

/// Most rules of each kind.
pub const MAX_SITE_RULES: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSite {
    dir: String,
    #[serde(default)]
    spa: bool,
    not_found: Option<String>,
    #[serde(default)]
    redirects: Vec<RawRule>,
    #[serde(default)]
    rewrites: Vec<RawRule>,
    #[serde(default)]
    headers: Vec<RawHeaders>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    from: String,
    to: String,
    status: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaders {
    #[serde(rename = "for")]
    path: String,
    values: BTreeMap<String, String>,
}

/// A validated `[site]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// `dir = "public"`: the directory holding the files, relative to the manifest.
    pub dir: String,
    /// `spa = true`: a `GET` or `HEAD` of a path with no file extension that matches no file gets
    /// `/index.html` (200) instead of a miss.
    #[serde(default)]
    pub spa: bool,
    /// `not_found = "404.html"`: the page a miss gets, with status 404 (`None`: `404.html`
    /// if the site has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<String>,
    /// `[[site.redirects]]`, checked in order before files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<SiteRule>,
    /// `[[site.rewrites]]`, checked in order after redirects (for paths no file matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<SiteRule>,
    /// `[[site.headers]]`: extra response headers for matching paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<SiteHeaders>,
}

/// A redirect or rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRule {
    /// An exact path, or a prefix ending in `*`.
    pub from: String,
    /// Where to: a path (`:splat` replaced by what `*` matched), or for a redirect an
    /// `http(s)://` URL.
    pub to: String,
    /// The redirect's status (301, 302, 303, 307, 308); 200 for a rewrite.
    pub status: u16,
}

/// Headers for the paths a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteHeaders {
    /// An exact path, or a prefix ending in `*`.
    pub path: String,
    /// Header names (lower case) and values.
    pub values: BTreeMap<String, String>,
}

impl SiteRule {
    /// Where `path` goes under this rule, if the rule matches it.
    pub fn apply(&self, path: &str) -> Option<String> {
        let splat = pattern_match(&self.from, path)?;
        Some(self.to.replace(":splat", splat))
    }
}

impl SiteHeaders {
    /// Whether these headers apply to `path`.
    pub fn matches(&self, path: &str) -> bool {
        pattern_match(&self.path, path).is_some()
    }
}

/// What `*` matched if `pattern` matches `path` (`""` for an exact match).
fn pattern_match<'a>(pattern: &str, path: &'a str) -> Option<&'a str> {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.strip_prefix(prefix),
        None => (pattern == path).then_some(""),
    }
}

/// Whether `dir` is a relative path that stays inside the app's directory.
fn is_inside(dir: &str) -> bool {
    let p = std::path::Path::new(dir);
    !dir.is_empty()
        && p.is_relative()
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

/// Checks a rule pattern: starts with `/`, `*` only at the end.
fn check_pattern(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("`{p}` must start with `/`"));
    }
    if p.trim_end_matches('*').contains('*') || p.ends_with("**") {
        return Err(format!("`{p}`: `*` may only end a pattern"));
    }
    if p.len() > 1024 {
        return Err("at most 1024 bytes".to_owned());
    }
    Ok(())
}

fn is_header_name(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(crate) fn validate(raw: Option<RawSite>) -> (Option<Site>, Problems) {
    let mut problems: Problems = Vec::new();
    let Some(raw) = raw else {
        return (None, problems);
    };
    let at = |k: &str| vec![Step::Key("site".into()), Step::Key(k.into())];
    let at_rule = |table: &str, i: usize, k: &str| {
        vec![
            Step::Key("site".into()),
            Step::Key(table.into()),
            Step::Index(i),
            Step::Key(k.into()),
        ]
    };
    if !is_inside(&raw.dir) {
        problems.push((
            at("dir"),
            format!(
                "`{}` must be a relative directory inside the app (no `..`)",
                raw.dir
            ),
        ));
    }
    if let Some(p) = &raw.not_found
        && (!is_inside(p) || p.ends_with('/'))
    {
        problems.push((
            at("not_found"),
            format!("`{p}` must be a file of the site (relative, no `..`)"),
        ));
    }
    for (table, rules) in [("redirects", &raw.redirects), ("rewrites", &raw.rewrites)] {
        if rules.len() > MAX_SITE_RULES {
            problems.push((at(table), format!("at most {MAX_SITE_RULES} rules")));
        }
        for (i, r) in rules.iter().enumerate() {
            if let Err(e) = check_pattern(&r.from) {
                problems.push((at_rule(table, i, "from"), e));
            }
            let url = r.to.starts_with("http://") || r.to.starts_with("https://");
            if !(r.to.starts_with('/') || (url && table == "redirects")) {
                problems.push((
                    at_rule(table, i, "to"),
                    format!(
                        "`{}` must be a path starting with `/`{}",
                        r.to,
                        if table == "redirects" {
                            " or an http(s) URL"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            match (table, r.status) {
                ("redirects", Some(301 | 302 | 303 | 307 | 308) | None) => {}
                ("redirects", Some(s)) => problems.push((
                    at_rule(table, i, "status"),
                    format!("{s} is not a redirect status (301, 302, 303, 307, 308)"),
                )),
                (_, Some(_)) => problems.push((
                    at_rule(table, i, "status"),
                    "a rewrite has no status (it serves the target in place)".to_owned(),
                )),
                _ => {}
            }
        }
    }
    for (i, h) in raw.headers.iter().enumerate() {
        if let Err(e) = check_pattern(&h.path) {
            problems.push((at_rule("headers", i, "for"), e));
        }
        for (k, v) in &h.values {
            if !is_header_name(k) || http_value_invalid(v) {
                problems.push((
                    at_rule("headers", i, "values"),
                    format!("`{k}: {v}` is not a valid header"),
                ));
            }
        }
    }
    let rules = |rules: Vec<RawRule>, default: u16| {
        rules
            .into_iter()
            .map(|r| SiteRule {
                from: r.from,
                to: r.to,
                status: r.status.unwrap_or(default),
            })
            .collect()
    };
    let site = Site {
        dir: raw.dir,
        spa: raw.spa,
        not_found: raw.not_found,
        redirects: rules(raw.redirects, 301),
        rewrites: rules(raw.rewrites, 200),
        headers: raw
            .headers
            .into_iter()
            .map(|h| SiteHeaders {
                path: h.path,
                values: h
                    .values
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            })
            .collect(),
    };
    (Some(site), problems)
}

fn http_value_invalid(v: &str) -> bool {
    v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// One `[[buckets]]` table: a bucket the app declares, made (or updated) at deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDecl {
    /// `name = "uploads"`.
    pub name: String,
    /// `public_read = true`: anyone may GET its objects.
    #[serde(default)]
    pub public_read: bool,
    /// `cors_origins = ["https://app.example"]`: browser origins (`*`, or one `*` wildcard in
    /// each) that may GET, PUT, POST, DELETE and HEAD with any header, seeing `ETag`. Empty:
    /// the bucket's CORS rules are left as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors_origins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBucket {
    name: String,
    #[serde(default)]
    public_read: bool,
    #[serde(default)]
    cors_origins: Vec<String>,
}

pub(crate) fn validate_buckets(raw: Vec<RawBucket>) -> (Vec<BucketDecl>, Problems) {
    let mut problems: Problems = Vec::new();
    let mut out: Vec<BucketDecl> = Vec::new();
    for (i, b) in raw.into_iter().enumerate() {
        let at = |k: &str| {
            vec![
                Step::Key("buckets".into()),
                Step::Index(i),
                Step::Key(k.into()),
            ]
        };
        if let Err(e) = updraft_api::check_bucket_name(&b.name) {
            problems.push((at("name"), e));
        } else if out.iter().any(|o| o.name == b.name) {
            problems.push((at("name"), format!("`{}` is declared twice", b.name)));
        }
        for o in &b.cors_origins {
            let ok = o == "*"
                || ((o.starts_with("http://") || o.starts_with("https://"))
                    && o.matches('*').count() <= 1
                    && !o.contains(char::is_whitespace));
            if !ok {
                problems.push((
                    at("cors_origins"),
                    format!("`{o}` is not `*` or an http(s) origin (one `*` allowed)"),
                ));
            }
        }
        out.push(BucketDecl {
            name: b.name,
            public_read: b.public_read,
            cors_origins: b.cors_origins,
        });
    }
    (out, problems)
}
