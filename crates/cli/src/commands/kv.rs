//! `updraft kv stores|get|set|delete|list|incr`: the project's key-value stores, through the
//! control API's `/v1/kv` (a viewer reads, a deployer writes).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Remote;
use crate::client::Client;
use crate::output;

/// Read and change the project's key-value stores (functions open those their manifest lists
/// in `key_value_stores`).
#[derive(clap::Args)]
pub(crate) struct KvArgs {
    #[command(subcommand)]
    command: KvCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum KvCommand {
    /// List the project's stores, with their keys and bytes, and the project's usage.
    Stores,
    /// Create a store (deploys create the stores functions are granted).
    Create {
        /// The store.
        store: String,
    },
    /// Delete a store and every key in it.
    Drop {
        /// The store.
        store: String,
    },
    /// Print a key's value (raw bytes to stdout).
    Get {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// Set a key: the value from the argument, `--from-file`, or stdin.
    Set {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The value (leave out to read `--from-file` or stdin).
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long)]
        from_file: Option<PathBuf>,
        /// Expire the key after this many seconds.
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Delete a key.
    Delete {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// List keys, a page at a time (`--cursor` from the previous page) or all of them.
    List {
        /// The store.
        store: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Start after this cursor.
        #[arg(long)]
        cursor: Option<String>,
        /// Keys in one page (at most the server's page size); every page if left out.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Add to a counter (a decimal integer; absent counts as 0) and print its new value.
    Incr {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// How much to add (may be negative).
        #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
        by: i64,
    },
}

/// `s` with every byte but the unreserved ones percent-encoded (a key may hold `/`, `?`, `%`).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn key_path(store: &str, key: &str) -> String {
    format!("/v1/kv/stores/{}/keys/{}", encode(store), encode(key))
}

pub(crate) async fn kv(args: KvArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let print = |v: &Value| -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    };
    match args.command {
        KvCommand::Stores => {
            let v: Value = client.get_json("/v1/kv/stores").await?;
            if args.json {
                return print(&v).map(|()| ExitCode::SUCCESS);
            }
            let stores = v["stores"].as_array().cloned().unwrap_or_default();
            if stores.is_empty() {
                println!("no key-value stores (deploy a function with `key_value_stores`)");
            } else {
                let rows: Vec<Vec<String>> = stores
                    .iter()
                    .map(|s| {
                        vec![
                            s["name"].as_str().unwrap_or("").to_owned(),
                            s["keys"].to_string(),
                            output::human_bytes(s["bytes"].as_u64().unwrap_or(0)),
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["STORE", "KEYS", "SIZE"], &rows));
            }
            let u = &v["usage"];
            println!(
                "{} {} of {}",
                output::dim("project usage:"),
                output::human_bytes(u["bytes"].as_u64().unwrap_or(0)),
                output::human_bytes(u["quota_bytes"].as_u64().unwrap_or(0)),
            );
        }
        KvCommand::Create { store } => {
            let path = format!("/v1/kv/stores/{}", encode(&store));
            let v: Value = client
                .send(client.request(Method::PUT, &path))
                .await?
                .json()
                .await?;
            if args.json {
                print(&v)?;
            } else if v["created"] == true {
                println!("created store {}", output::bold(&store));
            } else {
                println!("store {} already exists", output::bold(&store));
            }
        }
        KvCommand::Drop { store } => {
            let path = format!("/v1/kv/stores/{}", encode(&store));
            client.send(client.request(Method::DELETE, &path)).await?;
            println!("deleted store {} and its keys", output::bold(&store));
        }
        KvCommand::Get { store, key } => {
            let resp = client
                .send(client.request(Method::GET, &key_path(&store, &key)))
                .await?;
            let bytes = resp.bytes().await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            if output::stdout_is_tty() && !bytes.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
        }
        KvCommand::Set {
            store,
            key,
            value,
            from_file,
            ttl,
        } => {
            let body = match (value, from_file) {
                (Some(v), None) => v.into_bytes(),
                (None, Some(path)) => std::fs::read(&path)
                    .with_context(|| format!("reading the value from {}", path.display()))?,
                (None, None) => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .context("reading the value from stdin")?;
                    buf
                }
                (Some(_), Some(_)) => anyhow::bail!("give the value or --from-file, not both"),
            };
            let mut req = client
                .request(Method::PUT, &key_path(&store, &key))
                .body(body);
            if let Some(ttl) = ttl {
                req = req.query(&[("ttl", ttl)]);
            }
            let v: Value = client.send(req).await?.json().await?;
            if args.json {
                print(&v)?;
            } else {
                println!("set {} (revision {})", output::bold(&key), v["revision"]);
            }
        }
        KvCommand::Delete { store, key } => {
            client
                .send(client.request(Method::DELETE, &key_path(&store, &key)))
                .await?;
            println!("deleted {}", output::bold(&key));
        }
        KvCommand::List {
            store,
            prefix,
            cursor,
            limit,
        } => {
            let path = format!("/v1/kv/stores/{}/keys", encode(&store));
            let mut cursor = cursor;
            let mut all = Vec::new();
            loop {
                let mut query: Vec<(&str, String)> = vec![("prefix", prefix.clone())];
                if let Some(c) = &cursor {
                    query.push(("cursor", c.clone()));
                }
                if let Some(l) = limit {
                    query.push(("limit", l.to_string()));
                }
                let page: Value = client
                    .send(client.request(Method::GET, &path).query(&query))
                    .await?
                    .json()
                    .await?;
                all.extend(page["keys"].as_array().cloned().unwrap_or_default());
                cursor = page["cursor"].as_str().map(str::to_owned);
                if limit.is_some() || cursor.is_none() {
                    break;
                }
            }
            if args.json {
                print(&json!({"keys": all, "cursor": cursor}))?;
            } else {
                for k in &all {
                    println!("{}", k.as_str().unwrap_or(""));
                }
                if let (Some(c), Some(_)) = (&cursor, limit) {
                    eprintln!("{} --cursor {c}", output::dim("more:"));
                }
            }
        }
        KvCommand::Incr { store, key, by } => {
            let v: Value = client
                .send(
                    client
                        .request(Method::POST, &key_path(&store, &key))
                        .json(&json!({ "increment": by })),
                )
                .await?
                .json()
                .await?;
            if args.json {
                print(&v)?;
            } else {
                println!("{}", v["value"]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
