//! How a tunnel waits when a round found no work.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::duration;

/// How the loop waits between rounds that found no work.
///
/// Written `busy` or `interval:D` (`interval:1ms`, `interval:250us`; a bare
/// `interval` is 1 ms) on every command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Never sleep: lowest latency, one core at 100 %.
    Busy,
    /// Sleep in `poll(2)` up to this long. It must stay well below the
    /// kernel watchdog period (at most half of it).
    Interval(Duration),
}

impl PollMode {
    /// The default interval: 1 ms.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1);

    /// `busy-polling` or `polling every 1ms`.
    pub fn describe(self) -> String {
        match self {
            PollMode::Busy => "busy-polling".into(),
            PollMode::Interval(d) => format!("polling every {}", duration::format_duration(d)),
        }
    }

    /// The longest this mode sleeps without a sync, if it sleeps.
    pub fn max_sleep(self) -> Option<Duration> {
        match self {
            PollMode::Busy => None,
            PollMode::Interval(d) => Some(d),
        }
    }
}

impl Default for PollMode {
    fn default() -> Self {
        PollMode::Interval(Self::DEFAULT_INTERVAL)
    }
}

impl fmt::Display for PollMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollMode::Busy => f.write_str("busy"),
            PollMode::Interval(d) => write!(f, "interval:{}", duration::format_duration(*d)),
        }
    }
}

impl FromStr for PollMode {
    type Err = String;

    /// Parses `busy`, `interval` or `interval:D`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "busy" => Ok(PollMode::Busy),
            "interval" => Ok(PollMode::default()),
            t => match t.strip_prefix("interval:") {
                Some(d) => duration::parse_interval(d).map(PollMode::Interval),
                None => Err(format!(
                    "poll mode `{t}` is not one of busy, interval, interval:DURATION (e.g. interval:1ms)"
                )),
            },
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
            .contains("busy, interval"));
    }
}
