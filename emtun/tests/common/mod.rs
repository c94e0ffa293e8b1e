//! Frame builders shared by the integration tests.
#![allow(dead_code)]

/// An Ethernet frame of `len` bytes with type `ethertype`, carrying `seq`.
pub fn frame(ethertype: u16, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(18)];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(18) {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f.truncate(len);
    f
}

pub fn seq_of(f: &[u8]) -> u32 {
    u32::from_be_bytes([f[14], f[15], f[16], f[17]])
}
