//! Command-level tests against a fake kernel: an in-memory sysctl tree plus
//! in-memory interfaces, with the agent's write semantics (netmap_tun(4)).

use crate::cli::StatsFormat;
use crate::commands;
use crate::error::CtlError;
use crate::iface::mem::MemIfaces;
use crate::iface::{
    Caps, Ifaces, IFCAP_TSO4, IFCAP_TSO6, IFCAP_TXCSUM, IFCAP_TXCSUM_IPV6, IFCAP_VLAN_HWTAGGING,
};
use crate::ports::Ctx;
use crate::run;
use crate::watch::{self, Ticker};
use emtun::agent::{Node, COUNTER_NAMES};
use emtun::duration::Watchdog;
use emtun::netmap_user::ifnet::Link;
use emtun::netmap_user::sysctl::mem::{Access, MemSysctl, Val};
use emtun::netmap_user::sysctl::{Sysctl, SysctlError};
use emtun::{EtherType, IfName, PollMode as Poll};
use serde_json::Value;
use std::cell::Cell;
use std::time::Duration;

const IFCAP_RXCSUM: u32 = 0x1;
const IFCAP_VLAN_MTU: u32 = 0x8;
/// What an 82574 supports, roughly.
const SUPPORTED: u32 = IFCAP_RXCSUM
    | IFCAP_TXCSUM
    | IFCAP_VLAN_MTU
    | IFCAP_VLAN_HWTAGGING
    | IFCAP_TSO4
    | IFCAP_TSO6
    | IFCAP_TXCSUM_IPV6;

/// The emtun kernel, as far as emtunctl can see it.
struct FakeKernel {
    mem: MemSysctl,
    ifaces: MemIfaces,
    /// uid of the caller, as the kernel sees it.
    euid: Cell<u32>,
    wd_min: u64,
    wd_max: u64,
}

fn iface_of(node: &str) -> Option<(String, String)> {
    // dev.<drv>.<unit>.tunnel.<leaf...>
    let mut it = node.splitn(5, '.');
    let (dev, drv, unit, tun, leaf) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    (dev == "dev" && tun == "tunnel").then(|| (format!("dev.{drv}.{unit}.tunnel"), leaf.into()))
}

impl FakeKernel {
    fn new() -> Self {
        FakeKernel {
            mem: MemSysctl::new(),
            ifaces: MemIfaces::default(),
            euid: Cell::new(0),
            wd_min: 1_000,
            wd_max: 10_000_000,
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            sysctl: self,
            ifaces: &self.ifaces,
            euid: self.euid.get(),
        }
    }

    fn base(name: &str) -> String {
        Node::of(&IfName::new(name).unwrap()).unwrap().dev_node()
    }

    /// A patched port in default mode with the given enabled caps.
    fn add_port(&self, name: &str, enabled: u32) {
        self.ifaces.add(
            name,
            Caps {
                supported: SUPPORTED,
                enabled,
            },
            Link::Up,
        );
        let b = Self::base(name);
        let m = &self.mem;
        m.add(
            &format!("{b}.%desc"),
            Val::Str("Intel(R) PRO/1000".into()),
            Access::Ro,
        );
        m.add(&format!("{b}.tunnel.enable"), Val::Int(0), Access::Rw);
        m.add(
            &format!("{b}.tunnel.state"),
            Val::Str("default".into()),
            Access::Ro,
        );
        m.add(
            &format!("{b}.tunnel.watchdog_us"),
            Val::U64(10_000),
            Access::Rw,
        );
        m.add(&format!("{b}.tunnel.owner_pid"), Val::Int(0), Access::Ro);
        m.add(&format!("{b}.tunnel.revoke"), Val::Int(0), Access::Wo);
        for c in COUNTER_NAMES {
            m.add(&format!("{b}.tunnel.stats.{c}"), Val::U64(0), Access::Ro);
        }
        m.add(&format!("{b}.tunnel.stats.reset"), Val::Int(0), Access::Wo);
    }

    /// An em port on a kernel without the patch.
    fn add_unpatched(&self, name: &str) {
        self.ifaces.add(name, Caps::default(), Link::Up);
        self.mem.add(
            &format!("{}.%desc", Self::base(name)),
            Val::Str("Intel(R) PRO/1000".into()),
            Access::Ro,
        );
    }

