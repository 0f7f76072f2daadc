//! zkCli.sh's text formats: stats, ACLs, dates, paths and error messages.

use zookeeper_client::{Acl, AuthId, Error, Permission, Stat};

/// Java's `Date.toString()` of epoch milliseconds, in the local time zone:
/// `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(millis: i64) -> String {
    match jiff::Timestamp::from_millisecond(millis) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%a %b %d %H:%M:%S %Z %Y")
            .to_string(),
        Err(_) => millis.to_string(),
    }
}

/// zkCli's `StatPrinter`: eleven `name = value` lines, each ending in a newline.
pub fn stat(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\n\
         cversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\n\
         dataLength = {}\nnumChildren = {}\n",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children,
    )
}

/// Java's `List.toString()`: `[a, b, c]`.
pub fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

const PERMS: [(char, Permission); 5] = [
    ('c', Permission::CREATE),
    ('d', Permission::DELETE),
    ('r', Permission::READ),
    ('w', Permission::WRITE),
    ('a', Permission::ADMIN),
];

/// zkCli's permission letters, in its order: `cdrwa`.
pub fn perms(p: Permission) -> String {
    PERMS
        .iter()
        .filter(|(_, bit)| p.has(*bit))
        .map(|(c, _)| *c)
        .collect()
}

/// Jute's CSV string form, as `Id.toString()` prints each field.
fn csv_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// One ACL as `getAcl` prints it: `'world,'anyone` and `: cdrwa` on the next line.
pub fn acl(a: &Acl) -> String {
    format!(
        "{},{}\n: {}\n",
        csv_string(a.scheme()),
        csv_string(a.id()),
        perms(a.permission())
    )
}

/// zkCli's `AclParser`: `scheme:id:perms[,scheme:id:perms...]`. Malformed entries and
/// unknown permission letters are reported (one line each, as zkCli does on stderr) and
/// skipped, so the result may be empty.
pub fn parse_acl(text: &str, warnings: &mut Vec<String>) -> Vec<Acl> {
    let mut acls = Vec::new();
    for a in text.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            warnings.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warnings.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        }
        let mut perm = Permission::NONE;
        for c in a[last + 1..].chars() {
            match PERMS.iter().find(|(letter, _)| *letter == c) {
                Some((_, bit)) => perm = perm | *bit,
                None => warnings.push(format!("Unknown perm type: {c}")),
            }
        }
        acls.push(Acl::new(
            perm,
            AuthId::new(&a[..first], &a[first + 1..last]),
        ));
    }
    acls
}

/// ZooKeeper's `PathUtils.validatePath`; `sequential` paths may end in `/` (the server
/// appends the counter).
pub fn validate_path(path: &str, sequential: bool) -> Result<(), String> {
    let owned;
    let path = if sequential {
        owned = format!("{path}1");
        owned.as_str()
    } else {
        path
    };
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    let chars: Vec<char> = path.chars().collect();
    let mut reason = None;
    for i in 1..chars.len() {
        let (c, last) = (chars[i], chars[i - 1]);
        let ends_segment = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            if i >= 2 && chars[i - 2] == '/' && ends_segment {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if last == '/' && ends_segment {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

/// `KeeperException.getMessage()`: `KeeperErrorCode = NoNode for /x`.
pub fn keeper_message(err: &Error, path: Option<&str>) -> String {
    let code = match err {
        Error::NoNode => "NoNode",
        Error::NoAuth => "NoAuth",
        Error::BadVersion => "BadVersion",
        Error::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        Error::NodeExists => "NodeExists",
        Error::NotEmpty => "Directory not empty",
        Error::SessionExpired => "Session expired",
        Error::InvalidAcl => "InvalidACL",
        Error::AuthFailed => "AuthFailed",
        Error::SessionMoved => "Session moved",
        Error::NotReadOnly => "Not a read-only call",
        Error::NoWatcher => "No such watcher",
        Error::QuotaExceeded => "Quota has exceeded",
        Error::Throttled => "Op throttled due to high load",
        Error::MarshallingError => "MarshallingError",
        Error::Unimplemented => "Unimplemented",
        Error::ConnectionLoss => "ConnectionLoss",
        Error::ReconfigDisabled => "Reconfig is disabled",
        Error::RuntimeInconsistent => "RuntimeInconsistency",
        Error::Timeout => "OperationTimeout",
        Error::BadArguments(_) => "BadArguments",
        other => return other.to_string(),
    };
    match path {
        Some(p) => format!("KeeperErrorCode = {code} for {p}"),
        None => format!("KeeperErrorCode = {code}"),
    }
}

/// zkCli's `CliWrapperException` message for a failed call on `path`.
pub fn error_message(err: &Error, path: &str) -> String {
    match err {
        Error::NoNode => format!("Node does not exist: {path}"),
        Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        Error::NodeExists => format!("Node already exists: {path}"),
        Error::NotEmpty => format!("Node not empty: {path}"),
        Error::NotReadOnly => format!("Not a read-only call: {path}"),
        Error::InvalidAcl => format!("Acl is not valid : {path}"),
        Error::NoAuth => format!("Insufficient permission : {path}"),
        Error::BadArguments(_) => format!("Arguments are not valid : {path}"),
        Error::BadVersion => format!("version No is not valid : {path}"),
        other => keeper_message(other, Some(path)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let s = Stat {
            czxid: 2,
            mzxid: 0x1f,
            pzxid: 2,
            ctime: 0,
            mtime: 0,
            version: 3,
            cversion: 0,
            aversion: 1,
            ephemeral_owner: 0x1000a,
            data_length: 5,
            num_children: 0,
        };
        let text = stat(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "cZxid = 0x2");
        assert!(lines[1].starts_with("ctime = Thu Jan 01 "), "{}", lines[1]);
        assert!(lines[1].ends_with(" 1970"), "{}", lines[1]);
        assert_eq!(lines[2], "mZxid = 0x1f");
        assert_eq!(lines[6], "dataVersion = 3");
        assert_eq!(lines[8], "ephemeralOwner = 0x1000a");
    }

    #[test]
    fn acls_round_trip() {
        let mut warnings = Vec::new();
        let acls = parse_acl(
            "world:anyone:cdrwa,digest:u:abc=:r,ip:10.0.0.1:rw",
            &mut warnings,
        );
        assert!(warnings.is_empty());
        assert_eq!(acls.len(), 3);
        assert_eq!(acl(&acls[0]), "'world,'anyone\n: cdrwa\n");
        assert_eq!(acl(&acls[1]), "'digest,'u:abc=\n: r\n");
        assert_eq!(acl(&acls[2]), "'ip,'10.0.0.1\n: rw\n");
    }

    #[test]
    fn bad_acls() {
        let mut warnings = Vec::new();
        let acls = parse_acl("foo,world:anyone:rxz", &mut warnings);
        assert_eq!(acls.len(), 1);
        assert_eq!(acls[0].permission(), Permission::READ);
        assert_eq!(
            warnings,
            [
                "foo does not have the form scheme:id:perm",
                "Unknown perm type: x",
                "Unknown perm type: z"
            ]
        );
    }

    #[test]
    fn paths() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b", false).is_ok());
        assert!(validate_path("/a/", true).is_ok());
        assert_eq!(
            validate_path("a", false).unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/", false).unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(
            validate_path("/a//b", false).unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/../b", false).unwrap_err(),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
    }
}
