//! Errors with their exit codes: 1 runtime, 2 usage (clap also exits 2).

use emtun::netmap_user::sysctl::SysctlError;
use std::fmt;
use std::io;
use thiserror::Error;

/// Exit code for runtime errors.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code for usage errors (same as clap's).
pub const EXIT_USAGE: u8 = 2;

/// The process holding a tunnel registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub name: Option<String>,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name.as_deref() {
            Some(n) => write!(f, "pid {} ({n})", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

#[derive(Debug, Error)]
pub enum CtlError {
    #[error("this command needs FreeBSD with the emtun kernel (dev.em.N.tunnel sysctls); this system is {0}")]
    NeedsFreeBsd(&'static str),

    #[error("{action} needs root privileges; run it as root")]
    NotRoot { action: String },

    #[error("no such interface: {0}")]
    NoSuchInterface(String),

    #[error("{name} is a {prefix}(4) interface; emtun supports only em(4) and igb(4) interfaces")]
    NotEmIgb { name: String, prefix: String },

    #[error("{iface}: no {node} sysctl node: this kernel lacks the emtun patch (see emtunctl(8))")]
    NotPatched { iface: String, node: String },

    #[error("{iface}: no {node} sysctl node; emtunctl needs the driver's own name (emN/igbN) for the interface")]
    NoDeviceNode { iface: String, node: String },

    #[error("no em(4) or igb(4) interfaces on this system")]
    NoPorts,

    #[error("{iface} is already tunneled by {owner}")]
    TunneledByOther { iface: String, owner: Owner },

    #[error("{iface} is not armed; arm it first with `emtunctl arm {iface}`")]
    NotArmed { iface: String },

    #[error("{iface} is not tunneled (state: {state}); there is nothing to revoke")]
    NotTunneled { iface: String, state: String },

    #[error("{iface}: offloads {names} are enabled and break tunneled host traffic; turn them off with `ifconfig {iface} {flags}`, {hint}")]
    OffloadsOn {
        iface: String,
        names: String,
        flags: String,
        /// What else the user can do.
        hint: String,
    },

    #[error(
        "{iface}: the kernel refused to arm (EOPNOTSUPP) because offloads are enabled: {names}"
    )]
    KernelRefusedOffloads { iface: String, names: String },

    #[error("{iface}: could not turn off offloads {names}: {detail}")]
    OffloadFix {
        iface: String,
        names: String,
        detail: String,
    },

    #[error("{what}: out of range: {detail}")]
    OutOfRange { what: String, detail: String },

    #[error("sysctl {name}: {source}")]
    Sysctl {
        name: String,
        #[source]
        source: SysctlError,
    },

    #[error("{iface}: {op}: {source}")]
    Ioctl {
        iface: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("{iface}: the kernel revoked the tunnel ({cause}); the port is back in default mode")]
    Revoked { iface: String, cause: String },

    #[error("{0}")]
    Tunnel(String),

    #[error("{0}")]
    Usage(String),

    #[error("output: {0}")]
    Output(#[from] io::Error),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }

    /// A sysctl failure on `name`.
    pub fn sysctl(name: &str, source: SysctlError) -> Self {
        CtlError::Sysctl {
            name: name.to_string(),
            source,
        }
    }

    /// True for a write to a closed pipe (`emtunctl status | head`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CtlError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

pub type Result<T> = std::result::Result<T, CtlError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(CtlError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CtlError::NoSuchInterface("em9".into()).exit_code(), 1);
        assert_eq!(CtlError::NeedsFreeBsd("linux").exit_code(), 1);
        assert_eq!(
            CtlError::Revoked {
                iface: "em0".into(),
                cause: "watchdog".into()
            }
            .exit_code(),
            1
        );
    }

    #[test]
    fn owner_display() {
        let o = Owner {
            pid: 42,
            name: Some("fwd".into()),
        };
        assert_eq!(o.to_string(), "pid 42 (fwd)");
        assert_eq!(Owner { pid: 7, name: None }.to_string(), "pid 7");
    }

    #[test]
    fn broken_pipe_is_detected() {
        assert!(CtlError::Output(io::Error::from(io::ErrorKind::BrokenPipe)).is_broken_pipe());
        assert!(!CtlError::Output(io::Error::from(io::ErrorKind::Other)).is_broken_pipe());
    }
}
