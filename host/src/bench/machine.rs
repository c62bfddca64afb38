//! Where the figures were measured: the host, QEMU, the accelerator, the guest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub host_cpu: String,
    pub host_cpus: usize,
    pub host_os: String,
    pub host_kernel: String,
    pub qemu_version: String,
    /// kvm | tcg,thread=single
    pub accel: String,
    pub guest_cpus: u32,
    pub guest_memory_mib: u32,
    pub guest_kernel: String,
    pub kernel_id: String,
    pub image_id: String,
    pub agent_id: String,
}

fn first_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once([':', '='])?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

impl Machine {
    /// The host's side; the guest's fields are filled in by the caller.
    pub fn host() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            host_cpu: first_value(&read("/proc/cpuinfo"), "model name").unwrap_or_default(),
            host_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            host_os: first_value(&read("/etc/os-release"), "PRETTY_NAME").unwrap_or_default(),
            host_kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_files() {
        assert_eq!(first_value("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n", "model name").as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(first_value("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "PRETTY_NAME").as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(first_value("", "x"), None);
    }
}
