//! An in-memory netmap port for tests and benchmarks on any OS (feature
//! `sim`).
//!
//! The region has the kernel's layout (`netmap_if`, rings, buffer pool) and
//! the kernel side follows netmap's rules: `nm_txsync_prologue` /
//! `nm_rxsync_prologue` bounds on `head`/`cur`, ring reinit on bad values,
//! `NS_BUF_CHANGED`, buffer validation, `NS_MOREFRAG` chains. At the far ends
//! sit a software NIC (the wire) and a host stack that inject and collect
//! frames. It also checks what the kernel cannot: that user space never
//! wrote a kernel-owned slot nor a frame still queued for transmission.
//!
//! Faults a buggy kernel could commit are injected with the `inject_*`
//! methods of [`MemNic`]; like the kernel, the simulator writes slots only
//! during a sync, so an injected fault can never change memory that user
//! code is looking at.
//!
//! Ring ownership is enforced by the borrow checker. A frame borrows the
//! port, so no sync can run while it is alive:
//!
//! ```compile_fail,E0499
//! let (mut port, _nic) = netmap_user::mem::port(&Default::default());
//! let mut rings = port.rings();
//! let mut rx = rings.hw_rx.ring(0).unwrap();
//! let frame = rx.next();
//! port.rxsync().unwrap(); // error[E0499]: `port` is still borrowed by `frame`
//! drop(frame);
//! ```
//!
//! and user code has no way to write `tail` or a slot outside `[head, tail)`:
//!
//! ```compile_fail,E0616
//! let (mut port, _nic) = netmap_user::mem::port(&Default::default());
//! let mut rings = port.rings();
//! rings.hw_rx.ring(0).unwrap().st.raw.set_tail(0); // error[E0616]: private field
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
//! A kernel that hands out a buffer some user-owned slot already holds is
//! caught at that sync, before any view can alias it:
//!
//! ```
//! use netmap_user::{mem, Error};
//! let (mut port, nic) = mem::port(&mem::MemConfig::default());
//! nic.wire_send(0, &[0xAA; 60]).unwrap();
//! nic.inject_rx_buf_idx(0, 0, 2); // buffer 2 belongs to the free hw TX slot 0
//! assert!(matches!(port.rxsync(), Err(Error::DuplicateBuffer { buf_idx: 2, .. })));
//! assert_eq!(port.rings().hw_rx.ring(0).unwrap().len(), 0);
//! assert!(port.txsync().is_err(), "the port stays failed");
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use crate::ffi::{NS_BUF_CHANGED, NS_MOREFRAG};
use crate::port::{Backend, Port, Sealed};
use crate::region::{Geometry, Layout, OwnedRegion};
use crate::ring::{RawRing, SlotInfo};

/// Shape and behaviour of an in-memory port.
#[derive(Debug, Clone)]
pub struct MemConfig {
    /// Hardware queue pairs (em: 1; the 82574: 2).
    pub hw_rings: usize,
    /// Host ring pairs (netmap default: 1).
    pub host_rings: usize,
    /// Slots per hardware ring (em: 1024 by default, `hw.em.rxd`).
    pub hw_slots: u32,
    /// Slots per host ring.
    pub host_slots: u32,
    /// Bytes per buffer (`dev.netmap.buf_size`, 2048 by default).
    pub buf_size: u32,
    /// Frames the NIC transmits per TX sync (None: all of them), to model a
    /// slow wire and so TX backpressure.
    pub tx_per_sync: Option<usize>,
    /// Frames the NIC buffers per RX ring when the ring is full; more are
    /// lost on the wire, like a NIC FIFO overrun.
    pub rx_fifo: usize,
    /// Benchmark mode: every buffer holds the same frame of this length;
    /// each RX sync refills the hardware RX rings completely without
    /// writing data, and transmitted frames are counted, not copied. It
    /// takes the simulated NIC out of the measurement.
    pub synthetic: Option<u16>,
}

