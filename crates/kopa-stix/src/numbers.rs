//! Numbers kept exactly or refused.
//!
//! Kopa parses JSON numbers into 64-bit integers (`i64`, `u64`) or 64-bit floating-point numbers
//! (`f64`), and serves them from those. A number literal that does not survive that round trip
//! would be stored as another number: an integer beyond 64 bits becomes an approximate double
//! (`12345678901234567890123` → `1.2345678901234568e22`), a decimal with more precision than a
//! double holds is rounded (`0.10000000000000000001` → `0.1`), one beyond a double's range is
//! refused by the parser or becomes 0. Such objects are refused instead, with the path of each
//! such number, by scanning the object's JSON text as it was sent:
//!
//! - an integer literal (no fraction, no exponent) is exact when it fits `i64` or `u64`;
//! - any other literal is exact when the shortest decimal form of the double it parses to (what
//!   is served) is the same number as the literal: `1.50`, `15e-1` and `1.5` are one number and
//!   pass; `0.1` passes (served as `0.1`); `0.30000000000000004` passes; `3.14159265358979323846`
//!   does not.
//!
//! The scan is one pass over the text that looks at numbers only ([`numbers_exact`]); the paths of
//! the offending numbers are worked out in a second pass only when there are any
//! ([`inexact_numbers`]).

use crate::StixError;

/// Whether every number literal in the JSON text `raw` is kept exactly (see the module
/// documentation). `raw` must be valid JSON.
pub fn numbers_exact(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i),
            b'-' | b'0'..=b'9' => {
                let end = number_end(b, i);
                if problem(&raw[i..end]).is_some() {
                    return false;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    true
}

/// Every number of the JSON object text `raw` that would not be kept exactly, as errors of the
/// object `object_id` naming the property path (`x_counts[2]`, `extensions.x-ext.size`). Empty when
/// [`numbers_exact`] holds.
pub fn inexact_numbers(raw: &str, object_id: &str) -> Vec<StixError> {
    enum Frame {
        Object { key: String, expect_key: bool },
        Array { index: usize },
    }
    let b = raw.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                stack.push(Frame::Object {
                    key: String::new(),
                    expect_key: true,
                });
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array { index: 0 });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Array { index }) => *index += 1,
                    Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                    None => {}
                }
                i += 1;
            }
            b'"' => {
                let end = string_end(b, i);
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut() {
                    if *expect_key {
                        let text = &raw[i..end];
                        *key = serde_json::from_str::<String>(text)
                            .unwrap_or_else(|_| text.trim_matches('"').to_string());
                        *expect_key = false;
                    }
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(b, i);
                let literal = &raw[i..end];
                if let Some(message) = problem(literal) {
                    let mut path = String::new();
                    for (depth, f) in stack.iter().enumerate() {
                        match f {
                            Frame::Object { key, .. } => {
                                if depth > 0 {
                                    path.push('.');
                                }
                                path.push_str(key);
                            }
                            Frame::Array { index } => path.push_str(&format!("[{index}]")),
                        }
                    }
                    out.push(StixError {
                        object_id: object_id.to_string(),
                        path,
                        message,
                    });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// The index just past the string that opens at `start` (a `"`). Most of an object's text is in
/// strings: they are skipped a machine word at a time.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(k) = memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
        i += k;
        if b[i] == b'"' {
            return i + 1;
        }
        i += 2;
    }
    b.len()
}

/// The index just past the number literal that starts at `start`.
fn number_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
        i += 1;
    }
    i
}

/// Why the literal would not be kept exactly; `None` when it would.
fn problem(literal: &str) -> Option<String> {
    let digits = literal.strip_prefix('-').unwrap_or(literal);
    let integer = !literal.contains(['.', 'e', 'E']);
    if integer {
        // At most 18 digits always fits i64.
        if digits.len() <= 18 || literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok() {
            return None;
        }
        return Some(format!(
            "{literal} is an integer beyond 64 bits and would not be kept exactly; integers must \
             lie between -9223372036854775808 and 18446744073709551615 (send larger ones as strings)"
        ));
    }
    let value: f64 = match serde_json::from_str::<f64>(literal) {
        Ok(v) if v.is_finite() => v,
        _ => {
            return Some(format!(
                "{literal} is beyond the range of a 64-bit floating-point number"
            ))
        }
    };
    // What would be served: serde_json writes a double in its shortest round-trip form.
    let served = serde_json::to_string(&value).unwrap_or_default();
    if Decimal::of(literal) == Decimal::of(&served) {
        return None;
    }
    Some(format!(
        "{literal} has more precision than a 64-bit floating-point number holds and would be \
         stored as {served}; send at most 17 significant digits (or the value as a string)"
    ))
}

