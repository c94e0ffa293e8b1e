//! Typed access to netmap rings: the only place that touches ring memory.
//!
//! netmap's ownership rule is simple and absolute: user space owns the slots
//! in `[head, tail)` of every ring; everything else belongs to the kernel, and
//! the kernel writes `tail` (and, on a ring reinit, `head` and `cur`) only
//! during a sync. The views here make that rule structural:
//!
//! * a view exists only while its [`crate::Port`] is mutably borrowed, so no
//!   sync can run while it is alive;
//! * every slot index a view computes lies in `[head, tail)` of the snapshot
//!   taken at the last sync, and views only ever move `head`/`cur` forward;
//! * `tail` is never written from user space.
//!
//! Buffers handed out as [`Frame`]s stay valid and unwritten until the next
//! sync, which is why their lifetime is the port borrow and not the view's.

use core::ptr::{self, addr_of, addr_of_mut, NonNull};

use crate::ffi::RING_SLOTS_OFFSET;
use crate::ffi::{netmap_ring, netmap_slot, FIRST_VALID_BUF, NS_BUF_CHANGED, NS_MOREFRAG};

/// Why a ring header cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingLayoutError {
    OutOfRegion,
    BadGeometry { num_slots: u32, buf_size: u32 },
    BuffersOutOfRegion,
}

/// A ring inside a netmap memory region whose geometry has been validated.
///
/// Invariants (established by [`RawRing::new`]): the header and all
/// `num_slots` slots lie inside the region; buffer `i` for
/// `FIRST_VALID_BUF <= i < nbufs` lies inside the region. The region outlives
/// every `RawRing` (owners keep the mapping alive for as long as they hold
/// rings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawRing {
    ring: NonNull<netmap_ring>,
    bufs: NonNull<u8>,
    region: NonNull<u8>,
    nbufs: u32,
    buf_size: u32,
    n: u32,
}

/// A copy of one slot's fields (`struct netmap_slot` less `ptr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct SlotInfo {
    pub(crate) buf_idx: u32,
    pub(crate) len: u16,
    pub(crate) flags: u16,
}