impl Default for MemConfig {
    fn default() -> Self {
        MemConfig {
            hw_rings: 1,
            host_rings: 1,
            hw_slots: 1024,
            host_slots: 1024,
            buf_size: 2048,
            tx_per_sync: None,
            rx_fifo: usize::MAX,
            synthetic: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    HwTx,
    HostTx,
    HwRx,
    HostRx,
}

impl Kind {
    fn is_tx(self) -> bool {
        matches!(self, Kind::HwTx | Kind::HostTx)
    }
}

struct KRing {
    raw: RawRing,
    kind: Kind,
    index: usize,
    hwcur: u32,
    hwtail: u32,
    /// Kernel-owned slots as the kernel left them at the last sync.
    owned: Vec<(u32, SlotInfo)>,
    /// TX: slots handed to the "NIC" but not yet sent, with their bytes.
    posted: VecDeque<(u32, Vec<u8>, u16)>,
}

impl KRing {
    /// The kernel takes back the slots user space released, `[hwcur, head)`,
    /// acknowledging buffer changes (the driver reloads its DMA map here).
    fn take_back(&mut self, head: u32) {
        let n = self.raw.num_slots();
        let mut i = self.hwcur;
        while i != head {
            let mut s = self.raw.slot(i);
            s.flags &= !NS_BUF_CHANGED;
            self.raw.set_slot(i, s);
            i = nxt(i, n);
        }
        self.hwcur = head;
    }
}

/// What the simulated kernel observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemCounters {
    /// TX syncs served.
    pub txsyncs: u64,
    /// RX syncs served.
    pub rxsyncs: u64,
    /// poll(2) calls served.
    pub polls: u64,
    /// Rings reset because user space left inconsistent pointers or buffers.
    pub reinits: u64,
    /// Kernel-owned slots or queued TX bytes that user space modified.
    pub violations: u64,
    /// Frames lost because an RX ring and the NIC FIFO were full.
    pub nic_rx_drops: u64,
    /// Frames transmitted in benchmark mode (wire and stack).
    pub synthetic_tx: u64,
}

/// A fault the simulated kernel commits at a later sync.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Overwrite a field of the `k`-th frame the next RX syncs deliver on
    /// hardware RX ring `ring`.
    Rx { ring: usize, k: u32, set: SlotSet },
    /// Overwrite the `buf_idx` of the `k`-th slot released on hardware TX
    /// ring `ring`, when the next TX sync takes it.
    Tx { ring: usize, k: u32, buf_idx: u32 },
}

#[derive(Debug, Clone, Copy)]
enum SlotSet {
    BufIdx(u32),
    Len(u16),
}

struct Sim {
    faults: Vec<Fault>,
    region: OwnedRegion,
    rings: Vec<KRing>,
    cfg: MemConfig,
    wire_in: Vec<VecDeque<Vec<u8>>>,
    stack_in: Vec<VecDeque<Vec<u8>>>,
    wire_out: Vec<(usize, Vec<u8>)>,
    stack_out: Vec<(usize, Vec<u8>)>,
    revoked: bool,
    c: MemCounters,
}

/// The user-facing backend of an in-memory port.
pub struct Mem {
    sim: Rc<RefCell<Sim>>,
}

/// The far ends of an in-memory port: the wire behind the hardware rings and
/// the host stack behind the host rings.
#[derive(Clone)]
pub struct MemNic {
    sim: Rc<RefCell<Sim>>,
}

/// The next slot index; `%` would cost a division per slot.
fn nxt(i: u32, n: u32) -> u32 {
    if i + 1 == n {
        0
    } else {
        i + 1
    }
}

fn between(lo: u32, x: u32, hi: u32, n: u32) -> bool {
    // x in [lo, hi] going forward around a ring of n.
    (x + n - lo) % n <= (hi + n - lo) % n
}

