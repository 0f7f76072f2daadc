//! Identities, ACL validation on create/setACL, and permission checks, as Apache ZooKeeper's
//! built-in providers (`world`, `auth`, `digest`, `ip`, `super`) define them.

use std::net::IpAddr;

use base64::Engine;
use oxkeeper_proto::{perms, Acl, ErrorCode, Id};
use sha1::{Digest, Sha1};

/// `user:base64(sha1("user:password"))`, the digest id of a credential.
pub fn digest_id(credential: &str) -> String {
    let user = credential.split(':').next().unwrap_or("");
    let hash = Sha1::digest(credential.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Whether a `digest` ACL id is well formed: Java's `id.split(":").length == 2`, which drops
/// trailing empty parts.
fn valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// An `ip` ACL id: an address, optionally with a prefix length.
fn parse_ip_acl(id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (id, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn ip_matches(acl_id: &str, addr: IpAddr) -> bool {
    let Some((net, bits)) = parse_ip_acl(acl_id) else {
        return false;
    };
    let (a, b): (Vec<u8>, Vec<u8>) = match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(c)) => (n.octets().to_vec(), c.octets().to_vec()),
        (IpAddr::V6(n), IpAddr::V6(c)) => (n.octets().to_vec(), c.octets().to_vec()),
        _ => return false,
    };
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

fn is_authenticated_scheme(scheme: &str) -> bool {
    // Every provider but `ip` reports its identities as authenticated; `super` has no
    // provider at all.
    !matches!(scheme, "ip" | "super" | "world")
}

/// Who a connection is: its address (ZooKeeper's `ip` identity, which every connection
/// has) and what `auth` packets added. The address is kept as an address rather than as
/// an `ip:<text>` identity: no allocation per connection, and no parsing per ACL check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    pub ip: Option<IpAddr>,
    pub auth: Vec<Id>,
}

impl Identities {
    pub fn new(ip: IpAddr) -> Identities {
        Identities {
            ip: Some(ip),
            auth: Vec::new(),
        }
    }

    /// From identities as ZooKeeper lists them, `ip:<addr>` among them.
    pub fn from_ids(ids: &[Id]) -> Identities {
        let mut who = Identities::default();
        for id in ids {
            match (id.scheme.as_str(), id.id.parse::<IpAddr>()) {
                ("ip", Ok(ip)) => who.ip = Some(ip),
                _ => who.add(id.clone()),
            }
        }
        who
    }

    /// Every identity as ZooKeeper lists them (`whoAmI`): the address first.
    pub fn to_ids(&self) -> Vec<Id> {
        self.ip
            .map(|ip| Id::new("ip", &ip.to_string()))
            .into_iter()
            .chain(self.auth.iter().cloned())
            .collect()
    }

    /// Adds an identity an `auth` packet proved. An `ip` identity can only name the
    /// connection's own address, which is already there.
    pub fn add(&mut self, id: Id) {
        if id.scheme != "ip" && !self.auth.contains(&id) {
            self.auth.push(id);
        }
    }

    fn is_super(&self) -> bool {
        self.auth.iter().any(|i| i.scheme == "super")
    }
}

/// ZooKeeper's `fixupACL`: removes duplicates, expands `auth` into the caller's
/// authenticated identities, and rejects what no provider would accept.
pub fn fixup_acl(acl: &[Acl], identities: &Identities) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(a) {
            unique.push(a.clone());
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => out.push(a),
            "auth" => {
                let mut any = false;
                for id in identities
                    .auth
                    .iter()
                    .filter(|i| is_authenticated_scheme(&i.scheme))
                {
                    any = true;
                    let entry = Acl {
                        perms: a.perms,
                        id: id.clone(),
                    };
                    if !out.contains(&entry) {
                        out.push(entry);
                    }
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if valid_digest_id(&a.id.id) => out.push(a),
            "ip" if parse_ip_acl(&a.id.id).is_some() => out.push(a),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(out)
}

/// Whether `identities` grant any of the bits in `perm` on a node with `acl`.
pub fn allowed(acl: &[Acl], perm: i32, identities: &Identities, skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() || identities.is_super() {
        return true;
    }
    acl.iter()
        .filter(|a| a.perms & perm != 0)
        .any(|a| match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => true,
            "ip" => identities.ip.is_some_and(|ip| ip_matches(&a.id.id, ip)),
            scheme => identities
                .auth
                .iter()
                .any(|i| i.scheme == scheme && i.id == a.id.id),
        })
}

pub fn check(
    acl: &[Acl],
    perm: i32,
    identities: &Identities,
    skip_acl: bool,
) -> Result<(), ErrorCode> {
    if allowed(acl, perm, identities, skip_acl) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// getACL for a caller with READ but not ADMIN hides digest hashes.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme != "digest" {
                return a.clone();
            }
            let user = a.id.id.split(':').next().unwrap_or("");
            Acl {
                perms: a.perms,
                id: Id::new("digest", &format!("{user}:x")),
            }
        })
        .collect()
}