/// A decimal number as sign, significant digits (no leading or trailing zeros) and the power of
/// ten of the last digit; zero is one value whatever its sign. `None` exponent marks one too large
/// to compare (never equal to a served number).
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: Option<i64>,
}

impl Decimal {
    fn of(literal: &str) -> Decimal {
        let (negative, rest) = match literal.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, literal),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(k) => (&rest[..k], &rest[k + 1..]),
            None => (rest, "0"),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits: String = int.chars().chain(frac.chars()).collect();
        let mut exponent: Option<i64> = exp
            .trim_start_matches('+')
            .parse::<i64>()
            .ok()
            .and_then(|e| e.checked_sub(frac.len() as i64));
        let trimmed = digits.trim_start_matches('0');
        digits = trimmed.to_string();
        if digits.is_empty() {
            return Decimal {
                negative: false,
                digits,
                exponent: Some(0),
            };
        }
        let zeros = digits.len() - digits.trim_end_matches('0').len();
        digits.truncate(digits.len() - zeros);
        exponent = exponent.and_then(|e| e.checked_add(zeros as i64));
        Decimal {
            negative,
            digits,
            exponent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_table() {
        // (row, literal, kept exactly)
        let rows: &[(&str, &str, bool)] = &[
            ("small integer", "42", true),
            ("negative integer", "-7", true),
            ("zero", "0", true),
            ("negative zero", "-0", true),
            ("i64 max", "9223372036854775807", true),
            ("i64 min", "-9223372036854775808", true),
            ("u64 max", "18446744073709551615", true),
            ("u64 max + 1", "18446744073709551616", false),
            ("i64 min - 1", "-9223372036854775809", false),
            ("a 23-digit integer", "12345678901234567890123", false),
            ("one tenth", "0.1", true),
            ("trailing zeros", "1.50", true),
            ("exponent form", "15e-1", true),
            ("capital exponent with sign", "1.5E+3", true),
            ("integer-valued double", "100.0", true),
            ("1e23", "1e23", true),
            ("17 significant digits", "0.30000000000000004", true),
            ("smallest subnormal", "5e-324", true),
            ("largest double", "1.7976931348623157e308", true),
            ("latitude", "48.8566", true),
            ("pi to 21 digits", "3.14159265358979323846", false),
            ("one tenth plus noise", "0.10000000000000000001", false),
            ("2^53 + 1 as a decimal", "9007199254740993.0", false),
            ("beyond double range", "1e400", false),
            ("below double range", "1e-400", false),
            ("negative zero decimal", "-0.0", true),
            ("zero with exponent", "0e10", true),
        ];
        for (row, literal, exact) in rows {
            assert_eq!(problem(literal).is_none(), *exact, "{row}: {literal}");
            let text = format!("{{\"n\":{literal}}}");
            assert_eq!(numbers_exact(&text), *exact, "{row} in an object");
        }
    }

    #[test]
    fn paths_name_each_inexact_number() {
        let raw = r#"{"id": "x-thing--1", "name": "1e400 in a string \" 12345678901234567890123",
            "x_n": 1, "x_list": [1.5, 0.10000000000000000001, {"deep": 18446744073709551616}],
            "extensions": {"x-ext": {"size": 1e400, "ok": 2}}, "x_last": -1}"#;
        assert!(!numbers_exact(raw));
        let errors = inexact_numbers(raw, "x-thing--1");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["x_list[1]", "x_list[2].deep", "extensions.x-ext.size"]
        );
        assert!(errors[0].message.contains("would be stored as 0.1"));
        assert!(errors[1].message.contains("beyond 64 bits"));
        assert!(errors[2].message.contains("beyond the range"));
        assert_eq!(
            errors[1].to_string(),
            format!("x-thing--1: x_list[2].deep: {}", errors[1].message)
        );
        // Keys with escapes are decoded; numbers inside strings are not numbers.
        let raw = r#"{"x_\u0061b": [[0, 99999999999999999999]], "x_s": "99999999999999999999"}"#;
        let errors = inexact_numbers(raw, "x--1");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "x_ab[0][1]");
        assert!(numbers_exact(r#"{"a": "\\", "b": [1, 2.5, -3e2]}"#));
    }
}
