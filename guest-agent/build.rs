//! Compiles the BPF programs under ../bpf into libbpf-rs skeletons.
//!
//! The objects are built against the *guest* kernel's BTF: SCX_VMLINUX_H
//! names a vmlinux.h generated from the guest kernel (`bpftool btf dump file
//! vmlinux format c`). Each entry of PROGRAMS becomes one skeleton module in
//! $OUT_DIR/skeletons.rs; to add a BPF program (e.g. a selftest under
//! bpf/selftest/), add an entry.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

/// One BPF object to build: its source, the skeleton/module name, and the
/// extra clang defines that make this build differ from others of the same
/// source.
struct Program {
    source: String,
    name: String,
    defines: Vec<String>,
}

const SCHEDULERS: &[&str] = &["scx_simple", "scx_cfsish", "scx_flatcg", "scx_nest"];
/// The value of SCX_VARIANT for each variant (see bpf/include/track.h).
const VARIANTS: &[(&str, u32)] = &[("control", 0), ("test", 1), ("bpfscan", 2), ("exitdel", 3), ("taskstor", 4)];

fn programs() -> Vec<Program> {
    let mut progs = Vec::new();
    for sched in SCHEDULERS {
        for (variant, value) in VARIANTS {
            progs.push(Program {
                source: format!("{sched}.bpf.c"),
                name: format!("{sched}_{variant}"),
                defines: vec![format!("-DSCX_VARIANT={value}")],
            });
        }
    }
    // The sampler's O(1) entry count (guest-agent/src/elemcount.rs).
    progs.push(Program {
        source: "count/elem_count.bpf.c".into(),
        name: "elem_count".into(),
        defines: Vec::new(),
    });
    // Entries of a task-storage map, by task iterator (guest-agent/src/storagecount.rs).
    progs.push(Program {
        source: "count/task_storage_count.bpf.c".into(),
        name: "task_storage_count".into(),
        defines: Vec::new(),
    });
    // Entries of a cgroup-storage map, by cgroup iterator (guest-agent/src/storagecount.rs).
    progs.push(Program {
        source: "count/cgrp_storage_count.bpf.c".into(),
        name: "cgrp_storage_count".into(),
        defines: Vec::new(),
    });
    // Tasks exited and cgroups destroyed, for the per-map sampling (guest-agent/src/schedmaps.rs).
    progs.push(Program {
        source: "count/exits.bpf.c".into(),
        name: "exits".into(),
        defines: Vec::new(),
    });
    // leakcheck's fixture: leaks per cgroup through a key's padding (scx-guest-agent fixture cgleak).
    progs.push(Program {
        source: "fixtures/scx_cgleak.bpf.c".into(),
        name: "scx_cgleak".into(),
        defines: Vec::new(),
    });
    // The helper swept from dispatch while a bpf_timer writes the map (scx-guest-agent fixture timerwrite).
    progs.push(Program {
        source: "fixtures/scx_timerwrite.bpf.c".into(),
        name: "scx_timerwrite".into(),
        defines: Vec::new(),
    });
    // The helper's selftest (scx-guest-agent selftest).
    progs.push(Program {
        source: "selftest/map_scan.bpf.c".into(),
        name: "map_scan".into(),
        defines: Vec::new(),
    });
    // Helper vs pure-BPF eviction and map counting (scx-guest-agent bench).
    progs.push(Program {
        source: "bench/scan_bench.bpf.c".into(),
        name: "scan_bench".into(),
        defines: Vec::new(),
    });
    progs
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let bpf_dir = manifest.join("..").join("bpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-env-changed=SCX_VMLINUX_H");
    println!("cargo:rerun-if-env-changed=SCX_BPF_CLANG");
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    for entry in walk(&bpf_dir) {
        println!("cargo:rerun-if-changed={}", entry.display());
    }

    let vmlinux_h = match env::var_os("SCX_VMLINUX_H") {
        Some(p) => PathBuf::from(p),
        None => fail(
            "SCX_VMLINUX_H is not set: point it at a vmlinux.h generated from the guest \
             kernel (bpftool btf dump file <vmlinux> format c > vmlinux.h)",
        ),
    };
    if !vmlinux_h.is_file() {
        fail(&format!(
            "SCX_VMLINUX_H={} is not a readable file",
            vmlinux_h.display()
        ));
    }
    println!("cargo:rerun-if-changed={}", vmlinux_h.display());

    // Copy it to a directory of its own so that `#include "vmlinux.h"` finds
    // exactly this file whatever it is called, and nothing else next to it.
    let inc = out.join("vmlinux-include");
    fs::create_dir_all(&inc).unwrap();
    fs::copy(&vmlinux_h, inc.join("vmlinux.h"))
        .unwrap_or_else(|e| fail(&format!("copying {}: {e}", vmlinux_h.display())));

    let clang = env::var("SCX_BPF_CLANG").unwrap_or_else(|_| "clang-19".into());
    let include = bpf_dir.join("include");
    let mut modules = String::new();
    for prog in programs() {
        let src = bpf_dir.join(&prog.source);
        // The skeleton's type names come from the object's file name.
        let obj = out.join(format!("{}.bpf.o", prog.name));
        let skel = out.join(format!("{}.skel.rs", prog.name));
        let mut args = vec![
            "-mcpu=v3".to_string(),
            "-Wall".to_string(),
            "-Wno-unused-function".to_string(),
            // bpftool >= 7.4 (Debian 13) puts kfunc prototypes in vmlinux.h;
            // ours are declared in bpf/include (per kernel API), so keep it out.
            "-DBPF_NO_KFUNC_PROTOTYPES".to_string(),
            format!("-I{}", include.display()),
            format!("-I{}", inc.display()),
        ];
        args.extend(prog.defines.iter().cloned());
        SkeletonBuilder::new()
            .source(&src)
            .obj(&obj)
            .clang(&clang)
            .clang_args(&args)
            .build_and_generate(&skel)
            .unwrap_or_else(|e| fail(&format!("building {}: {e:#}", prog.name)));
        writeln!(
            modules,
            "pub mod {} {{ include!(concat!(env!(\"OUT_DIR\"), \"/{}.skel.rs\")); }}",
            prog.name, prog.name
        )
        .unwrap();
    }
    fs::write(out.join("skeletons.rs"), modules).unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files.extend(walk(&p));
            } else {
                files.push(p);
            }
        }
    }
    files
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    panic!("{msg}");
}
