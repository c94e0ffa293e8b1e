//! The kernel agent's view of a port: `dev.<driver>.<unit>.tunnel.*`
//! (netmap_tun(4)).
//!
//! em(4) and igb(4) share `if_em.c` and so the agent; every other driver has
//! no tunnel node. The agent's states are `default` (not armed), `armed`,
//! `tunneled` (a registration is live) and `revoked` (the watchdog or an
//! administrator took the port back; the owner's descriptor is still open).

use std::fmt;

use netmap_user::sysctl::{Sysctl, SysctlError};
use netmap_user::IfName;

/// The drivers that carry the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Driver {
    /// em(4): 8254x, 8257x, 8258x, i21x.
    Em,
    /// igb(4): 82575 and later.
    Igb,
}

impl Driver {
    /// Both drivers.
    pub const ALL: [Driver; 2] = [Driver::Em, Driver::Igb];

    /// `em` or `igb`.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Em => "em",
            Driver::Igb => "igb",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port's agent node: `dev.em.0.tunnel` for `em0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The interface.
    pub ifname: IfName,
    /// Its driver.
    pub driver: Driver,
    /// Its unit number.
    pub unit: u32,
}

/// `dev.<drv>.<unit>.tunnel.state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not armed: em(4) is an ordinary driver.
    Default,
    /// Armed: the first netmap registration of all rings makes it tunneled.
    Armed,
    /// A registration is live.
    Tunneled,
    /// Revoked; `armed` again when the owner closes its descriptor.
    Revoked,
    /// A state this version does not know.
    Other(String),
}

impl State {
    /// Parses the sysctl's text.
    pub fn parse(s: &str) -> State {
        match s.trim() {
            "default" => State::Default,
            "armed" => State::Armed,
            "tunneled" => State::Tunneled,
            "revoked" => State::Revoked,
            other => State::Other(other.to_string()),
        }
    }

    /// The sysctl's text.
    pub fn as_str(&self) -> &str {
        match self {
            State::Default => "default",
            State::Armed => "armed",
            State::Tunneled => "tunneled",
            State::Revoked => "revoked",
            State::Other(s) => s,
        }
    }

