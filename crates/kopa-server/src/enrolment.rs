//! One-time enrolment codes: how a user who lost every token is let in again without anyone else
//! ever holding one of the user's tokens.
//!
//! A code reads `kopa-enrol_<id>_<secret>` (16 and 64 hex digits, like a token). Whoever manages the
//! account (the permission rule's `Action::Enrol`) issues it; issuing revokes every token the user
//! still has, so a code can never sit unnoticed beside a working token. The code is redeemed once,
//! within [`VALID_HOURS`], for a new token (`POST /api/enrol`). Only the SHA-256 of its secret is
//! kept; each issue and redemption is in the audit log, and the user sees every enrolment of their
//! account (who issued it, when, when and from where it was redeemed) in `GET /api/me`.

use kopa_core::UserId;
use kopa_stix::Timestamp;
use kopa_store::EnrolmentRecord;
use subtle::ConstantTimeEq;

/// How long an enrolment code can be redeemed, in hours.
pub const VALID_HOURS: i64 = 72;

const PREFIX: &str = "kopa-enrol_";

/// A new enrolment code for `user`, issued by `issued_by` at `now`: the record to store and the code
/// to hand over once.
pub fn new_code(user: &UserId, issued_by: &str, now: Timestamp) -> (EnrolmentRecord, String) {
    // The same random id and secret (and the same stored hash) as an API token's.
    let (token, text) = crate::token::new_token(user);
    let secret = text.rsplit('_').next().unwrap_or_default();
    let code = format!("{PREFIX}{}_{secret}", token.id);
    let record = EnrolmentRecord {
        id: token.id,
        user: user.clone(),
        secret_hash: token.secret_hash,
        issued_by: issued_by.to_string(),
        issued_at: now,
        expires_at: Timestamp::from_micros(now.micros() + VALID_HOURS * 3_600_000_000),
        redeemed_at: None,
        redeemed_from: None,
    };
    (record, code)
}

/// The lookup id and the secret of a code; `None` when it is not in the code's form.
pub fn code_parts(code: &str) -> Option<(&str, &str)> {
    let (id, secret) = code.strip_prefix(PREFIX)?.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some((id, secret))
}

/// Whether `secret` is the one `record` was issued with (constant-time comparison).
pub fn secret_matches(record: &EnrolmentRecord, secret: &str) -> bool {
    let got = crate::token::hash_secret(secret);
    bool::from(got.as_bytes().ct_eq(record.secret_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_verify_against_their_record_only() {
        let now = Timestamp::from_micros(1_700_000_000_000_000);
        let (record, code) = new_code(&UserId("u".into()), "admin", now);
        let (id, secret) = code_parts(&code).unwrap();
        assert_eq!(id, record.id);
        assert!(secret_matches(&record, secret));
        assert!(!secret_matches(&record, &"0".repeat(64)));
        assert_ne!(record.secret_hash, secret, "the secret itself is not kept");
        assert_eq!(
            record.expires_at.micros() - now.micros(),
            VALID_HOURS * 3_600_000_000
        );
        for bad in [
            "",
            "kopa-enrol_",
            "kopa-enrol_zz_00",
            "kopa_0123456789abcdef_00",
        ] {
            assert!(code_parts(bad).is_none(), "{bad}");
        }
    }
}
