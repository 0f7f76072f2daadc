//! The prompt: line editing and history (rustyline), TAB completion of command names and
//! of znode paths (asking the server for the children of the path typed so far).

use std::path::PathBuf;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::command;
use super::shell::{lock, Flow, Output, SharedClient, Shell};

/// Where the history is kept between runs.
pub fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".oxkeeper_cli_history"))
}

pub type LineEditor = Editor<ZkHelper, DefaultHistory>;

pub fn editor() -> rustyline::Result<LineEditor> {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .max_history_size(1000)?
        .history_ignore_dups(true)?
        .history_ignore_space(true)
        .build();
    let mut editor = LineEditor::with_config(config)?;
    if let Some(path) = history_file() {
        // No history yet is fine.
        let _ = editor.load_history(&path);
    }
    Ok(editor)
}

/// Completes command names and znode paths.
pub struct ZkHelper {
    client: SharedClient,
    runtime: tokio::runtime::Handle,
}

impl ZkHelper {
    pub fn new(shell: &Shell) -> ZkHelper {
        ZkHelper {
            client: shell.shared_client(),
            runtime: shell.runtime().handle().clone(),
        }
    }

    /// The children of `dir`, or none when there is no session or the server is slow.
    fn children(&self, dir: &str) -> Vec<String> {
        let Some(client) = lock(&self.client).clone() else {
            return Vec::new();
        };
        if client.state().is_terminated() {
            return Vec::new();
        }
        self.runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(2), client.list_children(dir)).await
            })
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

/// The completions for `line` with the cursor at `pos`: where the replaced text starts,
/// and the candidates. The first word completes to a command name (and a space); a word
/// starting with `/` completes its last component among the children of its parent.
pub fn complete(
    line: &str,
    pos: usize,
    children: impl Fn(&str) -> Vec<String>,
) -> (usize, Vec<Pair>) {
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if before[..start].trim().is_empty() {
        let candidates = command::COMMANDS
            .iter()
            .filter(|c| c.name.starts_with(word))
            .map(|c| Pair {
                display: c.name.to_owned(),
                replacement: format!("{} ", c.name),
            })
            .collect();
        return (start, candidates);
    }
    let Some(slash) = word.rfind('/') else {
        return (pos, Vec::new());
    };
    if !word.starts_with('/') {
        return (pos, Vec::new());
    }
    let dir = if slash == 0 { "/" } else { &word[..slash] };
    let prefix = &word[slash + 1..];
    let mut names: Vec<String> = children(dir)
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    let candidates = names
        .into_iter()
        .map(|name| Pair {
            display: name.clone(),
            replacement: name,
        })
        .collect();
    (start + slash + 1, candidates)
}

impl Completer for ZkHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(complete(line, pos, |dir| self.children(dir)))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}

impl Highlighter for ZkHelper {}

impl Validator for ZkHelper {}

impl Helper for ZkHelper {}

/// Reads and runs commands until `quit`, `exit` or end of input (Ctrl-D); Ctrl-C drops
/// the line being typed. Returns 0, or 1 when the terminal could not be read (the
/// commands' errors were on the screen).
pub fn run(shell: &mut Shell, editor: &mut LineEditor) -> i32 {
    editor.set_helper(Some(ZkHelper::new(shell)));
    let history = history_file();
    loop {
        let line = match editor.readline(&shell.prompt()) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("cannot read the terminal: {e}");
                return 1;
            }
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
            if let Some(path) = &history {
                // A history that cannot be saved is not worth stopping the shell for.
                let _ = editor.save_history(path);
            }
        }
        let mut out = Output::default();
        let flow = shell.execute_line(&line, &mut out);
        out.write();
        if flow == Flow::Quit {
            break;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn children(dir: &str) -> Vec<String> {
        match dir {
            "/" => vec!["zookeeper".into(), "app".into(), "apple".into()],
            "/app" => vec!["config".into(), "locks".into()],
            _ => Vec::new(),
        }
    }

    fn texts(result: (usize, Vec<Pair>)) -> (usize, Vec<String>) {
        (
            result.0,
            result.1.into_iter().map(|p| p.replacement).collect(),
        )
    }

    #[test]
    fn commands() {
        assert_eq!(
            texts(complete("getA", 4, children)),
            (
                0,
                vec!["getAcl ".to_owned(), "getAllChildrenNumber ".to_owned()]
            )
        );
        assert_eq!(
            texts(complete("  del", 5, children)),
            (2, vec!["delete ".to_owned(), "deleteall ".to_owned()])
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            texts(complete("ls /ap", 6, children)),
            (4, vec!["app".to_owned(), "apple".to_owned()])
        );
        assert_eq!(
            texts(complete("get -s /app/c", 13, children)),
            (12, vec!["config".to_owned()])
        );
        assert_eq!(
            texts(complete("ls /", 4, children)).1,
            ["app", "apple", "zookeeper"]
        );
        assert!(complete("set /app data", 13, children).1.is_empty());
    }
}
