//! `updraft deploy [dir]`: build each function, upload its component (skipping ones the server
//! already has), deploy the manifest, and print the URLs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use updraft_api::{ArtifactUploaded, CanaryPolicy, DeployRequest, DeployResponse, Status};
use updraft_manifest::Manifest;

use crate::Remote;
use crate::client::{Client, api_error};
use crate::output::{self, bold, dim, green};

/// Deploy an app directory.
#[derive(clap::Args)]
pub(crate) struct DeployArgs {
    /// The app directory (holding updraft.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Skip the functions' `build` commands.
    #[arg(long)]
    no_build: bool,
    /// Publish changed functions as a canary getting this percentage of `live`'s traffic,
    /// instead of switching `live` to them.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    canary: Option<u8>,
    #[command(flatten)]
    guard: super::versions::CanaryGuard,
    /// Print the deploy result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let canary = args.canary.map(|w| args.guard.policy(w)).transpose()?;
    let result = deploy_dir(&client, &args.dir, !args.no_build, !args.json, canary).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result.response)?);
    } else {
        print_result(&result);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a deploy did.
pub(crate) struct Deployed {
    pub(crate) response: DeployResponse,
    pub(crate) data_plane_url: String,
}

/// Reads, builds, uploads and deploys the app in `dir`.
pub(crate) async fn deploy_dir(
    client: &Client,
    dir: &Path,
    build: bool,
    progress: bool,
    canary: Option<CanaryPolicy>,
) -> anyhow::Result<Deployed> {
    let manifest_path = dir.join("updraft.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let shown = manifest_path.display().to_string();
    let manifest = Manifest::parse(&shown, &text)?;

    if build {
        for f in &manifest.functions {
            if let Some(cmd) = &f.build {
                run_build(dir, f.name.as_str(), cmd, progress).await?;
            }
        }
    }

    let mut artifacts = BTreeMap::new();
    for (i, f) in manifest.functions.iter().enumerate() {
        let bytes = if f.runtime.is_process() {
            super::bundle::build(dir, f, progress).await?
        } else {
            let path = dir.join(&f.component);
            std::fs::read(&path).with_context(|| {
                format!(
                    "{shown}: functions[{i}].component: cannot read {} (did its build run?)",
                    path.display()
                )
            })?
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        upload(
            client,
            f.name.as_str(),
            &digest,
            Bytes::from(bytes),
            progress,
        )
        .await?;
        artifacts.insert(f.name.to_string(), digest);
    }

    let site = match &manifest.site {
        Some(site) => Some(super::site::upload(client, dir, site, progress).await?),
        None => None,
    };
    let req = DeployRequest {
        manifest: text,
        manifest_file: Some(shown),
        artifacts,
        canary,
        deployer: deployer(),
        site,
    };
    let pb = progress.then(|| output::spinner(format!("deploying app {}", manifest.app.name)));
    let resp = client
        .send(client.request(Method::POST, "/v1/apps").json(&req))
        .await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let response: DeployResponse = resp?.json().await.context("decoding the deploy result")?;
    let status: Status = client.get_json("/v1/status").await?;
    Ok(Deployed {
        response,
        data_plane_url: status.data_plane_url,
    })
}

/// `user@host`, for the version record.
fn deployer() -> Option<String> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()?;
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    Some(match host {
        Some(h) => format!("{user}@{h}"),
        None => user,
    })
}

async fn run_build(dir: &Path, name: &str, cmd: &str, progress: bool) -> anyhow::Result<()> {
    let pb = progress.then(|| output::spinner(format!("building {name}: {cmd}")));
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .await
        .with_context(|| format!("running the build command of `{name}`"))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("the build of `{name}` failed ({}): {cmd}", out.status);
    }
    if progress {
        eprintln!("{} {name}", green("built"));
    }
    Ok(())
}

/// Uploads a component unless the server already has it compiled.
async fn upload(
    client: &Client,
    name: &str,
    digest: &str,
    bytes: Bytes,
    progress: bool,
) -> anyhow::Result<()> {
    let path = format!("/v1/artifacts/{digest}");
    let head = client
        .request(Method::HEAD, &path)
        .send()
        .await
        .context("cannot reach the Updraft control API")?;
    if head.status() == StatusCode::OK {
        if progress {
            eprintln!(
                "{} {name} {}",
                green("unchanged"),
                dim(&format!("sha256:{}", &digest[..12]))
            );
        }
        return Ok(());
    }
    let len = bytes.len() as u64;
    let pb = progress.then(|| output::bytes_bar(len, format!("uploading {name}")));
    // Send in chunks so the bar follows the socket; then the server compiles.
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(64 << 10)
        .map(|start| bytes.slice(start..bytes.len().min(start + (64 << 10))))
        .collect();
    let bar = pb.clone();
    let bundle = updraft_process::bundle::is_bundle(&bytes);
    let compiling = format!("{} {name}", if bundle { "unpacking" } else { "compiling" });
    let stream = futures::stream::iter(chunks.into_iter().map(move |c| {
        if let Some(pb) = &bar {
            pb.inc(c.len() as u64);
            if pb.position() >= len {
                pb.set_style(
                    indicatif::ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                pb.set_message(compiling.clone());
                pb.enable_steady_tick(std::time::Duration::from_millis(100));
            }
        }
        Ok::<_, std::io::Error>(c)
    }));
    let resp = client
        .request(Method::PUT, &path)
        .header(
            "content-type",
            if bundle {
                "application/zip"
            } else {
                "application/wasm"
            },
        )
        .header("content-length", len)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .context("uploading the component")?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    if !resp.status().is_success() {
        return Err(api_error(resp)
            .await
            .context(format!("the server rejected the component of `{name}`")));
    }
    let up: ArtifactUploaded = resp.json().await.context("decoding the upload result")?;
    if progress {
        eprintln!(
            "{} {name} {}",
            green("uploaded"),
            dim(&format!(
                "{}, {} in {} ms",
                output::human_bytes(up.size),
                if bundle { "unpacked" } else { "compiled" },
                up.compile_ms
            ))
        );
    }
    Ok(())
}

/// `3 (new)`, `3 (unchanged)` or `2, canary 3 at 10% (new)`.
fn version_label(f: &updraft_api::FunctionInfo, r: &DeployResponse) -> String {
    let new = r.published.contains_key(&f.name);
    let canary = f
        .aliases
        .iter()
        .find(|a| a.name == updraft_manifest::LIVE)
        .and_then(|a| a.canary.as_ref());
    let mut s = f.version.to_string();
    if let Some(c) = canary {
        s.push_str(&format!(", canary {} at {}%", c.version, c.weight));
    }
    s.push_str(if new { " (new)" } else { " (unchanged)" });
    s
}

pub(crate) fn print_result(d: &Deployed) {
    println!("{} app {}", green("deployed"), bold(&d.response.app));
    let rows: Vec<Vec<String>> = d
        .response
        .functions
        .iter()
        .flat_map(|f| {
            let base = d.data_plane_url.clone();
            let routes = if f.routes.is_empty() {
                vec![("-".to_owned(), String::new())]
            } else {
                f.routes
                    .iter()
                    .map(|r| {
                        let methods = if r.methods.is_empty() {
                            "*".to_owned()
                        } else {
                            r.methods.join(",")
                        };
                        (methods, format!("{base}{}", r.route))
                    })
                    .collect()
            };
            let version = version_label(f, &d.response);
            routes
                .into_iter()
                .map(|(m, url)| vec![f.name.clone(), version.clone(), m, url])
                .collect::<Vec<_>>()
        })
        .collect();
    print!(
        "{}",
        output::table(&["FUNCTION", "VERSION", "METHODS", "URL"], &rows)
    );
    if !d.response.removed.is_empty() {
        println!("{} {}", dim("removed:"), d.response.removed.join(", "));
    }
    for (f, versions) in &d.response.pruned {
        let list: Vec<String> = versions.iter().map(u32::to_string).collect();
        println!(
            "{} {f}: version {} (retention)",
            dim("deleted:"),
            list.join(", ")
        );
    }
}
