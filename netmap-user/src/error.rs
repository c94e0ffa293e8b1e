//! The errors a netmap port reports, each saying what to do about it.

use std::{fmt, io};

/// One ring of a port, in netmap's terms (`netmap_if` ring order: hardware
/// TX, host TX, hardware RX, host RX; the index counts within its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingId {
    /// Hardware transmit ring `i` (a NIC TX queue).
    HwTx(u16),
    /// Host transmit ring `i`: frames user space hands to the kernel stack.
    HostTx(u16),
    /// Hardware receive ring `i` (a NIC RX queue).
    HwRx(u16),
    /// Host receive ring `i`: frames the kernel stack transmitted.
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

/// What went wrong with a netmap port.
///
/// The texts follow netmap(4) and the errno values of FreeBSD 14's
/// `NIOCCTRL`, `NIOC*SYNC` and `poll(2)` on `/dev/netmap`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `/dev/netmap` does not exist: the kernel lacks `device netmap`.
    #[error(
        "netmap is not available: /dev/netmap does not exist (kernel without `device netmap`)"
    )]
    NoNetmap,
    /// No interface of that name exists (`if_nametoindex(3)` failed, or the
    /// kernel answered `ENXIO`).
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    /// Not a valid interface name: see [`crate::IfName`].
    #[error("invalid interface name {0:?}: 1 to 15 bytes, no NUL and no '/'")]
    BadName(String),
    /// Another process holds an exclusive registration (`EBUSY`).
    #[error("{0} is already registered with netmap by another process (exclusive registration)")]
    Busy(String),
    /// Opening `/dev/netmap` or registering needs root (`EACCES`/`EPERM`).
    #[error("permission denied for {0}: netmap registration needs root")]
    PermissionDenied(String),
    /// The kernel refused the registration with `errno`. `reason` is the
    /// kernel's own explanation when it logged one (the last netmap line of
    /// the message buffer), never a guess.
    #[error("the kernel refused to register {iface} with netmap: {errno}{}",
        reason.as_ref().map(|r| format!("; kernel says: {r}")).unwrap_or_default())]
    Rejected {
        /// The interface.
        iface: String,
        /// The errno of `NIOCCTRL`.
        errno: io::Error,
        /// The kernel's message about it, if it logged one.
        reason: Option<String>,
    },
    /// The kernel revoked the registration (a sync failed with `EIO`, or
    /// `poll(2)` reported `POLLERR`). The NIC is back on the kernel path.
    #[error("the kernel revoked the netmap registration (watchdog or administrator); the port is back in default mode")]
    Revoked,
    /// The kernel reset a ring whose pointers it found inconsistent
    /// (`netmap_ring_reinit`). The port is unusable from then on.
    #[error("the kernel reset {0} (ring reinit): the ring pointers were inconsistent; the port can no longer be used")]
    RingReinit(RingId),
    /// The kernel handed out a buffer that another user-owned slot already
    /// holds. Reading one and writing the other would alias, so the port is
    /// unusable from then on.
    #[error("the kernel gave buffer {buf_idx} to {ring} while another user-owned slot holds it; the port can no longer be used")]
    DuplicateBuffer {
        /// The ring that received the duplicate.
        ring: RingId,
        /// The buffer index (`netmap_slot.buf_idx`).
        buf_idx: u32,
    },
    /// The shared memory does not have netmap's layout.
    #[error("corrupt netmap memory layout: {0}")]
    Layout(String),
    /// Real netmap ports need FreeBSD.
    #[error("netmap ports need FreeBSD; on this system only the in-memory port (netmap_user::mem) works")]
    Unsupported,
    /// Any other system call failure, with the call that failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Error {
    pub(crate) fn io(op: &str, e: io::Error) -> Error {
        Error::Io(io::Error::new(e.kind(), format!("{op}: {e}")))
    }

    /// The port can no longer be used and should be dropped: it was revoked,
    /// or its kernel broke the ring rules.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Revoked | Error::RingReinit(_) | Error::DuplicateBuffer { .. }
        )
    }
}
