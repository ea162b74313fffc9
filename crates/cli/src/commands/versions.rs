//! `updraft versions <fn>`, `updraft alias ...` and `updraft rollback <fn>`: a function's
//! immutable versions and the aliases that choose among them.

use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;
use updraft_api::{
    AliasInfo, CanaryPolicy, CanaryTarget, RollbackRequest, RollbackResponse, SetAlias, VersionList,
};

use crate::Remote;
use crate::client::Client;
use crate::output::{self, bold, dim, green};

/// List a function's versions and aliases.
#[derive(clap::Args)]
pub(crate) struct VersionsArgs {
    /// The function.
    function: String,
    /// Include versions deleted by retention.
    #[arg(long)]
    all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn versions(args: VersionsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let list: VersionList = client
        .get_json(&format!("/v1/functions/{}/versions", args.function))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let now = output::now_ms();
    let rows: Vec<Vec<String>> = list
        .versions
        .iter()
        .filter(|v| args.all || v.deleted_at.is_none())
        .map(|v| {
            let note = match (v.deleted_at, &v.note) {
                (Some(at), _) => format!("deleted {}", output::ago(at, now)),
                (None, Some(n)) => n.clone(),
                (None, None) => String::new(),
            };
            vec![
                v.version.to_string(),
                v.digest.chars().take(12).collect(),
                output::ago(v.created_at, now),
                v.deployer.clone(),
                v.aliases.join(", "),
                note,
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &["VERSION", "HASH", "CREATED", "DEPLOYER", "ALIASES", "NOTE"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// Manage a function's aliases.
#[derive(clap::Args)]
pub(crate) struct AliasArgs {
    #[command(subcommand)]
    command: AliasCommand,
}

#[derive(clap::Subcommand)]
enum AliasCommand {
    /// Point an alias at a version, optionally with a canary taking part of the traffic.
    Set(SetArgs),
    /// List a function's aliases.
    List(ListArgs),
    /// Delete an alias (not `live`).
    Delete(DeleteArgs),
}

#[derive(clap::Args)]
struct SetArgs {
    /// The function.
    function: String,
    /// The alias (`live`, `staging`...); created if it does not exist.
    alias: String,
    /// The version it serves.
    #[arg(value_name = "VERSION")]
    target: u32,
    /// A canary version and the percentage of requests it gets, e.g. `9=10`.
    #[arg(long, value_name = "VERSION=PERCENT")]
    canary: Option<String>,
    #[command(flatten)]
    guard: CanaryGuard,
    /// Print the alias as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Args)]
struct ListArgs {
    /// The function.
    function: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Args)]
struct DeleteArgs {
    /// The function.
    function: String,
    /// The alias.
    alias: String,
    #[command(flatten)]
    remote: Remote,
}

/// How a canary is guarded; `deploy` and `alias set` share these flags (both need `--canary`).
#[derive(clap::Args)]
pub(crate) struct CanaryGuard {
    /// With --canary: roll the canary back on its own when its error rate or p99 latency is
    /// worse than the stable version's (thresholds: the server's `[canary]` configuration).
    #[arg(long, requires = "canary")]
    auto_rollback: bool,
    /// With --canary: promote it to 100% after this long if it stayed healthy (e.g. `10m`).
    #[arg(long, requires = "canary", value_name = "DURATION")]
    promote_after: Option<String>,
}

impl CanaryGuard {
    /// The policy for a canary taking `weight` percent.
    pub(crate) fn policy(&self, weight: u8) -> anyhow::Result<CanaryPolicy> {
        Ok(CanaryPolicy {
            weight,
            auto_rollback: self.auto_rollback,
            promote_after_ms: self
                .promote_after
                .as_deref()
                .map(parse_promote_after)
                .transpose()?,
        })
    }
}

/// `9=10` → (9, 10).
fn parse_canary(s: &str) -> anyhow::Result<CanaryTarget> {
    let (v, p) = s
        .split_once('=')
        .with_context(|| format!("--canary `{s}` must look like VERSION=PERCENT, e.g. 9=10"))?;
    let version = v
        .trim()
        .parse()
        .with_context(|| format!("--canary: `{v}` is not a version number"))?;
    let weight: u8 = p
        .trim()
        .trim_end_matches('%')
        .parse()
        .ok()
        .filter(|w| *w <= 100)
        .with_context(|| format!("--canary: `{p}` is not a percentage from 0 to 100"))?;
    Ok(CanaryTarget { version, weight })
}

/// `10m` → milliseconds.
fn parse_promote_after(s: &str) -> anyhow::Result<u64> {
    let d =
        updraft_manifest::parse_duration(s).map_err(|e| anyhow::anyhow!("--promote-after: {e}"))?;
    if d.is_zero() {
        bail!("--promote-after must be longer than 0");
    }
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `live → 8` or `live → 8 (90%), 9 (10%, auto-rollback)`.
fn describe(a: &AliasInfo) -> String {
    match &a.canary {
        None => format!("{} → version {}", bold(&a.name), a.version),
        Some(c) => {
            let mut guard = Vec::new();
            if c.auto_rollback {
                guard.push("auto-rollback".to_owned());
            }
            if let Some(ms) = c.promote_after_ms {
                guard.push(format!(
                    "promoted after {}",
                    updraft_manifest::format_duration(std::time::Duration::from_millis(ms))
                ));
            }
            let guard = if guard.is_empty() {
                String::new()
            } else {
                format!(", {}", guard.join(", "))
            };
            format!(
                "{} → version {} ({}%), canary version {} ({}%{guard})",
                bold(&a.name),
                a.version,
                100 - u32::from(c.weight),
                c.version,
                c.weight
            )
        }
    }
}

pub(crate) async fn alias(args: AliasArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AliasCommand::Set(a) => {
            let client = Client::new(&a.remote)?;
            let canary = a.canary.as_deref().map(parse_canary).transpose()?;
            let policy = a.guard.policy(canary.as_ref().map_or(0, |c| c.weight))?;
            let body = SetAlias {
                version: Some(a.target),
                canary,
                weights: None,
                auto_rollback: policy.auto_rollback,
                promote_after_ms: policy.promote_after_ms,
            };
            let resp = client
                .send(
                    client
                        .request(
                            Method::PUT,
                            &format!("/v1/functions/{}/aliases/{}", a.function, a.alias),
                        )
                        .json(&body),
                )
                .await?;
            let info: AliasInfo = resp.json().await.context("decoding the server's answer")?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{} {}", green("set"), describe(&info));
            }
        }
        AliasCommand::List(a) => {
            let client = Client::new(&a.remote)?;
            let list: VersionList = client
                .get_json(&format!("/v1/functions/{}/versions", a.function))
                .await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list.aliases)?);
            } else {
                for alias in &list.aliases {
                    println!("{}", describe(alias));
                }
            }
        }
        AliasCommand::Delete(a) => {
            let client = Client::new(&a.remote)?;
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/v1/functions/{}/aliases/{}", a.function, a.alias),
                ))
                .await?;
            println!("{} alias {} of {}", green("deleted"), a.alias, a.function);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Point an alias (`live` by default) back at the previous version, or drop its canary.
#[derive(clap::Args)]
pub(crate) struct RollbackArgs {
    /// The function.
    function: String,
    /// The alias to roll back.
    #[arg(long, default_value = updraft_manifest::LIVE)]
    alias: String,
    /// Go back to this version instead of the previous one.
    #[arg(long)]
    to: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

pub(crate) async fn rollback(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let body = RollbackRequest {
        alias: Some(args.alias),
        to: args.to,
    };
    let resp = client
        .send(
            client
                .request(
                    Method::POST,
                    &format!("/v1/functions/{}/rollback", args.function),
                )
                .json(&body),
        )
        .await?;
    let result: RollbackResponse = resp.json().await.context("decoding the server's answer")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{} {}", green("rolled back"), result.message);
        println!("{} {}", dim("now:"), describe(&result.alias));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
