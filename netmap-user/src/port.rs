//! A registered netmap port: its rings and the syncs that hand slots back and
//! forth between user space and the kernel.

use core::ptr::NonNull;
use std::io;
use std::time::Duration;

use crate::error::{Error, RingId};
use crate::ffi::NR_FORWARD;
use crate::owners::Owners;
use crate::region::Layout;
use crate::ring::{RingState, RxRing, TxRing};

mod sealed {
    pub trait Sealed {}
}

/// What carries a port's syncs: the FreeBSD kernel ([`crate::Kernel`]) or,
/// with the `sim` feature, the in-memory port (`mem::Mem`). Sealed: the
/// ring invariants depend on the backend honouring netmap's rules.
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

/// Ring counts of a port (`nr_tx_rings`, `nr_host_tx_rings`, ... of
/// `struct nmreq_register`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingCounts {
    /// Hardware TX rings (NIC TX queues).
    pub hw_tx: usize,
    /// Host TX rings (user space to the kernel stack).
    pub host_tx: usize,
    /// Hardware RX rings (NIC RX queues).
    pub hw_rx: usize,
    /// Host RX rings (the kernel stack's transmissions).
    pub host_rx: usize,
}

/// Why a port stopped working; kept so that every later call says so.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Revoked,
    Reinit(RingId),
    Duplicate(RingId, u32),
}

impl Fault {
    fn error(self) -> Error {
        match self {
            Fault::Revoked => Error::Revoked,
            Fault::Reinit(r) => Error::RingReinit(r),
            Fault::Duplicate(ring, buf_idx) => Error::DuplicateBuffer { ring, buf_idx },
        }
    }
}

/// A netmap port bound to all hardware and host rings (`NR_REG_NIC_SW`).
///
/// After a fatal error ([`Error::is_fatal`]) every ring view is empty and
/// every call returns that error again; drop the port to release it.
pub struct Port<B: Backend> {
    /// hw TX, host TX, hw RX, host RX: netmap's own order.
    rings: Vec<RingState>,
    counts: RingCounts,
    name: String,
    owners: Owners,
    fault: Option<Fault>,
    backend: B,
}

/// Mutable views of all rings of a port, valid until the next sync.
pub struct Rings<'p> {
    /// Hardware TX rings.
    pub hw_tx: TxSet<'p>,
    /// Host TX rings: frames for the kernel stack.
    pub host_tx: TxSet<'p>,
    /// Hardware RX rings.
    pub hw_rx: RxSet<'p>,
    /// Host RX rings: frames the kernel stack sent.
    pub host_rx: RxSet<'p>,
}

/// The receive rings of one kind (hardware or host).
pub struct RxSet<'p>(&'p mut [RingState]);
/// The transmit rings of one kind (hardware or host).
pub struct TxSet<'p>(&'p mut [RingState]);

impl RxSet<'_> {
    /// Number of rings.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the set has no ring.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A view of ring `i`, or `None` past the last ring.
    pub fn ring(&mut self, i: usize) -> Option<RxRing<'_>> {
        self.0.get_mut(i).map(RxRing::new)
    }
    /// Frames waiting across all rings of the set.
    pub fn pending(&self) -> usize {
        self.0.iter().map(RingState::user_slots).sum()
    }
}

