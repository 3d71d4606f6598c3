//! Line editing for the REPL: Tab completion of the API, the session's names and the
//! `:` commands. Unfinished input is detected by [`super::input::is_incomplete`]; the
//! REPL then reads the next line under a `...` prompt (rustyline's own multi-line mode
//! has no continuation prompt).

use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

#[derive(Default, Clone)]
pub struct ReplHelper {
    /// Refreshed by the REPL after every line.
    pub names: Arc<Mutex<Vec<String>>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let candidates = names
            .iter()
            .filter(|name| name.starts_with(word) && name.as_str() != word)
            .map(|name| Pair {
                display: name.clone(),
                replacement: name.clone(),
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}
