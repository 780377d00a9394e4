//! Recursive-descent parser for the STIX 2.1 pattern grammar, and the validator's semantic rules.
//!
//! [`parse`] accepts exactly the language of the OASIS `STIXPattern.g4` (2.1) grammar and builds
//! the AST. [`validate`] adds the checks `stix2-patterns` 2.1.2 makes after parsing — hash
//! value formats for `hashes.X` paths, no repeated qualifier type directly on a `[ … ]`, and the
//! leading-bracket check — so that its verdicts equal the reference validator's.
//!
//! Nesting of parentheses and brackets is bounded by [`MAX_DEPTH`]: deeper input is an error,
//! never a stack overflow.

use crate::ast::*;
use crate::error::PatternError;
use crate::eval::Compiled;
use crate::lexer::{tokenize, Tok, Token};
use crate::timestamp::Timestamp;
use base64::Engine;

/// Base64 as the reference tools decode it: padding required, non-zero trailing bits allowed.
pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 100;

/// Parse a pattern (syntax only: see [`validate`] for the full validator).
pub fn parse(src: &str) -> Result<Pattern, PatternError> {
    Parser::new(src).run().map(|(p, _)| p)
}

/// Parse and validate a pattern with the rules of `stix2-patterns` 2.1.2.
///
/// ```
/// let err = kopa_pattern::validate("[file:hashes.MD5 = 'zz']").unwrap_err();
/// assert_eq!(err.column(), 20);
/// assert!(kopa_pattern::validate("[file:name = 'a.exe'] WITHIN 5 SECONDS").is_ok());
/// ```
pub fn validate(src: &str) -> Result<Pattern, PatternError> {
    if src.trim_matches(python_space).is_empty() {
        return Err(PatternError::new(1, "empty pattern"));
    }
    // stix2-patterns: after any opening parentheses and white space, the pattern must start with '['.
    let first = src.chars().find(|c| *c != '(' && !python_space(*c));
    if first != Some('[') {
        return Err(PatternError::new(
            1,
            "a pattern must start with an observation expression in square brackets",
        ));
    }
    let (pattern, semantic) = Parser::new(src).run()?;
    match semantic.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(pattern),
    }
}

/// Python's `str.isspace`, which the reference validator's bracket check uses.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    semantic: Vec<PatternError>,
}

