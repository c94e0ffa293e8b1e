//! The tunnel: a port, the engine, and the poll loop that is also the
//! heartbeat the kernel watchdog listens for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netmap_user::sysctl::{Kern, Sysctl};
use netmap_user::{Backend, IfName, Kernel, Port};

use crate::agent::{Node, State};
use crate::classify::{ClaimError, ClaimSet, EtherType};
use crate::engine::{App, Engine};
use crate::error::Error;
use crate::poll::{Pace, Pacer, PollMode};
use crate::stats::Stats;

/// How a tunnel is set up: claimed EtherTypes, poll mode, batch size.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    claims: ClaimSet,
    poll: PollMode,
    batch: usize,
    unprotected: bool,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            claims: ClaimSet::default(),
            poll: PollMode::default(),
            batch: 256,
            unprotected: false,
        }
    }
}

impl TunnelConfig {
    /// Claims frames of EtherType `t` for the application.
    ///
    /// # Errors
    /// [`ClaimError`] for a length or a VLAN tag identifier.
    pub fn claim(mut self, t: EtherType) -> Result<Self, ClaimError> {
        self.claims.insert(t)?;
        Ok(self)
    }

    /// Claims every type of `types`.
    ///
    /// # Errors
    /// As [`TunnelConfig::claim`], for the first refused type.
    pub fn claim_all(mut self, types: &[EtherType]) -> Result<Self, ClaimError> {
        for t in types {
            self.claims.insert(*t)?;
        }
        Ok(self)
    }

    /// Claims exactly the types of `claims` (already checked by
    /// [`ClaimSet::insert`]), replacing any earlier claim.
    pub fn claim_set(mut self, claims: ClaimSet) -> Self {
        self.claims = claims;
        self
    }

    /// Sets how the loop waits when idle (default: adaptive, 50 µs spin).
    pub fn poll(mut self, p: PollMode) -> Self {
        self.poll = p;
        self
    }

    /// Frames moved per ring per round (1..=4096; default 256).
    pub fn batch(mut self, b: usize) -> Self {
        self.batch = b.clamp(1, 4096);
        self
    }

    /// Opens ports the kernel agent does not protect: other drivers,
    /// unarmed em ports, netmap's emulated adapter. Plain netmap semantics:
    /// no watchdog gives the port back if this process hangs.
    pub fn unprotected(mut self) -> Self {
        self.unprotected = true;
        self
    }

    /// The claimed types.
    pub fn claims(&self) -> &ClaimSet {
        &self.claims
    }

    /// The poll mode.
    pub fn poll_mode(&self) -> PollMode {
        self.poll
    }
}

/// A running tunnel over one port.
pub struct Tunnel<B: Backend = Kernel> {
    /// None once the kernel revoked or reset the port: it was released.
    port: Option<Port<B>>,
    engine: Engine,
    pacer: Pacer,
}

impl Tunnel<Kernel> {
    /// Opens `ifname` through netmap, hardware and host rings, exclusively,
    /// and checks that the kernel agent now reports it `tunneled` by this
    /// process, so that its watchdog protects the kernel path.
    ///
    /// # Errors
    /// [`Error::NotEm`] for other drivers and [`Error::Unprotected`] when the
    /// agent did not see the registration (both unless
    /// [`TunnelConfig::unprotected`]); [`Error::KernelForwarding`]; every
    /// error of [`netmap_user::Port::open`].
    pub fn open(ifname: &str, cfg: TunnelConfig) -> Result<Tunnel<Kernel>, Error> {
        let name = IfName::new(ifname)?;
        let node = Node::of(&name);
        if node.is_none() && !cfg.unprotected {
            return Err(Error::NotEm(name));
        }
        // Checked first: registering moves the NIC to netmap mode.
        if Kern.get_int("dev.netmap.fwd").is_ok_and(|v| v != 0) {
            return Err(Error::KernelForwarding);
        }
        if let Some(mtu) = netmap_user::ifnet::if_info(&name).and_then(|i| i.mtu) {
            check_mtu(&name, mtu, Kern.get_int("dev.netmap.buf_size").ok())?;
        }
        let port = Port::open(ifname)?;
        if let (Some(node), false) = (node, cfg.unprotected) {
            check_protected(&Kern, &node)?;
        }
        Ok(Tunnel::with_port(port, cfg))
    }
}

/// The largest NIC receive buffer of iflib (`MJUMPAGESIZE`): larger frames
/// arrive as `NS_MOREFRAG` chains.
const NIC_RX_BUF_MAX: u32 = 4096;
/// Ethernet header and one VLAN tag.
const FRAME_OVERHEAD: u32 = 18;