impl RawRing {
    /// Validates the ring at `offset` of the region `[base, base + len)`.
    ///
    /// # Safety
    /// `[base, base + len)` must be readable and writable memory that stays
    /// mapped for as long as the returned ring (or a copy) is used, and that
    /// is accessed only by this thread or by the kernel during our syscalls.
    pub(crate) unsafe fn new(
        base: NonNull<u8>,
        len: usize,
        offset: usize,
    ) -> Result<RawRing, RingLayoutError> {
        let hdr_end = offset
            .checked_add(RING_SLOTS_OFFSET)
            .ok_or(RingLayoutError::OutOfRegion)?;
        if hdr_end > len || !offset.is_multiple_of(8) {
            return Err(RingLayoutError::OutOfRegion);
        }
        // SAFETY: the header lies inside the region (checked above).
        let ring =
            unsafe { NonNull::new_unchecked(base.as_ptr().add(offset).cast::<netmap_ring>()) };
        // SAFETY: as above; plain reads of the immutable geometry fields.
        let (n, buf_size, buf_ofs) = unsafe {
            let r = ring.as_ptr();
            (
                ptr::read_volatile(addr_of!((*r).num_slots)),
                ptr::read_volatile(addr_of!((*r).nr_buf_size)),
                ptr::read_volatile(addr_of!((*r).buf_ofs)),
            )
        };
        if !(2..=1 << 16).contains(&n) || !(64..=1 << 16).contains(&buf_size) {
            return Err(RingLayoutError::BadGeometry {
                num_slots: n,
                buf_size,
            });
        }
        let slots_end = (n as usize)
            .checked_mul(16)
            .and_then(|s| s.checked_add(hdr_end))
            .ok_or(RingLayoutError::OutOfRegion)?;
        if slots_end > len {
            return Err(RingLayoutError::OutOfRegion);
        }
        // netmap lays the buffer pool after the ring pool: buf_ofs > 0.
        let bufs_off = i64::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(buf_ofs))
            .filter(|&o| o > 0 && (o as u64) < len as u64)
            .ok_or(RingLayoutError::BuffersOutOfRegion)? as usize;
        let fit = (len - bufs_off) / buf_size as usize;
        let nbufs = u32::try_from(fit).unwrap_or(u32::MAX);
        if nbufs <= FIRST_VALID_BUF {
            return Err(RingLayoutError::BuffersOutOfRegion);
        }
        // SAFETY: bufs_off < len.
        let bufs = unsafe { NonNull::new_unchecked(base.as_ptr().add(bufs_off)) };
        Ok(RawRing {
            ring,
            bufs,
            region: base,
            nbufs,
            buf_size,
            n,
        })
    }

    pub(crate) fn num_slots(&self) -> u32 {
        self.n
    }

    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// Buffers of the pool that lie inside the region.
    pub(crate) fn nbufs(&self) -> u32 {
        self.nbufs
    }

    pub(crate) fn region(&self) -> NonNull<u8> {
        self.region
    }

    #[inline]
    pub(crate) fn head(&self) -> u32 {
        // SAFETY: header inside the live region (type invariant).
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).head)) }
    }

    #[inline]
    pub(crate) fn cur(&self) -> u32 {
        // SAFETY: header inside the live region (type invariant).
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).cur)) }
    }

    #[inline]
    pub(crate) fn tail(&self) -> u32 {
        // SAFETY: header inside the live region (type invariant).
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).tail)) }
    }

    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: header inside the live region (type invariant).
        unsafe { ptr::read_volatile(addr_of!((*self.ring.as_ptr()).flags)) }
    }

    /// `ring->flags` is the user's to set (NR_TIMESTAMP, NR_FORWARD).
    pub(crate) fn set_flags(&self, v: u32) {
        // SAFETY: header inside the live region (type invariant).
        unsafe { ptr::write_volatile(addr_of_mut!((*self.ring.as_ptr()).flags), v) }
    }

    /// User side: publish how far we consumed or produced.
    #[inline]
    pub(crate) fn set_head_cur(&self, v: u32) {
        debug_assert!(v < self.n);
        // SAFETY: header inside the live region (type invariant).
        unsafe {
            let r = self.ring.as_ptr();
            ptr::write_volatile(addr_of_mut!((*r).head), v);
            ptr::write_volatile(addr_of_mut!((*r).cur), v);
        }
    }

    /// Kernel side (the in-memory port only): publish `tail`.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn set_tail(&self, v: u32) {
        // SAFETY: header inside the live region (type invariant).
        unsafe { ptr::write_volatile(addr_of_mut!((*self.ring.as_ptr()).tail), v) }
    }

    /// Writes the fixed header fields (the in-memory port only).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn init_header(&self, ringid: u16, dir: u16) {
        // SAFETY: header inside the live region (type invariant).
        unsafe {
            let r = self.ring.as_ptr();
            ptr::write_volatile(addr_of_mut!((*r).ringid), ringid);
            ptr::write_volatile(addr_of_mut!((*r).dir), dir);
        }
    }

    #[inline]
    fn slot_ptr(&self, i: u32) -> *mut netmap_slot {
        assert!(i < self.n, "slot index {i} out of ring of {}", self.n);
        // SAFETY: slot i < n lies inside the region (type invariant).
        unsafe {
            self.ring
                .as_ptr()
                .cast::<u8>()
                .add(RING_SLOTS_OFFSET + 16 * i as usize)
                .cast::<netmap_slot>()
        }
    }

    #[inline]
    pub(crate) fn slot(&self, i: u32) -> SlotInfo {
        let s = self.slot_ptr(i);
        // SAFETY: s points at a slot inside the live region; buf_idx, len
        // and flags are its first 8 bytes, 8-aligned (slots start at ring
        // offset 256 and rings are 8-aligned). One load instead of three.
        let b: [u8; 8] = unsafe { ptr::read_volatile(s.cast::<[u8; 8]>()) };
        SlotInfo {
            buf_idx: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            len: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
        }
    }

    #[inline]
    pub(crate) fn set_slot(&self, i: u32, v: SlotInfo) {
        let s = self.slot_ptr(i);
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&v.buf_idx.to_ne_bytes());
        b[4..6].copy_from_slice(&v.len.to_ne_bytes());
        b[6..].copy_from_slice(&v.flags.to_ne_bytes());
        // SAFETY: as in slot(): the first 8 bytes of a live, aligned slot.
        unsafe { ptr::write_volatile(s.cast::<[u8; 8]>(), b) }
    }

    #[inline]
    pub(crate) fn valid_buf(&self, idx: u32) -> bool {
        (FIRST_VALID_BUF..self.nbufs).contains(&idx)
    }

    /// Raw pointer to buffer `idx`, or `None` for an index outside the pool.
    #[inline]
    pub(crate) fn buf_ptr(&self, idx: u32) -> Option<NonNull<u8>> {
        if !self.valid_buf(idx) {
            return None;
        }
        // SAFETY: idx < nbufs, so the whole buffer lies inside the region.
        Some(unsafe {
            NonNull::new_unchecked(
                self.bufs
                    .as_ptr()
                    .add(idx as usize * self.buf_size as usize),
            )
        })
    }

    /// Copies `len` bytes out of buffer `idx` (the in-memory port's NIC).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn read_buf(&self, idx: u32, len: usize) -> Option<Vec<u8>> {
        let p = self.buf_ptr(idx)?;
        let len = len.min(self.buf_size as usize);
        // SAFETY: the buffer is inside the region and nobody else writes it
        // during the kernel's sync.
        Some(unsafe { core::slice::from_raw_parts(p.as_ptr(), len) }.to_vec())
    }

    /// Copies `data` into buffer `idx` (the in-memory port's NIC).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn write_buf(&self, idx: u32, data: &[u8]) -> bool {
        match self.buf_ptr(idx) {
            Some(p) if data.len() <= self.buf_size as usize => {
                // SAFETY: as in read_buf; data fits in the buffer.
                unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p.as_ptr(), data.len()) };
                true
            }
            _ => false,
        }
    }
}

