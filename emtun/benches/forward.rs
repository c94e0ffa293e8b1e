//! Forwarding rate of the tunnel engine on the in-memory port: zero-copy
//! buffer swaps against the copying baseline, for batch sizes 1..256 and
//! minimum and full-size frames. The simulated NIC is in benchmark mode
//! (no data copies of its own), so what is measured is the engine plus the
//! sync bookkeeping. Each element is one frame moved NIC -> host stack.
//!
//! The `pairs` group is the in-memory counterpart of the VM benchmark
//! (tests/vm/bench.py): whole rounds at batch 256 (RX sync, engine pass,
//! TX sync of the simulated kernel) in which every frame is claimed and
//! answered by the application with a 64-byte reply built in the TX slot,
//! as `pingpong --role server` answers a signal pair; beside it, the same
//! rounds forwarding every frame to the host stack (the tunnel's work for
//! one kernel-bound frame). Each element is one frame.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use emtun::netmap_user::mem::{self, MemConfig};
use emtun::netmap_user::Frame;
use emtun::{App, Engine, EtherType, PollMode, Sender, Tunnel, TunnelConfig};

fn forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    g.sample_size(30)
        .measurement_time(std::time::Duration::from_secs(2))
        .warm_up_time(std::time::Duration::from_millis(300));
    for len in [60u16, 1514] {
        for batch in [1usize, 4, 16, 64, 256] {
            g.throughput(Throughput::Elements(batch as u64));
            for (name, copy) in [("swap", false), ("copy", true)] {
                let cfg = MemConfig {
                    synthetic: Some(len),
                    ..MemConfig::default()
                };
                let (port, _nic) = mem::port(&cfg);
                let engine = Engine::new(Default::default(), batch);
                let engine = if copy { engine.copying() } else { engine };
                let mut t = Tunnel::with_port(port, TunnelConfig::default().poll(PollMode::Busy))
                    .with_engine(engine);
                let mut sink = |_: &[u8]| {};
                g.bench_with_input(
                    BenchmarkId::new(format!("{name}/{len}B"), batch),
                    &batch,
                    |b, _| b.iter(|| t.round(&mut sink).unwrap_or(0)),
                );
                assert_eq!(t.stats().dropped.total(), 0);
            }
        }
    }
    g.finish();
}

/// The engine pass alone: the syncs around it run outside the timed part,
/// so the simulated kernel's bookkeeping is not counted.
fn engine_only(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sample_size(30)
        .measurement_time(std::time::Duration::from_secs(2))
        .warm_up_time(std::time::Duration::from_millis(300));
    for len in [60u16, 1514] {
        for batch in [1usize, 16, 256] {
            g.throughput(Throughput::Elements(batch as u64));
            for (name, copy) in [("swap", false), ("copy", true)] {
                let cfg = MemConfig {
                    synthetic: Some(len),
                    ..MemConfig::default()
                };
                let (mut port, _nic) = mem::port(&cfg);
                let engine = Engine::new(Default::default(), batch);
                let mut engine = if copy { engine.copying() } else { engine };
                let mut sink = |_: &[u8]| {};
                g.bench_with_input(
                    BenchmarkId::new(format!("{name}/{len}B"), batch),
                    &batch,
                    |b, _| {
                        b.iter_custom(|iters| {
                            let mut total = std::time::Duration::ZERO;
                            for _ in 0..iters {
                                port.rxsync().ok();
                                let t0 = std::time::Instant::now();
                                std::hint::black_box(engine.pass(&mut port.rings(), &mut sink));
                                total += t0.elapsed();
                                port.txsync().ok();
                            }
                            total
                        })
                    },
                );
            }
        }
    }
    g.finish();
}

/// Answers every claimed frame with a 64-byte reply (addresses swapped),
/// as the pingpong server does.
struct Answer {
    answered: u64,
    full: u64,
}

impl App for Answer {
    fn on_frame(&mut self, f: Frame<'_>, tx: &mut Sender<'_, '_>) {
        let d = f.data();
        let r = tx.send_with(|buf| {
            buf[..6].copy_from_slice(&d[6..12]);
            buf[6..12].copy_from_slice(&d[..6]);
            buf[12..64].copy_from_slice(&d[12..64]);
            64
        });
        if r.is_ok() {
            self.answered += 1;
        } else {
            self.full += 1;
        }
    }
}

/// Whole rounds at batch 256 with the simulated kernel's syncs: frames
/// answered by the application (the user path of a signal pair) against
/// frames forwarded to the host stack.
fn pairs(c: &mut Criterion) {
    let mut g = c.benchmark_group("pairs");
    g.sample_size(30)
        .measurement_time(std::time::Duration::from_secs(2))
        .warm_up_time(std::time::Duration::from_millis(300));
    let batch = 256usize;
    g.throughput(Throughput::Elements(batch as u64));
    for answer in [true, false] {
        let cfg = MemConfig {
            synthetic: Some(64),
            ..MemConfig::default()
        };
        let (port, _nic) = mem::port(&cfg);
        // the synthetic frames are IPv4: claimed, they go to the application
        let tcfg = TunnelConfig::default().poll(PollMode::Busy);
        let tcfg = if answer {
            tcfg.claim(EtherType::IPV4).expect("IPv4 is claimable")
        } else {
            tcfg
        };
        let claims = tcfg.claims().clone();
        let mut t = Tunnel::with_port(port, tcfg).with_engine(Engine::new(claims, batch));
        let mut app = Answer {
            answered: 0,
            full: 0,
        };
        let name = if answer { "answer/64B" } else { "to_host/64B" };
        g.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, _| {
            b.iter(|| t.round(&mut app).unwrap_or(0))
        });
        assert_eq!(t.stats().dropped.total(), 0);
        assert_eq!(app.full, 0, "the TX ring never ran out of slots");
        if answer {
            assert!(app.answered > 0);
        }
    }
    g.finish();
}

criterion_group!(benches, forward, engine_only, pairs);
criterion_main!(benches);
