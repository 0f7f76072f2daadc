//! The `oxkeeper` command: `serve` (the default) runs a standalone server.
//!
//! Holds no server logic: it parses the command line, sets up logging and signals, and
//! hands a [`Config`] to `oxkeeper-server`.

mod bench;
mod cli;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use oxkeeper_server::Config;

#[derive(Parser)]
#[command(
    name = "oxkeeper",
    version,
    about = "A ZooKeeper-compatible coordination server"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a standalone server (the default when no command is given).
    Serve(ServeArgs),
    /// Load-test a ZooKeeper-compatible server (this one or Apache ZooKeeper) over the wire.
    Bench(bench::BenchArgs),
    /// Print transaction logs and snapshots (oxkeeper's or Apache ZooKeeper's): a file, or
    /// a data directory and everything in it.
    Inspect(InspectArgs),
    /// A zkCli.sh-like shell for a ZooKeeper-compatible server: interactive (history, TAB
    /// completion of znode paths), one command from the command line, or commands from stdin.
    Cli(cli::CliArgs),
}

#[derive(Args)]
struct InspectArgs {
    /// A log.<zxid> or snapshot.<zxid> file, or a directory holding them (or version-2).
    path: PathBuf,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Default)]
struct ServeArgs {
    /// An Apache ZooKeeper zoo.cfg.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Client port (overrides clientPort; 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Data directory (overrides dataDir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// When a transaction log is corrupt in the middle, cut it at the first bad record and
    /// start from what precedes it, instead of refusing to start. Transactions after that
    /// point are lost: use it only after copying the data directory.
    #[arg(long)]
    truncate_log_at_corruption: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OXKEEPER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Bench(a)) => return bench::run(a),
        Some(Command::Cli(a)) => std::process::exit(cli::run(a)),
        Some(Command::Inspect(a)) => {
            let text = oxkeeper_storage::inspect::describe(&a.path, a.json)
                .with_context(|| format!("cannot inspect {}", a.path.display()))?;
            // A closed pipe (`| head`) is a normal way to stop reading, not an error.
            return match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            };
        }
        None => ServeArgs::default(),
    };
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(port) = args.port {
        config.client_port = port;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    config.truncate_log_at_corruption = args.truncate_log_at_corruption;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Watch the signals before announcing the port: whoever reads that line may signal
    // us at once, and an unwatched SIGTERM would kill us without a clean shutdown.
    let shutdown = shutdown_signal()?;
    let mut server = oxkeeper_server::start(config).await?;
    // Tests and scripts that start us on port 0 read the chosen port from this line.
    println!("oxkeeper listening on {}", server.local_addr);
    tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down");
            server.shutdown().await.map_err(|e| anyhow::anyhow!(e))
        }
        // The server stops by itself only when its disk failed.
        stopped = server.stopped() => {
            stopped.map_err(|e| anyhow::anyhow!(e)).context("the server stopped")?;
            anyhow::bail!("the server stopped unexpectedly")
        }
    }
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed when this returns.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
