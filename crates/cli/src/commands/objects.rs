//! `updraft bucket`, `updraft s3-key`, and `updraft cp|ls|rm`: the project's buckets, its S3
//! access keys, and objects through the control API (`/v1/buckets/...`; S3 clients use the S3
//! listener with an `s3-key`). Objects are named `s3://bucket/key`, as the AWS CLI names them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use super::kv::encode;
use crate::Remote;
use crate::client::Client;
use crate::output;

/// Manage the project's buckets (objects go through `updraft cp|ls|rm` or any S3 client).
#[derive(clap::Args)]
pub(crate) struct BucketArgs {
    #[command(subcommand)]
    command: BucketCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum BucketCommand {
    /// Create a bucket (names are unique on the server, as on S3).
    Create {
        /// 3 to 63 lower-case letters, digits, `-` and `.`.
        name: String,
        /// Anyone may GET its objects without credentials.
        #[arg(long)]
        public_read: bool,
    },
    /// List the project's buckets and what they store.
    List,
    /// Delete an empty bucket.
    Delete {
        /// The bucket.
        name: String,
    },
}

/// Manage S3 access keys (`access_key_id` + `secret_access_key` for any S3 client).
#[derive(clap::Args)]
pub(crate) struct S3KeyArgs {
    #[command(subcommand)]
    command: S3KeyCommand,
    /// Print JSON instead of text (`create --json` has `access_key_id` and
    /// `secret_access_key`).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum S3KeyCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// Limit it to a bucket: `NAME` (read and write), `NAME:read` or `NAME:write`;
        /// repeat for more. Without any, it reaches every bucket of the project.
        #[arg(long = "bucket")]
        buckets: Vec<String>,
        /// What it is for, shown by `s3-key list`.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key at once.
    Delete {
        /// The access key id (`AKUP...`).
        id: String,
    },
}

/// Copy a file to an object, an object to a file, or an object to stdout (`-`).
#[derive(clap::Args)]
pub(crate) struct CpArgs {
    /// A local file, or `s3://bucket/key`.
    from: String,
    /// A local file (`-`: stdout), or `s3://bucket/key` (a key ending in `/` takes the file's
    /// name).
    to: String,
    /// Content type of an upload (default: guessed from the file name).
    #[arg(long)]
    content_type: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// List buckets, or the objects under `s3://bucket/prefix`.
#[derive(clap::Args)]
pub(crate) struct LsArgs {
    /// `s3://bucket[/prefix]`; the project's buckets without it.
    path: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Delete an object.
#[derive(clap::Args)]
pub(crate) struct RmArgs {
    /// `s3://bucket/key`.
    path: String,
    #[command(flatten)]
    remote: Remote,
}

/// Splits `s3://bucket/key` (the key may be empty).
fn s3_path(s: &str) -> Option<(String, String)> {
    let rest = s.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), key.to_owned()))
}

fn object_path(bucket: &str, key: &str) -> String {
    let key: Vec<String> = key.split('/').map(encode).collect();
    format!("/v1/buckets/{}/objects/{}", encode(bucket), key.join("/"))
}

