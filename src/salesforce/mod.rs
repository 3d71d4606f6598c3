//! The Salesforce REST client. It knows nothing of Rhai or rules.

pub mod auth;
pub mod campaign;
pub mod client;
pub mod error;
pub mod id;
pub mod records;
pub mod request;
pub mod soql;

pub use auth::{AuthFlow, Credentials};
pub use client::{ApiUsage, Client, Identity, RetryPolicy};
pub use error::{ApiError, Error};
pub use id::SfId;
pub use records::{Fields, RecordResult, RecordWrite, Saved};
pub use request::ApiRequest;
