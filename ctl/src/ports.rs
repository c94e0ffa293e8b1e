//! The tunnel-capable ports of this host: resolving IFACE to its agent
//! node (`dev.<drv>.<unit>.tunnel`), listing them, reading their status and
//! writing their knobs.

use crate::error::{CtlError, Owner, Result};
use crate::iface::{Caps, Ifaces};
use emtun::agent::{Counters, Driver, State};
use emtun::netmap_user::ifnet::Link;
use emtun::netmap_user::sysctl::{Sysctl, SysctlError};
use emtun::IfName;

/// A port is its agent node (the one definition, in emtun).
pub use emtun::agent::Node as Port;

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

/// A port of `driver` and `unit` (for listings).
fn port_of(driver: Driver, unit: u32) -> Option<Port> {
    let name = IfName::new(&format!("{driver}{unit}")).ok()?;
    Port::of(&name)
}

/// Map IFACE to a port, with a clear error for each way this can fail.
pub fn resolve(ctx: &Ctx, name: &str) -> Result<Port> {
    let ifname = IfName::new(name).map_err(|_| CtlError::NoSuchInterface(name.to_string()))?;
    if ctx.ifaces.index(name).is_none() {
        return Err(CtlError::NoSuchInterface(name.to_string()));
    }
    let port = Port::of(&ifname).ok_or_else(|| CtlError::NotEmIgb {
        name: name.to_string(),
        prefix: ifname.driver_unit().map_or(name, |(d, _)| d).to_string(),
    })?;
    check_patched(ctx, &port)?;
    Ok(port)
}

fn check_patched(ctx: &Ctx, port: &Port) -> Result<()> {
    if ctx.sysctl.exists(&port.tunnel_node()) {
        return Ok(());
    }
    if ctx.sysctl.exists(&port.dev_node()) {
        Err(CtlError::NotPatched {
            iface: port.ifname.to_string(),
            node: port.tunnel_node(),
        })
    } else {
        Err(CtlError::NoDeviceNode {
            iface: port.ifname.to_string(),
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
            let Some(port) = port_of(driver, unit) else {
                continue;
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
                iface: p.ifname.to_string(),
                node: p.tunnel_node(),
            }),
            None => Err(CtlError::NoPorts),
        };
    }
    Ok((
        ports,
        unpatched
            .into_iter()
            .map(|p| p.ifname.to_string())
            .collect(),
    ))
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

fn sysctl_err(port: &Port, leaf: &str) -> impl Fn(SysctlError) -> CtlError {
    let n = port.leaf(leaf);
    move |e| CtlError::sysctl(&n, e)
}

pub fn read_state(ctx: &Ctx, port: &Port) -> Result<State> {
    port.state(ctx.sysctl).map_err(sysctl_err(port, "state"))
}

/// The registering process, if any.
pub fn read_owner(ctx: &Ctx, port: &Port) -> Result<Option<Owner>> {
    let pid = port
        .owner_pid(ctx.sysctl)
        .map_err(sysctl_err(port, "owner_pid"))?;
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
    port.counters(ctx.sysctl).map_err(sysctl_err(port, "stats"))
}

pub fn read_watchdog(ctx: &Ctx, port: &Port) -> Result<u64> {
    port.watchdog_us(ctx.sysctl)
        .map_err(sysctl_err(port, "watchdog_us"))
}

pub fn read_status(ctx: &Ctx, port: &Port) -> Result<PortStatus> {
    Ok(PortStatus {
        port: port.clone(),
        state: read_state(ctx, port)?,
        enabled: port
            .enabled(ctx.sysctl)
            .map_err(sysctl_err(port, "enable"))?,
        watchdog_us: read_watchdog(ctx, port)?,
        owner: read_owner(ctx, port)?,
        caps: ctx.ifaces.caps(port.ifname.as_str()).ok(),
        link: ctx.ifaces.link(port.ifname.as_str()),
        counters: read_counters(ctx, port)?,
    })
}

/// Write `dev.<drv>.<unit>.tunnel.<leaf>`; EPERM becomes a "needs root" error.
/// Other errors are returned raw so that callers can give them meaning.
pub fn write(ctx: &Ctx, port: &Port, leaf: &str, value: i64) -> Result<()> {
    let n = port.leaf(leaf);
    match ctx.sysctl.set_int(&n, value) {
        Ok(()) => Ok(()),
        Err(SysctlError::PermissionDenied) => Err(CtlError::NotRoot {
            action: format!("writing {n}"),
        }),
        Err(e) => Err(CtlError::sysctl(&n, e)),
    }
}
