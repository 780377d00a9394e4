//! STIX timestamps (`YYYY-MM-DDTHH:MM:SS[.s+]Z`, always UTC) as a small ordered value type.

use std::fmt;

/// A UTC instant with nanosecond precision, as used by STIX timestamps and `t'…'` literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Timestamp {
    /// Parse `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (upper-case `T` and `Z`; a real calendar date).
    /// Fractions beyond nanoseconds are truncated. A leap second (`:60`) is accepted and counts as
    /// the first second of the next minute.
    pub fn parse(s: &str) -> Option<Timestamp> {
        Self::parse_inner(s, false)
    }

    /// Like [`Timestamp::parse`], but a day of month past the month's end (`02-30`) rolls over
    /// into the next month, as pattern literals allow: the grammar (and the reference validator)
    /// only bound the day by 31.
    pub fn parse_lenient(s: &str) -> Option<Timestamp> {
        Self::parse_inner(s, true)
    }

    fn parse_inner(s: &str, lenient: bool) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = b.get(r)?;
            if part.iter().all(u8::is_ascii_digit) {
                Some(part.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
            } else {
                None
            }
        };
        let year = i64::from(num(0..4)?);
        let (month, day) = (num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !(1..=12).contains(&month)
            || day == 0
            || day
                > if lenient {
                    31
                } else {
                    days_in_month(year, month)
                }
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if b[i] == b'.' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..9 {
                nanos *= 10;
            }
        }
        if i + 1 != b.len() || b[i] != b'Z' {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Some(Timestamp { secs, nanos })
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Difference `self - earlier` in seconds, as a float.
    pub fn seconds_since(&self, earlier: &Timestamp) -> f64 {
        (self.secs - earlier.secs) as f64 + (f64::from(self.nanos) - f64::from(earlier.nanos)) / 1e9
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        // civil_from_days
        let z = days + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let cases = [
            ("epoch", "1970-01-01T00:00:00Z", Some(0)),
            ("leap year day", "2020-02-29T12:00:00Z", Some(1_582_977_600)),
            ("fraction", "2020-02-29T12:00:00.5Z", Some(1_582_977_600)),
        ];
        for (name, s, secs) in cases {
            let t = Timestamp::parse(s);
            assert_eq!(t.map(|t| t.unix_seconds()), secs, "{name}");
            assert_eq!(t.map(|t| t.to_string()).as_deref(), Some(s), "{name}");
        }
        for bad in [
            "2021-02-29T00:00:00Z",
            "2020-01-01t00:00:00Z",
            "2020-01-01T00:00:00",
            "2020-01-01T00:00:00.Z",
            "2020-13-01T00:00:00Z",
            "",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        let a = Timestamp::parse("2020-01-01T00:00:00.25Z").unwrap();
        let b = Timestamp::parse("2020-01-01T00:00:01Z").unwrap();
        assert!(a < b);
        assert!((b.seconds_since(&a) - 0.75).abs() < 1e-9);
    }
}
