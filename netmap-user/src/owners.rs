//! Which buffers user space holds right now: the ledger behind "no two
//! user-owned slots share a buffer".
//!
//! Ring views hand out `&[u8]` for received frames and `&mut [u8]` for TX
//! slots being filled; both are sound only while every buffer index sits in
//! at most one user-owned slot. The kernel establishes that at each sync
//! (netmap(4): a buffer belongs to exactly one slot), user-space moves only
//! swap indices between user-owned slots, so the set of held buffers
//! changes only at a sync: released slots `[old head, head)` leave it, and
//! slots the kernel grants, `[old tail, tail)`, join it. A granted index
//! already in the set is a kernel (or memory-corruption) bug that would
//! alias, and is refused. The cost is one bit test per slot crossing the
//! user/kernel boundary.

/// A bitmap over a port's buffer pool.
#[derive(Debug)]
pub(crate) struct Owners {
    bits: Vec<u64>,
    nbufs: u32,
}

impl Owners {
    /// An empty ledger for buffers `0..nbufs`.
    pub(crate) fn new(nbufs: u32) -> Owners {
        Owners {
            bits: vec![0; (nbufs as usize).div_ceil(64)],
            nbufs,
        }
    }

    /// Records that a user-owned slot now holds `idx`; `false` if another
    /// already does. Indices outside the pool are never handed out as
    /// memory, so they are not tracked.
    #[inline]
    pub(crate) fn take(&mut self, idx: u32) -> bool {
        if idx >= self.nbufs {
            return true;
        }
        let (w, b) = ((idx / 64) as usize, 1u64 << (idx % 64));
        let held = self.bits[w] & b != 0;
        self.bits[w] |= b;
        !held
    }

    /// Records that the slot holding `idx` went back to the kernel.
    #[inline]
    pub(crate) fn release(&mut self, idx: u32) {
        if idx < self.nbufs {
            self.bits[(idx / 64) as usize] &= !(1u64 << (idx % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_held_once() {
        let mut o = Owners::new(130);
        assert!(o.take(2));
        assert!(!o.take(2), "second holder refused");
        o.release(2);
        assert!(o.take(2));
        assert!(o.take(129));
        assert!(o.take(5000), "outside the pool: not memory, not tracked");
    }
}
