//! `updraft logs <fn>`: print a function's stored log lines, optionally following new ones.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use updraft_api::LogList;

use crate::Remote;
use crate::client::Client;
use crate::output::dim;

/// Show a function's logs.
#[derive(clap::Args)]
pub(crate) struct LogsArgs {
    /// The function.
    function: String,
    /// Keep printing new lines as they arrive.
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
    let mut after: Option<i64> = None;
    loop {
        let mut query: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
        if let Some(s) = &args.since {
            query.push(("since", s.clone()));
        }
        if let Some(r) = &args.request_id {
            query.push(("request_id", r.clone()));
        }
        if let Some(a) = after {
            query.push(("after", a.to_string()));
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
        let list: LogList = resp.json().await.context("decoding log lines")?;
        for l in &list.lines {
            if args.json {
                println!("{}", serde_json::to_string(l)?);
            } else {
                println!(
                    "{} {} {} {}",
                    dim(&format_ts(l.ts_ms)),
                    dim(&l.request_id.chars().take(12).collect::<String>()),
                    l.stream,
                    l.line
                );
            }
            after = Some(l.id);
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        if after.is_none() {
            after = Some(0);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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
