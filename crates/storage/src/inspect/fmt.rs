//! Text and JSON renderings shared by the inspection tools: times, ACLs, data, and each
//! transaction's fields in `TxnLogToolkit`'s order.

use base64::Engine;
use oxkeeper_proto::codes::op;
use oxkeeper_proto::{Acl, Txn};

/// ZooKeeper's `Request.op2String` names.
pub fn op_name(t: i32) -> &'static str {
    match t {
        op::NOTIFICATION => "notification",
        op::CREATE => "create",
        op::DELETE => "delete",
        op::SET_DATA => "setData",
        op::SET_ACL => "setACL",
        op::CHECK => "check",
        op::MULTI => "multi",
        op::CREATE2 => "create2",
        op::RECONFIG => "reconfig",
        op::CREATE_CONTAINER => "createContainer",
        op::DELETE_CONTAINER => "deleteContainer",
        op::CREATE_TTL => "createTTL",
        op::CREATE_SESSION => "createSession",
        op::CLOSE_SESSION => "closeSession",
        op::ERROR => "error",
        _ => "unknown",
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{milli:03} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Java's `%#016x`: `0x` and at least 14 hex digits.
pub fn hex16(v: i64) -> String {
    format!("{:#016x}", v as u64)
}

pub fn hex(v: i64) -> String {
    format!("0x{:x}", v as u64)
}

/// Data as ZooKeeper's toolkit prints it: as text.
pub fn data_text(d: &Option<bytes::Bytes>) -> String {
    d.as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

pub fn acl_text(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl
        .iter()
        .map(|a| format!("{},{}:{}", a.perms, a.id.scheme, a.id.id))
        .collect();
    format!("[{}]", parts.join(" "))
}

/// `TxnLogToolkit.getFormattedTxnStr`-like details of one transaction.
pub fn txn_text(txn: &Txn) -> String {
    match txn {
        Txn::Create(t) | Txn::Create2(t) => format!(
            "{},{},{},{},{}",
            t.path,
            data_text(&t.data),
            acl_text(&t.acl),
            t.ephemeral,
            t.parent_cversion
        ),
        Txn::CreateContainer(t) => format!(
            "{},{},{},{}",
            t.path,
            data_text(&t.data),
            acl_text(&t.acl),
            t.parent_cversion
        ),
        Txn::CreateTtl(t) => format!(
            "{},{},{},{},{}",
            t.path,
            data_text(&t.data),
            acl_text(&t.acl),
            t.parent_cversion,
            t.ttl
        ),
        Txn::Delete(t) | Txn::DeleteContainer(t) => t.path.clone(),
        Txn::SetData(t) => format!("{},{},{}", t.path, data_text(&t.data), t.version),
        Txn::SetAcl(t) => format!("{},{},{}", t.path, acl_text(&t.acl), t.version),
        Txn::Check(t) => format!("{},{}", t.path, t.version),
        Txn::CreateSession(t) => format!("timeOut:{}", t.timeout_ms),
        Txn::CloseSession(t) => format!("paths2Delete:[{}]", t.paths_to_delete.join(",")),
        Txn::Error(t) => format!("err:{}", t.err),
        Txn::Multi(ops) => ops
            .iter()
            .map(|t| format!("{}:{}", op_name(t.txn_type()), txn_text(t)))
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// A JSON string literal.
pub fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `"data": "<text>"` when the data is UTF-8, `"data_base64": ...` otherwise, `"data":
/// null` for null data.
pub fn data_json(d: Option<&[u8]>) -> String {
    match d {
        None => "\"data\":null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => format!("\"data\":{}", js(s)),
            Err(_) => format!(
                "\"data_base64\":{}",
                js(&base64::engine::general_purpose::STANDARD.encode(b))
            ),
        },
    }
}

pub fn acl_json(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl
        .iter()
        .map(|a| {
            format!(
                "{{\"perms\":{},\"scheme\":{},\"id\":{}}}",
                a.perms,
                js(&a.id.scheme),
                js(&a.id.id)
            )
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// The fields of one transaction as a JSON object.
pub fn txn_json(txn: &Txn) -> String {
    let body = match txn {
        Txn::Create(t) | Txn::Create2(t) => format!(
            "\"path\":{},{},\"acl\":{},\"ephemeral\":{},\"parent_cversion\":{}",
            js(&t.path),
            data_json(t.data.as_deref()),
            acl_json(&t.acl),
            t.ephemeral,
            t.parent_cversion
        ),
        Txn::CreateContainer(t) => format!(
            "\"path\":{},{},\"acl\":{},\"parent_cversion\":{}",
            js(&t.path),
            data_json(t.data.as_deref()),
            acl_json(&t.acl),
            t.parent_cversion
        ),
        Txn::CreateTtl(t) => format!(
            "\"path\":{},{},\"acl\":{},\"parent_cversion\":{},\"ttl\":{}",
            js(&t.path),
            data_json(t.data.as_deref()),
            acl_json(&t.acl),
            t.parent_cversion,
            t.ttl
        ),
        Txn::Delete(t) | Txn::DeleteContainer(t) => format!("\"path\":{}", js(&t.path)),
        Txn::SetData(t) => format!(
            "\"path\":{},{},\"version\":{}",
            js(&t.path),
            data_json(t.data.as_deref()),
            t.version
        ),
        Txn::SetAcl(t) => format!(
            "\"path\":{},\"acl\":{},\"version\":{}",
            js(&t.path),
            acl_json(&t.acl),
            t.version
        ),
        Txn::Check(t) => format!("\"path\":{},\"version\":{}", js(&t.path), t.version),
        Txn::CreateSession(t) => format!("\"timeout\":{}", t.timeout_ms),
        Txn::CloseSession(t) => format!(
            "\"paths_to_delete\":[{}]",
            t.paths_to_delete
                .iter()
                .map(|p| js(p))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Txn::Error(t) => format!("\"err\":{}", t.err),
        Txn::Multi(ops) => format!(
            "\"ops\":[{}]",
            ops.iter()
                .map(|t| format!(
                    "{{\"type\":{},\"txn\":{}}}",
                    js(op_name(t.txn_type())),
                    txn_json(t)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    format!("{{{body}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_hex() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(hex16(0xb5), "0x000000000000b5");
        assert_eq!(hex16(i64::MIN), "0x8000000000000000");
        assert_eq!(js("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
