//! The tunnel engine end to end on the in-memory port.

mod common;

use common::{frame, seq_of};
use emtun::netmap_user::mem::{self, MemConfig};
use emtun::netmap_user::{Error as NetmapError, RingId};
use emtun::{Drops, Error, EtherType, Frame, PollMode, Sender, Tunnel, TunnelConfig};
use std::sync::atomic::AtomicBool;

const SIG: u16 = 0x88b5;

fn tunnel(cfg: &MemConfig, claims: &[u16]) -> (Tunnel<mem::Mem>, mem::MemNic) {
    let (port, nic) = mem::port(cfg);
    let mut tc = TunnelConfig::default().poll(PollMode::Busy);
    for t in claims {
        tc = tc.claim(EtherType(*t)).expect("claimable");
    }
    (Tunnel::with_port(port, tc), nic)
}

fn rounds(t: &mut Tunnel<mem::Mem>, app: &mut Vec<Vec<u8>>, n: usize) {
    let mut sink = |f: &[u8]| app.push(f.to_vec());
    for _ in 0..n {
        t.round(&mut sink).expect("round");
    }
}

#[test]
fn claimed_frames_reach_the_app_and_nothing_else_does() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[SIG]);
    let mut want_app = Vec::new();
    let mut want_host = Vec::new();
    for i in 0..200u32 {
        let (ty, dst) = match i % 4 {
            0 => (SIG, &mut want_app),
            1 => (0x0800, &mut want_host),
            2 => (0x0806, &mut want_host),
            _ => (0x86dd, &mut want_host),
        };
        let f = frame(ty, i, 60 + (i as usize % 1400));
        nic.wire_send(0, &f).unwrap();
        dst.push(f);
    }
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 3);
    let host: Vec<Vec<u8>> = nic.stack_take().into_iter().map(|(_, f)| f).collect();
    assert_eq!(
        app, want_app,
        "the app sees exactly the claimed frames, in order"
    );
    assert_eq!(
        host, want_host,
        "the stack sees exactly the others, byte-exact, in order"
    );
    let s = t.stats();
    assert_eq!(
        (s.to_app, s.to_host, s.dropped),
        (50, 150, Drops::default())
    );
    assert!(nic.wire_take().is_empty());
    assert_eq!(nic.counters().violations, 0);
    nic.check_buffers().unwrap();
}

#[test]
fn kernel_frames_cross_both_ways_byte_exact() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[SIG]);
    let inbound: Vec<Vec<u8>> = (0..300)
        .map(|i| frame(0x0800, i, 60 + i as usize * 5 % 1454))
        .collect();
    let outbound: Vec<Vec<u8>> = (0..300)
        .map(|i| frame(0x0806, 1000 + i, 42 + i as usize * 7 % 1472))
        .collect();
    for (a, b) in inbound.iter().zip(&outbound) {
        nic.wire_send(0, a).unwrap();
        nic.stack_send(0, b).unwrap();
    }
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 4);
    let up: Vec<_> = nic.stack_take().into_iter().map(|(_, f)| f).collect();
    let down: Vec<_> = nic.wire_take().into_iter().map(|(_, f)| f).collect();
    assert_eq!(up, inbound);
    assert_eq!(down, outbound);
    assert!(app.is_empty());
    assert_eq!((t.stats().to_host, t.stats().from_host), (300, 300));
    nic.check_buffers().unwrap();
}

#[test]
fn a_full_host_ring_is_backpressure_not_loss() {
    // A 64-slot host ring and a 256-slot NIC ring: 200 frames cannot all fit
    // in the host TX ring in one round.
    let cfg = MemConfig {
        hw_slots: 256,
        host_slots: 64,
        ..MemConfig::default()
    };
    let (mut t, nic) = tunnel(&cfg, &[]);
    for i in 0..200 {
        nic.wire_send(0, &frame(0x0800, i, 64)).unwrap();
    }
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 1);
    assert!(t.stats().backpressure > 0, "the host ring filled up");
    assert!(t.stats().to_host < 200);
    rounds(&mut t, &mut app, 6);
    let seqs: Vec<u32> = nic.stack_take().iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!(
        seqs,
        (0..200).collect::<Vec<_>>(),
        "nothing lost, order kept"
    );
    assert_eq!(t.stats().dropped.total(), 0);
    nic.check_buffers().unwrap();
}

