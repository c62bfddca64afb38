//! Report benchmarks on a large synthetic run: CSV parsing, per-run
//! statistics, variant aggregation, the splat scanner, and a whole
//! `summarize` of a result tree. `cargo bench -p scx-vmctl --bench report`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use scx_contract::sample as csv;
use scx_vmctl::report::{self, collect, runstats::SeriesStats, splat};

/// A run of `n` samples (0.1 s apart): control-like growth with noise, or a
/// test-like plateau with evictions.
fn synthetic_csv(n: usize, plateau: bool) -> String {
    let mut s = String::with_capacity(n * 72);
    s.push_str(csv::HEADER);
    s.push('\n');
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..n {
        // xorshift: cheap deterministic noise
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = x % 50;
        let t = i as f64 * 0.1;
        let entries = if plateau { 4000 + noise } else { 100 + i as u64 * 3 + noise };
        let ev = if plateau { i as u64 * 3 } else { 0 };
        s.push_str(&format!(
            "{t:.3},{entries},{},{},{},{ev},{},{},{},enabled,{}\n",
            entries * 72,
            2_000_000 - entries / 4,
            40_000 + entries / 40,
            i / 10,
            i / 1000,
            20_000 + noise * 100,
            150 + noise
        ));
    }
    s
}

fn dmesg(lines: usize) -> String {
    let mut s = String::new();
    for i in 0..lines {
        let t = i as f64 * 0.01;
        match i % 5000 {
            1234 => s.push_str(&format!("[{t:12.6}] WARNING: CPU: 1 PID: 77 at kernel/sched/ext.c:1789 dispatch_enqueue+0x1a2/0x3c0\n")),
            _ => s.push_str(&format!("[{t:12.6}] stress-ng-fork ({i}) used greatest stack depth: 12136 bytes left\n")),
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    const N: usize = 200_000;
    let text = synthetic_csv(N, false);
    let mut g = c.benchmark_group("report");
    g.sample_size(20);

    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("csv_parse_200k_lines", |b| b.iter(|| csv::parse_str(black_box(&text), "bench.csv").unwrap()));

    let samples = csv::parse_str(&text, "bench.csv").unwrap().samples;
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("series_stats_200k_samples", |b| b.iter(|| SeriesStats::of(black_box(&samples))));

    let plateau = csv::parse_str(&synthetic_csv(N, true), "p.csv").unwrap().samples;
    let runs: Vec<_> = (1..=5)
        .map(|i| report::summary::RunSummary {
            iteration: i,
            status: "ok".into(),
            failure: None,
            exit_kind: None,
            exit_reason: None,
            csv_truncated_line: None,
            stats: SeriesStats::of(&plateau),
            workload_metric: None,
            splats: 0,
            series: Vec::new(),
        })
        .collect();
    g.throughput(Throughput::Elements(runs.len() as u64));
    g.bench_function("aggregate_5_runs", |b| b.iter(|| collect::aggregate("test", 5, black_box(runs.clone()))));

    let log = dmesg(100_000);
    g.throughput(Throughput::Bytes(log.len() as u64));
    g.bench_function("splat_scan_100k_lines", |b| {
        b.iter(|| splat::scan_text(black_box(&log), splat::LogKind::Dmesg, "run1.dmesg.log"))
    });

    // A whole tree: 2 variants x 3 runs x 20k samples, with logs.
    let dir = tempfile::tempdir().unwrap();
    let grp = dir.path().join("scx_simple/hackbench");
    for (v, plateau) in [("control", false), ("test", true)] {
        std::fs::create_dir_all(grp.join(v)).unwrap();
        for n in 1..=3 {
            std::fs::write(grp.join(format!("{v}/run{n}.csv")), synthetic_csv(20_000, plateau)).unwrap();
            std::fs::write(grp.join(format!("{v}/run{n}.dmesg.log")), dmesg(5_000)).unwrap();
        }
    }
    g.throughput(Throughput::Elements(120_000));
    g.bench_function("summarize_tree_120k_samples", |b| b.iter(|| report::summarize(black_box(dir.path())).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