/// Every frame of `mtu` (with its Ethernet header and one VLAN tag) must fit
/// one netmap buffer and one NIC receive buffer: the host rings carry no
/// `NS_MOREFRAG` chains. The kernel agent refuses the rest too; this says
/// why before the NIC switches.
fn check_mtu(name: &IfName, mtu: u32, buf_size: Option<i64>) -> Result<(), Error> {
    let Some(buf_size) = buf_size.and_then(|b| u32::try_from(b).ok()) else {
        return Ok(()); // unknown: let the kernel judge
    };
    let frame = mtu.saturating_add(FRAME_OVERHEAD);
    let limit = buf_size.min(NIC_RX_BUF_MAX);
    if frame <= limit {
        return Ok(());
    }
    let fix = if frame <= NIC_RX_BUF_MAX {
        let suggest = frame.div_ceil(1024) * 1024;
        format!(
            "raise it before starting, e.g. `sysctl dev.netmap.buf_size={suggest} dev.netmap.buf_num=16384` \
             (buf_num x buf_size bytes of memory), or lower the MTU to {} or less",
            limit - FRAME_OVERHEAD
        )
    } else {
        format!(
            "lower the MTU to {} or less (to {} with `sysctl dev.netmap.buf_size=4096`)",
            limit - FRAME_OVERHEAD,
            NIC_RX_BUF_MAX - FRAME_OVERHEAD
        )
    };
    Err(Error::MtuTooLarge {
        iface: name.clone(),
        mtu,
        frame,
        buf_size,
        fix,
    })
}

/// After registering: the agent must say `tunneled`, owned by us.
fn check_protected(k: &dyn Sysctl, node: &Node) -> Result<(), Error> {
    let me = std::process::id();
    let state = node.state(k);
    let owner = node.owner_pid(k).unwrap_or(0);
    let hint = match &state {
        Ok(State::Tunneled) if owner == i64::from(me) => return Ok(()),
        Err(_) => "this kernel has no emtun agent: apply kmod-patch",
        Ok(State::Default) => "the port is not armed: run `emtunctl arm` first",
        Ok(State::Armed) => {
            "netmap used its emulated adapter, not em(4)'s native one: check dev.netmap.admode (must be 0 or 1)"
        }
        Ok(_) => "another registration owns the port",
    };
    Err(Error::Unprotected {
        iface: node.ifname.clone(),
        state: state.map_or_else(|_| "none".to_string(), |s| s.to_string()),
        owner,
        me,
        hint,
    })
}

impl<B: Backend> Tunnel<B> {
    /// A tunnel over a port opened elsewhere (e.g. the in-memory port).
    pub fn with_port(port: Port<B>, cfg: TunnelConfig) -> Tunnel<B> {
        Tunnel {
            port: Some(port),
            engine: Engine::new(cfg.claims, cfg.batch),
            pacer: Pacer::new(cfg.poll),
        }
    }

    /// Replaces the engine (e.g. the copying baseline in benchmarks).
    pub fn with_engine(mut self, engine: Engine) -> Tunnel<B> {
        self.engine = engine;
        self
    }

    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// The port, unless it failed for good and was released.
    pub fn port(&mut self) -> Option<&mut Port<B>> {
        self.port.as_mut()
    }

    /// One round: RX sync, one engine pass, TX sync. Returns the frames
    /// handled.
    ///
    /// # Errors
    /// The port's errors. After a fatal one ([`Error::is_fatal`]) the port
    /// is released (descriptor closed, memory unmapped) and every later
    /// call returns `Revoked`.
    pub fn round<A: App + ?Sized>(&mut self, app: &mut A) -> Result<usize, Error> {
        self.on_port(|port, engine| Self::round_on(port, engine, app))
    }

