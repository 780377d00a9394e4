//! Errors of the patterning engine.

use thiserror::Error;

/// Why a pattern is not valid: a message and the 1-based character column where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("column {column}: {message}")]
pub struct PatternError {
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl PatternError {
    pub(crate) fn new(column: usize, message: impl Into<String>) -> Self {
        PatternError {
            column,
            message: message.into(),
        }
    }

    /// 1-based character column of the problem.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why observed-data could not be turned into an [`crate::Observation`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ObservationError {
    /// A required property is absent or has the wrong JSON type.
    #[error("{id}: property '{property}' is missing or not {expected}")]
    Property {
        /// The observed-data id (or "?" when it has none).
        id: String,
        /// The property.
        property: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// A timestamp property does not parse.
    #[error("{id}: property '{property}' is not a STIX timestamp: {value}")]
    Timestamp {
        /// The observed-data id.
        id: String,
        /// The property.
        property: &'static str,
        /// The offending value.
        value: String,
    },
    /// The input is not a bundle or list of objects.
    #[error("not a STIX bundle, object list or observed-data object")]
    NotABundle,
}
