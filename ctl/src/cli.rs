//! Command line (clap). Value parsers reject bad durations and ethertypes as
//! usage errors (exit 2).

use clap::{Parser, Subcommand};
use emtun::duration::{self, Watchdog};
use emtun::{EtherType, PollMode};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "emtunctl",
    version,
    about = "Control emtun tunneled mode on em(4)/igb(4) ports",
    long_about = "Control emtun tunneled mode on em(4)/igb(4) ports.\n\n\
        Needs FreeBSD with the emtun kernel patch (dev.em.N.tunnel sysctls). \
        Writes (arm, disarm, revoke, watchdog, stats --reset) and run need root.\n\
        Exit status: 0 ok, 1 runtime error, 2 usage error.",
    after_help = "See emtunctl(8)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Show mode, owner, watchdog, link, offloads and counters of one or every em/igb port
    Status {
        /// Interface (default: every em/igb interface)
        iface: Option<String>,
        /// Machine-readable output (stable schema, see emtunctl(8))
        #[arg(long)]
        json: bool,
    },
    /// Permit tunneled mode on IFACE, turning off the offloads that break it
    Arm {
        /// Interface (emN or igbN)
        iface: String,
        /// Watchdog period: `10ms`, `1.5ms`, `1s` (1ms..10s; a bare number is us) or `off`
        #[arg(long, value_name = "DUR", value_parser = duration::parse_watchdog)]
        watchdog: Option<Watchdog>,
        /// Refuse to arm instead of turning off txcsum/txcsum6/tso4/tso6/vlanhwtag
        #[arg(long)]
        no_offload_fix: bool,
    },
    /// Return IFACE to default mode (revokes a live tunnel first)
    Disarm {
        /// Interface (emN or igbN)
        iface: String,
    },
    /// Revoke the tunnel on IFACE now; the port goes back to default mode and stays armed
    Revoke {
        /// Interface (emN or igbN)
        iface: String,
    },
    /// Set the watchdog period of IFACE (`10ms`, `1s`, `off`; 1ms..10s; a bare number is us)
    Watchdog {
        /// Interface (emN or igbN)
        iface: String,
        /// The period: 1ms to 10s, `off` or 0 to disable; a bare number is microseconds
        #[arg(value_name = "DURATION", value_parser = duration::parse_watchdog)]
        period: Watchdog,
    },
    /// Print the kernel counters of IFACE
    Stats {
        /// Interface (emN or igbN)
        iface: String,
        /// Zero the counters after printing them
        #[arg(long)]
        reset: bool,
        /// Same as --format json
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format: text, json (schema 1) or prometheus (text exposition, see emtun(8))
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<StatsFormat>,
    },
    /// Print the counters of IFACE with deltas and rates, until Ctrl-C
    Watch {
        /// Interface (emN or igbN)
        iface: String,
        /// Time between lines
        #[arg(long, value_name = "DUR", default_value = "1s", value_parser = duration::parse_interval)]
        interval: Duration,
        /// Stop after N lines (at least 1)
        #[arg(long, value_name = "N", value_parser = parse_count)]
        count: Option<u64>,
    },
    /// Run the netmap-user tunnel on IFACE in the foreground until Ctrl-C
    Run {
        /// Interface (emN or igbN)
        iface: String,
        /// EtherTypes to claim (0x88b5 or decimal; comma-separated, repeatable; never a VLAN tag); none = pure forwarder
        #[arg(long, value_name = "TYPE,...", value_delimiter = ',')]
        claim: Vec<EtherType>,
        /// How to wait when idle: adaptive (busy while frames flow, poll(2) after 50us idle; the default), adaptive:SPIN, busy (one core at 100%), interval or interval:DUR (poll(2) up to DUR after every idle round)
        #[arg(long, value_name = "MODE", conflicts_with_all = ["busy", "interval"])]
        poll: Option<PollMode>,
        /// Same as --poll busy
        #[arg(long, conflicts_with = "interval")]
        busy: bool,
        /// Same as --poll interval:DUR
        #[arg(long, value_name = "DUR", value_parser = duration::parse_interval)]
        interval: Option<Duration>,
        /// After a revoke (watchdog or administrator), release the port and open it again, with backoff (100ms doubling to 5s)
        #[arg(long)]
        reattach: bool,
        /// With --reattach: failed opens in a row before giving up (0 = never give up)
        #[arg(long, value_name = "N", default_value_t = 10, requires = "reattach")]
        max_retries: u32,
    },
}

