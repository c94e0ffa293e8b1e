//! pingpong: the signal-pair benchmark. 50-octet signal pairs between two hosts,
//! over a claimed EtherType on netmap (while kernel traffic keeps being
//! tunnelled), or over UDP sockets through the kernel for comparison.
//!
//!     pingpong em0 --role server
//!     pingpong em0 --role client --count 1000000 --window 64
//!     pingpong --udp 10.0.0.2:7777 --role server   (bind address)
//!     pingpong --udp 10.0.0.2:7777 --role client --count 100000
//!
//! One result line of key=value pairs: pairs, pairs/s, CPU time from
//! getrusage, pairs per CPU-second, RTT (min/avg/p99) of the pairs.

use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use emtun::agent::{Node, State};
use emtun::netmap_user::ifnet::if_info;
use emtun::netmap_user::sysctl::Kern;
use emtun::{
    run_supervised, signal, App, Backoff, Error, EtherType, Event, Frame, IfName, PollMode, Sender,
    Stats, Tunnel, TunnelConfig,
};
use nix::sys::resource::{getrusage, UsageWho};

const PAYLOAD: usize = 50;
const MAGIC: &[u8; 4] = b"EMTN";
const PING: u8 = 1;
const PONG: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    Client,
    Server,
}

#[derive(Parser)]
#[command(about = "50-octet signal pairs over netmap (claimed EtherType) or UDP")]
struct Args {
    /// Interface for the netmap path (em or igb; an unarmed port runs as a
    /// plain netmap client without the kernel watchdog).
    iface: Option<String>,
    /// client sends pings and measures; server answers them.
    #[arg(long, value_enum)]
    role: Role,
    /// Use UDP sockets (kernel path) to this address instead of netmap
    /// (server: the address to bind).
    #[arg(long, value_name = "ADDR:PORT")]
    udp: Option<String>,
    /// Peer MAC address, aa:bb:cc:dd:ee:ff (default: broadcast).
    #[arg(long, value_name = "MAC")]
    peer: Option<String>,
    /// EtherType of the signal frames, claimed on the netmap path.
    #[arg(long, default_value = "0x88b5", value_name = "TYPE")]
    ethertype: EtherType,
    /// Pairs to exchange (client) or to answer before exiting (server, 0 = until signalled).
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Pings in flight (1 = strict ping-pong, for RTT).
    #[arg(long, default_value_t = 1)]
    window: u64,
    /// How the netmap loop waits when idle: adaptive (busy while frames flow, poll(2) after 50us idle), adaptive:SPIN, busy, interval or interval:DURATION.
    #[arg(long, default_value = "adaptive", value_name = "MODE")]
    poll: PollMode,
    /// Same as --poll busy (kept for scripts).
    #[arg(long)]
    busy: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// After a revoke, open the port again (with backoff) and carry on.
    #[arg(long)]
    reattach: bool,
}

/// ping/pong payload: magic, kind, pad, seq, send time (ns since start).
fn payload(kind: u8, seq: u64, t_ns: u64) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    p[..4].copy_from_slice(MAGIC);
    p[4] = kind;
    p[8..16].copy_from_slice(&seq.to_be_bytes());
    p[16..24].copy_from_slice(&t_ns.to_be_bytes());
    p
}

fn parse_payload(p: &[u8]) -> Option<(u8, u64, u64)> {
    if p.len() < PAYLOAD || &p[..4] != MAGIC {
        return None;
    }
    let u = |r: std::ops::Range<usize>| u64::from_be_bytes(p[r].try_into().unwrap_or([0; 8]));
    Some((p[4], u(8..16), u(16..24)))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    v.try_into().ok()
}

#[derive(Default)]
struct Tally {
    pairs: u64,
    lost: u64,
    rtt_ns: Vec<u64>,
}

