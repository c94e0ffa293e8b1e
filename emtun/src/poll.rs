//! How a tunnel waits when a round found no work.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::duration;

/// How the loop waits between rounds that found no work.
///
/// Written `adaptive`, `adaptive:SPIN`, `busy`, `interval` or `interval:D`
/// (`interval:1ms`, `adaptive:100us`) on every command line.
///
/// Sleeping in `poll(2)` costs no watchdog: netmap_tun(4) unmasks the RX
/// interrupts while the owner sleeps there (the first frame wakes it) and
/// its watchdog revokes only an owner that left frames waiting for a whole
/// period, never one asleep on an idle link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Busy-poll while frames flow; after this long without any, block in
    /// `poll(2)` (at most [`PollMode::ADAPTIVE_SLEEP`]) until a frame, a
    /// kernel frame for the tunnel or a signal wakes the loop. Microsecond
    /// latency under load, no CPU on an idle link. The default.
    Adaptive(Duration),
    /// Never sleep: lowest latency, one core at 100 % even when idle.
    Busy,
    /// Block in `poll(2)` up to this long after every idle round, without
    /// a spin first.
    Interval(Duration),
}

impl PollMode {
    /// The default interval of `interval`: 1 ms.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1);
    /// The default idle spin of `adaptive`: 50 µs.
    pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);
    /// How long an adaptive loop blocks in one `poll(2)`: a frame wakes it
    /// sooner; this only bounds how stale a stop request can get.
    pub const ADAPTIVE_SLEEP: Duration = Duration::from_millis(100);

    /// `adaptive (busy for 50us idle, then poll(2))`, `busy-polling` or
    /// `polling every 1ms`.
    pub fn describe(self) -> String {
        match self {
            PollMode::Adaptive(d) => format!(
                "adaptive (busy-polling, poll(2) after {} idle)",
                duration::format_duration(d)
            ),
            PollMode::Busy => "busy-polling".into(),
            PollMode::Interval(d) => format!("polling every {}", duration::format_duration(d)),
        }
    }

    /// The longest this mode blocks in one `poll(2)`, if it blocks.
    pub fn max_sleep(self) -> Option<Duration> {
        match self {
            PollMode::Adaptive(_) => Some(Self::ADAPTIVE_SLEEP),
            PollMode::Busy => None,
            PollMode::Interval(d) => Some(d),
        }
    }
}

impl Default for PollMode {
    fn default() -> Self {
        PollMode::Adaptive(Self::DEFAULT_SPIN)
    }
}

impl fmt::Display for PollMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollMode::Adaptive(d) => write!(f, "adaptive:{}", duration::format_duration(*d)),
            PollMode::Busy => f.write_str("busy"),
            PollMode::Interval(d) => write!(f, "interval:{}", duration::format_duration(*d)),
        }
    }
}

impl FromStr for PollMode {
    type Err = String;

    /// Parses `adaptive`, `adaptive:SPIN`, `busy`, `interval` or
    /// `interval:D`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "adaptive" => Ok(PollMode::Adaptive(Self::DEFAULT_SPIN)),
            "busy" => Ok(PollMode::Busy),
            "interval" => Ok(PollMode::Interval(Self::DEFAULT_INTERVAL)),
            t => {
                if let Some(d) = t.strip_prefix("interval:") {
                    duration::parse_interval(d).map(PollMode::Interval)
                } else if let Some(d) = t.strip_prefix("adaptive:") {
                    duration::parse_interval(d).map(PollMode::Adaptive)
                } else {
                    Err(format!(
                        "poll mode `{t}` is not one of adaptive, adaptive:SPIN, busy, interval, \
                         interval:DURATION (e.g. interval:1ms)"
                    ))
                }
            }
        }
    }
}

/// What an idle loop does next, in a given [`PollMode`]: the one place that
/// turns "this round found nothing" into a spin or a `poll(2)`.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    mode: PollMode,
    idle_since: Option<Instant>,
}

/// The [`Pacer`]'s verdict after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Run the next round now.
    Go,
    /// Block in `poll(2)` for at most this long, then run a round.
    Sleep(Duration),
}