/// Per-ring user-side state kept by the port between syncs.
#[derive(Debug)]
pub(crate) struct RingState {
    pub(crate) raw: RawRing,
    /// Our `head` (= `cur`): what we last published.
    pub(crate) head: u32,
    /// `tail` as the kernel left it at the last sync.
    pub(crate) tail: u32,
    /// The `head` the kernel saw at the last sync: the slots in
    /// `[published, head)` were released since.
    pub(crate) published: u32,
}

impl RingState {
    pub(crate) fn new(raw: RawRing) -> RingState {
        let head = raw.head();
        RingState {
            head,
            tail: raw.tail(),
            published: head,
            raw,
        }
    }

    #[inline]
    fn next(&self, i: u32) -> u32 {
        if i + 1 == self.raw.n {
            0
        } else {
            i + 1
        }
    }

    /// Number of user-owned slots.
    #[inline]
    fn avail(&self) -> u32 {
        if self.tail >= self.head {
            self.tail - self.head
        } else {
            self.tail + self.raw.n - self.head
        }
    }

    /// Moves our shadow `head`; the port publishes it before each sync, so
    /// the kernel never sees a half-finished batch and a leaked view cannot
    /// leave the ring inconsistent.
    #[inline]
    fn advance(&mut self) {
        debug_assert!(self.avail() > 0);
        self.head = self.next(self.head);
    }

    #[inline]
    pub(crate) fn publish(&self) {
        self.raw.set_head_cur(self.head);
    }
}

/// Why a received slot cannot be read as a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// `buf_idx` names no buffer of this port's pool.
    BadBufIdx(u32),
    /// `len` exceeds the buffer size.
    Oversize(u16),
}

/// A received frame, borrowed zero-copy from its netmap buffer.
///
/// It stays valid until the port is synced again.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'p> {
    data: &'p [u8],
    flags: u16,
}

impl<'p> Frame<'p> {
    /// A frame that is not in a netmap buffer, e.g. one reassembled from an
    /// `NS_MOREFRAG` chain by copying.
    pub fn gathered(data: &'p [u8]) -> Frame<'p> {
        Frame { data, flags: 0 }
    }

    /// The frame's bytes: `len` bytes of the slot's buffer, from the
    /// Ethernet destination address on (no FCS).
    pub fn data(&self) -> &'p [u8] {
        self.data
    }