/// Creates an in-memory port and the handle to its far ends.
pub fn port(cfg: &MemConfig) -> (Port<Mem>, MemNic) {
    let hw = vec![cfg.hw_slots; cfg.hw_rings];
    let host = vec![cfg.host_slots; cfg.host_rings];
    let g = Geometry {
        rings: [hw.clone(), host.clone(), hw, host],
        buf_size: cfg.buf_size,
    };
    let region = OwnedRegion::new(&g);
    // SAFETY: the region is owned by the Sim, which the port's backend keeps
    // alive through its Rc for as long as the port and its rings exist.
    let layout = unsafe { Layout::parse(region.base(), region.len(), region.nifp_off) };
    let layout = match layout {
        Ok(l) => l,
        Err(e) => panic!("in-memory layout must parse: {e:?}"),
    };
    let mut rings = Vec::new();
    let kinds = [
        (Kind::HwTx, &layout.hw_tx),
        (Kind::HostTx, &layout.host_tx),
        (Kind::HwRx, &layout.hw_rx),
        (Kind::HostRx, &layout.host_rx),
    ];
    for (kind, set) in kinds {
        for (index, raw) in set.iter().enumerate() {
            let n = raw.num_slots();
            let hwtail = if kind.is_tx() { n - 1 } else { 0 };
            raw.init_header(index as u16, u16::from(!kind.is_tx()));
            raw.set_head_cur(0);
            raw.set_tail(hwtail);
            rings.push(KRing {
                raw: *raw,
                kind,
                index,
                hwcur: 0,
                hwtail,
                owned: Vec::new(),
                posted: VecDeque::new(),
            });
        }
    }
    let (base, len, nifp_off) = (region.base(), region.len(), region.nifp_off);
    let mut sim = Sim {
        faults: Vec::new(),
        region,
        rings,
        wire_in: vec![VecDeque::new(); cfg.hw_rings],
        stack_in: vec![VecDeque::new(); cfg.host_rings],
        wire_out: Vec::new(),
        stack_out: Vec::new(),
        revoked: false,
        c: MemCounters::default(),
        cfg: cfg.clone(),
    };
    for k in 0..sim.rings.len() {
        sim.snapshot(k);
    }
    if let Some(len) = cfg.synthetic {
        let mut f = vec![0u8; usize::from(len)];
        f[..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        for r in &sim.rings {
            for i in 0..r.raw.num_slots() {
                r.raw.write_buf(r.raw.slot(i).buf_idx, &f);
            }
        }
    }
    let sim = Rc::new(RefCell::new(sim));
    // SAFETY: as above; the Sim only touches the region inside sync calls.
    let port = unsafe { Port::from_region(Mem { sim: sim.clone() }, "mem0", base, len, nifp_off) };
    match port {
        Ok(p) => (p, MemNic { sim }),
        Err(e) => panic!("in-memory port must open: {e}"),
    }
}

impl Sim {
    fn snapshot(&mut self, k: usize) {
        if self.cfg.synthetic.is_some() {
            return;
        }
        let r = &mut self.rings[k];
        let n = r.raw.num_slots();
        r.owned.clear();
        // Kernel-owned: everything outside [head, tail) = [hwtail, hwcur).
        let mut i = r.hwtail;
        while i != r.hwcur {
            r.owned.push((i, r.raw.slot(i)));
            i = nxt(i, n);
        }
    }

    fn check_owned(&mut self, k: usize) {
        let r = &self.rings[k];
        let mut bad = r.owned.iter().filter(|(i, s)| r.raw.slot(*i) != *s).count() as u64;
        for (i, bytes, _) in &r.posted {
            let s = r.raw.slot(*i);
            if r.raw.read_buf(s.buf_idx, bytes.len()).as_deref() != Some(bytes.as_slice()) {
                bad += 1;
            }
        }
        self.c.violations += bad;
    }

    fn reinit(&mut self, k: usize) {
        let r = &self.rings[k];
        r.raw.set_head_cur(r.hwcur);
        r.raw.set_tail(r.hwtail);
        self.c.reinits += 1;
    }

    fn slot_ok(raw: &RawRing, s: SlotInfo) -> bool {
        raw.valid_buf(s.buf_idx) && u32::from(s.len) <= raw.buf_size()
    }

    /// nm_{tx,rx}sync_prologue plus the driver's slot checks: returns the
    /// new `head`, or reinitialises the ring (as netmap_ring_reinit does)
    /// when user space left it inconsistent. Nothing is taken before
    /// everything was checked.
    fn prologue(&mut self, k: usize, slot_ok: fn(&RawRing, SlotInfo) -> bool) -> Option<u32> {
        self.check_owned(k);
        let r = &self.rings[k];
        let n = r.raw.num_slots();
        let (head, cur) = (r.raw.head(), r.raw.cur());
        let mut ok = head < n
            && cur < n
            && between(r.hwcur, head, r.hwtail, n)
            && between(head, cur, r.hwtail, n);
        let mut i = r.hwcur;
        while ok && i != head {
            ok = slot_ok(&r.raw, r.raw.slot(i));
            i = nxt(i, n);
        }
        if ok {
            Some(head)
        } else {
            self.reinit(k);
            None
        }
    }

    fn txsync_ring(&mut self, k: usize) {
        if self.rings[k].kind == Kind::HwTx {
            self.fault_tx(k);
        }
        let Some(head) = self.prologue(k, Self::slot_ok) else {
            return;
        };
        let r = &mut self.rings[k];
        let n = r.raw.num_slots();
        if self.cfg.synthetic.is_some() {
            let sent = (head + n - r.hwcur) % n;
            r.take_back(head);
            r.hwtail = (head + n - 1) % n;
            r.raw.set_tail(r.hwtail);
            self.c.synthetic_tx += u64::from(sent);
            return;
        }
        let mut i = r.hwcur;
        while i != head {
            let mut s = r.raw.slot(i);
            let bytes = r
                .raw
                .read_buf(s.buf_idx, s.len as usize)
                .unwrap_or_default();
            r.posted.push_back((i, bytes, s.flags));
            s.flags &= !NS_BUF_CHANGED;
            r.raw.set_slot(i, s);
            i = nxt(i, n);
        }
        r.hwcur = head;
        let budget = match r.kind {
            Kind::HwTx => self.cfg.tx_per_sync.unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        let out = if r.kind == Kind::HwTx {
            &mut self.wire_out
        } else {
            &mut self.stack_out
        };
        let mut frame = Vec::new();
        let mut sent = 0;
        while sent < budget {
            // A MOREFRAG chain leaves only once complete.
            let chain = r.posted.iter().position(|(_, _, f)| f & NS_MOREFRAG == 0);
            let Some(last) = chain else { break };
            for (_, bytes, _) in r.posted.drain(..=last) {
                frame.extend_from_slice(&bytes);
            }
            out.push((r.index, std::mem::take(&mut frame)));
            sent += 1;
        }
        let next_busy = r.posted.front().map_or(r.hwcur, |(i, _, _)| *i);
        r.hwtail = (next_busy + n - 1) % n;
        r.raw.set_tail(r.hwtail);
        self.snapshot(k);
    }

    fn rxsync_ring(&mut self, k: usize) {
        // Released RX slots only need a buffer; their length is the NIC's.
        let Some(head) = self.prologue(k, |raw, s| raw.valid_buf(s.buf_idx)) else {
            return;
        };
        let r = &mut self.rings[k];
        let n = r.raw.num_slots();
        r.take_back(head);
        if let (Some(len), Kind::HwRx) = (self.cfg.synthetic, r.kind) {
            while nxt(r.hwtail, n) != r.hwcur {
                let mut s = r.raw.slot(r.hwtail);
                s.len = len;
                s.flags = 0;
                r.raw.set_slot(r.hwtail, s);
                r.hwtail = nxt(r.hwtail, n);
            }
            r.raw.set_tail(r.hwtail);
            return;
        }
        let q = if r.kind == Kind::HwRx {
            &mut self.wire_in[r.index]
        } else {
            &mut self.stack_in[r.index]
        };
        // Frames longer than a buffer arrive as NS_MOREFRAG chains, and
        // only when the whole chain fits.
        let bs = r.raw.buf_size() as usize;
        let first_new = r.hwtail;
        while let Some(f) = q.front() {
            let need = f.len().div_ceil(bs).max(1) as u32;
            let free = (r.hwcur + n - r.hwtail - 1) % n;
            if need > free {
                break;
            }
            let chunks: Vec<&[u8]> = if f.is_empty() {
                vec![&f[..]]
            } else {
                f.chunks(bs).collect()
            };
            let last = chunks.len() - 1;
            for (c, part) in chunks.into_iter().enumerate() {
                let mut s = r.raw.slot(r.hwtail);
                r.raw.write_buf(s.buf_idx, part);
                s.len = part.len() as u16;
                s.flags = if c < last { NS_MOREFRAG } else { 0 };
                r.raw.set_slot(r.hwtail, s);
                r.hwtail = nxt(r.hwtail, n);
            }
            q.pop_front();
        }
        let (kind, index, delivered) = (r.kind, r.index, (r.hwtail + n - first_new) % n);
        if kind == Kind::HwRx {
            self.fault_rx(k, index, first_new, delivered);
        }
        let r = &mut self.rings[k];
        r.raw.set_tail(r.hwtail);
        self.snapshot(k);
    }

    /// Commits the pending RX faults that fall on the `delivered` slots from
    /// `first` of ring `k` (hardware RX `index`), as the NIC writes them.
    fn fault_rx(&mut self, k: usize, index: usize, first: u32, delivered: u32) {
        let raw = self.rings[k].raw;
        let n = raw.num_slots();
        self.faults.retain_mut(|f| match f {
            Fault::Rx { ring, k: nth, set } if *ring == index => {
                if *nth >= delivered {
                    *nth -= delivered;
                    return true;
                }
                let i = (first + *nth) % n;
                let mut slot = raw.slot(i);
                match *set {
                    SlotSet::BufIdx(b) => slot.buf_idx = b,
                    SlotSet::Len(l) => slot.len = l,
                }
                raw.set_slot(i, slot);
                false
            }
            _ => true,
        });
    }

    /// Commits the pending TX faults of ring `k` on slots user space
    /// released since the last TX sync, before the kernel looks at them.
    fn fault_tx(&mut self, k: usize) {
        let r = &self.rings[k];
        let (raw, index, hwcur, n) = (r.raw, r.index, r.hwcur, r.raw.num_slots());
        let released = (raw.head() + n - hwcur) % n;
        self.faults.retain(|f| match *f {
            Fault::Tx {
                ring,
                k: nth,
                buf_idx,
            } if ring == index && nth < released => {
                let i = (hwcur + nth) % n;
                let mut slot = raw.slot(i);
                slot.buf_idx = buf_idx;
                raw.set_slot(i, slot);
                false
            }
            _ => true,
        });
    }

    fn sync(&mut self, tx: bool) -> io::Result<()> {
        if self.revoked {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        for k in 0..self.rings.len() {
            if self.rings[k].kind.is_tx() == tx {
                if tx {
                    self.txsync_ring(k)
                } else {
                    self.rxsync_ring(k)
                }
            }
        }
        if tx {
            self.c.txsyncs += 1;
        } else {
            self.c.rxsyncs += 1;
        }
        Ok(())
    }
}

impl Sealed for Mem {}

impl Backend for Mem {
    fn txsync(&mut self) -> io::Result<()> {
        self.sim.borrow_mut().sync(true)
    }
    fn rxsync(&mut self) -> io::Result<()> {
        self.sim.borrow_mut().sync(false)
    }
    /// Like netmap_poll: syncs every ring; never sleeps (virtual time).
    fn wait(&mut self, _timeout: Option<Duration>) -> io::Result<bool> {
        let mut s = self.sim.borrow_mut();
        if s.revoked {
            return Ok(false);
        }
        s.c.polls += 1;
        s.sync(true)?;
        s.sync(false)?;
        Ok(true)
    }
}

/// Largest frame the far ends inject (jumbo); longer than a buffer means
/// an `NS_MOREFRAG` chain.
pub const MAX_FRAME: usize = 9018;

/// Why the NIC refused to inject a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectError {
    /// Longer than [`MAX_FRAME`].
    TooLong,
    /// The port has no such ring.
    NoSuchRing,
    /// The NIC FIFO in front of a full RX ring overflowed (counted in
    /// `nic_rx_drops`).
    FifoFull,
}

impl MemNic {
    /// A frame arrives from the wire on hardware RX ring `ring`; it shows up
    /// at the next RX sync.
    pub fn wire_send(&self, ring: usize, frame: &[u8]) -> Result<(), InjectError> {
        let mut s = self.sim.borrow_mut();
        if frame.len() > MAX_FRAME {
            return Err(InjectError::TooLong);
        }
        let fifo = s.cfg.rx_fifo;
        let Some(q) = s.wire_in.get_mut(ring) else {
            return Err(InjectError::NoSuchRing);
        };
        if q.len() >= fifo {
            s.c.nic_rx_drops += 1;
            return Err(InjectError::FifoFull);
        }
        q.push_back(frame.to_vec());
        Ok(())
    }

    /// The host stack transmits a frame (if_transmit into netmap's host queue).
    pub fn stack_send(&self, ring: usize, frame: &[u8]) -> Result<(), InjectError> {
        let mut s = self.sim.borrow_mut();
        if frame.len() > MAX_FRAME {
            return Err(InjectError::TooLong);
        }
        let Some(q) = s.stack_in.get_mut(ring) else {
            return Err(InjectError::NoSuchRing);
        };
        q.push_back(frame.to_vec());
        Ok(())
    }

    /// Frames the NIC put on the wire, with their TX ring, in order.
    pub fn wire_take(&self) -> Vec<(usize, Vec<u8>)> {
        std::mem::take(&mut self.sim.borrow_mut().wire_out)
    }

    /// Frames delivered to the host stack, with their host ring, in order.
    pub fn stack_take(&self) -> Vec<(usize, Vec<u8>)> {
        std::mem::take(&mut self.sim.borrow_mut().stack_out)
    }

    /// Frames still waiting outside the rings (NIC FIFO and host queue).
    pub fn queued(&self) -> usize {
        let s = self.sim.borrow();
        s.wire_in.iter().chain(&s.stack_in).map(VecDeque::len).sum()
    }

    /// The kernel revokes the registration: syncs fail with EIO, poll
    /// reports POLLERR.
    pub fn revoke(&self) {
        self.sim.borrow_mut().revoked = true;
    }

    /// What the simulated kernel observed so far.
    pub fn counters(&self) -> MemCounters {
        self.sim.borrow().c
    }

    /// Every buffer index of the pool sits in exactly one slot.
    pub fn check_buffers(&self) -> Result<(), String> {
        let s = self.sim.borrow();
        let mut seen: Vec<u32> = s
            .rings
            .iter()
            .flat_map(|r| (0..r.raw.num_slots()).map(|i| r.raw.slot(i).buf_idx))
            .collect();
        seen.sort_unstable();
        let want: Vec<u32> = (crate::ffi::FIRST_VALID_BUF..s.region.nbufs).collect();
        if seen == want {
            Ok(())
        } else {
            let dup = seen.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
            Err(format!(
                "buffer pool not conserved: {} slots, {} buffers, first duplicate {:?}",
                seen.len(),
                want.len(),
                dup
            ))
        }
    }

    /// Fault injection: the `k`-th frame (from 0) that the next RX syncs
    /// deliver on hardware RX ring `ring` carries `buf_idx` instead of its
    /// own buffer, as a corrupting kernel would write it.
    pub fn inject_rx_buf_idx(&self, ring: usize, k: u32, buf_idx: u32) {
        let set = SlotSet::BufIdx(buf_idx);
        self.sim
            .borrow_mut()
            .faults
            .push(Fault::Rx { ring, k, set });
    }

    /// Fault injection: the `k`-th frame the next RX syncs deliver on
    /// hardware RX ring `ring` claims length `len`.
    pub fn inject_rx_len(&self, ring: usize, k: u32, len: u16) {
        let set = SlotSet::Len(len);
        self.sim
            .borrow_mut()
            .faults
            .push(Fault::Rx { ring, k, set });
    }

    /// Fault injection: at the next TX sync, the `k`-th slot user space
    /// released on hardware TX ring `ring` since the last one names
    /// `buf_idx`, as buggy code sharing the mapping could leave it; the
    /// kernel then resets the ring.
    pub fn inject_tx_buf_idx(&self, ring: usize, k: u32, buf_idx: u32) {
        self.sim
            .borrow_mut()
            .faults
            .push(Fault::Tx { ring, k, buf_idx });
    }
}
