//! The deterministic heart of oxkeeper.
//!
//! Owns the data tree, the watch tables, the session tracker and the request pipeline
//! (prep → txn → apply). Everything here is *sans-IO*: time arrives as an argument
//! (`now_ms` on a monotonic clock), nothing reads a clock, draws random numbers, spawns,
//! or touches sockets and files. The tokio shell in `oxkeeper-server` feeds events in and
//! executes the commands that come out.

pub mod pipeline;
pub mod session;
pub mod tree;
pub mod watch;