    /// Runs `f` on the port: `Revoked` once it was released, and a fatal
    /// error ([`Error::is_fatal`]) releases it.
    fn on_port<T>(
        &mut self,
        f: impl FnOnce(&mut Port<B>, &mut Engine) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let Some(port) = self.port.as_mut() else {
            return Err(netmap_user::Error::Revoked.into());
        };
        let r = f(port, &mut self.engine);
        if matches!(&r, Err(e) if e.is_fatal()) {
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

    /// One round, then what its [`PollMode`] does when the round found
    /// nothing: run on, spin, or block in `poll(2)` (see [`Pacer`]).
    /// Returns the frames handled.
    ///
    /// # Errors
    /// As [`Tunnel::round`]; `poll(2)` reporting `POLLERR` is a revocation.
    pub fn step<A: App + ?Sized>(&mut self, app: &mut A) -> Result<usize, Error> {
        let n = self.round(app)?;
        if n != 0 {
            self.pacer.worked();
            return Ok(n);
        }
        match self.pacer.idle(Instant::now()) {
            Pace::Go => std::hint::spin_loop(),
            Pace::Sleep(d) => self.wait(d)?,
        }
        Ok(0)
    }

    /// Blocks in `poll(2)` on the port for at most `d`; netmap's poll syncs
    /// the rings, so this is also a heartbeat.
    fn wait(&mut self, d: Duration) -> Result<(), Error> {
        self.on_port(|port, _| Ok(port.wait(Some(d))?))
    }

    /// The poll mode of this tunnel.
    pub fn poll_mode(&self) -> PollMode {
        self.pacer.mode()
    }

    /// Runs [`Tunnel::step`] until `stop` is set (`Ok`) or the port fails.
    ///
    /// # Errors
    /// As [`Tunnel::round`]; a revocation is [`Error::is_revoked`].
    pub fn run_until<A: App + ?Sized>(
        &mut self,
        stop: &AtomicBool,
        app: &mut A,
    ) -> Result<(), Error> {
        while !stop.load(Ordering::Relaxed) {
            self.step(app)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mtu_whose_frames_overflow_the_buffers_is_refused_with_the_fix() {
        let em0 = IfName::new("em0").unwrap();
        assert!(check_mtu(&em0, 1500, Some(2048)).is_ok());
        assert!(check_mtu(&em0, 2030, Some(2048)).is_ok());
        assert!(check_mtu(&em0, 4078, Some(4096)).is_ok());
        assert!(
            check_mtu(&em0, 9000, None).is_ok(),
            "unknown buf_size: let the kernel judge"
        );
        // fits a NIC buffer: bigger netmap buffers fix it
        let e = check_mtu(&em0, 4000, Some(2048)).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::MtuTooLarge { frame: 4018, .. }), "{e:?}");
        assert!(msg.contains("dev.netmap.buf_size=4096"), "{msg}");
        assert!(msg.contains("MTU to 2030 or less"), "{msg}");
        // jumbo: chained in the NIC, no buffer size fixes it
        for buf in [2048, 9216, 16384] {
            let msg = check_mtu(&em0, 9000, Some(buf)).unwrap_err().to_string();
            assert!(msg.contains("MTU 9000"), "{msg}");
            assert!(msg.contains("4078"), "{msg}");
            assert!(!msg.contains("buf_num"), "{msg}");
        }
        assert!(check_mtu(&em0, 2031, Some(2048)).is_err());
    }

    #[test]
    fn open_rejects_bad_and_foreign_names_before_touching_the_kernel() {
        let cfg = TunnelConfig::default;
        use netmap_user::Error as N;
        assert!(matches!(
            Tunnel::open("", cfg()),
            Err(Error::Netmap(N::BadName(_)))
        ));
        assert!(matches!(
            Tunnel::open("a-very-long-ifname0", cfg()),
            Err(Error::Netmap(N::BadName(_)))
        ));
        assert!(matches!(Tunnel::open("em01", cfg()), Err(Error::NotEm(_))));
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
            Err(Error::Netmap(netmap_user::Error::Unsupported))
        ));
    }

    #[test]
    fn a_registration_the_agent_did_not_see_is_refused_with_its_cause() {
        use netmap_user::sysctl::mem::{Access, MemSysctl, Val};
        let k = MemSysctl::new();
        let node = Node::of(&IfName::new("em0").unwrap()).unwrap();
        let me = i64::from(std::process::id());
        let e = check_protected(&k, &node).unwrap_err();
        assert!(e.to_string().contains("no emtun agent"), "{e}");
        k.add(
            "dev.em.0.tunnel.state",
            Val::Str("armed".into()),
            Access::Ro,
        );
        k.add("dev.em.0.tunnel.owner_pid", Val::Int(0), Access::Ro);
        let e = check_protected(&k, &node).unwrap_err();
        assert!(e.to_string().contains("emulated adapter"), "{e}");
        assert!(e.to_string().contains("no watchdog"), "{e}");
        k.put("dev.em.0.tunnel.state", Val::Str("tunneled".into()));
        k.put("dev.em.0.tunnel.owner_pid", Val::Int(me + 1));
        assert!(
            check_protected(&k, &node).is_err(),
            "tunneled by another pid"
        );
        k.put("dev.em.0.tunnel.owner_pid", Val::Int(me));
        check_protected(&k, &node).unwrap();
    }
}
