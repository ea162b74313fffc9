//! `updraft`: the command-line tool. Parses arguments and calls `updraft-server` (for `serve` and
//! `up`) or the control API (everything else). No business logic lives here.

mod client;
mod commands;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the data plane allocates on one thread and frees
/// on another (log lines and records travel to the writer thread), which glibc's malloc pays
/// for with arena locks; see bench/RESULTS.md for the measured difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Updraft: serverless functions on your own machines.
#[derive(Parser)]
#[command(name = "updraft", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the control API is and how to authenticate, for commands that talk to a server.
#[derive(clap::Args, Clone)]
pub(crate) struct Remote {
    /// Control API base URL.
    #[arg(
        long,
        global = true,
        env = "UPDRAFT_SERVER",
        default_value = "http://127.0.0.1:3001"
    )]
    server: String,
    /// Admin token (default: read from `<data-dir>/admin-token`).
    #[arg(long, global = true, env = "UPDRAFT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data directory of a local server, used to find its admin token.
    #[arg(
        long,
        global = true,
        env = "UPDRAFT_DATA_DIR",
        default_value = ".updraft"
    )]
    data_dir: PathBuf,
    /// The project to act in (default: the key's own project; `default` for the admin key).
    #[arg(long, global = true, env = "UPDRAFT_PROJECT")]
    project: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: data plane and control API.
    Serve(commands::serve::ServeArgs),
    /// Run the server and deploy an app directory into it (for local development).
    Up(commands::up::UpArgs),
    /// Build, upload and deploy the app in a directory.
    Deploy(commands::deploy::DeployArgs),
    /// Invoke a function directly and print its response.
    Invoke(commands::invoke::InvokeArgs),
    /// List deployed functions.
    Functions(commands::functions::FunctionsArgs),
    /// Show a function's log lines.
    Logs(commands::logs::LogsArgs),
    /// List a function's versions and which aliases point at them.
    Versions(commands::versions::VersionsArgs),
    /// Point aliases at versions, with optional canaries.
    Alias(commands::versions::AliasArgs),
    /// Point `live` back at the previous version (or drop its canary).
    Rollback(commands::versions::RollbackArgs),
    /// Show usage (invocations, GB-seconds, estimated cost) and quotas.
    Usage(commands::usage::UsageArgs),
    /// List a function's invocation records (duration, memory, status).
    Invocations(commands::usage::InvocationsArgs),
    /// Manage queues; send, receive and delete messages.
    Queue(commands::queue::QueueArgs),
    /// Manage topics; publish; subscribe queues.
    Topic(commands::queue::TopicArgs),
    /// Show an asynchronous invoke's status and result.
    Async(commands::queue::AsyncArgs),
    /// Manage scoped API keys (owner, deployer, viewer, metrics).
    Key(commands::key::KeyArgs),
    /// Manage projects (tenants) and their custom domains.
    Project(commands::project::ProjectArgs),
    /// Manage the project's secrets (values are never shown).
    Secret(commands::secret::SecretArgs),
    /// Read and change the project's key-value stores.
    Kv(commands::kv::KvArgs),
    /// Read, query, export and import the project's document collections.
    Db(commands::db::DbArgs),
    /// Manage the project's buckets (object storage with the S3 API).
    Bucket(commands::objects::BucketArgs),
    /// Manage S3 access keys, scoped to the project or to buckets, read or write.
    #[command(name = "s3-key")]
    S3Key(commands::objects::S3KeyArgs),
    /// Show the project's static site (`[site]`) and roll it back.
    Site(commands::site::SiteArgs),
    /// Copy a file to an object (`s3://bucket/key`) or an object to a file.
    Cp(commands::objects::CpArgs),
    /// List buckets, or the objects under `s3://bucket/prefix`.
    Ls(commands::objects::LsArgs),
    /// Delete an object (`s3://bucket/key`).
    Rm(commands::objects::RmArgs),
    /// Take a consistent snapshot of the database while the server runs (admin).
    Backup(commands::backup::BackupArgs),
    /// Replace the database, or one project's part, with a backup (admin).
    Restore(commands::backup::RestoreArgs),
    /// Show who changed what in the project (the audit log).
    Audit(commands::audit::AuditArgs),
    /// Manage the project's end users.
    Users(commands::users::UsersArgs),
    /// End-user auth settings: rotate the token signing key.
    Auth(commands::users::AuthArgs),
}

fn main() -> ExitCode {
    // The process-function sandbox helper: lock down, then exec the function (before any
    // thread starts).
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == updraft_process::sandbox::HELPER_ARG)
    {
        let code = updraft_process::sandbox::helper_main(args.collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPDRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,updraft=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::stderr_is_tty())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Up(args) => commands::up::run(args).await,
            Command::Deploy(args) => commands::deploy::run(args).await,
            Command::Invoke(args) => commands::invoke::run(args).await,
            Command::Functions(args) => commands::functions::run(args).await,
            Command::Logs(args) => commands::logs::run(args).await,
            Command::Versions(args) => commands::versions::versions(args).await,
            Command::Alias(args) => commands::versions::alias(args).await,
            Command::Rollback(args) => commands::versions::rollback(args).await,
            Command::Usage(args) => commands::usage::usage(args).await,
            Command::Invocations(args) => commands::usage::invocations(args).await,
            Command::Queue(args) => commands::queue::queue(args).await,
            Command::Topic(args) => commands::queue::topic(args).await,
            Command::Key(args) => commands::key::key(args).await,
            Command::Project(args) => commands::project::project(args).await,
            Command::Secret(args) => commands::secret::secret(args).await,
            Command::Kv(args) => commands::kv::kv(args).await,
            Command::Db(args) => commands::db::db(args).await,
            Command::Bucket(args) => commands::objects::bucket(args).await,
            Command::S3Key(args) => commands::objects::s3_key(args).await,
            Command::Site(args) => commands::site::site(args).await,
            Command::Cp(args) => commands::objects::cp(args).await,
            Command::Ls(args) => commands::objects::ls(args).await,
            Command::Rm(args) => commands::objects::rm(args).await,
            Command::Backup(args) => commands::backup::backup(args).await,
            Command::Restore(args) => commands::backup::restore(args).await,
            Command::Audit(args) => commands::audit::run(args).await,
            Command::Users(args) => commands::users::users(args).await,
            Command::Auth(args) => commands::users::auth(args).await,
            Command::Async(args) => commands::queue::async_status(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
