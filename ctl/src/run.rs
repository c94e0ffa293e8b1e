//! `run IFACE`: the netmap-user tunnel engine in the foreground.

use crate::error::{CtlError, Result};
use crate::ports::{self, Ctx, Port};
use emtun::agent::{Counters, State};
use emtun::duration::{format_us, format_watchdog};
use emtun::{ClaimSet, EtherType, PollMode, Stats};
use std::time::Duration;

/// What `run` checked before opening the port.
#[derive(Debug)]
pub struct Plan {
    pub port: Port,
    pub claims: ClaimSet,
    pub poll: PollMode,
    pub watchdog_us: u64,
    /// Things to tell the user on stderr.
    pub warnings: Vec<String>,
}

/// Checks that need no netmap: interface, root, armed and free, poll interval
/// vs the watchdog.
pub fn preflight(ctx: &Ctx, iface: &str, claims: Vec<EtherType>, poll: PollMode) -> Result<Plan> {
    let port = ports::resolve(ctx, iface)?;
    ctx.require_root(&format!("run {iface}"))?;
    let state = ports::read_state(ctx, &port)?;
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
    if let Ok(caps) = ctx.ifaces.caps(port.ifname.as_str()) {
        if caps.bad() != 0 {
            return Err(crate::commands::offloads_on(
                iface,
                caps.bad(),
                &format!("or run `emtunctl arm {iface}` again"),
            ));
        }
    }
    let watchdog_us = ports::read_watchdog(ctx, &port)?;
    let mut set = ClaimSet::default();
    for t in claims {
        set.insert(t).map_err(|e| CtlError::Usage(e.to_string()))?;
    }
    let claims = set;
    let mut warnings = claims.warnings();
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
    match ports::read_owner(ctx, port) {
        Ok(Some(owner)) => CtlError::TunneledByOther {
            iface: port.ifname.to_string(),
            owner,
        },
        _ => CtlError::Tunnel(format!(
            "{} is already registered with netmap by another process",
            port.ifname
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

/// Counters `run` prints at exit: the engine's, and the claimed bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub stats: Stats,
    pub claimed_bytes: u64,
}

pub fn format_summary(iface: &str, s: &Summary, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let (st, claimed_bytes) = (&s.stats, s.claimed_bytes);
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
        st.to_app,
        claimed_bytes,
        st.from_app,
        st.to_host,
        rate(st.to_host),
        st.from_host,
        rate(st.from_host),
        st.dropped.total(),
        st.rounds,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_causes() {
        let before = Counters([1, 0, 0, 0, 0, 0, 0, 500, 0, 0, 0]);
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
        let mut stats = Stats {
            to_app: 3,
            to_host: 2000,
            from_host: 1000,
            rounds: 10,
            ..Stats::default()
        };
        stats.dropped.runt = 1;
        let s = Summary {
            stats,
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
