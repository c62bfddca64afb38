//! Number and text formatting shared by the text, HTML and JUnit writers.

/// A number with as many decimals as its size deserves (1234, 12.3, 1.23, 0.123).
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    // 0.1 * 100 is 10.000000000000002: print what was meant.
    let whole = (x - x.round()).abs() < 1e-9 * a.max(1.0);
    let s = if a >= 1000.0 || whole && a < 1e15 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    };
    if s == "-0" { "0".into() } else { s }
}

/// A ratio as a percentage: 0.1234 -> "12.3%".
pub fn pct(x: f64) -> String {
    if x != 0.0 && (x * 100.0).abs() < 0.001 {
        return if x > 0.0 { "<0.001%".into() } else { ">-0.001%".into() };
    }
    format!("{}%", num(x * 100.0))
}

/// A signed percentage: 0.05 -> "+5.00%".
pub fn signed_pct(x: f64) -> String {
    let s = pct(x);
    if x > 0.0 { format!("+{s}") } else { s }
}

/// Nanoseconds in a readable unit.
pub fn duration_ns(ns: u64) -> String {
    let x = ns as f64;
    if x >= 1e9 {
        format!("{} s", num(x / 1e9))
    } else if x >= 1e6 {
        format!("{} ms", num(x / 1e6))
    } else if x >= 1e3 {
        format!("{} us", num(x / 1e3))
    } else {
        format!("{ns} ns")
    }
}

/// Collapses newlines and control characters so a reason stays one line.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Escapes text for HTML and XML (content and attribute values).
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.12345), "0.123");
        assert_eq!(num(400.0), "400");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(-2.5), "-2.50");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(0.1), "10%");
        assert_eq!(pct(6e-7), "<0.001%");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(signed_pct(0.05), "+5%");
        assert_eq!(signed_pct(-0.0512), "-5.12%");
        assert_eq!(duration_ns(45_100), "45.1 us");
        assert_eq!(duration_ns(999), "999 ns");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_xml(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
        assert_eq!(escape_xml("a\u{1b}[0m"), "a\u{FFFD}[0m");
        assert_eq!(one_line("a\nb\r\tc"), "a b  c");
    }
}
