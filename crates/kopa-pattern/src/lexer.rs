//! Tokeniser for STIX 2.1 patterns.
//!
//! It reproduces the lexer of the OASIS ANTLR grammar (`STIXPattern.g4`, STIX 2.1) exactly: at each
//! position the longest match over all token rules wins, ties go to the rule defined first, white
//! space and comments are skipped, and any other character becomes an [`Tok::Invalid`] token (the
//! grammar's `InvalidCharacter` catch-all). Columns are 1-based and count characters, not bytes.

/// Kinds of token, in the grammar's rule order (which decides ties between equally long matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    IntNeg,
    IntPos,
    FloatNeg,
    FloatPos,
    Hex,
    Binary,
    Str,
    Bool,
    Timestamp,
    And,
    Or,
    Not,
    FollowedBy,
    Like,
    Matches,
    IsSuperset,
    IsSubset,
    Exists,
    Last,
    In,
    Start,
    Stop,
    Seconds,
    Within,
    Repeats,
    Times,
    IdentNoHyphen,
    IdentHyphen,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    Quote,
    Colon,
    Dot,
    Comma,
    RParen,
    LParen,
    RBrack,
    LBrack,
    Plus,
    Hyphen,
    Power,
    Divide,
    Asterisk,
    Invalid,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Tok::IntNeg | Tok::IntPos => "integer",
            Tok::FloatNeg | Tok::FloatPos => "float",
            Tok::Hex => "hex literal",
            Tok::Binary => "binary literal",
            Tok::Str => "string literal",
            Tok::Bool => "boolean",
            Tok::Timestamp => "timestamp literal",
            Tok::And => "AND",
            Tok::Or => "OR",
            Tok::Not => "NOT",
            Tok::FollowedBy => "FOLLOWEDBY",
            Tok::Like => "LIKE",
            Tok::Matches => "MATCHES",
            Tok::IsSuperset => "ISSUPERSET",
            Tok::IsSubset => "ISSUBSET",
            Tok::Exists => "EXISTS",
            Tok::Last => "LAST",
            Tok::In => "IN",
            Tok::Start => "START",
            Tok::Stop => "STOP",
            Tok::Seconds => "SECONDS",
            Tok::Within => "WITHIN",
            Tok::Repeats => "REPEATS",
            Tok::Times => "TIMES",
            Tok::IdentNoHyphen | Tok::IdentHyphen => "identifier",
            Tok::Eq => "'='",
            Tok::Neq => "'!='",
            Tok::Lt => "'<'",
            Tok::Le => "'<='",
            Tok::Gt => "'>'",
            Tok::Ge => "'>='",
            Tok::Quote => "unterminated quote",
            Tok::Colon => "':'",
            Tok::Dot => "'.'",
            Tok::Comma => "','",
            Tok::RParen => "')'",
            Tok::LParen => "'('",
            Tok::RBrack => "']'",
            Tok::LBrack => "'['",
            Tok::Plus => "'+'",
            Tok::Hyphen => "'-'",
            Tok::Power => "'^'",
            Tok::Divide => "'/'",
            Tok::Asterisk => "'*'",
            Tok::Invalid => "invalid character",
            Tok::Eof => "end of pattern",
        }
    }
}

/// One token: its kind, its byte range in the source and its 1-based character column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
    pub column: usize,
}

const KEYWORDS: [(&str, Tok); 17] = [
    ("AND", Tok::And),
    ("OR", Tok::Or),
    ("NOT", Tok::Not),
    ("FOLLOWEDBY", Tok::FollowedBy),
    ("LIKE", Tok::Like),
    ("MATCHES", Tok::Matches),
    ("ISSUPERSET", Tok::IsSuperset),
    ("ISSUBSET", Tok::IsSubset),
    ("EXISTS", Tok::Exists),
    ("LAST", Tok::Last),
    ("IN", Tok::In),
    ("START", Tok::Start),
    ("STOP", Tok::Stop),
    ("SECONDS", Tok::Seconds),
    ("WITHIN", Tok::Within),
    ("REPEATS", Tok::Repeats),
    ("TIMES", Tok::Times),
];
// `true`/`false` are lexed as BoolLiteral, which precedes the TRUE/FALSE keyword rules.

/// Whether `c` is white space for the grammar's `WS` rule.
pub(crate) fn is_ws(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\r'
            | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// `'0' | [1-9][0-9]*` from `i`: end index or None.
fn uint(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i) {
        Some(b'0') => Some(i + 1),
        Some(c) if c.is_ascii_digit() => Some(digits(b, i + 1)),
        _ => None,
    }
}

/// `[0-9]* '.' [0-9]+` from `i`: end index or None.
fn ufloat(b: &[u8], i: usize) -> Option<usize> {
    let j = digits(b, i);
    if b.get(j) != Some(&b'.') {
        return None;
    }
    let k = digits(b, j + 1);
    (k > j + 1).then_some(k)
}

fn string_lit(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'\'') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\'' => return Some(j + 1),
            b'\\' => match b.get(j + 1)? {
                b'\'' | b'\\' => j += 2,
                _ => return None,
            },
            _ => j += 1,
        }
    }
}