/// How `stats` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// A table for people.
    Text,
    /// JSON, schema 1.
    Json,
    /// The Prometheus text exposition format.
    Prometheus,
}

/// The poll mode of `run`: `--poll`, or its older spellings.
pub fn poll_mode(poll: Option<PollMode>, busy: bool, interval: Option<Duration>) -> PollMode {
    match (poll, busy, interval) {
        (Some(p), _, _) => p,
        (None, true, _) => PollMode::Busy,
        (None, false, Some(d)) => PollMode::Interval(d),
        (None, false, None) => PollMode::default(),
    }
}

/// A line count: a whole number, at least 1.
fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("emtunctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_every_command() {
        assert!(matches!(
            parse(&["status"]).unwrap().cmd,
            Cmd::Status {
                iface: None,
                json: false
            }
        ));
        assert!(matches!(
            parse(&["status", "em0", "--json"]).unwrap().cmd,
            Cmd::Status { iface: Some(ref i), json: true } if i == "em0"
        ));
        match parse(&["arm", "em0", "--watchdog", "10ms", "--no-offload-fix"])
            .unwrap()
            .cmd
        {
            Cmd::Arm {
                iface,
                watchdog,
                no_offload_fix,
            } => {
                assert_eq!(iface, "em0");
                assert_eq!(watchdog, Some(Watchdog { us: 10_000 }));
                assert!(no_offload_fix);
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            parse(&["disarm", "em0"]).unwrap().cmd,
            Cmd::Disarm { .. }
        ));
        assert!(matches!(
            parse(&["revoke", "em0"]).unwrap().cmd,
            Cmd::Revoke { .. }
        ));
        assert!(matches!(
            parse(&["watchdog", "em0", "off"]).unwrap().cmd,
            Cmd::Watchdog {
                period: Watchdog { us: 0 },
                ..
            }
        ));
        assert!(matches!(
            parse(&["stats", "em0", "--reset", "--json"]).unwrap().cmd,
            Cmd::Stats {
                reset: true,
                json: true,
                ..
            }
        ));
        match parse(&["watch", "em0"]).unwrap().cmd {
            Cmd::Watch {
                interval, count, ..
            } => {
                assert_eq!(interval, Duration::from_secs(1));
                assert_eq!(count, None);
            }
            c => panic!("{c:?}"),
        }
        match parse(&["watch", "em0", "--interval", "250ms", "--count", "3"])
            .unwrap()
            .cmd
        {
            Cmd::Watch {
                interval, count, ..
            } => {
                assert_eq!(interval, Duration::from_millis(250));
                assert_eq!(count, Some(3));
            }
            c => panic!("{c:?}"),
        }
        match parse(&[
            "run",
            "em0",
            "--claim",
            "0x88b5,0x88b6",
            "--claim",
            "0x9000",
            "--busy",
        ])
        .unwrap()
        .cmd
        {
            Cmd::Run {
                claim,
                busy,
                interval,
                ..
            } => {
                assert_eq!(
                    claim,
                    vec![EtherType(0x88b5), EtherType(0x88b6), EtherType(0x9000)]
                );
                assert!(busy);
                assert_eq!(interval, None);
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        for args in [
            &["arm", "em0", "--watchdog", "250us"][..],
            &["arm", "em0", "--watchdog", "10"],
            &["arm", "em0", "--watchdog", "10x"],
            &["watchdog", "em0", "fast"],
            &["watchdog", "em0"],
            &["run", "em0", "--claim", "0x0500"],
            &["run", "em0", "--claim", "88b5"],
            &["run", "em0", "--busy", "--interval", "1ms"],
            &["watch", "em0", "--interval", "off"],
            &["watch", "em0", "--count", "0"],
            &["arm"],
            &["frobnicate"],
        ] {
            let e = parse(args).expect_err(&format!("{args:?} should fail"));
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
        let e = parse(&["arm", "em0", "--watchdog", "250us"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("below the kernel minimum"), "{e}");
        let e = parse(&["run", "em0", "--claim", "0x0500"]).unwrap_err();
        assert!(e.to_string().contains("802.3"), "{e}");
    }

    #[test]
    fn help_exits_0() {
        let e = parse(&["--help"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(e.exit_code(), 0);
        let help = e.to_string();
        for cmd in [
            "status", "arm", "disarm", "revoke", "watchdog", "stats", "watch", "run",
        ] {
            assert!(help.contains(cmd), "{cmd} missing from --help");
        }
    }
}
