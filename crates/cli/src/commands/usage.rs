//! `updraft usage` (invocations, errors, GB-seconds, billed duration and estimated cost, per
//! function and per hour or day, plus quotas) and `updraft invocations <fn>` (the metering
//! records of single invocations).

use std::process::ExitCode;

use reqwest::Method;
use updraft_api::{InvocationList, UsageFigures, UsageReport};

use crate::Remote;
use crate::client::Client;
use crate::output::{self, bold, dim};

/// Show usage and estimated cost.
#[derive(clap::Args)]
pub(crate) struct UsageArgs {
    /// Only this function.
    #[arg(long)]
    function: Option<String>,
    /// How far back (`24h`, `7d`) or since when (ms since the epoch).
    #[arg(long, default_value = "24h")]
    since: String,
    /// Also break usage down per hour or day (UTC).
    #[arg(long, value_parser = ["hour", "day"])]
    by: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn usage(args: UsageArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let mut query = vec![("since", args.since.clone())];
    if let Some(f) = &args.function {
        query.push(("function", f.clone()));
    }
    if let Some(b) = &args.by {
        query.push(("by", b.clone()));
    }
    let report: UsageReport = client
        .send(client.request(Method::GET, "/v1/usage").query(&query))
        .await?
        .json()
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let currency = &report.prices.currency;
    let header = [
        "FUNCTION",
        "INVOCATIONS",
        "ERRORS",
        "COLD",
        "BILLED",
        "GB-SECONDS",
        "EST. COST",
        "DATA READS",
        "DATA WRITES",
    ];
    let row = |name: String, u: &UsageFigures| {
        vec![
            name,
            u.invocations.to_string(),
            u.errors.to_string(),
            u.cold_starts.to_string(),
            format!("{:.1}s", u.billed_ms as f64 / 1000.0),
            format!("{:.3}", u.gb_seconds),
            cost(u.estimated_cost, currency),
            u.data_reads.to_string(),
            u.data_writes.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = report
        .functions
        .iter()
        .map(|f| row(f.function.clone(), &f.usage))
        .collect();
    rows.push(row(bold("total"), &report.totals));
    print!("{}", output::table(&header, &rows));
    if !report.buckets.is_empty() {
        println!();
        let mut header = header;
        header[0] = if report.by.as_deref() == Some("day") {
            "DAY (UTC)"
        } else {
            "HOUR (UTC)"
        };
        let rows: Vec<Vec<String>> = report
            .buckets
            .iter()
            .map(|b| row(utc(b.start_ms), &b.usage))
            .collect();
        print!("{}", output::table(&header, &rows));
    }
    if !report.quotas.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = report
            .quotas
            .iter()
            .map(|q| {
                vec![
                    format!("{} {}", q.scope, q.name),
                    format!("{} per {}", q.metric, q.period),
                    format!("{} / {}", trim(q.used), trim(q.limit)),
                    if q.exceeded {
                        "EXCEEDED".to_owned()
                    } else {
                        format!("{:.0}%", 100.0 * q.used / q.limit.max(1.0))
                    },
                    utc(q.resets_at_ms),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["QUOTA", "LIMIT", "USED", "", "RESETS (UTC)"], &rows)
        );
    }
    if let Some(s) = &report.storage {
        println!(
            "\n{} {} of {} (key-value data and documents)",
            bold("stored:"),
            output::human_bytes(s.bytes),
            output::human_bytes(s.quota_bytes)
        );
    }
    let p = &report.prices;
    println!(
        "\n{}",
        dim(&format!(
            "cost estimate at {} {currency} per million requests + {} {currency} per GB-second \
             ({}){}",
            p.per_million_requests,
            p.per_gb_second,
            p.source,
            if p.free_requests > 0 || p.free_gb_seconds > 0.0 {
                format!(
                    ", less a free tier of {} requests and {} GB-seconds",
                    p.free_requests, p.free_gb_seconds
                )
            } else {
                String::new()
            }
        ))
    );
    Ok(ExitCode::SUCCESS)
}

/// List a function's invocation records.
#[derive(clap::Args)]
pub(crate) struct InvocationsArgs {
    /// The function.
    function: String,
    /// Only invocations newer than this (`10m`, `24h`) or since this time (ms since the epoch).
    #[arg(long)]
    since: Option<String>,
    /// Only failed invocations.
    #[arg(long)]
    errors: bool,
    /// How many of the newest to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn invocations(args: InvocationsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(s) = &args.since {
        query.push(("since", s.clone()));
    }
    if args.errors {
        query.push(("errors", "true".to_owned()));
    }
    let list: InvocationList = client
        .send(
            client
                .request(
                    Method::GET,
                    &format!("/v1/functions/{}/invocations", args.function),
                )
                .query(&query),
        )
        .await?
        .json()
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = output::now_ms();
    let rows: Vec<Vec<String>> = list
        .invocations
        .iter()
        .map(|i| {
            vec![
                i.request_id.chars().take(12).collect(),
                output::ago(i.started_ms, now),
                format!("v{}", i.version),
                i.trigger.as_str().to_owned(),
                i.status.to_string(),
                format!("{:.2} ms", i.duration_us as f64 / 1000.0),
                format!("{} ms", i.billed_ms),
                format!(
                    "{} / {} MiB",
                    output::human_bytes(i.peak_memory_bytes),
                    i.memory_mb
                ),
                if i.cold { "cold" } else { "" }.to_owned(),
                i.error.map(|e| e.as_str()).unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &[
                "REQUEST", "STARTED", "VERSION", "TRIGGER", "STATUS", "DURATION", "BILLED",
                "MEMORY", "START", "ERROR"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

fn cost(v: f64, currency: &str) -> String {
    if v > 0.0 && v < 0.01 {
        format!("{v:.6} {currency}")
    } else {
        format!("{v:.2} {currency}")
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// `2026-11-23 14:00` (UTC).
fn utc(ms: i64) -> String {
    let s = updraft_server::rfc3339(ms);
    s.get(..16)
        .map_or_else(|| s.clone(), |d| d.replace('T', " "))
}
