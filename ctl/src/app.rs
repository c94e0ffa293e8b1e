//! Wiring: the platform backends and the dispatch of each command.

use crate::cli::{self, Cmd, StatsFormat};
#[cfg(not(target_os = "freebsd"))]
use crate::error::CtlError;
use crate::error::Result;
use crate::iface::Ifaces;
use crate::ports::Ctx;
#[cfg(target_os = "freebsd")]
use crate::sys;
use crate::watch::SleepTicker;
use crate::{commands, run, runner, watch};
use emtun::netmap_user::sysctl::Sysctl;
use emtun::signal::stop_on_signals;
use emtun::Backoff;
use std::io::Write;

/// The real backends of this system.
pub struct Platform {
    pub sysctl: Box<dyn Sysctl>,
    pub ifaces: Box<dyn Ifaces>,
    pub euid: u32,
}

#[cfg(target_os = "freebsd")]
pub fn platform() -> Result<Platform> {
    Ok(Platform {
        sysctl: Box::new(emtun::netmap_user::sysctl::Kern),
        ifaces: Box::new(sys::SysIfaces),
        euid: sys::euid(),
    })
}

/// Anything but FreeBSD: every command says so plainly.
#[cfg(not(target_os = "freebsd"))]
pub fn platform() -> Result<Platform> {
    Err(CtlError::NeedsFreeBsd(std::env::consts::OS))
}

fn warn(msg: &str) {
    eprintln!("emtunctl: warning: {msg}");
}

/// Run one command against `p`. `watch` and `run` turn SIGINT/SIGTERM into
/// a stop flag (netmap_user::signal) so that they end cleanly.
pub fn dispatch(p: &Platform, cmd: Cmd, out: &mut dyn Write) -> Result<()> {
    let ctx = Ctx {
        sysctl: p.sysctl.as_ref(),
        ifaces: p.ifaces.as_ref(),
        euid: p.euid,
    };
    match cmd {
        Cmd::Status { iface, json } => {
            for note in commands::status(&ctx, iface.as_deref(), json, out)? {
                warn(&note);
            }
            Ok(())
        }
        Cmd::Arm {
            iface,
            watchdog,
            no_offload_fix,
        } => commands::arm(&ctx, &iface, watchdog, no_offload_fix, out),
        Cmd::Disarm { iface } => commands::disarm(&ctx, &iface, out),
        Cmd::Revoke { iface } => commands::revoke(&ctx, &iface, out),
        Cmd::Watchdog { iface, period } => commands::watchdog(&ctx, &iface, period, out),
        Cmd::Stats {
            iface,
            reset,
            json,
            format,
        } => commands::stats(
            &ctx,
            &iface,
            reset,
            format.unwrap_or(if json {
                StatsFormat::Json
            } else {
                StatsFormat::Text
            }),
            out,
        ),
        Cmd::Watch {
            iface,
            interval,
            count,
        } => {
            let mut ticker = SleepTicker::new(stop_on_signals());
            watch::watch(&ctx, &iface, interval, count, &mut ticker, out).map(|_| ())
        }
        Cmd::Run {
            iface,
            claim,
            poll,
            busy,
            interval,
            reattach,
            max_retries,
        } => {
            let poll = cli::poll_mode(poll, busy, interval);
            let plan = run::preflight(&ctx, &iface, claim, poll)?;
            for w in &plan.warnings {
                warn(w);
            }
            let reattach = reattach.then(|| Backoff {
                max_retries: (max_retries != 0).then_some(max_retries),
                ..Backoff::default()
            });
            runner::run(&ctx, &plan, reattach, stop_on_signals(), out)
        }
    }
}
