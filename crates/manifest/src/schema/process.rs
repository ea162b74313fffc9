//! `runtime`, `handler` and `code`: which kind of code a function runs.
//!
//! A function is a WebAssembly component (`component = "..."`, the default runtime `wasm`) or
//! an AWS Lambda handler run as a native process speaking the Lambda Runtime API:
//!
//! ```toml
//! [[functions]]
//! name = "orders"
//! runtime = "python"          # or "nodejs", or "provided" (an executable `bootstrap`)
//! handler = "app.handler"     # module.function, as on Lambda
//! code = "src"                # a directory or a .zip, relative to updraft.toml
//! ```
//!
//! Process functions have no WebAssembly interfaces, so the grants only components can use
//! (`key_value_stores`, `variables`, `allowed_outbound_hosts`) are refused for them rather than
//! silently ignored, and their instances are always reused (a warm execution environment).

use serde::{Deserialize, Serialize};

use super::{Checker, Step, key};

/// Which kind of code a function runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionRuntime {
    /// A WebAssembly component in the `wasi:http/proxy` world (the default).
    #[default]
    Wasm,
    /// A Python Lambda handler, run by the official runtime interface client (`awslambdaric`).
    Python,
    /// A Node.js Lambda handler.
    Nodejs,
    /// An executable `bootstrap` speaking the Lambda Runtime API itself (a Rust
    /// `lambda_runtime` or Go binary, a custom runtime).
    Provided,
}

impl FunctionRuntime {
    /// The names `runtime = ...` takes.
    pub const NAMES: [&'static str; 4] = ["wasm", "python", "nodejs", "provided"];

    /// `wasm`, `python`, `nodejs` or `provided`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wasm => "wasm",
            Self::Python => "python",
            Self::Nodejs => "nodejs",
            Self::Provided => "provided",
        }
    }

    /// The runtime named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wasm" => Some(Self::Wasm),
            "python" => Some(Self::Python),
            "nodejs" => Some(Self::Nodejs),
            "provided" => Some(Self::Provided),
            _ => None,
        }
    }

    /// Whether it runs as a native process (the Lambda Runtime API) rather than in Wasmtime.
    pub fn is_process(self) -> bool {
        self != Self::Wasm
    }
}

/// The raw fields this module checks, taken from the function's table.
pub(super) struct RawRuntime<'a> {
    pub(super) runtime: Option<&'a str>,
    pub(super) component: Option<&'a str>,
    pub(super) handler: Option<&'a str>,
    pub(super) code: Option<&'a str>,
    pub(super) key_value_stores: bool,
    pub(super) variables: bool,
    pub(super) allowed_outbound_hosts: bool,
    pub(super) instance_reuse: Option<&'a str>,
}

/// What a valid function table says about its code.
pub(super) struct CodeSpec {
    pub(super) runtime: FunctionRuntime,
    pub(super) component: String,
    pub(super) handler: Option<String>,
    pub(super) code: Option<String>,
}

/// Checks `runtime` and the fields that go with it, for function `i`.
pub(super) fn check(c: &mut Checker<'_>, i: usize, raw: &RawRuntime<'_>) -> CodeSpec {
    let at = |k: &str| vec![key("functions"), Step::Index(i), key(k)];
    let runtime = match raw.runtime {
        None => FunctionRuntime::Wasm,
        Some(s) => FunctionRuntime::parse(s).unwrap_or_else(|| {
            c.report(
                &at("runtime"),
                format!(
                    "`{s}` is not a runtime (use one of {})",
                    FunctionRuntime::NAMES.join(", ")
                ),
            );
            FunctionRuntime::Wasm
        }),
    };
    if !runtime.is_process() {
        if raw.component.is_none_or(|p| p.trim().is_empty()) {
            c.report(&at("component"), "must be the path of a .wasm component");
        }
        for (field, set) in [
            ("handler", raw.handler.is_some()),
            ("code", raw.code.is_some()),
        ] {
            if set {
                c.report(
                    &at(field),
                    "only applies to process runtimes (runtime = \"python\", \"nodejs\" or \
                     \"provided\")",
                );
            }
        }
        return CodeSpec {
            runtime,
            component: raw.component.unwrap_or_default().to_owned(),
            handler: None,
            code: None,
        };
    }
    let name = runtime.as_str();
    if raw.component.is_some() {
        c.report(
            &at("component"),
            format!("a `{name}` function has `code` and `handler`, not a component"),
        );
    }
    let handler = match (raw.handler.map(str::trim), runtime) {
        (None, FunctionRuntime::Provided) => None,
        (Some(h), _) if is_handler(h) => Some(h.to_owned()),
        (None, _) => {
            c.report(
                &at("handler"),
                format!("a `{name}` function needs a handler, like \"app.handler\""),
            );
            None
        }
        (Some(h), _) => {
            c.report(
                &at("handler"),
                format!(
                    "`{h}` is not a handler: use `file.function` (a path relative to `code`, \
                     then the exported name), like \"app.handler\""
                ),
            );
            None
        }
    };
    let code = raw.code.unwrap_or(".");
    if code.trim().is_empty() {
        c.report(&at("code"), "must be a directory or a .zip file");
    }
    for (field, set) in [
        ("key_value_stores", raw.key_value_stores),
        ("variables", raw.variables),
        ("allowed_outbound_hosts", raw.allowed_outbound_hosts),
    ] {
        if set {
            c.report(
                &at(field),
                format!(
                    "applies to WebAssembly components only; a `{name}` function reads its \
                     configuration from `env` and `secrets` (see docs/lambda.md)"
                ),
            );
        }
    }
    if raw.instance_reuse == Some("fresh") {
        c.report(
            &at("instance_reuse"),
            "process functions always reuse their execution environment (as on Lambda): \
             leave it out, or use max_reuse to recycle them",
        );
    }
    CodeSpec {
        runtime,
        component: String::new(),
        handler,
        code: Some(code.to_owned()),
    }
}

/// Whether `h` is a handler: `path.function` with a relative path (no `..`, no leading `/`)
/// and a function name of letters, digits and `_` or `$`.
fn is_handler(h: &str) -> bool {
    let Some((path, function)) = h.rsplit_once('.') else {
        return false;
    };
    let path_ok = !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|s| !s.is_empty() && s != "..")
        && path
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '/'));
    let function_ok = !function.is_empty()
        && function
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '$'));
    h.len() <= 128 && path_ok && function_ok
}

#[cfg(test)]
mod tests {
    use super::is_handler;

    #[test]
    fn handlers() {
        for ok in ["app.handler", "src/app.handler", "index.main", "a.b.c"] {
            assert!(is_handler(ok), "{ok}");
        }
        for bad in [
            "app",
            ".handler",
            "app.",
            "/abs/app.h",
            "../up.handler",
            "a b.c",
            "a/.x",
        ] {
            assert!(!is_handler(bad), "{bad}");
        }
    }
}
