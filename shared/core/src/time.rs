//! UTC timestamps without a calendar dependency: RFC 3339 for reports and
//! manifests, RFC 2822 for Release files.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, by the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split(ms: u64) -> (i64, u32, u32, u64, u64, u64, u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, mo, d) = civil(days);
    (y, mo, d, rem / 3600, rem / 60 % 60, rem % 60, ms % 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// `civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds of a timestamp this module wrote with [`rfc3339`].
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs * 1000 + ms)
}

/// `2026-11-21T09:30:00.123Z`.
pub fn rfc3339(ms: u64) -> String {
    let (y, mo, d, h, mi, s, frac) = split(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
}

/// `Sat, 21 Nov 2026 09:30:00 UTC`, the form Release files carry.
pub fn rfc2822(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _) = split(ms);
    let weekday = DAYS[((ms / 1000 / 86_400) % 7) as usize];
    format!(
        "{weekday}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} UTC",
        MONTHS[(mo - 1) as usize]
    )
}

/// Milliseconds of a date in the form [`rfc2822`] writes (the `Date:` of a
/// Release file).
pub fn parse_rfc2822(s: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut words = s.split_ascii_whitespace();
    let _weekday = words.next()?;
    let d: u32 = words.next()?.parse().ok()?;
    let month = words.next()?;
    let mo = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let y: i64 = words.next()?.parse().ok()?;
    let mut hms = words.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if !matches!(words.next()?, "UTC" | "GMT" | "+0000") || words.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 || hms.next().is_some() {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, mo, d)).ok()?;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        // 2000-02-29 (a leap day in a century leap year), 12:34:56.789
        let ms = 951_827_696_789;
        assert_eq!(rfc3339(ms), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc2822(ms), "Tue, 29 Feb 2000 12:34:56 UTC");
        // 2026-11-21 00:00:00 is a Saturday.
        assert_eq!(rfc2822(1_795_219_200_000), "Sat, 21 Nov 2026 00:00:00 UTC");
        for t in [0, ms, 1_795_219_200_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00.000Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        for t in [0, 951_827_696_000, 1_795_219_200_000, 4_102_444_799_000] {
            assert_eq!(parse_rfc2822(&rfc2822(t)), Some(t));
        }
        assert_eq!(parse_rfc2822("Tue, 29 Feb 2000 12:34:56"), None);
        assert_eq!(parse_rfc2822("Tue, 29 Fev 2000 12:34:56 UTC"), None);
    }
}