#[test]
fn a_slow_wire_backpressures_the_host_path() {
    let cfg = MemConfig {
        hw_slots: 32,
        tx_per_sync: Some(4),
        ..MemConfig::default()
    };
    let (mut t, nic) = tunnel(&cfg, &[]);
    for i in 0..100 {
        nic.stack_send(0, &frame(0x0800, i, 100)).unwrap();
    }
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 3);
    assert!(t.stats().backpressure > 0);
    rounds(&mut t, &mut app, 40);
    let seqs: Vec<u32> = nic.wire_take().iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!(seqs, (0..100).collect::<Vec<_>>());
    assert_eq!(nic.counters().violations, 0);
    nic.check_buffers().unwrap();
}

#[test]
fn revocation_yields_revoked_and_releases_the_port() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[]);
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 2);
    nic.revoke();
    let mut sink = |_: &[u8]| {};
    assert!(matches!(
        t.round(&mut sink),
        Err(Error::Netmap(NetmapError::Revoked))
    ));
    assert!(t.port().is_none(), "the port was released");
    assert!(
        matches!(t.round(&mut sink), Err(Error::Netmap(NetmapError::Revoked))),
        "and stays released"
    );
    let stop = AtomicBool::new(false);
    assert!(matches!(
        t.run_until(&stop, &mut sink),
        Err(Error::Netmap(NetmapError::Revoked))
    ));
}

#[test]
fn revocation_seen_by_poll_is_revoked_too() {
    let (port, nic) = mem::port(&MemConfig::default());
    let mut t = Tunnel::with_port(
        port,
        TunnelConfig::default().poll(PollMode::Interval(std::time::Duration::from_millis(1))),
    );
    let mut sink = |_: &[u8]| {};
    t.round(&mut sink).unwrap();
    nic.revoke();
    let stop = AtomicBool::new(false);
    assert!(matches!(
        t.run_until(&stop, &mut sink),
        Err(Error::Netmap(NetmapError::Revoked))
    ));
}

#[test]
fn run_until_returns_when_stopped() {
    let (mut t, _nic) = tunnel(&MemConfig::default(), &[]);
    let stop = AtomicBool::new(true);
    let mut sink = |_: &[u8]| {};
    assert!(t.run_until(&stop, &mut sink).is_ok());
}

#[test]
fn runts_oversize_and_bad_buffers_are_counted_without_touching_memory() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[SIG]);
    nic.wire_send(0, &[0u8; 10]).unwrap(); // runt
    nic.wire_send(0, &frame(0x0800, 1, 64)).unwrap(); // the NIC says 9000 bytes
    nic.wire_send(0, &frame(0x0800, 2, 64)).unwrap(); // good
    nic.inject_rx_len(0, 1, 9000);
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 2);
    let s = t.stats();
    assert_eq!(s.dropped.runt, 1);
    assert_eq!(s.dropped.oversize, 1);
    assert_eq!(s.to_host, 1);
    let up = nic.stack_take();
    assert_eq!(up.len(), 1);
    assert_eq!(
        seq_of(&up[0].1),
        2,
        "the good frame, and only it, reached the stack"
    );
    assert!(app.is_empty());
    assert_eq!(nic.counters().violations, 0);
    nic.check_buffers().unwrap();
}

#[test]
fn a_bad_buf_idx_is_dropped_and_the_kernel_reset_is_reported() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[]);
    nic.wire_send(0, &frame(0x0800, 1, 64)).unwrap();
    nic.wire_send(0, &frame(0x0800, 2, 64)).unwrap();
    nic.inject_rx_buf_idx(0, 0, 0xdead_beef);
    let mut sink = |_: &[u8]| {};
    // The engine skips the slot without dereferencing it; the kernel then
    // finds the bad index on the released slot and resets the ring.
    t.round(&mut sink).unwrap();
    assert_eq!(t.stats().dropped.bad_buf_idx, 1);
    assert_eq!(t.stats().to_host, 1);
    let r = t.round(&mut sink);
    assert!(
        matches!(
            r,
            Err(Error::Netmap(NetmapError::RingReinit(RingId::HwRx(0))))
        ),
        "{r:?}"
    );
    assert_eq!(nic.counters().reinits, 1);
    assert!(t.port().is_none());
}