    /// Length in bytes (`netmap_slot.len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the frame has no byte.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The frame continues in the next slot (`NS_MOREFRAG`).
    pub fn more_frags(&self) -> bool {
        self.flags & NS_MOREFRAG != 0
    }
}

/// Why a zero-copy move between rings did not happen. Nothing moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveError {
    /// The source ring holds no frame.
    Empty,
    /// The destination ring has no free slot: backpressure.
    Full,
    /// The rings belong to different ports (different buffer pools).
    ForeignRing,
    /// The source slot is unusable; the caller decides whether to drop it.
    Bad(SlotError),
}

/// A receive ring (hardware RX, or host RX: frames from the kernel stack).
pub struct RxRing<'p> {
    st: &'p mut RingState,
}

/// A transmit ring (hardware TX, or host TX: frames to the kernel stack).
pub struct TxRing<'p> {
    st: &'p mut RingState,
}

#[inline]
fn check_slot(raw: &RawRing, s: SlotInfo) -> Result<(), SlotError> {
    if !raw.valid_buf(s.buf_idx) {
        Err(SlotError::BadBufIdx(s.buf_idx))
    } else if u32::from(s.len) > raw.buf_size {
        Err(SlotError::Oversize(s.len))
    } else {
        Ok(())
    }
}

impl<'p> RxRing<'p> {
    pub(crate) fn new(st: &'p mut RingState) -> RxRing<'p> {
        RxRing { st }
    }

    /// Slots waiting to be consumed (`[head, tail)`).
    #[inline]
    pub fn len(&self) -> usize {
        self.st.avail() as usize
    }

    /// Whether no slot waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.st.avail() == 0
    }

