//! Dates (days since 1970-01-01, as keys hold them), times and ages as
//! people write and read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DD` to days since 1970-01-01.
pub fn parse_date(text: &str) -> Result<i32, String> {
    let bad = || format!("'{text}' is not a date: expected YYYY-MM-DD");
    let mut parts = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&m) || d == 0 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    // A day past the month's end (2024-02-30) comes back as another date.
    if civil_from_days(days) != (y, m, d) {
        return Err(format!("'{text}' is not a date: that month has no day {d}"));
    }
    i32::try_from(days).map_err(|_| bad())
}

pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Microseconds since the epoch as RFC 3339 UTC, to the second.
pub fn format_time_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

pub fn system_time_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

pub fn now_us() -> i64 {
    system_time_us(SystemTime::now())
}

/// Seconds from `us` to now (never negative).
pub fn age_seconds(us: i64) -> f64 {
    (now_us() - us).max(0) as f64 / 1e6
}

/// `3d 4h`, `12m`, `40s`: an age at a glance.
pub fn format_age(seconds: f64) -> String {
    let s = seconds as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `30d`, `12h`, `90m`, `45s`, `2w`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: expected a number and a unit, e.g. 30d, 12h, 90m, 45s");
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return Err(bad()),
    };
    // Saturates: a huge age means never, not an error or a wrap-around.
    Ok(Duration::try_from_secs_f64(number * unit_secs).unwrap_or(Duration::MAX))
}

/// Bytes as people read them: 512 B, 1.5 KiB, 3.2 MiB.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2024-03-01"), Ok(19_783));
        assert_eq!(parse_date("1969-12-31"), Ok(-1));
        for days in [-719_162, -1, 0, 59, 60, 19_783, 2_932_896] {
            assert_eq!(parse_date(&format_date(days)), Ok(days));
        }
        for bad in ["2024-02-30", "2023-02-29", "2024-13-01", "2024-1-1", "20240101", "yesterday", ""] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(format_time_us(1_700_000_000_123_456), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("3 days").is_err() && parse_duration("").is_err() && parse_duration("-1d").is_err());
    }
}
