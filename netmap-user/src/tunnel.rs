//! The tunnel: a port, the engine, and the poll loop that is also the
//! heartbeat the kernel watchdog listens for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::classify::{ClaimSet, EtherType};
use crate::engine::{App, Engine};
use crate::error::Error;
use crate::port::{Backend, Port};
use crate::stats::Stats;
use crate::sys::Kernel;

/// How the loop waits between rounds that found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Never sleep: lowest latency, one core at 100 %.
    Busy,
    /// Sleep in poll(2) up to this long (the seed uses 1 ms). It must stay
    /// well below the kernel watchdog period.
    Interval(Duration),
}

#[derive(Debug, Clone)]
pub struct TunnelConfig {
    claims: ClaimSet,
    poll: PollMode,
    batch: usize,
    any_nic: bool,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            claims: ClaimSet::default(),
            poll: PollMode::Interval(Duration::from_millis(1)),
            batch: 256,
            any_nic: false,
        }
    }
}

impl TunnelConfig {
    /// Claims frames of EtherType `t` for the application.
    pub fn claim(mut self, t: EtherType) -> Self {
        self.claims.insert(t);
        self
    }

    pub fn poll(mut self, p: PollMode) -> Self {
        self.poll = p;
        self
    }

    /// Frames moved per ring per round (1..=4096).
    pub fn batch(mut self, b: usize) -> Self {
        self.batch = b.clamp(1, 4096);
        self
    }

    /// Allows interfaces that are not em(4)/igb(4) (plain netmap semantics,
    /// no kernel watchdog).
    pub fn allow_any_nic(mut self) -> Self {
        self.any_nic = true;
        self
    }

    pub fn claims(&self) -> &ClaimSet {
        &self.claims
    }
}

/// em(4) and igb(4) share if_em.c and the emtun patch.
pub fn is_em_name(ifname: &str) -> bool {
    ["em", "igb"].iter().any(|p| {
        ifname
            .strip_prefix(p)
            .is_some_and(|unit| !unit.is_empty() && unit.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A running tunnel over one port.
pub struct Tunnel<B: Backend = Kernel> {
    /// None once the kernel revoked or reset the port: it was released.
    port: Option<Port<B>>,
    engine: Engine,
    poll: PollMode,
}

impl Tunnel<Kernel> {
    /// Opens `ifname` through netmap, hardware and host rings, exclusively.
    pub fn open(ifname: &str, cfg: TunnelConfig) -> Result<Tunnel<Kernel>, Error> {
        crate::sys::check_name(ifname)?;
        if !cfg.any_nic && !is_em_name(ifname) {
            return Err(Error::NotEm(ifname.to_string()));
        }
        // Checked first: registering resets the NIC.
        if crate::sys::kernel_forwarding() {
            return Err(Error::KernelForwarding);
        }
        let port = Port::open(ifname)?;
        Ok(Tunnel::with_port(port, cfg))
    }
}

impl<B: Backend> Tunnel<B> {
    pub fn with_port(port: Port<B>, cfg: TunnelConfig) -> Tunnel<B> {
        Tunnel {
            port: Some(port),
            engine: Engine::new(cfg.claims, cfg.batch),
            poll: cfg.poll,
        }
    }

    /// Replaces the engine (e.g. the copying baseline in benchmarks).
    pub fn with_engine(mut self, engine: Engine) -> Tunnel<B> {
        self.engine = engine;
        self
    }

    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// The port, unless the kernel took it back.
    pub fn port(&mut self) -> Option<&mut Port<B>> {
        self.port.as_mut()
    }

    /// One round: RX sync, one engine pass, TX sync. Returns the frames
    /// handled. After `Revoked` or `RingReinit` the port is released (fd
    /// closed, memory unmapped) and every later call returns `Revoked`.
    pub fn round<A: App + ?Sized>(&mut self, app: &mut A) -> Result<usize, Error> {
        let Some(port) = self.port.as_mut() else {
            return Err(Error::Revoked);
        };
        let r = Self::round_on(port, &mut self.engine, app);
        if matches!(r, Err(Error::Revoked) | Err(Error::RingReinit(_))) {
            self.port = None;
        }
        r
    }

    fn round_on<A: App + ?Sized>(
        port: &mut Port<B>,
        engine: &mut Engine,
        app: &mut A,
    ) -> Result<usize, Error> {
        port.rxsync()?;
        let n = engine.pass(&mut port.rings(), app);
        port.txsync()?;
        engine.count_round();
        Ok(n)
    }

    /// Runs rounds until `stop` is set (Ok) or the port fails (Err; a
    /// revocation is `Error::Revoked`).
    pub fn run_until<A: App + ?Sized>(
        &mut self,
        stop: &AtomicBool,
        app: &mut A,
    ) -> Result<(), Error> {
        while !stop.load(Ordering::Relaxed) {
            let n = self.round(app)?;
            if n != 0 {
                continue;
            }
            match self.poll {
                PollMode::Busy => std::hint::spin_loop(),
                PollMode::Interval(d) => {
                    let r = match self.port.as_mut() {
                        Some(p) => p.wait(Some(d)),
                        None => Err(Error::Revoked),
                    };
                    if let Err(e) = r {
                        self.port = None;
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn em_names() {
        assert!(is_em_name("em0"));
        assert!(is_em_name("igb12"));
        assert!(!is_em_name("em"));
        assert!(!is_em_name("vtnet0"));
        assert!(!is_em_name("em0a"));
        assert!(!is_em_name("lem0"));
    }

    #[test]
    fn open_rejects_bad_and_foreign_names_before_touching_the_kernel() {
        let cfg = TunnelConfig::default;
        assert!(matches!(Tunnel::open("", cfg()), Err(Error::BadName(_))));
        assert!(matches!(
            Tunnel::open("a-very-long-ifname0", cfg()),
            Err(Error::BadName(_))
        ));
        assert!(matches!(
            Tunnel::open("vtnet0", cfg()),
            Err(Error::NotEm(_))
        ));
    }

    #[cfg(not(target_os = "freebsd"))]
    #[test]
    fn open_says_unsupported_off_freebsd() {
        assert!(matches!(
            Tunnel::open("em0", TunnelConfig::default()),
            Err(Error::Unsupported)
        ));
    }
}