    /// The frame at `head`, without consuming it.
    #[inline]
    pub fn peek(&self) -> Option<Result<Frame<'p>, SlotError>> {
        self.peek_at(0)
    }

    /// The frame `k` slots after `head` (k < len), without consuming it.
    #[inline]
    pub fn peek_at(&self, k: usize) -> Option<Result<Frame<'p>, SlotError>> {
        if k >= self.len() {
            return None;
        }
        let i = self.st.head + k as u32;
        let i = if i >= self.st.raw.n {
            i - self.st.raw.n
        } else {
            i
        };
        let s = self.st.raw.slot(i);
        Some(check_slot(&self.st.raw, s).map(|()| {
            let p = self.st.raw.buf_ptr(s.buf_idx).map(NonNull::as_ptr);
            // SAFETY: the slot is user-owned (inside [head, tail)), its buffer
            // index and length were validated against the pool, the port's
            // ledger guarantees no other user-owned slot holds this buffer
            // (so no TxSlot can write it), and the kernel writes it only
            // during a sync, which needs the port borrow 'p to end.
            let data = unsafe {
                core::slice::from_raw_parts(p.unwrap_or(ptr::null_mut()), s.len as usize)
            };
            Frame {
                data,
                flags: s.flags,
            }
        }))
    }

    /// The frame at `head` and the number of slots it spans, or `None`
    /// while the ring is empty or an `NS_MOREFRAG` chain is incomplete. The
    /// common single-slot case reads the slot once.
    #[inline]
    pub fn peek_chain(&self) -> Option<(Result<Frame<'p>, SlotError>, usize)> {
        if self.is_empty() {
            return None;
        }
        let first = self.peek()?;
        if first.as_ref().is_ok_and(|f| !f.more_frags())
            || first.is_err() && self.st.raw.slot(self.st.head).flags & NS_MOREFRAG == 0
        {
            return Some((first, 1));
        }
        Some((first, self.chain_len()?))
    }

    /// Slots making up the frame at `head` (1 unless `NS_MOREFRAG` chains
    /// it), or `None` while the chain is not complete inside `[head, tail)`.
    #[inline]
    pub fn chain_len(&self) -> Option<usize> {
        let n = self.len();
        let mut i = self.st.head;
        for k in 0..n {
            if self.st.raw.slot(i).flags & NS_MOREFRAG == 0 {
                return Some(k + 1);
            }
            i = self.st.next(i);
        }
        None
    }

    /// Consumes the frame at `head` (returns its slot to the kernel at the
    /// next sync). No-op on an empty ring.
    #[inline]
    pub fn advance(&mut self) {
        if !self.is_empty() {
            self.st.advance();
        }
    }

    /// Consumes and returns the frame at `head`.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Option<Result<Frame<'p>, SlotError>> {
        let f = self.peek()?;
        self.st.advance();
        Some(f)
    }

    /// Moves the frame at `head` into the next free slot of `tx` without
    /// copying: the two slots swap buffers and both are marked
    /// `NS_BUF_CHANGED`. On error nothing changes.
    #[inline]
    pub fn move_to(&mut self, tx: &mut TxRing<'_>) -> Result<(), MoveError> {
        if self.st.raw.region() != tx.st.raw.region() {
            return Err(MoveError::ForeignRing);
        }
        if self.is_empty() {
            return Err(MoveError::Empty);
        }
        if tx.space() == 0 {
            return Err(MoveError::Full);
        }
        let ri = self.st.head;
        let ti = tx.st.head;
        let rs = self.st.raw.slot(ri);
        check_slot(&self.st.raw, rs).map_err(MoveError::Bad)?;
        let ts = tx.st.raw.slot(ti);
        if !tx.st.raw.valid_buf(ts.buf_idx) {
            // A free TX slot without a buffer would lose the RX buffer.
            return Err(MoveError::Bad(SlotError::BadBufIdx(ts.buf_idx)));
        }
        tx.st.raw.set_slot(
            ti,
            SlotInfo {
                buf_idx: rs.buf_idx,
                len: rs.len,
                flags: NS_BUF_CHANGED | (rs.flags & NS_MOREFRAG),
            },
        );
        self.st.raw.set_slot(
            ri,
            SlotInfo {
                buf_idx: ts.buf_idx,
                len: 0,
                flags: NS_BUF_CHANGED,
            },
        );
        self.st.advance();
        tx.st.advance();
        Ok(())
    }

    /// Moves a run of plain frames (one slot each, valid buffer, length
    /// `min_len..=buf_size`) zero-copy to `tx`, at most `max`. Stops at the
    /// first slot that is anything else, or when either ring runs out, and
    /// leaves that slot for a careful look ([`RxRing::peek_chain`]). Returns
    /// the frames moved. It is [`RxRing::move_to`] for a batch: one slot load
    /// and store per side and no per-frame checks beyond the four above.
    pub fn move_run(&mut self, tx: &mut TxRing<'_>, max: usize, min_len: u16) -> usize {
        if self.st.raw.region() != tx.st.raw.region() {
            return 0;
        }
        let k = (self.st.avail() as usize)
            .min(tx.st.avail() as usize)
            .min(max);
        let (rr, tr) = (self.st.raw, tx.st.raw);
        let (mut ri, mut ti) = (self.st.head, tx.st.head);
        let mut moved = 0;
        while moved < k {
            let rs = rr.slot(ri);
            let ts = tr.slot(ti);
            if rs.flags & NS_MOREFRAG != 0
                || rs.len < min_len
                || u32::from(rs.len) > rr.buf_size
                || !rr.valid_buf(rs.buf_idx)
                || !tr.valid_buf(ts.buf_idx)
            {
                break;
            }
            tr.set_slot(
                ti,
                SlotInfo {
                    buf_idx: rs.buf_idx,
                    len: rs.len,
                    flags: NS_BUF_CHANGED,
                },
            );
            rr.set_slot(
                ri,
                SlotInfo {
                    buf_idx: ts.buf_idx,
                    len: 0,
                    flags: NS_BUF_CHANGED,
                },
            );
            ri = self.st.next(ri);
            ti = tx.st.next(ti);
            moved += 1;
        }
        self.st.head = ri;
        tx.st.head = ti;
        moved
    }

    /// Copies the frame at `head` into `tx` (the baseline that `move_to`
    /// beats). Consumes the RX slot on success.
    pub fn copy_to(&mut self, tx: &mut TxRing<'_>) -> Result<(), MoveError> {
        let frame = match self.peek() {
            None => return Err(MoveError::Empty),
            Some(Err(e)) => return Err(MoveError::Bad(e)),
            Some(Ok(f)) => f,
        };
        tx.send(frame.data()).map_err(|e| match e {
            SendError::Full => MoveError::Full,
            SendError::TooLong(n) => {
                MoveError::Bad(SlotError::Oversize(n.min(u16::MAX as usize) as u16))
            }
            SendError::BadSlot(i) => MoveError::Bad(SlotError::BadBufIdx(i)),
        })?;
        self.st.advance();
        Ok(())
    }
}

