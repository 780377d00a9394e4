//! Names of organisations and users: what a new name may be, and when it is too like one the node
//! already has. The REST API and the command line both ask [`new_name`] before adding either.
//!
//! A name is what people read in the audit log, in `GET /api/me`, in an audience extension and as
//! the HTTP Basic user name; it grants nothing by itself (ids do), but a name that looks like
//! another is how a person is fooled into sharing with the wrong organisation. So a new name:
//!
//! - loses surrounding white space, and is then not empty and at most [`MAX_CHARS`] characters;
//! - is already in Unicode Normalization Form C: it is stored exactly as given, never rewritten, so
//!   one in another form is refused with a request to send its NFC form;
//! - holds no control (Cc), format (Cf: among them every bidirectional control such as U+202E
//!   RIGHT-TO-LEFT OVERRIDE, and the zero-width joiners), line or paragraph separator, private-use,
//!   surrogate or unassigned code point;
//! - for a user, holds no `:` (it is the HTTP Basic user name); for an organisation, no `,` and is
//!   not `all` (the command line lists organisations with commas, and `all` means every one);
//! - is not confusable with an existing name of the same kind: Unicode confusable skeletons
//!   (UTS #39) compared without regard to case, so "Bank А" (Cyrillic А) is refused beside
//!   "Bank A", and "aIice" (capital I) beside "alice".
//!
//! Case and lookalikes do not commute ("I" is a lookalike of "l", its lower case "i" is not), so two
//! names are confusable when either the skeletons of their lower-case forms are equal, or the lower
//! case of their skeletons are: "ALICE" meets "alice" through the first, "aIice" through the second.

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest name, in characters (Unicode scalar values).
pub const MAX_CHARS: usize = 200;

/// What is being named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Organisation,
    User,
}

impl NameKind {
    fn with_article(self) -> &'static str {
        match self {
            NameKind::Organisation => "an organisation",
            NameKind::User => "a user",
        }
    }
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Organisation => "organisation",
            NameKind::User => "user",
        })
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0} name must not be empty")]
    Empty(NameKind),
    #[error("{kind} name is {chars} characters long; at most {MAX_CHARS} are allowed")]
    TooLong { kind: NameKind, chars: usize },
    #[error(
        "{0} name is not in Unicode normalization form NFC; send it in NFC (for example \"é\" as \
         the one character U+00E9, not \"e\" and a combining accent)"
    )]
    NotNfc(NameKind),
    #[error(
        "{kind} name holds {what} U+{code:04X} at character {at}; names may hold no control, \
         format or bidirectional characters"
    )]
    Forbidden {
        kind: NameKind,
        what: &'static str,
        code: u32,
        /// 1-based position in the name.
        at: usize,
    },
    #[error("{kind} name {rule}")]
    Reserved { kind: NameKind, rule: &'static str },
    #[error("{} named {existing:?} already exists", .kind.with_article())]
    Taken { kind: NameKind, existing: String },
    #[error(
        "{kind} name is too like the existing {kind} {existing:?} (the same once lookalike \
         characters and case are set aside); choose a name that cannot be mistaken for it"
    )]
    Confusable { kind: NameKind, existing: String },
}

/// Check a new name of `kind` against the rules above and the names the node already has of that
/// kind. Returns the name to store: `given` without surrounding white space.
pub fn new_name<'a>(
    kind: NameKind,
    given: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<String, NameError> {
    let name = given.trim();
    if name.is_empty() {
        return Err(NameError::Empty(kind));
    }
    let chars = name.chars().count();
    if chars > MAX_CHARS {
        return Err(NameError::TooLong { kind, chars });
    }
    for (i, c) in name.chars().enumerate() {
        if let Some(what) = forbidden(c) {
            return Err(NameError::Forbidden {
                kind,
                what,
                code: c as u32,
                at: i + 1,
            });
        }
    }
    let nfc = match is_nfc_quick(name.chars()) {
        IsNormalized::Yes => true,
        _ => name.nfc().eq(name.chars()),
    };
    if !nfc {
        return Err(NameError::NotNfc(kind));
    }
    let reserved = match kind {
        NameKind::User => name.contains(':'),
        NameKind::Organisation => name.contains(',') || name.eq_ignore_ascii_case("all"),
    };
    if reserved {
        return Err(NameError::Reserved {
            kind,
            rule: match kind {
                NameKind::User => "must not contain ':' (it is the HTTP Basic user name)",
                NameKind::Organisation => {
                    "must not contain ',' nor be \"all\" (the command line lists organisations \
                     separated by commas, and \"all\" means every one)"
                }
            },
        });
    }
    let keys = Keys::of(name);
    for other in existing {
        if other == name {
            return Err(NameError::Taken {
                kind,
                existing: other.to_string(),
            });
        }
        if keys.meet(&Keys::of(other)) {
            return Err(NameError::Confusable {
                kind,
                existing: other.to_string(),
            });
        }
    }
    Ok(name.to_string())
}

