//! `rulesforce check`: compile rules and report every error; no network, no credentials.

use std::io::Write;
use std::path::PathBuf;

use crate::rules::RuleSet;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Rule files or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Exit code 0 when everything compiles, 1 when anything does not.
pub fn run(args: &CheckArgs, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<u8> {
    match RuleSet::check(&args.paths) {
        Ok(rules) => {
            writeln!(
                out,
                "ok: {rules} rule{} compiled",
                if rules == 1 { "" } else { "s" }
            )?;
            Ok(0)
        }
        Err(errors) => {
            for error in &errors {
                writeln!(err, "{error}")?;
            }
            writeln!(
                err,
                "{} error{}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            )?;
            Ok(1)
        }
    }
}
