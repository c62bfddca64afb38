//! custom-churn: bursts of short-lived processes, the pattern that leaks
//! tracking entries fastest (every task gets a new pid and an entry, then
//! exits without the scheduler ever hearing about it in a way it cleans).
//!
//! Runs as a separate single-threaded process (`scx-guest-agent
//! churn-worker`, started by the agent inside a workload cgroup), so that
//! fork() is safe and the children land in the cgroup.

use std::time::{Duration, Instant};

use crate::signals;

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass; it is async-signal-safe, so the
    // forked child may call it too.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// In the child: burn `us` of CPU (so it is really scheduled), then exit.
/// Only async-signal-safe calls after fork().
fn child(us: u64) -> ! {
    let end = now_ns() + us * 1000;
    let mut x = 0u64;
    while now_ns() < end {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    // SAFETY: _exit ends the forked child at once, running no atexit handlers or destructors
    // copied from the parent.
    unsafe { libc::_exit(0) }
}

fn reap(block: bool) -> u64 {
    let mut n = 0;
    loop {
        let mut status = 0;
        // SAFETY: waitpid only writes the status int we pass, alive for the call.
        let r = unsafe { libc::waitpid(-1, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if r <= 0 {
            return n;
        }
        n += 1;
    }
}

pub fn worker(burst: u32, rate_hz: f64, task_us: u64, duration: Duration) -> anyhow::Result<()> {
    signals::install();
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let start = Instant::now();
    let mut next = start;
    let (mut spawned, mut failed) = (0u64, 0u64);
    println!("churn-worker: burst {burst} every {period:?}, tasks spin {task_us} us, for {duration:?}");

    while !signals::stopping() && start.elapsed() < duration {
        for _ in 0..burst {
            // SAFETY: this worker process is single-threaded (see the module doc), and the child only
            // calls async-signal-safe functions (clock_gettime) before _exit.
            match unsafe { libc::fork() } {
                0 => child(task_us),
                -1 => failed += 1,
                _ => spawned += 1,
            }
        }
        reap(false);
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // behind schedule (slow machine): do not try to catch up in a rush
            next = now;
        }
    }
    reap(true);
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "churn-worker: spawned {spawned} failed {failed} elapsed {elapsed:.3} rate {:.2}",
        spawned as f64 / elapsed.max(1e-9)
    );
    if failed > 0 && spawned == 0 {
        anyhow::bail!("fork failed every time");
    }
    Ok(())
}
