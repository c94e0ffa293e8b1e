//! The FreeBSD 14 netmap ABI: what `netmap_sys` 0.1.4 lacks or gets wrong.
//!
//! The slot, ring and interface structs come from `netmap_sys`, whose layouts
//! match FreeBSD 14 byte for byte. It predates API 14, so the control request
//! (`NIOCCTRL` with `nmreq_header` + `nmreq_register`), the API number, and the
//! host-ring counts of `netmap_if` live here. Every offset is asserted at
//! compile time against `sys/net/netmap.h` of FreeBSD 14.0-STABLE.

use core::mem::{offset_of, size_of};

pub use netmap_sys::netmap::{netmap_if, netmap_ring, netmap_slot};

/// `NETMAP_API` of FreeBSD 14 (netmap_sys says 11, which 14 rejects).
pub const NETMAP_API: u16 = 14;

#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const NETMAP_REQ_REGISTER: u16 = 1;
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const NR_REG_NIC_SW: u32 = 3;
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const NR_EXCLUSIVE: u64 = 0x800;

/// `netmap_ring.flags`: forward released RX slots marked `NS_FORWARD`.
pub const NR_FORWARD: u32 = 0x0004;

pub const NS_BUF_CHANGED: u16 = 0x0001;
pub const NS_MOREFRAG: u16 = 0x0020;

/// `_IOWR('i', 151, struct nmreq_header)`.
pub const NIOCCTRL: u64 = 0xC058_6997;
/// `_IO('i', 148)` and `_IO('i', 149)`.
pub const NIOCTXSYNC: u64 = 0x2000_6994;
pub const NIOCRXSYNC: u64 = 0x2000_6995;

/// Offset of the first slot inside `struct netmap_ring`.
pub const RING_SLOTS_OFFSET: usize = 256;
/// Buffer indices 0 and 1 are reserved by netmap and never carry frames.
pub const FIRST_VALID_BUF: u32 = 2;

/// `struct nmreq_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct nmreq_header {
    pub nr_version: u16,
    pub nr_reqtype: u16,
    pub nr_reserved: u32,
    pub nr_name: [u8; 64],
    pub nr_options: u64,
    pub nr_body: u64,
}

/// `struct nmreq_register`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct nmreq_register {
    pub nr_offset: u64,
    pub nr_memsize: u64,
    pub nr_tx_slots: u32,
    pub nr_rx_slots: u32,
    pub nr_tx_rings: u16,
    pub nr_rx_rings: u16,
    pub nr_host_tx_rings: u16,
    pub nr_host_rx_rings: u16,
    pub nr_mem_id: u16,
    pub nr_ringid: u16,
    pub nr_mode: u32,
    pub nr_extra_bufs: u32,
    pub nr_flags: u64,
}

/// `netmap_if.ni_host_tx_rings`: netmap_sys folds it into `ni_spare1[0]`.
pub fn host_tx_rings(nifp: &netmap_if) -> u32 {
    nifp.ni_spare1[0]
}

/// `netmap_if.ni_host_rx_rings`: netmap_sys folds it into `ni_spare1[1]`.
pub fn host_rx_rings(nifp: &netmap_if) -> u32 {
    nifp.ni_spare1[1]
}

