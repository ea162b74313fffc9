//! `updraft logs <fn>`: print a function's stored log lines, optionally following new ones as
//! they are written (`-f`, a Server-Sent Events stream from the control API).

use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use reqwest::Method;
use updraft_api::{LogLine, LogList};

use crate::Remote;
use crate::client::Client;
use crate::output::dim;

/// Show a function's logs.
#[derive(clap::Args)]
pub(crate) struct LogsArgs {
    /// The function.
    function: String,
    /// Keep printing new lines as they are written (streamed live).
    #[arg(short, long)]
    follow: bool,
    /// Only lines newer than this (`10m`, `24h`) or since this time (ms since the epoch).
    #[arg(long)]
    since: Option<String>,
    /// Only the lines of this invocation.
    #[arg(long = "request")]
    request_id: Option<String>,
    /// How many of the newest lines to show first.
    #[arg(short = 'n', long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    if let Some(s) = &args.since {
        query.push(("since", s.clone()));
    }
    if let Some(r) = &args.request_id {
        query.push(("request_id", r.clone()));
    }
    if args.follow {
        query.push(("follow", "true".to_owned()));
    }
    let resp = client
        .send(
            client
                .request(
                    Method::GET,
                    &format!("/v1/functions/{}/logs", args.function),
                )
                .query(&query),
        )
        .await?;
    if !args.follow {
        let list: LogList = resp.json().await.context("decoding log lines")?;
        for l in &list.lines {
            print_line(l, args.json)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Server-Sent Events: one `data: <json>` line per log line; comments (`:`) keep it alive.
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.context("reading the log stream")?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw);
            if let Some(data) = text.trim_end().strip_prefix("data: ") {
                let l: LogLine = serde_json::from_str(data).context("decoding a log line")?;
                print_line(&l, args.json)?;
            }
        }
    }
    anyhow::bail!("the server closed the log stream")
}

fn print_line(l: &LogLine, json: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(l)?)?;
    } else {
        let version = l
            .version
            .map_or_else(|| "-".to_owned(), |v| format!("v{v}"));
        writeln!(
            out,
            "{} {} {:>4} {} {}",
            dim(&format_ts(l.ts_ms)),
            dim(&format!("{:<12}", request_column(&l.request_id))),
            dim(&version),
            l.stream,
            escape_controls(&l.line)
        )?;
    }
    // Followers read line by line (tests, `grep --line-buffered`): flush each one.
    out.flush()?;
    Ok(())
}

/// `line` with terminal control characters made visible: a guest's output must not move the
/// cursor, recolour, retitle or clear the operator's terminal (ANSI escape sequences, `\r`,
/// backspace, bell). ESC becomes `\e`, other C0 and C1 controls and DEL `\xNN`; tabs stay.
pub(crate) fn escape_controls(line: &str) -> std::borrow::Cow<'_, str> {
    let is_control = |c: char| (c.is_control() && c != '\t') || c == '\u{7f}';
    if !line.chars().any(is_control) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '\u{1b}' => out.push_str("\\e"),
            c if is_control(c) => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The first 12 characters of a request id, or `-` for a line about the function rather than
/// one invocation.
fn request_column(id: &str) -> String {
    if id.is_empty() {
        "-".to_owned()
    } else {
        id.chars().take(12).collect()
    }
}

/// `HH:MM:SS.mmm` UTC.
fn format_ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3600,
        (day / 60) % 60,
        day % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests;
