//! Forwarding rate of the tunnel engine on the in-memory port: zero-copy
//! buffer swaps against the copying baseline, for batch sizes 1..256 and
//! minimum and full-size frames. The simulated NIC is in benchmark mode
//! (no data copies of its own), so what is measured is the engine plus the
//! sync bookkeeping. Each element is one frame moved NIC -> host stack.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use emtun::netmap_user::mem::{self, MemConfig};
use emtun::{Engine, PollMode, Tunnel, TunnelConfig};

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

criterion_group!(benches, forward, engine_only);
criterion_main!(benches);
