//! `updraft project create|list|show|domains|delete`: projects (tenants) and their custom
//! domains.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;
use updraft_api::{ProjectInfo, ProjectList};

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Manage projects. Creating and deleting them needs the server's admin key.
#[derive(clap::Args)]
pub(crate) struct ProjectArgs {
    #[command(subcommand)]
    command: ProjectCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum ProjectCommand {
    /// Create a project; its functions are served at `<name>.localhost` (the server's base
    /// domain) and at its custom domains.
    Create {
        /// 1 to 63 lower-case letters, digits and '-', starting with a letter.
        name: String,
        /// A custom domain to serve it on (repeat for more).
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// List the projects this key can see.
    List,
    /// Show one project.
    Show {
        /// The project.
        name: String,
    },
    /// Replace a project's custom domains (none: `--domain` not given).
    Domains {
        /// The project.
        name: String,
        /// A custom domain (repeat for more).
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// Replace the origins browsers may call the project's routes and auth API from
    /// (`--origin https://app.example.com`, or `--origin '*'`; none: no cross-origin calls).
    Cors {
        /// The project.
        name: String,
        /// An origin (repeat for more).
        #[arg(long = "origin")]
        origins: Vec<String>,
    },
    /// Delete a project with no functions left, with its keys, logs and usage.
    Delete {
        /// The project.
        name: String,
    },
}

pub(crate) async fn project(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let print = |p: &ProjectInfo| -> anyhow::Result<()> {
        if args.json {
            println!("{}", serde_json::to_string_pretty(p)?);
        } else {
            print!("{}", table(std::slice::from_ref(p)));
        }
        Ok(())
    };
    match args.command {
        ProjectCommand::Create { name, domains } => {
            let body = json!({ "name": name, "domains": domains });
            let resp = client
                .send(client.request(Method::POST, "/v1/projects").json(&body))
                .await?;
            let created: ProjectInfo = resp.json().await?;
            if !args.json {
                eprintln!("created project {}", output::bold(&created.name));
            }
            print(&created)?;
        }
        ProjectCommand::List => {
            let list: ProjectList = client.get_json("/v1/projects").await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", table(&list.projects));
            }
        }
        ProjectCommand::Show { name } => {
            let p: ProjectInfo = client.get_json(&format!("/v1/projects/{name}")).await?;
            print(&p)?;
        }
        ProjectCommand::Domains { name, domains } => {
            let body = json!({ "domains": domains });
            let resp = client
                .send(
                    client
                        .request(Method::PUT, &format!("/v1/projects/{name}/domains"))
                        .json(&body),
                )
                .await?;
            let p: ProjectInfo = resp.json().await?;
            print(&p)?;
        }
        ProjectCommand::Cors { name, origins } => {
            let body = json!({ "origins": origins });
            let resp = client
                .send(
                    client
                        .request(Method::PUT, &format!("/v1/projects/{name}/cors"))
                        .json(&body),
                )
                .await?;
            let p: ProjectInfo = resp.json().await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else if p.cors_origins.is_empty() {
                println!(
                    "project {} allows no cross-origin calls",
                    output::bold(&p.name)
                );
            } else {
                println!(
                    "project {} allows calls from {}",
                    output::bold(&p.name),
                    p.cors_origins.join(", ")
                );
            }
        }
        ProjectCommand::Delete { name } => {
            client
                .send(client.request(Method::DELETE, &format!("/v1/projects/{name}")))
                .await?;
            if args.json {
                println!("{}", json!({ "deleted": name }));
            } else {
                println!("deleted project {}", output::bold(&name));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(projects: &[ProjectInfo]) -> String {
    let now = output::now_ms();
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.functions.to_string(),
                if p.domains.is_empty() {
                    "-".to_owned()
                } else {
                    p.domains.join(" ")
                },
                output::ago(p.created_at, now),
            ]
        })
        .collect();
    output::table(&["NAME", "FUNCTIONS", "DOMAINS", "CREATED"], &rows)
}
