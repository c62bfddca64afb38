//! The command line (clap). Every subcommand's help says what it does, its
//! defaults, and an example; `cmd/` carries them out.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "scx-vmctl",
    version,
    about = "Prove in a real VM what a kernel change does to sched_ext BPF schedulers",
    long_about = "scx-vmctl boots a QEMU guest whose kernel carries the scx_bpf_map_scan_timeout helper, \
copies a guest agent in over SSH, runs sched_ext schedulers (control: leaks per-task map entries; \
test: evicts them with the helper) under stress, and judges the results.\n\n\
Typical use:\n  scx-vmctl up                                # build kernel+image if needed, boot, leave running\n  \
scx-vmctl ssh -- uname -r\n  scx-vmctl experiment scx_flatcg hackbench 60 3\n  scx-vmctl report results/scx_flatcg/hackbench\n  \
scx-vmctl down\n\n\
Exit codes: 0 ok; 1 a success criterion failed; 2 bad input; 3 the tool failed (QEMU, SSH, build); 130 interrupted.\n\
Files: cache in ~/.cache/scx-vmctl (SCX_VMCTL_CACHE), VMs and keys in ~/.local/state/scx-vmctl (SCX_VMCTL_STATE).",
    after_help = "Run `scx-vmctl <command> --help` for a command's options and examples."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Build or inspect the guest kernel (Debian's linux-source-6.12 + our helper patch)
    #[command(subcommand)]
    Kernel(KernelCmd),
    /// Build or inspect the guest root filesystem image (Debian via mmdebstrap)
    #[command(subcommand)]
    Image(ImageCmd),
    /// Build the guest agent (and its BPF schedulers) for a kernel; prints its path
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Build schedulers of the sched-ext/scx project from crates.io (cached), list them, print their paths
    #[command(subcommand)]
    Sched(SchedCmd),
    /// Probe the accelerators: does KVM really run a guest here? (TCG always works)
    Probe {
        /// Also boot this bzImage under KVM up to its root mount (what `--accel
        /// auto` does before every VM); without it only firmware code is run
        #[arg(long, value_name = "BZIMAGE")]
        kernel: Option<PathBuf>,
    },
    /// Boot a guest and leave it running; returns once SSH answers
    #[command(after_help = "Examples:\n  scx-vmctl up\n  scx-vmctl up --kernel ~/linux/arch/x86/boot/bzImage --name mine --cpus 4\n  \
scx-vmctl up --kernel https://example.org/bzImage --kernel-sha256 <64 hex>")]
    Up(UpArgs),
    /// Run a command in a guest (or open a shell); the remote exit code becomes ours
    #[command(after_help = "Examples:\n  scx-vmctl ssh                    # interactive shell in the only running VM\n  \
scx-vmctl ssh scx -- cat /sys/kernel/sched_ext/state")]
    Ssh(SshArgs),
    /// Copy files or directories in or out of a guest (NAME:path names the guest side)
    #[command(after_help = "Examples:\n  scx-vmctl cp ./mysched scx:/root/\n  scx-vmctl cp scx:/var/log ./guest-logs")]
    Cp(CpArgs),
    /// Show a guest's state: QMP run state, accelerator, uptime, SSH port, QEMU pid
    Status(NameArg),
    /// List guests started by this user
    List,
    /// Power a guest down (ACPI, then QMP quit, then kill) and remove its run directory
    Down(DownArgs),
    /// Run the helper's in-guest selftest (BPF_PROG_RUN on syscall programs), then the kernel's own
    /// sched_ext selftests; --debug on the debug kernel
    #[command(after_help = "Examples:\n  scx-vmctl selftest\n  scx-vmctl selftest --debug        # lockdep/atomic-sleep/KASAN kernel, dmesg checked\n  \
scx-vmctl selftest --no-kernel-selftests   # the helper's cases only (a minute less under TCG)\n  \
scx-vmctl selftest --kernel ~/linux/arch/x86/boot/bzImage\n\n\
Exit 0 when every case and every sched_ext selftest passed (skips are fine) and dmesg is clean, 1 otherwise.")]
    Selftest(SelftestArgs),
    /// Run control vs test variants of a scheduler under a workload and judge them
    #[command(after_help = "Examples:\n  scx-vmctl experiment scx_simple stress-ng 60 3\n  \
scx-vmctl experiment scx_flatcg hackbench --duration 30 --iterations 2 --variants control,test,bpfscan\n  \
scx-vmctl experiment all all 20 1 --reset in-guest\n  \
scx-vmctl experiment --sched-bin ./scx_simple_ctl,./scx_simple_tst --map-name tracked_tasks stress-ng\n  \
scx-vmctl experiment --sched-bin linux/tools/sched_ext/build/bin/scx_simple --map-name stats hackbench 30 1\n  \
scx-vmctl experiment --sched scx_bpfland@1.1.4 custom-churn 30 1\n  \
scx-vmctl experiment --sched scx_lavd@1.1.4 --sched-args '--performance' --map-name cpu_ctx_stor hackbench 30 1\n\n\
Results go to <out>/<scheduler>/<workload>/<variant>/run<N>.csv (+ logs), then summary.txt, summary.json,\n\
report.html and junit.xml. Exit 0 when every criterion holds, 1 when one fails, 3 when the tool failed.")]
    Experiment(Box<ExperimentArgs>),
    /// Find the maps that leak in a scheduler: every map its programs use, sampled against task
    /// and cgroup exits after a no-churn baseline, judged LEAK or OK; exit 1 when one leaks
    #[command(after_help = "Examples:\n  scx-vmctl leakcheck scx_simple custom-churn 20          # control, test and bpfscan\n  \
scx-vmctl leakcheck scx_flatcg cgroup-churn --variants control\n  \
scx-vmctl leakcheck --sched scx_bpfland@1.1.4 custom-churn 30\n  \
scx-vmctl leakcheck --sched-bin ./my_sched cgroup-churn 30\n\n\
Each run loads the scheduler, samples its maps for --baseline-s seconds with no workload, then runs the\n\
workload. Per map (hash maps and task storage; arrays, ring buffers, arenas and cgroup storage are listed\n\
as not sampled) the entries are regressed on tasks exited or cgroups destroyed (whichever explains more):\n\
LEAK when the slope's 95% interval is above zero, it is >= 10 per 1,000 exits, the map has not levelled\n\
off and it did not grow as fast with no churn. Maps only the scheduler's user half holds are not seen.\n\
Defaults: 1 iteration, 20 s. Results and report as for `experiment`; exit 1 when a map leaks.")]
    Leakcheck(Box<LeakcheckArgs>),
    /// Rebuild summary, HTML report and JUnit from result files; merge shards; compare with a baseline
    #[command(after_help = "Examples:\n  scx-vmctl report results/scx_flatcg/hackbench\n  \
scx-vmctl report merge shard1/ shard2/ --out merged/\n  scx-vmctl report results --baseline last-night/summary.json")]
    Report(ReportArgs),
    /// Measure what the tool and the helper cost: map counting, sampler CPU, helper vs pure BPF,
    /// workload impact, run overhead and boot time
    #[command(after_help = "Examples:\n  scx-vmctl bench --json bench.json\n  scx-vmctl bench --short          # the quick mode CI runs\n  \
scx-vmctl bench --peers          # and boot to a usable guest against virtme-ng's\n\n\
Boots one guest for the in-guest measurements, then runs a short scx_simple hackbench experiment\n\
(control vs test). Prints a table; --json writes every figure (fields: README.md, Performance).\n\
Goals are reported, not enforced: exit 0 when every measurement was taken.")]
    Bench(BenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum KernelCmd {
    /// Build the guest kernel (cached by source, config fragment and patches)
    #[command(after_help = "Examples:\n  scx-vmctl kernel build\n  scx-vmctl kernel build --debug     # lockdep, atomic-sleep checks, KASAN\n  \
scx-vmctl kernel build --source debian-7.3   # Linux 7.3 from Debian 13's backports\n  \
scx-vmctl kernel build --source ~/src/linux")]
    Build(KernelBuildArgs),
    /// Print the path of the cached bzImage (building nothing)
    Path(KernelFlavor),
}

#[derive(Args, Debug, Clone, Default)]
pub struct KernelFlavor {
    /// Kernel source: debian-6.12 (the default: linux-source-6.12, installed), debian-7.3
    /// (linux-source-7.3@trixie-backports, the newest Debian kernel with sched_ext, fetched into
    /// the cache), another Debian package (PKG[@SUITE], e.g. linux-source-7.2@sid), a kernel
    /// tree, or an http(s) tarball URL
    #[arg(long, value_name = "NAME|PKG[@SUITE]|DIR|URL")]
    pub source: Option<String>,
    /// sha256 of the tarball when --source is a URL
    #[arg(long, value_name = "HEX")]
    pub source_sha256: Option<String>,
    /// The debug flavor: PROVE_LOCKING, DEBUG_ATOMIC_SLEEP, KASAN (vm-images/kernel/debug.config)
    #[arg(long)]
    pub debug: bool,
}

#[derive(Args, Debug)]
pub struct KernelBuildArgs {
    #[command(flatten)]
    pub flavor: KernelFlavor,
    /// Parallel make jobs (default: CPUs + 1)
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Rebuild even when the cache has this kernel
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Build (or find cached) the agent against a kernel's BTF (default: the built-in kernel)
    Build(KernelFlavor),
}

#[derive(Subcommand, Debug)]
pub enum SchedCmd {
    /// Build a scheduler crate from crates.io with cargo into the cache; prints the binary's path
    #[command(after_help = "Examples:\n  scx-vmctl sched build scx_bpfland@1.1.4\n  scx-vmctl sched build scx_lavd        # the newest built, else the newest on crates.io (--force asks again)\n\n\
Cached in ~/.cache/scx-vmctl/sched/<crate>-<version>-<key>/bin/<crate>, keyed by crate, version, rustc and\n\
the BPF clang; every crate shares one cargo target directory, so scx_utils and libbpf-rs are built once.\n\
Needs cargo, clang-19, libclang-19-dev, libelf-dev, zlib1g-dev and pkg-config (installed through\n\
scripts/setup-host.sh when missing and run as root). A cold build takes ~12 min on 2 cores.")]
    Build {
        /// The crate, NAME or NAME@VERSION (scx_bpfland, scx_lavd, scx_rusty, scx_flash, scx_cosmos, ...)
        #[arg(value_name = "NAME[@VERSION]")]
        sched: String,
        /// Build again even when the cache has it
        #[arg(long)]
        force: bool,
    },
    /// List the schedulers built so far (name@version, build time, path)
    List,
    /// Print the path of a built scheduler's binary (building nothing); without @VERSION the newest built
    #[command(after_help = "Example:\n  scx-vmctl experiment --sched-bin $(scx-vmctl sched path scx_bpfland@1.1.4) --map-name task_ctx_stor hackbench")]
    Path {
        #[arg(value_name = "NAME[@VERSION]")]
        sched: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Build the root filesystem image (cached by recipe hash)
    Build {
        /// Rebuild even when the cache has this image
        #[arg(long)]
        force: bool,
    },
    /// Print the path of the cached base image (building nothing)
    Path,
}

/// Where a VM's kernel and image come from, and how it runs.
#[derive(Args, Debug, Clone)]
pub struct VmArgs {
    /// Guest kernel: a bzImage path or an http(s) URL (default: the built-in kernel, built if missing)
    #[arg(long, value_name = "PATH|URL")]
    pub kernel: Option<String>,
    /// sha256 the downloaded kernel must have (required with a URL)
    #[arg(long, value_name = "HEX")]
    pub kernel_sha256: Option<String>,
    /// Base image (qcow2); default: the built image of vm-images/rootfs (built if missing)
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// vCPUs (default from config: 2)
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Memory in MiB (default from config: 2048)
    #[arg(long, value_name = "MIB")]
    pub memory: Option<u32>,
    /// auto (probe KVM, fall back to single-threaded TCG), kvm, or tcg
    #[arg(long, value_name = "auto|kvm|tcg")]
    pub accel: Option<String>,
    /// Extra kernel command line
    #[arg(long, value_name = "ARGS", default_value = "")]
    pub append: String,
    /// Machine shape NnLlCcTt[:MIB]: NUMA nodes, LLCs per node, cores per LLC,
    /// threads per core, memory per node (default: --memory split evenly), e.g.
    /// 2n2l2c2t (16 vCPUs; sets --cpus). `experiment` takes a comma-separated
    /// list and runs the matrix over the shapes, results under DIR/<shape>/.
    /// Under single-threaded TCG every vCPU runs on one host thread: many are slow
    #[arg(long, value_name = "SHAPE[,SHAPE]")]
    pub topology: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// VM name (run directory, `ssh NAME`, `down NAME`)
    #[arg(long, default_value = "scx")]
    pub name: String,
    /// Configuration file (YAML, overrides config/default.yaml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start from the saved guest experiments start from (the agent installed,
    /// reset, ~1 s under TCG) instead of booting; the first use saves it.
    /// Needs a kernel built by `scx-vmctl kernel build`
    #[arg(long)]
    pub snapshot: bool,
}

#[derive(Args, Debug)]
pub struct SshArgs {
    /// VM name (default: the only running VM)
    pub name: Option<String>,
    /// Command and arguments (after --); without it, an interactive shell.
    /// One argument is a shell command line, run as written
    /// (`-- 'dmesg | tail; uptime'`); several are one program's argv, each
    /// passed as is (`-- grep 'a b' /etc/hosts`). A pipe or file on stdin is
    /// the command's stdin (`scx-vmctl ssh -- 'cat > /root/f' < f`); a
    /// terminal is not forwarded (the command reads EOF)
    #[arg(last = true)]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Source: a local path, or NAME:path in a guest (a file or a directory)
    pub src: String,
    /// Destination, local or NAME:path, by cp's rule: an existing directory
    /// receives the source inside it; any other path is the copy's new name
    /// (its parent must exist). `NAME:` alone is the guest's /root.
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// VM name (default: the only running VM)
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    /// VM name (default: the only running VM)
    pub name: Option<String>,
    /// Skip the graceful ACPI power-off: quit, then kill
    #[arg(long)]
    pub force: bool,
    /// Every VM of this user
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct SelftestArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// Run in this already running VM instead of booting one
    #[arg(long = "vm", value_name = "NAME")]
    pub vm_name: Option<String>,
    /// Use the debug kernel (kernel build --debug) and fail on lockdep/sleep/KASAN reports in dmesg
    #[arg(long)]
    pub debug: bool,
    /// Skip the kernel's own sched_ext selftests (tools/testing/selftests/sched_ext, built from the
    /// kernel's kept tree), which otherwise run after the helper's cases (~1 min under TCG)
    #[arg(long)]
    pub no_kernel_selftests: bool,
}

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// Scheduler: scx_simple, scx_cfsish, scx_flatcg, scx_nest, or all.
    /// With --sched-bin there is no scheduler argument: the arguments are
    /// WORKLOAD [DURATION [ITERATIONS]]
    pub scheduler: String,
    /// Workload: stress-ng, hackbench, custom-churn, cgroup-churn (cgroups made, used and removed), or all (the first three)
    pub workload: Option<String>,
    /// Seconds per run (the original scripts' third argument)
    #[arg(value_name = "DURATION", allow_negative_numbers = true)]
    pub duration_pos: Option<f64>,
    /// Iterations (the original scripts' fourth argument)
    #[arg(value_name = "ITERATIONS")]
    pub iterations_pos: Option<u32>,
    /// Seconds per run (default from config: 60)
    #[arg(long, conflicts_with = "duration_pos", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Iterations; control and test alternate within each (default: 3)
    #[arg(long, conflicts_with = "iterations_pos")]
    pub iterations: Option<u32>,
    /// Sampling interval in seconds (default: 2)
    #[arg(long, allow_negative_numbers = true)]
    pub interval: Option<f64>,
    /// Variants to run, comma-separated: control,test[,bpfscan,exitdel,taskstor]
    /// (exitdel deletes the entry in ops.exit_task, taskstor keeps it in task storage)
    #[arg(long, value_delimiter = ',')]
    pub variants: Option<Vec<String>>,
    /// Guest reset between runs: snapshot (default: every run starts a fresh QEMU
    /// from a saved state of a booted, checked guest; falls back to overlay where
    /// that fails), overlay (a fresh boot per run) or in-guest (one guest, cleaned
    /// by the agent between runs)
    #[arg(long, value_name = "snapshot|overlay|in-guest")]
    pub reset: Option<String>,
    #[command(flatten)]
    pub vm: VmArgs,
    /// Configuration file (YAML, overrides config/default.yaml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Result directory root
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Use this running VM (implies --reset in-guest)
    #[arg(long = "vm", value_name = "NAME")]
    pub vm_name: Option<String>,
    /// Continue an interrupted experiment: runs with results are not redone.
    /// Refused when the kernel, image, agent, configuration or schedulers changed
    #[arg(long)]
    pub resume: bool,
    /// With --resume: redo the runs that failed as well (their files are replaced)
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,
    /// Overwrite results already in the output directory
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Run only shard K of N of the (scheduler x workload x iteration) matrix
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Your own scheduler binaries instead of ours: one runs as variant `custom`,
    /// two as control,test. Each is copied into the guest (/root/custom/<variant>) and
    /// started without arguments (wrap it in a script to pass some); it must enable a
    /// sched_ext scheduler within 30 s; it is stopped with SIGINT (SIGTERM, SIGKILL
    /// after 10 s). Its output is kept as run<N>.scheduler.log; results are grouped
    /// under the binary's file name (two: the part their names share)
    #[arg(long, value_delimiter = ',', value_name = "PATH[,PATH]", conflicts_with = "sched")]
    pub sched_bin: Option<Vec<PathBuf>>,
    /// A scheduler of the sched-ext/scx project by crate (one, or two as control,test):
    /// built from crates.io if the cache lacks it (`scx-vmctl sched build`), then run as
    /// --sched-bin runs a binary. Example: --sched scx_bpfland@1.1.4
    #[arg(long, value_delimiter = ',', value_name = "NAME[@VERSION][,...]")]
    pub sched: Option<Vec<String>>,
    /// Arguments for the --sched/--sched-bin scheduler, split like a shell would (quotes
    /// group words) but never run through one. Once: for every variant; twice: the
    /// first for control, the second for test. Example: --sched-args '--slice-us 5000'
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub sched_args: Vec<String>,
    /// Seconds a --sched/--sched-bin scheduler may take to enable sched_ext and create
    /// its maps (default 60: a Rust scheduler verifying its BPF under TCG is slow)
    #[arg(long, value_name = "SECS")]
    pub sched_start_timeout: Option<f64>,
    /// With --sched-bin/--sched: the BPF map to sample, by name (its entries are map_entries;
    /// hash maps, arrays and task storage can be counted). Without it the agent picks the
    /// scheduler's first task-storage or hash map and says which.
    /// evictions/scans come from the binary's .bss if it has our counters
    /// (nr_evictions, nr_scans, nr_scan_timeouts, max_scan_ns), else they are 0
    #[arg(long, value_name = "NAME")]
    pub map_name: Option<String>,
    /// Set by `leakcheck`, which samples every map: --sched-bin needs no --map-name there
    #[arg(skip)]
    pub any_map: bool,
    /// Fault injection for testing the pipeline: the first run's scheduler calls
    /// scx_bpf_error() after SECS (an ejection), later runs are left alone
    #[arg(long, value_name = "SECS", hide = true)]
    pub inject_error_after: Option<f64>,
}

#[derive(Args, Debug)]
pub struct LeakcheckArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Seconds of sampling with the scheduler loaded and no workload, before the workload starts
    #[arg(long, value_name = "SECS", default_value_t = 6.0)]
    pub baseline_s: f64,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Result directory: <out>/<scheduler>/<workload>, or <out> for all of them;
    /// `merge DIR... --out DIR` combines shards
    pub dirs: Vec<PathBuf>,
    /// With `merge`: where the combined results go
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare with an earlier summary.json; exit 1 on a regression
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Also write the verdict (and the baseline comparison) as a markdown table, e.g. for a CI job summary
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// With --baseline: report throughput and overhead regressions as notes
    /// instead of failing (for runs on shared, noisy machines; criteria,
    /// separation and verifier growth still fail)
    #[arg(long, requires = "baseline")]
    pub no_timing_gate: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Write the measurements as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The quick mode CI runs (smaller sizes, fewer repetitions)
    #[arg(long)]
    pub short: bool,
    /// Also boot the same bzImage with virtme-ng (`vng --run BZIMAGE --exec true`, installed from
    /// PyPI into the cache) beside ours, boots alternated
    #[arg(long)]
    pub peers: bool,
    #[command(flatten)]
    pub vm: VmArgs,
}
