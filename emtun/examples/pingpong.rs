//! pingpong: the signal-pair benchmark. 50-octet signal pairs between two hosts,
//! over a claimed EtherType on netmap (while kernel traffic keeps being
//! tunnelled), or over UDP sockets through the kernel for comparison.
//!
//!     pingpong em0 --role server
//!     pingpong em0 --role client --count 1000000 --window 64
//!     pingpong --udp 10.0.0.2:7777 --role server   (bind address)
//!     pingpong --udp 10.0.0.2:7777 --role client --count 100000
//!     pingpong em0 --role client --udp-over-netmap 10.0.0.2:7777 --src-ip 10.0.0.1 \
//!         --peer MAC --window 64 --rate 2000 --duration 20
//!
//! One result line of key=value pairs: pairs, pairs/s, CPU time from
//! getrusage, pairs per CPU-second, RTT (min/avg/p99) of the pairs.
//!
//! Benchmark knobs (tests/vm/bench.py): a client may pace its pings
//! (`--rate`, pings per second, still bounded by `--window`) and stop after
//! `--duration` seconds; `--delay-ms` waits before the first ping (a NIC
//! that just entered netmap mode may refuse frames for a while: QEMU's
//! e1000 for 1 s); `--udp-over-netmap` makes a netmap client speak
//! UDP/IPv4 to a kernel's UDP server (Ethernet + IPv4 + UDP frames with the
//! same 50-octet payload, built and parsed in user space), so the peer
//! drives the kernel path as cheaply as the user path. A server given
//! `--cpu-window SKIP:N` reads the whole guest's `kern.cp_time` after SKIP
//! pairs of a burst and again after N more, and prints one `pingpong window
//! ...` line: the guest CPU spent per pair, whatever process or interrupt
//! spent it. A burst is one client run: pairs after a pause of 0.5 s or more.

use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use emtun::agent::{Node, State};
use emtun::netmap_user::ifnet::if_info;
use emtun::netmap_user::sysctl::{Kern, Sysctl};
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
    /// Client: at most this many pings per second (0 = as fast as the window allows).
    #[arg(long, default_value_t = 0, value_name = "PPS")]
    rate: u64,
    /// Client: with --rate, send pings in bursts of this many, each burst
    /// due at once (1 = evenly spaced).
    #[arg(long, default_value_t = 1, value_name = "N")]
    burst: u64,
    /// Client: stop sending after this many seconds (0 = after --count pairs).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    duration: u64,
    /// Netmap client: send UDP/IPv4 to this address (a kernel's UDP server)
    /// instead of the claimed EtherType; claims IPv4 on the port.
    #[arg(long, value_name = "IP:PORT")]
    udp_over_netmap: Option<std::net::SocketAddrV4>,
    /// Source address of --udp-over-netmap frames (the port's own address).
    #[arg(long, value_name = "IP")]
    src_ip: Option<std::net::Ipv4Addr>,
    /// Client: wait this long before the first ping.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    delay_ms: u64,
    /// Server: guest CPU (kern.cp_time, all CPUs) over N pairs, after SKIP
    /// pairs of each burst (pairs after a 0.5 s pause).
    #[arg(long, value_name = "SKIP:N")]
    cpu_window: Option<CpuWindowArg>,
    /// After a revoke, open the port again (with backoff) and carry on.
    #[arg(long)]
    reattach: bool,
}

/// `SKIP:N` of `--cpu-window`.
#[derive(Clone, Copy)]
struct CpuWindowArg {
    skip: u64,
    n: u64,
}

impl std::str::FromStr for CpuWindowArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s.split_once(':').ok_or("want SKIP:N")?;
        let skip = a.parse().map_err(|e| format!("SKIP: {e}"))?;
        let n: u64 = b.parse().map_err(|e| format!("N: {e}"))?;
        if n == 0 {
            return Err("N must be > 0".into());
        }
        Ok(CpuWindowArg { skip, n })
    }
}

/// kern.cp_time summed over CPUs: user, nice, sys, intr, idle (stathz ticks).
fn cp_time() -> [u64; 5] {
    Kern.get_u64s("kern.cp_time")
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default()
}

