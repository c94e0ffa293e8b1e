//! A tunnel-capable port: resolving IFACE to its `dev.<drv>.<unit>.tunnel`
//! node, reading its state and counters, and writing its knobs.

use crate::error::{CtlError, Owner, Result};
use crate::iface::{self, Caps, Driver, Ifaces, Link};
use crate::sysctl::{Sysctl, SysctlError};
use std::fmt;

/// The backends every command runs against.
pub struct Ctx<'a> {
    pub sysctl: &'a dyn Sysctl,
    pub ifaces: &'a dyn Ifaces,
    /// Effective uid of the caller.
    pub euid: u32,
}

impl Ctx<'_> {
    /// Refuse with a clear message unless running as root.
    pub fn require_root(&self, action: &str) -> Result<()> {
        if self.euid == 0 {
            Ok(())
        } else {
            Err(CtlError::NotRoot {
                action: action.to_string(),
            })
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub driver: Driver,
    pub unit: u32,
}

impl Port {
    /// `dev.em.0`
    pub fn dev_node(&self) -> String {
        format!("dev.{}.{}", self.driver, self.unit)
    }
    /// `dev.em.0.tunnel`
    pub fn tunnel_node(&self) -> String {
        format!("{}.tunnel", self.dev_node())
    }
    /// `dev.em.0.tunnel.<leaf>`
    pub fn node(&self, leaf: &str) -> String {
        format!("{}.tunnel.{leaf}", self.dev_node())
    }
}

/// Map IFACE to a port, with a clear error for each way this can fail.
pub fn resolve(ctx: &Ctx, name: &str) -> Result<Port> {
    if ctx.ifaces.index(name).is_none() {
        return Err(CtlError::NoSuchInterface(name.to_string()));
    }
    let (driver, unit) = iface::parse_name(name).ok_or_else(|| CtlError::NotEmIgb {
        name: name.to_string(),
        prefix: iface::name_prefix(name).to_string(),
    })?;
    let port = Port {
        name: name.to_string(),
        driver,
        unit,
    };
    check_patched(ctx, &port)?;
    Ok(port)
}

fn check_patched(ctx: &Ctx, port: &Port) -> Result<()> {
    if ctx.sysctl.exists(&port.tunnel_node()) {
        return Ok(());
    }
    if ctx.sysctl.exists(&port.dev_node()) {
        Err(CtlError::NotPatched {
            iface: port.name.clone(),
            node: port.tunnel_node(),
        })
    } else {
        Err(CtlError::NoDeviceNode {
            iface: port.name.clone(),
            node: port.dev_node(),
        })
    }
}

/// Every em/igb port known to the sysctl tree, and the names of the ones
/// without a tunnel node. Errors if there are ports but none is patched.
pub fn list_ports(ctx: &Ctx) -> Result<(Vec<Port>, Vec<String>)> {
    let mut ports = Vec::new();
    let mut unpatched = Vec::new();
    for driver in Driver::ALL {
        let units = match ctx.sysctl.children(&format!("dev.{driver}")) {
            Ok(u) => u,
            Err(SysctlError::NotFound) => continue,
            Err(e) => return Err(CtlError::sysctl(&format!("dev.{driver}"), e)),
        };
        let mut units: Vec<u32> = units.iter().filter_map(|u| u.parse().ok()).collect();
        units.sort_unstable();
        for unit in units {
            let port = Port {
                name: format!("{driver}{unit}"),
                driver,
                unit,
            };
            if ctx.sysctl.exists(&port.tunnel_node()) {
                ports.push(port);
            } else {
                unpatched.push(port);
            }
        }
    }
    if ports.is_empty() {
        return match unpatched.first() {
            Some(p) => Err(CtlError::NotPatched {
                iface: p.name.clone(),
                node: p.tunnel_node(),
            }),
            None => Err(CtlError::NoPorts),
        };
    }
    Ok((ports, unpatched.into_iter().map(|p| p.name).collect()))
}

/// `dev.em.N.tunnel.state`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Default,
    Armed,
    Tunneled,
    Revoked,
    Other(String),
}

