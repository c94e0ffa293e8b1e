//! `run IFACE`: the netmap-user tunnel engine in the foreground.

use crate::duration::{format_duration, format_us, format_watchdog};
use crate::error::{CtlError, Result};
use crate::ethertype::{self, EtherType};
use crate::port::{self, Counters, Ctx, Port, State};
use std::time::Duration;

/// Default poll interval (CONTRACT.md example; well under the 10ms default watchdog).
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    Busy,
    Interval(Duration),
}

impl Poll {
    pub fn from_args(busy: bool, interval: Option<Duration>) -> Poll {
        if busy {
            Poll::Busy
        } else {
            Poll::Interval(interval.unwrap_or(DEFAULT_INTERVAL))
        }
    }
    pub fn describe(self) -> String {
        match self {
            Poll::Busy => "busy-polling".into(),
            Poll::Interval(d) => format!("polling every {}", format_duration(d)),
        }
    }
}

/// What `run` checked before opening the port.
#[derive(Debug)]
pub struct Plan {
    pub port: Port,
    pub claims: Vec<EtherType>,
    pub poll: Poll,
    pub watchdog_us: u64,
    /// Things to tell the user on stderr.
    pub warnings: Vec<String>,
}

/// Checks that need no netmap: interface, root, armed and free, poll interval
/// vs the watchdog.
pub fn preflight(ctx: &Ctx, iface: &str, claims: Vec<EtherType>, poll: Poll) -> Result<Plan> {
    let port = port::resolve(ctx, iface)?;
    ctx.require_root(&format!("run {iface}"))?;
    let state = port::read_state(ctx, &port)?;
    match state {
        State::Armed => {}
        State::Default => {
            return Err(CtlError::NotArmed {
                iface: iface.to_string(),
            })
        }
        State::Tunneled | State::Revoked => return Err(busy_error(ctx, &port)),
        State::Other(s) => {
            return Err(CtlError::Tunnel(format!(
                "{iface}: unexpected tunnel state `{s}`"
            )))
        }
    }
    // Offloads turned back on after arming: the kernel would refuse the
    // registration with EOPNOTSUPP; say why before trying.
    if let Ok(caps) = ctx.ifaces.caps(&port.name) {
        if caps.bad() != 0 {
            return Err(crate::commands::offloads_on(
                iface,
                caps.bad(),
                &format!("or run `emtunctl arm {iface}` again"),
            ));
        }
    }
    let watchdog_us = port::read_watchdog(ctx, &port)?;
    if let Poll::Interval(d) = poll {
        let d_us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if watchdog_us != 0 && d_us.saturating_mul(2) > watchdog_us {
            return Err(CtlError::Usage(format!(
                "poll interval {} must be at most half the watchdog period {} of {iface}, \
                 or the watchdog would revoke the tunnel; use a shorter --interval, --busy, \
                 or `emtunctl watchdog {iface} DURATION`",
                format_duration(d),
                format_watchdog(watchdog_us)
            )));
        }
    }
    let claims = ethertype::dedup(claims);
    let mut warnings: Vec<String> = claims
        .iter()
        .filter_map(|&e| ethertype::warning(e))
        .collect();
    if watchdog_us == 0 {
        warnings.push(format!(
            "{iface}: the watchdog is off; if this process hangs, the port stays black-holed \
             until `emtunctl revoke {iface}`"
        ));
    }
    Ok(Plan {
        port,
        claims,
        poll,
        watchdog_us,
        warnings,
    })
}

/// "already tunneled by pid N (name)", reading the owner from the kernel.
pub fn busy_error(ctx: &Ctx, port: &Port) -> CtlError {
    match port::read_owner(ctx, port) {
        Ok(Some(owner)) => CtlError::TunneledByOther {
            iface: port.name.clone(),
            owner,
        },
        _ => CtlError::Tunnel(format!(
            "{} is already registered with netmap by another process",
            port.name
        )),
    }
}

/// Why the kernel revoked our tunnel, from the counters before and after.
pub fn revoke_cause(before: &Counters, after: &Counters, watchdog_us: u64) -> String {
    let grew = |i: usize| after.0[i] > before.0[i];
    if grew(Counters::REVOKE_WATCHDOG) {
        format!(
            "watchdog: no heartbeat for {}; longest completed gap {}",
            format_watchdog(watchdog_us),
            format_us(after.0[Counters::MAX_GAP_US])
        )
    } else if grew(Counters::REVOKE_ADMIN) {
        "administrator: emtunctl revoke/disarm or the tunnel sysctls".into()
    } else {
        "watchdog or administrator".into()
    }
}

/// Counters `run` prints at exit (filled from netmap_user::Stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub to_app: u64,
    pub from_app: u64,
    pub to_host: u64,
    pub from_host: u64,
    pub dropped: u64,
    pub rounds: u64,
    pub claimed_bytes: u64,
}

pub fn format_summary(iface: &str, s: &Summary, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = |n: u64| {
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    };
    format!(
        "{iface}: ran {secs:.1}s\n\
         \x20 to_app     {:>14}  claimed frames ({} bytes)\n\
         \x20 from_app   {:>14}\n\
         \x20 to_host    {:>14}  NIC -> kernel stack ({:.0}/s)\n\
         \x20 from_host  {:>14}  kernel stack -> NIC ({:.0}/s)\n\
         \x20 dropped    {:>14}\n\
         \x20 rounds     {:>14}  sync rounds (watchdog heartbeats)\n",
        s.to_app,
        s.claimed_bytes,
        s.from_app,
        s.to_host,
        rate(s.to_host),
        s.from_host,
        rate(s.from_host),
        s.dropped,
        s.rounds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_from_args() {
        assert_eq!(Poll::from_args(true, None), Poll::Busy);
        assert_eq!(
            Poll::from_args(false, None),
            Poll::Interval(DEFAULT_INTERVAL)
        );
        assert_eq!(
            Poll::from_args(false, Some(Duration::from_micros(500))),
            Poll::Interval(Duration::from_micros(500))
        );
        assert_eq!(Poll::Busy.describe(), "busy-polling");
        assert_eq!(
            Poll::Interval(Duration::from_millis(2)).describe(),
            "polling every 2ms"
        );
    }

    #[test]
    fn revoke_causes() {
        let before = Counters([1, 0, 0, 0, 0, 0, 0, 500]);
        let mut wd = before;
        wd.0[Counters::REVOKE_WATCHDOG] = 1;
        wd.0[Counters::MAX_GAP_US] = 68_983;
        assert_eq!(
            revoke_cause(&before, &wd, 20_000),
            "watchdog: no heartbeat for 20ms; longest completed gap 68.983ms"
        );
        let mut adm = before;
        adm.0[Counters::REVOKE_ADMIN] = 1;
        assert!(revoke_cause(&before, &adm, 20_000).starts_with("administrator"));
        assert_eq!(
            revoke_cause(&before, &before, 20_000),
            "watchdog or administrator"
        );
    }

    #[test]
    fn summary_text() {
        let s = Summary {
            to_app: 3,
            from_app: 0,
            to_host: 2000,
            from_host: 1000,
            dropped: 1,
            rounds: 10,
            claimed_bytes: 150,
        };
        let t = format_summary("em0", &s, Duration::from_secs(2));
        assert!(t.starts_with("em0: ran 2.0s\n"), "{t}");
        assert!(t.contains("(150 bytes)"));
        assert!(t.contains("(1000/s)"));
        assert!(t.contains("(500/s)"));
        let line = t.lines().find(|l| l.contains("dropped")).unwrap();
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            vec!["dropped", "1"]
        );
    }
}
