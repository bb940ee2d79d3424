//! Text that fits: display widths (a `→` is one column, a CJK character two), cutting with
//! `…`, word wrapping, and the compact numbers of the table.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    s.width()
}

/// `s` cut to at most `max` columns, the cut marked with `…`.
pub fn cut(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// `s` padded with spaces to `w` columns, on the right (`left`) or the left.
pub fn pad(s: &str, w: usize, left: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if left {
        format!("{s}{fill}")
    } else {
        format!("{fill}{s}")
    }
}

/// Word-wraps `text` to `max` columns: the first line as is, the next ones after `indent`
/// spaces. A word longer than a line is cut into pieces.
pub fn wrap(text: &str, max: usize, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    let room = |lines: &Vec<String>| {
        if lines.is_empty() {
            max
        } else {
            max.saturating_sub(indent).max(10)
        }
    };
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let w = width(&word);
            let gap = usize::from(used > 0);
            if used + gap + w <= room(&lines) {
                if gap == 1 {
                    line.push(' ');
                }
                line.push_str(&word);
                used += gap + w;
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
                continue;
            }
            // Longer than a whole line: break it.
            let r = room(&lines);
            let mut head = String::new();
            let mut hw = 0;
            let mut rest = String::new();
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if rest.is_empty() && hw + cw <= r {
                    head.push(c);
                    hw += cw;
                } else {
                    rest.push(c);
                }
            }
            lines.push(head);
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    for l in lines.iter_mut().skip(1) {
        *l = format!("{}{l}", " ".repeat(indent));
    }
    lines
}

/// `238B`, `3.4K`, `186K`, `1.2M` (K = KiB, M = MiB, G = GiB).
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("G", 1_073_741_824.0), ("M", 1_048_576.0), ("K", 1024.0)];
    if n < 1000 {
        return format!("{n}B");
    }
    for (unit, size) in UNITS {
        let v = n as f64 / size;
        if v >= 0.95 {
            return if v < 99.95 {
                format!("{v:.1}{unit}")
            } else {
                format!("{v:.0}{unit}")
            };
        }
    }
    format!("{n}B")
}

/// `0ms`, `14ms`, `1.0s`, `62s`, `3m12s`, `2h05m`, `3d02h`.
pub fn duration(s: f64) -> String {
    let s = s.max(0.0);
    if s < 1.0 {
        return format!("{:.0}ms", s * 1000.0);
    }
    if s < 10.0 {
        return format!("{s:.1}s");
    }
    let t = s.round() as u64;
    match t {
        0..60 => format!("{t}s"),
        60..3600 => format!("{}m{:02}s", t / 60, t % 60),
        3600..86_400 => format!("{}h{:02}m", t / 3600, t / 60 % 60),
        _ => format!("{}d{:02}h", t / 86_400, t / 3600 % 24),
    }
}

/// A round-trip time in milliseconds: `0.2ms`, `14ms`, `1.2s`.
pub fn rtt(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        duration(ms / 1000.0)
    }
}

/// `YYYY-MM-DD` (UTC) of a capture time.
pub fn date(t: f64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = (t / 86_400.0).floor() as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_marks_and_counts_display_columns() {
        assert_eq!(cut("hello", 5), "hello");
        assert_eq!(cut("hello world", 6), "hello…");
        assert_eq!(width(&cut("日本語テキスト", 7)), 7);
        assert_eq!(cut("日本語テキスト", 7), "日本語…");
    }

    #[test]
    fn wrap_keeps_every_line_within_the_width() {
        let text = "no Close frame: server sent FIN after 307 ms idle; last message: server text 21 B at 06:19:03.673 (1006) averyveryverylongwordthatdoesnotfitanywhere";
        for max in [20, 33, 80] {
            let lines = wrap(text, max, 4);
            assert!(lines.iter().all(|l| width(l) <= max), "{max}: {lines:?}");
            assert!(lines[1..].iter().all(|l| l.starts_with("    ")));
            // Nothing lost: the words come back in order (the long one in pieces).
            let joined: String = lines.concat().split_whitespace().collect();
            assert_eq!(joined, text.split_whitespace().collect::<String>());
        }
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(bytes(238), "238B");
        assert_eq!(bytes(3482), "3.4K");
        assert_eq!(bytes(190_000), "186K");
        assert_eq!(bytes(1_300_000), "1.2M");
        assert_eq!(duration(0.343), "343ms");
        assert_eq!(duration(3.04), "3.0s");
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(62.4), "1m02s");
        assert_eq!(duration(192.0), "3m12s");
        assert_eq!(duration(7500.0), "2h05m");
        assert_eq!(rtt(0.21), "0.2ms");
        assert_eq!(date(1_763_619_543.0), "2025-11-20");
        assert_eq!(date(951_782_400.0), "2000-02-29");
    }
}
