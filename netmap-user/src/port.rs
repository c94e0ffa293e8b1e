//! A registered netmap port: its rings and the syncs that hand slots back and
//! forth between user space and the kernel.

use core::ptr::NonNull;
use std::io;
use std::time::Duration;

use crate::error::{Error, RingId};
use crate::ffi::NR_FORWARD;
use crate::region::Layout;
use crate::ring::{RingState, RxRing, TxRing};

mod sealed {
    pub trait Sealed {}
}

/// What carries a port's syncs: the FreeBSD kernel ([`crate::Kernel`]) or the
/// in-memory port ([`crate::mem::Mem`]). Sealed: the ring invariants depend
/// on the backend honouring netmap's rules.
pub trait Backend: sealed::Sealed {
    #[doc(hidden)]
    fn txsync(&mut self) -> io::Result<()>;
    #[doc(hidden)]
    fn rxsync(&mut self) -> io::Result<()>;
    /// Blocks until a ring has work or `timeout` passes; `Ok(false)` on
    /// POLLERR (the registration was revoked).
    #[doc(hidden)]
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<bool>;
}

pub(crate) use sealed::Sealed;

/// Ring counts of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingCounts {
    pub hw_tx: usize,
    pub host_tx: usize,
    pub hw_rx: usize,
    pub host_rx: usize,
}

/// A netmap port bound to all hardware and host rings (`NR_REG_NIC_SW`).
pub struct Port<B: Backend> {
    /// hw TX, host TX, hw RX, host RX: netmap's own order.
    rings: Vec<RingState>,
    counts: RingCounts,
    name: String,
    backend: B,
}

/// Mutable views of all rings of a port, valid until the next sync.
pub struct Rings<'p> {
    pub hw_tx: TxSet<'p>,
    pub host_tx: TxSet<'p>,
    pub hw_rx: RxSet<'p>,
    pub host_rx: RxSet<'p>,
}

/// The receive rings of one kind (hardware or host).
pub struct RxSet<'p>(&'p mut [RingState]);
/// The transmit rings of one kind (hardware or host).
pub struct TxSet<'p>(&'p mut [RingState]);

impl RxSet<'_> {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn ring(&mut self, i: usize) -> Option<RxRing<'_>> {
        self.0.get_mut(i).map(RxRing::new)
    }
    /// Frames waiting across all rings of the set.
    pub fn pending(&self) -> usize {
        self.0.iter().map(RingState::user_slots).sum()
    }
}

impl TxSet<'_> {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn ring(&mut self, i: usize) -> Option<TxRing<'_>> {
        self.0.get_mut(i).map(TxRing::new)
    }
}

impl<B: Backend> Port<B> {
    /// Builds a port over a region its backend keeps mapped.
    ///
    /// # Safety
    /// `[base, base + len)` is mapped read-write for as long as `backend`
    /// lives, and the backend only touches it during its sync calls.
    pub(crate) unsafe fn from_region(
        backend: B,
        name: &str,
        base: NonNull<u8>,
        len: usize,
        nifp_off: usize,
    ) -> Result<Port<B>, Error> {
        // SAFETY: forwarded from our caller.
        let l = unsafe { Layout::parse(base, len, nifp_off) }
            .map_err(|e| Error::Layout(format!("{e:?}")))?;
        let counts = RingCounts {
            hw_tx: l.hw_tx.len(),
            host_tx: l.host_tx.len(),
            hw_rx: l.hw_rx.len(),
            host_rx: l.host_rx.len(),
        };
        if counts.hw_tx == 0 || counts.hw_rx == 0 {
            return Err(Error::Layout("port has no hardware rings".into()));
        }
        // NR_FORWARD would let the kernel pass released RX slots marked
        // NS_FORWARD to the host stack behind the engine's back.
        for r in l.hw_rx.iter().chain(&l.host_rx) {
            let f = r.flags();
            if f & NR_FORWARD != 0 {
                r.set_flags(f & !NR_FORWARD);
            }
        }
        let rings = l
            .hw_tx
            .into_iter()
            .chain(l.host_tx)
            .chain(l.hw_rx)
            .chain(l.host_rx)
            .map(RingState::new)
            .collect();
        Ok(Port {
            rings,
            counts,
            name: name.to_string(),
            backend,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn counts(&self) -> RingCounts {
        self.counts
    }

    /// Views of every ring. They borrow the port, so no sync can happen
    /// while any view or any [`crate::Frame`] taken from one is alive.
    pub fn rings(&mut self) -> Rings<'_> {
        let c = self.counts;
        let (hw_tx, rest) = self.rings.split_at_mut(c.hw_tx);
        let (host_tx, rest) = rest.split_at_mut(c.host_tx);
        let (hw_rx, host_rx) = rest.split_at_mut(c.hw_rx);
        Rings {
            hw_tx: TxSet(hw_tx),
            host_tx: TxSet(host_tx),
            hw_rx: RxSet(hw_rx),
            host_rx: RxSet(host_rx),
        }
    }

    /// Gives the kernel what we produced on every TX ring (hardware and host)
    /// and takes back completed slots.
    pub fn txsync(&mut self) -> Result<(), Error> {
        self.publish();
        let r = self.backend.txsync();
        self.after_sync(r)
    }

    /// Returns consumed RX slots to the kernel and picks up new frames.
    pub fn rxsync(&mut self) -> Result<(), Error> {
        self.publish();
        let r = self.backend.rxsync();
        self.after_sync(r)
    }

    /// Sleeps in poll(2) until a ring has work or `timeout` passes.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.publish();
        match self.backend.wait(timeout) {
            Ok(true) => self.after_sync(Ok(())),
            Ok(false) => Err(Error::Revoked),
            Err(e) => self.after_sync(Err(e)),
        }
    }

    fn publish(&self) {
        for st in &self.rings {
            st.publish();
        }
    }

    fn ring_id(&self, k: usize) -> RingId {
        let c = self.counts;
        let id = |i: usize| i as u16;
        if k < c.hw_tx {
            RingId::HwTx(id(k))
        } else if k < c.hw_tx + c.host_tx {
            RingId::HostTx(id(k - c.hw_tx))
        } else if k < c.hw_tx + c.host_tx + c.hw_rx {
            RingId::HwRx(id(k - c.hw_tx - c.host_tx))
        } else {
            RingId::HostRx(id(k - c.hw_tx - c.host_tx - c.hw_rx))
        }
    }

    /// Picks up the new `tail` of every ring. The kernel moves `head` only
    /// when it reinitialises a ring it found inconsistent: that is reported,
    /// never silently followed.
    fn after_sync(&mut self, r: io::Result<()>) -> Result<(), Error> {
        if let Err(e) = r {
            return Err(match e.raw_os_error() {
                Some(libc::EIO) => Error::Revoked,
                _ => Error::io("netmap sync", e),
            });
        }
        for k in 0..self.rings.len() {
            let st = &mut self.rings[k];
            let n = st.raw.num_slots();
            let (head, tail) = (st.raw.head(), st.raw.tail());
            if head != st.head || st.raw.cur() != st.head || tail >= n {
                return Err(Error::RingReinit(self.ring_id(k)));
            }
            st.tail = tail;
        }
        Ok(())
    }
}

impl RingState {
    fn user_slots(&self) -> usize {
        let n = self.raw.num_slots();
        ((self.tail + n - self.head) % n) as usize
    }
}