/// Whether `a` and `b` could be taken for one another (see the module documentation).
pub fn confusable(a: &str, b: &str) -> bool {
    Keys::of(a).meet(&Keys::of(b))
}

/// The two comparison keys of a name: the skeleton of its lower case, the lower case of its
/// skeleton.
struct Keys {
    lower_then_skeleton: String,
    skeleton_then_lower: String,
}

impl Keys {
    fn of(name: &str) -> Keys {
        let name = name.trim();
        let lower = name.to_lowercase();
        Keys {
            lower_then_skeleton: unicode_security::skeleton(&lower).collect(),
            skeleton_then_lower: unicode_security::skeleton(name)
                .collect::<String>()
                .to_lowercase(),
        }
    }

    fn meet(&self, other: &Keys) -> bool {
        self.lower_then_skeleton == other.lower_then_skeleton
            || self.skeleton_then_lower == other.skeleton_then_lower
    }
}

/// The kind of character `c` is when a name may not hold it.
fn forbidden(c: char) -> Option<&'static str> {
    let bidi = matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    );
    if bidi {
        return Some("the bidirectional control");
    }
    match c.general_category() {
        GeneralCategory::Control => Some("the control character"),
        GeneralCategory::Format => Some("the format character"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
            Some("the line or paragraph separator")
        }
        GeneralCategory::PrivateUse => Some("the private-use character"),
        GeneralCategory::Surrogate => Some("the surrogate"),
        GeneralCategory::Unassigned => Some("the unassigned code point"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let orgs = ["Bank A", "CSIRT B", "Ministère de l’Intérieur"];
        let users = ["alice", "bob", "ALLEN", "emma"];
        let long = "x".repeat(MAX_CHARS + 1);
        let longest = "é".repeat(MAX_CHARS);
        // (row, kind, given, Ok(stored) or Err(a piece of the message))
        let rows: &[(&str, NameKind, &str, Result<&str, &str>)] = &[
            (
                "plain organisation",
                NameKind::Organisation,
                "Bank C",
                Ok("Bank C"),
            ),
            (
                "surrounding spaces dropped",
                NameKind::Organisation,
                "  Bank C ",
                Ok("Bank C"),
            ),
            (
                "accents in NFC",
                NameKind::Organisation,
                "Banque de l’Été",
                Ok("Banque de l’Été"),
            ),
            ("other scripts", NameKind::User, "Ŝtefan", Ok("Ŝtefan")),
            ("Cyrillic alone", NameKind::Organisation, "Банк", Ok("Банк")),
            (
                "Arabic (right-to-left letters are letters)",
                NameKind::User,
                "سلمى",
                Ok("سلمى"),
            ),
            ("200 characters", NameKind::User, &longest, Ok(&longest)),
            (
                "Cyrillic А in Bank А",
                NameKind::Organisation,
                "Bank \u{0410}",
                Err("too like the existing organisation \"Bank A\""),
            ),
            (
                "Greek Α in Bank Α",
                NameKind::Organisation,
                "Bank \u{0391}",
                Err("too like"),
            ),
            (
                "case only",
                NameKind::Organisation,
                "bank a",
                Err("too like the existing organisation \"Bank A\""),
            ),
            (
                "capital I for l",
                NameKind::User,
                "aIice",
                Err("too like the existing user \"alice\""),
            ),
            (
                "digit 1 for l",
                NameKind::User,
                "a1ice",
                Err("too like the existing user \"alice\""),
            ),
            (
                "upper case",
                NameKind::User,
                "ALICE",
                Err("too like the existing user \"alice\""),
            ),
            (
                "rn for m",
                NameKind::User,
                "ernma",
                Err("too like the existing user \"emma\""),
            ),
            (
                "exact duplicate user",
                NameKind::User,
                "bob",
                Err("a user named \"bob\" already exists"),
            ),
            (
                "lower case of an upper-case name",
                NameKind::User,
                "allen",
                Err("too like the existing user \"ALLEN\""),
            ),
            (
                "Cyrillic о in bоb",
                NameKind::User,
                "b\u{043E}b",
                Err("too like the existing user \"bob\""),
            ),
            (
                "fullwidth letters",
                NameKind::User,
                "\u{FF41}lice",
                Err("too like"),
            ),
            (
                "exact duplicate",
                NameKind::Organisation,
                "CSIRT B",
                Err("an organisation named \"CSIRT B\" already exists"),
            ),
            (
                "RLO",
                NameKind::User,
                "eve\u{202E}gnp.exe",
                Err("U+202E at character 4"),
            ),
            (
                "LRI",
                NameKind::Organisation,
                "Bank \u{2066}D",
                Err("bidirectional"),
            ),
            (
                "right-to-left mark",
                NameKind::User,
                "mallory\u{200F}",
                Err("U+200F"),
            ),
            (
                "zero-width joiner",
                NameKind::User,
                "ali\u{200D}ce",
                Err("format character U+200D"),
            ),
            (
                "zero-width space",
                NameKind::User,
                "al\u{200B}ice",
                Err("format character U+200B"),
            ),
            (
                "byte order mark",
                NameKind::Organisation,
                "\u{FEFF}Bank D",
                Err("U+FEFF"),
            ),
            (
                "newline inside",
                NameKind::Organisation,
                "Bank\nD",
                Err("control character U+000A"),
            ),
            (
                "tab inside",
                NameKind::User,
                "a\tb",
                Err("control character U+0009"),
            ),
            ("NUL", NameKind::User, "nul\u{0}", Err("U+0000")),
            (
                "line separator",
                NameKind::Organisation,
                "Bank\u{2028}D",
                Err("separator"),
            ),
            (
                "private use",
                NameKind::User,
                "x\u{E000}y",
                Err("private-use"),
            ),
            (
                "unassigned",
                NameKind::User,
                "x\u{0378}y",
                Err("unassigned"),
            ),
            (
                "201 characters",
                NameKind::User,
                &long,
                Err("201 characters long; at most 200"),
            ),
            (
                "empty",
                NameKind::Organisation,
                "",
                Err("must not be empty"),
            ),
            (
                "spaces only",
                NameKind::User,
                "   ",
                Err("must not be empty"),
            ),
            (
                "not NFC (e + combining acute)",
                NameKind::User,
                "Jose\u{0301}",
                Err("not in Unicode normalization form NFC"),
            ),
            (
                "colon in a user name",
                NameKind::User,
                "a:b",
                Err("must not contain ':'"),
            ),
            (
                "comma in an organisation name",
                NameKind::Organisation,
                "A, B",
                Err("must not contain ','"),
            ),
            (
                "the word all",
                NameKind::Organisation,
                "ALL",
                Err("nor be \"all\""),
            ),
        ];
        for (row, kind, given, want) in rows {
            let existing: &[&str] = match kind {
                NameKind::Organisation => &orgs,
                NameKind::User => &users,
            };
            let got = new_name(*kind, given, existing.iter().copied());
            match (want, &got) {
                (Ok(stored), Ok(s)) => assert_eq!(s, stored, "{row}"),
                (Err(needle), Err(e)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(needle), "{row}: {msg}");
                }
                _ => panic!("{row}: {given:?} gave {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn confusable_is_symmetric_and_ignores_case() {
        for (a, b) in [
            ("Bank A", "Bank \u{0410}"),
            ("alice", "aIice"),
            ("ALICE", "alice"),
            ("paypal", "p\u{0430}yp\u{0430}l"),
        ] {
            assert!(confusable(a, b), "{a} / {b}");
            assert!(confusable(b, a), "{b} / {a}");
        }
        for (a, b) in [("Bank A", "Bank B"), ("alice", "alina"), ("bob", "rob")] {
            assert!(!confusable(a, b), "{a} / {b}");
        }
    }
}
