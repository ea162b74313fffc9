//! `updraft backup FILE` and `updraft restore FILE`: the database (every project's key-value
//! stores and document collections) as one SQLite file, taken and restored while the server
//! runs (the admin key's; see `docs/database.md#backup-and-restore`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Take a consistent snapshot of the database (every project's key-value stores and
/// document collections) while the server runs.
#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// Where to write it (must not exist).
    file: PathBuf,
    #[command(flatten)]
    remote: Remote,
}

/// Replace the database, or one project's part of it, with a backup (online: the server
/// keeps running; readers see the old data or the new, never a mix).
#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// The backup (from `updraft backup`).
    file: PathBuf,
    /// Restore only this project's stores and collections; the others' are left alone.
    #[arg(long = "only-project", value_name = "PROJECT")]
    only_project: Option<String>,
    /// Confirm: what is there now is replaced.
    #[arg(long)]
    yes: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.file)
        .await
        .with_context(|| format!("creating {}", args.file.display()))?;
    let spinner = output::spinner("taking the snapshot".into());
    let resp = client.send(client.request(Method::GET, "/v1/backup")).await;
    spinner.finish_and_clear();
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&args.file);
            return Err(e);
        }
    };
    let len = resp.content_length().unwrap_or(0);
    let bar = output::bytes_bar(len, "downloading".into());
    let mut stream = resp.bytes_stream();
    let mut written = 0u64;
    let result: anyhow::Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context("the download broke off")?;
            out.write_all(&chunk).await?;
            written += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
        }
        out.sync_all().await?;
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&args.file);
        return Err(e);
    }
    println!(
        "backed up the database to {} ({})",
        output::bold(&args.file.display().to_string()),
        output::human_bytes(written)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if !args.yes {
        let what = match &args.only_project {
            Some(p) => format!("project `{p}`'s key-value stores and collections"),
            None => "every project's key-value stores and collections".to_owned(),
        };
        anyhow::bail!("a restore replaces {what} with the backup's; run again with --yes");
    }
    let client = Client::new(&args.remote)?;
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let bar = output::bytes_bar(len, "uploading".into());
    let mut req = client
        .request(Method::POST, "/v1/restore")
        .header("content-type", "application/vnd.sqlite3")
        .body(crate::client::file_body(file, bar.clone()));
    if let Some(p) = &args.only_project {
        req = req.query(&[("project", p)]);
    }
    let v: Value = client.send(req).await?.json().await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let scope = match &args.only_project {
            Some(p) => format!("project {}", output::bold(p)),
            None => "every project".to_owned(),
        };
        println!(
            "restored {scope}: {} stores with {} keys, {} collections with {} documents",
            v["stores"], v["keys"], v["collections"], v["documents"]
        );
    }
    Ok(ExitCode::SUCCESS)
}
