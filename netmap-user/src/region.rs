//! The netmap memory region: `netmap_if`, rings and buffers in one block.
//!
//! [`Layout::parse`] reads a `netmap_if` the kernel (or the in-memory port)
//! laid out and turns it into validated rings. [`OwnedRegion`] is the block
//! the in-memory port allocates in place of the kernel's mmap.

use core::ptr::{self, addr_of, NonNull};

use crate::ffi::{self, netmap_if};
use crate::ring::{RawRing, RingLayoutError};

/// Where the rings of a port are, in netmap's order.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) hw_tx: Vec<RawRing>,
    pub(crate) host_tx: Vec<RawRing>,
    pub(crate) hw_rx: Vec<RawRing>,
    pub(crate) host_rx: Vec<RawRing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayoutError {
    IfOutOfRegion,
    TooManyRings(u32),
    Ring { index: usize, err: RingLayoutError },
}

/// netmap never exposes more rings than this per direction.
const MAX_RINGS: u32 = 64;

impl Layout {
    /// Parses the `netmap_if` at `nifp_off` of `[base, base + len)`.
    ///
    /// # Safety
    /// Same contract as [`RawRing::new`]: the region is live, mapped memory
    /// for as long as the returned rings are used.
    pub(crate) unsafe fn parse(
        base: NonNull<u8>,
        len: usize,
        nifp_off: usize,
    ) -> Result<Layout, LayoutError> {
        let if_size = core::mem::size_of::<netmap_if>();
        if nifp_off.checked_add(if_size).is_none_or(|e| e > len) || !nifp_off.is_multiple_of(8) {
            return Err(LayoutError::IfOutOfRegion);
        }
        // SAFETY: the fixed part of netmap_if lies inside the region.
        let nifp: netmap_if =
            unsafe { ptr::read_volatile(base.as_ptr().add(nifp_off).cast::<netmap_if>()) };
        let counts = [
            nifp.ni_tx_rings,
            ffi::host_tx_rings(&nifp),
            nifp.ni_rx_rings,
            ffi::host_rx_rings(&nifp),
        ];
        let total: u32 = counts.iter().sum();
        if counts.iter().any(|&c| c > MAX_RINGS) {
            return Err(LayoutError::TooManyRings(total));
        }
        let ofs_end = nifp_off + if_size + 8 * total as usize;
        if ofs_end > len {
            return Err(LayoutError::IfOutOfRegion);
        }
        let mut rings = Vec::with_capacity(total as usize);
        for index in 0..total as usize {
            // SAFETY: ring_ofs[index] lies inside the region (ofs_end check).
            let rel: i64 = unsafe {
                let arr = base.as_ptr().add(nifp_off).cast::<netmap_if>();
                ptr::read_volatile(addr_of!((*arr).ring_ofs).cast::<i64>().add(index))
            };
            let abs = (nifp_off as i64)
                .checked_add(rel)
                .filter(|&a| a >= 0)
                .ok_or(LayoutError::Ring {
                    index,
                    err: RingLayoutError::OutOfRegion,
                })?;
            // SAFETY: forwarded contract; RawRing::new bounds-checks.
            let r = unsafe { RawRing::new(base, len, abs as usize) }
                .map_err(|err| LayoutError::Ring { index, err })?;
            rings.push(r);
        }
        let mut it = rings.into_iter();
        let mut take = |n: u32| it.by_ref().take(n as usize).collect::<Vec<_>>();
        Ok(Layout {
            hw_tx: take(counts[0]),
            host_tx: take(counts[1]),
            hw_rx: take(counts[2]),
            host_rx: take(counts[3]),
        })
    }
}

#[cfg(feature = "sim")]
pub(crate) use owned::{Geometry, OwnedRegion};

/// The block the in-memory port allocates in place of the kernel's mmap.
#[cfg(feature = "sim")]
mod owned {
    use core::ptr::{self, NonNull};
    use std::alloc::{self, Layout as AllocLayout};

    use crate::ffi::{self, netmap_if, RING_SLOTS_OFFSET};

    /// Geometry of an in-memory region, in netmap's ring order.
    #[derive(Debug, Clone)]
    pub(crate) struct Geometry {
        /// (num_slots) per ring: hw TX, host TX, hw RX, host RX.
        pub(crate) rings: [Vec<u32>; 4],
        pub(crate) buf_size: u32,
    }

