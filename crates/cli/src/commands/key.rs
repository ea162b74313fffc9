//! `updraft key create|list|revoke`: scoped API keys for the control API.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;
use updraft_api::{CreatedKey, KeyInfo, KeyList};

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Manage scoped API keys: a project, a role and optionally an expiry each.
#[derive(clap::Args)]
pub(crate) struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
    /// Print JSON instead of tables (`key create --json` has `id` and `key`).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum KeyCommand {
    /// Create a key; it is printed once and can't be shown again.
    Create {
        /// What it may do: owner (everything in the project, keys included), deployer (deploy,
        /// aliases, rollback, invoke, logs), viewer (read-only), metrics (only /metrics).
        #[arg(long, value_parser = updraft_api::KEY_ROLES)]
        role: String,
        /// How long it works (`30d`, `12h`); never expires without it.
        #[arg(long)]
        expires: Option<String>,
        /// What it is for, shown by `key list`.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_...`).
        id: String,
    },
}

pub(crate) async fn key(args: KeyArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    match args.command {
        KeyCommand::Create {
            role,
            expires,
            description,
        } => {
            let body = json!({
                "role": role,
                "expires_in": expires,
                "description": description,
            });
            let resp = client
                .send(client.request(Method::POST, "/v1/keys").json(&body))
                .await?;
            let created: CreatedKey = resp.json().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                eprintln!(
                    "created {} key {} for project {}{} (shown once; store it now):",
                    created.info.role,
                    output::bold(&created.info.id),
                    created.info.project,
                    created
                        .info
                        .expires_at
                        .map(|at| format!(", expires {}", expires_in(at)))
                        .unwrap_or_default()
                );
                println!("{}", created.key);
            }
        }
        KeyCommand::List => {
            let list: KeyList = client.get_json("/v1/keys").await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.keys.is_empty() {
                println!("no API keys (create one with `updraft key create --role viewer`)");
            } else {
                print!("{}", table(&list.keys));
            }
        }
        KeyCommand::Revoke { id } => {
            client
                .send(client.request(Method::DELETE, &format!("/v1/keys/{id}")))
                .await?;
            if args.json {
                println!("{}", json!({ "revoked": id }));
            } else {
                println!("revoked {}", output::bold(&id));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn expires_in(at: i64) -> String {
    let left = at - output::now_ms();
    if left <= 0 {
        "expired".to_owned()
    } else {
        format!(
            "in {}",
            updraft_manifest::format_duration(std::time::Duration::from_millis(
                u64::try_from(left).unwrap_or(0)
            ))
        )
    }
}

fn table(keys: &[KeyInfo]) -> String {
    let now = output::now_ms();
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.project.clone(),
                k.role.clone(),
                output::ago(k.created_at, now),
                k.expires_at.map_or_else(|| "never".to_owned(), expires_in),
                k.description.clone(),
            ]
        })
        .collect();
    output::table(
        &["ID", "PROJECT", "ROLE", "CREATED", "EXPIRES", "DESCRIPTION"],
        &rows,
    )
}
