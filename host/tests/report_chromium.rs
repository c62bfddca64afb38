//! report.html opened in headless Chromium (Debian's `chromium` package):
//! the screenshot must show the plots (not blank, the variants' line colors
//! present) and the DOM must hold SVG plots with polylines.

mod report_util;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scx_vmctl::report;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs chromium with the flags a root CI box needs, killing it after `limit`.
fn chromium(profile: &Path, extra: &[&str], limit: Duration) -> (bool, String, String) {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read both pipes on threads so a chatty chromium cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let ok = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.success();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (ok, t_out.join().unwrap(), t_err.join().unwrap())
}

fn decode(png_path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "unexpected PNG depth");
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| if channels >= 3 { [c[0], c[1], c[2]] } else { [c[0], c[0], c[0]] })
        .collect();
    (info.width, info.height, px)
}

fn near(p: [u8; 3], want: [u8; 3]) -> bool {
    p.iter().zip(want).all(|(a, b)| (*a as i32 - b as i32).abs() <= 40)
}

#[test]
fn report_html_renders_plots_in_headless_chromium() {
    // scripts/setup-host.sh installs it: a missing browser is a broken test
    // machine, not a pass
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is absent: run scripts/setup-host.sh (apt-get install -y chromium)");
    let t = tempfile::tempdir().unwrap();
    let g = report_util::good_group(&t.path().join("res"));
    let s = report::summarize(&g).unwrap();
    report::write_all(&g, &s).unwrap();
    let url = format!("file://{}", g.join("report.html").display());

    let shot = t.path().join("shot.png");
    let (ok, _, err) = chromium(
        &t.path().join("profile1"),
        &[&format!("--screenshot={}", shot.display()), "--window-size=1200,2000", &url],
        Duration::from_secs(120),
    );
    assert!(ok && shot.is_file(), "chromium --screenshot failed:\n{err}");
    let (w, h, px) = decode(&shot);
    assert_eq!((w, h), (1200, 2000));
    let non_white = px.iter().filter(|p| p.iter().any(|c| *c < 240)).count();
    let share = non_white as f64 / px.len() as f64;
    assert!(share > 0.02, "screenshot looks blank: {non_white} non-white pixels of {}", px.len());
    // The plot lines: control red #d62728, test blue #1f77b4, bpfscan green #2ca02c.
    for (name, rgb) in [("control", [0xd6, 0x27, 0x28]), ("test", [0x1f, 0x77, 0xb4]), ("bpfscan", [0x2c, 0xa0, 0x2c])] {
        let n = px.iter().filter(|p| near(**p, rgb)).count();
        assert!(n > 200, "only {n} pixels of the {name} line color: the plots did not render");
    }

    let (ok, dom, err) = chromium(&t.path().join("profile2"), &["--dump-dom", &url], Duration::from_secs(120));
    assert!(ok, "chromium --dump-dom failed:\n{err}");
    assert!(dom.matches("<svg").count() >= 4, "fewer than 4 <svg> in the DOM:\n{dom}");
    // 5 runs in 4 plots.
    assert!(dom.matches("<polyline").count() >= 20, "polylines missing");
    assert!(dom.contains("<path class=\"axis\""), "axes missing");
    assert!(dom.contains("Map entries over time") && dom.contains("Cumulative evictions"));
}
