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
use netmap_user::{signal, Error, EtherType, PollMode, Stats, Tunnel, TunnelConfig};

#[derive(Parser)]
#[command(about = "Tunnel kernel traffic through user space over a netmap port")]
struct Args {
    /// Interface (em or igb).
    iface: String,
    /// Claim an EtherType for the application (repeatable).
    #[arg(long, value_name = "TYPE")]
    claim: Vec<EtherType>,
    /// Busy-poll instead of sleeping in poll(2).
    #[arg(long, conflicts_with = "interval_us")]
    busy: bool,
    /// Poll interval in microseconds when idle.
    #[arg(long, default_value_t = 1000)]
    interval_us: u64,
    /// Print the counters every N seconds (0: only at exit).
    #[arg(long, default_value_t = 0)]
    stats_every: u64,
    /// Allow NICs other than em/igb.
    #[arg(long)]
    any_nic: bool,
}

fn print_stats(iface: &str, s: &Stats, secs: f64) {
    println!(
        "fwd {iface}: to_app={} from_app={} to_host={} from_host={} backpressure={} drop_runt={} drop_oversize={} drop_bad_buf_idx={} rounds={} secs={secs:.1}",
        s.to_app, s.from_app, s.to_host, s.from_host, s.backpressure, s.dropped.runt, s.dropped.oversize, s.dropped.bad_buf_idx, s.rounds
    );
}

fn main() -> ExitCode {
    let a = Args::parse();
    let poll = if a.busy {
        PollMode::Busy
    } else {
        PollMode::Interval(Duration::from_micros(a.interval_us.max(1)))
    };
    let mut cfg = TunnelConfig::default().poll(poll);
    for t in &a.claim {
        cfg = cfg.claim(*t);
    }
    if a.any_nic {
        cfg = cfg.allow_any_nic();
    }
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
                r = tun
                    .round(&mut app)
                    .and_then(|n| match (n, poll, tun.port()) {
                        (0, PollMode::Interval(d), Some(p)) => p.wait(Some(d)),
                        _ => Ok(()),
                    });
            }
            print_stats(&a.iface, &tun.stats(), start.elapsed().as_secs_f64());
        }
        r
    };
    print_stats(&a.iface, &tun.stats(), start.elapsed().as_secs_f64());
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Revoked) => {
            eprintln!("fwd: {}: revoked: {}", a.iface, Error::Revoked);
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("fwd: {}: {e}", a.iface);
            ExitCode::from(1)
        }
    }
}
