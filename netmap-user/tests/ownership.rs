//! The buffer-ownership rules of the binding, on the in-memory port: no two
//! user-owned slots share a buffer, and a port whose kernel broke a ring
//! rule cannot be used again.

use netmap_user::mem::{self, MemConfig};
use netmap_user::{Error, RingId, SendError};

fn frame(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![tag; len];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

#[test]
fn a_duplicated_buffer_is_refused_at_the_sync_that_hands_it_out() {
    let (mut port, nic) = mem::port(&MemConfig::default());
    nic.wire_send(0, &frame(60, 0xAA)).unwrap();
    // Buffer 2 sits in the free hardware TX slot 0, owned by user space.
    nic.inject_rx_buf_idx(0, 0, 2);
    match port.rxsync() {
        Err(Error::DuplicateBuffer { ring, buf_idx }) => {
            assert_eq!((ring, buf_idx), (RingId::HwRx(0), 2));
        }
        other => panic!("expected DuplicateBuffer, got {other:?}"),
    }
    // Nothing is reachable any more: no frame to read, no slot to write.
    {
        let mut r = port.rings();
        assert!(r.hw_rx.ring(0).unwrap().peek().is_none());
        assert!(matches!(
            r.hw_tx.ring(0).unwrap().reserve(),
            Err(SendError::Full)
        ));
    }
    for _ in 0..2 {
        assert!(matches!(
            port.txsync(),
            Err(Error::DuplicateBuffer { buf_idx: 2, .. })
        ));
        assert!(port.rxsync().unwrap_err().is_fatal());
    }
}

#[test]
fn a_buffer_moved_between_user_slots_is_not_a_duplicate() {
    let (mut port, nic) = mem::port(&MemConfig::default());
    for i in 0..8 {
        nic.wire_send(0, &frame(64, i)).unwrap();
    }
    port.rxsync().unwrap();
    {
        let mut r = port.rings();
        let mut rx = r.hw_rx.ring(0).unwrap();
        let mut host = r.host_tx.ring(0).unwrap();
        assert_eq!(rx.move_run(&mut host, 8, 14), 8);
    }
    // Released RX slots now hold the old host TX buffers, and host TX holds
    // the frames: every sync after that must still find each buffer once.
    for _ in 0..3 {
        port.txsync().unwrap();
        port.rxsync().unwrap();
    }
    nic.check_buffers().unwrap();
    assert_eq!(nic.stack_take().len(), 8);
}

#[test]
fn a_ring_reinit_leaves_the_port_unusable() {
    let (mut port, nic) = mem::port(&MemConfig::default());
    {
        let mut r = port.rings();
        r.hw_tx.ring(0).unwrap().send(&frame(64, 1)).unwrap();
    }
    nic.inject_tx_buf_idx(0, 0, 1); // a reserved index: the kernel resets the ring
    assert!(matches!(
        port.txsync(),
        Err(Error::RingReinit(RingId::HwTx(0)))
    ));
    nic.wire_send(0, &frame(64, 2)).unwrap();
    assert!(matches!(port.rxsync(), Err(Error::RingReinit(_))));
    assert_eq!(port.rings().hw_rx.ring(0).unwrap().len(), 0);
    assert_eq!(
        nic.counters().reinits,
        1,
        "no further sync reached the kernel"
    );
}

#[test]
fn set_len_refuses_what_a_slot_cannot_say() {
    // 65536-byte buffers: netmap_slot.len is 16 bits, so 65535 is the most.
    let cfg = MemConfig {
        hw_slots: 4,
        host_slots: 4,
        buf_size: 65536,
        ..MemConfig::default()
    };
    let (mut port, nic) = mem::port(&cfg);
    {
        let mut r = port.rings();
        let mut tx = r.hw_tx.ring(0).unwrap();
        assert_eq!(tx.buf_size(), 65535);
        let mut slot = tx.reserve().unwrap();
        assert_eq!(slot.buf().len(), 65535);
        assert_eq!(slot.set_len(65536), Err(SendError::TooLong(65536)));
        slot.buf()[..64].copy_from_slice(&frame(64, 7));
        slot.set_len(64).unwrap();
        slot.commit();
    }
    port.txsync().unwrap();
    let out = nic.wire_take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, frame(64, 7));
}

#[test]
fn revocation_is_final() {
    let (mut port, nic) = mem::port(&MemConfig::default());
    nic.revoke();
    assert!(matches!(port.rxsync(), Err(Error::Revoked)));
    assert!(matches!(port.wait(None), Err(Error::Revoked)));
    assert!(matches!(port.txsync(), Err(Error::Revoked)));
}
