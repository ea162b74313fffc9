//! `updraft db collections|get|put|create|patch|delete|query|export|import`: the project's
//! document collections, through the control API's `/v1/db` as a key (rules do not apply; a
//! viewer reads, a deployer writes). Export and import are JSON lines, one document per line.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use super::kv::encode;
use crate::Remote;
use crate::client::Client;
use crate::output;

/// Documents per import request (the server's limit).
const IMPORT_BATCH: usize = 1000;
/// Bytes per import request, at most (well under the server's 64 MiB).
const IMPORT_BATCH_BYTES: usize = 8 << 20;

/// Read and change the project's document collections (declared in `[[collections]]`).
#[derive(clap::Args)]
pub(crate) struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

#[derive(clap::Subcommand)]
enum DbCommand {
    /// List the project's collections with their indexes and rules.
    Collections,
    /// Print a document.
    Get {
        /// The collection.
        collection: String,
        /// The document's id.
        id: String,
    },
    /// Create or replace a document: its JSON from the argument, `--from-file`, or stdin.
    Put {
        /// The collection.
        collection: String,
        /// The document's id.
        id: String,
        #[command(flatten)]
        json: JsonInput,
    },
    /// Create a document with a new id and print the id.
    Create {
        /// The collection.
        collection: String,
        #[command(flatten)]
        json: JsonInput,
    },
    /// Merge a JSON patch (RFC 7396: `null` removes a field) into a document.
    Patch {
        /// The collection.
        collection: String,
        /// The document's id.
        id: String,
        #[command(flatten)]
        json: JsonInput,
    },
    /// Delete a document.
    Delete {
        /// The collection.
        collection: String,
        /// The document's id.
        id: String,
    },
    /// Query a collection on its declared fields.
    Query {
        /// The collection.
        collection: String,
        /// A filter, `<field> <op> <JSON value>` (ops ==, !=, <, <=, >, >=, in, prefix);
        /// repeat for more.
        #[arg(long = "where", value_name = "FILTER")]
        filters: Vec<String>,
        /// Sort by `<field>[:desc]`.
        #[arg(long)]
        order: Option<String>,
        /// Documents in one page; every page if left out.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Write every document of a collection as JSON lines (to stdout or `--out`).
    Export {
        /// The collection.
        collection: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create or replace documents from JSON lines (`{"id": ..., "data": {...}}`, as `export`
    /// writes them; no `id`: a new one), from a file or stdin.
    Import {
        /// The collection.
        collection: String,
        /// The JSON-lines file (stdin if left out or `-`).
        file: Option<PathBuf>,
    },
}

/// A document's JSON: from the argument, `--from-file`, or stdin.
#[derive(clap::Args)]
struct JsonInput {
    /// The JSON (leave out to read `--from-file` or stdin).
    #[arg(value_name = "JSON")]
    document: Option<String>,
    /// Read the JSON from this file.
    #[arg(long)]
    from_file: Option<PathBuf>,
}

fn docs_path(collection: &str) -> String {
    format!("/v1/db/collections/{}/docs", encode(collection))
}

fn doc_path(collection: &str, id: &str) -> String {
    format!("{}/{}", docs_path(collection), encode(id))
}

/// The JSON of an argument, a file, or stdin, checked to be JSON.
fn read_json(input: JsonInput) -> anyhow::Result<Value> {
    let text = match (input.document, input.from_file) {
        (Some(v), None) => v,
        (None, Some(path)) => {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .context("reading the JSON from stdin")?;
            buf
        }
        (Some(_), Some(_)) => anyhow::bail!("give the JSON or --from-file, not both"),
    };
    serde_json::from_str(&text).context("the document is not valid JSON")
}

pub(crate) async fn db(args: DbArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.remote)?;
    let print = |v: &Value| -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    };
    match args.command {
        DbCommand::Collections => {
            let v: Value = client.get_json("/v1/db/collections").await?;
            if args.json {
                return print(&v).map(|()| ExitCode::SUCCESS);
            }
            let list = v["collections"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no collections (declare them in [[collections]] and deploy)");
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    let names = |v: &Value| -> String {
                        match v {
                            Value::Array(a) => a
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", "),
                            Value::Object(o) => o.keys().cloned().collect::<Vec<_>>().join(", "),
                            _ => String::new(),
                        }
                    };
                    vec![
                        c["name"].as_str().unwrap_or("").to_owned(),
                        names(&c["indexes"]),
                        names(&c["rules"]),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                print!(
                    "{}",
                    output::table(&["COLLECTION", "INDEXES", "RULES"], &rows)
                );
            }
        }
        DbCommand::Get { collection, id } => {
            let v: Value = client.get_json(&doc_path(&collection, &id)).await?;
            print(&v)?;
        }
        DbCommand::Put {
            collection,
            id,
            json,
        } => {
            let body = read_json(json)?;
            let req = client
                .request(Method::PUT, &doc_path(&collection, &id))
                .json(&body);
            let resp = client.send(req).await?;
            let created = resp.status() == reqwest::StatusCode::CREATED;
            let v: Value = resp.json().await?;
            if args.json {
                print(&v)?;
            } else {
                let what = if created { "created" } else { "replaced" };
                println!("{what} {} (revision {})", output::bold(&id), v["revision"]);
            }
        }
        DbCommand::Create { collection, json } => {
            let body = read_json(json)?;
            let req = client
                .request(Method::POST, &docs_path(&collection))
                .json(&body);
            let v: Value = client.send(req).await?.json().await?;
            if args.json {
                print(&v)?;
            } else {
                println!("{}", v["id"].as_str().unwrap_or(""));
            }
        }
        DbCommand::Patch {
            collection,
            id,
            json,
        } => {
            let body = read_json(json)?;
            let req = client
                .request(Method::PATCH, &doc_path(&collection, &id))
                .json(&body);
            let v: Value = client.send(req).await?.json().await?;
            if args.json {
                print(&v)?;
            } else {
                println!("patched {} (revision {})", output::bold(&id), v["revision"]);
            }
        }
        DbCommand::Delete { collection, id } => {
            client
                .send(client.request(Method::DELETE, &doc_path(&collection, &id)))
                .await?;
            println!("deleted {}", output::bold(&id));
        }
        DbCommand::Query {
            collection,
            filters,
            order,
            limit,
        } => {
            let mut query: Vec<(&str, String)> =
                filters.iter().map(|f| ("where", f.clone())).collect();
            if let Some(o) = order {
                query.push(("order", o));
            }
            if let Some(l) = limit {
                query.push(("limit", l.to_string()));
            }
            let (docs, cursor) = pages(&client, &collection, &query, limit.is_none(), None).await?;
            if args.json {
                print(&json!({ "docs": docs, "cursor": cursor }))?;
            } else {
                let rows: Vec<Vec<String>> = docs
                    .iter()
                    .map(|d| {
                        let mut data = d["data"].to_string();
                        if data.chars().count() > 70 {
                            data = data.chars().take(69).collect::<String>() + "…";
                        }
                        vec![
                            d["id"].as_str().unwrap_or("").to_owned(),
                            d["revision"].to_string(),
                            data,
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["ID", "REVISION", "DATA"], &rows));
                if let (Some(c), Some(_)) = (&cursor, limit) {
                    eprintln!("{} the next page has cursor {c}", output::dim("more:"));
                }
            }
        }
        DbCommand::Export { collection, out } => {
            let mut sink: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let bar = output::spinner(format!("exporting {collection}"));
            let query = [("limit", "1000".to_owned())];
            let mut count = 0u64;
            let mut write = |page: &[Value]| -> anyhow::Result<()> {
                for d in page {
                    serde_json::to_writer(&mut sink, d)?;
                    sink.write_all(b"\n")?;
                }
                count += page.len() as u64;
                bar.set_message(format!("exporting {collection}: {count} documents"));
                Ok(())
            };
            pages(&client, &collection, &query, true, Some(&mut write)).await?;
            sink.flush()?;
            bar.finish_and_clear();
            eprintln!(
                "exported {count} documents from {}",
                output::bold(&collection)
            );
        }
        DbCommand::Import { collection, file } => {
            let (reader, len): (Box<dyn Read>, u64) = match file.as_deref() {
                None => (Box::new(std::io::stdin()), 0),
                Some(p) if p.as_os_str() == "-" => (Box::new(std::io::stdin()), 0),
                Some(p) => {
                    let f = std::fs::File::open(p)
                        .with_context(|| format!("opening {}", p.display()))?;
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    (Box::new(f), len)
                }
            };
            let bar = output::bytes_bar(len, format!("importing into {collection}"));
            let path = format!("/v1/db/collections/{}/import", encode(&collection));
            let (mut created, mut replaced, mut line_no) = (0u64, 0u64, 0usize);
            let mut lines = BufReader::new(reader).lines();
            loop {
                let (mut batch, mut n, first) = (String::new(), 0, line_no + 1);
                while n < IMPORT_BATCH && batch.len() < IMPORT_BATCH_BYTES {
                    let Some(line) = lines.next() else { break };
                    let line = line.context("reading the JSON lines")?;
                    line_no += 1;
                    bar.inc(line.len() as u64 + 1);
                    if line.trim().is_empty() {
                        continue;
                    }
                    batch.push_str(&line);
                    batch.push('\n');
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                let req = client.request(Method::POST, &path).body(batch);
                let v: Value = client
                    .send(req)
                    .await
                    .with_context(|| format!("importing the lines from line {first} on"))?
                    .json()
                    .await?;
                created += v["created"].as_u64().unwrap_or(0);
                replaced += v["replaced"].as_u64().unwrap_or(0);
            }
            bar.finish_and_clear();
            if args.json {
                print(&json!({ "created": created, "replaced": replaced }))?;
            } else {
                println!(
                    "imported {} documents into {} ({created} created, {replaced} replaced)",
                    created + replaced,
                    output::bold(&collection)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes each page of documents as it comes.
type PageSink<'a> = dyn FnMut(&[Value]) -> anyhow::Result<()> + 'a;

/// Reads a query's pages (every one when `all`, else the first), handing each to `each`;
/// returns the documents (unless `each` takes them: `None`) and the last cursor.
async fn pages(
    client: &Client,
    collection: &str,
    query: &[(&str, String)],
    all: bool,
    mut each: Option<&mut PageSink<'_>>,
) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let mut docs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_vec();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page: Value = client
            .send(
                client
                    .request(Method::GET, &docs_path(collection))
                    .query(&q),
            )
            .await?
            .json()
            .await?;
        let list = page["docs"].as_array().cloned().unwrap_or_default();
        match each.as_mut() {
            Some(f) => f(&list)?,
            None => docs.extend(list),
        }
        cursor = page["cursor"].as_str().map(str::to_owned);
        if !all || cursor.is_none() {
            return Ok((docs, cursor));
        }
    }
}
