//! junit.xml: one testsuite per group, one testcase per criterion, with
//! classname `scx_vmctl.[<kernel>.]<scheduler>.<workload>`. FAIL becomes a
//! `<failure>` carrying the reason, SKIP a `<skipped>`.

use std::fmt::Write as _;

use super::fmt::escape_xml as esc;
use super::summary::{GroupSummary, Status, Summary};

/// A classname component: dots would add levels, so they become '_'.
fn part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

pub fn classname(g: &GroupSummary) -> String {
    match &g.kernel {
        Some(k) => format!("scx_vmctl.{}.{}.{}", part(k), part(&g.scheduler), part(&g.workload)),
        None => format!("scx_vmctl.{}.{}", part(&g.scheduler), part(&g.workload)),
    }
}

pub fn junit_xml(s: &Summary) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="scx-vmctl" tests="{}" failures="{}" skipped="{}" errors="0">"#,
        s.counts.pass + s.counts.fail + s.counts.skip,
        s.counts.fail,
        s.counts.skip
    );
    for g in &s.groups {
        let c = g.counts();
        let _ = writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" skipped="{}" errors="0">"#,
            esc(&g.key()),
            g.criteria.len(),
            c.fail,
            c.skip
        );
        let class = classname(g);
        for k in &g.criteria {
            let head = format!(r#"    <testcase classname="{}" name="{}" time="0""#, esc(&class), esc(&k.name));
            match k.status {
                Status::Pass => {
                    let _ = writeln!(out, "{head}><system-out>{}</system-out></testcase>", esc(&k.reason));
                }
                Status::Skip => {
                    let _ = writeln!(out, "{head}><skipped message=\"{}\"/></testcase>", esc(&k.reason));
                }
                Status::Fail => {
                    let _ = writeln!(
                        out,
                        "{head}><failure message=\"{m}\" type=\"{t}\">{m}</failure></testcase>",
                        m = esc(&k.reason),
                        t = esc(&k.name)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::Criterion;

    fn group(kernel: Option<&str>) -> GroupSummary {
        GroupSummary {
            path: "scx_simple/hackbench".into(),
            scheduler: "scx_simple".into(),
            workload: "hackbench".into(),
            kernel: kernel.map(str::to_string),
            accel: vec![],
            reset: vec![],
            variants: vec![],
            throughput_changes: vec![],
            criteria: vec![
                Criterion { name: "control_grows".into(), variant: Some("control".into()), status: Status::Pass, reason: "grows".into() },
                Criterion { name: "test_plateaus".into(), variant: Some("test".into()), status: Status::Fail, reason: "run1: slope 5 > 0.5 & <bad>".into() },
                Criterion { name: "no_kernel_splat".into(), variant: None, status: Status::Skip, reason: "no logs".into() },
            ],
            splats: vec![],
            notes: vec![],
            maps: vec![],
        }
    }

    #[test]
    fn one_testcase_per_criterion() {
        let s = Summary::new(vec![group(None), group(Some("6.12.57"))]);
        let x = junit_xml(&s);
        assert_eq!(x.matches("<testcase ").count(), 6);
        assert!(x.contains(r#"<testsuites name="scx-vmctl" tests="6" failures="2" skipped="2" errors="0">"#), "{x}");
        assert!(x.contains(r#"classname="scx_vmctl.scx_simple.hackbench" name="test_plateaus""#));
        assert!(x.contains(r#"classname="scx_vmctl.6_12_57.scx_simple.hackbench""#));
        assert!(x.contains(r#"<failure message="run1: slope 5 &gt; 0.5 &amp; &lt;bad&gt;" type="test_plateaus">"#), "{x}");
        assert!(x.contains(r#"<skipped message="no logs"/>"#));
    }
}