    /// A zeroed, page-aligned block laid out like netmap_mem2 lays the kernel's:
    /// `netmap_if`, then the rings, then the buffer pool.
    #[derive(Debug)]
    pub(crate) struct OwnedRegion {
        base: NonNull<u8>,
        layout: AllocLayout,
        pub(crate) nifp_off: usize,
        pub(crate) nbufs: u32,
    }

    fn align(v: usize, a: usize) -> usize {
        v.div_ceil(a) * a
    }

    impl OwnedRegion {
        /// Allocates and lays out the region; every slot gets its own buffer
        /// (indices from 2 upwards), as netmap does at registration.
        pub(crate) fn new(g: &Geometry) -> OwnedRegion {
            let total_rings: usize = g.rings.iter().map(Vec::len).sum();
            let if_size = core::mem::size_of::<netmap_if>() + 8 * total_rings;
            let mut off = align(if_size, 4096);
            let mut ring_offs = Vec::with_capacity(total_rings);
            for n in g.rings.iter().flatten() {
                ring_offs.push(off);
                off = align(off + RING_SLOTS_OFFSET + 16 * *n as usize, 4096);
            }
            let bufs_off = off;
            let slots: u32 = g.rings.iter().flatten().sum();
            let nbufs = ffi::FIRST_VALID_BUF + slots;
            let len = bufs_off + nbufs as usize * g.buf_size as usize;
            let layout = match AllocLayout::from_size_align(len, 4096) {
                Ok(l) => l,
                Err(e) => panic!("in-memory netmap region of {len} bytes: {e}"),
            };
            // SAFETY: layout has non-zero size.
            let raw = unsafe { alloc::alloc_zeroed(layout) };
            let Some(base) = NonNull::new(raw) else {
                alloc::handle_alloc_error(layout)
            };
            let region = OwnedRegion {
                base,
                layout,
                nifp_off: 0,
                nbufs,
            };

            let mut nifp = netmap_if {
                ni_name: [0; 16],
                ni_version: u32::from(ffi::NETMAP_API),
                ni_flags: 0,
                ni_tx_rings: g.rings[0].len() as u32,
                ni_rx_rings: g.rings[2].len() as u32,
                ni_bufs_head: 0,
                ni_spare1: [g.rings[1].len() as u32, g.rings[3].len() as u32, 0, 0, 0],
                ring_ofs: [],
            };
            for (d, s) in nifp.ni_name.iter_mut().zip(b"mem0") {
                *d = *s as _;
            }
            // SAFETY: the region is at least if_size long, aligned, and ours.
            unsafe {
                ptr::write(base.as_ptr().cast::<netmap_if>(), nifp);
                let ofs = base
                    .as_ptr()
                    .add(core::mem::size_of::<netmap_if>())
                    .cast::<i64>();
                for (i, o) in ring_offs.iter().enumerate() {
                    ptr::write(ofs.add(i), *o as i64);
                }
            }
            let mut next_buf = ffi::FIRST_VALID_BUF;
            for (k, o) in ring_offs.iter().enumerate() {
                let n = *g.rings.iter().flatten().nth(k).unwrap_or(&0);
                // SAFETY: o + 256 + 16 n <= bufs_off <= len (layout above).
                unsafe {
                    let r = base.as_ptr().add(*o).cast::<ffi::netmap_ring>();
                    ptr::write(ptr::addr_of_mut!((*r).buf_ofs), (bufs_off - o) as i64);
                    ptr::write(ptr::addr_of_mut!((*r).num_slots), n);
                    ptr::write(ptr::addr_of_mut!((*r).nr_buf_size), g.buf_size);
                    let slots = base
                        .as_ptr()
                        .add(o + RING_SLOTS_OFFSET)
                        .cast::<ffi::netmap_slot>();
                    for i in 0..n as usize {
                        ptr::write(ptr::addr_of_mut!((*slots.add(i)).buf_idx), next_buf);
                        next_buf += 1;
                    }
                }
            }
            region
        }

        pub(crate) fn base(&self) -> NonNull<u8> {
            self.base
        }

        pub(crate) fn len(&self) -> usize {
            self.layout.size()
        }
    }

    impl Drop for OwnedRegion {
        fn drop(&mut self) {
            // SAFETY: allocated in new() with this very layout.
            unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) }
        }
    }
}
