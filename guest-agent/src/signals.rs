//! SIGINT/SIGTERM/SIGHUP ask for an orderly stop: the run still stops its
//! workload, unloads the scheduler and writes its files.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: on_signal is an extern "C" fn(c_int) that only does an atomic store, which is
        // async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sleep up to `d`, waking early when a stop was requested.
pub fn sleep(d: std::time::Duration) {
    let end = std::time::Instant::now() + d;
    while !stopping() {
        let now = std::time::Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(std::time::Duration::from_millis(50)));
    }
}
