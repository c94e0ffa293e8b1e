//! Stop flags raised by SIGINT and SIGTERM, for poll loops.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn raise(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs handlers for SIGINT and SIGTERM that set the returned flag.
/// A poll loop that checks it ends cleanly, releasing its port.
pub fn stop_on_signals() -> &'static AtomicBool {
    let handler = raise as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; signal(3) has no other preconditions.
        unsafe { libc::signal(sig, handler) };
    }
    &STOP
}
