//! Words and numbers for findings' evidence.

use super::ending::Host;
use crate::diag::Side;

/// A duration with the precision that matters at its size: `2.00 s`, `60.0 s`, `240 s`, `4 ms`.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    if s < 0.001 {
        format!("{:.2} ms", s * 1000.0)
    } else if s < 0.1 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Two durations, with enough digits to show how far apart they are.
pub fn secs_range(a: f64, b: f64) -> String {
    let (x, y) = (secs(a), secs(b));
    if x != y && (b - a).abs() >= 0.01 * b.abs().max(a.abs()) {
        return format!("{x}–{y}");
    }
    let digits = if a.max(b) >= 100.0 { 2 } else { 3 };
    format!("{a:.digits$}–{b:.digits$} s")
}

/// `client` or `server`.
pub fn side_word(side: Side) -> &'static str {
    side.as_str()
}

/// Up to three endpoints, then how many more.
pub fn hosts(hosts: &[Host]) -> String {
    let mut words: Vec<String> = hosts.iter().take(3).map(|h| h.to_string()).collect();
    if hosts.len() > 3 {
        words.push(format!("{} more", hosts.len() - 3));
    }
    words.join(", ")
}

/// `HH:MM:SS.mmm` UTC.
pub fn clock(t: f64) -> String {
    crate::analysis::clock(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(secs(2.0), "2.00 s");
        assert_eq!(secs(60.04), "60.0 s");
        assert_eq!(secs(240.4), "240 s");
        assert_eq!(secs(0.0042), "4 ms");
        assert_eq!(secs(0.0002), "0.20 ms");
        assert_eq!(secs_range(1.998, 2.004), "1.998–2.004 s");
        assert_eq!(secs_range(113.41, 113.56), "113.41–113.56 s");
        assert_eq!(secs_range(2.0, 3.0), "2.00 s–3.00 s");
    }
}
