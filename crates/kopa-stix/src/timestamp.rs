//! STIX and TAXII timestamps, held as microseconds since the Unix epoch (UTC).

use std::fmt;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z): {0:?}")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// Microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Parse an RFC 3339 timestamp in the STIX form: `YYYY-MM-DDTHH:MM:SS[.s+]Z` (UTC, `Z` required).
    /// Digits past the microsecond are truncated.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError(s.to_string());
        let b = s.as_bytes();
        if b.len() < 20 || b[b.len() - 1] != b'Z' {
            return Err(err());
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = b.get(r)?;
            if part.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(part).ok()?.parse().ok()
            } else {
                None
            }
        };
        if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        let year = digits(0..4).ok_or_else(err)? as i32;
        let month = digits(5..7).ok_or_else(err)?;
        let day = digits(8..10).ok_or_else(err)?;
        let hour = digits(11..13).ok_or_else(err)?;
        let minute = digits(14..16).ok_or_else(err)?;
        let second = digits(17..19).ok_or_else(err)?;
        let rest = &b[19..b.len() - 1];
        let mut micros: i64 = 0;
        if !rest.is_empty() {
            if rest[0] != b'.' || rest.len() < 2 || !rest[1..].iter().all(u8::is_ascii_digit) {
                return Err(err());
            }
            for i in 0..6 {
                micros = micros * 10 + rest.get(1 + i).map_or(0, |d| i64::from(d - b'0'));
            }
        }
        // Leap seconds (second = 60) are not representable and rejected.
        let date = chrono::NaiveDate::from_ymd_opt(year, month, day).ok_or_else(err)?;
        let time = chrono::NaiveTime::from_hms_opt(hour, minute, second).ok_or_else(err)?;
        let secs = date.and_time(time).and_utc().timestamp();
        Ok(Timestamp(secs * 1_000_000 + micros))
    }

    /// TAXII form: always six fractional digits, `2021-06-10T12:00:00.000000Z`.
    pub fn to_taxii(self) -> String {
        self.format(6)
    }

    /// STIX form with millisecond precision, `2021-06-10T12:00:00.000Z`.
    pub fn to_stix_millis(self) -> String {
        self.format(3)
    }

    fn format(self, digits: usize) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let frac = format!("{micros:06}");
        format!("{}.{}Z", dt.format("%Y-%m-%dT%H:%M:%S"), &frac[..digits])
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_taxii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases = [
            ("2016-05-12T08:17:27Z", "2016-05-12T08:17:27.000000Z"),
            ("2016-05-12T08:17:27.123Z", "2016-05-12T08:17:27.123000Z"),
            (
                "2016-05-12T08:17:27.1234567Z",
                "2016-05-12T08:17:27.123456Z",
            ),
            ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z"),
        ];
        for (input, taxii) in cases {
            assert_eq!(
                Timestamp::parse(input).unwrap().to_taxii(),
                taxii,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2016-05-12",
            "2016-05-12T08:17:27",
            "2016-05-12T08:17:27+00:00",
            "2016-13-12T08:17:27Z",
            "2016-02-30T08:17:27Z",
            "2016-05-12T08:17:27.Z",
            "2016-05-12 08:17:27Z",
            "2016-05-12T25:17:27Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
