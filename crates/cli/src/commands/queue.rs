//! `updraft queue ...`, `updraft topic ...` and `updraft async <id>`: queues, topics and
//! asynchronous invokes through the control API.
//!
//! Long file: the whole `updraft queue` / `topic` / `async` command family (their arguments,
//! calls and output) in one place, like the other verbs; each subcommand is a short function.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use updraft_api::{
    AsyncInvocation, Deleted, Published, QueueCreated, QueueInfo, QueueList, Received, Sent,
    TopicCreated, TopicInfo, TopicList,
};
use updraft_manifest::format_duration;

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Manage queues and send, receive and delete messages.
#[derive(clap::Args)]
pub(crate) struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum QueueCommand {
    /// List queues with their depth.
    List,
    /// Create a queue (prints its data-plane access key once).
    Create {
        /// Its name.
        name: String,
        /// How long a received message stays invisible (`30s`).
        #[arg(long)]
        visibility_timeout: Option<String>,
        /// Largest message accepted (`256KiB`).
        #[arg(long)]
        max_message_size: Option<String>,
    },
    /// Show one queue's depth.
    Info {
        /// The queue.
        name: String,
    },
    /// Delete a queue and its messages.
    Delete {
        /// The queue.
        name: String,
    },
    /// Send a message.
    Send {
        /// The queue.
        name: String,
        /// The body (or `--data-file`).
        body: Option<String>,
        /// Read the body from a file (`-` for stdin).
        #[arg(long, conflicts_with = "body")]
        data_file: Option<PathBuf>,
        /// An attribute `key=value` (repeatable).
        #[arg(short, long = "attr")]
        attributes: Vec<String>,
        /// Keep it invisible this long (`10s`).
        #[arg(long)]
        delay: Option<String>,
        /// Its media type.
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Receive (lease) messages.
    Receive {
        /// The queue.
        name: String,
        /// Most messages.
        #[arg(long, default_value_t = 10)]
        max: u32,
        /// Wait this long for one (`5s`, at most `20s`).
        #[arg(long)]
        wait: Option<String>,
        /// Lease for this long instead of the queue's visibility timeout.
        #[arg(long)]
        visibility_timeout: Option<String>,
        /// Delete them right after printing.
        #[arg(long)]
        ack: bool,
    },
    /// Delete received messages by receipt.
    Ack {
        /// The queue.
        name: String,
        /// Receipts.
        #[arg(required = true)]
        receipts: Vec<String>,
    },
    /// Delete every message of a queue.
    Purge {
        /// The queue.
        name: String,
    },
    /// Replace a queue's access key (revoking its send-only and consume-only keys) and print the
    /// new one; with `--role send|consume`, add a key that may only send, or only receive and
    /// ack.
    Key {
        /// The queue.
        name: String,
        /// `full` (default: replaces the queue's key), `send` or `consume` (adds a scoped key).
        #[arg(long, value_parser = ["full", "send", "consume"])]
        role: Option<String>,
    },
}

/// Manage topics, publish, and subscribe queues.
#[derive(clap::Args)]
pub(crate) struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum TopicCommand {
    /// List topics and their subscriptions.
    List,
    /// Create a topic (prints its publish key once).
    Create {
        /// Its name.
        name: String,
    },
    /// Delete a topic and its subscriptions.
    Delete {
        /// The topic.
        name: String,
    },
    /// Publish a message to every matching subscription.
    Publish {
        /// The topic.
        name: String,
        /// The body.
        body: String,
        /// An attribute `key=value` (repeatable).
        #[arg(short, long = "attr")]
        attributes: Vec<String>,
        /// Its media type.
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Subscribe a queue, optionally filtered (`--filter plan=pro,team`, repeatable).
    Subscribe {
        /// The topic.
        name: String,
        /// The queue.
        queue: String,
        /// `key=value[,value...]`: only publications whose attribute has one of the values.
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Remove a queue's subscription.
    Unsubscribe {
        /// The topic.
        name: String,
        /// The queue.
        queue: String,
    },
}

/// Show an asynchronous invoke's status and result.
#[derive(clap::Args)]
pub(crate) struct AsyncArgs {
    /// The id `updraft invoke --async` printed.
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

fn pairs(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .with_context(|| format!("`{a}` must look like key=value"))?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn print_json(v: &impl Serialize) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

fn age(ms: u64) -> String {
    if ms == 0 {
        "-".to_owned()
    } else {
        format_duration(Duration::from_millis(ms.max(1)))
    }
}

fn queue_table(queues: &[QueueInfo]) -> String {
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            vec![
                q.name.clone(),
                q.depth.to_string(),
                q.in_flight.to_string(),
                q.delayed.to_string(),
                age(q.oldest_age_ms),
                format_duration(Duration::from_millis(q.visibility_timeout_ms)),
                if q.consumers.is_empty() {
                    "-".to_owned()
                } else {
                    q.consumers.join(",")
                },
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "DEPTH",
            "IN FLIGHT",
            "DELAYED",
            "OLDEST",
            "VISIBILITY",
            "CONSUMERS",
        ],
        &rows,
    )
}

fn print_key(what: &str, name: &str, key: Option<&str>, created: bool) {
    match key {
        Some(k) if created => println!(
            "created {what} {}\naccess key (shown once): {k}",
            output::bold(name)
        ),
        Some(k) => println!(
            "new access key for {what} {} (shown once): {k}",
            output::bold(name)
        ),
        None => println!("{what} {} already exists", output::bold(name)),
    }
}

pub(crate) async fn queue(args: QueueArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let json = args.json;
    match args.command {
        QueueCommand::List => {
            let list: QueueList = client.get_json("/v1/queues").await?;
            if json {
                return print_json(&list);
            }
            if list.queues.is_empty() {
                println!("no queues (create one with `updraft queue create <name>`)");
            } else {
                print!("{}", queue_table(&list.queues));
            }
        }
        QueueCommand::Create {
            name,
            visibility_timeout,
            max_message_size,
        } => {
            let body = json!({
                "name": name,
                "visibility_timeout": visibility_timeout,
                "max_message_size": max_message_size,
            });
            let body: serde_json::Value = body
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let resp = client
                .send(client.request(Method::POST, "/v1/queues").json(&body))
                .await?;
            let created: QueueCreated = resp.json().await?;
            if json {
                return print_json(&created);
            }
            print_key(
                "queue",
                &name,
                created.access_key.as_deref(),
                created.created,
            );
        }
        QueueCommand::Info { name } => {
            let q: QueueInfo = client.get_json(&format!("/v1/queues/{name}")).await?;
            if json {
                return print_json(&q);
            }
            print!("{}", queue_table(std::slice::from_ref(&q)));
        }
        QueueCommand::Delete { name } => {
            client
                .send(client.request(Method::DELETE, &format!("/v1/queues/{name}")))
                .await?;
            if !json {
                println!("deleted queue {}", output::bold(&name));
            }
        }
        QueueCommand::Send {
            name,
            body,
            data_file,
            attributes,
            delay,
            content_type,
        } => {
            let body = match (body, data_file) {
                (Some(b), _) => b,
                (None, Some(p)) if p.as_os_str() == "-" => {
                    std::io::read_to_string(std::io::stdin()).context("reading stdin")?
                }
                (None, Some(p)) => std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?,
                (None, None) => bail!("give a body or --data-file"),
            };
            let mut msg = json!({"body": body, "attributes": pairs(&attributes)?});
            if let Some(d) = delay {
                msg["delay"] = d.into();
            }
            if let Some(c) = content_type {
                msg["content_type"] = c.into();
            }
            let resp = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/queues/{name}/messages"))
                        .json(&msg),
                )
                .await?;
            let sent: Sent = resp.json().await?;
            if json {
                return print_json(&sent);
            }
            println!("sent {}", sent.ids.join(" "));
        }
        QueueCommand::Receive {
            name,
            max,
            wait,
            visibility_timeout,
            ack,
        } => {
            let mut req = json!({"max": max});
            if let Some(w) = wait {
                req["wait"] = w.into();
            }
            if let Some(v) = visibility_timeout {
                req["visibility_timeout"] = v.into();
            }
            let resp = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/queues/{name}/messages/receive"))
                        .json(&req),
                )
                .await?;
            let got: Received = resp.json().await?;
            if ack && !got.messages.is_empty() {
                let receipts: Vec<&str> = got.messages.iter().map(|m| m.receipt.as_str()).collect();
                client
                    .send(
                        client
                            .request(Method::POST, &format!("/v1/queues/{name}/messages/ack"))
                            .json(&json!({"receipts": receipts})),
                    )
                    .await?;
            }
            if json {
                return print_json(&got);
            }
            if got.messages.is_empty() {
                println!("no messages");
            }
            for m in &got.messages {
                println!(
                    "{} {}",
                    output::bold(&m.id),
                    output::dim(&format!(
                        "receipt {} · received {}x · {}",
                        m.receipt, m.receive_count, m.content_type
                    ))
                );
                for (k, v) in &m.attributes {
                    println!("  {k}={v}");
                }
                for e in &m.errors {
                    println!(
                        "  {}",
                        output::dim(&format!(
                            "attempt {} by {} failed: {} ({})",
                            e.attempt, e.function, e.error, e.request_id
                        ))
                    );
                }
                println!("{}\n", m.body);
            }
        }
        QueueCommand::Ack { name, receipts } => {
            let resp = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/queues/{name}/messages/ack"))
                        .json(&json!({"receipts": receipts})),
                )
                .await?;
            let d: Deleted = resp.json().await?;
            if json {
                return print_json(&d);
            }
            println!("deleted {} of {} message(s)", d.deleted, receipts.len());
            if d.deleted < receipts.len() as u64 {
                return Ok(ExitCode::FAILURE);
            }
        }
        QueueCommand::Purge { name } => {
            let resp = client
                .send(client.request(Method::POST, &format!("/v1/queues/{name}/purge")))
                .await?;
            let d: Deleted = resp.json().await?;
            if json {
                return print_json(&d);
            }
            println!(
                "purged {} message(s) from {}",
                d.deleted,
                output::bold(&name)
            );
        }
        QueueCommand::Key { name, role } => {
            let path = match &role {
                Some(r) => format!("/v1/queues/{name}/keys?role={r}"),
                None => format!("/v1/queues/{name}/keys"),
            };
            let resp = client.send(client.request(Method::POST, &path)).await?;
            let created: QueueCreated = resp.json().await?;
            if json {
                return print_json(&created);
            }
            match role.as_deref() {
                Some(r @ ("send" | "consume")) => println!(
                    "new {r}-only access key for queue {} (shown once): {}",
                    output::bold(&name),
                    created.access_key.as_deref().unwrap_or("-")
                ),
                _ => print_key("queue", &name, created.access_key.as_deref(), false),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn topic_rows(topics: &[TopicInfo]) -> String {
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            let subs = t
                .subscriptions
                .iter()
                .map(|s| {
                    let filter = s
                        .filter
                        .0
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.join(",")))
                        .collect::<Vec<_>>()
                        .join(" ");
                    if filter.is_empty() {
                        format!("{}:{}", s.kind, s.target)
                    } else {
                        format!("{}:{} [{filter}]", s.kind, s.target)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                t.name.clone(),
                if subs.is_empty() { "-".into() } else { subs },
            ]
        })
        .collect();
    output::table(&["NAME", "SUBSCRIPTIONS"], &rows)
}

pub(crate) async fn topic(args: TopicArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let json = args.json;
    match args.command {
        TopicCommand::List => {
            let list: TopicList = client.get_json("/v1/topics").await?;
            if json {
                return print_json(&list);
            }
            if list.topics.is_empty() {
                println!("no topics (create one with `updraft topic create <name>`)");
            } else {
                print!("{}", topic_rows(&list.topics));
            }
        }
        TopicCommand::Create { name } => {
            let resp = client
                .send(
                    client
                        .request(Method::POST, "/v1/topics")
                        .json(&json!({"name": name})),
                )
                .await?;
            let created: TopicCreated = resp.json().await?;
            if json {
                return print_json(&created);
            }
            print_key(
                "topic",
                &name,
                created.access_key.as_deref(),
                created.created,
            );
        }
        TopicCommand::Delete { name } => {
            client
                .send(client.request(Method::DELETE, &format!("/v1/topics/{name}")))
                .await?;
            if !json {
                println!("deleted topic {}", output::bold(&name));
            }
        }
        TopicCommand::Publish {
            name,
            body,
            attributes,
            content_type,
        } => {
            let mut msg = json!({"body": body, "attributes": pairs(&attributes)?});
            if let Some(c) = content_type {
                msg["content_type"] = c.into();
            }
            let resp = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/topics/{name}/publish"))
                        .json(&msg),
                )
                .await?;
            let p: Published = resp.json().await?;
            if json {
                return print_json(&p);
            }
            println!("published {} to {} subscription(s)", p.id, p.delivered_to);
        }
        TopicCommand::Subscribe {
            name,
            queue,
            filter,
        } => {
            let filter: BTreeMap<String, Vec<String>> = pairs(&filter)?
                .into_iter()
                .map(|(k, v)| (k, v.split(',').map(|s| s.trim().to_owned()).collect()))
                .collect();
            let resp = client
                .send(
                    client
                        .request(
                            Method::PUT,
                            &format!("/v1/topics/{name}/subscriptions/{queue}"),
                        )
                        .json(&json!({"filter": filter})),
                )
                .await?;
            let t: TopicInfo = resp.json().await?;
            if json {
                return print_json(&t);
            }
            print!("{}", topic_rows(std::slice::from_ref(&t)));
        }
        TopicCommand::Unsubscribe { name, queue } => {
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/v1/topics/{name}/subscriptions/{queue}"),
                ))
                .await?;
            if !json {
                println!(
                    "unsubscribed {} from {}",
                    output::bold(&queue),
                    output::bold(&name)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn async_status(args: AsyncArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let a: AsyncInvocation = client.get_json(&format!("/v1/async/{}", args.id)).await?;
    if args.json {
        return print_json(&a);
    }
    println!(
        "{} {} ({} attempt(s))",
        output::bold(&a.id),
        a.status.as_str(),
        a.attempts
    );
    println!("function  {}", a.function);
    if let Some(k) = &a.idempotency_key {
        println!("key       {k}");
    }
    if let Some(s) = a.response_status {
        println!("status    {s}");
    }
    if let Some(r) = &a.request_id {
        println!("request   {r}");
    }
    if let Some(e) = &a.error {
        println!("error     {e}");
    }
    if let Some(b) = &a.response_body {
        println!("\n{b}");
    }
    Ok(ExitCode::SUCCESS)
}
