//! Bucketed deadlines, with ZooKeeper's `ExpiryQueue` rounding rule.
//!
//! Every deadline is rounded *up* to the next multiple of the interval `I`
//! (`(t / I + 1) * I`, so a deadline that already is a multiple still moves one bucket
//! later). Elements sharing a bucket fall due together, which turns "find everything
//! that expired" into "take one bucket", and lets a touch move an element between two
//! buckets in constant time whatever the number of elements (the number of buckets is
//! bounded by the longest timeout over the interval, about 21 for sessions).
//!
//! Differences from the Java class, none observable with a monotonic `now`:
//! * `poll` also forgets the polled elements (the Java `elemMap` keeps them until an
//!   explicit `remove`), so `len` and `expiry_of` only describe queued elements.
//! * `poll` sweeps every bucket at or before the one it consumes, so a bucket created
//!   behind the poller by a caller whose clock went backwards is still delivered
//!   instead of leaking.
//! * Elements come out sorted, so that replays of the same inputs give the same
//!   outputs.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Multiply-rotate hashing, as used inside rustc ("FxHash"): several times cheaper
/// than the default SipHash on the integer keys kept here. Its weakness against chosen
/// keys does not matter: inserted keys are session ids allocated by servers, never
/// picked by clients, who can only make lookups, and lookups build no collision
/// chains. Being unseeded, it also makes iteration order reproducible.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A set of elements, each due at one bucket time; see the module documentation.
#[derive(Debug, Clone)]
pub struct ExpiryQueue<K: Copy + Eq + Hash + Ord> {
    /// Element → its slot.
    elems: FxHashMap<K, usize>,
    slots: Slots<K, ()>,
}

impl<K: Copy + Eq + Hash + Ord> ExpiryQueue<K> {
    /// A queue whose first bucket falls due at the interval boundary after `now_ms`.
    ///
    /// An `interval_ms` of 0 is treated as 1: the rounding divides by it.
    pub fn new(interval_ms: u64, now_ms: u64) -> Self {
        Self {
            elems: FxHashMap::default(),
            slots: Slots::new(interval_ms, now_ms),
        }
    }

    /// The bucket width.
    pub fn interval_ms(&self) -> u64 {
        self.slots.interval_ms
    }

    /// The bucket key the next successful [`poll`](Self::poll) consumes.
    pub fn next_expiration_ms(&self) -> u64 {
        self.slots.next_expiration_ms
    }

    /// The bucket `t` falls into: the next multiple of the interval strictly after `t`.
    pub fn round_to_next_interval(&self, t_ms: u64) -> u64 {
        round_to_next_interval(t_ms, self.slots.interval_ms)
    }

