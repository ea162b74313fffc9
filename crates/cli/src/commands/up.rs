//! `updraft up [dir]`: serve and deploy an app directory into the same process, for local
//! development.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::deploy::{deploy_dir, print_result};
use super::serve::{ServeArgs, bind, shutdown_signal};
use crate::client::Client;

/// Serve and deploy an app.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// The app directory (holding updraft.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Skip the functions' `build` commands.
    #[arg(long)]
    no_build: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let b = bind(&args.serve).await?;
    let token_file = b.server.admin_token_file();
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("reading {}", token_file.display()))?
        .trim()
        .to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(b.server.run(b.data, b.control, async move {
        let _ = stop_rx.await;
    }));
    let client = Client::with_token(&format!("http://{}", b.control_addr), token);
    match deploy_dir(&client, &args.dir, !args.no_build, true, None).await {
        Ok(d) => print_result(&d),
        Err(e) => {
            let _ = stop_tx.send(());
            let _ = server.await;
            return Err(e.context(format!("deploying {}", args.dir.display())));
        }
    }
    shutdown_signal().await;
    let _ = stop_tx.send(());
    server.await.context("server task")??;
    Ok(ExitCode::SUCCESS)
}
