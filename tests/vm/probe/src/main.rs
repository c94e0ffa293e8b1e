//! `probe`: the guest-side measuring tool of the emtun VM harness (tests/vm).
//!
//! std only (plus a few libc symbols declared by hand), so it builds offline with
//! `cargo zigbuild --target x86_64-unknown-freebsd`. Every subcommand is bounded in time and
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
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(non_camel_case_types)]
type c_int = i32;

extern "C" {
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getrusage(who: c_int, usage: *mut [i64; 18]) -> c_int;
}

#[cfg(target_os = "freebsd")]
extern "C" {
    fn sysctlbyname(
        name: *const u8,
        oldp: *mut u8,
        oldlenp: *mut usize,
        newp: *const u8,
        newlen: usize,
    ) -> c_int;
}

#[cfg(target_os = "freebsd")]
fn sysctl_raw(name: &str, buf: &mut [u8]) -> Option<usize> {
    let cname = format!("{name}\0");
    let mut len = buf.len();
    let r = unsafe {
        sysctlbyname(cname.as_ptr(), buf.as_mut_ptr(), &mut len, std::ptr::null(), 0)
    };
    if r == 0 {
        Some(len)
    } else {
        None
    }
}

#[cfg(not(target_os = "freebsd"))]
fn sysctl_raw(_name: &str, _buf: &mut [u8]) -> Option<usize> {
    None
}

#[cfg(target_os = "freebsd")]
fn sysctl_set_int(name: &str, v: i32) -> bool {
    let cname = format!("{name}\0");
    let b = v.to_ne_bytes();
    unsafe { sysctlbyname(cname.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), b.as_ptr(), 4) == 0 }
}

#[cfg(not(target_os = "freebsd"))]
fn sysctl_set_int(_name: &str, _v: i32) -> bool {
    false
}

fn sysctl_str(name: &str) -> Option<String> {
    let mut buf = [0u8; 256];
    let n = sysctl_raw(name, &mut buf)?;
    let s = &buf[..n];
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// kern.cp_time: user, nice, sys, intr, idle ticks summed over CPUs.
fn cp_time() -> [i64; 5] {
    let mut buf = [0u8; 40];
    let mut out = [0i64; 5];
    if sysctl_raw("kern.cp_time", &mut buf) == Some(40) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = i64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
        }
    }
    out
}

fn ncpu() -> i64 {
    let mut buf = [0u8; 4];
    match sysctl_raw("hw.ncpu", &mut buf) {
        Some(4) => i32::from_ne_bytes(buf) as i64,
        _ => 1,
    }
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

fn cp_json(a: [i64; 5], b: [i64; 5]) -> String {
    let d: Vec<i64> = (0..5).map(|i| b[i] - a[i]).collect();
    let tot: i64 = d.iter().sum::<i64>().max(1);
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
    let mut udp_ms: Option<f64> = None;
    let mut last_send = Instant::now() - Duration::from_secs(1);
    let mut seq: u64 = 0;
    let mut buf = [0u8; 64];
    let deadline = Duration::from_millis(timeout_ms);
    while t0.elapsed() < deadline {
        if state_ms.is_none() {
            if let Some((n, v)) = &want {
                if sysctl_str(n).as_deref() == Some(v.as_str()) {
                    state_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
                }
            } else {
                state_ms = Some(0.0);
            }
        }
        if let (Some(s), None) = (&sock, udp_ms) {
            if last_send.elapsed() >= Duration::from_millis(2) {
                seq += 1;
                let _ = s.send(&seq.to_be_bytes());
                last_send = Instant::now();
            }
            while let Ok(n) = s.recv(&mut buf) {
                if n >= 8 {
                    udp_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
                    break;
                }
            }
        }
        if state_ms.is_some() && (sock.is_none() || udp_ms.is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let f = |o: Option<f64>| o.map(|v| format!("{v:.3}")).unwrap_or_else(|| "null".into());
    let after = want.as_ref().and_then(|(n, _)| sysctl_str(n));
    println!(
        "{{\"signal_wall_ns\":{t_wall},\"pid\":{pid},\"sig\":{sig},\"state_before\":\"{}\",\"state_after\":\"{}\",\"state_ms\":{},\"udp_recover_ms\":{},\"udp_probes\":{seq}}}",
        before.unwrap_or_default(),
        after.unwrap_or_default(),
        f(state_ms),
        f(udp_ms)
    );
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
        _ => {
            eprintln!("usage: probe now|udp-echo|udp-pingpong|cpu|sig-watch|devwatch ...");
            std::process::exit(64)
        }
    }
}
