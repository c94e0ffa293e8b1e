//! status, arm, disarm, revoke, watchdog, stats.

use crate::cli::StatsFormat;
use crate::error::{CtlError, Result};
use crate::format;
use crate::iface::{offload_names, BAD_OFFLOAD_MASK};
use crate::ports::{self, Ctx, Port, PortStatus};
use emtun::agent::State;
use emtun::duration::{format_watchdog, Watchdog};
use emtun::netmap_user::sysctl::SysctlError;
use std::io::Write;

/// `status [IFACE] [--json]`. Returns notes for stderr (ports without the patch).
pub fn status(
    ctx: &Ctx,
    iface: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Vec<String>> {
    let (ports, unpatched) = match iface {
        Some(name) => (vec![ports::resolve(ctx, name)?], Vec::new()),
        None => ports::list_ports(ctx)?,
    };
    let list = ports
        .iter()
        .map(|p| ports::read_status(ctx, p))
        .collect::<Result<Vec<_>>>()?;
    if json {
        writeln!(out, "{}", format::status_json(&list))?;
    } else {
        out.write_all(format::status_table(&list).as_bytes())?;
    }
    Ok(unpatched
        .iter()
        .map(|n| format!("{n}: no tunnel sysctl node (driver not covered by the emtun patch)"))
        .collect())
}

/// "offloads txcsum, tso4 are enabled ... `ifconfig em0 -txcsum -tso4`, `<hint>`"
pub fn offloads_on(iface: &str, bad: u32, hint: &str) -> CtlError {
    let names = offload_names(bad);
    CtlError::OffloadsOn {
        iface: iface.to_string(),
        names: names.join(", "),
        flags: names
            .iter()
            .map(|n| format!("-{n}"))
            .collect::<Vec<_>>()
            .join(" "),
        hint: hint.to_string(),
    }
}

/// Turn off the offloads that break tunneled traffic, or refuse if told not to.
/// Returns the names turned off.
fn fix_offloads(ctx: &Ctx, port: &Port, allow_fix: bool) -> Result<Vec<&'static str>> {
    let caps = ctx
        .ifaces
        .caps(port.ifname.as_str())
        .map_err(|e| CtlError::Ioctl {
            iface: port.ifname.to_string(),
            op: "SIOCGIFCAP",
            source: e,
        })?;
    let bad = caps.bad();
    if bad == 0 {
        return Ok(Vec::new());
    }
    let names = offload_names(bad);
    if !allow_fix {
        return Err(offloads_on(
            port.ifname.as_str(),
            bad,
            "or arm without --no-offload-fix",
        ));
    }
    let fix_err = |detail: String| CtlError::OffloadFix {
        iface: port.ifname.to_string(),
        names: names.join(", "),
        detail,
    };
    ctx.ifaces
        .set_caps(port.ifname.as_str(), caps.enabled & !BAD_OFFLOAD_MASK)
        .map_err(|e| fix_err(format!("SIOCSIFCAP: {e}")))?;
    let after = ctx
        .ifaces
        .caps(port.ifname.as_str())
        .map_err(|e| fix_err(format!("SIOCGIFCAP: {e}")))?;
    if after.bad() != 0 {
        return Err(fix_err(format!(
            "the driver kept {} on",
            offload_names(after.bad()).join(", ")
        )));
    }
    Ok(names)
}

fn write_watchdog(ctx: &Ctx, port: &Port, wd: Watchdog) -> Result<()> {
    match ports::write(ctx, port, "watchdog_us", wd.us as i64) {
        Err(CtlError::Sysctl {
            source: SysctlError::Invalid,
            ..
        }) => Err(CtlError::OutOfRange {
            what: format!("{}: watchdog {}", port.ifname, format_watchdog(wd.us)),
            detail: "the kernel refused it (EINVAL); use off or 1ms..10s".into(),
        }),
        r => r,
    }
}

/// `arm IFACE [--watchdog DUR] [--no-offload-fix]`
pub fn arm(
    ctx: &Ctx,
    iface: &str,
    watchdog: Option<Watchdog>,
    no_offload_fix: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let port = ports::resolve(ctx, iface)?;
    ctx.require_root(&format!("arm {iface}"))?;
    let state = ports::read_state(ctx, &port)?;
    if state.has_owner() {
        // Touching caps now would reset a NIC that is in netmap mode: leave them.
        if let Some(wd) = watchdog {
            write_watchdog(ctx, &port, wd)?;
        }
        let owner = ports::read_owner(ctx, &port)?
            .map(|o| format!(" by {o}"))
            .unwrap_or_default();
        let wd = ports::read_watchdog(ctx, &port)?;
        writeln!(
            out,
            "{iface}: already armed and {state}{owner}; watchdog {}",
            format_watchdog(wd)
        )?;
        return Ok(());
    }
    let fixed = fix_offloads(ctx, &port, !no_offload_fix)?;
    if !fixed.is_empty() {
        writeln!(
            out,
            "{iface}: turned off {} (they break tunneled host traffic); the NIC reinitialises, so the link may flap",
            fixed.join(", ")
        )?;
    }
    if let Some(wd) = watchdog {
        write_watchdog(ctx, &port, wd)?;
    }
    match ports::write(ctx, &port, "enable", 1) {
        Ok(()) => {}
        Err(CtlError::Sysctl {
            source: SysctlError::NotSupported,
            ..
        }) => {
            let names = ctx
                .ifaces
                .caps(port.ifname.as_str())
                .map(|c| offload_names(c.bad()).join(", "))
                .unwrap_or_default();
            return Err(CtlError::KernelRefusedOffloads {
                iface: iface.to_string(),
                names: if names.is_empty() {
                    "unknown".into()
                } else {
                    names
                },
            });
        }
        Err(e) => return Err(e),
    }
    let wd = ports::read_watchdog(ctx, &port)?;
    let state = ports::read_state(ctx, &port)?;
    writeln!(out, "{iface}: {state}; watchdog {}", format_watchdog(wd))?;
    Ok(())
}

