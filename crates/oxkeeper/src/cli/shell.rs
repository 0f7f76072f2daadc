//! The shell's state and its commands: one ZooKeeper session, the watches it set, and the
//! command history, with output in zkCli.sh's formats.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, Error, EventType, SessionState, WatchedEvent,
};

use super::command::{self, ParseError, Parsed};
use super::format;

/// Where watch events and session changes are printed (stdout, or above the prompt).
pub type Sink = Arc<dyn Fn(String) + Send + Sync>;

/// The session, shared with the interactive completer (which lists children on TAB).
pub type SharedClient = Arc<Mutex<Option<Client>>>;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How the shell was started: it decides what is printed besides command output.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// A terminal with a prompt: session events are printed, as zkCli does.
    Interactive,
    /// Commands read from a pipe or file, one per line.
    Script,
    /// One command from the command line.
    OneShot,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Out,
    Err,
}

/// What a command printed, in order, to be written at once (so that watch events printed
/// from other threads do not land in the middle of it).
#[derive(Default)]
pub struct Output {
    pub parts: Vec<(Stream, String)>,
}

impl Output {
    /// A line on stdout.
    pub fn out(&mut self, line: impl AsRef<str>) {
        self.parts
            .push((Stream::Out, format!("{}\n", line.as_ref())));
    }

    /// Text on stdout, as is.
    pub fn out_raw(&mut self, text: impl Into<String>) {
        self.parts.push((Stream::Out, text.into()));
    }

    /// A line on stderr.
    pub fn err(&mut self, line: impl AsRef<str>) {
        self.parts
            .push((Stream::Err, format!("{}\n", line.as_ref())));
    }

    /// Writes everything to the process's stdout and stderr.
    pub fn write(self) {
        use std::io::Write;
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        for (stream, text) in self.parts {
            // A closed pipe is the reader's business; there is no one to tell.
            let _ = match stream {
                Stream::Out => out.write_all(text.as_bytes()).and_then(|_| out.flush()),
                Stream::Err => err.write_all(text.as_bytes()).and_then(|_| err.flush()),
            };
        }
    }
}

/// What the caller should do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on; the command's exit status (0 when it succeeded).
    Status(i32),
    /// `quit` or `exit`.
    Quit,
}

/// zkCli's exit status for a command it does not know.
pub const UNKNOWN_COMMAND: i32 = 127;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WatchKind {
    /// `get -w`, `config -w`.
    Data,
    /// `stat -w`.
    Exist,
    /// `ls -w`.
    Child,
    /// `addWatch -m PERSISTENT`.
    Persistent,
    /// `addWatch` (-m PERSISTENT_RECURSIVE).
    Recursive,
}

struct WatchEntry {
    id: u64,
    path: String,
    kind: WatchKind,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Watches {
    next_id: u64,
    entries: Vec<WatchEntry>,
}

/// One server notification reaches every local watcher it matches; zkCli's single default
/// watcher prints it once. This folds the copies: an event from watcher W is a copy when an
/// earlier, recent event with the same zxid, type and path came from another watcher and
/// was not yet matched by one from W. Servers that send the zxid (ZooKeeper 3.9+,
/// oxkeeper) make this exact; without it (zxid -1) only copies that arrive within a few
/// milliseconds of each other fold, as copies do.
#[derive(Default)]
struct Dedup {
    recent: VecDeque<Seen>,
}

/// A notification printed recently, and the watchers whose copy of it arrived.
struct Seen {
    /// zxid, type and path.
    key: (i64, String, String),
    at: Instant,
    watchers: Vec<u64>,
}

impl Dedup {
    const WINDOW: Duration = Duration::from_secs(10);
    const WINDOW_WITHOUT_ZXID: Duration = Duration::from_millis(15);