pub const READ_OR_ADMIN: i32 = perms::READ | perms::ADMIN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_the_reference() {
        assert_eq!(
            digest_id("user:password"),
            "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="
        );
        assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
        assert_eq!(
            digest_id("super:admin"),
            "super:xQJmxLMiHGwaqBvst5y6rkB6HQs="
        );
    }

    #[test]
    fn fixup_rules() {
        let none = Identities::default();
        let ip = Id::new("ip", "127.0.0.1");
        let bob = Id::new("digest", "bob:hash");
        assert_eq!(
            fixup_acl(&[], &Identities::from_ids(std::slice::from_ref(&ip))),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[Acl::new(31, "world", "me")], &none),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(
                &[Acl::new(31, "auth", "")],
                &Identities::from_ids(std::slice::from_ref(&ip))
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(
                &[Acl::new(31, "auth", "")],
                &Identities::from_ids(&[ip.clone(), bob.clone()])
            )
            .unwrap(),
            vec![Acl { perms: 31, id: bob }]
        );
        assert_eq!(
            fixup_acl(&[Acl::new(1, "digest", "nocolon")], &none),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[Acl::new(1, "digest", "a:")], &none),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fixup_acl(&[Acl::new(1, "digest", "a:b")], &none).is_ok());
        assert!(fixup_acl(&[Acl::new(1, "ip", "10.0.0.0/8")], &none).is_ok());
        assert_eq!(
            fixup_acl(&[Acl::new(1, "ip", "10.0.0.0/33")], &none),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[Acl::new(1, "sasl", "x")], &none),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = [
            Acl::new(31, "world", "anyone"),
            Acl::new(31, "world", "anyone"),
        ];
        assert_eq!(fixup_acl(&dup, &none).unwrap().len(), 1);
    }

    #[test]
    fn checks() {
        let ids = Identities::from_ids(&[Id::new("ip", "127.0.0.1"), Id::new("digest", "bob:h")]);
        let none = Identities::default();
        assert!(allowed(&Acl::read_only(), perms::READ, &none, false));
        assert!(!allowed(&Acl::read_only(), perms::WRITE, &ids, false));
        assert!(allowed(
            &[Acl::new(2, "digest", "bob:h")],
            perms::WRITE,
            &ids,
            false
        ));
        assert!(!allowed(
            &[Acl::new(2, "digest", "eve:h")],
            perms::WRITE,
            &ids,
            false
        ));
        assert!(allowed(
            &[Acl::new(1, "ip", "127.0.0.0/8")],
            perms::READ,
            &ids,
            false
        ));
        assert!(!allowed(
            &[Acl::new(1, "ip", "10.0.0.0/8")],
            perms::READ,
            &ids,
            false
        ));
        assert!(allowed(
            &[Acl::new(1, "ip", "10.0.0.0/8")],
            perms::READ,
            &Identities::from_ids(&[Id::new("super", "")]),
            false
        ));
        assert!(allowed(&[], perms::ADMIN, &none, false));
    }
}