impl State {
    pub fn parse(s: &str) -> State {
        match s {
            "default" => State::Default,
            "armed" => State::Armed,
            "tunneled" => State::Tunneled,
            "revoked" => State::Revoked,
            other => State::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            State::Default => "default",
            State::Armed => "armed",
            State::Tunneled => "tunneled",
            State::Revoked => "revoked",
            State::Other(s) => s,
        }
    }
    /// A registration exists (live or revoked-but-still-open).
    pub fn has_owner(&self) -> bool {
        matches!(self, State::Tunneled | State::Revoked)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names of the `stats.*` leaves, in display and JSON order.
pub const COUNTER_NAMES: [&str; 8] = [
    "enter",
    "exit",
    "revoke_watchdog",
    "revoke_admin",
    "host_in",
    "host_out",
    "host_drop",
    "max_gap_us",
];

/// `dev.em.N.tunnel.stats.*`, indexed like `COUNTER_NAMES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters(pub [u64; 8]);

impl Counters {
    pub const ENTER: usize = 0;
    pub const EXIT: usize = 1;
    pub const REVOKE_WATCHDOG: usize = 2;
    pub const REVOKE_ADMIN: usize = 3;
    pub const HOST_IN: usize = 4;
    pub const HOST_OUT: usize = 5;
    pub const HOST_DROP: usize = 6;
    /// A maximum, not a monotonic counter.
    pub const MAX_GAP_US: usize = 7;
}

/// Everything `status` shows for one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub port: Port,
    pub state: State,
    pub enabled: bool,
    pub watchdog_us: u64,
    pub owner: Option<Owner>,
    /// None if SIOCGIFCAP failed.
    pub caps: Option<Caps>,
    pub link: Link,
    pub counters: Counters,
}

fn get_int(ctx: &Ctx, port: &Port, leaf: &str) -> Result<i64> {
    let n = port.node(leaf);
    ctx.sysctl.get_int(&n).map_err(|e| CtlError::sysctl(&n, e))
}

fn get_u64(ctx: &Ctx, port: &Port, leaf: &str) -> Result<u64> {
    let n = port.node(leaf);
    ctx.sysctl.get_u64(&n).map_err(|e| CtlError::sysctl(&n, e))
}

pub fn read_state(ctx: &Ctx, port: &Port) -> Result<State> {
    let n = port.node("state");
    ctx.sysctl
        .get_str(&n)
        .map(|s| State::parse(s.trim()))
        .map_err(|e| CtlError::sysctl(&n, e))
}

/// The registering process, if any.
pub fn read_owner(ctx: &Ctx, port: &Port) -> Result<Option<Owner>> {
    let pid = get_int(ctx, port, "owner_pid")?;
    if pid <= 0 {
        return Ok(None);
    }
    let pid = i32::try_from(pid).unwrap_or(i32::MAX);
    Ok(Some(Owner {
        pid,
        name: ctx.sysctl.proc_name(pid),
    }))
}

pub fn read_counters(ctx: &Ctx, port: &Port) -> Result<Counters> {
    let mut c = Counters::default();
    for (i, name) in COUNTER_NAMES.iter().enumerate() {
        c.0[i] = get_u64(ctx, port, &format!("stats.{name}"))?;
    }
    Ok(c)
}

pub fn read_watchdog(ctx: &Ctx, port: &Port) -> Result<u64> {
    get_u64(ctx, port, "watchdog_us")
}

pub fn read_status(ctx: &Ctx, port: &Port) -> Result<PortStatus> {
    Ok(PortStatus {
        port: port.clone(),
        state: read_state(ctx, port)?,
        enabled: get_int(ctx, port, "enable")? != 0,
        watchdog_us: read_watchdog(ctx, port)?,
        owner: read_owner(ctx, port)?,
        caps: ctx.ifaces.caps(&port.name).ok(),
        link: ctx.ifaces.link(&port.name),
        counters: read_counters(ctx, port)?,
    })
}

/// Write `dev.<drv>.<unit>.tunnel.<leaf>`; EPERM becomes a "needs root" error.
/// Other errors are returned raw so that callers can give them meaning.
pub fn write(ctx: &Ctx, port: &Port, leaf: &str, value: i64) -> Result<()> {
    let n = port.node(leaf);
    match ctx.sysctl.set_int(&n, value) {
        Ok(()) => Ok(()),
        Err(SysctlError::PermissionDenied) => Err(CtlError::NotRoot {
            action: format!("writing {n}"),
        }),
        Err(e) => Err(CtlError::sysctl(&n, e)),
    }
}
