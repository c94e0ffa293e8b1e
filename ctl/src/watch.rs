//! `watch IFACE`: live counters, deltas and rates since the previous line.

use crate::error::Result;
use crate::ports::{self, Ctx};
use emtun::agent::{Counters, State, COUNTER_NAMES};
use emtun::duration::format_us;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One reading of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Time since the watch started.
    pub at: Duration,
    pub state: State,
    pub counters: Counters,
}

/// The change between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub dt: Duration,
    /// Per-counter increase; for a counter that went down (stats were reset)
    /// the increase is counted from zero.
    pub d: [u64; COUNTER_NAMES.len()],
    /// Some counter went backwards: `stats --reset` ran in between.
    pub reset: bool,
}

impl Delta {
    /// Events per second for counter `i`.
    pub fn rate(&self, i: usize) -> f64 {
        let s = self.dt.as_secs_f64();
        if s <= 0.0 {
            0.0
        } else {
            self.d[i] as f64 / s
        }
    }
}

pub fn delta(prev: &Sample, cur: &Sample) -> Delta {
    let mut d = [0u64; COUNTER_NAMES.len()];
    let mut reset = false;
    for (i, slot) in d.iter_mut().enumerate() {
        if i == Counters::MAX_GAP_US || i == Counters::MAX_WAIT_US {
            continue; // maxima, shown as they are
        }
        let (p, c) = (prev.counters.0[i], cur.counters.0[i]);
        *slot = if c >= p {
            c - p
        } else {
            reset = true;
            c
        };
    }
    Delta {
        dt: cur.at.saturating_sub(prev.at),
        d,
        reset,
    }
}

/// Compact rate: 950, 12.3k, 1.20M.
pub fn format_rate(r: f64) -> String {
    if r < 1_000.0 {
        format!("{r:.0}")
    } else if r < 1_000_000.0 {
        format!("{:.1}k", r / 1_000.0)
    } else {
        format!("{:.2}M", r / 1_000_000.0)
    }
}

pub const HEADER: [&str; 14] = [
    "TIME", "STATE", "ENTER", "EXIT", "REV_WD", "REV_ADM", "HOST_IN", "IN/s", "HOST_OUT", "OUT/s",
    "DROP", "SLEEPS", "MAX_GAP", "MAX_WAIT",
];

/// The first row: absolute totals.
pub fn total_row(s: &Sample) -> Vec<String> {
    let c = &s.counters.0;
    vec![
        "total".into(),
        s.state.to_string(),
        c[0].to_string(),
        c[1].to_string(),
        c[2].to_string(),
        c[3].to_string(),
        c[4].to_string(),
        "-".into(),
        c[5].to_string(),
        "-".into(),
        c[6].to_string(),
        c[Counters::SLEEPS].to_string(),
        format_us(c[Counters::MAX_GAP_US]),
        format_us(c[Counters::MAX_WAIT_US]),
    ]
}

/// A delta row: `+N` since the previous row, with packet rates.
pub fn delta_row(cur: &Sample, d: &Delta) -> Vec<String> {
    let plus = |i: usize| format!("+{}", d.d[i]);
    let mut time = format!("{:.1}s", cur.at.as_secs_f64());
    if d.reset {
        time.push_str(" (reset)");
    }
    vec![
        time,
        cur.state.to_string(),
        plus(Counters::ENTER),
        plus(Counters::EXIT),
        plus(Counters::REVOKE_WATCHDOG),
        plus(Counters::REVOKE_ADMIN),
        plus(Counters::HOST_IN),
        format_rate(d.rate(Counters::HOST_IN)),
        plus(Counters::HOST_OUT),
        format_rate(d.rate(Counters::HOST_OUT)),
        plus(Counters::HOST_DROP),
        plus(Counters::SLEEPS),
        format_us(cur.counters.0[Counters::MAX_GAP_US]),
        format_us(cur.counters.0[Counters::MAX_WAIT_US]),
    ]
}

/// Fixed-width line so that rows stay aligned while streaming.
fn fixed_line(cells: &[String]) -> String {
    const W: [usize; 14] = [14, 9, 6, 6, 6, 7, 11, 8, 11, 8, 8, 8, 8, 8];
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        s.push_str(&format!("{c:<w$} ", w = W[i]));
    }
    s.trim_end().to_string()
}

/// Waits for the next tick; `None` once the user asked to stop.
pub trait Ticker {
    /// Wait `interval` after the previous tick; return the time since start.
    fn wait(&mut self, interval: Duration) -> Option<Duration>;
    /// Time since start.
    fn now(&self) -> Duration;
}

/// Real ticker: sleeps in short slices so that Ctrl-C (the stop flag) is seen quickly.
pub struct SleepTicker {
    start: Instant,
    next: Duration,
    stop: &'static AtomicBool,
}

impl SleepTicker {
    pub fn new(stop: &'static AtomicBool) -> Self {
        SleepTicker {
            start: Instant::now(),
            next: Duration::ZERO,
            stop,
        }
    }
}