    /// A registration exists (live, or revoked but still open).
    pub fn has_owner(&self) -> bool {
        matches!(self, State::Tunneled | State::Revoked)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names of the `stats.*` leaves, in display and JSON order (netmap_tun(4)
/// "SYSCTL VARIABLES").
pub const COUNTER_NAMES: [&str; 11] = [
    "enter",
    "exit",
    "revoke_watchdog",
    "revoke_admin",
    "host_in",
    "host_out",
    "host_drop",
    "max_gap_us",
    "full_reset",
    "sleeps",
    "max_wait_us",
];

/// The first of [`COUNTER_NAMES`] that older kernels lack: those read as 0
/// there, so that status works across one kernel upgrade.
const FIRST_OPTIONAL: usize = 8;

/// `dev.<drv>.<unit>.tunnel.stats.*` (counter(9) values), indexed like
/// [`COUNTER_NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters(pub [u64; 11]);

impl Counters {
    /// Registrations that made the port tunneled.
    pub const ENTER: usize = 0;
    /// Returns to armed/default.
    pub const EXIT: usize = 1;
    /// Revocations by the watchdog.
    pub const REVOKE_WATCHDOG: usize = 2;
    /// Revocations by an administrator (`revoke=1`, `enable=0`).
    pub const REVOKE_ADMIN: usize = 3;
    /// Frames the kernel stack received through the host rings.
    pub const HOST_IN: usize = 4;
    /// Frames the kernel stack sent through the host rings.
    pub const HOST_OUT: usize = 5;
    /// Stack frames the host queue dropped.
    pub const HOST_DROP: usize = 6;
    /// The longest gap between two owner syncs, in microseconds: a
    /// maximum, not a monotonic counter.
    pub const MAX_GAP_US: usize = 7;
    /// Mode switches that fell back to a full NIC reset (issue "hitless").
    pub const FULL_RESET: usize = 8;
    /// Times the owner slept in `poll(2)` with the RX interrupts unmasked.
    pub const SLEEPS: usize = 9;
    /// The longest that work (frames the owner had not taken) waited for
    /// it, in microseconds, as the watchdog sampled it every period / 4: a
    /// maximum, not a monotonic counter.
    pub const MAX_WAIT_US: usize = 10;

    /// The value of counter `name` (one of [`COUNTER_NAMES`]).
    pub fn get(&self, name: &str) -> Option<u64> {
        COUNTER_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
    }
}

impl Node {
    /// The node of `ifname` when its driver carries the agent: `em` or
    /// `igb` followed by a unit number (see [`IfName::driver_unit`]).
    pub fn of(ifname: &IfName) -> Option<Node> {
        let (drv, unit) = ifname.driver_unit()?;
        let driver = Driver::ALL.into_iter().find(|d| d.as_str() == drv)?;
        Some(Node {
            ifname: ifname.clone(),
            driver,
            unit,
        })
    }

    /// `dev.em.0`.
    pub fn dev_node(&self) -> String {
        format!("dev.{}.{}", self.driver, self.unit)
    }

    /// `dev.em.0.tunnel`.
    pub fn tunnel_node(&self) -> String {
        format!("{}.tunnel", self.dev_node())
    }

    /// `dev.em.0.tunnel.<leaf>`.
    pub fn leaf(&self, leaf: &str) -> String {
        format!("{}.tunnel.{leaf}", self.dev_node())
    }

    /// The agent's state.
    ///
    /// # Errors
    /// [`SysctlError::NotFound`] on a kernel without the agent.
    pub fn state(&self, k: &dyn Sysctl) -> Result<State, SysctlError> {
        k.get_str(&self.leaf("state")).map(|s| State::parse(&s))
    }

    /// `owner_pid`: the registering process, 0 when none.
    ///
    /// # Errors
    /// As [`Node::state`].
    pub fn owner_pid(&self, k: &dyn Sysctl) -> Result<i64, SysctlError> {
        k.get_int(&self.leaf("owner_pid"))
    }

    /// `enable`: whether the port is armed.
    ///
    /// # Errors
    /// As [`Node::state`].
    pub fn enabled(&self, k: &dyn Sysctl) -> Result<bool, SysctlError> {
        k.get_int(&self.leaf("enable")).map(|v| v != 0)
    }

    /// `watchdog_us`: the period in microseconds, 0 = off.
    ///
    /// # Errors
    /// As [`Node::state`].
    pub fn watchdog_us(&self, k: &dyn Sysctl) -> Result<u64, SysctlError> {
        k.get_u64(&self.leaf("watchdog_us"))
    }

    /// Every counter.
    ///
    /// # Errors
    /// As [`Node::state`], for the first counter that cannot be read.
    pub fn counters(&self, k: &dyn Sysctl) -> Result<Counters, SysctlError> {
        let mut c = Counters::default();
        for (i, name) in COUNTER_NAMES.iter().enumerate() {
            c.0[i] = match k.get_u64(&self.leaf(&format!("stats.{name}"))) {
                Err(SysctlError::NotFound) if i >= FIRST_OPTIONAL => 0,
                r => r?,
            };
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn em_and_igb_ports_have_a_node_and_nothing_else_does() {
        let node = |s: &str| Node::of(&IfName::new(s).unwrap());
        assert_eq!(node("em0").unwrap().leaf("state"), "dev.em.0.tunnel.state");
        assert_eq!(node("igb12").unwrap().tunnel_node(), "dev.igb.12.tunnel");
        for other in ["em", "em01", "vtnet0", "lem0", "em0a", "igb"] {
            assert!(node(other).is_none(), "{other}");
        }
    }

    #[test]
    fn states_round_trip() {
        for s in ["default", "armed", "tunneled", "revoked"] {
            assert_eq!(State::parse(s).as_str(), s);
        }
        assert_eq!(State::parse("odd"), State::Other("odd".into()));
        assert!(State::Revoked.has_owner() && !State::Armed.has_owner());
    }
}
