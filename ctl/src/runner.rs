//! Running `run`: open the tunnel, forward until Ctrl-C or a revoke, print
//! the engine's counters.

use crate::error::{CtlError, Result};
use crate::ports::{self, Ctx};
use crate::run::{self, Plan, Summary};
use emtun::duration::format_duration;
use emtun::duration::format_watchdog;
use emtun::netmap_user::{Backend, Error as NetmapError};
use emtun::{run_supervised, Backoff, Error, Event, Tunnel, TunnelConfig};
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The library configuration for a plan.
pub fn config(plan: &Plan) -> TunnelConfig {
    TunnelConfig::default()
        .poll(plan.poll)
        .claim_set(plan.claims.clone())
}

/// The first line of `run`: what runs, and how it ends.
fn banner(out: &mut dyn Write, plan: &Plan, ends: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: tunneling; claims {}; {}; watchdog {}; {ends}",
        plan.port.ifname,
        plan.claims.describe(),
        plan.poll.describe(),
        format_watchdog(plan.watchdog_us)
    )?;
    out.flush()
}

/// A tunnel error from opening the port, in emtunctl's terms.
pub fn open_error(ctx: &Ctx, plan: &Plan, e: Error) -> CtlError {
    let iface = plan.port.ifname.to_string();
    match e {
        Error::Netmap(NetmapError::Busy(_)) => run::busy_error(ctx, &plan.port),
        Error::Netmap(NetmapError::PermissionDenied(_)) => CtlError::NotRoot {
            action: format!("run {iface} (netmap registration)"),
        },
        Error::Netmap(NetmapError::NoSuchInterface(_)) => CtlError::NoSuchInterface(iface),
        Error::Netmap(NetmapError::Unsupported) => CtlError::NeedsFreeBsd(std::env::consts::OS),
        Error::Netmap(NetmapError::Revoked) => CtlError::Revoked {
            iface,
            cause: "during registration".into(),
        },
        other => CtlError::Tunnel(format!("{iface}: {other}")),
    }
}

/// Forward on `tun` until `stop` is set or the port fails; count claimed
/// bytes. Returns the loop's result and the counters.
pub fn drive<B: Backend>(
    tun: &mut Tunnel<B>,
    stop: &AtomicBool,
) -> (std::result::Result<(), Error>, Summary) {
    let mut claimed_bytes = 0u64;
    // Claimed frames are counted and released: `run` is a tunnel without an
    // application; the engine already counts them as to_app.
    let mut app = |frame: &[u8]| claimed_bytes += frame.len() as u64;
    let r = tun.run_until(stop, &mut app);
    let summary = Summary {
        stats: tun.stats(),
        claimed_bytes,
    };
    (r, summary)
}

