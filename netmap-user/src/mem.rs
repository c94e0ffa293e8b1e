//! An in-memory netmap port for tests and benchmarks on any OS.
//!
//! The region has the kernel's layout (`netmap_if`, rings, buffer pool) and
//! the kernel side follows netmap's rules: `nm_txsync_prologue` /
//! `nm_rxsync_prologue` bounds on `head`/`cur`, ring reinit on bad values,
//! `NS_BUF_CHANGED`, buffer validation, `NS_MOREFRAG` chains. At the far ends
//! sit a software NIC (the wire) and a host stack that inject and collect
//! frames. It also checks what the kernel cannot: that user space never
//! wrote a kernel-owned slot nor a frame still queued for transmission.

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
    pub hw_slots: u32,
    pub host_slots: u32,
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
    pub txsyncs: u64,
    pub rxsyncs: u64,
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

struct Sim {
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
        r.raw.set_tail(r.hwtail);
        self.snapshot(k);
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
    TooLong,
    NoSuchRing,
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

    /// Test hook: overwrite the `buf_idx` of the `k`-th frame waiting on
    /// hardware RX ring `ring`, as a corrupting kernel would.
    pub fn corrupt_rx_buf_idx(&self, ring: usize, k: u32, buf_idx: u32) {
        self.corrupt_rx(ring, k, |s| s.buf_idx = buf_idx);
    }

    /// Test hook: overwrite the length of a waiting hardware RX frame.
    pub fn corrupt_rx_len(&self, ring: usize, k: u32, len: u16) {
        self.corrupt_rx(ring, k, |s| s.len = len);
    }

    fn corrupt_rx(&self, ring: usize, k: u32, f: impl FnOnce(&mut SlotInfo)) {
        let s = self.sim.borrow();
        if let Some(r) = s
            .rings
            .iter()
            .find(|r| r.kind == Kind::HwRx && r.index == ring)
        {
            let n = r.raw.num_slots();
            let i = (r.raw.head() + k) % n;
            let mut slot = r.raw.slot(i);
            f(&mut slot);
            r.raw.set_slot(i, slot);
        }
    }

    /// Test hook: overwrite the `buf_idx` of the `k`-th slot the user
    /// filled on hardware TX ring `ring` since the last sync (as buggy code
    /// sharing the mapping would); the kernel then resets the ring.
    pub fn corrupt_tx_buf_idx(&self, ring: usize, k: u32, buf_idx: u32) {
        let s = self.sim.borrow();
        if let Some(r) = s
            .rings
            .iter()
            .find(|r| r.kind == Kind::HwTx && r.index == ring)
        {
            let i = (r.hwcur + k) % r.raw.num_slots();
            let mut slot = r.raw.slot(i);
            slot.buf_idx = buf_idx;
            r.raw.set_slot(i, slot);
        }
    }
}