/// Microseconds the idle threads have run (`ki_runtime` of pid 11, the
/// kernel's `idle` process, every thread): exact, where `kern.cp_time`
/// samples at stathz. A thread's runtime is brought up to date when it is
/// switched out, so with one CPU (the reader is running, idle is not) the
/// figure is current.
#[cfg(target_os = "freebsd")]
fn idle_us() -> Option<u64> {
    let mib = [
        libc::CTL_KERN,
        libc::KERN_PROC,
        libc::KERN_PROC_PID | libc::KERN_PROC_INC_THREAD,
        11,
    ];
    let mut len: libc::size_t = 0;
    // SAFETY: a size query: no buffer, the kernel writes `len` only.
    let rc = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let mut buf = vec![0u8; len + 4096];
    let mut len = buf.len();
    // SAFETY: `buf` has `len` writable bytes; the kernel writes at most that.
    let rc = unsafe {
        libc::sysctl(
            mib.as_ptr(),
            4,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if rc != 0 {
        return None;
    }
    let size = std::mem::size_of::<libc::kinfo_proc>();
    let rt = std::mem::offset_of!(libc::kinfo_proc, ki_runtime);
    let pid = std::mem::offset_of!(libc::kinfo_proc, ki_pid);
    let mut sum = 0u64;
    for rec in buf[..len.min(buf.len())].chunks_exact(size) {
        let word = |o: usize| rec[o..o + 4].try_into().map(i32::from_ne_bytes).ok();
        // every record says its own size (KINFO_PROC_SIZE) and pid
        if word(0)? as usize != size || word(pid)? != 11 {
            return None;
        }
        sum += u64::from_ne_bytes(rec[rt..rt + 8].try_into().ok()?);
    }
    Some(sum)
}

#[cfg(not(target_os = "freebsd"))]
fn idle_us() -> Option<u64> {
    None
}

/// The guest's CPU over a window of pairs in each burst (`--cpu-window`).
struct CpuWindow {
    arg: CpuWindowArg,
    /// Pairs before the current burst.
    base: u64,
    last_pairs: u64,
    last_change: Option<Instant>,
    start: Option<(Instant, [u64; 5], Option<u64>)>,
    done: bool,
    windows: u64,
}

/// A pause this long between pairs starts a new burst.
const BURST_GAP: Duration = Duration::from_millis(500);

impl CpuWindow {
    fn new(arg: Option<CpuWindowArg>) -> Option<CpuWindow> {
        arg.map(|arg| CpuWindow {
            arg,
            base: 0,
            last_pairs: 0,
            last_change: None,
            start: None,
            done: false,
            windows: 0,
        })
    }

    /// Called with the pairs answered so far; prints one window line per burst.
    fn tick(&mut self, total: u64) {
        if total != self.last_pairs {
            let now = Instant::now();
            if self.last_change.is_none_or(|t| now - t >= BURST_GAP) {
                // a new client run: its own window
                self.base = self.last_pairs;
                self.start = None;
                self.done = false;
            }
            self.last_change = Some(now);
            self.last_pairs = total;
        }
        if self.done || total == self.base {
            return;
        }
        let pairs = total - self.base;
        match self.start {
            None if pairs >= self.arg.skip => {
                self.start = Some((Instant::now(), cp_time(), idle_us()))
            }
            Some((t0, c0, i0)) if pairs >= self.arg.skip + self.arg.n => {
                let c1 = cp_time();
                let i1 = idle_us();
                let secs = t0.elapsed().as_secs_f64();
                self.done = true;
                let d: Vec<u64> = (0..5).map(|i| c1[i].saturating_sub(c0[i])).collect();
                let total = d.iter().sum::<u64>().max(1);
                let busy = total - d[4];
                let ncpu = Kern.get_int("hw.ncpu").unwrap_or(1).max(1) as f64;
                // busy ticks / all ticks = the share of all CPUs; times the window = CPU seconds
                let busy_s = busy as f64 / total as f64 * secs * ncpu;
                let n = pairs - self.arg.skip;
                // the same from the idle threads' runtime (exact): all CPUs' time minus idle
                let exact = match (i0, i1) {
                    (Some(a), Some(b)) => {
                        let busy = (secs * ncpu - b.saturating_sub(a) as f64 / 1e6).max(0.0);
                        format!(
                            " idle_s={:.4} guest_cpu_exact_s={busy:.4} guest_cpu_exact_us_per_pair={:.2}",
                            b.saturating_sub(a) as f64 / 1e6,
                            1e6 * busy / n.max(1) as f64
                        )
                    }
                    _ => String::new(),
                };
                self.windows += 1;
                println!(
                    "pingpong window n={} pairs={n} secs={secs:.3} pairs_per_s={:.0} ncpu={ncpu} ticks={total} busy_ticks={busy} user_ticks={} sys_ticks={} intr_ticks={} guest_busy_pct={:.2} guest_cpu_s={busy_s:.4} guest_cpu_us_per_pair={:.2}{exact}",
                    self.windows,
                    n as f64 / secs.max(1e-9),
                    d[0] + d[1],
                    d[2],
                    d[3],
                    100.0 * busy as f64 / total as f64,
                    1e6 * busy_s / n.max(1) as f64,
                );
            }
            _ => {}
        }
    }
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

/// UDP/IPv4 framing of `--udp-over-netmap`: what a kernel's UDP socket
/// would put on the wire around the 50-octet payload.
#[derive(Clone, Copy)]
struct UdpFrame {
    src: std::net::Ipv4Addr,
    dst: std::net::SocketAddrV4,
    sport: u16,
}

const IP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

impl UdpFrame {
    /// Writes IPv4 + UDP headers and the payload after the 14-octet
    /// Ethernet header; returns the frame length.
    fn build(&self, buf: &mut [u8], id: u16, p: &[u8; PAYLOAD]) -> usize {
        let ip = &mut buf[14..14 + IP_HLEN];
        let total = (IP_HLEN + UDP_HLEN + PAYLOAD) as u16;
        ip.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[12..16].copy_from_slice(&self.src.octets());
        ip[16..20].copy_from_slice(&self.dst.ip().octets());
        let csum = ip_checksum(ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        let u = &mut buf[14 + IP_HLEN..14 + IP_HLEN + UDP_HLEN];
        u[0..2].copy_from_slice(&self.sport.to_be_bytes());
        u[2..4].copy_from_slice(&self.dst.port().to_be_bytes());
        u[4..6].copy_from_slice(&((UDP_HLEN + PAYLOAD) as u16).to_be_bytes());
        u[6..8].copy_from_slice(&[0, 0]); // no UDP checksum (IPv4 allows it)
        let o = 14 + IP_HLEN + UDP_HLEN;
        buf[o..o + PAYLOAD].copy_from_slice(p);
        o + PAYLOAD
    }

    /// The UDP payload of an answer from `dst` to our port, if `f` is one.
    fn payload_of<'f>(&self, f: &'f [u8]) -> Option<&'f [u8]> {
        if f.len() < 14 + IP_HLEN + UDP_HLEN || f[12..14] != [0x08, 0x00] || f[14] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let ip = &f[14..];
        if ihl < IP_HLEN
            || ip.len() < ihl + UDP_HLEN
            || ip[9] != 17
            || ip[12..16] != self.dst.ip().octets()
        {
            return None;
        }
        let u = &ip[ihl..];
        if u[0..2] != self.dst.port().to_be_bytes() || u[2..4] != self.sport.to_be_bytes() {
            return None;
        }
        u.get(UDP_HLEN..)
    }
}

/// The IPv4 header checksum (RFC 791) of a header whose checksum field is 0.
fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Pinger<'a> {
    hdr: [u8; 14],
    udp: Option<UdpFrame>,
    count: u64,
    window: u64,
    /// Pings per second (0 = no pacing).
    rate: u64,
    /// Pings due together when paced.
    burst: u64,
    /// Stop sending after this long.
    duration: Option<Duration>,
    sent: u64,
    start: Instant,
    last_rx: Instant,
    tally: Tally,
    done: &'a AtomicBool,
    stop: &'a AtomicBool,
}

impl App for Pinger<'_> {
    fn on_frame(&mut self, f: Frame<'_>, _tx: &mut Sender<'_, '_>) {
        let d = f.data();
        let p = match &self.udp {
            Some(u) => u.payload_of(d),
            None => d.get(14..),
        };
        if let Some((PONG, _seq, t0)) = p.and_then(parse_payload) {
            self.tally.pairs += 1;
            self.tally
                .rtt_ns
                .push((self.start.elapsed().as_nanos() as u64).saturating_sub(t0));
            self.last_rx = Instant::now();
        }
    }

    fn on_pass(&mut self, tx: &mut Sender<'_, '_>) {
        if Instant::now() < self.start {
            return;
        }
        if self.tally.pairs + self.tally.lost >= self.count
            || self.stop.load(Ordering::Relaxed)
            || self.duration.is_some_and(|d| self.start.elapsed() >= d)
        {
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
        if self.rate > 0 {
            // paced: never ahead of rate x elapsed (batches form when the loop is late);
            // with --burst B, B pings fall due at once every B / rate seconds
            let b = self.burst.max(1);
            let due = ((self.rate as f64 * self.start.elapsed().as_secs_f64()) as u64 / b + 1) * b;
            room = room.min(due.saturating_sub(self.sent));
        }
        while room > 0 {
            let p = payload(PING, self.sent, self.start.elapsed().as_nanos() as u64);
            let (hdr, udp, id) = (self.hdr, self.udp, self.sent as u16);
            let r = tx.send_with(|buf| {
                buf[..14].copy_from_slice(&hdr);
                match udp {
                    Some(u) => u.build(buf, id, &p),
                    None => {
                        buf[14..14 + PAYLOAD].copy_from_slice(&p);
                        14 + PAYLOAD
                    }
                }
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
    win: Option<CpuWindow>,
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
        if let Some(w) = self.win.as_mut() {
            w.tick(self.tally.pairs);
        }
        if (self.count != 0 && self.tally.pairs >= self.count) || self.stop.load(Ordering::Relaxed)
        {
            self.done.store(true, Ordering::Relaxed);
        }
    }
}

fn run_netmap(a: &Args, iface: &str) -> Result<(), Error> {
    let poll = if a.busy { PollMode::Busy } else { a.poll };
    let name = IfName::new(iface)?;
    let udp = match (a.udp_over_netmap, a.role) {
        (Some(dst), Role::Client) => Some(UdpFrame {
            src: a.src_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            dst,
            sport: dst.port().wrapping_add(1),
        }),
        _ => None,
    };
    // UDP over netmap receives the answers as IPv4 frames: claim IPv4 (ARP
    // still reaches the kernel, which answers for the port's address)
    let claim = if udp.is_some() {
        EtherType::IPV4
    } else {
        a.ethertype
    };
    let mut cfg = TunnelConfig::default().claim(claim)?.poll(poll);
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
    // the client's clock (pacing, duration, pairs/s) starts after --delay-ms
    let start = Instant::now() + Duration::from_millis(a.delay_ms);
    let (mut tally, s) = match a.role {
        Role::Client => {
            let src = if_info(&name)
                .and_then(|i| i.mac)
                .unwrap_or([0x02, 0, 0, 0, 0, 1]);
            let dst = a.peer.as_deref().and_then(parse_mac).unwrap_or([0xff; 6]);
            let mut hdr = [0u8; 14];
            hdr[..6].copy_from_slice(&dst);
            hdr[6..12].copy_from_slice(&src);
            hdr[12..].copy_from_slice(&claim.0.to_be_bytes());
            let mut app = Pinger {
                hdr,
                udp,
                count: if a.duration > 0 { u64::MAX } else { a.count },
                window: a.window.max(1),
                rate: a.rate,
                burst: a.burst,
                duration: (a.duration > 0).then(|| Duration::from_secs(a.duration)),
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
                win: CpuWindow::new(a.cpu_window),
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
            let mut win = CpuWindow::new(a.cpu_window);
            let s = UdpSocket::bind(addr)?;
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            while !stop.load(Ordering::Relaxed) && (a.count == 0 || tally.pairs < a.count) {
                let Ok((n, from)) = s.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((PING, seq, t0)) = parse_payload(&buf[..n]) {
                    s.send_to(&payload(PONG, seq, t0), from)?;
                    tally.pairs += 1;
                    if let Some(w) = win.as_mut() {
                        w.tick(tally.pairs);
                    }
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
    if a.udp_over_netmap.is_some() && a.src_ip.is_none() {
        eprintln!("pingpong: --udp-over-netmap needs --src-ip (the port's own IPv4 address)");
        return ExitCode::from(2);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_frame_round_trip() {
        let u = UdpFrame {
            src: "198.18.0.2".parse().unwrap(),
            dst: "198.18.0.1:7778".parse().unwrap(),
            sport: 7779,
        };
        let mut buf = [0u8; 2048];
        buf[12..14].copy_from_slice(&[0x08, 0x00]);
        let p = payload(PING, 7, 9);
        let n = u.build(&mut buf, 7, &p);
        assert_eq!(n, 14 + 20 + 8 + PAYLOAD);
        // a header with its checksum in place sums to 0
        assert_eq!(ip_checksum(&buf[14..34]), 0);
        // the answer a kernel would send: addresses and ports swapped
        let mut ans = buf;
        ans[26..30].copy_from_slice(&buf[30..34]);
        ans[30..34].copy_from_slice(&buf[26..30]);
        ans[34..36].copy_from_slice(&buf[36..38]);
        ans[36..38].copy_from_slice(&buf[34..36]);
        ans[42..42 + PAYLOAD].copy_from_slice(&payload(PONG, 7, 9));
        let got = u.payload_of(&ans[..n]).and_then(parse_payload);
        assert_eq!(got, Some((PONG, 7, 9)));
        // our own ping is not an answer
        assert!(u.payload_of(&buf[..n]).is_none());
    }

    #[test]
    fn cpu_window_arg() {
        let w: CpuWindowArg = "100:2000".parse().unwrap();
        assert_eq!((w.skip, w.n), (100, 2000));
        assert!("5".parse::<CpuWindowArg>().is_err());
        assert!("5:0".parse::<CpuWindowArg>().is_err());
    }
}