impl TxSet<'_> {
    /// Number of rings.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the set has no ring.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A view of ring `i`, or `None` past the last ring.
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
        let rings: Vec<RingState> = l
            .hw_tx
            .into_iter()
            .chain(l.host_tx)
            .chain(l.hw_rx)
            .chain(l.host_rx)
            .map(RingState::new)
            .collect();
        let nbufs = rings.iter().map(|r| r.raw.nbufs()).max().unwrap_or(0);
        let mut port = Port {
            rings,
            counts,
            name: name.to_string(),
            owners: Owners::new(nbufs),
            fault: None,
            backend,
        };
        for k in 0..port.rings.len() {
            let (from, to) = (port.rings[k].head, port.rings[k].tail);
            port.take_granted(k, from, to)?;
        }
        Ok(port)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many rings of each kind the port has.
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
    /// and takes back completed slots (`NIOCTXSYNC`).
    ///
    /// # Errors
    /// [`Error::Revoked`] once the kernel revoked the registration;
    /// [`Error::RingReinit`] or [`Error::DuplicateBuffer`] when the kernel
    /// left a ring in a state user space must not follow (the port is then
    /// unusable); [`Error::Io`] for any other errno.
    pub fn txsync(&mut self) -> Result<(), Error> {
        self.check()?;
        self.publish();
        let r = self.backend.txsync();
        self.after_sync(r)
    }

    /// Returns consumed RX slots to the kernel and picks up new frames
    /// (`NIOCRXSYNC`).
    ///
    /// # Errors
    /// As [`Port::txsync`].
    pub fn rxsync(&mut self) -> Result<(), Error> {
        self.check()?;
        self.publish();
        let r = self.backend.rxsync();
        self.after_sync(r)
    }

    /// Sleeps in `poll(2)` until a ring has work or `timeout` passes (`None`:
    /// no limit). netmap's poll syncs the rings it reports, so this is also
    /// a sync.
    ///
    /// # Errors
    /// As [`Port::txsync`]; `POLLERR` is [`Error::Revoked`].
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.check()?;
        self.publish();
        match self.backend.wait(timeout) {
            Ok(true) => self.after_sync(Ok(())),
            Ok(false) => {
                self.fail(Fault::Revoked);
                Err(Error::Revoked)
            }
            Err(e) => self.after_sync(Err(e)),
        }
    }

    fn check(&self) -> Result<(), Error> {
        self.fault.map_or(Ok(()), |f| Err(f.error()))
    }

    /// Publishes our heads and cursors; the buffers of the slots released
    /// since the last sync leave the ledger.
    fn publish(&mut self) {
        for st in &mut self.rings {
            let n = st.raw.num_slots();
            let mut i = st.published;
            while i != st.head {
                self.owners.release(st.raw.slot(i).buf_idx);
                i = if i + 1 == n { 0 } else { i + 1 };
            }
            st.published = st.head;
            st.publish();
        }
    }

    /// Enters the buffers of slots `[from, to)` of ring `k`, which the
    /// kernel just granted, into the ledger.
    fn take_granted(&mut self, k: usize, from: u32, to: u32) -> Result<(), Error> {
        let raw = self.rings[k].raw;
        let n = raw.num_slots();
        let mut i = from;
        while i != to {
            let idx = raw.slot(i).buf_idx;
            if !self.owners.take(idx) {
                let f = Fault::Duplicate(self.ring_id(k), idx);
                self.fail(f);
                return Err(f.error());
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        Ok(())
    }

    /// The port is dead: no view shows a slot any more.
    fn fail(&mut self, f: Fault) {
        self.fault = Some(f);
        for st in &mut self.rings {
            st.tail = st.head;
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
            if e.raw_os_error() == Some(libc::EIO) {
                self.fail(Fault::Revoked);
                return Err(Error::Revoked);
            }
            return Err(Error::io("netmap sync", e));
        }
        for k in 0..self.rings.len() {
            let st = &self.rings[k];
            let n = st.raw.num_slots();
            let (head, tail) = (st.raw.head(), st.raw.tail());
            // tail only moves forward, and never onto head (netmap keeps one
            // slot empty): anything else is a ring the kernel reset.
            let (old, room) = (st.tail, (st.head + n - 1 - st.tail) % n);
            if head != st.head
                || st.raw.cur() != st.head
                || tail >= n
                || (tail + n - old) % n > room
            {
                let f = Fault::Reinit(self.ring_id(k));
                self.fail(f);
                return Err(f.error());
            }
            self.take_granted(k, old, tail)?;
            self.rings[k].tail = tail;
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