    fn first_copy(&mut self, watcher: u64, event: &WatchedEvent) -> bool {
        let now = Instant::now();
        while self.recent.len() > 256 {
            self.recent.pop_front();
        }
        self.recent.retain(|seen| {
            let window = if seen.key.0 == WatchedEvent::NO_ZXID {
                Self::WINDOW_WITHOUT_ZXID
            } else {
                Self::WINDOW
            };
            now.duration_since(seen.at) <= window
        });
        let key = (
            event.zxid,
            format!("{:?}", event.event_type),
            event.path.clone(),
        );
        if let Some(seen) = self
            .recent
            .iter_mut()
            .find(|seen| seen.key == key && !seen.watchers.contains(&watcher))
        {
            seen.watchers.push(watcher);
            return false;
        }
        self.recent.push_back(Seen {
            key,
            at: now,
            watchers: vec![watcher],
        });
        true
    }
}

fn event_type_name(t: EventType) -> String {
    match t {
        EventType::Session => "None".to_owned(),
        other => format!("{other:?}"),
    }
}

/// zkCli's watcher output for one event (`\nWATCHER::\n\nWatchedEvent ...\n`).
pub fn watcher_text(state: &str, event_type: &str, path: Option<&str>) -> String {
    format!(
        "\nWATCHER::\n\nWatchedEvent state:{state} type:{event_type} path:{}\n",
        path.unwrap_or("null")
    )
}

fn state_event_text(state: SessionState) -> String {
    watcher_text(&format!("{state:?}"), "None", None)
}

/// What the prompt shows, as zkCli names the client's states.
fn state_name(state: Option<SessionState>) -> &'static str {
    match state {
        Some(SessionState::SyncConnected) => "CONNECTED",
        Some(SessionState::Disconnected) => "CONNECTING",
        Some(SessionState::ConnectedReadOnly) => "CONNECTEDREADONLY",
        Some(SessionState::AuthFailed) => "AUTH_FAILED",
        _ => "CLOSED",
    }
}

/// Splits a line into words as a POSIX shell would (quotes group, `#` starts a comment).
pub fn split_line(line: &str) -> Result<Vec<String>, String> {
    shlex::split(line).ok_or_else(|| format!("Unbalanced quotes: {line}"))
}

type Fail = i32;
type CmdResult = Result<(), Fail>;

pub struct Shell {
    rt: Runtime,
    mode: Mode,
    server: String,
    session_timeout: Duration,
    client: SharedClient,
    state_task: Option<JoinHandle<()>>,
    watches: Arc<Mutex<Watches>>,
    events: mpsc::UnboundedSender<(u64, WatchedEvent)>,
    sink: Sink,
    print_watches: Arc<AtomicBool>,
    /// Events sent by watcher tasks and not yet printed.
    pending: Arc<AtomicUsize>,
    /// A one-shot watch fired since the last [`Shell::settle_events`].
    fired: Arc<AtomicBool>,
    history: Vec<String>,
}

