//! The shell's commands, their usage lines and zkCli-style option parsing.

/// One command: its name, zkCli's usage line, its options and how many arguments it takes.
pub struct Spec {
    pub name: &'static str,
    /// zkCli's usage line, printed (to stderr) when the command is called wrongly.
    pub usage: &'static str,
    /// Letters of options without a value (`-s`).
    pub flags: &'static str,
    /// Letters of options that take a value (`-v 3`).
    pub valued: &'static str,
    pub min_args: usize,
    pub max_args: usize,
}

const fn spec(
    name: &'static str,
    usage: &'static str,
    flags: &'static str,
    valued: &'static str,
    min_args: usize,
    max_args: usize,
) -> Spec {
    Spec {
        name,
        usage,
        flags,
        valued,
        min_args,
        max_args,
    }
}

/// Every command, sorted as zkCli sorts them (by bytes: `addWatch` before `addauth`).
pub const COMMANDS: &[Spec] = &[
    spec(
        "addWatch",
        "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
        "",
        "m",
        1,
        1,
    ),
    spec("addauth", "addauth scheme auth", "", "", 2, 2),
    spec("close", "close", "", "", 0, 0),
    spec("config", "config [-w] [-s]", "ws", "", 0, 0),
    spec("connect", "connect host:port", "", "", 0, 1),
    spec(
        "create",
        "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
        "sec",
        "t",
        1,
        3,
    ),
    spec("delete", "delete [-v version] path", "", "v", 1, 1),
    spec("deleteall", "deleteall path [-b batch size]", "", "b", 1, 1),
    spec("exit", "exit", "", "", 0, 0),
    spec("get", "get [-s] [-w] path", "sw", "", 1, 1),
    spec("getAcl", "getAcl [-s] path", "s", "", 1, 1),
    spec(
        "getAllChildrenNumber",
        "getAllChildrenNumber path",
        "",
        "",
        1,
        1,
    ),
    spec("getEphemerals", "getEphemerals path", "", "", 0, 1),
    spec("help", "help", "", "", 0, 0),
    spec("history", "history", "", "", 0, 0),
    spec("ls", "ls [-s] [-w] [-R] path", "swR", "", 1, 1),
    spec("printwatches", "printwatches on|off", "", "", 0, 1),
    spec("quit", "quit", "", "", 0, 0),
    spec("redo", "redo cmdno", "", "", 1, 1),
    spec(
        "removewatches",
        "removewatches path [-c|-d|-a] [-l]",
        "cdal",
        "",
        1,
        1,
    ),
    spec("set", "set [-s] [-v version] path data", "s", "v", 2, 2),
    spec(
        "setAcl",
        "setAcl [-s] [-v version] [-R] path acl",
        "sR",
        "v",
        2,
        2,
    ),
    spec("stat", "stat [-w] path", "w", "", 1, 1),
    spec("sync", "sync path", "", "", 1, 1),
    spec("version", "version", "", "", 0, 0),
    spec("whoami", "whoami", "", "", 0, 0),
];

pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// The whole usage text: what `help` prints and an unknown command shows.
pub fn usage() -> String {
    let mut text = String::from("oxkeeper cli [--server host:port] cmd args\n");
    for c in COMMANDS {
        text.push('\t');
        text.push_str(c.usage);
        text.push('\n');
    }
    text
}

/// A command line split into its options and its arguments.
pub struct Parsed {
    pub spec: &'static Spec,
    opts: Vec<(char, Option<String>)>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn has(&self, letter: char) -> bool {
        self.opts.iter().any(|(c, _)| *c == letter)
    }

    /// The value of the last `-letter value` given.
    pub fn value(&self, letter: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(c, _)| *c == letter)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
}

pub enum ParseError {
    /// No such command.
    Unknown(String),
    /// Wrong options or arguments: an optional reason, then the usage line.
    Usage(&'static Spec, Option<String>),
}

/// Parses like commons-cli's POSIX parser, as zkCli does: options may come anywhere, flags
/// may be bundled (`-se`), a value may be attached (`-v3`) or follow; `--` ends options.
pub fn parse(words: &[String]) -> Result<Parsed, ParseError> {
    let Some((name, rest)) = words.split_first() else {
        return Err(ParseError::Unknown(String::new()));
    };
    let spec = find(name).ok_or_else(|| ParseError::Unknown(name.clone()))?;
    let mut opts = Vec::new();
    let mut args = Vec::new();
    let mut it = rest.iter();
    let mut options_done = false;
    while let Some(word) = it.next() {
        if options_done || !word.starts_with('-') || word.len() == 1 {
            args.push(word.clone());
            continue;
        }
        if word == "--" {
            options_done = true;
            continue;
        }
        let letters = &word[1..];
        for (i, c) in letters.char_indices() {
            if spec.flags.contains(c) {
                opts.push((c, None));
            } else if spec.valued.contains(c) {
                let attached = &letters[i + c.len_utf8()..];
                let value = if attached.is_empty() {
                    it.next().cloned().ok_or_else(|| {
                        ParseError::Usage(spec, Some(format!("Missing argument for option: {c}")))
                    })?
                } else {
                    attached.to_owned()
                };
                opts.push((c, Some(value)));
                break;
            } else {
                return Err(ParseError::Usage(
                    spec,
                    Some(format!("Unrecognized option: -{c}")),
                ));
            }
        }
    }
    if args.len() < spec.min_args || args.len() > spec.max_args {
        return Err(ParseError::Usage(spec, None));
    }
    Ok(Parsed { spec, opts, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn sorted_like_zkcli() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn options_anywhere() {
        let Ok(p) = parse(&words("removewatches /a -c -l")) else {
            panic!("parse failed")
        };
        assert!(p.has('c') && p.has('l') && !p.has('d'));
        assert_eq!(p.args, ["/a"]);
        let Ok(p) = parse(&words("set -sv3 /a x")) else {
            panic!("parse failed")
        };
        assert!(p.has('s'));
        assert_eq!(p.value('v'), Some("3"));
        assert_eq!(p.args, ["/a", "x"]);
        let Ok(p) = parse(&words("set /a -- -1")) else {
            panic!("parse failed")
        };
        assert_eq!(p.args, ["/a", "-1"]);
    }

    #[test]
    fn errors() {
        assert!(matches!(parse(&words("nope /")), Err(ParseError::Unknown(n)) if n == "nope"));
        assert!(matches!(
            parse(&words("ls -z /")),
            Err(ParseError::Usage(_, Some(m))) if m == "Unrecognized option: -z"
        ));
        assert!(matches!(parse(&words("get")), Err(ParseError::Usage(s, None)) if s.name == "get"));
        assert!(matches!(
            parse(&words("delete /a -v")),
            Err(ParseError::Usage(_, Some(_)))
        ));
    }
}