/// `run IFACE` after a successful preflight; with `reattach`, supervised.
pub fn run(
    ctx: &Ctx,
    plan: &Plan,
    reattach: Option<Backoff>,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<()> {
    match reattach {
        Some(b) => run_reattaching(ctx, plan, &b, stop, out),
        None => run_once(ctx, plan, stop, out),
    }
}

/// `run --reattach`: after a revoke, release the port and open it again,
/// with backoff, until Ctrl-C or `max_retries` failed opens in a row.
fn run_reattaching(
    ctx: &Ctx,
    plan: &Plan,
    backoff: &Backoff,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<()> {
    let iface = plan.port.ifname.to_string();
    let limit = backoff
        .max_retries
        .map_or("never gives up".to_string(), |m| {
            format!("gives up after {m} failed opens in a row")
        });
    banner(
        out,
        plan,
        &format!("re-attaches after a revoke ({limit}); Ctrl-C to stop"),
    )?;
    let start = Instant::now();
    let mut claimed_bytes = 0u64;
    let mut app = |frame: &[u8]| claimed_bytes += frame.len() as u64;
    let mut before = ports::read_counters(ctx, &plan.port).ok();
    let (r, stats) = run_supervised(
        || Tunnel::open(&iface, config(plan)),
        stop,
        &mut app,
        backoff,
        |ev| {
            // Progress lines for daemon(8)'s log; a write error must not
            // stop the tunnel.
            let _ = match ev {
                Event::Attached { attempt: 1 } => Ok(()),
                Event::Attached { attempt } => {
                    writeln!(out, "{iface}: re-attached (open {attempt})")
                }
                Event::Detached(e) => {
                    let after = ports::read_counters(ctx, &plan.port).ok();
                    let cause = match (&before, &after) {
                        (Some(b), Some(a)) if e.is_revoked() => {
                            run::revoke_cause(b, a, plan.watchdog_us)
                        }
                        _ => e.to_string(),
                    };
                    before = after;
                    writeln!(out, "{iface}: detached: {cause}; re-attaching")
                }
                Event::Retrying {
                    failures,
                    delay,
                    error,
                } => writeln!(
                    out,
                    "{iface}: open {failures} failed ({error}); next try in {}",
                    format_duration(*delay)
                ),
            };
            let _ = out.flush();
        },
    );
    let summary = Summary {
        stats,
        claimed_bytes,
    };
    out.write_all(run::format_summary(&iface, &summary, start.elapsed()).as_bytes())?;
    out.flush()?;
    r.map_err(|e| match e {
        Error::GaveUp { .. } => CtlError::Tunnel(format!("{iface}: {e}")),
        e => open_error(ctx, plan, e),
    })
}

/// `run IFACE`: one registration; a revoke ends it.
fn run_once(ctx: &Ctx, plan: &Plan, stop: &AtomicBool, out: &mut dyn Write) -> Result<()> {
    let iface = &plan.port.ifname.to_string();
    // Counters before, to tell a watchdog revoke from an admin one.
    let before = ports::read_counters(ctx, &plan.port).ok();
    let mut tun = Tunnel::open(iface, config(plan)).map_err(|e| open_error(ctx, plan, e))?;
    banner(out, plan, "Ctrl-C to stop")?;
    let start = Instant::now();
    let (r, summary) = drive(&mut tun, stop);
    // Release the port (close + unmap) before reporting, so that the kernel
    // state printed by a following `status` is already "armed".
    drop(tun);
    out.write_all(run::format_summary(iface, &summary, start.elapsed()).as_bytes())?;
    out.flush()?;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_revoked() => {
            let cause = match (before, ports::read_counters(ctx, &plan.port)) {
                (Some(b), Ok(a)) => run::revoke_cause(&b, &a, plan.watchdog_us),
                _ => "watchdog or administrator".into(),
            };
            Err(CtlError::Revoked {
                iface: iface.clone(),
                cause,
            })
        }
        Err(e) => Err(CtlError::Tunnel(format!("{iface}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Port;
    use emtun::netmap_user::mem::{self, MemConfig};
    use emtun::{ClaimSet, EtherType, IfName, PollMode};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn plan(claims: Vec<EtherType>, poll: PollMode) -> Plan {
        let mut set = ClaimSet::default();
        for t in claims {
            set.insert(t).unwrap();
        }
        Plan {
            port: Port::of(&IfName::new("em0").unwrap()).unwrap(),
            claims: set,
            poll,
            watchdog_us: 10_000,
            warnings: vec![],
        }
    }

    fn frame(ethertype: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    #[test]
    fn config_carries_claims() {
        let p = plan(vec![EtherType(0x88b5), EtherType(0x88b6)], PollMode::Busy);
        let cfg = config(&p);
        assert!(cfg.claims().contains(EtherType(0x88b5)));
        assert!(cfg.claims().contains(EtherType(0x88b6)));
        assert!(!cfg.claims().contains(EtherType(0x0800)));
        assert_eq!(cfg.claims().len(), 2);
    }

    #[test]
    fn drive_forwards_and_counts_then_stops() {
        let (port, nic) = mem::port(&MemConfig::default());
        let p = plan(
            vec![EtherType(0x88b5)],
            PollMode::Interval(Duration::from_millis(1)),
        );
        let mut tun = Tunnel::with_port(port, config(&p));
        nic.wire_send(0, &frame(0x88b5, 60)).unwrap();
        nic.wire_send(0, &frame(0x0800, 60)).unwrap();
        nic.wire_send(0, &frame(0x88b5, 100)).unwrap();
        nic.stack_send(0, &frame(0x0806, 42)).unwrap();
        // The stop flag is raised from the "signal handler" thread after the
        // traffic had time to move; the in-memory port never blocks.
        let stop = AtomicBool::new(false);
        let (r, s) = std::thread::scope(|sc| {
            sc.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                stop.store(true, Ordering::SeqCst);
            });
            drive(&mut tun, &stop)
        });
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(s.stats.to_app, 2);
        assert_eq!(s.claimed_bytes, 160);
        assert_eq!(s.stats.to_host, 1);
        assert_eq!(s.stats.from_host, 1);
        assert_eq!(s.stats.dropped.total(), 0);
        assert!(s.stats.rounds > 0);
        let up = nic.stack_take();
        assert_eq!(up.len(), 1);
        assert_eq!(&up[0].1[12..14], &[0x08, 0x00]);
        let out = nic.wire_take();
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].1[12..14], &[0x08, 0x06]);
    }

    #[test]
    fn drive_reports_revoke() {
        let (port, nic) = mem::port(&MemConfig::default());
        let p = plan(vec![], PollMode::Busy);
        let mut tun = Tunnel::with_port(port, config(&p));
        nic.wire_send(0, &frame(0x0800, 60)).unwrap();
        nic.revoke();
        let stop = AtomicBool::new(false);
        let (r, _) = drive(&mut tun, &stop);
        assert!(matches!(&r, Err(e) if e.is_revoked()), "{r:?}");
    }

    #[cfg(not(target_os = "freebsd"))]
    #[test]
    fn run_off_freebsd_says_so() {
        let k = emtun::netmap_user::sysctl::mem::MemSysctl::new();
        let i = crate::iface::mem::MemIfaces::default();
        let ctx = Ctx {
            sysctl: &k,
            ifaces: &i,
            euid: 0,
        };
        let p = plan(vec![], PollMode::Busy);
        let e = run(&ctx, &p, None, &AtomicBool::new(false), &mut Vec::new()).unwrap_err();
        assert!(matches!(e, CtlError::NeedsFreeBsd(_)), "{e:?}");
    }

    #[test]
    fn open_errors_map() {
        let k = emtun::netmap_user::sysctl::mem::MemSysctl::new();
        use emtun::netmap_user::sysctl::mem::{Access, Val};
        k.add("dev.em.0.tunnel.owner_pid", Val::Int(555), Access::Ro);
        k.set_proc(555, "other");
        let i = crate::iface::mem::MemIfaces::default();
        let ctx = Ctx {
            sysctl: &k,
            ifaces: &i,
            euid: 0,
        };
        let p = plan(vec![], PollMode::Busy);
        use emtun::netmap_user::Error as N;
        let e = open_error(&ctx, &p, N::Busy("em0".into()).into());
        assert_eq!(e.to_string(), "em0 is already tunneled by pid 555 (other)");
        let e = open_error(&ctx, &p, N::PermissionDenied("em0".into()).into());
        assert!(matches!(e, CtlError::NotRoot { .. }));
        let e = open_error(&ctx, &p, N::Revoked.into());
        assert!(matches!(e, CtlError::Revoked { .. }));
        assert!(e.to_string().contains("back in default mode"));
        let e = open_error(&ctx, &p, N::NoNetmap.into());
        assert!(
            e.to_string().starts_with("em0: netmap is not available"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
    }
}