impl Shell {
    pub fn new(
        rt: Runtime,
        mode: Mode,
        server: String,
        session_timeout: Duration,
        sink: Sink,
    ) -> Shell {
        let (events, mut rx) = mpsc::unbounded_channel::<(u64, WatchedEvent)>();
        let print_watches = Arc::new(AtomicBool::new(true));
        let pending = Arc::new(AtomicUsize::new(0));
        {
            let sink = sink.clone();
            let print = print_watches.clone();
            let pending = pending.clone();
            rt.spawn(async move {
                let mut dedup = Dedup::default();
                while let Some((id, event)) = rx.recv().await {
                    if dedup.first_copy(id, &event) && print.load(Ordering::Relaxed) {
                        sink(watcher_text(
                            "SyncConnected",
                            &event_type_name(event.event_type),
                            Some(&event.path),
                        ));
                    }
                    pending.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
        Shell {
            rt,
            mode,
            server,
            session_timeout,
            client: Arc::new(Mutex::new(None)),
            state_task: None,
            watches: Arc::default(),
            events,
            sink,
            print_watches,
            pending,
            fired: Arc::default(),
            history: Vec::new(),
        }
    }

    pub fn shared_client(&self) -> SharedClient {
        self.client.clone()
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// `[zk: host:port(CONNECTED) 3] `
    pub fn prompt(&self) -> String {
        let state = lock(&self.client).as_ref().map(Client::state);
        format!(
            "[zk: {}({}) {}] ",
            self.server,
            state_name(state),
            self.history.len()
        )
    }

    pub fn has_watches(&self) -> bool {
        !lock(&self.watches).entries.is_empty()
    }

    /// Opens a session to the current server (closing any open one first).
    pub fn connect(&mut self, o: &mut Output) -> bool {
        self.disconnect(true);
        let connector = Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_connection_timeout(Duration::from_secs(5))
            .with_fail_eagerly();
        let server = self.server.clone();
        let limit = self.session_timeout + Duration::from_secs(5);
        let result = self
            .rt
            .block_on(async { tokio::time::timeout(limit, connector.connect(&server)).await });
        let client = match result {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                o.err(format!("Cannot connect to {server}: {e}"));
                return false;
            }
            Err(_) => {
                o.err(format!("Cannot connect to {server}: timed out"));
                return false;
            }
        };
        if self.mode == Mode::Interactive && self.print_watches.load(Ordering::Relaxed) {
            o.out_raw(state_event_text(SessionState::SyncConnected));
        }
        if self.mode != Mode::OneShot {
            let mut states = client.state_watcher();
            let sink = self.sink.clone();
            let print = self.print_watches.clone();
            self.state_task = Some(self.rt.spawn(async move {
                loop {
                    let state = states.changed().await;
                    if print.load(Ordering::Relaxed) {
                        sink(state_event_text(state));
                    }
                    if state.is_terminated() {
                        break;
                    }
                }
            }));
        }
        *lock(&self.client) = Some(client);
        true
    }

    /// Closes the session, waiting (briefly) until the server has it closed, so that its
    /// ephemeral nodes are gone when this returns. `quiet` does not print the Closed event.
    pub fn disconnect(&mut self, quiet: bool) {
        let entries = std::mem::take(&mut lock(&self.watches).entries);
        for w in entries {
            w.task.abort();
        }
        let client = lock(&self.client).take();
        let state_task = self.state_task.take();
        if quiet {
            if let Some(t) = &state_task {
                t.abort();
            }
        }
        let Some(client) = client else { return };
        let mut states = client.state_watcher();
        let already_over = client.state().is_terminated();
        drop(client);
        self.rt.block_on(async {
            if !already_over {
                let _ = tokio::time::timeout(Duration::from_secs(3), async {
                    while !states.changed().await.is_terminated() {}
                })
                .await;
            }
            if let Some(t) = state_task {
                let _ = tokio::time::timeout(Duration::from_millis(500), t).await;
            }
        });
    }

    /// Runs one line typed or read from a script: records it in the history and runs it.
    pub fn execute_line(&mut self, line: &str, o: &mut Output) -> Flow {
        let words = match split_line(line) {
            Ok(w) => w,
            Err(e) => {
                o.err(e);
                return Flow::Status(1);
            }
        };
        if words.is_empty() {
            return Flow::Status(0);
        }
        self.history.push(line.trim().to_owned());
        self.execute(&words, o)
    }

    /// Runs one command given as words.
    pub fn execute(&mut self, words: &[String], o: &mut Output) -> Flow {
        let parsed = match command::parse(words) {
            Ok(p) => p,
            Err(ParseError::Unknown(name)) => {
                o.err(command::usage().trim_end());
                o.err(format!("Command not found: Command not found {name}"));
                return Flow::Status(UNKNOWN_COMMAND);
            }
            Err(ParseError::Usage(spec, reason)) => {
                if let Some(r) = reason {
                    o.err(r);
                }
                o.err(spec.usage);
                return Flow::Status(1);
            }
        };
        match parsed.spec.name {
            "quit" | "exit" => return Flow::Quit,
            "redo" => return self.redo(&parsed, o),
            _ => {}
        }
        Flow::Status(match self.run(&parsed, o) {
            Ok(()) => 0,
            Err(code) => code,
        })
    }

    fn redo(&mut self, p: &Parsed, o: &mut Output) -> Flow {
        // The `redo N` line itself is the last history entry; it is replaced by the
        // command it runs again, as zkCli does.
        let current = self.history.len().saturating_sub(1);
        let index = p.arg(0).and_then(|a| a.parse::<usize>().ok());
        let Some(line) = index
            .filter(|i| *i < current)
            .and_then(|i| self.history.get(i).cloned())
        else {
            o.err("Command index out of range");
            return Flow::Status(1);
        };
        let words = match split_line(&line) {
            Ok(w) => w,
            Err(e) => {
                o.err(e);
                return Flow::Status(1);
            }
        };
        if words.first().map(String::as_str) == Some("redo") {
            o.err("No redoing redos");
            return Flow::Status(1);
        }
        if let Some(last) = self.history.last_mut() {
            *last = line;
        }
        self.execute(&words, o)
    }

    fn run(&mut self, p: &Parsed, o: &mut Output) -> CmdResult {
        match p.spec.name {
            "help" => {
                o.out_raw(command::usage());
                Ok(())
            }
            "history" => {
                let n = self.history.len().saturating_sub(1);
                for i in n.saturating_sub(10)..=n {
                    if let Some(line) = self.history.get(i) {
                        o.out(format!("{i} - {line}"));
                    }
                }
                Ok(())
            }
            "version" => {
                o.out(format!(
                    "oxkeeper CLI version: {}",
                    env!("CARGO_PKG_VERSION")
                ));
                Ok(())
            }
            "printwatches" => {
                match p.arg(0) {
                    None => o.out(format!(
                        "printwatches is {}",
                        if self.print_watches.load(Ordering::Relaxed) {
                            "on"
                        } else {
                            "off"
                        }
                    )),
                    Some("on") => self.print_watches.store(true, Ordering::Relaxed),
                    Some("off") => self.print_watches.store(false, Ordering::Relaxed),
                    Some(_) => {
                        o.err(p.spec.usage);
                        return Err(1);
                    }
                }
                Ok(())
            }
            "close" => {
                self.disconnect(self.mode == Mode::OneShot);
                Ok(())
            }
            "connect" => {
                if let Some(server) = p.arg(0) {
                    self.server = server.to_owned();
                }
                if self.mode != Mode::OneShot {
                    o.out(format!("Connecting to {}", self.server));
                }
                // The Closed event of the old session goes out before anything new.
                self.disconnect(false);
                if self.connect(o) {
                    Ok(())
                } else {
                    Err(1)
                }
            }
            _ => {
                let client = self.client(o)?;
                self.run_zk(&client, p, o)
            }
        }
    }

    fn client(&self, o: &mut Output) -> Result<Client, Fail> {
        match lock(&self.client).as_ref() {
            Some(c) if !c.state().is_terminated() => Ok(c.clone()),
            _ => {
                o.out("Not connected");
                Err(1)
            }
        }
    }

    fn wait<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn run_zk(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        match p.spec.name {
            "ls" => self.ls(c, p, o),
            "get" => self.get(c, p, o),
            "set" => self.set(c, p, o),
            "create" => self.create(c, p, o),
            "delete" => {
                let path = path_arg(p, 0, o)?;
                let version = int_opt(p, 'v', o)?;
                if path == "/" {
                    // The client library refuses this itself; ZooKeeper answers so.
                    o.err(format::error_message(&Error::BadArguments(&""), path));
                    return Err(1);
                }
                self.wait(c.delete(path, version))
                    .map_err(|e| fail(o, &e, path))
            }
            "deleteall" => self.deleteall(c, p, o),
            "stat" => {
                let path = path_arg(p, 0, o)?;
                let stat = if p.has('w') {
                    let (stat, watcher) = self
                        .wait(c.check_and_watch_stat(path))
                        .map_err(|e| fail(o, &e, path))?;
                    self.watch_oneshot(path, WatchKind::Exist, watcher);
                    stat
                } else {
                    self.wait(c.check_stat(path))
                        .map_err(|e| fail(o, &e, path))?
                };
                match stat {
                    Some(stat) => {
                        o.out_raw(format::stat(&stat));
                        Ok(())
                    }
                    None => Err(fail(o, &Error::NoNode, path)),
                }
            }
            "getAcl" => {
                let path = path_arg(p, 0, o)?;
                let (acls, stat) = self.wait(c.get_acl(path)).map_err(|e| fail(o, &e, path))?;
                for a in &acls {
                    o.out_raw(format::acl(a));
                }
                if p.has('s') {
                    o.out_raw(format::stat(&stat));
                }
                Ok(())
            }
            "setAcl" => self.set_acl(c, p, o),
            "getAllChildrenNumber" => {
                let path = path_arg(p, 0, o)?;
                let n = self
                    .wait(c.count_descendants_number(path))
                    .map_err(|e| fail(o, &e, path))?;
                o.out(n.to_string());
                Ok(())
            }
            "getEphemerals" => {
                let path = match p.arg(0) {
                    Some(_) => path_arg(p, 0, o)?,
                    None => "/",
                };
                let mut paths = self
                    .wait(c.list_ephemerals(path))
                    .map_err(|e| fail(o, &e, path))?;
                paths.sort();
                o.out(format::list(&paths));
                Ok(())
            }
            "sync" => {
                let path = path_arg(p, 0, o)?;
                match self.wait(c.sync(path)) {
                    Ok(()) => {
                        o.out("Sync is OK");
                        Ok(())
                    }
                    Err(e) => {
                        o.out(format!(
                            "Sync has failed: {}",
                            format::keeper_message(&e, Some(path))
                        ));
                        Err(1)
                    }
                }
            }
            "whoami" => {
                let users = self
                    .wait(c.list_auth_users())
                    .map_err(|e| fail_plain(o, &e))?;
                o.out("Auth scheme: User");
                for u in &users {
                    o.out(format!("{}: {}", u.scheme(), u.user()));
                }
                Ok(())
            }
            "addauth" => {
                let (scheme, auth) = (p.args[0].as_str(), p.args[1].as_str());
                self.wait(c.auth(scheme, auth.as_bytes()))
                    .map_err(|e| fail_plain(o, &e))
            }
            "config" => {
                let (data, stat) = if p.has('w') {
                    let (data, stat, watcher) = self
                        .wait(c.get_and_watch_config())
                        .map_err(|e| fail(o, &e, CONFIG_NODE))?;
                    self.watch_oneshot(CONFIG_NODE, WatchKind::Data, watcher);
                    (data, stat)
                } else {
                    self.wait(c.get_config())
                        .map_err(|e| fail(o, &e, CONFIG_NODE))?
                };
                o.out(String::from_utf8_lossy(&data));
                if p.has('s') {
                    o.out_raw(format::stat(&stat));
                }
                Ok(())
            }
            "addWatch" => {
                let path = path_arg(p, 0, o)?;
                let mode = match p.value('m').map(str::to_ascii_uppercase).as_deref() {
                    None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                    Some("PERSISTENT") => AddWatchMode::Persistent,
                    Some(_) => {
                        o.err(p.spec.usage);
                        return Err(1);
                    }
                };
                let watcher = self
                    .wait(c.watch(path, mode))
                    .map_err(|e| fail(o, &e, path))?;
                let kind = match mode {
                    AddWatchMode::Persistent => WatchKind::Persistent,
                    AddWatchMode::PersistentRecursive => WatchKind::Recursive,
                };
                self.watch_persistent(path, kind, watcher);
                Ok(())
            }
            "removewatches" => self.remove_watches(p, o),
            other => {
                o.err(format!("Command not found: Command not found {other}"));
                Err(UNKNOWN_COMMAND)
            }
        }
    }

    fn ls(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        let path = path_arg(p, 0, o)?;
        let watch = p.has('w');
        if p.has('R') {
            // zkCli: the node itself, then depth first, each node's children (sorted)
            // before its children's children.
            match self.wait(c.check_stat(path)) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(fail(o, &Error::NoNode, path)),
                Err(e) => return Err(fail(o, &e, path)),
            }
            o.out(path);
            return self.ls_tree(c, path, watch, o);
        }
        let (mut children, stat) = match (p.has('s'), watch) {
            (true, true) => {
                let (children, stat, watcher) = self
                    .wait(c.get_and_watch_children(path))
                    .map_err(|e| fail(o, &e, path))?;
                self.watch_oneshot(path, WatchKind::Child, watcher);
                (children, Some(stat))
            }
            (true, false) => {
                let (children, stat) = self
                    .wait(c.get_children(path))
                    .map_err(|e| fail(o, &e, path))?;
                (children, Some(stat))
            }
            (false, true) => {
                let (children, watcher) = self
                    .wait(c.list_and_watch_children(path))
                    .map_err(|e| fail(o, &e, path))?;
                self.watch_oneshot(path, WatchKind::Child, watcher);
                (children, None)
            }
            (false, false) => (
                self.wait(c.list_children(path))
                    .map_err(|e| fail(o, &e, path))?,
                None,
            ),
        };
        children.sort();
        o.out(format::list(&children));
        if let Some(stat) = stat {
            o.out_raw(format::stat(&stat));
        }
        Ok(())
    }

    /// The nodes under `path` in zkCli's `ls -R` order; a node deleted meanwhile is skipped.
    fn ls_tree(&self, c: &Client, path: &str, watch: bool, o: &mut Output) -> CmdResult {
        let mut children = match self.children(c, path, watch) {
            Ok(children) => children,
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return Err(fail(o, &e, path)),
        };
        children.sort();
        let full: Vec<String> = children.iter().map(|child| join(path, child)).collect();
        for f in &full {
            o.out(f);
        }
        for f in &full {
            self.ls_tree(c, f, watch, o)?;
        }
        Ok(())
    }

    fn children(&self, c: &Client, path: &str, watch: bool) -> Result<Vec<String>, Error> {
        if watch {
            let (children, watcher) = self.wait(c.list_and_watch_children(path))?;
            self.watch_oneshot(path, WatchKind::Child, watcher);
            Ok(children)
        } else {
            self.wait(c.list_children(path))
        }
    }

    fn get(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        let path = path_arg(p, 0, o)?;
        let (data, stat) = if p.has('w') {
            let (data, stat, watcher) = self
                .wait(c.get_and_watch_data(path))
                .map_err(|e| fail(o, &e, path))?;
            self.watch_oneshot(path, WatchKind::Data, watcher);
            (data, stat)
        } else {
            self.wait(c.get_data(path)).map_err(|e| fail(o, &e, path))?
        };
        o.out(String::from_utf8_lossy(&data));
        if p.has('s') {
            o.out_raw(format::stat(&stat));
        }
        Ok(())
    }

    fn set(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        let path = path_arg(p, 0, o)?;
        let version = int_opt(p, 'v', o)?;
        let data = p.args[1].as_bytes();
        let stat = self
            .wait(c.set_data(path, data, version))
            .map_err(|e| fail(o, &e, path))?;
        if p.has('s') {
            o.out_raw(format::stat(&stat));
        }
        Ok(())
    }

    fn create(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        let (e, s, container) = (p.has('e'), p.has('s'), p.has('c'));
        if container && (e || s) {
            o.err("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.");
            return Err(1);
        }
        let ttl = match p.value('t') {
            None => None,
            Some(t) => match t.parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    o.err("-t argument must be a long value");
                    return Err(1);
                }
            },
        };
        if ttl.is_some() && e {
            o.err("TTLs cannot be used with Ephemeral znodes");
            return Err(1);
        }
        if ttl.is_some() && container {
            o.err("TTLs cannot be used with Container znodes");
            return Err(1);
        }
        const TTL_MAX: i64 = 0xFF_FFFF_FFFF;
        if let Some(t) = ttl {
            if t <= 0 || t > TTL_MAX {
                o.err(format!(
                    "ttl must be positive and cannot be larger than: {TTL_MAX}"
                ));
                return Err(1);
            }
        }
        let path = p.args[0].as_str();
        if let Err(msg) = format::validate_path(path, s) {
            o.err(msg);
            return Err(1);
        }
        let mode = match (e, s, container) {
            (true, true, _) => CreateMode::EphemeralSequential,
            (true, false, _) => CreateMode::Ephemeral,
            (false, true, _) => CreateMode::PersistentSequential,
            (false, false, true) => CreateMode::Container,
            (false, false, false) => CreateMode::Persistent,
        };
        let data = p.arg(1).unwrap_or("").as_bytes();
        let mut warnings = Vec::new();
        let acls = p.arg(2).map(|a| format::parse_acl(a, &mut warnings));
        for w in &warnings {
            o.err(w);
        }
        if acls.as_ref().is_some_and(Vec::is_empty) {
            // The Java client refuses an empty list before asking, so with no path.
            o.err(format::keeper_message(&Error::InvalidAcl, None));
            o.err("Acl is not valid : null");
            return Err(1);
        }
        if path == "/" {
            // The client library refuses this itself; ZooKeeper answers so.
            return Err(fail(o, &Error::NodeExists, path));
        }
        let acls = match &acls {
            Some(list) => Acls::new(list),
            None => Acls::anyone_all(),
        };
        let mut options = mode.with_acls(acls);
        if let Some(t) = ttl {
            options = options.with_ttl(Duration::from_millis(t.unsigned_abs()));
        }
        match self.wait(c.create(path, data, &options)) {
            Ok((_, sequence)) => {
                if s {
                    o.err(format!("Created {path}{sequence}"));
                } else {
                    o.err(format!("Created {path}"));
                }
                Ok(())
            }
            Err(Error::InvalidAcl) => {
                o.err(format::keeper_message(&Error::InvalidAcl, Some(path)));
                Err(fail(o, &Error::InvalidAcl, path))
            }
            Err(err) => Err(fail(o, &err, path)),
        }
    }

    fn deleteall(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        let path = path_arg(p, 0, o)?;
        let batch = match p.value('b').map(str::parse::<usize>) {
            None => 1000,
            Some(Ok(b)) if b > 0 => b,
            Some(_) => {
                o.err("-b argument must be an int value");
                return Err(1);
            }
        };
        // Breadth first, then deleted from the end: leaves before their parents.
        let mut tree = vec![path.to_owned()];
        let mut i = 0;
        while i < tree.len() {
            match self.wait(c.list_children(&tree[i])) {
                Ok(mut children) => {
                    children.sort();
                    let parent = tree[i].clone();
                    tree.extend(children.iter().map(|child| join(&parent, child)));
                }
                Err(Error::NoNode) if i > 0 => {}
                Err(e) => return Err(fail(o, &e, &tree[i])),
            }
            i += 1;
        }
        if path == "/" {
            // The root itself cannot be deleted; everything under it can.
            tree.remove(0);
        }
        for chunk in tree.rchunks(batch) {
            let mut writer = c.new_multi_writer();
            let mut ok = true;
            for node in chunk.iter().rev() {
                ok &= writer.add_delete(node, None).is_ok();
            }
            if !ok || self.wait(writer.commit()).is_err() {
                o.err("Failed to delete some node(s) in the subtree!");
                return Err(1);
            }
        }
        Ok(())
    }

    fn set_acl(&self, c: &Client, p: &Parsed, o: &mut Output) -> CmdResult {
        let path = path_arg(p, 0, o)?;
        let version = int_opt(p, 'v', o)?;
        let mut warnings = Vec::new();
        let acls = format::parse_acl(&p.args[1], &mut warnings);
        for w in &warnings {
            o.err(w);
        }
        if acls.is_empty() {
            // The Java client refuses an empty list before asking, so with no path.
            o.err("Acl is not valid : null");
            return Err(1);
        }
        let stat = self
            .wait(c.set_acl(path, &acls, version))
            .map_err(|e| fail(o, &e, path))?;
        if p.has('R') {
            let mut nodes = Vec::new();
            self.collect_tree(c, path, &mut nodes)
                .map_err(|e| fail(o, &e, path))?;
            let mut failed = false;
            for node in &nodes {
                if let Err(e) = self.wait(c.set_acl(node, &acls, version)) {
                    o.err(format::keeper_message(&e, Some(node)));
                    failed = true;
                }
            }
            if failed {
                return Err(1);
            }
        }
        if p.has('s') {
            o.out_raw(format::stat(&stat));
        }
        Ok(())
    }

    /// Every node under `path` (not `path` itself), in `ls -R` order.
    fn collect_tree(&self, c: &Client, path: &str, nodes: &mut Vec<String>) -> Result<(), Error> {
        let mut children = match self.wait(c.list_children(path)) {
            Ok(children) => children,
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return Err(e),
        };
        children.sort();
        let full: Vec<String> = children.iter().map(|child| join(path, child)).collect();
        nodes.extend(full.iter().cloned());
        for f in &full {
            self.collect_tree(c, f, nodes)?;
        }
        Ok(())
    }

    fn remove_watches(&self, p: &Parsed, o: &mut Output) -> CmdResult {
        let path = path_arg(p, 0, o)?;
        let matches = |kind: WatchKind| {
            if p.has('c') {
                kind == WatchKind::Child
            } else if p.has('d') {
                matches!(kind, WatchKind::Data | WatchKind::Exist)
            } else {
                true
            }
        };
        let removed: Vec<WatchEntry> = {
            let mut table = lock(&self.watches);
            let (removed, kept) = std::mem::take(&mut table.entries)
                .into_iter()
                .partition(|w| w.path == path && matches(w.kind));
            table.entries = kept;
            removed
        };
        if removed.is_empty() {
            o.err(format::keeper_message(&Error::NoWatcher, Some(path)));
            return Err(1);
        }
        // Dropping the last local watcher of a kind removes the server's watch too (and
        // `-l`, local only, would need a server that is gone: there is nothing else to do).
        for w in &removed {
            w.task.abort();
        }
        if self.print_watches.load(Ordering::Relaxed) {
            let has = |f: fn(WatchKind) -> bool| removed.iter().any(|w| f(w.kind));
            let kinds = [
                (
                    has(|k| matches!(k, WatchKind::Persistent | WatchKind::Recursive)),
                    "PersistentWatchRemoved",
                ),
                (has(|k| k == WatchKind::Child), "ChildWatchRemoved"),
                (
                    has(|k| matches!(k, WatchKind::Data | WatchKind::Exist)),
                    "DataWatchRemoved",
                ),
            ];
            for (_, name) in kinds.iter().filter(|(present, _)| *present) {
                o.out_raw(watcher_text("SyncConnected", name, Some(path)));
            }
        }
        Ok(())
    }

    /// Remembers a one-shot watch and prints its event when it fires.
    fn watch_oneshot(
        &self,
        path: &str,
        kind: WatchKind,
        watcher: zookeeper_client::OneshotWatcher,
    ) {
        let mut table = lock(&self.watches);
        let id = table.next_id;
        table.next_id += 1;
        let events = self.events.clone();
        let watches = self.watches.clone();
        let (pending, fired) = (self.pending.clone(), self.fired.clone());
        let task = self.rt.spawn(async move {
            let event = watcher.changed().await;
            if event.event_type != EventType::Session {
                pending.fetch_add(1, Ordering::SeqCst);
                if events.send((id, event)).is_err() {
                    pending.fetch_sub(1, Ordering::SeqCst);
                }
            }
            fired.store(true, Ordering::SeqCst);
            lock(&watches).entries.retain(|w| w.id != id);
        });
        table.entries.push(WatchEntry {
            id,
            path: path.to_owned(),
            kind,
            task,
        });
    }

    /// Remembers a persistent watch and prints each of its events.
    fn watch_persistent(
        &self,
        path: &str,
        kind: WatchKind,
        mut watcher: zookeeper_client::PersistentWatcher,
    ) {
        let mut table = lock(&self.watches);
        let id = table.next_id;
        table.next_id += 1;
        let events = self.events.clone();
        let pending = self.pending.clone();
        let task = self.rt.spawn(async move {
            loop {
                let event = watcher.changed().await;
                if event.event_type == EventType::Session {
                    // Polling again after the session ended would panic.
                    if event.session_state.is_terminated() {
                        break;
                    }
                    continue;
                }
                pending.fetch_add(1, Ordering::SeqCst);
                if events.send((id, event)).is_err() {
                    pending.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
            }
        });
        table.entries.push(WatchEntry {
            id,
            path: path.to_owned(),
            kind,
            task,
        });
    }

    /// When watches are set, gives the events that the last command caused a moment to
    /// be printed, so that a script's output shows them before the next command's (the
    /// server sends them before its answer to that command, but they are printed by
    /// other tasks).
    pub fn settle_events(&self) {
        if !self.has_watches() && !self.fired.swap(false, Ordering::SeqCst) {
            return;
        }
        let pending = self.pending.clone();
        self.rt.block_on(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let deadline = Instant::now() + Duration::from_millis(500);
            while pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
}

const CONFIG_NODE: &str = "/zookeeper/config";

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Argument `i`, checked as zkCli checks paths.
fn path_arg<'p>(p: &'p Parsed, i: usize, o: &mut Output) -> Result<&'p str, Fail> {
    let path = p.args[i].as_str();
    match format::validate_path(path, false) {
        Ok(()) => Ok(path),
        Err(msg) => {
            o.err(msg);
            Err(1)
        }
    }
}

fn int_opt(p: &Parsed, letter: char, o: &mut Output) -> Result<Option<i32>, Fail> {
    match p.value(letter).map(str::parse::<i32>) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(_)) => {
            o.err(format!("-{letter} argument must be an int value"));
            Err(1)
        }
    }
}