#[test]
fn a_ring_reinit_is_reported_not_followed() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[]);
    let mut sink = |_: &[u8]| {};
    t.round(&mut sink).unwrap();
    {
        let port = t.port().unwrap();
        let mut rings = port.rings();
        rings
            .hw_tx
            .ring(0)
            .unwrap()
            .send(&frame(0x0800, 1, 64))
            .unwrap();
    }
    nic.inject_tx_buf_idx(0, 0, 1);
    match t.round(&mut sink) {
        Err(Error::Netmap(NetmapError::RingReinit(id))) => assert_eq!(id.to_string(), "hw TX 0"),
        other => panic!("expected RingReinit, got {other:?}"),
    }
    assert_eq!(nic.counters().reinits, 1);
    assert!(t.port().is_none(), "a port the kernel reset is released");
    assert!(t.round(&mut sink).unwrap_err().is_fatal());
}

#[test]
fn a_duplicated_buffer_ends_the_tunnel_before_the_app_sees_it() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[SIG]);
    nic.wire_send(0, &frame(SIG, 1, 60)).unwrap();
    nic.inject_rx_buf_idx(0, 0, 2); // buffer 2 is the free hw TX slot 0
    let mut seen = 0;
    let mut app = |_: &[u8]| seen += 1;
    let r = t.round(&mut app);
    assert!(
        matches!(
            r,
            Err(Error::Netmap(NetmapError::DuplicateBuffer {
                buf_idx: 2,
                ..
            }))
        ),
        "{r:?}"
    );
    assert_eq!(seen, 0);
    assert!(t.port().is_none());
}

struct Echo;

impl emtun::App for Echo {
    fn on_frame(&mut self, f: Frame<'_>, tx: &mut Sender<'_, '_>) {
        let mut reply = f.data().to_vec();
        reply[..6].copy_from_slice(&f.data()[6..12]);
        tx.send(&reply).unwrap();
    }
}

#[test]
fn the_app_replies_on_the_queue_it_received_on() {
    let cfg = MemConfig {
        hw_rings: 2,
        ..MemConfig::default()
    };
    let (mut t, nic) = tunnel(&cfg, &[SIG]);
    for i in 0..10 {
        nic.wire_send((i % 2) as usize, &frame(SIG, i, 64)).unwrap();
        nic.wire_send((i % 2) as usize, &frame(0x0800, 100 + i, 64))
            .unwrap();
    }
    t.round(&mut Echo).unwrap();
    let out = nic.wire_take();
    assert_eq!(out.len(), 10);
    for (ring, f) in &out {
        assert_eq!(*ring as u32, seq_of(f) % 2);
    }
    assert_eq!(t.stats().from_app, 10);
    let up = nic.stack_take();
    assert_eq!(up.len(), 10, "both queues feed the host ring");
    nic.check_buffers().unwrap();
}