type PResult<T> = Result<T, PatternError>;

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            toks: tokenize(src),
            pos: 0,
            depth: 0,
            semantic: Vec::new(),
        }
    }

    fn run(mut self) -> PResult<(Pattern, Vec<PatternError>)> {
        let root = self.followed_by()?;
        let t = self.peek();
        if t.kind != Tok::Eof {
            return Err(self.unexpected(t, "AND, OR, FOLLOWEDBY, a qualifier or the end"));
        }
        Ok((
            Pattern {
                root,
                source: self.src.to_string(),
            },
            self.semantic,
        ))
    }

    fn peek(&self) -> Token {
        self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &'a str {
        &self.src[t.start..t.end]
    }

    fn unexpected(&self, t: Token, expected: &str) -> PatternError {
        let found = if t.kind == Tok::Eof {
            "the end of the pattern".to_string()
        } else {
            let text = self.text(t);
            let shown: String = text.chars().take(40).collect();
            format!("'{shown}' ({})", t.kind.describe())
        };
        PatternError::new(t.column, format!("expected {expected}, found {found}"))
    }

    fn expect(&mut self, kind: Tok, expected: &str) -> PResult<Token> {
        let t = self.peek();
        if t.kind == kind {
            Ok(self.next())
        } else {
            Err(self.unexpected(t, expected))
        }
    }

    fn enter(&mut self, t: Token) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PatternError::new(
                t.column,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    // ---- observation level ----

    fn followed_by(&mut self) -> PResult<ObservationExpr> {
        let mut items = vec![self.obs_or()?];
        while self.peek().kind == Tok::FollowedBy {
            self.next();
            items.push(self.obs_or()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ObservationExpr::FollowedBy(items)
        })
    }

    fn obs_or(&mut self) -> PResult<ObservationExpr> {
        let mut items = vec![self.obs_and()?];
        while self.peek().kind == Tok::Or {
            self.next();
            items.push(self.obs_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ObservationExpr::Or(items)
        })
    }

    fn obs_and(&mut self) -> PResult<ObservationExpr> {
        let mut items = vec![self.obs_unit()?];
        while self.peek().kind == Tok::And {
            self.next();
            items.push(self.obs_unit()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ObservationExpr::And(items)
        })
    }

    fn obs_unit(&mut self) -> PResult<ObservationExpr> {
        let t = self.peek();
        let (mut expr, simple) = match t.kind {
            Tok::LBrack => {
                self.next();
                self.enter(t)?;
                let c = self.comparison_or()?;
                self.expect(Tok::RBrack, "']' or AND/OR")?;
                self.depth -= 1;
                (ObservationExpr::Observation(c), true)
            }
            Tok::LParen => {
                self.next();
                self.enter(t)?;
                let e = self.followed_by()?;
                self.expect(Tok::RParen, "')'")?;
                self.depth -= 1;
                (e, false)
            }
            _ => return Err(self.unexpected(t, "'[' or '('")),
        };
        // stix2-patterns rejects a repeated qualifier type applied directly to `[ … ]`.
        let mut seen = [false; 3];
        loop {
            let t = self.peek();
            let (q, idx) = match t.kind {
                Tok::Within => {
                    self.next();
                    let n = self.next();
                    let secs = match n.kind {
                        Tok::IntPos | Tok::FloatPos => {
                            let s = self.text(n).trim_start_matches('+');
                            s.parse::<f64>().unwrap_or(f64::INFINITY)
                        }
                        _ => return Err(self.unexpected(n, "a positive number of seconds")),
                    };
                    self.expect(Tok::Seconds, "SECONDS")?;
                    (Qualifier::Within(secs), 0)
                }
                Tok::Repeats => {
                    self.next();
                    let n = self.next();
                    if n.kind != Tok::IntPos {
                        return Err(self.unexpected(n, "a positive integer"));
                    }
                    let times = self
                        .text(n)
                        .trim_start_matches('+')
                        .parse::<u64>()
                        .unwrap_or(u64::MAX);
                    self.expect(Tok::Times, "TIMES")?;
                    (Qualifier::Repeats(times), 1)
                }
                Tok::Start => {
                    self.next();
                    let a = self.expect(Tok::Timestamp, "a timestamp literal t'…'")?;
                    self.expect(Tok::Stop, "STOP")?;
                    let b = self.expect(Tok::Timestamp, "a timestamp literal t'…'")?;
                    let start = self.timestamp(a)?;
                    let stop = self.timestamp(b)?;
                    (Qualifier::StartStop(start, stop), 2)
                }
                _ => break,
            };
            if simple && seen[idx] {
                let name = ["WITHIN", "REPEATS", "START/STOP"][idx];
                self.semantic.push(PatternError::new(
                    t.column,
                    format!("duplicate {name} qualifier on one observation expression"),
                ));
            }
            seen[idx] = true;
            expr = ObservationExpr::Qualified(Box::new(expr), q);
        }
        Ok(expr)
    }

    fn timestamp(&self, t: Token) -> PResult<Timestamp> {
        let text = self.text(t);
        Timestamp::parse_lenient(&text[2..text.len() - 1])
            .ok_or_else(|| PatternError::new(t.column, format!("invalid date in {text}")))
    }

    // ---- comparison level ----

    fn comparison_or(&mut self) -> PResult<ComparisonExpr> {
        let mut items = vec![self.comparison_and()?];
        while self.peek().kind == Tok::Or {
            self.next();
            items.push(self.comparison_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ComparisonExpr::Or(items)
        })
    }

    fn comparison_and(&mut self) -> PResult<ComparisonExpr> {
        let mut items = vec![self.prop_test()?];
        while self.peek().kind == Tok::And {
            self.next();
            items.push(self.prop_test()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ComparisonExpr::And(items)
        })
    }

    fn prop_test(&mut self) -> PResult<ComparisonExpr> {
        let t = self.peek();
        match t.kind {
            Tok::LParen => {
                self.next();
                self.enter(t)?;
                let c = self.comparison_or()?;
                self.expect(Tok::RParen, "')' or AND/OR")?;
                self.depth -= 1;
                Ok(c)
            }
            Tok::Not | Tok::Exists => {
                let negated = t.kind == Tok::Not;
                if negated {
                    self.next();
                    if self.peek().kind != Tok::Exists {
                        return Err(self.unexpected(self.peek(), "EXISTS"));
                    }
                }
                self.next();
                let (path, _) = self.object_path()?;
                Ok(ComparisonExpr::Test(Comparison {
                    path,
                    negated,
                    op: Operator::Exists,
                    operand: Operand::None,
                    column: t.column,
                    compiled: Compiled::None,
                }))
            }
            Tok::IdentNoHyphen | Tok::IdentHyphen => {
                let (path, raw_last) = self.object_path()?;
                let mut negated = false;
                if self.peek().kind == Tok::Not {
                    self.next();
                    negated = true;
                }
                let op_tok = self.next();
                let op = match op_tok.kind {
                    Tok::Eq => Operator::Eq,
                    Tok::Neq => Operator::Ne,
                    Tok::Lt => Operator::Lt,
                    Tok::Le => Operator::Le,
                    Tok::Gt => Operator::Gt,
                    Tok::Ge => Operator::Ge,
                    Tok::In => Operator::In,
                    Tok::Like => Operator::Like,
                    Tok::Matches => Operator::Matches,
                    Tok::IsSubset => Operator::IsSubset,
                    Tok::IsSuperset => Operator::IsSuperset,
                    _ => {
                        return Err(self.unexpected(
                            op_tok,
                            "a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)",
                        ))
                    }
                };
                let value_tok = self.peek();
                let (operand, value_text) = match op {
                    Operator::Eq | Operator::Ne => {
                        let v = self.next();
                        (
                            Operand::Literal(self.literal(v, true)?),
                            self.text(v).to_string(),
                        )
                    }
                    Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                        let v = self.next();
                        (
                            Operand::Literal(self.literal(v, false)?),
                            self.text(v).to_string(),
                        )
                    }
                    Operator::In => self.set_literal()?,
                    _ => {
                        let v = self.next();
                        if v.kind != Tok::Str {
                            return Err(self.unexpected(v, "a string literal"));
                        }
                        (
                            Operand::Literal(self.literal(v, false)?),
                            self.text(v).to_string(),
                        )
                    }
                };
                self.check_hash(&path, raw_last, &value_text, value_tok.column);
                let compiled = Compiled::compile(op, &operand);
                Ok(ComparisonExpr::Test(Comparison {
                    path,
                    negated,
                    op,
                    operand,
                    column: t.column,
                    compiled,
                }))
            }
            _ => Err(self.unexpected(t, "an object path, EXISTS, NOT EXISTS or '('")),
        }
    }

    /// `type:first(.key | [n] | [*])*`; also returns the last step's raw key text (unescaped,
    /// quotes kept as in the reference validator's processing) when it is a key.
    fn object_path(&mut self) -> PResult<(ObjectPath, Option<String>)> {
        let ty = self.next();
        if !matches!(ty.kind, Tok::IdentNoHyphen | Tok::IdentHyphen) {
            return Err(self.unexpected(ty, "an object type"));
        }
        self.expect(Tok::Colon, "':' after the object type")?;
        let first = self.next();
        let key = match first.kind {
            Tok::IdentNoHyphen => self.text(first).to_string(),
            Tok::Str => unescape(self.text(first)),
            _ => return Err(self.unexpected(first, "a property name")),
        };
        let mut steps = vec![PathStep::Key(key)];
        loop {
            match self.peek().kind {
                Tok::Dot => {
                    self.next();
                    let k = self.next();
                    let key = match k.kind {
                        Tok::IdentNoHyphen => self.text(k).to_string(),
                        Tok::Str => unescape(self.text(k)),
                        _ => return Err(self.unexpected(k, "a property name after '.'")),
                    };
                    steps.push(PathStep::Key(key));
                }
                Tok::LBrack => {
                    self.next();
                    let i = self.next();
                    let step = match i.kind {
                        Tok::Asterisk => PathStep::AnyIndex,
                        Tok::IntPos | Tok::IntNeg => PathStep::Index(
                            self.text(i)
                                .trim_start_matches('+')
                                .parse::<i64>()
                                .unwrap_or(i64::MAX),
                        ),
                        _ => return Err(self.unexpected(i, "a list index or '*'")),
                    };
                    self.expect(Tok::RBrack, "']' after the list index")?;
                    steps.push(step);
                }
                _ => break,
            }
        }
        let last = match steps.last() {
            Some(PathStep::Key(k)) => Some(k.clone()),
            _ => None,
        };
        Ok((
            ObjectPath {
                object_type: self.text(ty).to_string(),
                steps,
            },
            last,
        ))
    }

    fn set_literal(&mut self) -> PResult<(Operand, String)> {
        let open = self.expect(Tok::LParen, "'(' to open the set")?;
        let mut items = Vec::new();
        let mut text = String::from("(");
        if self.peek().kind == Tok::RParen {
            self.next();
        } else {
            loop {
                let v = self.next();
                items.push(self.literal(v, true)?);
                text.push_str(self.text(v));
                let sep = self.next();
                match sep.kind {
                    Tok::Comma => text.push(','),
                    Tok::RParen => break,
                    _ => return Err(self.unexpected(sep, "',' or ')' in the set")),
                }
            }
        }
        text.push(')');
        let _ = open;
        Ok((Operand::Set(items), text))
    }

    fn literal(&self, t: Token, allow_bool: bool) -> PResult<Literal> {
        let text = self.text(t);
        Ok(match t.kind {
            Tok::IntPos | Tok::IntNeg => {
                let s = text.trim_start_matches('+');
                match s.parse::<i64>() {
                    Ok(n) => Literal::Int(n),
                    Err(_) => Literal::Float(s.parse::<f64>().unwrap_or(f64::NAN)),
                }
            }
            Tok::FloatPos | Tok::FloatNeg => Literal::Float(
                text.trim_start_matches('+')
                    .parse::<f64>()
                    .unwrap_or(f64::NAN),
            ),
            Tok::Str => Literal::String(unescape(text)),
            Tok::Bool if allow_bool => Literal::Bool(text == "true"),
            Tok::Binary => {
                let body = &text[2..text.len() - 1];
                let bytes = BASE64.decode(body).map_err(|e| {
                    PatternError::new(t.column, format!("invalid base64 in {text}: {e}"))
                })?;
                Literal::Binary(bytes)
            }
            Tok::Hex => {
                let body = &text[2..text.len() - 1];
                let bytes = hex::decode(body).map_err(|e| {
                    PatternError::new(t.column, format!("invalid hex in {text}: {e}"))
                })?;
                Literal::Hex(bytes)
            }
            Tok::Timestamp => Literal::Timestamp(self.timestamp(t)?),
            _ => {
                let what = if allow_bool {
                    "a literal (string, number, boolean, b'…', h'…' or t'…')"
                } else {
                    "an orderable literal (string, number, b'…', h'…' or t'…')"
                };
                return Err(self.unexpected(t, what));
            }
        })
    }

    /// The reference validator's hash-format rule: when a path contains the key `hashes` and ends
    /// in a key naming a known algorithm, the literal text (quotes removed) must be a valid value.
    fn check_hash(&mut self, path: &ObjectPath, last: Option<String>, value: &str, column: usize) {
        if !path
            .steps
            .iter()
            .any(|s| *s == PathStep::Key("hashes".into()))
        {
            return;
        }
        let Some(selector) = last else { return };
        let algo: String = selector
            .to_uppercase()
            .chars()
            .filter(|c| *c != '-' && *c != '\'')
            .collect();
        let v: String = value.chars().filter(|c| *c != '\'').collect();
        if let Some(ok) = hash_value_ok(&algo, &v) {
            if !ok {
                self.semantic.push(PatternError::new(
                    column,
                    format!("'{v}' is not a valid {selector} hash"),
                ));
            }
        }
    }
}

