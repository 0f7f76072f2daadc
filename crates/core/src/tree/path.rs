//! Znode path rules: ZooKeeper's `PathUtils.validatePath` and parent/last-component
//! splitting. Pure string functions; which operation validates what is the caller's
//! business (protocol spec section 9).

use oxkeeper_proto::ErrorCode;

/// `PathUtils.validatePath`, with BADARGUMENTS for every rejection.
///
/// Java checks UTF-16 code units; on decoded code points the same rule means the ranges
/// below plus "nothing outside the BMP" (those are surrogate pairs in Java).
pub fn validate_path(path: &str) -> Result<(), ErrorCode> {
    let bad = Err(ErrorCode::BadArguments);
    if !path.starts_with('/') {
        return bad;
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad;
    }
    for component in path[1..].split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return bad;
        }
        if component.chars().any(invalid_char) {
            return bad;
        }
    }
    Ok(())
}

fn invalid_char(c: char) -> bool {
    // Rust chars are never surrogates, so U+D800..U+DFFF cannot occur; anything past the
    // BMP is what Java would see as a surrogate pair.
    matches!(c as u32, 0..=0x1F | 0x7F..=0x9F | 0xD800..=0xF8FF | 0xFFF0..)
}

/// The parent of an absolute path: `/a/b` → `/a`, `/a` → `/`; `None` for `/` and for
/// strings without a `/`.
pub fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/')? {
        0 => Some("/"),
        i => Some(&path[..i]),
    }
}

/// The last component: `/a/b` → `b`, `/` → `` (the root has no name).
pub fn last_component(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent` + `/` + `name`, without doubling the root's slash.
pub(crate) fn join(parent: &str, name: &str) -> String {
    let mut p = String::with_capacity(parent.len() + 1 + name.len());
    p.push_str(parent);
    if parent != "/" {
        p.push('/');
    }
    p.push_str(name);
    p
}

/// Length as Java's `String.length()` counts it (UTF-16 units), for the approximate
/// data size ZooKeeper reports.
pub(crate) fn java_len(s: &str) -> i64 {
    s.encode_utf16().count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a/.b",
            "/a/...",
            "/a/b.",
            "/.a",
            "/ü",
            "/a b",
            "/\u{fe}",
            "/\u{f900}",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/a/./b",
            "/a/../b",
            "/a\u{0}",
            "/\u{1}",
            "/\u{1f}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{d7ff}x\u{e000}",
            "/\u{f8ff}",
            "/\u{fff0}",
            "/\u{ffff}",
            "/\u{10000}",
            "/😀",
        ] {
            assert_eq!(validate_path(p), Err(ErrorCode::BadArguments), "{p:?}");
        }
        // The boundaries just outside the ranges are fine.
        for p in [
            "/\u{20}",
            "/\u{7e}",
            "/\u{a0}",
            "/\u{d7ff}",
            "/\u{f900}",
            "/\u{ffef}",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn splitting() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("a"), None);
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/a/b/c"), Some("/a/b"));
        assert_eq!(last_component("/a/b"), "b");
        assert_eq!(last_component("/a"), "a");
        assert_eq!(last_component("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(java_len("/ü"), 2);
    }
}