impl Pacer {
    /// A pacer for `mode`.
    pub fn new(mode: PollMode) -> Self {
        Pacer {
            mode,
            idle_since: None,
        }
    }

    /// The mode it paces.
    pub fn mode(&self) -> PollMode {
        self.mode
    }

    /// After a round that moved `found` frames, at time `now`.
    pub fn after_round(&mut self, found: usize, now: Instant) -> Pace {
        if found != 0 {
            self.worked();
            return Pace::Go;
        }
        self.idle(now)
    }

    /// A round moved frames: the idle clock stops.
    pub fn worked(&mut self) {
        self.idle_since = None;
    }

    /// A round at `now` found nothing.
    pub fn idle(&mut self, now: Instant) -> Pace {
        match self.mode {
            PollMode::Busy => Pace::Go,
            PollMode::Interval(d) => Pace::Sleep(d),
            PollMode::Adaptive(spin) => {
                let since = *self.idle_since.get_or_insert(now);
                if now.saturating_duration_since(since) < spin {
                    Pace::Go
                } else {
                    self.idle_since = None;
                    Pace::Sleep(PollMode::ADAPTIVE_SLEEP)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_same_notation() {
        for (text, mode) in [
            ("busy", PollMode::Busy),
            ("interval", PollMode::Interval(Duration::from_millis(1))),
            (
                "interval:250us",
                PollMode::Interval(Duration::from_micros(250)),
            ),
            ("interval:2ms", PollMode::Interval(Duration::from_millis(2))),
        ] {
            assert_eq!(text.parse::<PollMode>(), Ok(mode), "{text}");
        }
        assert_eq!(
            PollMode::Interval(Duration::from_micros(1500)).to_string(),
            "interval:1.5ms"
        );
        assert_eq!(
            "interval:1ms".parse::<PollMode>().unwrap().to_string(),
            "interval:1ms"
        );
        assert!("interval:0"
            .parse::<PollMode>()
            .unwrap_err()
            .contains("positive"));
        assert!("spin"
            .parse::<PollMode>()
            .unwrap_err()
            .contains("adaptive, adaptive:SPIN, busy, interval"));
        assert_eq!(
            "adaptive".parse::<PollMode>(),
            Ok(PollMode::Adaptive(Duration::from_micros(50)))
        );
        assert_eq!(
            "adaptive:100us".parse::<PollMode>(),
            Ok(PollMode::Adaptive(Duration::from_micros(100)))
        );
        assert_eq!(PollMode::default().to_string(), "adaptive:50us");
        assert!("adaptive:0".parse::<PollMode>().is_err());
    }

    #[test]
    fn adaptive_spins_for_its_budget_then_sleeps() {
        let t0 = Instant::now();
        let us = |n| t0 + Duration::from_micros(n);
        let mut p = Pacer::new(PollMode::Adaptive(Duration::from_micros(50)));
        assert_eq!(p.after_round(0, us(0)), Pace::Go);
        assert_eq!(p.after_round(0, us(49)), Pace::Go);
        assert_eq!(
            p.after_round(0, us(50)),
            Pace::Sleep(PollMode::ADAPTIVE_SLEEP)
        );
        // after the sleep the budget starts again
        assert_eq!(p.after_round(0, us(200)), Pace::Go);
        // work resets the idle clock
        assert_eq!(p.after_round(3, us(240)), Pace::Go);
        assert_eq!(p.after_round(0, us(260)), Pace::Go);
        assert_eq!(p.after_round(0, us(300)), Pace::Go);
        assert_eq!(
            p.after_round(0, us(310)),
            Pace::Sleep(PollMode::ADAPTIVE_SLEEP)
        );
    }

    #[test]
    fn busy_never_sleeps_and_interval_always_does() {
        let now = Instant::now();
        let mut b = Pacer::new(PollMode::Busy);
        let mut i = Pacer::new(PollMode::Interval(Duration::from_millis(2)));
        for _ in 0..3 {
            assert_eq!(b.after_round(0, now), Pace::Go);
            assert_eq!(i.after_round(0, now), Pace::Sleep(Duration::from_millis(2)));
            assert_eq!(i.after_round(1, now), Pace::Go);
        }
    }
}
