//! The session tracker: which sessions this server times, their deadlines, the
//! closing flag and owner, id allocation, and the stall-aware logical clock.
//!
//! See the [module documentation](super) for the rules; this file follows ZooKeeper's
//! `SessionTrackerImpl` unless a doc comment says otherwise.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU64;

use thiserror::Error;

use super::expiry_queue::{FxHashMap, Slots};

/// A ZooKeeper session id. The top byte is the id of the server that allocated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    /// `0x` + lower-case hex of the two's-complement bits, no leading zeros, like
    /// ZooKeeper's `Long.toHexString` in its log lines and `dump` output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// `ephemeralOwner` value that marks container nodes, so never a session id.
const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// ZooKeeper's `initializeNextSessionId(serverId)`, with the time passed in: the low
/// 40 bits of `time_ms` at bits 16..55, the server id in the top byte, low 16 bits 0.
///
/// The shift is done on unsigned bits, so the time can never leak into the server id
/// byte (ZOOKEEPER-1622). Server ids of 128 and above give negative ids, exactly as in
/// ZooKeeper.
pub fn initial_session_id(server_id: u8, time_ms: u64) -> i64 {
    let sid = ((time_ms << 24) >> 8) | (u64::from(server_id) << 56);
    let sid = sid as i64;
    if sid == CONTAINER_EPHEMERAL_OWNER {
        sid + 1
    } else {
        sid
    }
}

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The server's id, placed in the top byte of the ids it allocates. Standalone
    /// ZooKeeper uses 1; a quorum member uses its `myid`.
    pub server_id: u8,
    /// `tickTime`: also the expiry bucket width, and the longest the server may go
    /// without calling the tracker before the silence counts as a stall.
    pub tick_time_ms: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// How far past `tick_time_ms` a gap between two calls may grow before the tracker
    /// treats it as a stall of the server.
    pub stall_grace_ms: u32,
}

impl SessionConfig {
    /// ZooKeeper's defaults for a given `tickTime`: server id 1, timeouts between
    /// 2 and 20 ticks; stall grace of one tick.
    pub fn new(tick_time_ms: u32) -> Self {
        Self {
            server_id: 1,
            tick_time_ms,
            min_session_timeout_ms: tick_time_ms.saturating_mul(2),
            max_session_timeout_ms: tick_time_ms.saturating_mul(20),
            stall_grace_ms: tick_time_ms,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tick_time_ms == 0 {
            return Err(ConfigError::ZeroTickTime);
        }
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(ConfigError::MinAboveMax {
                min: self.min_session_timeout_ms,
                max: self.max_session_timeout_ms,
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("tickTime must be positive")]
    ZeroTickTime,
    #[error("minSessionTimeout {min} ms is above maxSessionTimeout {max} ms")]
    MinAboveMax { min: u32, max: u32 },
}

/// Why a touch was refused; either way ZooKeeper drops the request without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TouchError {
    #[error("unknown session")]
    Unknown,
    #[error("session is closing")]
    Closing,
}

/// Errors of [`SessionTracker::check_session`] and [`SessionTracker::set_owner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SessionError {
    #[error("session expired")]
    Expired,
    #[error("session moved")]
    Moved,
}

impl SessionError {
    /// The ZooKeeper error code to put in the reply.
    pub fn zk_code(self) -> i32 {
        match self {
            SessionError::Expired => -112,
            SessionError::Moved => -118,
        }
    }
}

/// A read-only view of one tracked session, for `dump`, `cons` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    /// The timeout the session was created (or restored) with.
    pub timeout_ms: u32,
    /// The timeout touches currently use: the one negotiated by the latest reconnect.
    pub touch_timeout_ms: u32,
    /// `now_ms` of the last successful touch (or of creation).
    pub last_contact_ms: u64,
    /// When its bucket is expected to fall due, on the caller's clock, assuming no
    /// further stall; `None` once the bucket was polled.
    pub expires_at_ms: Option<u64>,
    pub closing: bool,
    pub owner: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    timeout_ms: u32,
    touch_timeout_ms: u32,
    last_contact_ms: u64,
    closing: bool,
    owner: Option<NonZeroU64>,
}

impl Session {
    fn new(timeout_ms: u32, now_ms: u64) -> Self {
        Self {
            timeout_ms,
            touch_timeout_ms: timeout_ms,
            last_contact_ms: now_ms,
            closing: false,
            owner: None,
        }
    }
}

/// Maps the caller's monotonic clock to the logical clock deadlines are kept on, from
/// which stalls of the server are cut out. See the module documentation.
#[derive(Debug, Clone)]
struct StallClock {
    tick_ms: u64,
    /// A gap longer than this between two observations is a stall.
    threshold_ms: u64,
    last_seen_ms: u64,
    logical_ms: u64,
    /// Stall time already reported but not yet cut out: withheld from the next
    /// progress of the logical clock, because the logical clock never runs backwards.
    hold_ms: u64,
    /// Stalls already cut out, as disjoint windows of the caller's clock, oldest first,
    /// so that a reported stall reaching back over them is not credited twice.
    credited: VecDeque<(u64, u64)>,
    stall_total_ms: u64,
    stall_count: u64,
}

impl StallClock {
    /// Enough to cover any stall a server would report late; forgetting older windows
    /// could only credit a pause twice, which delays expiry and never advances it.
    const MAX_WINDOWS: usize = 32;

    fn new(config: &SessionConfig, now_ms: u64) -> Self {
        let tick_ms = u64::from(config.tick_time_ms);
        Self {
            tick_ms,
            threshold_ms: tick_ms + u64::from(config.stall_grace_ms),
            last_seen_ms: now_ms,
            logical_ms: now_ms,
            hold_ms: 0,
            credited: VecDeque::new(),
            stall_total_ms: 0,
            stall_count: 0,
        }
    }

