//! Supervised runs: re-attach after the kernel took the port back.
//!
//! A revoked registration (watchdog or administrator), a ring reinit or a
//! duplicated buffer ends a [`Tunnel`]. A supervised run then releases the
//! port, waits with exponential backoff, opens it again and carries on with
//! the same application, whose state survives. It gives up after
//! [`Backoff::max_retries`] failed opens in a row and says why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netmap_user::Backend;

use crate::engine::App;
use crate::error::Error;
use crate::stats::Stats;
use crate::tunnel::Tunnel;

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retry (default 100 ms); doubled after each
    /// failed open, up to `max`.
    pub initial: Duration,
    /// Longest wait between two opens (default 5 s).
    pub max: Duration,
    /// Failed opens in a row before giving up; `None` retries for ever
    /// (default 10).
    pub max_retries: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            max_retries: Some(10),
        }
    }
}

impl Backoff {
    /// The wait before retry number `n` (from 1).
    pub fn delay(&self, n: u32) -> Duration {
        let f = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(f).min(self.max)
    }
}

/// What a supervised run reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The port is registered (attempt counts opens since the start, from 1).
    Attached {
        /// Opens tried so far.
        attempt: u32,
    },
    /// The tunnel ended on a fatal port error and released the port.
    Detached(&'a Error),
    /// An open failed; the next one follows after `delay`.
    Retrying {
        /// Failed opens in a row.
        failures: u32,
        /// The wait before the next open.
        delay: Duration,
        /// Why the open failed.
        error: &'a Error,
    },
}

/// Whether another open can succeed later (the kernel may still be
/// releasing the port, or an administrator may re-arm it).
fn retryable(e: &Error) -> bool {
    use netmap_user::Error as N;
    match e {
        Error::Netmap(n) => matches!(
            n,
            N::Busy(_)
                | N::Revoked
                | N::RingReinit(_)
                | N::DuplicateBuffer { .. }
                | N::Rejected { .. }
                | N::Io(_)
        ),
        Error::Unprotected { .. } => true,
        _ => false,
    }
}

/// Runs `app` on tunnels from `open` until `stop` is set, re-opening after
/// every fatal port error. Returns the counters of all attachments.
///
/// # Errors
/// The first error that another open cannot cure (a bad name, no netmap,
/// not root, a claim refused, ...), or [`Error::GaveUp`] after
/// `backoff.max_retries` failed opens in a row; the counters so far are
/// returned with it.
pub fn run_supervised<B, A, O, E>(
    mut open: O,
    stop: &AtomicBool,
    app: &mut A,
    backoff: &Backoff,
    mut on_event: E,
) -> (Result<(), Error>, Stats)
where
    B: Backend,
    A: App + ?Sized,
    O: FnMut() -> Result<Tunnel<B>, Error>,
    E: FnMut(&Event<'_>),
{
    let mut total = Stats::default();
    let mut attempt = 0u32;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        attempt += 1;
        let err = match open() {
            Ok(mut tun) => {
                failures = 0;
                on_event(&Event::Attached { attempt });
                let r = tun.run_until(stop, app);
                total.add(&tun.stats());
                drop(tun); // release the port before anything else
                match r {
                    Ok(()) => return (Ok(()), total),
                    Err(e) if e.is_fatal() => {
                        on_event(&Event::Detached(&e));
                        // Re-open at once: the port is free again.
                        continue;
                    }
                    Err(e) => return (Err(e), total),
                }
            }
            Err(e) => e,
        };
        if !retryable(&err) {
            return (Err(err), total);
        }
        failures += 1;
        if backoff.max_retries.is_some_and(|m| failures > m) {
            return (
                Err(Error::GaveUp {
                    failures: failures - 1,
                    last: Box::new(err),
                }),
                total,
            );
        }
        let delay = backoff.delay(failures);
        on_event(&Event::Retrying {
            failures,
            delay,
            error: &err,
        });
        sleep_unless_stopped(delay, stop);
    }
    (Ok(()), total)
}

/// Sleeps `d`, waking early when `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff::default();
        let ms = |n| b.delay(n).as_millis();
        assert_eq!(
            (ms(1), ms(2), ms(3), ms(6), ms(7), ms(40)),
            (100, 200, 400, 3200, 5000, 5000)
        );
    }
}