fn hex_lit(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'h') || b.get(i + 1) != Some(&b'\'') {
        return None;
    }
    let mut j = i + 2;
    while j + 1 < b.len() && b[j].is_ascii_hexdigit() && b[j + 1].is_ascii_hexdigit() {
        j += 2;
    }
    (b.get(j) == Some(&b'\'')).then_some(j + 1)
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn binary_lit(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'b') || b.get(i + 1) != Some(&b'\'') {
        return None;
    }
    let mut j = i + 2;
    while j < b.len() && is_b64(b[j]) {
        j += 1;
    }
    let n = j - (i + 2);
    let mut pads = 0;
    while b.get(j) == Some(&b'=') && pads < 2 {
        j += 1;
        pads += 1;
    }
    let ok = match pads {
        0 => n >= 4 && n.is_multiple_of(4),
        1 => n % 4 == 3,
        _ => n % 4 == 2,
    };
    (ok && b.get(j) == Some(&b'\'')).then_some(j + 1)
}

fn timestamp_lit(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b't') || b.get(i + 1) != Some(&b'\'') {
        return None;
    }
    let d = |k: usize| b.get(i + k).copied().filter(u8::is_ascii_digit);
    let c = |k: usize, ch: u8| b.get(i + k) == Some(&ch);
    // t ' Y Y Y Y - M M - D D T h h : m m : s s
    // 0 1 2 3 4 5 6 7 8 9 ...
    for k in 2..6 {
        d(k)?;
    }
    if !c(6, b'-') {
        return None;
    }
    let month = (d(7)?, d(8)?);
    if !matches!(month, (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2')) {
        return None;
    }
    if !c(9, b'-') {
        return None;
    }
    let day = (d(10)?, d(11)?);
    if !matches!(
        day,
        (b'0', b'1'..=b'9') | (b'1' | b'2', _) | (b'3', b'0' | b'1')
    ) {
        return None;
    }
    if !c(12, b'T') {
        return None;
    }
    let hour = (d(13)?, d(14)?);
    if !matches!(hour, (b'0' | b'1', _) | (b'2', b'0'..=b'3')) {
        return None;
    }
    if !c(15, b':') {
        return None;
    }
    if !matches!((d(16)?, d(17)?), (b'0'..=b'5', _)) || !c(18, b':') {
        return None;
    }
    if !matches!((d(19)?, d(20)?), (b'0'..=b'5', _) | (b'6', b'0')) {
        return None;
    }
    let mut j = i + 21;
    if b.get(j) == Some(&b'.') {
        let k = digits(b, j + 1);
        if k == j + 1 {
            return None;
        }
        j = k;
    }
    (b.get(j) == Some(&b'Z') && b.get(j + 1) == Some(&b'\'')).then_some(j + 2)
}

fn ident(b: &[u8], i: usize, hyphen: bool) -> Option<usize> {
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return None,
    }
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || (hyphen && b[j] == b'-'))
    {
        j += 1;
    }
    Some(j)
}

