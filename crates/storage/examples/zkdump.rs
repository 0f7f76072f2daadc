//! `cargo run -p oxkeeper-storage --example zkdump -- [--json] <file-or-dir>`: describes a
//! txn log, a snapshot or a data directory (like zkTxnLogToolkit / zkSnapShotToolkit).
//! `--recover <dataDir> [dataLogDir]` instead recovers and prints a summary.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    if rest.first().map(|s| s.as_str()) == Some("--recover") {
        let Some(data) = rest.get(1) else {
            eprintln!("usage: zkdump --recover <dataDir> [dataLogDir]");
            return ExitCode::from(2);
        };
        let log = rest.get(2).unwrap_or(data);
        return match oxkeeper_storage::recover(
            Path::new(data.as_str()),
            Path::new(log.as_str()),
            Default::default(),
        ) {
            Ok(r) => {
                println!(
                    "snapshot {:?} (0x{:x}), {} txns replayed, last zxid 0x{:x}, {} nodes, {} sessions, dead {:?}, digest {:?}",
                    r.snapshot, r.snapshot_zxid, r.txns_replayed, r.last_zxid,
                    r.tree.node_count(), r.sessions.len(), r.dead_sessions, r.digest
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(path) = rest.first() else {
        eprintln!("usage: zkdump [--json] <log|snapshot|dir>");
        return ExitCode::from(2);
    };
    match oxkeeper_storage::inspect::describe(Path::new(path.as_str()), json) {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
