//! `oxkeeper cli`: a shell for any ZooKeeper-compatible server with zkCli.sh's commands and
//! output formats.
//!
//! Three ways to use it:
//! * `oxkeeper cli --server host:port get -s /x` runs one command, prints what zkCli prints
//!   (errors on stderr) and exits with 0, or non-zero when the command failed;
//! * with standard input not a terminal, it runs each line read as a command (a script);
//! * otherwise it is interactive: a `[zk: host:port(CONNECTED) 0] ` prompt, history kept
//!   in `~/.oxkeeper_cli_history`, TAB completion of commands and znode paths, and watch
//!   events printed above the prompt as they arrive.

mod command;
mod format;
mod interactive;
mod shell;

use std::io::{BufRead, IsTerminal};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use rustyline::ExternalPrinter;

use shell::{lock, Flow, Mode, Output, Shell, Sink};

#[derive(Args, Debug)]
pub struct CliArgs {
    /// The server to talk to: host:port (several separated by commas, and a /chroot may
    /// follow, as for zkCli.sh -server).
    #[arg(long, short = 's', default_value = "localhost:2181")]
    server: String,
    /// Session timeout in milliseconds.
    #[arg(long, default_value_t = 30000)]
    timeout: u64,
    /// A command and its arguments to run instead of a shell (for example `get -s /x`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// Runs the shell; returns the process exit status.
pub fn run(args: CliArgs) -> i32 {
    // The client library logs connection details at info level; a shell shows none of
    // that unless asked with OXKEEPER_LOG.
    let dispatch = quiet_logging();
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let thread_dispatch = dispatch.clone();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(move || {
            // Lives as long as the thread.
            std::mem::forget(tracing::dispatcher::set_default(&thread_dispatch));
        })
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    let session_timeout = Duration::from_millis(args.timeout);
    if !args.command.is_empty() {
        return one_shot(rt, args.server, session_timeout, &args.command);
    }
    if std::io::stdin().is_terminal() {
        interactive(rt, args.server, session_timeout)
    } else {
        script(rt, args.server, session_timeout)
    }
}

fn quiet_logging() -> tracing::Dispatch {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OXKEEPER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .finish(),
    )
}

/// Watch events and session changes go to stdout, between commands' output.
fn stdout_sink() -> Sink {
    Arc::new(|text: String| {
        let mut out = Output::default();
        out.out_raw(text);
        out.write();
    })
}

fn one_shot(
    rt: tokio::runtime::Runtime,
    server: String,
    timeout: Duration,
    words: &[String],
) -> i32 {
    let mut shell = Shell::new(rt, Mode::OneShot, server, timeout, stdout_sink());
    let mut out = Output::default();
    let offline = matches!(words[0].as_str(), "help" | "version" | "quit" | "exit");
    if !offline && !shell.connect(&mut out) {
        out.write();
        return 1;
    }
    let flow = shell.execute(words, &mut out);
    out.write();
    shell.disconnect(true);
    match flow {
        Flow::Status(s) => s,
        Flow::Quit => 0,
    }
}

/// Runs each line of standard input; the status is the last failed command's, or 0.
fn script(rt: tokio::runtime::Runtime, server: String, timeout: Duration) -> i32 {
    let mut shell = Shell::new(rt, Mode::Script, server, timeout, stdout_sink());
    let mut out = Output::default();
    let mut status = if shell.connect(&mut out) { 0 } else { 1 };
    out.write();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut out = Output::default();
        let flow = shell.execute_line(&line, &mut out);
        // The server sends the events a command causes before its answer: zkCli prints
        // them first, and so does this.
        shell.settle_events();
        out.write();
        match flow {
            Flow::Quit => break,
            Flow::Status(0) => {}
            Flow::Status(s) => status = s,
        }
    }
    shell.disconnect(true);
    status
}

fn interactive(rt: tokio::runtime::Runtime, server: String, timeout: Duration) -> i32 {
    let mut editor = match interactive::editor() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot set up the terminal: {e}");
            return 1;
        }
    };
    // Events are printed above the prompt while a line is being typed.
    let sink: Sink = match editor.create_external_printer() {
        Ok(printer) => {
            let printer = Mutex::new(printer);
            Arc::new(move |text: String| {
                let _ = lock(&printer).print(text);
            })
        }
        Err(_) => stdout_sink(),
    };
    let mut shell = Shell::new(rt, Mode::Interactive, server.clone(), timeout, sink);
    let mut out = Output::default();
    out.out(format!("Connecting to {server}"));
    out.out("Welcome to the oxkeeper shell! Type help for the commands.");
    shell.connect(&mut out);
    out.write();
    let status = interactive::run(&mut shell, &mut editor);
    shell.disconnect(true);
    status
}