/// Split a pattern into tokens (white space and comments dropped), ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut column = 1;
    while i < b.len() {
        let rest = &src[i..];
        let first = rest.chars().next().unwrap_or('\0');
        // Skipped rules: WS, COMMENT, LINE_COMMENT. They can only tie with other rules at length 1
        // ('/' for DIVIDE), and a comment is always longer, so they are tried first.
        let skip_end = if is_ws(first) {
            let n: usize = rest
                .chars()
                .take_while(|c| is_ws(*c))
                .map(char::len_utf8)
                .sum();
            Some(i + n)
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/").map(|k| i + 2 + k + 2)
        } else if rest.starts_with("//") {
            let n = rest.find(['\r', '\n']).unwrap_or(rest.len());
            Some(i + n)
        } else {
            None
        };
        if let Some(end) = skip_end {
            column += src[i..end].chars().count();
            i = end;
            continue;
        }
        let mut best: Option<(usize, Tok)> = None;
        let mut offer = |end: Option<usize>, kind: Tok| {
            if let Some(end) = end {
                if best.is_none_or(|(e, _)| end > e) {
                    best = Some((end, kind));
                }
            }
        };
        // Candidates in rule order; a later rule wins only when strictly longer.
        let neg = b[i] == b'-';
        let pos_start = if b[i] == b'+' { i + 1 } else { i };
        offer(if neg { uint(b, i + 1) } else { None }, Tok::IntNeg);
        offer(uint(b, pos_start), Tok::IntPos);
        offer(if neg { ufloat(b, i + 1) } else { None }, Tok::FloatNeg);
        offer(ufloat(b, pos_start), Tok::FloatPos);
        offer(hex_lit(b, i), Tok::Hex);
        offer(binary_lit(b, i), Tok::Binary);
        offer(string_lit(b, i), Tok::Str);
        // Words are compared only where their first byte stands: most positions start none of them.
        for word in ["true", "false"] {
            if word.as_bytes()[0] == b[i] && rest.starts_with(word) {
                offer(Some(i + word.len()), Tok::Bool);
            }
        }
        offer(timestamp_lit(b, i), Tok::Timestamp);
        if b[i].is_ascii_uppercase() {
            for (word, kind) in KEYWORDS {
                if word.as_bytes()[0] == b[i] && rest.starts_with(word) {
                    offer(Some(i + word.len()), kind);
                }
            }
        }
        offer(ident(b, i, false), Tok::IdentNoHyphen);
        offer(ident(b, i, true), Tok::IdentHyphen);
        let two = rest.get(..2).unwrap_or("");
        offer(
            match two {
                "==" => Some(i + 2),
                _ if b[i] == b'=' => Some(i + 1),
                _ => None,
            },
            Tok::Eq,
        );
        offer(matches!(two, "!=" | "<>").then_some(i + 2), Tok::Neq);
        let single = match b[i] {
            b'<' => Some(Tok::Lt),
            b'>' => Some(Tok::Gt),
            b'\'' => Some(Tok::Quote),
            b':' => Some(Tok::Colon),
            b'.' => Some(Tok::Dot),
            b',' => Some(Tok::Comma),
            b')' => Some(Tok::RParen),
            b'(' => Some(Tok::LParen),
            b']' => Some(Tok::RBrack),
            b'[' => Some(Tok::LBrack),
            b'+' => Some(Tok::Plus),
            b'-' => Some(Tok::Hyphen),
            b'^' => Some(Tok::Power),
            b'/' => Some(Tok::Divide),
            b'*' => Some(Tok::Asterisk),
            _ => None,
        };
        // LE/GE come after LT/GT in rule order but are longer.
        offer((two == "<=").then_some(i + 2), Tok::Le);
        offer((two == ">=").then_some(i + 2), Tok::Ge);
        if let Some(kind) = single {
            offer(Some(i + 1), kind);
        }
        offer(Some(i + first.len_utf8()), Tok::Invalid);
        let (end, kind) = best.unwrap_or((i + first.len_utf8(), Tok::Invalid));
        out.push(Token {
            kind,
            start: i,
            end,
            column,
        });
        column += src[i..end].chars().count();
        i = end;
    }
    out.push(Token {
        kind: Tok::Eof,
        start: src.len(),
        end: src.len(),
        column,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn longest_match_and_rule_order() {
        let cases: &[(&str, &str, Vec<Tok>)] = &[
            ("keyword beats identifier", "AND", vec![Tok::And, Tok::Eof]),
            (
                "longer identifier beats keyword",
                "ANDY",
                vec![Tok::IdentNoHyphen, Tok::Eof],
            ),
            ("bool literal", "true", vec![Tok::Bool, Tok::Eof]),
            (
                "hyphenated identifier",
                "a-b",
                vec![Tok::IdentHyphen, Tok::Eof],
            ),
            ("negative int", "-5", vec![Tok::IntNeg, Tok::Eof]),
            ("negative float", "-5.25", vec![Tok::FloatNeg, Tok::Eof]),
            (
                "leading zero splits",
                "01",
                vec![Tok::IntPos, Tok::IntPos, Tok::Eof],
            ),
            ("hex", "h'0aFF'", vec![Tok::Hex, Tok::Eof]),
            (
                "odd hex falls back",
                "h'0'",
                vec![Tok::IdentNoHyphen, Tok::Str, Tok::Eof],
            ),
            ("binary", "b'AAA='", vec![Tok::Binary, Tok::Eof]),
            (
                "timestamp",
                "t'2020-01-02T03:04:05.6Z'",
                vec![Tok::Timestamp, Tok::Eof],
            ),
            (
                "bad escape",
                r"'a\n'",
                vec![
                    Tok::Quote,
                    Tok::IdentNoHyphen,
                    Tok::Invalid,
                    Tok::IdentNoHyphen,
                    Tok::Quote,
                    Tok::Eof,
                ],
            ),
            ("comment skipped", "/* x */ [", vec![Tok::LBrack, Tok::Eof]),
            (
                "unterminated comment",
                "/* x",
                vec![Tok::Divide, Tok::Asterisk, Tok::IdentNoHyphen, Tok::Eof],
            ),
            (
                "operators",
                "<= <> == != >=",
                vec![Tok::Le, Tok::Neq, Tok::Eq, Tok::Neq, Tok::Ge, Tok::Eof],
            ),
            ("invalid unicode", "é", vec![Tok::Invalid, Tok::Eof]),
        ];
        for (name, src, want) in cases {
            assert_eq!(&kinds(src), want, "case {name}");
        }
    }

    #[test]
    fn keywords_start_with_a_capital_letter() {
        // `tokenize` tries the keywords only at a capital letter.
        for (word, _) in KEYWORDS {
            assert!(word.as_bytes()[0].is_ascii_uppercase(), "{word}");
        }
        let kinds: Vec<Tok> = tokenize("AND ANDx And FOLLOWEDBY true falsey")
            .iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                Tok::And,
                Tok::IdentNoHyphen,
                Tok::IdentNoHyphen,
                Tok::FollowedBy,
                Tok::Bool,
                Tok::IdentNoHyphen,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn columns_count_characters() {
        let toks = tokenize("é [");
        assert_eq!(toks[1].column, 3);
    }
}