    fn observe(&mut self, now_ms: u64) -> u64 {
        self.advance(now_ms, 0)
    }

    /// Moves to `now_ms`; `reported_ms` is a stall the server measured that ended at
    /// `now_ms`.
    fn advance(&mut self, now_ms: u64, reported_ms: u64) -> u64 {
        let prev = self.last_seen_ms;
        // A clock that went backwards is not progress, and must not make us forget
        // how far we already got.
        let end = prev.max(now_ms);
        let gap = end - prev;
        self.last_seen_ms = end;

        let mut progress = gap;
        if gap > self.threshold_ms || reported_ms > 0 {
            // The server promised a call at least every tick, so of a longer silence
            // only the first tick is taken as time the sessions could have used.
            let detected_start = if gap > self.threshold_ms {
                prev + self.tick_ms
            } else {
                end
            };
            // Both windows end now, so their union is one window.
            let start = detected_start.min(end.saturating_sub(reported_ms));
            let inside = end - start.max(prev);
            // What lies before the previous observation was counted as progress
            // already, unless an earlier window cut it out.
            let before = prev.saturating_sub(start) - self.overlap(start, prev);
            if inside + before > 0 {
                // A report of a pause already detected is the same stall.
                let known = self.credited.back().is_some_and(|&(_, e)| e > start);
                if !known {
                    self.stall_count += 1;
                }
                self.stall_total_ms = self.stall_total_ms.saturating_add(inside + before);
                self.record(start, end);
            }
            progress -= inside;
            self.hold_ms = self.hold_ms.saturating_add(before);
        }

        let withheld = progress.min(self.hold_ms);
        self.hold_ms -= withheld;
        self.logical_ms += progress - withheld;
        self.logical_ms
    }

    /// How much of `[from, to)` earlier windows already cut out.
    fn overlap(&self, from: u64, to: u64) -> u64 {
        self.credited
            .iter()
            .map(|&(s, e)| e.min(to).saturating_sub(s.max(from)))
            .sum()
    }

