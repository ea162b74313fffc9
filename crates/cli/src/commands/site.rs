//! Static sites: the upload a deploy does for `[site]` (only files the server lacks), and
//! `updraft site` (show the live version and the kept ones; roll back).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use updraft_api::SiteFile;
use updraft_manifest::Site;

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Show the project's static site and roll it back.
#[derive(clap::Args)]
pub(crate) struct SiteArgs {
    #[command(subcommand)]
    command: SiteCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum SiteCommand {
    /// The live version and the kept ones.
    Show,
    /// Make an older version live (default: the one before the live one).
    Rollback {
        /// The version to make live.
        #[arg(long)]
        to: Option<u32>,
    },
}

pub(crate) async fn site(args: SiteArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let v: Value = match args.command {
        SiteCommand::Show => client.get_json("/v1/site").await?,
        SiteCommand::Rollback { to } => {
            let resp = client
                .send(
                    client
                        .request(Method::POST, "/v1/site/rollback")
                        .json(&json!({ "version": to })),
                )
                .await?;
            resp.json().await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let live = v["live"].as_u64();
    let rows: Vec<Vec<String>> = v["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let n = s["version"].as_u64().unwrap_or_default();
            vec![
                if Some(n) == live {
                    output::green(&format!("{n} (live)"))
                } else {
                    n.to_string()
                },
                s["app"].as_str().unwrap_or_default().to_owned(),
                s["files"].as_u64().unwrap_or_default().to_string(),
                output::human_bytes(s["bytes"].as_u64().unwrap_or_default()),
                s["deployer"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no site: add [site] dir = \"public\" to updraft.toml and deploy");
    } else {
        print!(
            "{}",
            output::table(&["VERSION", "APP", "FILES", "SIZE", "DEPLOYER"], &rows)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The files under `dir/<site.dir>` by site path, each uploaded unless the server has it.
pub(crate) async fn upload(
    client: &Client,
    dir: &Path,
    site: &Site,
    progress: bool,
) -> anyhow::Result<BTreeMap<String, SiteFile>> {
    let root = dir.join(&site.dir);
    let mut found = Vec::new();
    walk(&root, &root, &mut found)
        .with_context(|| format!("[site] dir: reading {}", root.display()))?;
    let mut files = BTreeMap::new();
    let mut bytes_of = BTreeMap::new();
    for (path, file) in found {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        files.insert(
            path,
            SiteFile {
                digest: digest.clone(),
                size: bytes.len() as u64,
            },
        );
        bytes_of.insert(digest, bytes);
    }
    let digests: Vec<&String> = bytes_of.keys().collect();
    let missing: Value = client
        .send(
            client
                .request(Method::POST, "/v1/site/files/missing")
                .json(&json!({ "digests": digests })),
        )
        .await?
        .json()
        .await?;
    let missing: Vec<String> = missing["missing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect();
    let total: u64 = missing
        .iter()
        .filter_map(|d| bytes_of.get(d))
        .map(|b| b.len() as u64)
        .sum();
    let pb = (progress && !missing.is_empty()).then(|| {
        output::bytes_bar(
            total,
            format!("uploading {} of {} site files", missing.len(), files.len()),
        )
    });
    for d in &missing {
        let Some(bytes) = bytes_of.remove(d) else {
            continue;
        };
        let len = bytes.len() as u64;
        client
            .send(
                client
                    .request(Method::PUT, &format!("/v1/site/files/{d}"))
                    .body(bytes),
            )
            .await?;
        if let Some(pb) = &pb {
            pb.inc(len);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(files)
}

/// Every regular file under `dir`, as `/relative/path` (forward slashes). Hidden files
/// (`.git`, `.DS_Store`) are left out; symlinks are followed.
fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, std::path::PathBuf)>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((format!("/{}", parts.join("/")), path));
        }
    }
    Ok(())
}
