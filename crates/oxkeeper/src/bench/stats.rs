//! Latency histograms, the server's CPU time and memory from /proc, run phases, progress.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Microsecond latencies from 1 µs to 100 s at 3 significant digits (larger values saturate).
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Hist {
    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us);
    }

    pub fn add(&mut self, other: &Hist) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn quantile(&self, q: f64) -> u64 {
        self.0.value_at_quantile(q)
    }

    /// `{count, min, mean, p50, p90, p99, p999, max}` in microseconds (zeros when empty).
    pub fn summary(&self) -> Value {
        let h = &self.0;
        if h.is_empty() {
            return json!({"count": 0, "min": 0, "mean": 0.0, "p50": 0, "p90": 0, "p99": 0,
                "p999": 0, "max": 0});
        }
        json!({
            "count": h.len(),
            "min": h.min(),
            "mean": round2(h.mean()),
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        })
    }

    /// The same figures in milliseconds (for delays of seconds).
    pub fn summary_ms(&self) -> Value {
        let h = &self.0;
        let ms = |us: u64| round2(us as f64 / 1000.0);
        if h.is_empty() {
            return json!({"count": 0, "min": 0.0, "mean": 0.0, "p50": 0.0, "p90": 0.0,
                "p99": 0.0, "p999": 0.0, "max": 0.0});
        }
        json!({
            "count": h.len(),
            "min": ms(h.min()),
            "mean": round2(h.mean() / 1000.0),
            "p50": ms(h.value_at_quantile(0.5)),
            "p90": ms(h.value_at_quantile(0.9)),
            "p99": ms(h.value_at_quantile(0.99)),
            "p999": ms(h.value_at_quantile(0.999)),
            "max": ms(h.max()),
        })
    }
}

pub fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

pub fn round3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// The server process, when `--server-pid` names it: CPU time and resident memory.
pub struct ServerProc {
    pid: u32,
}

impl ServerProc {
    pub fn new(pid: u32) -> anyhow::Result<ServerProc> {
        let p = ServerProc { pid };
        if p.cpu().is_none() {
            anyhow::bail!("no process {pid} to measure (--server-pid)");
        }
        Ok(p)
    }

    /// User plus system CPU time of every thread, from /proc/PID/stat.
    pub fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let hz = rustix::param::clock_ticks_per_second().max(1);
        Some(Duration::from_micros((utime + stime) * 1_000_000 / hz))
    }

    /// VmRSS in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// CPU used by the server between two readings, if both exist.
pub fn cpu_between(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    Some(b?.saturating_sub(a?))
}

/// Microseconds of server CPU per operation, rounded.
pub fn per_op_us(cpu: Option<Duration>, ops: u64) -> Value {
    match cpu {
        Some(c) if ops > 0 => json!(round2(c.as_secs_f64() * 1e6 / ops as f64)),
        _ => Value::Null,
    }
}

pub fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round3(d.as_secs_f64())))
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// The phases of a timed run: warm-up (ops not recorded), measurement (until the duration
/// passes or `--ops` tickets run out), stop (no new ops; in-flight ones drain).
pub struct Phase {
    state: AtomicU8,
    tickets: Option<AtomicI64>,
    measure_start: Mutex<Option<Instant>>,
    /// Measured ops completed so far (for the progress bar).
    pub done: AtomicU64,
}

impl Phase {
    pub fn new(ops: Option<u64>, warmup: bool) -> Arc<Phase> {
        let p = Phase {
            state: AtomicU8::new(if warmup { WARMUP } else { MEASURE }),
            tickets: ops.map(|n| AtomicI64::new(n.min(i64::MAX as u64) as i64)),
            measure_start: Mutex::new((!warmup).then(Instant::now)),
            done: AtomicU64::new(0),
        };
        Arc::new(p)
    }

    /// Starts (or restarts) the measurement clock; ops started from now on are measured.
    pub fn start_measuring(&self) {
        *self.measure_start.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.state.store(MEASURE, Ordering::Release);
    }

    pub fn stop(&self) {
        self.state.store(STOP, Ordering::Release);
    }

    /// The warm-up: ops run unmeasured for `warmup_s`, then measurement starts.
    pub async fn warm_up(&self, warmup_s: f64) {
        if warmup_s > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(warmup_s)).await;
            self.start_measuring();
        }
    }

    /// The measured window: `duration_s`, unless `--ops` tickets bound the run instead (the
    /// drivers then stop by themselves when the tickets run out).
    pub async fn measure_for(&self, duration_s: f64) {
        if !self.has_ticket_limit() {
            tokio::time::sleep(Duration::from_secs_f64(duration_s)).await;
            self.stop();
        }
    }

    pub fn measure_start(&self) -> Option<Instant> {
        *self.measure_start.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May one more op start? `Some(true)`: yes, measured; `Some(false)`: yes, warm-up;
    /// `None`: no.
    pub fn next(&self) -> Option<bool> {
        match self.state.load(Ordering::Acquire) {
            WARMUP => Some(false),
            MEASURE => match &self.tickets {
                None => Some(true),
                Some(t) => {
                    if t.fetch_sub(1, Ordering::Relaxed) > 0 {
                        Some(true)
                    } else {
                        None
                    }
                }
            },
            _ => None,
        }
    }

    pub fn has_ticket_limit(&self) -> bool {
        self.tickets.is_some()
    }
}

/// A progress bar on stderr, only when stderr is a terminal. It follows a counter.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(
        label: &str,
        len: Option<u64>,
        count: impl Fn() -> u64 + Send + 'static,
    ) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                task: None,
            };
        }
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n).with_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} {spinner} [{elapsed_precise}] {pos} ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(label.to_owned());
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                b.set_position(count());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress {
            bar: Some(bar),
            task: Some(task),
        }
    }

    pub fn finish(self) {
        if let Some(t) = self.task {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// A cheap per-task pseudo-random sequence (xorshift64*): enough to pick nodes and ops.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