    /// Adds `k`, or moves it, so that it falls due in the bucket of
    /// `now_ms + timeout_ms`.
    ///
    /// Returns the new bucket key, or `None` if `k` already sat in that bucket.
    pub fn update(&mut self, k: K, timeout_ms: u64, now_ms: u64) -> Option<u64> {
        let slot = match self.elems.entry(k) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => *entry.insert(self.slots.insert(k, ())),
        };
        self.slots.schedule(slot, timeout_ms, now_ms)
    }

    /// Takes `k` out of the queue; returns the bucket key it was in.
    pub fn remove(&mut self, k: K) -> Option<u64> {
        let slot = self.elems.remove(&k)?;
        let expiry = self.slots.expiry(slot);
        self.slots.release(slot);
        expiry
    }

    /// Hands back the next due bucket, whole and sorted, exactly as ZooKeeper does:
    /// nothing if `now_ms` is before the next bucket key; otherwise that bucket (possibly
    /// empty) and the poller advances by **one** interval.
    ///
    /// A caller that fell several intervals behind must therefore call again until
    /// [`wait_time_ms`](Self::wait_time_ms) is non-zero, or use
    /// [`poll_all_due`](Self::poll_all_due).
    pub fn poll(&mut self, now_ms: u64) -> Vec<K> {
        let due = self.slots.poll(now_ms);
        self.forget(due)
    }

    /// Everything due at `now_ms`, sorted: the union of what repeated
    /// [`poll`](Self::poll) calls would return, leaving the queue in the same state.
    ///
    /// Costs one step per non-empty bucket rather than one per elapsed interval, so a
    /// very late call is cheap.
    pub fn poll_all_due(&mut self, now_ms: u64) -> Vec<K> {
        let due = self.slots.poll_all_due(now_ms);
        self.forget(due)
    }

    fn forget(&mut self, due: Vec<usize>) -> Vec<K> {
        let mut out: Vec<K> = due
            .into_iter()
            .map(|slot| {
                let k = self.slots.elem(slot);
                self.elems.remove(&k);
                self.slots.release(slot);
                k
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Milliseconds until the next bucket falls due; 0 if one already has.
    pub fn wait_time_ms(&self, now_ms: u64) -> u64 {
        self.slots.wait_time_ms(now_ms)
    }

    /// The bucket key `k` sits in, if queued.
    pub fn expiry_of(&self, k: K) -> Option<u64> {
        self.elems.get(&k).and_then(|&slot| self.slots.expiry(slot))
    }

    /// Whether `k` is queued.
    pub fn contains(&self, k: K) -> bool {
        self.elems.contains_key(&k)
    }

    /// Number of queued elements.
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// Number of bucket keys held, including buckets emptied by moves but not yet
    /// polled (ZooKeeper's `dump` header counts them too).
    pub fn bucket_count(&self) -> usize {
        self.slots.buckets.len()
    }

    /// Buckets in ascending key order, each with its elements sorted; emptied but not
    /// yet polled buckets appear with no elements, as in ZooKeeper's `dump`.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, Vec<K>)> + '_ {
        self.slots.buckets()
    }
}

/// End of a list. Slot numbers are 32-bit inside a slot (a slot is per session, and
/// four billion sessions would not fit in memory anyway), so that a slot stays small.
const NIL: u32 = u32::MAX;

/// A bucket key no bucket has: keys are multiples of the interval after some time, so
/// at least the interval, never 0.
const NO_BUCKET: u64 = 0;

fn to_idx(i: u32) -> usize {
    i as usize
}

fn from_idx(i: usize) -> u32 {
    debug_assert!(i < NIL as usize);
    i as u32
}

/// The machinery under [`ExpiryQueue`], addressed by slot rather than by element so
/// that the session tracker can keep its per-session data in the same slot and reach
/// both with a single hash lookup.
///
/// Each bucket is a doubly linked list threaded through a slab of slots, so moving an
/// element costs a few index writes, and no per-bucket set has to grow when a million
/// sessions move into the same bucket. A slot may also be out of every bucket (a polled
/// session waiting for its close); it stays allocated until released.
#[derive(Debug, Clone)]
pub(crate) struct Slots<K, V> {
    slots: Vec<Slot<K, V>>,
    free: Vec<usize>,
    /// Bucket key → its list. Buckets emptied by moves stay until polled, as in
    /// ZooKeeper, whose `dump` shows them with size 0; their number is bounded by the
    /// longest timeout divided by the interval.
    buckets: BTreeMap<u64, List>,
    next_expiration_ms: u64,
    interval_ms: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<K, V> {
    elem: K,
    value: V,
    /// [`NO_BUCKET`] while in none.
    bucket: u64,
    prev: u32,
    next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct List {
    head: u32,
    len: usize,
}

// `Copy` values, so that a released slot can simply be overwritten later: nothing in
// it needs dropping.
impl<K: Copy + Ord, V: Copy> Slots<K, V> {
    pub(crate) fn new(interval_ms: u64, now_ms: u64) -> Self {
        let interval_ms = interval_ms.max(1);
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            buckets: BTreeMap::new(),
            next_expiration_ms: round_to_next_interval(now_ms, interval_ms),
            interval_ms,
        }
    }

    /// A new slot, in no bucket yet.
    pub(crate) fn insert(&mut self, elem: K, value: V) -> usize {
        let slot = Slot {
            elem,
            value,
            bucket: NO_BUCKET,
            prev: NIL,
            next: NIL,
        };
        match self.free.pop() {
            Some(idx) => {
                self.slots[idx] = slot;
                idx
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    /// Takes the slot out of its bucket and makes it reusable.
    pub(crate) fn release(&mut self, idx: usize) {
        self.unschedule(idx);
        self.free.push(idx);
    }

    pub(crate) fn elem(&self, idx: usize) -> K {
        self.slots[idx].elem
    }

    pub(crate) fn value(&self, idx: usize) -> &V {
        &self.slots[idx].value
    }

    pub(crate) fn value_mut(&mut self, idx: usize) -> &mut V {
        &mut self.slots[idx].value
    }

    pub(crate) fn expiry(&self, idx: usize) -> Option<u64> {
        Some(self.slots[idx].bucket).filter(|&b| b != NO_BUCKET)
    }

    /// Puts the slot in the bucket of `now_ms + timeout_ms`; returns the new bucket
    /// key, or `None` if it already sat there.
    pub(crate) fn schedule(&mut self, idx: usize, timeout_ms: u64, now_ms: u64) -> Option<u64> {
        let key = round_to_next_interval(now_ms.saturating_add(timeout_ms), self.interval_ms);
        if self.slots[idx].bucket == key {
            return None;
        }
        self.unschedule(idx);
        let list = self
            .buckets
            .entry(key)
            .or_insert(List { head: NIL, len: 0 });
        let old_head = list.head;
        list.head = from_idx(idx);
        list.len += 1;
        let slot = &mut self.slots[idx];
        slot.bucket = key;
        slot.prev = NIL;
        slot.next = old_head;
        if old_head != NIL {
            self.slots[to_idx(old_head)].prev = from_idx(idx);
        }
        Some(key)
    }

    /// Takes the slot out of its bucket, if any; returns that bucket's key.
    pub(crate) fn unschedule(&mut self, idx: usize) -> Option<u64> {
        let Slot {
            prev, next, bucket, ..
        } = self.slots[idx];
        if bucket == NO_BUCKET {
            return None;
        }
        let key = bucket;
        if prev != NIL {
            self.slots[to_idx(prev)].next = next;
        }
        if next != NIL {
            self.slots[to_idx(next)].prev = prev;
        }
        if let Some(list) = self.buckets.get_mut(&key) {
            if prev == NIL {
                list.head = next;
            }
            list.len -= 1;
        }
        let slot = &mut self.slots[idx];
        slot.bucket = NO_BUCKET;
        slot.prev = NIL;
        slot.next = NIL;
        Some(key)
    }

    /// ZooKeeper's `poll`: the slots of bucket `next_expiration_ms` if it is due, and
    /// the poller advances by one interval. They are out of every bucket afterwards but
    /// still allocated.
    pub(crate) fn poll(&mut self, now_ms: u64) -> Vec<usize> {
        if now_ms < self.next_expiration_ms {
            return Vec::new();
        }
        let due = self.next_expiration_ms;
        self.next_expiration_ms = due.saturating_add(self.interval_ms);
        self.take_buckets_through(due)
    }

    /// What repeated [`poll`](Self::poll) calls would take, in one step per bucket.
    pub(crate) fn poll_all_due(&mut self, now_ms: u64) -> Vec<usize> {
        if now_ms < self.next_expiration_ms {
            return Vec::new();
        }
        // Bucket keys are multiples of the interval, as is the poller, so the poller
        // ends where it would after polling one interval at a time.
        self.next_expiration_ms = round_to_next_interval(now_ms, self.interval_ms);
        self.take_buckets_through(now_ms)
    }

    fn take_buckets_through(&mut self, last_key: u64) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > last_key {
                break;
            }
            let list = entry.remove();
            out.reserve(list.len);
            let mut idx = list.head;
            while idx != NIL {
                let slot = &mut self.slots[to_idx(idx)];
                out.push(to_idx(idx));
                idx = slot.next;
                slot.bucket = NO_BUCKET;
                slot.prev = NIL;
                slot.next = NIL;
            }
        }
        out
    }

    pub(crate) fn wait_time_ms(&self, now_ms: u64) -> u64 {
        self.next_expiration_ms.saturating_sub(now_ms)
    }

    /// Buckets in ascending key order, each with its elements sorted.
    pub(crate) fn buckets(&self) -> impl Iterator<Item = (u64, Vec<K>)> + '_ {
        self.buckets.iter().map(|(&key, list)| {
            let mut elems = Vec::with_capacity(list.len);
            let mut idx = list.head;
            while let Some(slot) = self.slots.get(to_idx(idx)) {
                elems.push(slot.elem);
                idx = slot.next;
            }
            elems.sort_unstable();
            (key, elems)
        })
    }
}

/// ZooKeeper's `roundToNextInterval`: `(t / I + 1) * I`.
pub(crate) fn round_to_next_interval(t_ms: u64, interval_ms: u64) -> u64 {
    (t_ms / interval_ms)
        .saturating_add(1)
        .saturating_mul(interval_ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn rounds_up_to_strictly_next_multiple() {
        let q: ExpiryQueue<u32> = ExpiryQueue::new(2000, 0);
        assert_eq!(q.round_to_next_interval(0), 2000);
        assert_eq!(q.round_to_next_interval(1), 2000);
        assert_eq!(q.round_to_next_interval(1999), 2000);
        assert_eq!(q.round_to_next_interval(2000), 4000);
        assert_eq!(q.round_to_next_interval(2001), 4000);
        assert_eq!(q.next_expiration_ms(), 2000);
        let q: ExpiryQueue<u32> = ExpiryQueue::new(2000, 4000);
        assert_eq!(q.next_expiration_ms(), 6000);
    }

    /// Spec §4.8: I = 2000, T = 6000.
    #[test]
    fn worked_example() {
        let mut q = ExpiryQueue::new(2000, 10_000);
        let rows = [
            (10_000, 18_000),
            (10_001, 18_000),
            (11_999, 18_000),
            (12_000, 20_000),
        ];
        for (i, &(touch, key)) in rows.iter().enumerate() {
            let k = i as u32;
            assert_eq!(q.update(k, 6000, touch), Some(key));
            assert_eq!(q.expiry_of(k), Some(key));
            let gap = key - touch;
            assert!((6001..=8000).contains(&gap));
        }
        assert_eq!(q.poll(17_999), Vec::<u32>::new());
        let mut now = 12_000;
        let mut got = Vec::new();
        while now < 18_000 {
            got.extend(q.poll(now));
            now += 1;
        }
        assert!(got.is_empty());
        assert_eq!(q.poll_all_due(18_000), vec![0, 1, 2]);
        assert_eq!(q.poll_all_due(19_999), Vec::<u32>::new());
        assert_eq!(q.poll_all_due(20_000), vec![3]);
        assert!(q.is_empty());
    }

    #[test]
    fn update_moves_between_buckets_and_reports_no_change() {
        let mut q = ExpiryQueue::new(1000, 0);
        assert_eq!(q.update(7u64, 5000, 0), Some(6000));
        // Same bucket: unchanged.
        assert_eq!(q.update(7, 5000, 999), None);
        assert_eq!(q.update(7, 5000, 1000), Some(7000));
        assert_eq!(q.len(), 1);
        // The old bucket stays, emptied, until polled (ZooKeeper's dump shows it).
        let dump: Vec<_> = q.buckets().collect();
        assert_eq!(dump, vec![(6000, vec![]), (7000, vec![7])]);
        assert_eq!(q.bucket_count(), 2);
        assert_eq!(q.remove(7), Some(7000));
        assert_eq!(q.remove(7), None);
        assert_eq!(q.expiry_of(7), None);
        assert!(q.is_empty());
    }

    #[test]
    fn poll_returns_whole_bucket_one_interval_at_a_time() {
        let mut q = ExpiryQueue::new(1000, 0);
        for k in 0..10u32 {
            q.update(k, 2500, 0); // bucket 3000
        }
        for k in 10..15u32 {
            q.update(k, 3500, 0); // bucket 4000
        }
        assert_eq!(q.wait_time_ms(0), 1000);
        assert_eq!(q.wait_time_ms(999), 1);
        assert_eq!(q.wait_time_ms(1000), 0);
        // A late poll consumes one interval per call, like ZooKeeper.
        assert!(q.poll(10_000).is_empty()); // bucket 1000
        assert!(q.poll(10_000).is_empty()); // bucket 2000
        assert_eq!(q.poll(10_000), (0..10).collect::<Vec<_>>());
        assert_eq!(q.next_expiration_ms(), 4000);
        assert_eq!(q.wait_time_ms(10_000), 0);
        assert_eq!(q.poll(10_000), (10..15).collect::<Vec<_>>());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn late_poll_all_due_loses_nothing() {
        let mut q = ExpiryQueue::new(100, 0);
        for k in 0..50u32 {
            q.update(k, u64::from(k) * 37, 0);
        }
        let got = q.poll_all_due(1_000_000);
        assert_eq!(got, (0..50).collect::<Vec<_>>());
        assert_eq!(q.next_expiration_ms(), 1_000_100);
        assert_eq!(q.wait_time_ms(1_000_000), 100);
    }

    #[test]
    fn bucket_behind_the_poller_is_still_delivered() {
        let mut q = ExpiryQueue::new(100, 1000);
        assert!(q.poll(1100).is_empty());
        // A clock that went backwards puts 5 behind the poller (bucket 1100).
        q.update(5u8, 0, 1050);
        assert_eq!(q.poll(1200), vec![5]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Update(u8, u64),
        Remove(u8),
        Poll,
        PollAll,
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..20, 0u64..5000).prop_map(|(k, t)| Op::Update(k, t)),
            1 => (0u8..20).prop_map(Op::Remove),
            2 => Just(Op::Poll),
            1 => Just(Op::PollAll),
            3 => (0u64..1500).prop_map(Op::Advance),
        ]
    }

    /// The naive model: each element remembers its exact deadline; the poller is a
    /// cursor walking interval by interval.
    struct Model {
        interval: u64,
        next: u64,
        deadlines: HashMap<u8, u64>,
    }

    impl Model {
        fn bucket(&self, t: u64) -> u64 {
            (t / self.interval + 1) * self.interval
        }
        fn take_through(&mut self, key: u64) -> Vec<u8> {
            let mut due: Vec<u8> = self
                .deadlines
                .iter()
                .filter(|&(_, &d)| d <= key)
                .map(|(&k, _)| k)
                .collect();
            due.sort_unstable();
            for k in &due {
                self.deadlines.remove(k);
            }
            due
        }
        fn poll(&mut self, now: u64) -> Vec<u8> {
            if now < self.next {
                return vec![];
            }
            let due = self.next;
            self.next += self.interval;
            self.take_through(due)
        }
        fn poll_all(&mut self, now: u64) -> Vec<u8> {
            let mut all = BTreeSet::new();
            while now >= self.next {
                all.extend(self.poll(now));
            }
            all.into_iter().collect()
        }
    }

    proptest! {
        #[test]
        fn matches_naive_model(interval in 1u64..700, start in 0u64..10_000,
                               ops in proptest::collection::vec(op(), 1..200)) {
            let mut q = ExpiryQueue::new(interval, start);
            let mut m = Model {
                interval,
                next: (start / interval + 1) * interval,
                deadlines: HashMap::new(),
            };
            let mut now = start;
            for op in ops {
                match op {
                    Op::Update(k, t) => {
                        let key = m.bucket(now + t);
                        let expect = if m.deadlines.insert(k, key) == Some(key) { None } else { Some(key) };
                        prop_assert_eq!(q.update(k, t, now), expect);
                    }
                    Op::Remove(k) => prop_assert_eq!(q.remove(k), m.deadlines.remove(&k)),
                    Op::Poll => prop_assert_eq!(q.poll(now), m.poll(now)),
                    Op::PollAll => prop_assert_eq!(q.poll_all_due(now), m.poll_all(now)),
                    Op::Advance(d) => now += d,
                }
                prop_assert_eq!(q.len(), m.deadlines.len());
                prop_assert_eq!(q.next_expiration_ms(), m.next);
                prop_assert_eq!(q.wait_time_ms(now), m.next.saturating_sub(now));
                for (&k, &d) in &m.deadlines {
                    prop_assert_eq!(q.expiry_of(k), Some(d));
                }
                let queued: usize = q.buckets().map(|(_, v)| v.len()).sum();
                prop_assert_eq!(queued, m.deadlines.len());
            }
        }
    }
}
