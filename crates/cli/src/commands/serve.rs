//! `updraft serve`: run the data plane and the control API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;
use updraft_server::{FileConfig, Server, ServerConfig};

use crate::output::{bold, dim, green};

/// Where to listen and keep state.
#[derive(clap::Args, Clone)]
pub(crate) struct ServeArgs {
    /// Data directory: SQLite database, artifacts, compiled-code cache, admin token.
    #[arg(long, env = "UPDRAFT_DATA_DIR", default_value = ".updraft")]
    pub(crate) data_dir: PathBuf,
    /// Data plane address (function traffic).
    #[arg(long, env = "UPDRAFT_LISTEN", default_value = "127.0.0.1:3000")]
    pub(crate) listen: SocketAddr,
    /// Control API address (admin token required).
    #[arg(long, env = "UPDRAFT_CONTROL_LISTEN", default_value = "127.0.0.1:3001")]
    pub(crate) control_listen: SocketAddr,
    /// S3 API address (buckets and objects; S3 access keys sign requests).
    #[arg(long, env = "UPDRAFT_S3_LISTEN", default_value = "127.0.0.1:3002")]
    pub(crate) s3_listen: SocketAddr,
    /// Server configuration file: function defaults and maxima, global concurrency cap, header
    /// caps, instance pool (see docs/server-config.md).
    #[arg(long, env = "UPDRAFT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// A server opened and bound, not yet running.
pub(crate) struct Bound {
    pub(crate) server: Server,
    pub(crate) data: TcpListener,
    pub(crate) control: TcpListener,
    pub(crate) control_addr: SocketAddr,
}

/// Opens the data directory, loads functions, binds both listeners, and prints where.
pub(crate) async fn bind(args: &ServeArgs) -> anyhow::Result<Bound> {
    let mut config = ServerConfig::new(&args.data_dir);
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        config.file = FileConfig::parse(&path.display().to_string(), &text)?;
    }
    // Process functions are sandboxed by this binary itself (`updraft __updraft-sandbox`).
    config.file.process.helper = std::env::current_exe().ok();
    let global_max = config.file.global_max_concurrency;
    let connections = config.file.http.max_connections + config.file.control_http.max_connections;
    raise_open_files_limit(connections);
    let server = Server::open(config)
        .await
        .with_context(|| format!("opening data directory {}", args.data_dir.display()))?;
    let data = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the data plane to {}", args.listen))?;
    let control = TcpListener::bind(args.control_listen)
        .await
        .with_context(|| format!("binding the control API to {}", args.control_listen))?;
    let s3 = TcpListener::bind(args.s3_listen)
        .await
        .with_context(|| format!("binding the S3 API to {}", args.s3_listen))?;
    let data_addr = data.local_addr()?;
    let control_addr = control.local_addr()?;
    let s3_addr = s3.local_addr()?;
    let server = server.with_s3(s3);
    if let Some(token) = server.new_admin_token() {
        println!(
            "{} {token}\n  {}",
            bold("admin token (shown once):"),
            dim(&format!(
                "also saved to {}",
                server.admin_token_file().display()
            ))
        );
    }
    for (name, why) in server.failed_loads() {
        eprintln!("warning: function `{name}` was not loaded: {why}");
    }
    // These two lines are the readiness signal scripts and tests wait for.
    println!("{} http://{data_addr}", green("data plane listening on"));
    println!(
        "{} http://{control_addr}",
        green("control API listening on")
    );
    println!("{} http://{s3_addr}", green("S3 API listening on"));
    println!(
        "{}",
        dim(&format!(
            "serving {} function(s), at most {} invocations at once ([concurrency] global_max); \
             Ctrl-C to stop",
            server.function_count(),
            global_max.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        ))
    );
    Ok(Bound {
        server,
        data,
        control,
        control_addr,
    })
}

/// File descriptors the server needs besides its connections: the database, artifacts,
/// compiled code, event delivery, outbound requests.
const FDS_BESIDES_CONNECTIONS: u64 = 1_024;

/// Raises the soft open-files limit to the hard one (as Go's runtime does at start): each
/// connection is a file descriptor, and distributions' default soft limit (1024) is below the
/// default connection caps. Warns when even the hard limit can't hold the caps.
fn raise_open_files_limit(connections: usize) {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let wanted = connections as u64 + FDS_BESIDES_CONNECTIONS;
        let mut raised = limit;
        raised.current = limit.maximum;
        let now = match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit.maximum,
            Err(_) => limit.current,
        };
        if let Some(now) = now
            && now < wanted
        {
            eprintln!(
                "warning: open-files limit is {now}, below the {connections} connections \
                 [http] max_connections and control_max_connections allow (plus \
                 {FDS_BESIDES_CONNECTIONS} for the server itself); raise it (ulimit -n) or lower \
                 the caps"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = connections;
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("shutting down: finishing in-flight requests (Ctrl-C again to force)");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let b = bind(&args).await?;
    b.server.run(b.data, b.control, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