/// Why a frame was not queued for transmission. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No free slot: backpressure, try after the next sync.
    Full,
    /// The frame does not fit in one netmap buffer.
    TooLong(usize),
    /// The free slot names no buffer of the pool (corrupt ring).
    BadSlot(u32),
}

/// A reserved, not yet committed TX slot. Dropping it without
/// [`TxSlot::commit`] leaves the ring unchanged.
pub struct TxSlot<'r, 'p> {
    ring: &'r mut TxRing<'p>,
    buf: &'r mut [u8],
    len: u16,
}

impl TxSlot<'_, '_> {
    /// The whole netmap buffer, to build the frame in place.
    pub fn buf(&mut self) -> &mut [u8] {
        self.buf
    }

    /// Sets the frame length in bytes.
    ///
    /// # Errors
    /// [`SendError::TooLong`] when `len` exceeds the buffer (or 65535, the
    /// largest `netmap_slot.len`); the length is then unchanged.
    pub fn set_len(&mut self, len: usize) -> Result<(), SendError> {
        match u16::try_from(len) {
            Ok(l) if len <= self.buf.len() => {
                self.len = l;
                Ok(())
            }
            _ => Err(SendError::TooLong(len)),
        }
    }

    /// Queues the frame: it leaves at the next TX sync.
    #[inline]
    pub fn commit(self) {
        let st = &mut *self.ring.st;
        let mut s = st.raw.slot(st.head);
        s.len = self.len;
        s.flags &= NS_BUF_CHANGED;
        st.raw.set_slot(st.head, s);
        st.advance();
    }
}

impl<'p> TxRing<'p> {
    pub(crate) fn new(st: &'p mut RingState) -> TxRing<'p> {
        TxRing { st }
    }

    /// Free slots the user may fill before the next sync.
    #[inline]
    pub fn space(&self) -> usize {
        self.st.avail() as usize
    }

    /// Whether no slot is free: backpressure until the next TX sync.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.st.avail() == 0
    }

    /// The largest frame one slot carries, in bytes: the buffer size
    /// (`nr_buf_size`), capped at 65535 (`netmap_slot.len` is 16 bits).
    pub fn buf_size(&self) -> usize {
        (self.st.raw.buf_size as usize).min(usize::from(u16::MAX))
    }

    /// Reserves the next free slot for in-place writing.
    #[inline]
    pub fn reserve(&mut self) -> Result<TxSlot<'_, 'p>, SendError> {
        if self.is_full() {
            return Err(SendError::Full);
        }
        let s = self.st.raw.slot(self.st.head);
        let size = self.buf_size();
        let p = self
            .st
            .raw
            .buf_ptr(s.buf_idx)
            .ok_or(SendError::BadSlot(s.buf_idx))?;
        // SAFETY: the slot is user-owned (inside [head, tail)) and its buffer
        // index is in the pool. The port's ledger (owners.rs) refused any
        // sync that would put one buffer in two user-owned slots, and moves
        // only swap buffers between user-owned slots, so no Frame and no
        // other TxSlot can point at this buffer; the &mut borrow of the ring
        // keeps this one unique until it is committed or dropped.
        let buf = unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), size) };
        Ok(TxSlot {
            ring: self,
            buf,
            len: 0,
        })
    }

    /// Copies `frame` into the next free slot and queues it.
    #[inline]
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        if frame.len() > self.buf_size() {
            return Err(SendError::TooLong(frame.len()));
        }
        let mut slot = self.reserve()?;
        slot.buf()[..frame.len()].copy_from_slice(frame);
        slot.set_len(frame.len())?;
        slot.commit();
        Ok(())
    }
}
