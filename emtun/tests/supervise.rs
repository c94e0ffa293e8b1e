//! Supervised runs on the in-memory port: revoke -> re-open -> traffic
//! again, with the application's state kept across attachments.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{frame, seq_of};
use emtun::netmap_user::mem::{self, MemConfig, MemNic};
use emtun::netmap_user::Error as NetmapError;
use emtun::{
    run_supervised, App, Backoff, Error, Event, Frame, PollMode, Sender, Tunnel, TunnelConfig,
};

const SIG: u16 = 0x88b5;

/// Counts claimed frames; revokes the port after the first attachment has
/// seen 3, and stops once 6 have arrived in all.
struct Counter<'a> {
    seen: Vec<u32>,
    nic: &'a RefCell<Option<MemNic>>,
    stop: &'a AtomicBool,
}

impl App for Counter<'_> {
    fn on_frame(&mut self, f: Frame<'_>, _tx: &mut Sender<'_, '_>) {
        self.seen.push(seq_of(f.data()));
    }
    fn on_pass(&mut self, _tx: &mut Sender<'_, '_>) {
        if self.seen.len() == 3 {
            if let Some(nic) = self.nic.borrow().as_ref() {
                nic.revoke(); // the kernel's watchdog, as the next sync sees it
            }
        }
        if self.seen.len() >= 6 {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

fn cfg() -> TunnelConfig {
    TunnelConfig::default()
        .claim(emtun::EtherType(SIG))
        .unwrap()
        .poll(PollMode::Busy)
}

#[test]
fn a_revoked_tunnel_reattaches_and_the_app_keeps_its_state() {
    let nic: RefCell<Option<MemNic>> = RefCell::new(None);
    let stop = AtomicBool::new(false);
    let opens = Rc::new(RefCell::new(0u32));
    let open = || {
        let (port, n) = mem::port(&MemConfig::default());
        let k = {
            let mut o = opens.borrow_mut();
            *o += 1;
            *o
        };
        // Each attachment finds three signal frames and one for the stack.
        for i in 0..3 {
            n.wire_send(0, &frame(SIG, k * 10 + i, 60)).unwrap();
        }
        n.wire_send(0, &frame(0x0800, 99, 60)).unwrap();
        *nic.borrow_mut() = Some(n);
        Ok(Tunnel::with_port(port, cfg()))
    };
    let mut app = Counter {
        seen: Vec::new(),
        nic: &nic,
        stop: &stop,
    };
    let mut events = Vec::new();
    let (r, total) = run_supervised(open, &stop, &mut app, &Backoff::default(), |e| {
        events.push(match e {
            Event::Attached { attempt } => format!("attached {attempt}"),
            Event::Detached(err) => format!("detached: {}", err.is_revoked()),
            Event::Retrying { .. } => "retrying".into(),
        })
    });
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        app.seen,
        vec![10, 11, 12, 20, 21, 22],
        "one app, both attachments, in order"
    );
    assert_eq!(events, vec!["attached 1", "detached: true", "attached 2"]);
    assert_eq!(
        (total.to_app, total.to_host),
        (6, 2),
        "counters of both attachments"
    );
    assert_eq!(*opens.borrow(), 2);
}

#[test]
fn failed_opens_back_off_and_give_up_with_the_last_reason() {
    let stop = AtomicBool::new(false);
    let backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(2),
        max_retries: Some(3),
    };
    let mut tries = 0;
    let open = || -> Result<Tunnel<mem::Mem>, Error> {
        tries += 1;
        Err(NetmapError::Busy("em0".into()).into())
    };
    let mut delays = Vec::new();
    let mut sink = |_: &[u8]| {};
    let (r, _) = run_supervised(open, &stop, &mut sink, &backoff, |e| {
        if let Event::Retrying { delay, .. } = e {
            delays.push(delay.as_millis());
        }
    });
    match r {
        Err(Error::GaveUp { failures, last }) => {
            assert_eq!(failures, 3);
            assert!(last.to_string().contains("already registered"), "{last}");
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!(tries, 4, "the first open and three retries");
    assert_eq!(delays, vec![1, 2, 2]);
}

#[test]
fn errors_no_retry_can_cure_end_the_run_at_once() {
    let stop = AtomicBool::new(false);
    let mut tries = 0;
    let open = || -> Result<Tunnel<mem::Mem>, Error> {
        tries += 1;
        Err(NetmapError::PermissionDenied("em0".into()).into())
    };
    let mut sink = |_: &[u8]| {};
    let (r, _) = run_supervised(open, &stop, &mut sink, &Backoff::default(), |_| {});
    assert!(
        matches!(r, Err(Error::Netmap(NetmapError::PermissionDenied(_)))),
        "{r:?}"
    );
    assert_eq!(tries, 1);
}
