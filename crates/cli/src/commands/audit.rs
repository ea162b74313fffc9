//! `updraft audit`: who changed what in the project, newest first.

use std::process::ExitCode;

use reqwest::Method;
use updraft_api::AuditList;

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Show the audit log: every change (deploys, alias moves, rollbacks, keys, secrets, queues,
/// topics, projects) with who made it, when, on what and how it ended. Needs an owner key.
#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    /// Only entries this recent (`1h`, `7d`), or since this time in ms since the epoch.
    #[arg(long)]
    since: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Every project's entries (admin key).
    #[arg(long)]
    all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(s) = &args.since {
        query.push(("since", s.clone()));
    }
    if args.all {
        query.push(("all", "true".to_owned()));
    }
    let list: AuditList = client
        .send(client.request(Method::GET, "/v1/audit").query(&query))
        .await?
        .json()
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.entries.is_empty() {
        println!("no changes recorded");
        return Ok(ExitCode::SUCCESS);
    }
    let now = output::now_ms();
    let rows: Vec<Vec<String>> = list
        .entries
        .iter()
        .map(|e| {
            let mut row = vec![
                output::ago(e.ts_ms, now),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.outcome.clone(),
                e.detail.clone(),
            ];
            if args.all {
                row.insert(1, e.project.clone());
            }
            row
        })
        .collect();
    let mut header = vec!["WHEN", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"];
    if args.all {
        header.insert(1, "PROJECT");
    }
    print!("{}", output::table(&header, &rows));
    Ok(ExitCode::SUCCESS)
}