    fn get(&self, name: &str, leaf: &str) -> Val {
        self.mem
            .value(&format!("{}.tunnel.{leaf}", Self::base(name)))
            .unwrap()
    }
    fn put(&self, name: &str, leaf: &str, v: Val) {
        self.mem
            .put(&format!("{}.tunnel.{leaf}", Self::base(name)), v);
    }
    fn state(&self, name: &str) -> String {
        match self.get(name, "state") {
            Val::Str(s) => s,
            v => panic!("{v:?}"),
        }
    }
    fn counter(&self, name: &str, c: &str) -> u64 {
        match self.get(name, &format!("stats.{c}")) {
            Val::U64(v) => v,
            v => panic!("{v:?}"),
        }
    }
    fn bump(&self, name: &str, c: &str, by: u64) {
        let v = self.counter(name, c) + by;
        self.put(name, &format!("stats.{c}"), Val::U64(v));
    }

    /// Arm directly (as root would have).
    fn arm(&self, name: &str) {
        self.put(name, "enable", Val::Int(1));
        self.put(name, "state", Val::Str("armed".into()));
    }

    /// A process registers the armed port.
    /// The owner closes its descriptor: `armed`, or `default` if disarmed.
    fn close(&self, name: &str) {
        let armed = self.get(name, "enable") == Val::Int(1);
        let state = if armed { "armed" } else { "default" };
        self.put(name, "state", Val::Str(state.into()));
        self.put(name, "owner_pid", Val::Int(0));
    }

    fn register(&self, name: &str, pid: i32, comm: &str) {
        self.arm(name);
        self.put(name, "state", Val::Str("tunneled".into()));
        self.put(name, "owner_pid", Val::Int(pid.into()));
        self.mem.set_proc(pid, comm);
        self.bump(name, "enter", 1);
    }

    fn write(&self, node: &str, value: i64) -> Result<(), SysctlError> {
        let Some((base, leaf)) = iface_of(node) else {
            return self.mem.set_int(node, value);
        };
        let state = match self.mem.value(&format!("{base}.state")) {
            Some(Val::Str(s)) => s,
            _ => return Err(SysctlError::NotFound),
        };
        let set = |l: &str, v: Val| self.mem.put(&format!("{base}.{l}"), v);
        let bump = |l: &str| {
            let n = format!("{base}.stats.{l}");
            if let Some(Val::U64(v)) = self.mem.value(&n) {
                self.mem.put(&n, Val::U64(v + 1));
            }
        };
        match leaf.as_str() {
            "enable" => match value {
                1 => {
                    // Refused while any of the five offloads is enabled.
                    let ifname = {
                        let mut p = base.split('.');
                        let (_, d, u) = (p.next(), p.next().unwrap_or(""), p.next().unwrap_or(""));
                        format!("{d}{u}")
                    };
                    let caps = self
                        .ifaces
                        .caps(&ifname)
                        .map_err(|_| SysctlError::Invalid)?;
                    if caps.bad() != 0 {
                        return Err(SysctlError::NotSupported);
                    }
                    set("enable", Val::Int(1));
                    if state == "default" {
                        set("state", Val::Str("armed".into()));
                    }
                    Ok(())
                }
                0 => {
                    // Like the agent: a live tunnel is revoked and stays
                    // `revoked`, owner kept, until its descriptor closes.
                    set("enable", Val::Int(0));
                    if state == "tunneled" {
                        bump("revoke_admin");
                        bump("exit");
                        set("state", Val::Str("revoked".into()));
                    } else if state != "revoked" {
                        set("state", Val::Str("default".into()));
                        set("owner_pid", Val::Int(0));
                    }
                    Ok(())
                }
                _ => Err(SysctlError::Invalid),
            },
            "watchdog_us" => {
                let v = u64::try_from(value).map_err(|_| SysctlError::Invalid)?;
                if v != 0 && (v < self.wd_min || v > self.wd_max) {
                    return Err(SysctlError::Invalid);
                }
                set("watchdog_us", Val::U64(v));
                Ok(())
            }
            "revoke" => {
                if value != 1 || state != "tunneled" {
                    return Err(SysctlError::Invalid);
                }
                bump("revoke_admin");
                bump("exit");
                set("state", Val::Str("revoked".into()));
                Ok(())
            }
            "stats.reset" => {
                for c in COUNTER_NAMES {
                    set(&format!("stats.{c}"), Val::U64(0));
                }
                Ok(())
            }
            _ => Err(SysctlError::PermissionDenied),
        }
    }
}