fn cpu_secs() -> f64 {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

fn report(mode: &str, role: Role, t: &mut Tally, secs: f64, cpu: f64, extra: &str) {
    t.rtt_ns.sort_unstable();
    let pct = |q: f64| {
        t.rtt_ns
            .get(((t.rtt_ns.len() as f64 * q) as usize).min(t.rtt_ns.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let avg = if t.rtt_ns.is_empty() {
        0
    } else {
        t.rtt_ns.iter().sum::<u64>() / t.rtt_ns.len() as u64
    };
    let role = if role == Role::Client {
        "client"
    } else {
        "server"
    };
    println!(
        "pingpong mode={mode} role={role} pairs={} lost={} secs={secs:.3} pairs_per_s={:.0} cpu_s={cpu:.3} cpu_pct={:.1} pairs_per_cpu_s={:.0} rtt_min_us={:.1} rtt_avg_us={:.1} rtt_p99_us={:.1}{extra}",
        t.pairs,
        t.lost,
        t.pairs as f64 / secs.max(1e-9),
        100.0 * cpu / secs.max(1e-9),
        t.pairs as f64 / cpu.max(1e-9),
        pct(0.0) as f64 / 1e3,
        avg as f64 / 1e3,
        pct(0.99) as f64 / 1e3,
    );
}

struct Pinger<'a> {
    hdr: [u8; 14],
    count: u64,
    window: u64,
    sent: u64,
    start: Instant,
    last_rx: Instant,
    tally: Tally,
    done: &'a AtomicBool,
    stop: &'a AtomicBool,
}

impl App for Pinger<'_> {
    fn on_frame(&mut self, f: Frame<'_>, _tx: &mut Sender<'_, '_>) {
        if let Some((PONG, _seq, t0)) = parse_payload(&f.data()[14..]) {
            self.tally.pairs += 1;
            self.tally
                .rtt_ns
                .push((self.start.elapsed().as_nanos() as u64).saturating_sub(t0));
            self.last_rx = Instant::now();
        }
    }

    fn on_pass(&mut self, tx: &mut Sender<'_, '_>) {
        if self.tally.pairs + self.tally.lost >= self.count || self.stop.load(Ordering::Relaxed) {
            self.done.store(true, Ordering::Relaxed);
            return;
        }
        // A ping unanswered for a second is lost: free its window slot.
        let in_flight = self.sent - self.tally.pairs - self.tally.lost;
        if in_flight > 0 && self.last_rx.elapsed() > Duration::from_secs(1) {
            self.tally.lost += in_flight;
            self.last_rx = Instant::now();
        }
        let in_flight = self.sent - self.tally.pairs - self.tally.lost;
        let mut room = self
            .window
            .saturating_sub(in_flight)
            .min(self.count - self.sent);
        while room > 0 {
            let p = payload(PING, self.sent, self.start.elapsed().as_nanos() as u64);
            let hdr = self.hdr;
            let r = tx.send_with(|buf| {
                buf[..14].copy_from_slice(&hdr);
                buf[14..14 + PAYLOAD].copy_from_slice(&p);
                14 + PAYLOAD
            });
            if r.is_err() {
                break;
            }
            self.sent += 1;
            room -= 1;
        }
    }
}

struct Ponger<'a> {
    count: u64,
    tally: Tally,
    done: &'a AtomicBool,
    stop: &'a AtomicBool,
}

impl App for Ponger<'_> {
    fn on_frame(&mut self, f: Frame<'_>, tx: &mut Sender<'_, '_>) {
        let d = f.data();
        let Some((PING, seq, t0)) = parse_payload(&d[14..]) else {
            return;
        };
        let p = payload(PONG, seq, t0);
        let r = tx.send_with(|buf| {
            buf[..6].copy_from_slice(&d[6..12]);
            buf[6..12].copy_from_slice(&d[..6]);
            buf[12..14].copy_from_slice(&d[12..14]);
            buf[14..14 + PAYLOAD].copy_from_slice(&p);
            14 + PAYLOAD
        });
        if r.is_ok() {
            self.tally.pairs += 1;
        }
    }

    fn on_pass(&mut self, _tx: &mut Sender<'_, '_>) {
        if (self.count != 0 && self.tally.pairs >= self.count) || self.stop.load(Ordering::Relaxed)
        {
            self.done.store(true, Ordering::Relaxed);
        }
    }
}

fn run_netmap(a: &Args, iface: &str) -> Result<(), Error> {
    let poll = if a.busy { PollMode::Busy } else { a.poll };
    let name = IfName::new(iface)?;
    let mut cfg = TunnelConfig::default().claim(a.ethertype)?.poll(poll);
    // A peer that only measures may use an unarmed port: say so, plainly.
    let armed = Node::of(&name)
        .and_then(|n| n.state(&Kern).ok())
        .is_some_and(|s| s != State::Default);
    if !armed {
        eprintln!("pingpong: {iface} is not armed: plain netmap client, no kernel watchdog");
        cfg = cfg.unprotected();
    }
    let stop = signal::stop_on_signals();
    let done = AtomicBool::new(false);
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let (mut tally, s) = match a.role {
        Role::Client => {
            let src = if_info(&name)
                .and_then(|i| i.mac)
                .unwrap_or([0x02, 0, 0, 0, 0, 1]);
            let dst = a.peer.as_deref().and_then(parse_mac).unwrap_or([0xff; 6]);
            let mut hdr = [0u8; 14];
            hdr[..6].copy_from_slice(&dst);
            hdr[6..12].copy_from_slice(&src);
            hdr[12..].copy_from_slice(&a.ethertype.0.to_be_bytes());
            let mut app = Pinger {
                hdr,
                count: a.count,
                window: a.window.max(1),
                sent: 0,
                start,
                last_rx: start,
                tally: Tally::default(),
                done: &done,
                stop,
            };
            let s = drive(a, iface, &cfg, &done, a.timeout, &mut app)?;
            (app.tally, s)
        }
        Role::Server => {
            let mut app = Ponger {
                count: a.count,
                tally: Tally::default(),
                done: &done,
                stop,
            };
            let timeout = if a.count == 0 { u64::MAX } else { a.timeout };
            let s = drive(a, iface, &cfg, &done, timeout, &mut app)?;
            (app.tally, s)
        }
    };
    let extra = format!(
        " to_app={} from_app={} to_host={} from_host={} rounds={}",
        s.to_app, s.from_app, s.to_host, s.from_host, s.rounds
    );
    report(
        "netmap",
        a.role,
        &mut tally,
        start.elapsed().as_secs_f64(),
        cpu_secs() - cpu0,
        &extra,
    );
    Ok(())
}

