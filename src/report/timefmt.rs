//! Capture times (Unix seconds) as RFC 3339 / ISO 8601 UTC text, for HAR's `startedDateTime`,
//! the tables' `@timestamp` and their `date=` partitions. Hand-written: the civil-date
//! conversion is a dozen lines (H. Hinnant's `civil_from_days`), not worth a date crate.

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whole microseconds of a capture time; times outside ±10^12 s are clamped (damaged input).
fn micros(t: f64) -> i64 {
    if t.is_finite() {
        (t.clamp(-1e12, 1e12) * 1e6).round() as i64
    } else {
        0
    }
}

/// `2026-12-01T10:20:30.123456Z`.
pub fn rfc3339_micros(t: f64) -> String {
    let us = micros(t);
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `2026-12-01T10:20:30.123Z`, as browsers write HAR times.
pub fn iso8601_millis(t: f64) -> String {
    let ms = micros(t).div_euclid(1000);
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

/// `2026-12-01`: the UTC date, for `date=` partitions.
pub fn date(t: f64) -> String {
    let secs = micros(t).div_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_micros(0.0), "1970-01-01T00:00:00.000000Z");
        // Checked against Python's datetime.fromtimestamp(t, timezone.utc).
        assert_eq!(
            rfc3339_micros(1_795_239_211.570_001),
            "2026-11-21T05:33:31.570001Z"
        );
        assert_eq!(iso8601_millis(951_782_400.5), "2000-02-29T00:00:00.500Z");
        assert_eq!(date(1_709_208_000.0), "2024-02-29");
        assert_eq!(date(-1.0), "1969-12-31");
    }
}
