//! Graceful interrupt. The first SIGINT or SIGTERM only *asks* to stop: `apply` starts no new
//! batch, lets the requests in flight finish (bounded by the request timeout), records their
//! outcomes, compacts the journal and says what was and was not sent, then exits 128 + the signal
//! (130 for SIGINT, 143 for SIGTERM). A second signal exits at once; the journal, fsynced entry by
//! entry, is still safe: the next run replays it and whatever was in flight becomes unknown.
//!
//! CI runners cancel a job with SIGINT, then SIGTERM a few seconds later: both count, so a
//! cancelled job gets one chance to finish cleanly and is never left hanging.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

static COUNT: AtomicUsize = AtomicUsize::new(0);
static FIRST: AtomicI32 = AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe operations here: atomics and _exit.
    if COUNT.fetch_add(1, Ordering::SeqCst) == 0 {
        FIRST.store(sig, Ordering::SeqCst);
    } else {
        // SAFETY: _exit is async-signal-safe; nothing is flushed, the journal is already durable.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// Installs the handlers for SIGINT and SIGTERM (idempotent).
pub(crate) fn install() {
    #[cfg(unix)]
    // SAFETY: installing a handler that only touches atomics and calls _exit.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The signal that asked us to stop, if any.
pub(crate) fn requested() -> Option<i32> {
    match FIRST.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The signal's name, for messages.
pub(crate) fn name(sig: i32) -> &'static str {
    #[cfg(unix)]
    {
        match sig {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = sig;
        "a signal"
    }
}

/// Resolves once a stop was requested (polled: the handler cannot wake a future).
pub(crate) async fn wait() {
    while requested().is_none() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
