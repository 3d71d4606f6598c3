//! rulesforce: Rhai rule scripts that drive Salesforce campaigns from product data.

pub mod actions;
pub mod commands;
pub mod config;
pub mod counters;
pub mod daemon;
pub mod dispatch;
pub mod emulator;
pub mod repl;
pub mod rules;
pub mod salesforce;
pub mod script;
pub mod secret;
pub mod store;
pub mod template;

/// Exit code for a failed command: 2 for settings and input the user must fix, 1 for
/// everything else (Salesforce refused, could not be reached, an action failed).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<salesforce::Error>() {
        Some(salesforce::Error::Config(_)) => 2,
        Some(_) => 1,
        None => 2,
    }
}
