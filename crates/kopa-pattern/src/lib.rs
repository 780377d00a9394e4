//! Kopa's STIX 2.1 patterning engine: parser, validator and evaluator (no I/O).
//!
//! - [`parse`] turns a pattern into a [`Pattern`] (the AST in [`ast`]) or a [`PatternError`] with
//!   a 1-based column; it accepts exactly the OASIS STIX 2.1 grammar.
//! - [`validate`] also applies the rules of the OASIS validator `stix2-patterns` 2.1.2 (hash
//!   formats, duplicate qualifiers), so its verdicts equal that tool's.
//! - [`Pattern::matches`] evaluates a pattern over [`Observation`]s with the full semantics of
//!   STIX 2.1 §9 (conformance level 3) and returns the binding, or [`Outcome::TooComplex`] when
//!   the search exceeds its step budget. [`Pattern::matches_one`] is the cheap check of one
//!   observation for patterns of a single `[ … ]` without qualifiers.
//!
//! ```
//! use kopa_pattern::{validate, Observation, Outcome};
//! let p = validate("[domain-name:value = 'evil.example'] FOLLOWEDBY [ipv4-addr:value = '203.0.113.7']").unwrap();
//! let objects = serde_json::json!([
//!   {"type": "observed-data", "id": "observed-data--a", "first_observed": "2024-01-01T00:00:00Z",
//!    "last_observed": "2024-01-01T00:00:00Z", "number_observed": 1, "object_refs": ["domain-name--1"]},
//!   {"type": "domain-name", "id": "domain-name--1", "value": "evil.example"},
//!   {"type": "observed-data", "id": "observed-data--b", "first_observed": "2024-01-01T00:01:00Z",
//!    "last_observed": "2024-01-01T00:01:00Z", "number_observed": 1, "object_refs": ["ipv4-addr--1"]},
//!   {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "203.0.113.7"}
//! ]);
//! let obs = Observation::from_json(&objects).unwrap();
//! assert_eq!(p.matches(&obs), Outcome::Match(vec![0, 1]));
//! ```

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod ast;
mod error;
mod eval;
mod lexer;
mod observation;
mod parser;
mod timestamp;

pub use ast::{
    Comparison, ComparisonExpr, Literal, ObjectPath, ObservationExpr, Operand, Operator, PathStep,
    Pattern, Qualifier,
};
pub use error::{ObservationError, PatternError};
pub use eval::{Outcome, DEFAULT_BUDGET};
pub use observation::Observation;
pub use parser::{parse, validate, MAX_DEPTH};
pub use timestamp::Timestamp;

pub mod input;
pub mod matcher;
