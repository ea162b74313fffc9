//! `updraft invoke <fn>`: call a function directly through the control API.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use reqwest::Method;

use crate::Remote;
use crate::client::Client;

/// Invoke a function and print its response body.
#[derive(clap::Args)]
#[command(disable_version_flag = true)]
pub(crate) struct InvokeArgs {
    /// The function.
    function: String,
    /// Request body.
    #[arg(short, long, conflicts_with = "data_file")]
    data: Option<String>,
    /// Read the request body from a file (`-` for stdin).
    #[arg(long)]
    data_file: Option<PathBuf>,
    /// HTTP method the function sees.
    #[arg(short = 'X', long, default_value = "POST")]
    method: String,
    /// Path (and query) the function sees.
    #[arg(long, default_value = "/")]
    path: String,
    /// Request header `name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// A client context for the handler (JSON, e.g. `{"custom": {"k": "v"}}`): Lambda's
    /// `ClientContext`, sent base64 in `X-Amz-Client-Context`; process functions read it as
    /// `context.client_context`. Synchronous invokes only, as on Lambda.
    #[arg(long, value_name = "JSON")]
    client_context: Option<String>,
    /// Run this version instead of the one `live` picks.
    #[arg(long, conflicts_with = "alias")]
    version: Option<u32>,
    /// Run the version this alias picks instead of `live`'s.
    #[arg(long)]
    alias: Option<String>,
    /// Print status and headers before the body.
    #[arg(short, long)]
    include: bool,
    /// Print `{status, headers, body}` as JSON.
    #[arg(long)]
    json: bool,
    /// Queue the invoke and return at once with its id (see `updraft async <id>`); the body
    /// is delivered as a CloudEvent, with retries.
    #[arg(long = "async", conflicts_with_all = ["version", "alias", "include", "client_context"])]
    asynchronous: bool,
    /// With `--async`: a retry with the same key returns the first invoke instead of
    /// queueing another.
    #[arg(long, requires = "asynchronous")]
    idempotency_key: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let body = match (&args.data, &args.data_file) {
        (Some(d), _) => d.clone().into_bytes(),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading stdin")?;
            buf
        }
        (None, Some(p)) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        (None, None) => Vec::new(),
    };
    if args.asynchronous {
        return submit_async(&client, &args, body).await;
    }
    let mut req = client
        .request(
            Method::POST,
            &format!("/v1/functions/{}/invoke", args.function),
        )
        .query(&[
            ("method", args.method.as_str()),
            ("path", args.path.as_str()),
        ])
        .body(body);
    if let Some(v) = args.version {
        req = req.query(&[("version", v.to_string())]);
    }
    if let Some(a) = &args.alias {
        req = req.query(&[("alias", a.as_str())]);
    }
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("header `{h}` must look like `name: value`"))?;
        req = req.header(k.trim(), v.trim());
    }
    if let Some(cc) = &args.client_context {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(cc)
            .context("--client-context must be a JSON object")?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(cc);
        req = req.header("x-amz-client-context", encoded);
    }
    let resp = req
        .send()
        .await
        .context("cannot reach the Updraft control API")?;
    let status = resp.status();
    let is_api_error = resp.headers().get("x-updraft-function").is_none();
    if is_api_error && !status.is_success() {
        return Err(crate::client::api_error(resp).await);
    }
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.context("reading the response")?;
    if args.json {
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
            .collect();
        let out = serde_json::json!({
            "status": status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&bytes),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut stdout = std::io::stdout().lock();
        if args.include {
            writeln!(stdout, "{status}")?;
            for (k, v) in &headers {
                writeln!(stdout, "{k}: {}", v.to_str().unwrap_or("<binary>"))?;
            }
            writeln!(stdout)?;
        }
        stdout.write_all(&bytes)?;
        stdout.flush()?;
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn submit_async(
    client: &Client,
    args: &InvokeArgs,
    body: Vec<u8>,
) -> anyhow::Result<ExitCode> {
    let mut req = client
        .request(
            Method::POST,
            &format!("/v1/functions/{}/invocations?async=true", args.function),
        )
        .body(body);
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("header `{h}` must look like `name: value`"))?;
        req = req.header(k.trim(), v.trim());
    }
    if let Some(k) = &args.idempotency_key {
        req = req.header(updraft_api::headers::IDEMPOTENCY_KEY, k);
    }
    let resp = client.send(req).await?;
    let replayed = resp.headers().contains_key("idempotent-replayed");
    let inv: updraft_api::AsyncInvocation = resp.json().await.context("decoding the answer")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inv)?);
    } else if replayed {
        println!(
            "{} (already submitted with this key: {})",
            inv.id,
            inv.status.as_str()
        );
    } else {
        println!("{}", inv.id);
    }
    Ok(ExitCode::SUCCESS)
}
