//! Safe netmap rings for FreeBSD 14 and the emtun tunnel engine.
//!
//! A [`Port`] binds every hardware and host ring of a NIC (`NR_REG_NIC_SW`).
//! Its rings are typed views that can only touch user-owned slots. The
//! [`Tunnel`] runs the data path of [`engine`]: claimed EtherTypes go to the
//! application, everything else is moved zero-copy between the NIC and the
//! kernel stack. [`mem`] is an in-memory port with the kernel's layout and
//! rules, so all of this runs and is tested on any OS.
//!
//! Ring ownership is enforced by the borrow checker. Frames and ring views
//! borrow the port, so a sync cannot run while user code still holds a slot:
//!
//! ```compile_fail
//! let (mut port, _nic) = netmap_user::mem::port(&Default::default());
//! let mut rings = port.rings();
//! let mut rx = rings.hw_rx.ring(0).unwrap();
//! let frame = rx.next();
//! port.rxsync().unwrap(); // error: `port` is still borrowed by `frame`
//! drop(frame);
//! ```
//!
//! and user code has no way to write `tail` or a slot outside `[head, tail)`:
//!
//! ```compile_fail
//! let (mut port, _nic) = netmap_user::mem::port(&Default::default());
//! let mut rings = port.rings();
//! rings.hw_rx.ring(0).unwrap().st.raw.set_tail(0); // error: private
//! ```
//!
//! The same sequence with the frame dropped first is fine:
//!
//! ```
//! let (mut port, nic) = netmap_user::mem::port(&Default::default());
//! nic.wire_send(0, &[0u8; 60]).unwrap();
//! port.rxsync().unwrap();
//! {
//!     let mut rings = port.rings();
//!     let mut rx = rings.hw_rx.ring(0).unwrap();
//!     assert_eq!(rx.next().unwrap().unwrap().len(), 60);
//! }
//! port.rxsync().unwrap();
//! ```
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