impl Ticker for SleepTicker {
    fn wait(&mut self, interval: Duration) -> Option<Duration> {
        self.next += interval;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            let now = self.start.elapsed();
            if now >= self.next {
                // Fell behind (suspended?): do not try to catch up.
                if now > self.next + interval {
                    self.next = now;
                }
                return Some(now);
            }
            std::thread::sleep((self.next - now).min(Duration::from_millis(50)));
        }
    }
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

fn sample(ctx: &Ctx, port: &ports::Port, at: Duration) -> Result<Sample> {
    Ok(Sample {
        at,
        state: ports::read_state(ctx, port)?,
        counters: ports::read_counters(ctx, port)?,
    })
}

/// `watch IFACE [--interval DUR] [--count N]`: a totals line, then one delta
/// line per interval until `count` lines or the ticker stops. Returns the
/// number of delta lines printed.
pub fn watch(
    ctx: &Ctx,
    iface: &str,
    interval: Duration,
    count: Option<u64>,
    ticker: &mut dyn Ticker,
    out: &mut dyn Write,
) -> Result<u64> {
    let port = ports::resolve(ctx, iface)?;
    let first = sample(ctx, &port, ticker.now())?;
    let owner = ports::read_owner(ctx, &port)?
        .map(|o| format!(" by {o}"))
        .unwrap_or_default();
    writeln!(
        out,
        "{iface}: {}{owner}; every {}, Ctrl-C to stop",
        first.state,
        emtun::duration::format_duration(interval)
    )?;
    let hdr: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    writeln!(out, "{}", fixed_line(&hdr))?;
    writeln!(out, "{}", fixed_line(&total_row(&first)))?;
    out.flush()?;
    let mut prev = first;
    let mut lines = 0u64;
    while match count {
        Some(c) => lines < c,
        None => true,
    } {
        let Some(at) = ticker.wait(interval) else {
            break;
        };
        let cur = sample(ctx, &port, at)?;
        let d = delta(&prev, &cur);
        writeln!(out, "{}", fixed_line(&delta_row(&cur, &d)))?;
        out.flush()?;
        lines += 1;
        prev = cur;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, c: [u64; 8]) -> Sample {
        let mut all = [0; COUNTER_NAMES.len()];
        all[..8].copy_from_slice(&c);
        Sample {
            at: Duration::from_millis(at_ms),
            state: State::Tunneled,
            counters: Counters(all),
        }
    }

    #[test]
    fn deltas_and_rates() {
        let a = s(0, [1, 0, 0, 0, 1_000, 500, 0, 100]);
        let b = s(500, [1, 0, 0, 1, 1_600, 700, 3, 250]);
        let d = delta(&a, &b);
        assert_eq!(d.dt, Duration::from_millis(500));
        assert!(!d.reset);
        assert_eq!(d.d, [0, 0, 0, 1, 600, 200, 3, 0, 0, 0, 0]);
        assert_eq!(d.rate(Counters::HOST_IN), 1_200.0);
        assert_eq!(d.rate(Counters::HOST_OUT), 400.0);
        let row = delta_row(&b, &d);
        assert_eq!(row[0], "0.5s");
        assert_eq!(row[3], "+0");
        assert_eq!(row[5], "+1");
        assert_eq!(row[6], "+600");
        assert_eq!(row[7], "1.2k");
        assert_eq!(row[9], "400");
        assert_eq!(row[10], "+3");
        assert_eq!(row[11], "+0");
        assert_eq!(row[12], "250us");
    }

    #[test]
    fn reset_between_samples() {
        let a = s(0, [5, 4, 0, 0, 9_000, 9_000, 10, 100]);
        let b = s(1_000, [0, 0, 0, 0, 40, 30, 0, 0]);
        let d = delta(&a, &b);
        assert!(d.reset);
        assert_eq!(d.d[Counters::HOST_IN], 40);
        assert_eq!(d.d[Counters::HOST_OUT], 30);
        assert_eq!(d.d[Counters::ENTER], 0);
        assert!(delta_row(&b, &d)[0].ends_with("(reset)"));
    }

    #[test]
    fn zero_interval_has_zero_rate() {
        let a = s(10, [0, 0, 0, 0, 0, 0, 0, 0]);
        let b = s(10, [0, 0, 0, 0, 7, 0, 0, 0]);
        assert_eq!(delta(&a, &b).rate(Counters::HOST_IN), 0.0);
    }

    #[test]
    fn rates_format() {
        assert_eq!(format_rate(0.0), "0");
        assert_eq!(format_rate(999.4), "999");
        assert_eq!(format_rate(12_345.0), "12.3k");
        assert_eq!(format_rate(1_200_000.0), "1.20M");
    }

    #[test]
    fn total_row_is_absolute() {
        let r = total_row(&s(0, [1, 2, 3, 4, 5, 6, 7, 10_000]));
        assert_eq!(r[0], "total");
        assert_eq!(&r[2..7], &["1", "2", "3", "4", "5"]);
        assert_eq!(r[12], "10ms");
        let t = crate::format::table(&HEADER, &[r]);
        assert!(t.starts_with("TIME"));
    }
}