fn print_json(v: &Value) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn bucket(args: BucketArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    match args.command {
        BucketCommand::Create { name, public_read } => {
            let req = client
                .request(Method::POST, "/v1/buckets")
                .json(&json!({"name": name, "public_read": public_read}));
            let v: Value = client.send(req).await?.json().await?;
            if args.json {
                return print_json(&v);
            }
            let access = if public_read { " (public read)" } else { "" };
            println!("created bucket {}{access}", output::bold(&name));
        }
        BucketCommand::List => {
            let v: Value = client.get_json("/v1/buckets").await?;
            if args.json {
                return print_json(&v);
            }
            let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
            if buckets.is_empty() {
                println!("no buckets (create one with `updraft bucket create NAME`)");
            } else {
                let rows: Vec<Vec<String>> = buckets
                    .iter()
                    .map(|b| {
                        vec![
                            b["name"].as_str().unwrap_or("").to_owned(),
                            if b["public_read"] == true {
                                "public read"
                            } else {
                                "private"
                            }
                            .to_owned(),
                            b["created_at"].as_str().unwrap_or("").to_owned(),
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["BUCKET", "ACCESS", "CREATED"], &rows));
            }
            let u = &v["usage"];
            println!(
                "{} {} objects, {}",
                output::dim("project stores:"),
                u["objects"].as_u64().unwrap_or(0),
                output::human_bytes(u["bytes"].as_u64().unwrap_or(0))
            );
            if let Some(url) = v["s3_endpoint"].as_str() {
                println!("{} {url}", output::dim("S3 endpoint:"));
            }
        }
        BucketCommand::Delete { name } => {
            let path = format!("/v1/buckets/{}", encode(&name));
            client.send(client.request(Method::DELETE, &path)).await?;
            println!("deleted bucket {}", output::bold(&name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn s3_key(args: S3KeyArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    match args.command {
        S3KeyCommand::Create { buckets, name } => {
            let req = client
                .request(Method::POST, "/v1/s3-keys")
                .json(&json!({"name": name, "buckets": buckets}));
            let v: Value = client.send(req).await?.json().await?;
            if args.json {
                return print_json(&v);
            }
            println!(
                "access_key_id:     {}",
                v["access_key_id"].as_str().unwrap_or("")
            );
            println!(
                "secret_access_key: {}",
                v["secret_access_key"].as_str().unwrap_or("")
            );
            println!("{}", output::dim("the secret is shown once: keep it now"));
            if let Some(url) = v["s3_endpoint"].as_str() {
                println!(
                    "{} AWS_ENDPOINT_URL_S3={url} AWS_REGION={}",
                    output::dim("use with:"),
                    v["region"].as_str().unwrap_or("us-east-1")
                );
            }
        }
        S3KeyCommand::List => {
            let v: Value = client.get_json("/v1/s3-keys").await?;
            if args.json {
                return print_json(&v);
            }
            let keys = v["keys"].as_array().cloned().unwrap_or_default();
            if keys.is_empty() {
                println!("no S3 keys (create one with `updraft s3-key create`)");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let grants = k["grants"].as_array().cloned().unwrap_or_default();
                    let scope = if grants.is_empty() {
                        "every bucket".to_owned()
                    } else {
                        grants
                            .iter()
                            .map(|g| {
                                let b = g["bucket"].as_str().unwrap_or("");
                                match (g["read"] == true, g["write"] == true) {
                                    (true, true) => b.to_owned(),
                                    (true, false) => format!("{b}:read"),
                                    _ => format!("{b}:write"),
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    vec![
                        k["id"].as_str().unwrap_or("").to_owned(),
                        k["name"].as_str().unwrap_or("").to_owned(),
                        scope,
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["ACCESS KEY ID", "NAME", "SCOPE"], &rows)
            );
        }
        S3KeyCommand::Delete { id } => {
            let path = format!("/v1/s3-keys/{}", encode(&id));
            client.send(client.request(Method::DELETE, &path)).await?;
            println!("deleted S3 key {}", output::bold(&id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn cp(args: CpArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    match (s3_path(&args.from), s3_path(&args.to)) {
        (None, Some((bucket, mut key))) => {
            if key.is_empty() || key.ends_with('/') {
                let name = std::path::Path::new(&args.from)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("the source has no file name to use as the key")?;
                key.push_str(name);
            }
            let file = tokio::fs::File::open(&args.from)
                .await
                .with_context(|| format!("opening {}", args.from))?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let bar = output::bytes_bar(len, "uploading".into());
            let content_type = args
                .content_type
                .unwrap_or_else(|| updraft_api::media_type(&args.from).to_owned());
            let req = client
                .request(Method::PUT, &object_path(&bucket, &key))
                .header("content-type", content_type)
                .header("content-length", len)
                .body(crate::client::file_body(file, bar.clone()));
            let v: Value = client.send(req).await?.json().await?;
            bar.finish_and_clear();
            if args.json {
                return print_json(&v);
            }
            println!(
                "uploaded {} to s3://{bucket}/{key} ({})",
                args.from,
                output::human_bytes(v["size"].as_u64().unwrap_or(len))
            );
        }
        (Some((bucket, key)), None) => {
            anyhow::ensure!(!key.is_empty(), "name an object: s3://{bucket}/KEY");
            let resp = client
                .send(client.request(Method::GET, &object_path(&bucket, &key)))
                .await?;
            let len = resp.content_length().unwrap_or(0);
            let to_stdout = args.to == "-";
            let dest = PathBuf::from(&args.to);
            let dest = if dest.is_dir() {
                dest.join(key.rsplit('/').next().unwrap_or(&key))
            } else {
                dest
            };
            let bar = output::bytes_bar(if to_stdout { 0 } else { len }, "downloading".into());
            let mut stream = resp.bytes_stream();
            let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if to_stdout {
                Box::new(tokio::io::stdout())
            } else {
                Box::new(
                    tokio::fs::File::create(&dest)
                        .await
                        .with_context(|| format!("creating {}", dest.display()))?,
                )
            };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.context("the download broke off")?;
                out.write_all(&chunk).await?;
                bar.inc(chunk.len() as u64);
            }
            out.flush().await?;
            bar.finish_and_clear();
            if !to_stdout {
                eprintln!(
                    "downloaded s3://{bucket}/{key} to {} ({})",
                    dest.display(),
                    output::human_bytes(len)
                );
            }
        }
        (Some(_), Some(_)) => anyhow::bail!("copy between objects with an S3 client (CopyObject)"),
        (None, None) => anyhow::bail!("one side must be s3://bucket/key"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let Some(path) = args.path else {
        return bucket(BucketArgs {
            command: BucketCommand::List,
            json: args.json,
            remote: args.remote,
        })
        .await;
    };
    let (bucket, prefix) = s3_path(&path).context("list s3://bucket[/prefix]")?;
    let mut from: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let mut req = client
            .request(
                Method::GET,
                &format!("/v1/buckets/{}/objects", encode(&bucket)),
            )
            .query(&[("prefix", prefix.as_str())]);
        if let Some(f) = &from {
            req = req.query(&[("from", f.as_str())]);
        }
        let v: Value = client.send(req).await?.json().await?;
        all.extend(v["objects"].as_array().cloned().unwrap_or_default());
        match v["next"].as_str() {
            Some(n) => from = Some(n.to_owned()),
            None => break,
        }
    }
    if args.json {
        return print_json(&json!({ "objects": all }));
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|o| {
            vec![
                o["modified_at"].as_str().unwrap_or("").to_owned(),
                output::human_bytes(o["size"].as_u64().unwrap_or(0)),
                o["key"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    print!("{}", output::table(&["MODIFIED", "SIZE", "KEY"], &rows));
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let (bucket, key) = s3_path(&args.path).context("delete s3://bucket/key")?;
    anyhow::ensure!(!key.is_empty(), "name an object: s3://{bucket}/KEY");
    client
        .send(client.request(Method::DELETE, &object_path(&bucket, &key)))
        .await?;
    println!("deleted s3://{bucket}/{key}");
    Ok(ExitCode::SUCCESS)
}