/// `disarm IFACE` (revokes first when tunneled: the kernel does that on enable=0).
pub fn disarm(ctx: &Ctx, iface: &str, out: &mut dyn Write) -> Result<()> {
    let port = ports::resolve(ctx, iface)?;
    ctx.require_root(&format!("disarm {iface}"))?;
    let st = ports::read_status(ctx, &port)?;
    if st.state == State::Default && !st.enabled {
        writeln!(out, "{iface}: already disarmed (default mode)")?;
        return Ok(());
    }
    ports::write(ctx, &port, "enable", 0)?;
    let now = ports::read_state(ctx, &port)?;
    match (&st.state, &st.owner) {
        (State::Tunneled, Some(o)) if now == State::Revoked => writeln!(
            out,
            "{iface}: revoked the tunnel of {o} and disarmed; default once it closes the port (now {now})"
        )?,
        (State::Tunneled, Some(o)) => writeln!(
            out,
            "{iface}: revoked the tunnel of {o}, then disarmed; now {now}"
        )?,
        (State::Tunneled, None) => {
            writeln!(out, "{iface}: revoked the tunnel, then disarmed; now {now}")?
        }
        _ => writeln!(out, "{iface}: disarmed; now {now}")?,
    }
    Ok(())
}

/// `revoke IFACE`: force default mode now; the port stays armed.
pub fn revoke(ctx: &Ctx, iface: &str, out: &mut dyn Write) -> Result<()> {
    let port = ports::resolve(ctx, iface)?;
    ctx.require_root(&format!("revoke {iface}"))?;
    let st = ports::read_status(ctx, &port)?;
    if st.state != State::Tunneled {
        return Err(CtlError::NotTunneled {
            iface: iface.to_string(),
            state: st.state.to_string(),
        });
    }
    match ports::write(ctx, &port, "revoke", 1) {
        Ok(()) => {}
        // Raced with the owner exiting or the watchdog.
        Err(CtlError::Sysctl {
            source: SysctlError::Invalid,
            ..
        }) => {
            return Err(CtlError::NotTunneled {
                iface: iface.to_string(),
                state: ports::read_state(ctx, &port)?.to_string(),
            })
        }
        Err(e) => return Err(e),
    }
    let now = ports::read_state(ctx, &port)?;
    let who = st.owner.map(|o| format!(" of {o}")).unwrap_or_default();
    writeln!(
        out,
        "{iface}: revoked the registration{who}; the NIC is back in default mode (state: {now}, still armed)"
    )?;
    Ok(())
}

/// `watchdog IFACE DURATION`
pub fn watchdog(ctx: &Ctx, iface: &str, wd: Watchdog, out: &mut dyn Write) -> Result<()> {
    let port = ports::resolve(ctx, iface)?;
    ctx.require_root(&format!("watchdog {iface}"))?;
    let before = ports::read_watchdog(ctx, &port)?;
    write_watchdog(ctx, &port, wd)?;
    let after = ports::read_watchdog(ctx, &port)?;
    writeln!(
        out,
        "{iface}: watchdog {} (was {})",
        format_watchdog(after),
        format_watchdog(before)
    )?;
    Ok(())
}

/// `stats IFACE [--reset] [--json]`: prints the counters, then resets them if asked.
pub fn stats(
    ctx: &Ctx,
    iface: &str,
    reset: bool,
    fmt: StatsFormat,
    out: &mut dyn Write,
) -> Result<()> {
    let port = ports::resolve(ctx, iface)?;
    if reset {
        ctx.require_root(&format!("stats --reset {iface}"))?;
    }
    let st: PortStatus = ports::read_status(ctx, &port)?;
    match fmt {
        StatsFormat::Json => writeln!(out, "{}", format::stats_json(&st))?,
        StatsFormat::Prometheus => out.write_all(format::stats_prometheus(&st).as_bytes())?,
        StatsFormat::Text => out.write_all(format::stats_text(&st).as_bytes())?,
    }
    if reset {
        ports::write(ctx, &port, "stats.reset", 1)?;
        if fmt == StatsFormat::Text {
            writeln!(out, "{iface}: counters reset")?;
        }
    }
    Ok(())
}
