//! emtun: one em(4) port shared by a netmap application and the FreeBSD
//! kernel TCP/IP stack.
//!
//! A [`Tunnel`] registers the port through netmap with the hardware and the
//! host rings ([`netmap_user::Port`]) and runs the data path of [`engine`]:
//! frames of the EtherTypes the application claims ([`ClaimSet`]) go to
//! the application zero-copy; every other frame moves between the hardware
//! rings and the host rings by swapping buffer indices, so the kernel's ARP,
//! ICMP, TCP and SSH keep working over the same port. Each round of the
//! loop syncs the rings, which is also the heartbeat the kernel agent's
//! watchdog (netmap_tun(4)) listens for.
//!
//! ```no_run
//! use emtun::{EtherType, PollMode, Tunnel, TunnelConfig};
//! # fn main() -> Result<(), emtun::Error> {
//! let cfg = TunnelConfig::default()
//!     .claim(EtherType(0x88b5))?
//!     .poll(PollMode::Interval(std::time::Duration::from_millis(1)));
//! let mut tun = Tunnel::open("em0", cfg)?; // NR_REG_NIC_SW | NR_EXCLUSIVE
//! let stop = emtun::signal::stop_on_signals();
//! match tun.run_until(stop, &mut |frame: &[u8]| { /* a claimed frame, zero-copy */ }) {
//!     Err(e) if e.is_revoked() => eprintln!("the kernel took the port back"),
//!     r => r?,
//! }
//! # Ok(()) }
//! ```
//!
//! The domain types here are the only definitions the tools use:
//! [`EtherType`] and the claim policy, [`PollMode`], [`agent`] (the
//! `dev.<driver>.<unit>.tunnel` node of the kernel agent: state, counters,
//! watchdog), [`duration`] (how periods are written), [`Stats`].

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod agent;
pub mod classify;
pub mod duration;
pub mod engine;
mod error;
mod poll;
pub mod signal;
mod stats;
pub mod supervise;
mod tunnel;

pub use classify::{ClaimError, ClaimSet, Class, EtherType};
pub use engine::{App, Engine, Sender};
pub use error::Error;
pub use netmap_user::{self, Frame, IfName};
pub use poll::{Pace, Pacer, PollMode};
pub use stats::{Drops, Stats};
pub use supervise::{run_supervised, Backoff, Event};
pub use tunnel::{Tunnel, TunnelConfig};