fn fail(o: &mut Output, err: &Error, path: &str) -> Fail {
    o.err(format::error_message(err, path));
    1
}

fn fail_plain(o: &mut Output, err: &Error) -> Fail {
    o.err(format::keeper_message(err, None));
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: EventType, path: &str, zxid: i64) -> WatchedEvent {
        WatchedEvent::new(t, path).with_zxid(zxid)
    }

    #[test]
    fn dedup_folds_copies_of_one_notification() {
        let mut d = Dedup::default();
        // Watchers 1 and 2 both see two changes of /a; they may deliver in any order.
        assert!(d.first_copy(1, &event(EventType::NodeDataChanged, "/a", -1)));
        assert!(d.first_copy(1, &event(EventType::NodeDataChanged, "/a", -1)));
        assert!(!d.first_copy(2, &event(EventType::NodeDataChanged, "/a", -1)));
        assert!(!d.first_copy(2, &event(EventType::NodeDataChanged, "/a", -1)));
        // With zxids, distinct changes never fold.
        assert!(d.first_copy(1, &event(EventType::NodeDataChanged, "/b", 5)));
        assert!(d.first_copy(2, &event(EventType::NodeDataChanged, "/b", 6)));
        assert!(!d.first_copy(2, &event(EventType::NodeDataChanged, "/b", 5)));
    }

    #[test]
    fn prompt_states() {
        assert_eq!(state_name(Some(SessionState::SyncConnected)), "CONNECTED");
        assert_eq!(state_name(None), "CLOSED");
    }
}
