//! Interning of ACL lists, ZooKeeper's `ReferenceCountedACLCache` without the numeric ids.
//!
//! Millions of nodes share a handful of ACL lists, so each node holds an `Arc<[Acl]>`
//! from this cache (16 bytes) instead of its own vector. The cache counts references so
//! that lists nobody uses any more are dropped; snapshot writers that need ZooKeeper's
//! numeric ACL ids can number [`AclCache::lists`] themselves.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use oxkeeper_proto::Acl;

/// One distinct list and the number of nodes holding it.
type Entry = (Arc<[Acl]>, usize);

#[derive(Debug, Default, Clone)]
pub(crate) struct AclCache {
    /// Content hash → the distinct lists with that hash and their reference counts.
    /// `Acl` does not implement `Hash`, hence the explicit buckets.
    buckets: HashMap<u64, Vec<Entry>>,
    distinct: usize,
}

fn content_hash(acl: &[Acl]) -> u64 {
    // A fixed-key hasher: the value never leaves the process, and only equality of
    // contents decides sharing, so a collision costs a comparison, not correctness.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    acl.len().hash(&mut h);
    for a in acl {
        a.perms.hash(&mut h);
        a.id.scheme.hash(&mut h);
        a.id.id.hash(&mut h);
    }
    h.finish()
}

impl AclCache {
    /// A shared copy of `acl`, counting one more reference to it.
    pub(crate) fn intern(&mut self, acl: &[Acl]) -> Arc<[Acl]> {
        let bucket = self.buckets.entry(content_hash(acl)).or_default();
        if let Some((shared, count)) = bucket.iter_mut().find(|(l, _)| **l == *acl) {
            *count += 1;
            return Arc::clone(shared);
        }
        let shared: Arc<[Acl]> = acl.into();
        bucket.push((Arc::clone(&shared), 1));
        self.distinct += 1;
        shared
    }

    /// Drops one reference taken by [`AclCache::intern`].
    pub(crate) fn release(&mut self, acl: &Arc<[Acl]>) {
        let key = content_hash(acl);
        let Some(bucket) = self.buckets.get_mut(&key) else {
            return;
        };
        if let Some(i) = bucket.iter().position(|(l, _)| Arc::ptr_eq(l, acl)) {
            bucket[i].1 -= 1;
            if bucket[i].1 == 0 {
                bucket.swap_remove(i);
                self.distinct -= 1;
            }
        }
        if bucket.is_empty() {
            self.buckets.remove(&key);
        }
    }

    /// Number of distinct lists in use (`aclCacheSize`).
    pub(crate) fn len(&self) -> usize {
        self.distinct
    }

    /// Every distinct list in use with its reference count, in no particular order.
    pub(crate) fn lists(&self) -> impl Iterator<Item = (&Arc<[Acl]>, usize)> + '_ {
        self.buckets.values().flatten().map(|(l, c)| (l, *c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_lists_are_shared_and_counted() {
        let mut c = AclCache::default();
        let a = c.intern(&Acl::open());
        let b = c.intern(&Acl::open());
        let r = c.intern(&Acl::read_only());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(c.len(), 2);
        c.release(&a);
        assert_eq!(c.len(), 2);
        c.release(&b);
        assert_eq!(c.len(), 1);
        let a2 = c.intern(&Acl::open());
        assert!(!Arc::ptr_eq(&a, &a2));
        c.release(&r);
        c.release(&a2);
        assert_eq!(c.len(), 0);
        assert_eq!(c.lists().count(), 0);
    }
}
