//! One module per subcommand; `main.rs` parses arguments and calls these.

pub mod check;
pub mod connection;
pub mod emulator;
pub mod login;
pub mod repl;
pub mod run;
pub mod status;
pub mod watch;
