//! Machine shapes (`--topology 2n2l2c2t`): NUMA nodes, LLCs per node, cores
//! per LLC, threads per core, optionally the memory of each node
//! (`2n2l2c2t:1024`, MiB). Mapped to QEMU as one socket per LLC (each with
//! its own L3), cores and threads as they are, and per node a memory backend,
//! `-numa node` and `-numa cpu` for its sockets, so the guest's
//! cache/index3, topology/ and node sysfs, and with them its LLC, SMT and
//! NUMA scheduling domains, show the shape.
//!
//! Why a socket per LLC and not dies: QEMU 10.0.2 aborts on any x86 Intel
//! model with dies or modules (encode_topo_cpuid1f's assertion), and its AMD
//! `max` model keeps one L3 per socket whatever `smp-cache` says (tried
//! here: dies, modules, family 0x19 + topoext). Schedulers read LLCs from
//! cache/index3 and nodes from node*/cpulist, which this shape gives them;
//! only physical_package_id counts LLCs rather than packages.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Topology {
    pub nodes: u32,
    pub llcs: u32,
    pub cores: u32,
    pub threads: u32,
    /// MiB per node; None: the VM's memory split evenly
    pub node_mib: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--topology `{given}`: {why}; write NODESnLLCSlCOREScTHREADSt[:MIB_PER_NODE], e.g. 2n2l2c2t (16 vCPUs) or 1n2l2c1t:1024")]
pub struct TopologyError {
    pub given: String,
    pub why: String,
}

/// vCPUs QEMU and our kernel (NR_CPUS=64) take.
pub const MAX_CPUS: u32 = 64;

impl Topology {
    pub fn parse(s: &str) -> Result<Topology, TopologyError> {
        let err = |why: &str| TopologyError { given: s.to_string(), why: why.to_string() };
        let (shape, mem) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let mut nums = [0u32; 4];
        let mut rest = shape.trim();
        for (i, unit) in ['n', 'l', 'c', 't'].iter().enumerate() {
            let end = rest.find(*unit).ok_or_else(|| err(&format!("missing the `{unit}` part")))?;
            let n: u32 = rest[..end].parse().map_err(|_| err(&format!("`{}` before `{unit}` is not a number", &rest[..end])))?;
            if n == 0 {
                return Err(err(&format!("the `{unit}` count must be at least 1")));
            }
            nums[i] = n;
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(err(&format!("`{rest}` after the `t` part")));
        }
        let node_mib = match mem {
            None => None,
            Some(m) => Some(m.trim().parse::<u32>().ok().filter(|m| *m >= 128).ok_or_else(|| err("memory per node must be a number of MiB >= 128"))?),
        };
        let t = Topology { nodes: nums[0], llcs: nums[1], cores: nums[2], threads: nums[3], node_mib };
        if t.cpus() > MAX_CPUS {
            return Err(err(&format!("{} vCPUs; at most {MAX_CPUS}", t.cpus())));
        }
        Ok(t)
    }

    pub fn cpus(&self) -> u32 {
        self.nodes * self.llcs * self.cores * self.threads
    }

    /// The label results are grouped by: the shape without the memory.
    pub fn label(&self) -> String {
        format!("{}n{}l{}c{}t", self.nodes, self.llcs, self.cores, self.threads)
    }

    /// Memory of each node given the VM's total (an even split).
    pub fn node_memory(&self, total_mib: u32) -> u32 {
        self.node_mib.unwrap_or(total_mib / self.nodes)
    }

    /// The VM's memory: what the nodes add up to.
    pub fn total_memory(&self, total_mib: u32) -> u32 {
        self.node_memory(total_mib) * self.nodes
    }

    /// `-smp` (a socket per LLC), and per node a RAM backend, `-numa node`
    /// and a `-numa cpu` for each of its sockets.
    pub fn qemu_args(&self, total_mib: u32) -> Vec<String> {
        let mut a = vec![
            "-smp".to_string(),
            format!("{},sockets={},cores={},threads={}", self.cpus(), self.nodes * self.llcs, self.cores, self.threads),
        ];
        let per = self.node_memory(total_mib);
        for n in 0..self.nodes {
            a.push("-object".into());
            a.push(format!("memory-backend-ram,id=node{n},size={per}M"));
            a.push("-numa".into());
            a.push(format!("node,nodeid={n},memdev=node{n}"));
            for l in 0..self.llcs {
                a.push("-numa".into());
                a.push(format!("cpu,node-id={n},socket-id={}", n * self.llcs + l));
            }
        }
        a
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())?;
        if let Some(m) = self.node_mib {
            write!(f, ":{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shape_and_maps_it_to_qemu() {
        let t = Topology::parse("2n2l2c2t").unwrap();
        assert_eq!((t.nodes, t.llcs, t.cores, t.threads, t.cpus()), (2, 2, 2, 2, 16));
        assert_eq!(t.to_string(), "2n2l2c2t");
        let a = t.qemu_args(2048).join(" ");
        assert_eq!(
            a,
            "-smp 16,sockets=4,cores=2,threads=2 \
             -object memory-backend-ram,id=node0,size=1024M -numa node,nodeid=0,memdev=node0 \
             -numa cpu,node-id=0,socket-id=0 -numa cpu,node-id=0,socket-id=1 \
             -object memory-backend-ram,id=node1,size=1024M -numa node,nodeid=1,memdev=node1 \
             -numa cpu,node-id=1,socket-id=2 -numa cpu,node-id=1,socket-id=3"
        );
        let m = Topology::parse("1n2l2c1t:768").unwrap();
        assert_eq!((m.cpus(), m.total_memory(2048), m.to_string(), m.label()), (4, 768, "1n2l2c1t:768".into(), "1n2l2c1t".into()));
        assert_eq!(Topology::parse("3n1l1c1t").unwrap().total_memory(2048), 3 * 682);
    }

    #[test]
    fn bad_shapes_say_what_is_wrong_and_how_to_write_one() {
        for (s, why) in [
            ("2n2l2c", "missing the `t` part"),
            ("xn1l1c1t", "`x` before `n` is not a number"),
            ("1n0l1c1t", "the `l` count must be at least 1"),
            ("1n1l1c1tz", "`z` after the `t` part"),
            ("4n4l4c2t", "128 vCPUs; at most 64"),
            ("1n1l1c1t:64", "memory per node must be a number of MiB >= 128"),
        ] {
            let e = Topology::parse(s).unwrap_err();
            assert_eq!(e.why, why, "{s}");
            assert!(e.to_string().contains("e.g. 2n2l2c2t"), "{e}");
        }
    }
}
