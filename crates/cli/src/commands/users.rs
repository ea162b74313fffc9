//! `updraft users list|show|disable|enable|delete|revoke-sessions` and `updraft auth
//! rotate-keys`: a project's end users and its token signing keys.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Manage the project's end users (needs an owner key).
#[derive(clap::Args)]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum UsersCommand {
    /// List users, oldest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Show one user (by id or email).
    Show {
        /// Id or email.
        user: String,
    },
    /// Disable a user: its sessions end and it can't sign in.
    Disable {
        /// Id or email.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Id or email.
        user: String,
    },
    /// Delete a user with its sessions.
    Delete {
        /// Id or email.
        user: String,
    },
    /// End every session of a user (its refresh tokens stop working at once).
    RevokeSessions {
        /// Id or email.
        user: String,
    },
}

/// End-user auth settings of the project.
#[derive(clap::Args)]
pub(crate) struct AuthArgs {
    #[command(subcommand)]
    command: AuthCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum AuthCommand {
    /// Sign new access tokens with a new key; tokens signed by the old one stay valid until
    /// they expire.
    RotateKeys,
    /// Show the development mailbox: the messages (confirmation, recovery, magic links) sent
    /// to users while no mail server is set, newest first.
    Mail {
        /// Only those to this address.
        #[arg(long)]
        to: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn table(users: &[Value]) -> String {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or("").to_owned();
            let state = if u["banned"].as_bool() == Some(true) {
                "disabled"
            } else if u["is_anonymous"].as_bool() == Some(true) {
                "anonymous"
            } else {
                "active"
            };
            vec![
                s("id"),
                if s("email").is_empty() {
                    "-".to_owned()
                } else {
                    s("email")
                },
                state.to_owned(),
                s("created_at"),
                u["last_sign_in_at"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    output::table(&["ID", "EMAIL", "STATE", "CREATED", "LAST SIGN-IN"], &rows)
}

pub(crate) async fn users(args: UsersArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let (method, path) = match &args.command {
        UsersCommand::List { limit, offset } => (
            Method::GET,
            format!("/v1/users?limit={limit}&offset={offset}"),
        ),
        UsersCommand::Show { user } => (Method::GET, format!("/v1/users/{}", path_segment(user))),
        UsersCommand::Disable { user } => (
            Method::POST,
            format!("/v1/users/{}/disable", path_segment(user)),
        ),
        UsersCommand::Enable { user } => (
            Method::POST,
            format!("/v1/users/{}/enable", path_segment(user)),
        ),
        UsersCommand::Delete { user } => {
            (Method::DELETE, format!("/v1/users/{}", path_segment(user)))
        }
        UsersCommand::RevokeSessions { user } => (
            Method::POST,
            format!("/v1/users/{}/revoke-sessions", path_segment(user)),
        ),
    };
    let resp = client.send(client.request(method, &path)).await?;
    let body: Value = if resp.status() == reqwest::StatusCode::NO_CONTENT {
        serde_json::json!({"deleted": true})
    } else {
        resp.json().await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.command {
        UsersCommand::List { .. } => {
            let users = body["users"].as_array().cloned().unwrap_or_default();
            if users.is_empty() {
                println!("no users yet");
            } else {
                print!("{}", table(&users));
            }
        }
        UsersCommand::Show { .. } | UsersCommand::Disable { .. } | UsersCommand::Enable { .. } => {
            print!("{}", table(std::slice::from_ref(&body)));
        }
        UsersCommand::Delete { user } => println!("deleted user {}", output::bold(user)),
        UsersCommand::RevokeSessions { user } => println!(
            "ended {} session(s) of {}",
            body["revoked"].as_u64().unwrap_or(0),
            output::bold(user)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn auth(args: AuthArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    match args.command {
        AuthCommand::RotateKeys => {
            let body: Value = client
                .send(client.request(Method::POST, "/v1/auth/keys/rotate"))
                .await?
                .json()
                .await?;
            println!(
                "new signing key {} (tokens signed by the old key stay valid until they expire)",
                body["kid"].as_str().unwrap_or("?")
            );
        }
        AuthCommand::Mail { to, limit, json } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(t) = to {
                query.push(("to", t));
            }
            let body: Value = client
                .send(client.request(Method::GET, "/v1/auth/mail").query(&query))
                .await?
                .json()
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let messages = body["messages"].as_array().cloned().unwrap_or_default();
                if messages.is_empty() {
                    println!("no messages");
                }
                for m in messages {
                    println!(
                        "{} {}\n{} {}\n\n{}",
                        output::dim("to:"),
                        m["to"].as_str().unwrap_or(""),
                        output::dim("subject:"),
                        output::bold(m["subject"].as_str().unwrap_or("")),
                        m["body"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
