//! `updraft functions`: list deployed functions.

use std::process::ExitCode;

use updraft_api::FunctionList;

use crate::Remote;
use crate::client::Client;
use crate::output;

/// List deployed functions.
#[derive(clap::Args)]
pub(crate) struct FunctionsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn run(args: FunctionsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let list: FunctionList = client.get_json("/v1/functions").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.functions.is_empty() {
        println!("no functions deployed (try `updraft deploy`)");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .functions
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.app.clone(),
                f.routes
                    .iter()
                    .map(|r| r.route.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
                updraft_manifest::format_duration(std::time::Duration::from_millis(f.timeout_ms)),
                output::human_bytes(f.memory_bytes),
                f.max_concurrency.to_string(),
                f.digest.chars().take(12).collect(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &[
                "NAME",
                "APP",
                "ROUTES",
                "TIMEOUT",
                "MEMORY",
                "CONCURRENCY",
                "DIGEST"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}
