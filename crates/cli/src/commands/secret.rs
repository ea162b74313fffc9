//! `updraft secret set|list|delete`: a project's secrets. A value is read from stdin or a
//! file, never from the command line (which `ps` and shell history would show), and is never
//! printed.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::json;
use updraft_api::{SecretList, SecretSet};

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Manage the project's secrets (functions receive those their manifest lists in `secrets`).
#[derive(clap::Args)]
pub(crate) struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum SecretCommand {
    /// Set a secret: the value is read from stdin (one trailing newline dropped) or, exactly,
    /// from `--from-file`. Functions granted it get new instances that see the new value.
    Set {
        /// Its name: an environment variable name (`STRIPE_KEY`).
        name: String,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// List secrets: names, when they were set, which functions receive them.
    List,
    /// Delete a secret no function's kept version lists.
    Delete {
        /// Its name.
        name: String,
    },
}

/// The value to set: the file's bytes, or stdin without one trailing newline.
fn read_value(from_file: Option<&PathBuf>) -> anyhow::Result<String> {
    match from_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the secret from {}", path.display())),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("enter the value, then Ctrl-D:");
            }
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the secret from stdin")?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            Ok(value)
        }
    }
}

pub(crate) async fn secret(args: SecretArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    match args.command {
        SecretCommand::Set { name, from_file } => {
            let value = read_value(from_file.as_ref())?;
            let resp = client
                .send(
                    client
                        .request(Method::PUT, &format!("/v1/secrets/{name}"))
                        .json(&json!({ "value": value })),
                )
                .await?;
            let set: SecretSet = resp.json().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&set)?);
            } else {
                let verb = if set.created { "created" } else { "updated" };
                println!("{verb} secret {}", output::bold(&set.secret.name));
                if !set.restarted.is_empty() {
                    println!(
                        "{} {}",
                        output::dim("new instances see it:"),
                        set.restarted.join(", ")
                    );
                }
            }
        }
        SecretCommand::List => {
            let list: SecretList = client.get_json("/v1/secrets").await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.secrets.is_empty() {
                println!("no secrets (set one with `updraft secret set NAME < value.txt`)");
            } else {
                let now = output::now_ms();
                let rows: Vec<Vec<String>> = list
                    .secrets
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            output::ago(s.updated_at, now),
                            if s.used_by.is_empty() {
                                "-".to_owned()
                            } else {
                                s.used_by.join(" ")
                            },
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["NAME", "UPDATED", "USED BY"], &rows));
            }
        }
        SecretCommand::Delete { name } => {
            client
                .send(client.request(Method::DELETE, &format!("/v1/secrets/{name}")))
                .await?;
            if args.json {
                println!("{}", json!({ "deleted": name }));
            } else {
                println!("deleted secret {}", output::bold(&name));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
