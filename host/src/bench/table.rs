//! The readable form of a bench report: one block per measurement, then the
//! goals. Guest timings are guest-clock; under single-threaded TCG they
//! include time the vCPU waited for the other one (said in the header).

use super::{overhead, BenchReport};
use crate::report::stats::Estimate;
use std::fmt::Write;

fn ci(e: &Option<crate::report::stats::Estimate>, unit: &str) -> String {
    match e {
        None => "-".into(),
        Some(e) => match (e.ci95_low, e.ci95_high) {
            (Some(l), Some(h)) => format!("{:.2} {unit} (95% CI {l:.2}..{h:.2}, n={})", e.mean, e.n),
            _ => format!("{:.2} {unit} (n={})", e.mean, e.n),
        },
    }
}

pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(s, "\nscx-vmctl bench ({}): {} host CPUs ({}), {}", r.mode, m.host_cpus, m.host_cpu, m.host_os);
    let _ = writeln!(
        s,
        "guest: {} vCPUs, {} MiB, kernel {}, QEMU {}, accel {}",
        m.guest_cpus, m.guest_memory_mib, m.guest_kernel, m.qemu_version, m.accel
    );
    if m.accel.starts_with("tcg") {
        let _ = writeln!(s, "(guest-clock times: under single-threaded TCG they include time a vCPU waited its turn)");
    }
    let c = &r.count;
    let cm = &c.measured;
    let _ = writeln!(s, "\n(a) counting a {}-entry map (median of n)", cm.entries);
    for (name, w) in [
        ("agent, batched", &cm.agent_batch),
        ("agent, GET_NEXT_KEY", &cm.agent_next_key),
        ("bpftool map dump", &cm.bpftool),
        ("kernel elem_count", &cm.kernel_elem_count),
    ] {
        let _ = writeln!(s, "  {name:<22} {:>10.2} ms  n={:<3} counted {}", w.timings.median_ms, w.timings.n, w.count);
    }
    let _ = writeln!(s, "  speedup {:.0}x (GET_NEXT_KEY fallback {:.0}x)", c.speedup, c.speedup_next_key);

    let sm = &r.sampler.measured;
    let _ = writeln!(s, "\n(b) sampling every {} s, {} with {} map entries", sm.interval_s, sm.ops_name, sm.map_entries_max);
    let _ = writeln!(
        s,
        "  CPU per sample {:.2} ms median (max {:.2}; counting the map {:.2}), wall {:.2} ms; agent process {:.3}% of one vCPU over {:.0} s",
        sm.cpu_per_sample.median_ms,
        sm.cpu_per_sample.max_ms,
        sm.count_cpu.median_ms,
        sm.wall_per_sample.median_ms,
        r.sampler.vcpu_percent,
        sm.span_ns as f64 / 1e9
    );

    let _ = writeln!(s, "\n(c) helper vs pure BPF (half the entries stale)");
    let _ = writeln!(
        s,
        "  {:>7} {:<8} {:>12} {:>12} | {:>8} {:>9} {:>11} {:>10} {:>10}",
        "size", "method", "scanned/ms", "evicted/ms", "calls", "evicted", "per call", "p99 quiet", "worst"
    );
    for z in &r.scan.sizes {
        for t in &z.throughput {
            let Some(w) = z.sweep_of(t.measured.method) else { continue };
            let wm = &w.measured;
            let state = if wm.complete { "" } else if wm.stalled { " stalled" } else { " incomplete" };
            let _ = writeln!(
                s,
                "  {:>7} {:<8} {:>12.0} {:>12.0} | {:>8} {:>9} {:>11.1} {:>7.0} us {:>7.0} us{state}",
                z.size,
                t.measured.method,
                t.scanned_per_ms,
                t.evicted_per_ms,
                wm.calls,
                wm.evicted,
                w.evicted_per_call,
                wm.p99_quiet_call_ns as f64 / 1e3,
                wm.worst_call_ns as f64 / 1e3
            );
        }
        for (what, list) in [("drain (all stale)", &z.drain), ("overrun (prealloc)", &z.overrun), ("sparse (16 entries)", &z.sparse)] {
            for w in list {
                let (rate, w) = (w.evicted_per_call, &w.measured);
                let _ = writeln!(
                    s,
                    "  {:>7} {:<8} {what:<18} {:>6} calls {:>6.1} evicted/call, p99 quiet {:>5.0} us, worst quiet {:>5.0} us, worst {:>5.0} us",
                    "",
                    w.method,
                    w.calls,
                    rate,
                    w.p99_quiet_call_ns as f64 / 1e3,
                    w.worst_quiet_call_ns as f64 / 1e3,
                    w.worst_call_ns as f64 / 1e3
                );
            }
        }
        let v = &z.versus;
        let _ = writeln!(
            s,
            "  {:>7} helper/bpfscan: unbounded {:.2}x, budgeted {:.1}x, drain {:.1}x; p99 overrun helper {:.1} us (bpfscan {:.1}), margin {:.1} us ({})",
            "",
            v.throughput_ratio,
            v.sweep_ratio,
            v.drain_ratio,
            v.helper_p99_quiet_overrun_ns / 1e3,
            v.bpfscan_p99_quiet_overrun_ns / 1e3,
            v.margin_ns / 1e3,
            if v.within_margin { "ok" } else { "over" }
        );
        let sparse = |o: Option<f64>| o.map(|n| format!("{:.1}", n / 1e3)).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "  {:>7} p99 overrun helper: dense {:.1} us, drained {:.1} us, sparse {} us (bpfscan: {:.1}, {:.1}, {})",
            "",
            v.helper_p99_quiet_overrun_ns / 1e3,
            v.helper_p99_drain_overrun_ns / 1e3,
            sparse(v.helper_p99_sparse_overrun_ns),
            v.bpfscan_p99_quiet_overrun_ns / 1e3,
            v.bpfscan_p99_drain_overrun_ns / 1e3,
            sparse(v.bpfscan_p99_sparse_overrun_ns)
        );
    }
    if let Some(z) = r.scan.sizes.first() {
        if let Some(w) = z.sweep.first() {
            let _ = writeln!(
                s,
                "  (left: one unbounded call; right: calls with a {} us budget until every stale entry is gone; quiet: no interrupt in the call)",
                w.measured.timeout_ns / 1000
            );
        }
    }

    let w = &r.workload;
    let _ = writeln!(
        s,
        "\n(d) {} under {}, {} s runs, {} iterations ({}, lower is better)",
        w.workload, w.scheduler, w.duration_s, w.iterations, w.metric
    );
    let _ = writeln!(s, "  control {}", ci(&w.control.estimate, "s"));
    let _ = writeln!(s, "  test    {}", ci(&w.test.estimate, "s"));
    if let Some(c) = &w.change {
        let interval = match (c.ci95_low, c.ci95_high) {
            (Some(l), Some(h)) => format!(" (95% CI {:+.1}%..{:+.1}%)", l * 100.0, h * 100.0),
            _ => String::new(),
        };
        let _ = writeln!(s, "  test vs control {:+.1}%{interval}", c.value * 100.0);
    }

    let o = &r.overhead;
    let _ = writeln!(s, "\n(e) run overhead ({} runs of {} s)", o.runs.len(), o.duration_s);
    for run in &o.runs {
        let _ = writeln!(
            s,
            "  {:<7} #{} wall {:>5.1} s = boot {:.1} + setup {:.1} + workload {:.1} + pull {:.1}; overhead {:.1} s",
            run.variant, run.iteration, run.wall_s, run.boot_s, run.setup_s, run.workload_s, run.pull_s, run.overhead_s
        );
    }
    let _ = writeln!(s, "  overhead per run {}", ci(&o.overhead_s, "s"));
    let _ = writeln!(s, "  QEMU start to SSH ready {}, max {:.2} s", ci(&o.boot_s, "s"), o.boot_max_s);
    let b = &o.bench_vm_boot;
    if let (Some(k), Some(i), Some(rest)) = (b.kernel_s, b.init_s, b.rest_s) {
        let _ = writeln!(
            s,
            "  bench VM boot {:.2} s: kernel {k:.2} s + init {i:.2} s (guest clock) + the rest {rest:.2} s (QEMU, firmware, a bzImage's decompression, sshd, handshake)",
            b.qemu_to_ssh_s
        );
    }
    if !o.resets.is_empty() {
        let _ = writeln!(s, "  per reset mode, {} {} (control, test):", overhead::RESET_SCHEDULER, overhead::RESET_WORKLOAD);
        for c in &o.resets {
            let boot = Estimate::of(&c.runs.iter().filter(|r| r.status == "ok").map(|r| r.boot_s).collect::<Vec<_>>());
            let _ = writeln!(
                s,
                "    {:<9} {} runs of {} s: overhead per run {}, max {:.1} s; boot/restore {}; experiment {:.0} s{}",
                c.reset,
                c.runs.len(),
                c.duration_s,
                ci(&c.overhead_s, "s"),
                c.overhead_max_s,
                ci(&boot, "s"),
                c.experiment_wall_s,
                if c.other_reset_runs > 0 { format!(" ({} runs fell back to another reset)", c.other_reset_runs) } else { String::new() }
            );
        }
    }

    if let Some(p) = &r.peers {
        let _ = writeln!(s, "\n(e) boot to a usable guest, {} boots each alternated, same bzImage, {}", p.ours_s.len(), p.accel);
        let _ = writeln!(s, "  scx-vmctl (QEMU start to SSH ready)        {}", ci(&p.ours, "s"));
        let _ = writeln!(s, "  virtme-ng {} (start to a command run)   {}", p.vng_version, ci(&p.vng, "s"));
        let _ = writeln!(s, "  vng / ours {:.2}x   ({})", p.vng_over_ours, p.vng_command);
    }

    let _ = writeln!(s, "\ngoals");
    for g in &r.goals {
        let _ = writeln!(s, "  {:<4} {:<21} {:>10.2} {:<6} {}", if g.met { "MET" } else { "NOT" }, g.id, g.value, g.unit, g.goal);
    }
    let _ = writeln!(s, "bench took {:.0} s", r.wall_s);
    s
}
