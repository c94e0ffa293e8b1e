//! memdemo: the tunnel on the in-memory port, runnable on any OS.
//!
//! A simulated NIC and host stack exchange kernel traffic (ARP, IPv4) in
//! both directions while a claimed EtherType (0x88b5) reaches the
//! application, which answers every signal frame. Prints the counters, then
//! shows what a stalled client sees when the kernel revokes the port.

use emtun::netmap_user::mem::{self, MemConfig};
use emtun::{App, Error, EtherType, Frame, PollMode, Sender, Tunnel, TunnelConfig};

struct Responder {
    answered: u64,
}

impl App for Responder {
    fn on_frame(&mut self, f: Frame<'_>, tx: &mut Sender<'_, '_>) {
        let d = f.data();
        let sent = tx.send_with(|buf| {
            buf[..6].copy_from_slice(&d[6..12]);
            buf[6..12].copy_from_slice(&d[..6]);
            buf[12..d.len()].copy_from_slice(&d[12..]);
            d.len()
        });
        if sent.is_ok() {
            self.answered += 1;
        }
    }
}

fn frame(ethertype: u16, n: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f[14..18].copy_from_slice(&n.to_be_bytes());
    f
}

/// Runs the tunnel on an in-memory port and prints its counters (no
/// options; needs no FreeBSD, no root).
#[derive(clap::Parser)]
#[command(about = "The emtun tunnel on the in-memory netmap port: counters, then a revoke")]
struct Args {
    /// Frames from each side (wire and host stack).
    #[arg(long, default_value_t = 100_000)]
    frames: u32,
}

fn main() -> Result<(), Error> {
    let args = <Args as clap::Parser>::parse();
    let cfg = MemConfig {
        hw_rings: 2,
        hw_slots: 256,
        host_slots: 256,
        ..MemConfig::default()
    };
    let (port, nic) = mem::port(&cfg);
    let tc = TunnelConfig::default()
        .claim(EtherType::EMTUN_SIGNAL)?
        .poll(PollMode::Busy);
    let mut tun = Tunnel::with_port(port, tc);
    let mut app = Responder { answered: 0 };

    let total = args.frames;
    for n in 0..total {
        let ty = match n % 4 {
            0 => 0x88b5,
            1 => 0x0806,
            _ => 0x0800,
        };
        // The NIC's FIFO may be full: retry after a round (backpressure).
        while nic
            .wire_send((n % 2) as usize, &frame(ty, n, 64 + (n as usize % 1400)))
            .is_err()
        {
            tun.round(&mut app)?;
        }
        let _ = nic.stack_send(0, &frame(0x0800, n, 60 + (n as usize % 1454)));
        if n % 64 == 63 {
            tun.round(&mut app)?;
        }
    }
    while nic.queued() > 0 {
        tun.round(&mut app)?;
    }
    tun.round(&mut app)?;
    let s = tun.stats();
    let wire = nic.wire_take().len();
    let stack = nic.stack_take().len();
    println!("memdemo: 2 queues, {total} frames from the wire and {total} from the host stack");
    println!(
        "  to_app={} (answered {}) from_app={}",
        s.to_app, app.answered, s.from_app
    );
    println!(
        "  to_host={} from_host={} backpressure={} dropped={}",
        s.to_host,
        s.from_host,
        s.backpressure,
        s.dropped.total()
    );
    println!("  wire received {wire} frames, host stack received {stack}");
    println!("  kernel checks: {:?}", nic.counters());
    if let Err(e) = nic.check_buffers() {
        println!("  buffer pool: {e}");
    } else {
        println!("  buffer pool: every buffer in exactly one slot");
    }

    nic.revoke();
    match tun.round(&mut app) {
        Err(e) if e.is_revoked() => println!("after revoke: {e}"),
        other => println!("after revoke: unexpected {other:?}"),
    }
    Ok(())
}
