//! `probe`: the guest-side measuring tool of the emtun VM harness (tests/vm).
//!
//! std, the project's netmap-user (for its one sysctl(3) access) and a few libc symbols
//! declared by hand; it builds with `cargo zigbuild --target x86_64-unknown-freebsd`. Every subcommand is bounded in time and
//! prints one JSON object on stdout.
//!
//!   probe now
//!   probe udp-echo PORT SECONDS                  echo server, exits after SECONDS
//!   probe udp-pingpong HOST:PORT COUNT [SIZE]    sequential request/response pairs (kernel path)
//!   probe cpu -- CMD [ARGS..]                    run CMD, report wall, child rusage, guest cp_time
//!   probe sig-watch PID SIG TIMEOUT_MS [--sysctl NAME=VALUE] [--udp HOST:PORT] [--set NAME=INT]
//!                                                signal PID, then time until the sysctl reads VALUE
//!                                                and until a UDP echo answers
//!   probe devwatch SECONDS                       timestamped lines from /var/run/devd.pipe
//!   probe udp-gap HOST:PORT INTERVAL_MS MAX_S STOPFILE   echo probes every INTERVAL_MS until
//!                                                STOPFILE exists: longest gap between answers
//!   probe mcast-recv GROUP PORT IFADDR SECONDS   join GROUP on IFADDR, one line per datagram
//!   probe mcast-send GROUP:PORT IFADDR COUNT INTERVAL_MS
//!   probe tcp-sink PORT SECONDS                  accept one connection, count bytes, report errors
//!   probe tcp-src HOST:PORT KBPS MAX_S STOPFILE  paced stream until STOPFILE exists
//!
//! sig-watch's udp_recover_ms is the arrival of the first answer to a probe sent after the
//! last probe that got no answer (the end of the outage), or the first answer if none was lost.
use netmap_user::sysctl::{Kern, Sysctl};
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(non_camel_case_types)]
type c_int = i32;

extern "C" {
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const u8, len: u32) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getrusage(who: c_int, usage: *mut [i64; 18]) -> c_int;
}

/// The project's one sysctl(3) access (netmap_user::sysctl).
fn sysctl_set_int(name: &str, v: i32) -> bool {
    Kern.set_int(name, i64::from(v)).is_ok()
}

fn sysctl_str(name: &str) -> Option<String> {
    Kern.get_str(name).ok()
}

/// kern.cp_time: user, nice, sys, intr, idle ticks summed over CPUs.
fn cp_time() -> [u64; 5] {
    Kern.get_u64s("kern.cp_time")
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default()
}

fn ncpu() -> i64 {
    Kern.get_int("hw.ncpu").unwrap_or(1)
}

fn rusage(who: c_int) -> (f64, f64) {
    let mut ru = [0i64; 18];
    unsafe { getrusage(who, &mut ru) };
    let u = ru[0] as f64 + ru[1] as f64 / 1e6;
    let s = ru[2] as f64 + ru[3] as f64 / 1e6;
    (u, s)
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

fn die(msg: &str) -> ! {
    println!("{{\"error\":\"{}\"}}", msg.replace('"', "'"));
    std::process::exit(2)
}

fn cp_json(a: [u64; 5], b: [u64; 5]) -> String {
    let d: Vec<u64> = (0..5).map(|i| b[i].saturating_sub(a[i])).collect();
    let tot: u64 = d.iter().sum::<u64>().max(1);
    let busy = (tot - d[4]) as f64 * 100.0 / tot as f64;
    // busy is the share of all guest CPUs; busy_cpus is in units of one CPU (0..ncpu)
    format!(
        "\"guest_busy_pct\":{:.2},\"guest_busy_cpus\":{:.3},\"guest_user_pct\":{:.2},\"guest_sys_pct\":{:.2},\"guest_intr_pct\":{:.2},\"ncpu\":{}",
        busy,
        busy * ncpu() as f64 / 100.0,
        (d[0] + d[1]) as f64 * 100.0 / tot as f64,
        d[2] as f64 * 100.0 / tot as f64,
        d[3] as f64 * 100.0 / tot as f64,
        ncpu()
    )
}

fn udp_echo(port: u16, secs: u64) {
    let s = UdpSocket::bind(("0.0.0.0", port)).unwrap_or_else(|e| die(&format!("bind: {e}")));
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 2048];
    let mut n_echo = 0u64;
    while Instant::now() < end {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
            n_echo += 1;
        }
    }
    println!("{{\"echoed\":{n_echo}}}");
}

