//! Boot calibrations a TCG guest is told instead of measuring. TCG's CPU
//! model has neither a constant-TSC flag, nor the TSC-deadline timer, nor
//! CPUID leaf 0x15, the ways a kernel knows these rates without measuring:
//!
//! - the delay loop (`lpj=`): every secondary vCPU calibrates its own
//!   against timer ticks, ~0.1 s each, one after the other (measured: 0.107
//!   -> 0.029 s to bring up the second vCPU, 0.29 s for three). A TCG
//!   guest's TSC is the host's own (QEMU reads it with rdtsc), so the host
//!   measures it.
//! - the local APIC timer (`lapic_timer_freq=`, our kernel patch 0003): a
//!   100 ms measurement on the first vCPU; QEMU's emulated APIC bus runs at
//!   a fixed 1 GHz.

use std::time::{Duration, Instant};

/// QEMU's emulated APIC bus (its APIC_BUS_FREQUENCY): the local APIC
/// timer's input clock under TCG.
pub const QEMU_APIC_BUS_HZ: u64 = 1_000_000_000;

/// The kernel's loops_per_jiffy for a TSC of `tsc_mhz` at `hz` ticks a second
/// (x86 delays count TSC cycles: lpj = TSC Hz / HZ, as the kernel derives it).
pub fn lpj(tsc_mhz: u64, hz: u32) -> u64 {
    tsc_mhz * 1_000_000 / u64::from(hz.max(1))
}

/// The host's TSC rate in MHz (rounded, so boots on one host get one command
/// line), or None where it cannot be trusted: not x86-64, or no constant TSC
/// (its rate then follows the CPU's clock).
pub fn host_tsc_mhz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    if !constant_tsc(&cpuinfo) {
        return None;
    }
    measure(Duration::from_millis(5))
}

fn constant_tsc(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "constant_tsc"))
}

#[cfg(target_arch = "x86_64")]
fn measure(window: Duration) -> Option<u64> {
    // A TSC reading bracketing a clock reading, the tightest of a few: being
    // preempted between the two would otherwise skew the rate.
    fn pair() -> (u64, Instant) {
        let mut best: Option<(u64, u64, Instant)> = None;
        for _ in 0..8 {
            // SAFETY: rdtsc has no preconditions on x86-64.
            let a = unsafe { core::arch::x86_64::_rdtsc() };
            let t = Instant::now();
            let b = unsafe { core::arch::x86_64::_rdtsc() };
            if best.is_none_or(|(w, _, _)| b.wrapping_sub(a) < w) {
                best = Some((b.wrapping_sub(a), a / 2 + b / 2, t));
            }
        }
        let (_, tsc, t) = best.expect("8 samples");
        (tsc, t)
    }
    let (c0, t0) = pair();
    std::thread::sleep(window); // the measuring window, not a wait for anything
    let (c1, t1) = pair();
    let ns = t1.duration_since(t0).as_nanos() as f64;
    let mhz = (c1.checked_sub(c0)? as f64) * 1000.0 / ns;
    (mhz.is_finite() && mhz >= 1.0).then(|| mhz.round() as u64)
}

#[cfg(not(target_arch = "x86_64"))]
fn measure(_window: Duration) -> Option<u64> {
    None
}

/// CONFIG_HZ from a kernel's .config text.
pub fn config_hz(config: &str) -> Option<u32> {
    config.lines().find_map(|l| l.strip_prefix("CONFIG_HZ=")?.trim().parse().ok()).filter(|&hz| hz > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpj_is_tsc_cycles_per_tick() {
        // The kernel's own figure for a 2100 MHz TSC at HZ=250 ("lpj=8400000").
        assert_eq!(lpj(2100, 250), 8_400_000);
        assert_eq!(lpj(2100, 1000), 2_100_000);
        assert_eq!(lpj(2100, 0), 2_100_000_000, "a bogus HZ does not divide by zero");
    }

    #[test]
    fn hz_is_read_from_the_config() {
        let c = "# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n";
        assert_eq!(config_hz(c), Some(250));
        assert_eq!(config_hz("CONFIG_HZ_250=y\n"), None);
        assert_eq!(config_hz("CONFIG_HZ=0\n"), None);
    }

    #[test]
    fn constant_tsc_is_a_whole_flag() {
        assert!(constant_tsc("processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n"));
        assert!(!constant_tsc("flags\t\t: fpu tsc nonconstant_tsc_x\n"));
        assert!(!constant_tsc("processor\t: 0\n"));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_host_rate_is_measured_stably() {
        // Two measurements land on the same MHz or a neighbour (a rate right
        // at a rounding boundary), never far apart.
        let (Some(a), Some(b)) = (measure(Duration::from_millis(5)), measure(Duration::from_millis(5))) else {
            panic!("an x86-64 host has a TSC to measure");
        };
        assert!(a.abs_diff(b) <= 1, "{a} MHz then {b} MHz");
        assert!((100..20_000).contains(&a), "{a} MHz");
    }
}
