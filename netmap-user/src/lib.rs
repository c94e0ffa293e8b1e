//! Safe netmap rings for FreeBSD 14.
//!
//! This crate is the netmap binding only: the FreeBSD 14 user ABI
//! (`sys/net/netmap.h`, API 14), a registered [`Port`] with typed ring
//! views, and, behind the `sim` feature, an in-memory port with the kernel's
//! layout and rules. The emtun tunnel (classification, the data path, the
//! kernel agent's sysctls) lives in the `emtun` crate on top of it.
//!
//! A [`Port`] binds every hardware and host ring of a NIC (`NR_REG_NIC_SW`,
//! netmap(4)). netmap's ownership rule is absolute: user space owns the
//! slots in `[head, tail)` of each ring, the kernel everything else. Here
//! that rule is structural: a ring view exists only while the port is
//! mutably borrowed, frames borrow the port, so no sync can run while user
//! code still holds a slot, and nothing outside the crate can write `tail`
//! or a slot outside `[head, tail)`. The module docs of `mem` (feature
//! `sim`) show both as programs that do not compile.
//!
//! Buffers cannot alias either: the port checks at every sync that each
//! buffer index it receives is held by no other user-owned slot, and a port
//! whose kernel broke that rule, or reset a ring, fails for good
//! ([`Error::DuplicateBuffer`], [`Error::RingReinit`]).
//!
//! Two small OS modules sit beside the binding because every tool needs
//! them and each must exist once: [`sysctl`] (sysctl(3)) and [`ifnet`]
//! (getifaddrs(3), if_nametoindex(3)).
//!
//! Unsafe code lives in `ring` (ring and buffer memory), `region` (the
//! `netmap_if` and the in-memory block), `kernel` (the netmap syscalls),
//! `sysctl` and `ifnet`; each block says why it is sound in a `// SAFETY:`
//! line.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod ffi;
mod ifname;
pub mod ifnet;
mod kernel;
#[cfg(feature = "sim")]
pub mod mem;
mod owners;
mod port;
mod region;
mod ring;
pub mod sysctl;

pub use error::{Error, RingId};
pub use ifname::IfName;
pub use kernel::Kernel;
pub use port::{Backend, Port, RingCounts, Rings, RxSet, TxSet};
pub use ring::{Frame, MoveError, RxRing, SendError, SlotError, TxRing, TxSlot};

/// The netmap API version this crate speaks (`NETMAP_API` of FreeBSD 14).
pub const NETMAP_API: u16 = ffi::NETMAP_API;