    fn record(&mut self, mut start: u64, mut end: u64) {
        // Windows are recorded in time order and end by the latest observation, so a
        // new one can only overlap the most recent ones.
        while let Some(&(s, e)) = self.credited.back() {
            if e < start {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            self.credited.pop_back();
        }
        self.credited.push_back((start, end));
        if self.credited.len() > Self::MAX_WINDOWS {
            self.credited.pop_front();
        }
    }

    /// How far the caller's clock will be ahead of the logical clock once the pending
    /// hold is consumed, assuming no further stall.
    fn offset_ms(&self) -> u64 {
        (self.last_seen_ms - self.logical_ms).saturating_add(self.hold_ms)
    }
}

/// Times the sessions of one server; see the [module documentation](super).
#[derive(Debug, Clone)]
pub struct SessionTracker {
    config: SessionConfig,
    /// Session id → its slot, which holds both the session's data and its place in
    /// the expiry buckets, so that a touch costs one hash lookup.
    index: FxHashMap<SessionId, usize>,
    /// Bucket keys are on the logical clock.
    slots: Slots<SessionId, Session>,
    /// Bit pattern of the next id to try.
    next_id: u64,
    clock: StallClock,
    expired_total: u64,
}

impl SessionTracker {
    /// An empty tracker. `wall_clock_ms` only seeds the id generator (see
    /// [`initial_session_id`]): ZooKeeper since 3.5.1 seeds from its monotonic clock,
    /// whose origin moves back at every reboot, so wall-clock milliseconds keep ids
    /// from restarting into a range a previous run used.
    ///
    /// Configuration loaders should reject bad settings with
    /// [`SessionConfig::validate`]; here a zero tick time is taken as 1 ms (it divides
    /// every deadline), and a minimum above the maximum negotiates every timeout to the
    /// maximum, as ZooKeeper's clamping order would.
    pub fn new(mut config: SessionConfig, now_ms: u64, wall_clock_ms: u64) -> Self {
        config.tick_time_ms = config.tick_time_ms.max(1);
        Self {
            config,
            index: FxHashMap::default(),
            slots: Slots::new(u64::from(config.tick_time_ms), now_ms),
            next_id: initial_session_id(config.server_id, wall_clock_ms) as u64,
            clock: StallClock::new(&config, now_ms),
            expired_total: 0,
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The timeout granted for a requested one: clamped to
    /// `[min_session_timeout_ms, max_session_timeout_ms]`, nothing else (zero and
    /// negative requests get the minimum).
    pub fn negotiate_timeout(&self, requested_ms: i32) -> u32 {
        let min = i64::from(self.config.min_session_timeout_ms);
        let max = i64::from(self.config.max_session_timeout_ms);
        let mut t = i64::from(requested_ms);
        if t < min {
            t = min;
        }
        if t > max {
            t = max;
        }
        // Within [min, max], both of which came from u32.
        u32::try_from(t).unwrap_or(self.config.max_session_timeout_ms)
    }

    /// The id [`create_session`](Self::create_session) will try next.
    pub fn next_session_id(&self) -> SessionId {
        SessionId(self.next_id as i64)
    }

    /// Allocates a fresh id and starts timing it, before its createSession
    /// transaction commits, as ZooKeeper does.
    pub fn create_session(&mut self, timeout_ms: u32, now_ms: u64) -> SessionId {
        let logical = self.clock.observe(now_ms);
        loop {
            let id = SessionId(self.next_id as i64);
            self.next_id = self.next_id.wrapping_add(1);
            if id.0 == 0 || id.0 == CONTAINER_EPHEMERAL_OWNER {
                continue;
            }
            // Unlike ZooKeeper, skip ids that are still live: a session restored from a
            // run whose generator had got further.
            if let Entry::Vacant(entry) = self.index.entry(id) {
                let slot = *entry.insert(self.slots.insert(id, Session::new(timeout_ms, now_ms)));
                self.slots.schedule(slot, u64::from(timeout_ms), logical);
                return id;
            }
        }
    }

    /// Starts timing a session whose id is already known (replayed createSession,
    /// restored snapshot, session handed over by another server) with a fresh deadline.
    ///
    /// Returns whether it was new. As ZooKeeper's `trackSession`, an existing session
    /// keeps its timeout, owner and closing flag but its deadline is recomputed from
    /// `timeout_ms`.
    pub fn add_session(&mut self, id: SessionId, timeout_ms: u32, now_ms: u64) -> bool {
        let logical = self.clock.observe(now_ms);
        let (slot, added) = match self.index.entry(id) {
            Entry::Occupied(entry) => (*entry.get(), false),
            Entry::Vacant(entry) => (
                *entry.insert(self.slots.insert(id, Session::new(timeout_ms, now_ms))),
                true,
            ),
        };
        self.slots.schedule(slot, u64::from(timeout_ms), logical);
        added
    }

    /// Refreshes the deadline on client activity, with the timeout of the session's
    /// current connection.
    pub fn touch(&mut self, id: SessionId, now_ms: u64) -> Result<(), TouchError> {
        self.touch_inner(id, None, now_ms)
    }

    /// A touch from a connection that negotiated `timeout_ms` (a reconnect, ZooKeeper's
    /// `revalidateSession`): this and later touches use it, while
    /// [`timeout_of`](Self::timeout_of) keeps the one the session was created with.
    pub fn touch_with_timeout(
        &mut self,
        id: SessionId,
        timeout_ms: u32,
        now_ms: u64,
    ) -> Result<(), TouchError> {
        self.touch_inner(id, Some(timeout_ms), now_ms)
    }

    fn touch_inner(
        &mut self,
        id: SessionId,
        timeout_ms: Option<u32>,
        now_ms: u64,
    ) -> Result<(), TouchError> {
        let logical = self.clock.observe(now_ms);
        let slot = *self.index.get(&id).ok_or(TouchError::Unknown)?;
        let session = self.slots.value_mut(slot);
        if session.closing {
            return Err(TouchError::Closing);
        }
        if let Some(timeout_ms) = timeout_ms {
            session.touch_timeout_ms = timeout_ms;
        }
        session.last_contact_ms = now_ms;
        let timeout_ms = u64::from(session.touch_timeout_ms);
        self.slots.schedule(slot, timeout_ms, logical);
        Ok(())
    }

    /// Marks the session as closing (a closeSession is on its way): touches, owner
    /// changes and checks fail from now on. Returns whether it is tracked.
    pub fn set_closing(&mut self, id: SessionId) -> bool {
        match self.get_mut(id) {
            Some(session) => {
                session.closing = true;
                true
            }
            None => false,
        }
    }

    pub fn is_closing(&self, id: SessionId) -> bool {
        self.get(id).is_some_and(|s| s.closing)
    }

    /// Stops timing the session (its closeSession was applied). Returns whether it was
    /// tracked.
    pub fn remove(&mut self, id: SessionId) -> bool {
        match self.index.remove(&id) {
            Some(slot) => {
                self.slots.release(slot);
                true
            }
            None => false,
        }
    }

    /// The timeout the session was created or restored with.
    pub fn timeout_of(&self, id: SessionId) -> Option<u32> {
        self.get(id).map(|s| s.timeout_ms)
    }

    pub fn exists(&self, id: SessionId) -> bool {
        self.index.contains_key(&id)
    }

    /// ZooKeeper's `checkGlobalSession`: unknown or closing → `Expired`; the first
    /// caller claims ownership; a different owner afterwards → `Moved`.
    ///
    /// `owner` is an opaque id of the connection (or forwarding learner) the request
    /// came through.
    pub fn check_session(&mut self, id: SessionId, owner: NonZeroU64) -> Result<(), SessionError> {
        let session = self.get_mut(id).ok_or(SessionError::Expired)?;
        if session.closing {
            return Err(SessionError::Expired);
        }
        match session.owner {
            None => {
                session.owner = Some(owner);
                Ok(())
            }
            Some(current) if current == owner => Ok(()),
            Some(_) => Err(SessionError::Moved),
        }
    }

    /// Hands the session to a new owner (it reconnected elsewhere); unknown or closing
    /// → `Expired`.
    pub fn set_owner(&mut self, id: SessionId, owner: NonZeroU64) -> Result<(), SessionError> {
        match self.get_mut(id) {
            Some(session) if !session.closing => {
                session.owner = Some(owner);
                Ok(())
            }
            _ => Err(SessionError::Expired),
        }
    }

    pub fn owner_of(&self, id: SessionId) -> Option<NonZeroU64> {
        self.get(id).and_then(|s| s.owner)
    }

    /// Every session whose deadline has passed, sorted by id, each now marked closing.
    /// The caller submits a closeSession for each and calls [`remove`](Self::remove)
    /// when it is applied.
    ///
    /// Unlike ZooKeeper, a session that was already closing when its bucket fell due
    /// is not returned again: its closeSession is already on its way.
    pub fn poll_expired(&mut self, now_ms: u64) -> Vec<SessionId> {
        let logical = self.clock.observe(now_ms);
        let due = self.slots.poll_all_due(logical);
        let mut expired = Vec::with_capacity(due.len());
        for slot in due {
            let session = self.slots.value_mut(slot);
            if !session.closing {
                session.closing = true;
                expired.push(self.slots.elem(slot));
            }
        }
        expired.sort_unstable();
        self.expired_total += expired.len() as u64;
        expired
    }

    /// How long the caller may sleep before the next [`poll_expired`](Self::poll_expired):
    /// never more than one tick, because the stall detector expects a call at least
    /// once per tick.
    pub fn wait_time_ms(&mut self, now_ms: u64) -> u64 {
        let logical = self.clock.observe(now_ms);
        let until_due = self.slots.wait_time_ms(logical);
        if until_due == 0 {
            return 0;
        }
        until_due
            .saturating_add(self.clock.hold_ms)
            .min(self.clock.tick_ms)
    }

    /// Tells the tracker the server is alive at `now_ms`; call it at least once per
    /// tick when nothing else reaches the tracker.
    pub fn tick(&mut self, now_ms: u64) {
        self.clock.observe(now_ms);
    }

    /// Reports that the server could not serve sessions for the `stall_ms` before
    /// `now_ms` (say, a disk write blocked the request path while timers still ran).
    /// Any part of it the tracker already detected on its own is not credited twice.
    pub fn add_stall(&mut self, stall_ms: u64, now_ms: u64) {
        self.clock.advance(now_ms, stall_ms);
    }

    /// Total stall time cut out of the logical clock so far.
    pub fn stall_total_ms(&self) -> u64 {
        self.clock.stall_total_ms
    }

    /// Number of stalls detected or reported.
    pub fn stall_count(&self) -> u64 {
        self.clock.stall_count
    }

    /// The logical time deadlines are measured on (the latest `now_ms` seen, minus the
    /// stalls cut out so far).
    pub fn logical_now_ms(&self) -> u64 {
        self.clock.logical_ms
    }

    /// Sessions handed out by [`poll_expired`](Self::poll_expired) so far. Explicit
    /// closes are the caller's to count.
    pub fn expired_total(&self) -> u64 {
        self.expired_total
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn session(&self, id: SessionId) -> Option<SessionInfo> {
        self.index.get(&id).map(|&slot| self.info(slot))
    }

    /// All tracked sessions, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = SessionInfo> + '_ {
        self.index.values().map(|&slot| self.info(slot))
    }

    /// Sessions grouped by expiry bucket in time order, ids sorted, for the `dump`
    /// command. Times are on the caller's clock assuming no further stall; emptied
    /// buckets not yet polled are listed with no sessions, as ZooKeeper does.
    pub fn dump_by_bucket(&self) -> Vec<(u64, Vec<SessionId>)> {
        let offset = self.clock.offset_ms();
        self.slots
            .buckets()
            .map(|(key, ids)| (key.saturating_add(offset), ids))
            .collect()
    }

    fn get(&self, id: SessionId) -> Option<&Session> {
        self.index.get(&id).map(|&slot| self.slots.value(slot))
    }

    fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let slot = *self.index.get(&id)?;
        Some(self.slots.value_mut(slot))
    }

    fn info(&self, slot: usize) -> SessionInfo {
        let s = self.slots.value(slot);
        SessionInfo {
            id: self.slots.elem(slot),
            timeout_ms: s.timeout_ms,
            touch_timeout_ms: s.touch_timeout_ms,
            last_contact_ms: s.last_contact_ms,
            expires_at_ms: self
                .slots
                .expiry(slot)
                .map(|k| k.saturating_add(self.clock.offset_ms())),
            closing: s.closing,
            owner: s.owner.map(NonZeroU64::get),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn owner(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).expect("nonzero")
    }

    #[test]
    fn a_session_slot_stays_small() {
        // One per session, with its place in the expiry buckets.
        let size = std::mem::size_of::<super::super::expiry_queue::Slot<SessionId, Session>>();
        assert!(size <= 56, "the session slot grew to {size} bytes");
    }

    const TICK: u32 = 2000;

    fn tracker(now: u64) -> SessionTracker {
        SessionTracker::new(SessionConfig::new(TICK), now, 1_000)
    }

    #[test]
    fn display_is_zookeeper_hex() {
        assert_eq!(
            SessionId(0x0100_0000_03e8_0000).to_string(),
            "0x100000003e80000"
        );
        assert_eq!(SessionId(1).to_string(), "0x1");
        assert_eq!(SessionId(-1).to_string(), "0xffffffffffffffff");
    }

    /// Spec §2.1 worked examples.
    #[test]
    fn initial_id_layout() {
        let cases: [(u64, u8, u64); 5] = [
            (0, 1, 0x0100_0000_0000_0000),
            (1_000, 1, 0x0100_0000_03e8_0000),
            (123_456_789, 1, 0x0100_075b_cd15_0000),
            (123_456_789, 3, 0x0300_075b_cd15_0000),
            (123_456_789, 255, 0xff00_075b_cd15_0000),
        ];
        for (t, server, expected) in cases {
            assert_eq!(
                initial_session_id(server, t) as u64,
                expected,
                "t={t} server={server}"
            );
        }
        // Only the low 40 bits of the time survive, and never reach the server byte.
        let t = u64::MAX;
        assert_eq!(initial_session_id(1, t) as u64, 0x01ff_ffff_ffff_0000);
        assert_eq!(initial_session_id(0x80, 0), i64::MIN + 1);
    }

    #[test]
    fn ids_increment_carry_server_byte_and_skip_reserved() {
        let mut config = SessionConfig::new(TICK);
        config.server_id = 7;
        let mut t = SessionTracker::new(config, 0, 123_456_789);
        let a = t.create_session(4000, 0);
        let b = t.create_session(4000, 0);
        assert_eq!(a.0 as u64, 0x0700_075b_cd15_0000);
        assert_eq!(b.0, a.0 + 1);
        assert_eq!((b.0 as u64) >> 56, 7);

        // Server id 0 at time 0 would start at the reserved id 0.
        config.server_id = 0;
        let mut t = SessionTracker::new(config, 0, 0);
        assert_eq!(t.create_session(4000, 0), SessionId(1));

        // A live restored id is not handed out again.
        config.server_id = 1;
        let mut t = SessionTracker::new(config, 0, 0);
        t.add_session(SessionId(0x0100_0000_0000_0000), 4000, 0);
        assert_eq!(t.create_session(4000, 0), SessionId(0x0100_0000_0000_0001));
    }

    proptest! {
        #[test]
        fn ids_positive_nonzero_with_server_byte(server in 1u8..=127, wall in any::<u64>()) {
            let mut config = SessionConfig::new(TICK);
            config.server_id = server;
            let mut t = SessionTracker::new(config, 0, wall);
            let mut prev = None;
            for _ in 0..3 {
                let id = t.create_session(4000, 0);
                prop_assert!(id.0 > 0);
                prop_assert_eq!((id.0 as u64 >> 56) as u8, server);
                if let Some(p) = prev {
                    prop_assert_eq!(id.0, p + 1);
                }
                prev = Some(id.0);
            }
        }
    }

    #[test]
    fn negotiation_clamps_like_zookeeper() {
        let t = tracker(0);
        assert_eq!(t.negotiate_timeout(i32::MIN), 4000);
        assert_eq!(t.negotiate_timeout(-5), 4000);
        assert_eq!(t.negotiate_timeout(0), 4000);
        assert_eq!(t.negotiate_timeout(3999), 4000);
        assert_eq!(t.negotiate_timeout(4000), 4000);
        assert_eq!(t.negotiate_timeout(30_001), 30_001);
        assert_eq!(t.negotiate_timeout(40_000), 40_000);
        assert_eq!(t.negotiate_timeout(40_001), 40_000);
        assert_eq!(t.negotiate_timeout(i32::MAX), 40_000);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c = SessionConfig::new(3000);
        assert_eq!(
            (
                c.server_id,
                c.min_session_timeout_ms,
                c.max_session_timeout_ms,
                c.stall_grace_ms
            ),
            (1, 6000, 60_000, 3000)
        );
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            SessionConfig::new(0).validate(),
            Err(ConfigError::ZeroTickTime)
        );
        // Still usable: a zero tick is taken as 1 ms.
        let mut t = SessionTracker::new(SessionConfig::new(0), 0, 0);
        assert_eq!(t.config().tick_time_ms, 1);
        let id = t.create_session(0, 0);
        assert_eq!(t.poll_expired(1), vec![id]);
        let mut bad = c;
        bad.min_session_timeout_ms = 70_000;
        assert_eq!(
            bad.validate(),
            Err(ConfigError::MinAboveMax {
                min: 70_000,
                max: 60_000
            })
        );
        let t = SessionTracker::new(bad, 0, 0);
        assert_eq!(t.negotiate_timeout(0), 60_000);
        assert_eq!(t.negotiate_timeout(65_000), 60_000);
    }

    /// Spec §4.8 through the tracker: I = 2000, T = 6000.
    #[test]
    fn worked_example() {
        let mut t = tracker(10_000);
        let ids: Vec<SessionId> = (0..4).map(|_| t.create_session(6000, 10_000)).collect();
        t.touch(ids[1], 10_001).unwrap();
        t.touch(ids[2], 11_999).unwrap();
        t.touch(ids[3], 12_000).unwrap();
        assert_eq!(t.session(ids[0]).unwrap().expires_at_ms, Some(18_000));
        assert_eq!(t.session(ids[2]).unwrap().expires_at_ms, Some(18_000));
        assert_eq!(t.session(ids[3]).unwrap().expires_at_ms, Some(20_000));
        assert_eq!(t.session(ids[3]).unwrap().last_contact_ms, 12_000);
        assert_eq!(
            t.dump_by_bucket(),
            vec![
                (18_000, vec![ids[0], ids[1], ids[2]]),
                (20_000, vec![ids[3]])
            ]
        );
        // The server calls at least once per tick; the poller first walks through the
        // empty buckets before 18 000.
        t.tick(14_000);
        assert_eq!(t.wait_time_ms(16_500), 0);
        assert!(t.poll_expired(16_500).is_empty());
        assert_eq!(t.wait_time_ms(16_500), 1500);
        assert!(t.poll_expired(17_999).is_empty());
        assert_eq!(t.wait_time_ms(17_999), 1);
        assert_eq!(t.poll_expired(18_000), ids[..3].to_vec());
        assert!(ids[..3].iter().all(|&id| t.is_closing(id) && t.exists(id)));
        assert!(!t.is_closing(ids[3]));
        assert!(t.poll_expired(19_999).is_empty());
        assert_eq!(t.poll_expired(20_000), vec![ids[3]]);
        assert_eq!(t.expired_total(), 4);
        assert_eq!(t.len(), 4);
        assert_eq!(t.session(ids[0]).unwrap().expires_at_ms, None);
        for id in ids {
            assert!(t.remove(id));
        }
        assert!(t.is_empty());
    }

    #[test]
    fn wait_time_never_exceeds_a_tick() {
        let mut t = tracker(0);
        t.create_session(40_000, 0);
        assert_eq!(t.wait_time_ms(0), 2000);
        assert_eq!(t.wait_time_ms(1500), 500);
        assert_eq!(t.wait_time_ms(2000), 0);
        assert!(t.poll_expired(2000).is_empty());
        assert_eq!(t.wait_time_ms(2000), 2000);
    }

    #[test]
    fn closing_refuses_touch_owner_and_check() {
        let mut t = tracker(0);
        let id = t.create_session(6000, 0);
        assert_eq!(t.touch(SessionId(42), 10), Err(TouchError::Unknown));
        assert_eq!(
            t.touch_with_timeout(SessionId(42), 4000, 10),
            Err(TouchError::Unknown)
        );
        t.touch(id, 10).unwrap();
        assert!(t.set_closing(id));
        assert!(!t.set_closing(SessionId(42)));
        assert_eq!(t.touch(id, 20), Err(TouchError::Closing));
        assert_eq!(t.touch_with_timeout(id, 4000, 20), Err(TouchError::Closing));
        assert_eq!(t.set_owner(id, owner(1)), Err(SessionError::Expired));
        assert_eq!(t.check_session(id, owner(1)), Err(SessionError::Expired));
        // Already closing (say a client close in flight): not handed out by expiry.
        for now in (1000..=20_000).step_by(1000) {
            assert!(t.poll_expired(now).is_empty());
        }
        assert_eq!(t.stall_count(), 0);
        assert_eq!(t.expired_total(), 0);
        assert!(t.exists(id));
        assert!(t.remove(id));
        assert!(!t.remove(id));
        assert!(!t.exists(id));
        assert!(!t.is_closing(id));
        assert_eq!(t.touch(id, 30), Err(TouchError::Unknown));
    }

    #[test]
    fn owner_and_moved_checks() {
        let mut t = tracker(0);
        let id = t.create_session(6000, 0);
        assert_eq!(t.owner_of(id), None);
        // The first request claims the session.
        assert_eq!(t.check_session(id, owner(7)), Ok(()));
        assert_eq!(t.owner_of(id), Some(owner(7)));
        assert_eq!(t.check_session(id, owner(7)), Ok(()));
        assert_eq!(t.check_session(id, owner(8)), Err(SessionError::Moved));
        assert_eq!(t.set_owner(id, owner(8)), Ok(()));
        assert_eq!(t.check_session(id, owner(8)), Ok(()));
        assert_eq!(t.check_session(id, owner(7)), Err(SessionError::Moved));
        assert_eq!(
            t.check_session(SessionId(42), owner(7)),
            Err(SessionError::Expired)
        );
        assert_eq!(
            t.set_owner(SessionId(42), owner(7)),
            Err(SessionError::Expired)
        );
        assert_eq!(SessionError::Expired.zk_code(), -112);
        assert_eq!(SessionError::Moved.zk_code(), -118);
    }

    #[test]
    fn reconnect_timeout_drives_touches_but_not_the_stored_timeout() {
        let mut t = tracker(0);
        let id = t.create_session(6000, 0);
        t.touch_with_timeout(id, 20_000, 1000).unwrap();
        assert_eq!(t.timeout_of(id), Some(6000));
        let info = t.session(id).unwrap();
        assert_eq!(
            (info.touch_timeout_ms, info.expires_at_ms),
            (20_000, Some(22_000))
        );
        t.touch(id, 3000).unwrap();
        assert_eq!(t.session(id).unwrap().expires_at_ms, Some(24_000));
    }

    #[test]
    fn add_session_existing_refreshes_deadline_only() {
        let mut t = tracker(0);
        assert!(t.add_session(SessionId(5), 6000, 0));
        t.check_session(SessionId(5), owner(3)).unwrap();
        assert!(!t.add_session(SessionId(5), 10_000, 1000));
        let info = t.session(SessionId(5)).unwrap();
        assert_eq!(info.timeout_ms, 6000);
        assert_eq!(info.owner, Some(3));
        assert_eq!(info.expires_at_ms, Some(12_000));
        assert_eq!(t.sessions().count(), 1);
    }

    /// The brief's scenario: T = 6000, tick 2000; everyone touched at 10 000, the server
    /// runs until 10 100, then is frozen until 10 000 + 10·T.
    #[test]
    fn stall_does_not_expire_anyone() {
        const T: u64 = 6000;
        let touched = 10_000;
        let stall_start = touched + 100;
        let stall_end = touched + 10 * T;
        let mut t = tracker(0);
        let mut now = 0;
        while now < touched {
            t.tick(now);
            now += 1000;
        }
        let ids: Vec<SessionId> = (0..100)
            .map(|_| t.create_session(T as u32, touched))
            .collect();
        t.tick(stall_start);

        t.tick(stall_end);
        assert!(t.poll_expired(stall_end).is_empty());
        assert_eq!(t.stall_count(), 1);
        // Of the 59 900 ms gap only one tick is taken as usable time.
        assert_eq!(
            t.stall_total_ms(),
            stall_end - stall_start - u64::from(TICK)
        );
        assert_eq!(t.logical_now_ms(), stall_start + u64::from(TICK));

        // One client comes back right after the stall; the others stay silent.
        let back = ids[0];
        t.touch(back, stall_end).unwrap();

        let mut expired_at = HashMap::new();
        let mut now = stall_end;
        while expired_at.len() < ids.len() {
            now += t.wait_time_ms(now).max(1);
            for id in t.poll_expired(now) {
                expired_at.insert(id, (now, t.logical_now_ms()));
            }
        }
        let stall_ms = t.stall_total_ms();
        for &id in &ids[1..] {
            let (phys, logical) = expired_at[&id];
            // Silence counted on the logical clock is within ZooKeeper's bounds...
            assert!((touched + T + 1..=touched + T + u64::from(TICK)).contains(&logical));
            assert_eq!(phys, logical + stall_ms);
            // ...and, physically, no later than one timeout after the server resumed.
            assert!(phys > stall_end && phys <= stall_end + T);
        }
        let (phys, _) = expired_at[&back];
        assert!((stall_end + T + 1..=stall_end + T + u64::from(TICK)).contains(&phys));
    }

    #[test]
    fn short_gaps_are_not_stalls() {
        let mut t = tracker(0);
        // Up to tick + grace between calls is tolerated.
        t.tick(4000);
        t.tick(4000);
        t.tick(3000); // a clock that went backwards is no progress
        assert_eq!((t.stall_count(), t.logical_now_ms()), (0, 4000));
        t.tick(8001);
        assert_eq!(
            (t.stall_count(), t.stall_total_ms(), t.logical_now_ms()),
            (1, 2001, 6000)
        );
    }

    #[test]
    fn reported_stalls_are_not_double_counted() {
        let mut t = tracker(0);
        t.tick(1000);
        // The tracker sees a 10 s gap (8 s detected); the server reports 9 s of it.
        t.add_stall(9000, 11_000);
        assert_eq!(
            (t.stall_count(), t.stall_total_ms(), t.logical_now_ms()),
            (1, 9000, 2000)
        );

        // Timers kept running (no gap), but the request path was blocked for 3 s.
        for now in (12_000..=14_000).step_by(1000) {
            t.tick(now);
        }
        assert_eq!(t.logical_now_ms(), 5000);
        assert!(t.poll_expired(14_000).is_empty());
        t.add_stall(3000, 14_000);
        // The logical clock never runs backwards: the 3 s, already counted as progress,
        // are withheld from what follows instead.
        assert_eq!(
            (t.stall_count(), t.stall_total_ms(), t.logical_now_ms()),
            (2, 12_000, 5000)
        );
        let id = t.create_session(6000, 14_000);
        // Bucket 12 000 on the logical clock; 9 s behind, plus the 3 s still withheld.
        assert_eq!(t.session(id).unwrap().expires_at_ms, Some(24_000));
        assert_eq!(t.wait_time_ms(14_000), 2000);
        for now in [15_000, 16_000, 17_000] {
            t.tick(now);
            assert_eq!(t.logical_now_ms(), 5000);
        }
        t.tick(18_000);
        assert_eq!(t.logical_now_ms(), 6000);
        assert_eq!(t.session(id).unwrap().expires_at_ms, Some(24_000));
        t.tick(20_000);
        t.tick(22_000);
        assert!(t.poll_expired(23_999).is_empty());
        assert_eq!(t.poll_expired(24_000), vec![id]);
    }

    #[test]
    fn a_detected_freeze_reported_afterwards_counts_once() {
        let mut t = tracker(0);
        t.tick(1000);
        // Frozen from 1000 to 11 000: detected at resumption, the first tick counted.
        t.tick(11_000);
        assert_eq!(
            (t.stall_count(), t.stall_total_ms(), t.logical_now_ms()),
            (1, 8000, 3000)
        );
        // The server then reports its own measure of the same freeze, 10 s ending now.
        t.add_stall(10_000, 11_050);
        assert_eq!(
            (t.stall_count(), t.stall_total_ms(), t.logical_now_ms()),
            (1, 10_000, 3000)
        );
        // Reporting it again changes nothing.
        t.add_stall(10_000, 11_050);
        assert_eq!((t.stall_count(), t.stall_total_ms()), (1, 10_000));
        // Exactly the 10 s it reported are cut out of the logical clock: 1950 ms are
        // withheld from what follows.
        t.tick(13_000);
        assert_eq!(t.logical_now_ms(), 3000);
        t.tick(14_000);
        assert_eq!(t.logical_now_ms(), 14_000 - 10_000);
    }

    #[derive(Debug, Clone)]
    enum Event {
        Touch(usize),
        Stall(u64),
        Report(u64),
    }

    proptest! {
        /// ZooKeeper's bounds, polling at every tick: a session is handed out no earlier
        /// than `last touch + T + 1` and no later than `last touch + T + tick`.
        #[test]
        fn expiry_within_zookeeper_bounds(
            tick in 20u32..3000,
            start in 0u64..1_000_000,
            timeouts in proptest::collection::vec(0u32..60_000, 1..8),
            touches in proptest::collection::vec((0u64..5000, 0usize..8), 0..200),
        ) {
            let mut config = SessionConfig::new(tick);
            config.min_session_timeout_ms = 0;
            config.max_session_timeout_ms = 60_000;
            let mut t = SessionTracker::new(config, start, 0);
            let tick = u64::from(tick);
            let sessions: Vec<(SessionId, u64)> =
                timeouts.iter().map(|&to| (t.create_session(to, start), u64::from(to))).collect();
            let mut last = vec![start; sessions.len()];
            let mut by_id: HashMap<SessionId, usize> = HashMap::new();
            for (i, (id, _)) in sessions.iter().enumerate() {
                by_id.insert(*id, i);
            }
            let mut next_poll = (start / tick + 1) * tick;
            let mut now = start;

            let check = |t: &mut SessionTracker, poll_at: u64, last: &mut Vec<u64>, readd: bool|
             -> Result<(), TestCaseError> {
                for id in t.poll_expired(poll_at) {
                    let i = by_id[&id];
                    let (_, to) = sessions[i];
                    prop_assert!(poll_at > last[i] + to, "early: {} vs {}+{}", poll_at, last[i], to);
                    prop_assert!(poll_at <= last[i] + to + tick, "late: {} vs {}+{}", poll_at, last[i], to);
                    prop_assert!(t.remove(id));
                    if readd {
                        // It comes back as a fresh session with the same id.
                        prop_assert!(t.add_session(id, to as u32, poll_at));
                        last[i] = poll_at;
                    }
                }
                Ok(())
            };

            for (delay, who) in touches {
                now += delay;
                while next_poll <= now {
                    check(&mut t, next_poll, &mut last, true)?;
                    next_poll += tick;
                }
                let i = who % sessions.len();
                t.touch(sessions[i].0, now).unwrap();
                last[i] = now;
            }
            // Everything still alive must expire once its bound has passed.
            let end = last.iter().zip(&sessions).map(|(l, (_, to))| l + to + tick).max().unwrap_or(now);
            while next_poll <= end {
                check(&mut t, next_poll, &mut last, false)?;
                next_poll += tick;
            }
            prop_assert!(t.is_empty());
        }

        /// With stalls (missed calls and reported pauses), driven by `wait_time_ms` like
        /// the server: never earlier than `T + 1` after the last touch on the caller's
        /// clock, nor on the logical clock; on the logical clock no later than
        /// ZooKeeper's `T + tick`, unless the server overslept meanwhile: a wake-up late
        /// by up to `tick + grace` is ordinary lateness, and a longer one is a stall whose
        /// first tick still counts.
        #[test]
        fn stalls_only_ever_delay_expiry(
            tick in 20u32..3000,
            start in 0u64..1_000_000,
            timeouts in proptest::collection::vec(0u32..60_000, 1..6),
            events in proptest::collection::vec((0u64..3000, prop_oneof![
                6 => (0usize..6).prop_map(Event::Touch),
                1 => (0u64..200_000).prop_map(Event::Stall),
                1 => (0u64..20_000).prop_map(Event::Report),
            ]), 0..150),
        ) {
            let mut config = SessionConfig::new(tick);
            config.min_session_timeout_ms = 0;
            config.max_session_timeout_ms = 60_000;
            let mut t = SessionTracker::new(config, start, 0);
            let tick = u64::from(tick);
            let sessions: Vec<(SessionId, u64)> =
                timeouts.iter().map(|&to| (t.create_session(to, start), u64::from(to))).collect();
            let by_id: HashMap<SessionId, usize> =
                sessions.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
            // Per session at its last touch: caller's time, logical time, freezes so far.
            let mut last = vec![(start, start, 0u64); sessions.len()];
            let mut now = start;
            let mut freezes = 0u64;

            let run_until = |t: &mut SessionTracker, now: &mut u64, target: u64, freezes: u64,
                             last: &mut Vec<(u64, u64, u64)>, readd: bool|
             -> Result<(), TestCaseError> {
                loop {
                    if !readd && t.is_empty() {
                        break;
                    }
                    let w = t.wait_time_ms(*now);
                    prop_assert!(w <= tick);
                    if w > 0 {
                        if *now + w > target {
                            break;
                        }
                        *now += w;
                    }
                    for id in t.poll_expired(*now) {
                        let i = by_id[&id];
                        let (_, to) = sessions[i];
                        let (phys, logical, froze) = last[i];
                        let lnow = t.logical_now_ms();
                        prop_assert!(*now > phys + to, "early on caller's clock");
                        prop_assert!(lnow > logical + to, "early on logical clock");
                        let slack = if freezes > froze { 3 * tick } else { tick };
                        prop_assert!(lnow <= logical + to + slack, "late: {} vs {}+{}", lnow, logical, to);
                        prop_assert!(t.remove(id));
                        if readd {
                            t.add_session(id, to as u32, *now);
                            last[i] = (*now, t.logical_now_ms(), freezes);
                        }
                    }
                }
                Ok(())
            };

            for (delay, event) in events {
                let target = now + delay;
                run_until(&mut t, &mut now, target, freezes, &mut last, true)?;
                now = target;
                match event {
                    Event::Touch(who) => {
                        let i = who % sessions.len();
                        t.touch(sessions[i].0, now).unwrap();
                        last[i] = (now, t.logical_now_ms(), freezes);
                    }
                    // The server is frozen: no call at all until it resumes.
                    Event::Stall(len) => {
                        now += len;
                        freezes += 1;
                    }
                    Event::Report(ms) => t.add_stall(ms.min(now - start), now),
                }
            }
            // Reported stalls still withheld delay the end by at most 20 s each.
            let end = now + 150 * 20_000 + 60_000 + 2 * tick;
            run_until(&mut t, &mut now, end, freezes, &mut last, false)?;
            prop_assert!(t.is_empty());
        }
    }

    /// A million sessions created, touched and expired; must simply be quick.
    #[test]
    fn a_million_sessions() {
        const N: usize = 1_000_000;
        let mut t = tracker(0);
        let ids: Vec<SessionId> = (0..N).map(|_| t.create_session(10_000, 0)).collect();
        for &id in &ids {
            t.touch(id, 1000).unwrap();
        }
        for now in (2000..12_000).step_by(2000) {
            assert!(t.poll_expired(now).is_empty());
        }
        assert!(t.poll_expired(11_999).is_empty());
        let expired = t.poll_expired(12_000);
        assert_eq!(expired.len(), N);
        assert_eq!(expired, ids);
        for id in expired {
            t.remove(id);
        }
        assert!(t.is_empty());
    }
}