/// Resolve `\'` and `\\` in a quoted string token (quotes included).
fn unescape(token: &str) -> String {
    let body = &token[1..token.len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `^[0-9a-fA-F]{n}$` with Python's `$` (which also matches before a final newline).
fn hex_exact(v: &str, n: usize) -> bool {
    let v = v.strip_suffix('\n').unwrap_or(v);
    v.len() == n && v.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex_prefix(v: &str, n: usize) -> bool {
    v.len() >= n && v.as_bytes()[..n].iter().all(u8::is_ascii_hexdigit)
}

/// Whether `value` is a valid hash for algorithm `algo` (upper case, no hyphens), as
/// stix2-patterns checks it; `None` when the algorithm is not one it checks.
pub(crate) fn hash_value_ok(algo: &str, v: &str) -> Option<bool> {
    Some(match algo {
        "MD5" => hex_exact(v, 32),
        // The reference's MD6 expression only anchors its first and last alternatives.
        "MD6" => hex_prefix(v, 32) || v.strip_prefix("\n    ").is_some_and(|r| hex_prefix(r, 64)),
        "RIPEMD160" | "SHA1" => hex_exact(v, 40),
        "SHA224" | "SHA3224" => hex_exact(v, 56),
        "SHA256" | "SHA3256" => hex_exact(v, 64),
        "SHA384" | "SHA3384" => hex_exact(v, 96),
        "SHA512" | "SHA3512" | "WHIRLPOOL" => hex_exact(v, 128),
        "SSDEEP" => {
            let v = v.strip_suffix('\n').unwrap_or(v);
            let n = v.chars().count();
            (1..=128).contains(&n)
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | ':' | '.'))
        }
        _ => return None,
    })
}
