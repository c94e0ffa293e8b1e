//! Safe netmap rings for FreeBSD 14 and the emtun tunnel engine.
//!
//! A [`Port`] binds every hardware and host ring of a NIC (`NR_REG_NIC_SW`).
//! Its rings are typed views that can only touch user-owned slots. The
//! [`Tunnel`] runs the data path of [`engine`]: claimed EtherTypes go to the
//! application, everything else is moved zero-copy between the NIC and the
//! kernel stack. [`mem`] is an in-memory port with the kernel's layout and
//! rules, so all of this runs and is tested on any OS.
//!
//! Unsafe code lives in `ring` (ring and buffer memory), `region` (the
//! netmap_if and the in-memory block), `sys` (syscalls) and `signal`.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod classify;
pub mod engine;
mod error;
mod ffi;
pub mod mem;
mod port;
mod region;
mod ring;
pub mod signal;
mod stats;
mod sys;
mod tunnel;

pub use classify::{ClaimSet, Class, EtherType};
pub use engine::{App, Engine, Sender};
pub use error::{Error, RingId};
pub use port::{Backend, Port, RingCounts, Rings, RxSet, TxSet};
pub use ring::{Frame, MoveError, RxRing, SendError, SlotError, TxRing, TxSlot};
pub use stats::{Drops, Stats};
pub use sys::{hw_addr, Kernel};
pub use tunnel::{is_em_name, PollMode, Tunnel, TunnelConfig};

/// The netmap API version this crate speaks (FreeBSD 14).
pub const NETMAP_API: u16 = ffi::NETMAP_API;
