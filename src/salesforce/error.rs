//! Typed Salesforce errors: what the API said (errorCode, message, fields), what the
//! OAuth endpoint said, and what went wrong before an answer arrived.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One entry of Salesforce's error array. The REST API names the code `errorCode`;
/// sObject Collections name it `statusCode`: both are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    #[serde(rename = "errorCode", alias = "statusCode")]
    pub error_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(error_code: &str, message: impl Into<String>) -> Self {
        ApiError {
            error_code: error_code.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// Errors that may go away if the same request is sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.error_code.as_str(),
            "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE"
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code, self.message)?;
        if !self.fields.is_empty() {
            write!(f, " (fields: {})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings are missing or contradict each other; nothing was sent.
    #[error("{0}")]
    Config(String),

    /// The OAuth token endpoint refused to log in.
    #[error("login failed: {error}: {description}{}", hint.as_deref().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Auth {
        error: String,
        description: String,
        hint: Option<String>,
    },

    /// The REST API answered with an error array.
    #[error("Salesforce answered {status}: {}", join_errors(errors))]
    Api { status: u16, errors: Vec<ApiError> },

    /// The access token was rejected and the configured flow cannot get a new one.
    #[error("{0}")]
    SessionExpired(String),

    /// No answer: connection refused, reset, timed out.
    #[error("could not reach Salesforce: {0}")]
    Transport(String),

    /// An answer that is not what the API documents.
    #[error("unexpected answer from Salesforce: {0}")]
    Decode(String),

    /// A retryable failure that kept failing until the retry budget ran out.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<Error> },
}

fn join_errors(errors: &[ApiError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The first Salesforce error code, if Salesforce answered with one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::Api { errors, .. } => errors.first().map(|e| e.error_code.as_str()),
            Error::RetriesExhausted { last, .. } => last.error_code(),
            _ => None,
        }
    }

    /// Whether sending the same request later could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Api { status, errors } => {
                matches!(status, 429 | 502 | 503 | 504) || errors.iter().any(ApiError::is_retryable)
            }
            _ => false,
        }
    }

    pub(crate) fn transport(err: reqwest::Error) -> Error {
        // reqwest's message names the URL, never a header, so no token can leak here;
        // the cause ("connection refused") is in the source chain.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::Transport(message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
