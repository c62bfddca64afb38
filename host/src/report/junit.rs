//! junit.xml (written by quick-junit, as cargo-nextest does): one testsuite
//! per group, one testcase per criterion, with classname
//! `scx_vmctl.[<kernel>.]<scheduler>.<workload>`. FAIL becomes a `<failure>`
//! carrying the reason, SKIP a `<skipped>`, PASS keeps its reason as output.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::summary::{GroupSummary, Status, Summary};

/// A classname component: dots would add levels, so they become '_'.
fn part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

pub fn classname(g: &GroupSummary) -> String {
    let mut c = String::from("scx_vmctl");
    for p in g.kernel.iter().chain(&g.topology) {
        c.push('.');
        c.push_str(&part(p));
    }
    format!("{c}.{}.{}", part(&g.scheduler), part(&g.workload))
}

pub fn junit_xml(s: &Summary) -> String {
    let mut report = Report::new("scx-vmctl");
    for g in &s.groups {
        let mut suite = TestSuite::new(g.key());
        let class = classname(g);
        for k in &g.criteria {
            let status = match k.status {
                Status::Pass => TestCaseStatus::success(),
                Status::Skip => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(k.reason.as_str());
                    st
                }
                Status::Fail => {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    st.set_message(k.reason.as_str()).set_type(k.name.as_str()).set_description(k.reason.as_str());
                    st
                }
            };
            let mut tc = TestCase::new(k.name.as_str(), status);
            tc.set_classname(class.as_str()).set_time(Duration::ZERO);
            if k.status == Status::Pass {
                tc.set_system_out(k.reason.as_str());
            }
            suite.add_test_case(tc);
        }
        report.add_test_suite(suite);
    }
    report.to_string().expect("criteria are plain text, always serializable")
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
            topology: None,
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
        // quick-junit's spelling: skipped cases count as "disabled" per suite
        assert!(x.contains(r#"<testsuites name="scx-vmctl" tests="6" failures="2" errors="0">"#), "{x}");
        assert_eq!(x.matches(r#"tests="3" disabled="1" errors="0" failures="1""#).count(), 2, "{x}");
        assert!(x.contains(r#"name="test_plateaus" classname="scx_vmctl.scx_simple.hackbench""#), "{x}");
        assert!(x.contains(r#"classname="scx_vmctl.6_12_57.scx_simple.hackbench""#));
        assert!(x.contains(r#"<failure message="run1: slope 5 &gt; 0.5 &amp; &lt;bad&gt;" type="test_plateaus">"#), "{x}");
        assert!(x.contains(r#"<skipped message="no logs"/>"#));
    }
}