impl Sysctl for FakeKernel {
    fn get_str(&self, name: &str) -> Result<String, SysctlError> {
        self.mem.get_str(name)
    }
    fn get_bytes(&self, name: &str) -> Result<Vec<u8>, SysctlError> {
        self.mem.get_bytes(name)
    }
    fn get_int(&self, name: &str) -> Result<i64, SysctlError> {
        self.mem.get_int(name)
    }
    fn get_u64(&self, name: &str) -> Result<u64, SysctlError> {
        self.mem.get_u64(name)
    }
    fn set_int(&self, name: &str, value: i64) -> Result<(), SysctlError> {
        if self.euid.get() != 0 {
            return Err(SysctlError::PermissionDenied);
        }
        self.mem.check_write(name)?;
        self.write(name, value)
    }
    fn children(&self, name: &str) -> Result<Vec<String>, SysctlError> {
        self.mem.children(name)
    }
    fn exists(&self, name: &str) -> bool {
        self.mem.exists(name)
    }
    fn proc_name(&self, pid: i32) -> Option<String> {
        self.mem.proc_name(pid)
    }
}

fn text(buf: Vec<u8>) -> String {
    String::from_utf8(buf).unwrap()
}

fn run_status(
    k: &FakeKernel,
    iface: Option<&str>,
    json: bool,
) -> Result<(String, Vec<String>), CtlError> {
    let mut out = Vec::new();
    let notes = commands::status(&k.ctx(), iface, json, &mut out)?;
    Ok((text(out), notes))
}

fn arm(k: &FakeKernel, iface: &str, wd: Option<u64>, no_fix: bool) -> Result<String, CtlError> {
    let mut out = Vec::new();
    commands::arm(
        &k.ctx(),
        iface,
        wd.map(|us| Watchdog { us }),
        no_fix,
        &mut out,
    )?;
    Ok(text(out))
}

fn k_with_em0(caps: u32) -> FakeKernel {
    let k = FakeKernel::new();
    k.add_port("em0", caps);
    k
}

// ---- interface resolution errors ----

