//! The errors a netmap port reports, each saying what to do about it.

use std::{fmt, io};

/// Identifies one ring of a port, in netmap's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingId {
    HwTx(u16),
    HostTx(u16),
    HwRx(u16),
    HostRx(u16),
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingId::HwTx(i) => write!(f, "hw TX {i}"),
            RingId::HostTx(i) => write!(f, "host TX {i}"),
            RingId::HwRx(i) => write!(f, "hw RX {i}"),
            RingId::HostRx(i) => write!(f, "host RX {i}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "netmap is not available: /dev/netmap does not exist (kernel without `device netmap`)"
    )]
    NoNetmap,
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    #[error("invalid interface name {0:?} (1 to 15 bytes, no NUL)")]
    BadName(String),
    #[error("{0} is not an em(4) or igb(4) interface; emtun tunnels only em ports")]
    NotEm(String),
    #[error("{0} is already registered with netmap by another process (exclusive registration)")]
    Busy(String),
    #[error("permission denied for {0}: netmap registration needs root")]
    PermissionDenied(String),
    #[error("the kernel rejected netmap API {ours} (this library speaks FreeBSD 14's API {ours})")]
    ApiMismatch { ours: u16 },
    #[error("sysctl dev.netmap.fwd is set: the kernel would also pass every released RX slot to the host stack, duplicating claimed frames; set dev.netmap.fwd=0")]
    KernelForwarding,
    #[error("the kernel revoked the netmap registration (watchdog or administrator); the port is back in default mode")]
    Revoked,
    #[error("the kernel reset {0} (ring reinit): the ring pointers were inconsistent; the port was released")]
    RingReinit(RingId),
    #[error("corrupt netmap memory layout: {0}")]
    Layout(String),
    #[error("netmap ports need FreeBSD; on this system only the in-memory port (netmap_user::mem) works")]
    Unsupported,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Error {
    pub(crate) fn io(op: &str, e: io::Error) -> Error {
        Error::Io(io::Error::new(e.kind(), format!("{op}: {e}")))
    }
}
