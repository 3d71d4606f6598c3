//! Everything Rhai: the engine and its sandbox, the module resolver, the script API and
//! the per-evaluation state it runs against.

mod api;
pub mod engine;
pub mod error;
pub mod host;
pub mod resolver;

pub use engine::{InFlight, Limits};
pub use error::ScriptError;
pub use host::{Frame, Host, WriteMode};