// The layout of sys/net/netmap.h (FreeBSD 14.0-STABLE), checked by the compiler.
const _: () = {
    assert!(size_of::<netmap_slot>() == 16);
    assert!(offset_of!(netmap_slot, buf_idx) == 0);
    assert!(offset_of!(netmap_slot, len) == 4);
    assert!(offset_of!(netmap_slot, flags) == 6);
    assert!(offset_of!(netmap_slot, ptr) == 8);

    assert!(offset_of!(netmap_ring, buf_ofs) == 0);
    assert!(offset_of!(netmap_ring, num_slots) == 8);
    assert!(offset_of!(netmap_ring, nr_buf_size) == 12);
    assert!(offset_of!(netmap_ring, ringid) == 16);
    assert!(offset_of!(netmap_ring, dir) == 18);
    assert!(offset_of!(netmap_ring, head) == 20);
    assert!(offset_of!(netmap_ring, cur) == 24);
    assert!(offset_of!(netmap_ring, tail) == 28);
    assert!(offset_of!(netmap_ring, flags) == 32);
    assert!(offset_of!(netmap_ring, ts) == 40);
    assert!(offset_of!(netmap_ring, sem) == 128);
    assert!(offset_of!(netmap_ring, slot) == RING_SLOTS_OFFSET);
    assert!(size_of::<netmap_ring>() == RING_SLOTS_OFFSET);

    assert!(offset_of!(netmap_if, ni_name) == 0);
    assert!(offset_of!(netmap_if, ni_version) == 16);
    assert!(offset_of!(netmap_if, ni_flags) == 20);
    assert!(offset_of!(netmap_if, ni_tx_rings) == 24);
    assert!(offset_of!(netmap_if, ni_rx_rings) == 28);
    assert!(offset_of!(netmap_if, ni_bufs_head) == 32);
    // ni_host_tx_rings @36 and ni_host_rx_rings @40 are ni_spare1[0] and [1].
    assert!(offset_of!(netmap_if, ni_spare1) == 36);
    assert!(offset_of!(netmap_if, ring_ofs) == 56);

    assert!(size_of::<nmreq_header>() == 88);
    assert!(offset_of!(nmreq_header, nr_version) == 0);
    assert!(offset_of!(nmreq_header, nr_reqtype) == 2);
    assert!(offset_of!(nmreq_header, nr_reserved) == 4);
    assert!(offset_of!(nmreq_header, nr_name) == 8);
    assert!(offset_of!(nmreq_header, nr_options) == 72);
    assert!(offset_of!(nmreq_header, nr_body) == 80);

    assert!(size_of::<nmreq_register>() == 56);
    assert!(offset_of!(nmreq_register, nr_offset) == 0);
    assert!(offset_of!(nmreq_register, nr_memsize) == 8);
    assert!(offset_of!(nmreq_register, nr_tx_slots) == 16);
    assert!(offset_of!(nmreq_register, nr_rx_slots) == 20);
    assert!(offset_of!(nmreq_register, nr_tx_rings) == 24);
    assert!(offset_of!(nmreq_register, nr_rx_rings) == 26);
    assert!(offset_of!(nmreq_register, nr_host_tx_rings) == 28);
    assert!(offset_of!(nmreq_register, nr_host_rx_rings) == 30);
    assert!(offset_of!(nmreq_register, nr_mem_id) == 32);
    assert!(offset_of!(nmreq_register, nr_ringid) == 34);
    assert!(offset_of!(nmreq_register, nr_mode) == 36);
    assert!(offset_of!(nmreq_register, nr_extra_bufs) == 40);
    assert!(offset_of!(nmreq_register, nr_flags) == 48);

    // The ioctl numbers encode the request size: _IOWR(g, n, t) =
    // 0xC0000000 | sizeof(t) << 16 | g << 8 | n.
    assert!(
        NIOCCTRL
            == 0xC000_0000 | (size_of::<nmreq_header>() as u64) << 16 | (b'i' as u64) << 8 | 151
    );
    assert!(NIOCTXSYNC == 0x2000_0000 | (b'i' as u64) << 8 | 148);
    assert!(NIOCRXSYNC == 0x2000_0000 | (b'i' as u64) << 8 | 149);
};

#[cfg(test)]
mod tests {
    use super::*;

    /// netmap_sys's own legacy FreeBSD sync ioctls agree with ours.
    #[test]
    fn sync_ioctls_match_netmap_sys_freebsd_values() {
        assert_eq!(NIOCTXSYNC, 536_897_940);
        assert_eq!(NIOCRXSYNC, 536_897_941);
    }

    /// netmap_sys's API number is the one FreeBSD 14 rejects; ours is 14.
    #[test]
    fn api_is_fourteen_not_netmap_sys_eleven() {
        assert_eq!(netmap_sys::netmap::NETMAP_API, 11);
        assert_eq!(NETMAP_API, 14);
    }
}