/// Runs `app` until it is done or `timeout` seconds pass: on one
/// registration, or with `--reattach` across revokes.
fn drive(
    a: &Args,
    iface: &str,
    cfg: &TunnelConfig,
    done: &AtomicBool,
    timeout: u64,
    app: &mut dyn App,
) -> Result<Stats, Error> {
    if !a.reattach {
        let mut tun = Tunnel::open(iface, cfg.clone())?;
        run_bounded(&mut tun, done, timeout, app)?;
        return Ok(tun.stats());
    }
    let backoff = Backoff {
        max_retries: None,
        ..Backoff::default()
    };
    std::thread::scope(|sc| {
        // The deadline, for a loop that only looks at `done`.
        sc.spawn(|| {
            let end = Instant::now().checked_add(Duration::from_secs(timeout));
            while !done.load(Ordering::Relaxed) {
                if end.is_some_and(|e| Instant::now() > e) {
                    eprintln!("pingpong: timeout after {timeout} s");
                    done.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let (r, stats) = run_supervised(
            || Tunnel::open(iface, cfg.clone()),
            done,
            app,
            &backoff,
            |ev| match ev {
                Event::Attached { attempt } if *attempt > 1 => {
                    eprintln!("pingpong: {iface}: re-attached (open {attempt})")
                }
                Event::Attached { .. } => {}
                Event::Detached(e) => eprintln!("pingpong: {iface}: detached: {e}; re-attaching"),
                Event::Retrying {
                    failures, error, ..
                } => {
                    eprintln!("pingpong: {iface}: open {failures} failed: {error}")
                }
            },
        );
        done.store(true, Ordering::Relaxed);
        r.map(|()| stats)
    })
}

fn run_bounded(
    tun: &mut Tunnel,
    done: &AtomicBool,
    timeout: u64,
    app: &mut dyn App,
) -> Result<(), Error> {
    let deadline = Instant::now().checked_add(Duration::from_secs(timeout));
    while !done.load(Ordering::Relaxed) {
        if deadline.is_some_and(|d| Instant::now() > d) {
            eprintln!("pingpong: timeout after {timeout} s");
            break;
        }
        tun.step(app)?;
    }
    Ok(())
}

fn run_udp(a: &Args, addr: &str) -> std::io::Result<()> {
    let stop = signal::stop_on_signals();
    let mut tally = Tally::default();
    let mut buf = [0u8; 1500];
    let cpu0 = cpu_secs();
    let start = Instant::now();
    match a.role {
        Role::Server => {
            let s = UdpSocket::bind(addr)?;
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            while !stop.load(Ordering::Relaxed) && (a.count == 0 || tally.pairs < a.count) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((PING, seq, t0)) = parse_payload(&buf[..n]) {
                    s.send_to(&payload(PONG, seq, t0), from)?;
                    tally.pairs += 1;
                }
            }
        }
        Role::Client => {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            let mut sent = 0u64;
            while sent < a.window.max(1).min(a.count) {
                s.send(&payload(PING, sent, start.elapsed().as_nanos() as u64))?;
                sent += 1;
            }
            let deadline = start + Duration::from_secs(a.timeout);
            while tally.pairs + tally.lost < a.count
                && !stop.load(Ordering::Relaxed)
                && Instant::now() < deadline
            {
                match s.recv(&mut buf) {
                    Ok(n) => {
                        if let Some((PONG, _, t0)) = parse_payload(&buf[..n]) {
                            tally.pairs += 1;
                            tally
                                .rtt_ns
                                .push((start.elapsed().as_nanos() as u64).saturating_sub(t0));
                        }
                    }
                    Err(_) => tally.lost += sent - tally.pairs - tally.lost,
                }
                while sent - tally.pairs - tally.lost < a.window.max(1) && sent < a.count {
                    s.send(&payload(PING, sent, start.elapsed().as_nanos() as u64))?;
                    sent += 1;
                }
            }
        }
    }
    report(
        "udp",
        a.role,
        &mut tally,
        start.elapsed().as_secs_f64(),
        cpu_secs() - cpu0,
        "",
    );
    Ok(())
}

fn main() -> ExitCode {
    let a = Args::parse();
    let r = match (&a.udp, &a.iface) {
        (Some(addr), _) => {
            run_udp(&a, addr).map_err(|e| Error::from(emtun::netmap_user::Error::from(e)))
        }
        (None, Some(iface)) => run_netmap(&a, iface),
        (None, None) => {
            eprintln!("pingpong: give an interface, or --udp ADDR:PORT");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_revoked() => {
            eprintln!("pingpong: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("pingpong: {e}");
            ExitCode::from(1)
        }
    }
}
