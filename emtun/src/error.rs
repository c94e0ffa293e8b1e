//! What can go wrong with a tunnel, each saying what to do about it.

use netmap_user::IfName;

/// A tunnel error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The netmap port failed: see [`netmap_user::Error`].
    #[error(transparent)]
    Netmap(#[from] netmap_user::Error),
    /// emtun tunnels only em(4)/igb(4) ports, whose driver carries the
    /// kernel agent.
    #[error("{0} is not an em(4) or igb(4) interface; emtun tunnels only em ports")]
    NotEm(IfName),
    /// `dev.netmap.fwd=1` would also pass every released RX slot to the
    /// host stack, duplicating claimed frames.
    #[error("sysctl dev.netmap.fwd is set: the kernel would also pass every released RX slot to the host stack, duplicating claimed frames; set dev.netmap.fwd=0")]
    KernelForwarding,
    /// netmap registered the port, but the kernel agent does not report it
    /// as tunneled by this process, so no watchdog protects the kernel path
    /// (for example netmap's emulated adapter, `dev.netmap.admode=2`, or a
    /// kernel without the emtun patch). The registration was released.
    #[error("{iface}: netmap registered the port, but the kernel agent reports state `{state}` and owner pid {owner} instead of `tunneled` by pid {me}: no watchdog would protect the kernel path ({hint}); the port was released")]
    Unprotected {
        /// The interface.
        iface: IfName,
        /// `dev.<drv>.<unit>.tunnel.state` as read after registering.
        state: String,
        /// `owner_pid` as read.
        owner: i64,
        /// Our pid.
        me: u32,
        /// What usually causes it.
        hint: &'static str,
    },
    /// The interface's MTU makes frames larger than a tunnel carries: one
    /// netmap buffer (`dev.netmap.buf_size`) and one NIC receive buffer
    /// (at most 4096 bytes on iflib drivers), because netmap's host rings
    /// carry no `NS_MOREFRAG` chains (netmap_tun(4), "Reconfiguration
    /// while tunneled").
    #[error("{iface}: MTU {mtu} makes frames of up to {frame} bytes, but a tunnel carries only frames that fit one netmap buffer ({buf_size} bytes, dev.netmap.buf_size) and one NIC receive buffer (4096 bytes): {fix}")]
    MtuTooLarge {
        /// The interface.
        iface: IfName,
        /// Its MTU.
        mtu: u32,
        /// MTU + Ethernet header + one VLAN tag.
        frame: u32,
        /// `dev.netmap.buf_size`.
        buf_size: u32,
        /// What to do.
        fix: String,
    },
    /// A supervised run gave up after this many failed opens in a row.
    #[error("gave up after {failures} failed attempts to open the port again; the last: {last}")]
    GaveUp {
        /// Failed opens in a row.
        failures: u32,
        /// The last open's error.
        last: Box<Error>,
    },
    /// A claim the policy refuses: see [`crate::ClaimError`].
    #[error(transparent)]
    Claim(#[from] crate::ClaimError),
}

impl Error {
    /// The kernel revoked the registration (watchdog or administrator).
    pub fn is_revoked(&self) -> bool {
        matches!(self, Error::Netmap(netmap_user::Error::Revoked))
    }

    /// The tunnel can no longer run on its port: revoked, or the kernel
    /// broke a ring rule ([`netmap_user::Error::is_fatal`]).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Netmap(e) if e.is_fatal())
    }
}
