//! fwd: the simplest tunnel. Every frame crosses between the NIC and the
//! kernel stack; frames of claimed EtherTypes are counted and consumed.
//!
//!     fwd em0                        # pure tunnel
//!     fwd em0 --claim 0x88b5 --busy  # also claim a type, busy-poll
//!
//! Exit status: 0 after SIGINT/SIGTERM, 3 when the kernel revoked the port,
//! 1 on any other error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use emtun::{signal, EtherType, PollMode, Stats, Tunnel, TunnelConfig};

#[derive(Parser)]
#[command(about = "Tunnel kernel traffic through user space over a netmap port")]
struct Args {
    /// Interface (em or igb, armed with `emtunctl arm`).
    iface: String,
    /// Claim an EtherType for the application: 0x88b5 or decimal (repeatable).
    #[arg(long, value_name = "TYPE")]
    claim: Vec<EtherType>,
    /// How the loop waits when idle: adaptive (busy while frames flow, poll(2) after 50us idle), adaptive:SPIN, busy, interval or interval:DURATION.
    #[arg(long, default_value = "adaptive", value_name = "MODE")]
    poll: PollMode,
    /// Same as --poll busy.
    #[arg(long, conflicts_with = "interval_us")]
    busy: bool,
    /// Same as --poll interval:Nus.
    #[arg(long, value_name = "N")]
    interval_us: Option<u64>,
    /// Print the counters every N seconds (0: only at exit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    stats_every: u64,
    /// Also open ports the kernel agent does not protect (other NICs,
    /// unarmed ports): no watchdog.
    #[arg(long)]
    unprotected: bool,
}

fn print_stats(iface: &str, s: &Stats, secs: f64) {
    println!(
        "fwd {iface}: to_app={} from_app={} to_host={} from_host={} backpressure={} drop_runt={} drop_oversize={} drop_bad_buf_idx={} rounds={} secs={secs:.1}",
        s.to_app, s.from_app, s.to_host, s.from_host, s.backpressure, s.dropped.runt, s.dropped.oversize, s.dropped.bad_buf_idx, s.rounds
    );
}

fn main() -> ExitCode {
    let a = Args::parse();
    let poll = match (a.busy, a.interval_us) {
        (true, _) => PollMode::Busy,
        (false, Some(us)) => PollMode::Interval(Duration::from_micros(us.max(1))),
        (false, None) => a.poll,
    };
    let cfg = match TunnelConfig::default().poll(poll).claim_all(&a.claim) {
        Ok(c) if a.unprotected => c.unprotected(),
        Ok(c) => c,
        Err(e) => {
            eprintln!("fwd: {e}");
            return ExitCode::from(2);
        }
    };
    let mut tun = match Tunnel::open(&a.iface, cfg) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fwd: {}: {e}", a.iface);
            return ExitCode::from(1);
        }
    };
    println!(
        "fwd {}: tunneling (pid {}, claims {:?})",
        a.iface,
        std::process::id(),
        a.claim
    );
    let stop = signal::stop_on_signals();
    let start = Instant::now();
    let mut claimed = 0u64;
    let mut app = |_: &[u8]| claimed += 1;
    let r = if a.stats_every == 0 {
        tun.run_until(stop, &mut app)
    } else {
        // Run in slices so the counters can be printed between them.
        let tick = Duration::from_secs(a.stats_every);
        let mut r = Ok(());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && r.is_ok() {
            let until = Instant::now() + tick;
            while Instant::now() < until
                && r.is_ok()
                && !stop.load(std::sync::atomic::Ordering::Relaxed)
            {
                r = tun.step(&mut app).map(|_| ());
            }
            print_stats(&a.iface, &tun.stats(), start.elapsed().as_secs_f64());
        }
        r
    };
    print_stats(&a.iface, &tun.stats(), start.elapsed().as_secs_f64());
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_revoked() => {
            eprintln!("fwd: {}: revoked: {e}", a.iface);
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("fwd: {}: {e}", a.iface);
            ExitCode::from(1)
        }
    }
}
