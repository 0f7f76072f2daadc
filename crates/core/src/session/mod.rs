//! Sessions: id allocation, passwords, timeout negotiation and expiry timing, with
//! Apache ZooKeeper's semantics (see `sessions.md` in the shared spec, §§2–6).
//!
//! # What this module owns
//!
//! (`expiry_queue` holds ZooKeeper's bucket structure, `tracker` the session state,
//! the id generator and the logical clock, `password` the `java.util.Random` port.)
//!
//! * Which sessions this server is *timing* (ZooKeeper's `sessionsById` plus its
//!   `ExpiryQueue`): each one's deadline bucket, closing flag and owner.
//! * The session id generator and the password derived from an id.
//! * Timeout negotiation against the configured bounds.
//!
//! # What it must not touch
//!
//! * The durable `(id, timeout)` map that snapshots serialize (ZooKeeper's
//!   `sessionsWithTimeout`, filled when a createSession is *applied*): that belongs to
//!   the database. The tracker is rebuilt from it with [`SessionTracker::add_session`],
//!   which gives every restored session a fresh deadline, as ZooKeeper does.
//! * Ephemeral nodes, watches, auth and connections.
//! * Closing sessions: [`SessionTracker::poll_expired`] only marks due sessions as
//!   closing and hands their ids back. The caller submits a closeSession for each
//!   through the normal pipeline and calls [`SessionTracker::remove`] when it is
//!   applied.
//! * Clocks and randomness: every time is an argument `now_ms` on the caller's
//!   monotonic millisecond clock; the wall clock only seeds the id generator, and is
//!   passed in too.
//!
//! # Expiry
//!
//! A touch at `t` with timeout `T` puts the session in the bucket
//! `(⌊(t + T) / I⌋ + 1)·I`, `I` being the tick time; the bucket falls due when `now`
//! reaches it. So, as in ZooKeeper, a session is handed out no earlier than `T + 1` ms
//! and no later than `T + I` ms after its last touch, provided the caller polls when
//! [`SessionTracker::wait_time_ms`] says.
//!
//! # Stall-aware expiry (beyond ZooKeeper)
//!
//! ZooKeeper expires every session whose deadline passed while the server itself was
//! frozen (SIGSTOP, a paused VM, a stalled event loop), although the silence was the
//! server's fault: clients could not have reached it. Here deadlines live on a
//! *logical* clock from which such stalls are cut out:
//!
//! * The server promises to call the tracker — any method taking `now_ms`, or at least
//!   [`SessionTracker::tick`] — at least once per tick.
//! * The tracker remembers the last `now_ms` it saw. A gap of more than
//!   `tick_time_ms + stall_grace_ms` between two consecutive observations is a stall:
//!   the first tick of it counts as ordinary time, the rest (`gap − tick_time_ms`) is
//!   cut out of the logical clock.
//! * [`SessionTracker::add_stall`] reports a stall the server measured itself (say, the
//!   request path blocked while the timers still ran), as a window ending at `now_ms`.
//!   Only what no earlier detected or reported window covered is cut out, so one
//!   pause seen both ways counts once. The part lying before the previous
//!   observation, already counted as progress, is withheld from the next progress
//!   instead, because the logical clock never runs backwards.
//! * Logical time never advances faster than the caller's clock, so a session is never
//!   expired earlier than ZooKeeper would. Measured on the logical clock, the bounds
//!   above still hold, except that a detected stall can add up to one tick, because
//!   the deadlines falling inside its first tick are processed when the server resumes.
//! * [`SessionTracker::stall_total_ms`] and [`SessionTracker::stall_count`] are for
//!   metrics; times in [`SessionTracker::dump_by_bucket`] and [`SessionInfo`] are
//!   converted back to the caller's clock, assuming no further stall.

pub mod expiry_queue;
pub mod password;
pub mod tracker;

pub use expiry_queue::ExpiryQueue;
pub use password::{check_password, password, PASSWORD_LEN};
pub use tracker::{
    initial_session_id, ConfigError, SessionConfig, SessionError, SessionId, SessionInfo,
    SessionTracker, TouchError,
};
