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
                f.kind.clone(),
                f.routes
                    .iter()
                    .map(|r| r.route.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
                updraft_manifest::format_duration(std::time::Duration::from_millis(f.timeout_ms)),
                output::human_bytes(f.memory_bytes),
                f.max_concurrency.to_string(),
                state(f),
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
                "RUNTIME",
                "ROUTES",
                "TIMEOUT",
                "MEMORY",
                "CONCURRENCY",
                "STATE",
                "DIGEST"
            ],
            &rows
        )
    );
    // Process functions: what their sandbox enforces on this server (the same for all).
    if let Some(s) = list.functions.iter().find_map(|f| f.sandbox.as_ref()) {
        println!("{} {}", output::dim("process sandbox:"), s.summary);
    }
    Ok(ExitCode::SUCCESS)
}

/// `warm (2 ready)`, `scaled to zero`, with the reuse mode when it is not the default.
fn state(f: &updraft_api::FunctionInfo) -> String {
    let Some(r) = &f.runtime else {
        return "-".to_owned();
    };
    let mut s = if !r.loaded {
        "scaled to zero".to_owned()
    } else if r.ready_instances > 0 {
        format!("warm ({} ready)", r.ready_instances)
    } else {
        "loaded".to_owned()
    };
    if f.instance_reuse == "warm" {
        s.push_str(if r.reuse_disabled {
            ", reuse off (guest failed on reuse)"
        } else {
            ", reuses instances"
        });
    }
    s
}