fn udp_pingpong(target: &str, count: u64, size: usize) {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&format!("bind: {e}")));
    s.connect(target).unwrap_or_else(|e| die(&format!("connect: {e}")));
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut msg = vec![0x5au8; size.max(8)];
    let mut buf = [0u8; 2048];
    let (u0, s0) = rusage(0);
    let cp0 = cp_time();
    let t0 = Instant::now();
    let (mut ok, mut lost) = (0u64, 0u64);
    for seq in 0..count {
        msg[..8].copy_from_slice(&seq.to_be_bytes());
        if s.send(&msg).is_err() {
            lost += 1;
            continue;
        }
        loop {
            match s.recv(&mut buf) {
                Ok(n) if n >= 8 && buf[..8] == seq.to_be_bytes() => {
                    ok += 1;
                    break;
                }
                Ok(_) => continue, // stale answer
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
        if t0.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cp1 = cp_time();
    let (u1, s1) = rusage(0);
    let cpu = (u1 - u0) + (s1 - s0);
    println!(
        "{{\"pairs\":{ok},\"lost\":{lost},\"size\":{},\"wall_s\":{wall:.4},\"pairs_per_s\":{:.1},\"proc_cpu_s\":{cpu:.4},\"proc_cpu_pct\":{:.2},{}}}",
        msg.len(),
        ok as f64 / wall,
        cpu * 100.0 / wall,
        cp_json(cp0, cp1)
    );
}

fn cpu_of(cmd: &[String]) {
    if cmd.is_empty() {
        die("cpu: no command");
    }
    let cp0 = cp_time();
    let t0 = Instant::now();
    let st = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .unwrap_or_else(|e| die(&format!("spawn: {e}")));
    let wall = t0.elapsed().as_secs_f64();
    let cp1 = cp_time();
    let (u, s) = rusage(-1);
    println!(
        "{{\"rc\":{},\"wall_s\":{wall:.4},\"child_user_s\":{u:.4},\"child_sys_s\":{s:.4},\"child_cpu_pct\":{:.2},{}}}",
        st.code().unwrap_or(-1),
        (u + s) * 100.0 / wall.max(1e-9),
        cp_json(cp0, cp1)
    );
}

fn sig_watch(
    pid: i32,
    sig: i32,
    timeout_ms: u64,
    want: Option<(String, String)>,
    udp: Option<String>,
    set: Option<(String, i32)>,
) {
    let sock = udp.as_ref().map(|t| {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&format!("bind: {e}")));
        s.connect(t.as_str()).unwrap_or_else(|e| die(&format!("connect: {e}")));
        s.set_nonblocking(true).unwrap();
        s
    });
    let before = want.as_ref().and_then(|(n, _)| sysctl_str(n));
    // an int sysctl written just before the signal (e.g. the watchdog period): no window in
    // which a slow VM could trip it before the signal lands
    if let Some((n, v)) = &set {
        if !sysctl_set_int(n, *v) {
            die(&format!("sysctl {n}={v} failed"));
        }
    }
    let t_wall = now_ns();
    let t0 = Instant::now();
    if unsafe { kill(pid, sig) } != 0 {
        die(&format!("kill({pid},{sig}) failed"));
    }
    let mut state_ms: Option<f64> = None;
    let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1e3;
    let mut sent: Vec<f64> = Vec::new(); // probe seq i+1 sent at sent[i] ms
    let mut answered: Vec<Option<f64>> = Vec::new();
    let mut last_send = Instant::now() - Duration::from_secs(1);
    let mut buf = [0u8; 64];
    let deadline = Duration::from_millis(timeout_ms);
    let mut recovered: Option<f64> = None;
    while t0.elapsed() < deadline {
        if state_ms.is_none() {
            if let Some((n, v)) = &want {
                if sysctl_str(n).as_deref() == Some(v.as_str()) {
                    state_ms = Some(ms(Instant::now()));
                }
            } else {
                state_ms = Some(0.0);
            }
        }
        if let Some(s) = &sock {
            if last_send.elapsed() >= Duration::from_millis(2) {
                sent.push(ms(Instant::now()));
                answered.push(None);
                let _ = s.send(&(sent.len() as u64).to_be_bytes());
                last_send = Instant::now();
            }
            while let Ok(n) = s.recv(&mut buf) {
                if n >= 8 {
                    let q = u64::from_be_bytes(buf[..8].try_into().unwrap()) as usize;
                    if q >= 1 && q <= answered.len() && answered[q - 1].is_none() {
                        answered[q - 1] = Some(ms(Instant::now()));
                    }
                }
            }
            recovered = udp_recovery(&sent, &answered, ms(Instant::now()));
        }
        // done: state reached, and the UDP path answered steadily for 100 ms
        if state_ms.is_some() && (sock.is_none() || recovered.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let now = ms(Instant::now());
    let lost = sent.iter().zip(&answered).filter(|(t, a)| a.is_none() && **t < now - 50.0).count();
    let first = answered.iter().flatten().cloned().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
    if sock.is_some() && recovered.is_none() {
        recovered = last_outage_end(&sent, &answered, now);
    }
    let f = |o: Option<f64>| o.map(|v| format!("{v:.3}")).unwrap_or_else(|| "null".into());
    let after = want.as_ref().and_then(|(n, _)| sysctl_str(n));
    println!(
        "{{\"signal_wall_ns\":{t_wall},\"pid\":{pid},\"sig\":{sig},\"state_before\":\"{}\",\"state_after\":\"{}\",\"state_ms\":{},\"udp_recover_ms\":{},\"udp_first_answer_ms\":{},\"udp_probes\":{},\"udp_lost\":{lost}}}",
        before.unwrap_or_default(),
        after.unwrap_or_default(),
        f(state_ms),
        f(recovered),
        f(first),
        sent.len()
    );
}

/// End of the outage once the path is steady: every probe sent in the last 100 ms before
/// (now - 50 ms) was answered. None while that is not the case.
fn udp_recovery(sent: &[f64], ans: &[Option<f64>], now: f64) -> Option<f64> {
    let win: Vec<usize> = (0..sent.len()).filter(|&i| sent[i] < now - 50.0 && sent[i] >= now - 150.0).collect();
    if win.len() < 10 || win.iter().any(|&i| ans[i].is_none()) {
        return None;
    }
    last_outage_end(sent, ans, now)
}

/// Arrival of the first answer to a probe sent after the last unanswered one.
fn last_outage_end(sent: &[f64], ans: &[Option<f64>], now: f64) -> Option<f64> {
    let last_lost = (0..sent.len()).filter(|&i| ans[i].is_none() && sent[i] < now - 50.0).max();
    let from = last_lost.map_or(0, |i| i + 1);
    ans[from..].iter().flatten().cloned().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
}

fn udp_gap(target: &str, interval_ms: u64, max_s: u64, stop: &str) {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&format!("bind: {e}")));
    s.connect(target).unwrap_or_else(|e| die(&format!("connect: {e}")));
    s.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1e3;
    let (mut seq, mut got, mut last_ans) = (0u64, 0u64, None::<f64>);
    let mut gaps: Vec<(f64, f64)> = Vec::new(); // (at_ms, gap_ms) above 3 intervals
    let mut max_gap = 0.0f64;
    let mut next = Instant::now();
    let mut buf = [0u8; 64];
    while t0.elapsed() < Duration::from_secs(max_s) {
        if seq % 100 == 0 && std::path::Path::new(stop).exists() {
            break;
        }
        if Instant::now() >= next {
            seq += 1;
            let _ = s.send(&seq.to_be_bytes());
            next += Duration::from_millis(interval_ms);
        }
        while let Ok(n) = s.recv(&mut buf) {
            if n >= 8 {
                let now = ms(Instant::now());
                got += 1;
                if let Some(l) = last_ans {
                    let g = now - l;
                    if g > max_gap {
                        max_gap = g;
                    }
                    if g > 3.0 * interval_ms as f64 {
                        gaps.push((l, g));
                    }
                }
                last_ans = Some(now);
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let list: Vec<String> = gaps.iter().map(|(a, g)| format!("[{a:.1},{g:.1}]")).collect();
    println!(
        "{{\"probes\":{seq},\"answers\":{got},\"interval_ms\":{interval_ms},\"max_gap_ms\":{max_gap:.2},\"gaps_over_3_intervals\":[{}],\"seconds\":{:.1}}}",
        list.join(","),
        t0.elapsed().as_secs_f64()
    );
}

fn mcast_recv(group: &str, port: u16, ifaddr: &str, secs: u64) {
    let g: std::net::Ipv4Addr = group.parse().unwrap_or_else(|_| die("group"));
    let i: std::net::Ipv4Addr = ifaddr.parse().unwrap_or_else(|_| die("ifaddr"));
    let s = UdpSocket::bind(("0.0.0.0", port)).unwrap_or_else(|e| die(&format!("bind: {e}")));
    s.join_multicast_v4(&g, &i).unwrap_or_else(|e| die(&format!("join: {e}")));
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 2048];
    let out = std::io::stdout();
    while t0.elapsed() < Duration::from_secs(secs) {
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            let mut o = out.lock();
            let _ = writeln!(o, "{:.1} {n}", t0.elapsed().as_secs_f64() * 1e3);
            let _ = o.flush();
        }
    }
}

fn mcast_send(target: &str, ifaddr: &str, count: u64, interval_ms: u64) {
    let i: std::net::Ipv4Addr = ifaddr.parse().unwrap_or_else(|_| die("ifaddr"));
    let s = UdpSocket::bind((i, 0)).unwrap_or_else(|e| die(&format!("bind: {e}")));
    let fd = std::os::unix::io::AsRawFd::as_raw_fd(&s);
    // IPPROTO_IP 0, IP_MULTICAST_IF 9 (FreeBSD): no route to the group is needed
    if unsafe { setsockopt(fd, 0, 9, i.octets().as_ptr(), 4) } != 0 {
        die("IP_MULTICAST_IF");
    }
    let _ = s.set_multicast_ttl_v4(1);
    let mut sent = 0u64;
    for seq in 0..count {
        if s.send_to(&seq.to_be_bytes(), target).is_ok() {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
    println!("{{\"sent\":{sent}}}");
}

fn tcp_sink(port: u16, secs: u64) {
    use std::io::Read;
    let l = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| die(&format!("bind: {e}")));
    let (mut c, _) = l.accept().unwrap_or_else(|e| die(&format!("accept: {e}")));
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    let (mut bytes, mut err, mut eof) = (0u64, String::new(), false);
    let mut buf = vec![0u8; 65536];
    while t0.elapsed() < Duration::from_secs(secs) {
        match c.read(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => bytes += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => {
                err = format!("{:?}", e.kind());
                break;
            }
        }
    }
    println!("{{\"bytes\":{bytes},\"eof\":{eof},\"error\":\"{err}\",\"seconds\":{:.1}}}", t0.elapsed().as_secs_f64());
}

fn tcp_src(target: &str, kbps: u64, max_s: u64, stop: &str) {
    let mut c = std::net::TcpStream::connect(target).unwrap_or_else(|e| die(&format!("connect: {e}")));
    let chunk = vec![0xa5u8; 1024];
    let t0 = Instant::now();
    let (mut bytes, mut err) = (0u64, String::new());
    let per = Duration::from_micros(1_000_000 / kbps.max(1));
    let mut next = Instant::now();
    while t0.elapsed() < Duration::from_secs(max_s) {
        if bytes % (64 * 1024) == 0 && std::path::Path::new(stop).exists() {
            break;
        }
        if let Err(e) = c.write_all(&chunk) {
            err = format!("{:?}", e.kind());
            break;
        }
        bytes += 1024;
        next += per;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    let clean = err.is_empty() && c.shutdown(std::net::Shutdown::Write).is_ok();
    println!("{{\"bytes\":{bytes},\"error\":\"{err}\",\"clean_close\":{clean},\"seconds\":{:.1}}}", t0.elapsed().as_secs_f64());
}

fn devwatch(secs: u64) {
    let s = match std::os::unix::net::UnixStream::connect("/var/run/devd.pipe") {
        Ok(s) => s,
        Err(e) => die(&format!("devd.pipe: {e}")),
    };
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut r = BufReader::new(s.try_clone().unwrap());
    let out = std::io::stdout();
    let mut line = String::new();
    while Instant::now() < end {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                let mut o = out.lock();
                let _ = writeln!(o, "{} {}", now_ns(), line.trim_end());
                let _ = o.flush();
            }
            Err(_) => continue,
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| a.get(i).cloned().unwrap_or_else(|| die("missing argument"));
    match a.first().map(|s| s.as_str()) {
        Some("now") => println!("{{\"wall_ns\":{}}}", now_ns()),
        Some("udp-echo") => udp_echo(arg(1).parse().unwrap(), arg(2).parse().unwrap()),
        Some("udp-pingpong") => udp_pingpong(
            &arg(1),
            arg(2).parse().unwrap(),
            a.get(3).map(|s| s.parse().unwrap()).unwrap_or(50),
        ),
        Some("cpu") => {
            let i = a.iter().position(|s| s == "--").map(|i| i + 1).unwrap_or(1);
            cpu_of(&a[i..])
        }
        Some("sig-watch") => {
            let mut want = None;
            let mut udp = None;
            let mut set = None;
            let mut i = 4;
            while i < a.len() {
                match a[i].as_str() {
                    "--sysctl" => {
                        let kv = arg(i + 1);
                        let (k, v) = kv.split_once('=').unwrap_or_else(|| die("NAME=VALUE"));
                        want = Some((k.to_string(), v.to_string()));
                        i += 2;
                    }
                    "--udp" => {
                        udp = Some(arg(i + 1));
                        i += 2;
                    }
                    "--set" => {
                        let kv = arg(i + 1);
                        let (k, v) = kv.split_once('=').unwrap_or_else(|| die("NAME=INT"));
                        set = Some((k.to_string(), v.parse().unwrap_or_else(|_| die("--set value"))));
                        i += 2;
                    }
                    _ => die("sig-watch: bad option"),
                }
            }
            let sig = match arg(2).as_str() {
                "KILL" => 9,
                "TERM" => 15,
                "INT" => 2,
                "STOP" => 17, // FreeBSD numbering
                "CONT" => 19,
                n => n.parse().unwrap_or_else(|_| die("signal")),
            };
            sig_watch(arg(1).parse().unwrap(), sig, arg(3).parse().unwrap(), want, udp, set)
        }
        Some("devwatch") => devwatch(arg(1).parse().unwrap()),
        Some("udp-gap") => udp_gap(&arg(1), arg(2).parse().unwrap(), arg(3).parse().unwrap(), &arg(4)),
        Some("mcast-recv") => mcast_recv(&arg(1), arg(2).parse().unwrap(), &arg(3), arg(4).parse().unwrap()),
        Some("mcast-send") => mcast_send(&arg(1), &arg(2), arg(3).parse().unwrap(), arg(4).parse().unwrap()),
        Some("tcp-sink") => tcp_sink(arg(1).parse().unwrap(), arg(2).parse().unwrap()),
        Some("tcp-src") => tcp_src(&arg(1), arg(2).parse().unwrap(), arg(3).parse().unwrap(), &arg(4)),
        _ => {
            eprintln!("usage: probe now|udp-echo|udp-pingpong|cpu|sig-watch|devwatch|udp-gap|mcast-recv|mcast-send|tcp-sink|tcp-src ...");
            std::process::exit(64)
        }
    }
}