#[test]
fn the_app_can_build_frames_in_place() {
    struct Originate(u32);
    impl emtun::App for Originate {
        fn on_frame(&mut self, _f: Frame<'_>, _tx: &mut Sender<'_, '_>) {}
        fn on_pass(&mut self, tx: &mut Sender<'_, '_>) {
            while self.0 < 5 && tx.space() > 0 {
                let f = frame(SIG, self.0, 64);
                tx.send_with(|buf| {
                    buf[..f.len()].copy_from_slice(&f);
                    f.len()
                })
                .unwrap();
                self.0 += 1;
            }
        }
    }
    let (mut t, nic) = tunnel(&MemConfig::default(), &[SIG]);
    t.round(&mut Originate(0)).unwrap();
    let seqs: Vec<u32> = nic.wire_take().iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(t.stats().from_app, 5);
}

#[test]
fn frames_longer_than_a_buffer_cross_as_whole_chains() {
    // 256-byte buffers: a 1000-byte frame spans 4 slots both ways.
    for claims in [&[][..], &[SIG][..]] {
        let cfg = MemConfig {
            buf_size: 256,
            hw_slots: 16,
            host_slots: 16,
            ..MemConfig::default()
        };
        let (mut t, nic) = tunnel(&cfg, claims);
        let big: Vec<Vec<u8>> = (0..6)
            .map(|i| frame(0x0800, i, 1000 + i as usize))
            .collect();
        let small = frame(0x0806, 99, 60);
        for f in &big {
            nic.wire_send(0, f).unwrap();
            nic.stack_send(0, f).unwrap();
        }
        nic.wire_send(0, &small).unwrap();
        let mut app = Vec::new();
        rounds(&mut t, &mut app, 12);
        let up: Vec<_> = nic.stack_take().into_iter().map(|(_, f)| f).collect();
        let down: Vec<_> = nic.wire_take().into_iter().map(|(_, f)| f).collect();
        let mut want_up = big.clone();
        want_up.push(small.clone());
        assert_eq!(up, want_up, "chains reassemble byte-exact, in order");
        assert_eq!(down, big);
        assert_eq!(t.stats().to_host, 7);
        assert_eq!(t.stats().from_host, 6);
        nic.check_buffers().unwrap();
    }
}

#[test]
fn a_pure_forwarder_drops_runts_in_order() {
    let (mut t, nic) = tunnel(&MemConfig::default(), &[]);
    nic.wire_send(0, &frame(0x0800, 1, 64)).unwrap();
    nic.wire_send(0, &[0u8; 13]).unwrap();
    nic.wire_send(0, &frame(0x0800, 2, 64)).unwrap();
    nic.stack_send(0, &[0u8; 12]).unwrap();
    nic.stack_send(0, &frame(0x0800, 3, 64)).unwrap();
    let mut app = Vec::new();
    rounds(&mut t, &mut app, 2);
    let up: Vec<u32> = nic.stack_take().iter().map(|(_, f)| seq_of(f)).collect();
    let down: Vec<u32> = nic.wire_take().iter().map(|(_, f)| seq_of(f)).collect();
    assert_eq!((up, down), (vec![1, 2], vec![3]));
    assert_eq!(t.stats().dropped.runt, 2);
}

#[test]
fn adaptive_busy_polls_while_frames_flow_and_sleeps_in_poll_once_idle() {
    use std::time::{Duration, Instant};
    let (port, nic) = mem::port(&MemConfig::default());
    let spin = Duration::from_millis(20);
    let mut t = Tunnel::with_port(
        port,
        TunnelConfig::default()
            .poll(PollMode::Adaptive(spin))
            .claim(EtherType(SIG))
            .unwrap(),
    );
    let got = std::cell::Cell::new(0usize);
    let mut sink = |_: &[u8]| got.set(got.get() + 1);
    // Frames keep coming: every step finds work, so none sleeps.
    for i in 0..50u32 {
        nic.wire_send(0, &frame(SIG, i, 64)).unwrap();
        assert_eq!(t.step(&mut sink).unwrap(), 1);
    }
    assert_eq!(nic.counters().polls, 0, "no poll(2) while frames flow");
    // Idle: it spins (syncs, no poll) for the budget, then blocks in poll(2).
    let idle = Instant::now();
    while nic.counters().polls == 0 {
        assert_eq!(t.step(&mut sink).unwrap(), 0);
        assert!(idle.elapsed() < Duration::from_secs(5), "never slept");
    }
    assert!(
        idle.elapsed() >= spin,
        "slept before the spin budget ran out"
    );
    assert_eq!(got.get(), 50);
    // A frame after the sleep is taken by the next step, and the clock restarts.
    nic.wire_send(0, &frame(SIG, 99, 64)).unwrap();
    assert_eq!(t.step(&mut sink).unwrap(), 1);
    let polls = nic.counters().polls;
    assert_eq!(t.step(&mut sink).unwrap(), 0);
    assert_eq!(
        nic.counters().polls,
        polls,
        "a fresh idle spell spins first"
    );
    assert_eq!(got.get(), 51);
}