#[test]
fn missing_interface() {
    let k = k_with_em0(0);
    let e = run_status(&k, Some("em7"), false).unwrap_err();
    assert!(
        matches!(e, CtlError::NoSuchInterface(ref n) if n == "em7"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "no such interface: em7");
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn not_em_or_igb() {
    let k = k_with_em0(0);
    k.ifaces.add("vtnet0", Caps::default(), Link::Up);
    let e = arm(&k, "vtnet0", None, false).unwrap_err();
    assert!(matches!(e, CtlError::NotEmIgb { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("vtnet0 is a vtnet(4) interface"), "{msg}");
    assert!(msg.contains("only em(4) and igb(4)"), "{msg}");
}

#[test]
fn kernel_without_patch() {
    let k = FakeKernel::new();
    k.add_unpatched("em0");
    let e = run_status(&k, Some("em0"), false).unwrap_err();
    assert!(matches!(e, CtlError::NotPatched { .. }), "{e:?}");
    assert!(
        e.to_string().contains("no dev.em.0.tunnel sysctl node"),
        "{e}"
    );
    assert!(e.to_string().contains("lacks the emtun patch"), "{e}");
    // Listing every port says the same.
    let e = run_status(&k, None, false).unwrap_err();
    assert!(matches!(e, CtlError::NotPatched { .. }), "{e:?}");
    // And so do the writers.
    assert!(matches!(
        arm(&k, "em0", None, false),
        Err(CtlError::NotPatched { .. })
    ));
}

#[test]
fn renamed_interface_has_no_device_node() {
    let k = FakeKernel::new();
    k.ifaces.add("em5", Caps::default(), Link::Up);
    let e = run_status(&k, Some("em5"), false).unwrap_err();
    assert!(matches!(e, CtlError::NoDeviceNode { .. }), "{e:?}");
}

#[test]
fn no_ports_at_all() {
    let k = FakeKernel::new();
    assert!(matches!(
        run_status(&k, None, false),
        Err(CtlError::NoPorts)
    ));
}

// ---- status ----

#[test]
fn status_lists_every_port_with_notes_for_unpatched() {
    let k = FakeKernel::new();
    k.add_port("em0", 0);
    k.add_port("em1", IFCAP_TXCSUM | IFCAP_RXCSUM);
    k.add_unpatched("igb0");
    k.register("em0", 4242, "fwd");
    let (t, notes) = run_status(&k, None, false).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("IFACE"));
    assert!(
        lines[1].starts_with("em0 ")
            && lines[1].contains("tunneled")
            && lines[1].contains("pid 4242 (fwd)"),
        "{t}"
    );
    assert!(
        lines[2].starts_with("em1 ") && lines[2].contains("default") && lines[2].contains("txcsum"),
        "{t}"
    );
    assert!(!t.contains("igb0"));
    assert_eq!(notes.len(), 1);
    assert!(notes[0].starts_with("igb0: no tunnel sysctl node"));
}

#[test]
fn status_json_matches_kernel() {
    let k = FakeKernel::new();
    k.add_port("em0", IFCAP_TSO4);
    k.add_port("em2", 0);
    k.register("em2", 77, "pingpong");
    k.bump("em2", "host_in", 123);
    let (t, _) = run_status(&k, None, true).unwrap();
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["schema"], 1);
    let ifs = v["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 2);
    assert_eq!(ifs[0]["name"], "em0");
    assert_eq!(ifs[0]["state"], "default");
    assert_eq!(ifs[0]["enabled"], false);
    assert!(ifs[0]["owner"].is_null());
    assert_eq!(ifs[0]["offloads"]["tso4"], true);
    assert_eq!(ifs[0]["offloads"]["safe"], false);
    assert_eq!(ifs[1]["name"], "em2");
    assert_eq!(ifs[1]["unit"], 2);
    assert_eq!(ifs[1]["state"], "tunneled");
    assert_eq!(ifs[1]["enabled"], true);
    assert_eq!(ifs[1]["owner"]["pid"], 77);
    assert_eq!(ifs[1]["owner"]["name"], "pingpong");
    assert_eq!(ifs[1]["owner_pid"], 77);
    assert_eq!(ifs[0]["owner_pid"], 0);
    assert_eq!(ifs[1]["watchdog_us"], 10_000);
    assert_eq!(ifs[1]["stats"]["enter"], 1);
    assert_eq!(ifs[1]["stats"]["host_in"], 123);
    assert_eq!(ifs[1]["link"], "up");
    // A single interface has the same shape.
    let (t, _) = run_status(&k, Some("em2"), true).unwrap();
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["interfaces"].as_array().unwrap().len(), 1);
}

#[test]
fn status_needs_no_root() {
    let k = k_with_em0(0);
    k.euid.set(1001);
    assert!(run_status(&k, Some("em0"), false).is_ok());
}

// ---- arm ----

#[test]
fn arm_turns_offloads_off_and_says_which() {
    let k = k_with_em0(
        IFCAP_RXCSUM | IFCAP_TXCSUM | IFCAP_TSO4 | IFCAP_VLAN_HWTAGGING | IFCAP_VLAN_MTU,
    );
    let out = arm(&k, "em0", None, false).unwrap();
    assert!(
        out.contains("em0: turned off txcsum, tso4, vlanhwtag (they break tunneled host traffic); the NIC reinitialises"),
        "{out}"
    );
    // Exactly the bad ones are off; RXCSUM and VLAN_MTU stay.
    assert_eq!(k.ifaces.enabled("em0"), IFCAP_RXCSUM | IFCAP_VLAN_MTU);
    assert_eq!(k.get("em0", "enable"), Val::Int(1));
    assert_eq!(k.state("em0"), "armed");
    assert!(out.contains("em0: armed; watchdog 10ms"), "{out}");
}

#[test]
fn arm_all_five_offloads() {
    let k = k_with_em0(SUPPORTED);
    let out = arm(&k, "em0", None, false).unwrap();
    assert!(
        out.contains("turned off txcsum, txcsum6, tso4, tso6, vlanhwtag"),
        "{out}"
    );
    assert_eq!(
        k.ifaces.enabled("em0") & (IFCAP_TSO6 | IFCAP_TXCSUM_IPV6),
        0
    );
    assert_eq!(k.state("em0"), "armed");
}

#[test]
fn arm_clean_port_touches_nothing() {
    let k = k_with_em0(IFCAP_RXCSUM);
    let out = arm(&k, "em0", Some(5_000), false).unwrap();
    assert!(!out.contains("turned off"), "{out}");
    assert_eq!(k.get("em0", "watchdog_us"), Val::U64(5_000));
    assert!(out.contains("armed; watchdog 5ms"), "{out}");
}

#[test]
fn arm_no_offload_fix_refuses() {
    let k = k_with_em0(IFCAP_TXCSUM | IFCAP_TSO4);
    let e = arm(&k, "em0", None, true).unwrap_err();
    assert!(matches!(e, CtlError::OffloadsOn { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("offloads txcsum, tso4 are enabled"), "{msg}");
    assert!(msg.contains("ifconfig em0 -txcsum -tso4"), "{msg}");
    // Nothing changed.
    assert_eq!(k.ifaces.enabled("em0"), IFCAP_TXCSUM | IFCAP_TSO4);
    assert_eq!(k.state("em0"), "default");
}

#[test]
fn arm_fix_that_does_not_stick() {
    let k = k_with_em0(IFCAP_TXCSUM | IFCAP_TSO4);
    k.ifaces.set_sticky("em0", IFCAP_TSO4);
    let e = arm(&k, "em0", None, false).unwrap_err();
    assert!(matches!(e, CtlError::OffloadFix { .. }), "{e:?}");
    assert!(e.to_string().contains("the driver kept tso4 on"), "{e}");
    assert_eq!(k.state("em0"), "default");
}

#[test]
fn arm_kernel_eopnotsupp() {
    // E.g. an offload turned back on between our fix and the write.
    let k = k_with_em0(0);
    k.mem
        .fail_writes("dev.em.0.tunnel.enable", SysctlError::NotSupported);
    let e = arm(&k, "em0", None, false).unwrap_err();
    assert!(matches!(e, CtlError::KernelRefusedOffloads { .. }), "{e:?}");
    assert!(e.to_string().contains("EOPNOTSUPP"), "{e}");
}

#[test]
fn arm_needs_root_and_changes_nothing() {
    let k = k_with_em0(IFCAP_TXCSUM);
    k.euid.set(1001);
    let e = arm(&k, "em0", None, false).unwrap_err();
    assert!(matches!(e, CtlError::NotRoot { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "arm em0 needs root privileges; run it as root"
    );
    assert_eq!(k.ifaces.enabled("em0"), IFCAP_TXCSUM);
    assert_eq!(k.state("em0"), "default");
}

#[test]
fn kernel_eperm_reads_as_needs_root() {
    // uid 0 but the kernel still says EPERM (jail, securelevel).
    let k = k_with_em0(0);
    k.mem
        .fail_writes("dev.em.0.tunnel.enable", SysctlError::PermissionDenied);
    let e = arm(&k, "em0", None, false).unwrap_err();
    assert!(matches!(e, CtlError::NotRoot { .. }), "{e:?}");
    assert!(e.to_string().contains("dev.em.0.tunnel.enable"), "{e}");
}

#[test]
fn arm_watchdog_einval() {
    let mut k = k_with_em0(0);
    k.wd_max = 100_000; // a stricter kernel than the parser knows
    let e = arm(&k, "em0", Some(1_000_000), false).unwrap_err();
    assert!(matches!(e, CtlError::OutOfRange { .. }), "{e:?}");
    assert!(e.to_string().contains("watchdog 1s"), "{e}");
    assert!(e.to_string().contains("EINVAL"), "{e}");
    assert_eq!(k.state("em0"), "default");
}

#[test]
fn arm_while_tunneled_leaves_caps_alone() {
    let k = k_with_em0(0);
    k.register("em0", 4242, "fwd");
    k.ifaces.set_caps("em0", IFCAP_TXCSUM).unwrap(); // would be refused anyway
    let out = arm(&k, "em0", Some(20_000), false).unwrap();
    assert!(
        out.contains("already armed and tunneled by pid 4242 (fwd); watchdog 20ms"),
        "{out}"
    );
    assert_eq!(k.ifaces.enabled("em0"), IFCAP_TXCSUM);
    assert_eq!(k.state("em0"), "tunneled");
}

// ---- disarm / revoke / watchdog / stats ----

#[test]
fn disarm_tunneled_revokes_and_names_owner() {
    let k = k_with_em0(0);
    k.register("em0", 4242, "fwd");
    let mut out = Vec::new();
    commands::disarm(&k.ctx(), "em0", &mut out).unwrap();
    let out = text(out);
    assert!(
        out.contains("revoked the tunnel of pid 4242 (fwd) and disarmed; default once it closes the port (now revoked)"),
        "{out}"
    );
    assert_eq!(k.counter("em0", "revoke_admin"), 1);
    assert_eq!(k.get("em0", "enable"), Val::Int(0));
    assert_eq!(k.state("em0"), "revoked");
    k.close("em0");
    assert_eq!(k.state("em0"), "default");
    // Again: nothing to do, still success.
    let mut out = Vec::new();
    commands::disarm(&k.ctx(), "em0", &mut out).unwrap();
    assert!(text(out).contains("already disarmed"));
}

#[test]
fn disarm_armed() {
    let k = k_with_em0(0);
    k.arm("em0");
    let mut out = Vec::new();
    commands::disarm(&k.ctx(), "em0", &mut out).unwrap();
    assert_eq!(text(out), "em0: disarmed; now default\n");
    assert_eq!(k.counter("em0", "revoke_admin"), 0);
}

#[test]
fn revoke_requires_tunnel() {
    let k = k_with_em0(0);
    k.arm("em0");
    let mut out = Vec::new();
    let e = commands::revoke(&k.ctx(), "em0", &mut out).unwrap_err();
    assert!(matches!(e, CtlError::NotTunneled { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "em0 is not tunneled (state: armed); there is nothing to revoke"
    );
}

#[test]
fn revoke_tunneled() {
    let k = k_with_em0(0);
    k.register("em0", 99, "app");
    let mut out = Vec::new();
    commands::revoke(&k.ctx(), "em0", &mut out).unwrap();
    let out = text(out);
    assert!(
        out.contains("revoked the registration of pid 99 (app)"),
        "{out}"
    );
    assert!(out.contains("state: revoked"), "{out}");
    assert_eq!(k.counter("em0", "revoke_admin"), 1);
    assert_eq!(k.get("em0", "enable"), Val::Int(1)); // stays armed
}

#[test]
fn revoke_racing_with_exit_einval() {
    let k = k_with_em0(0);
    k.register("em0", 99, "app");
    k.mem
        .fail_writes("dev.em.0.tunnel.revoke", SysctlError::Invalid);
    let e = commands::revoke(&k.ctx(), "em0", &mut Vec::new()).unwrap_err();
    assert!(matches!(e, CtlError::NotTunneled { .. }), "{e:?}");
}

#[test]
fn revoke_needs_root() {
    let k = k_with_em0(0);
    k.register("em0", 99, "app");
    k.euid.set(5);
    let e = commands::revoke(&k.ctx(), "em0", &mut Vec::new()).unwrap_err();
    assert!(matches!(e, CtlError::NotRoot { .. }));
    assert_eq!(k.state("em0"), "tunneled");
}

#[test]
fn watchdog_set_and_off() {
    let k = k_with_em0(0);
    let mut out = Vec::new();
    commands::watchdog(&k.ctx(), "em0", Watchdog { us: 2_500 }, &mut out).unwrap();
    assert_eq!(text(out), "em0: watchdog 2.5ms (was 10ms)\n");
    let mut out = Vec::new();
    commands::watchdog(&k.ctx(), "em0", Watchdog { us: 0 }, &mut out).unwrap();
    assert_eq!(text(out), "em0: watchdog off (was 2.5ms)\n");
    assert_eq!(k.get("em0", "watchdog_us"), Val::U64(0));
}

#[test]
fn stats_and_reset() {
    let k = k_with_em0(0);
    k.register("em0", 1, "init");
    k.bump("em0", "host_out", 500);
    let mut out = Vec::new();
    commands::stats(&k.ctx(), "em0", true, StatsFormat::Text, &mut out).unwrap();
    let out = text(out);
    assert!(out.contains("host_out"), "{out}");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("host_out"))
        .unwrap();
    assert_eq!(line.split_whitespace().nth(1), Some("500"));
    assert!(out.ends_with("em0: counters reset\n"));
    assert_eq!(k.counter("em0", "host_out"), 0);
    assert_eq!(k.counter("em0", "enter"), 0);
}

#[test]
fn stats_reset_needs_root_but_reading_does_not() {
    let k = k_with_em0(0);
    k.bump("em0", "host_in", 3);
    k.euid.set(1000);
    let e = commands::stats(&k.ctx(), "em0", true, StatsFormat::Text, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, CtlError::NotRoot { .. }));
    assert_eq!(k.counter("em0", "host_in"), 3);
    let mut out = Vec::new();
    commands::stats(&k.ctx(), "em0", false, StatsFormat::Json, &mut out).unwrap();
    let v: Value = serde_json::from_str(&text(out)).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["name"], "em0");
    assert_eq!(v["stats"]["host_in"], 3);
}

// ---- watch ----

/// Advances fake time and lets the kernel counters move between ticks.
struct FakeTicker<'a> {
    k: &'a FakeKernel,
    now: Duration,
    ticks: u32,
    stop_after: Option<u32>,
}

impl Ticker for FakeTicker<'_> {
    fn wait(&mut self, interval: Duration) -> Option<Duration> {
        if self.stop_after == Some(self.ticks) {
            return None;
        }
        self.ticks += 1;
        self.now += interval;
        // 1000 packets/s in, 500/s out.
        let secs = interval.as_secs_f64();
        self.k.bump("em0", "host_in", (1000.0 * secs) as u64);
        self.k.bump("em0", "host_out", (500.0 * secs) as u64);
        if self.ticks == 2 {
            self.k.put(
                "em0",
                "stats.max_gap_us",
                emtun::netmap_user::sysctl::mem::Val::U64(3_000),
            );
        }
        Some(self.now)
    }
    fn now(&self) -> Duration {
        self.now
    }
}

#[test]
fn watch_prints_deltas_and_rates() {
    let k = k_with_em0(0);
    k.register("em0", 4242, "fwd");
    k.bump("em0", "host_in", 10_000);
    let mut t = FakeTicker {
        k: &k,
        now: Duration::ZERO,
        ticks: 0,
        stop_after: None,
    };
    let mut out = Vec::new();
    let n = watch::watch(
        &k.ctx(),
        "em0",
        Duration::from_millis(500),
        Some(3),
        &mut t,
        &mut out,
    )
    .unwrap();
    assert_eq!(n, 3);
    let out = text(out);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        out.starts_with("em0: tunneled by pid 4242 (fwd); every 500ms"),
        "{out}"
    );
    assert_eq!(lines[1][0], "TIME");
    // Totals first, then one line per tick.
    assert_eq!(lines[2][0], "total");
    assert_eq!(lines[2][6], "10000");
    assert_eq!(lines.len(), 6);
    for (i, l) in lines[3..].iter().enumerate() {
        assert_eq!(l[0], format!("{:.1}s", 0.5 * (i + 1) as f64));
        assert_eq!(l[1], "tunneled");
        assert_eq!(l[6], "+500", "{out}");
        assert_eq!(l[7], "1.0k", "{out}");
        assert_eq!(l[8], "+250");
        assert_eq!(l[9], "500");
    }
    assert_eq!(lines[3][12], "0");
    assert_eq!(lines[4][12], "3ms");
}

#[test]
fn watch_stops_on_signal() {
    let k = k_with_em0(0);
    let mut t = FakeTicker {
        k: &k,
        now: Duration::ZERO,
        ticks: 0,
        stop_after: Some(2),
    };
    let n = watch::watch(
        &k.ctx(),
        "em0",
        Duration::from_secs(1),
        None,
        &mut t,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn watch_missing_interface() {
    let k = k_with_em0(0);
    let mut t = FakeTicker {
        k: &k,
        now: Duration::ZERO,
        ticks: 0,
        stop_after: None,
    };
    let e = watch::watch(
        &k.ctx(),
        "em3",
        Duration::from_secs(1),
        Some(1),
        &mut t,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(e, CtlError::NoSuchInterface(_)));
}

// ---- run preflight ----

#[test]
fn run_refuses_unarmed_port() {
    let k = k_with_em0(0);
    let e = run::preflight(&k.ctx(), "em0", vec![], Poll::Busy).unwrap_err();
    assert!(matches!(e, CtlError::NotArmed { .. }), "{e:?}");
    assert!(e.to_string().contains("emtunctl arm em0"));
}

#[test]
fn run_names_the_other_owner() {
    let k = k_with_em0(0);
    k.register("em0", 31337, "pingpong");
    let e = run::preflight(&k.ctx(), "em0", vec![], Poll::Busy).unwrap_err();
    assert!(matches!(e, CtlError::TunneledByOther { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "em0 is already tunneled by pid 31337 (pingpong)"
    );
    // Also while revoked but the stalled fd is still open.
    k.put("em0", "state", Val::Str("revoked".into()));
    let e = run::preflight(&k.ctx(), "em0", vec![], Poll::Busy).unwrap_err();
    assert!(e.to_string().contains("pid 31337"), "{e}");
}

#[test]
fn run_refuses_offloads_turned_back_on() {
    let k = k_with_em0(0);
    k.arm("em0");
    k.ifaces.set_caps("em0", IFCAP_TSO4).unwrap();
    let e = run::preflight(&k.ctx(), "em0", vec![], Poll::Busy).unwrap_err();
    assert!(matches!(e, CtlError::OffloadsOn { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("ifconfig em0 -tso4"), "{msg}");
    assert!(msg.ends_with("or run `emtunctl arm em0` again"), "{msg}");
}

#[test]
fn run_needs_root() {
    let k = k_with_em0(0);
    k.arm("em0");
    k.euid.set(1000);
    let e = run::preflight(&k.ctx(), "em0", vec![], Poll::Busy).unwrap_err();
    assert_eq!(
        e.to_string(),
        "run em0 needs root privileges; run it as root"
    );
}

#[test]
fn run_sleeps_longer_than_the_watchdog_period_are_fine() {
    // netmap_tun(4) judges stalled work, not silence: an owner asleep in
    // poll(2) is woken by the first frame and never revoked for sleeping.
    let k = k_with_em0(0);
    k.arm("em0"); // watchdog 10ms
    for p in [
        Poll::Interval(Duration::from_millis(50)),
        Poll::Adaptive(Duration::from_micros(50)),
        Poll::Busy,
    ] {
        assert!(run::preflight(&k.ctx(), "em0", vec![], p).is_ok(), "{p}");
    }
}

#[test]
fn run_plan_dedups_claims_and_warns() {
    let k = k_with_em0(0);
    k.arm("em0");
    k.put("em0", "watchdog_us", Val::U64(0));
    let plan = run::preflight(
        &k.ctx(),
        "em0",
        vec![EtherType(0x88b5), EtherType(0x0800), EtherType(0x88b5)],
        Poll::Interval(Duration::from_secs(1)), // fine: watchdog off
    )
    .unwrap();
    assert_eq!(
        plan.claims.iter().collect::<Vec<_>>(),
        vec![EtherType(0x0800), EtherType(0x88b5)]
    );
    assert_eq!(plan.watchdog_us, 0);
    assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("IPv4"));
    assert!(plan.warnings[1].contains("watchdog is off"));
}

// ---- platform ----

#[cfg(not(target_os = "freebsd"))]
#[test]
fn other_systems_say_freebsd_is_needed() {
    let e = crate::app::platform().err().unwrap();
    assert!(matches!(e, CtlError::NeedsFreeBsd(_)));
    assert!(
        e.to_string()
            .starts_with("this command needs FreeBSD with the emtun kernel"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
}
