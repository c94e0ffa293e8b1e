use netmap_user::mem::{self, MemConfig};
use netmap_user::{Engine, PollMode, Tunnel, TunnelConfig};
fn main() {
    let len: u16 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let batch: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let cfg = MemConfig { synthetic: Some(len), ..MemConfig::default() };
    let (port, nic) = mem::port(&cfg);
    let mut t = Tunnel::with_port(port, TunnelConfig::default().poll(PollMode::Busy)).with_engine(Engine::new(Default::default(), batch));
    let mut sink = |_: &[u8]| {};
    let t0 = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..20000 { n += t.round(&mut sink).unwrap(); }
    let e = t0.elapsed().as_secs_f64();
    println!("{} frames in {:.3}s = {:.1} Mpps stats={:?} nic={:?}", n, e, n as f64 / e / 1e6, t.stats(), nic.counters());
}
