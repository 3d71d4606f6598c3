//! Whether REPL input is unfinished (an open bracket, an unterminated string, a trailing
//! operator), decided by Rhai's own parser: input is unfinished when the parser ran out
//! of it, that is, its error lies past the last character.

use rhai::{Engine, LexError, ParseErrorType};

/// Lines gathered until they make a complete input.
#[derive(Default)]
pub struct PendingInput {
    text: String,
}

impl PendingInput {
    /// Adds a line; returns the whole input once it is complete.
    pub fn push(&mut self, engine: &Engine, line: &str) -> Option<String> {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(line);
        if is_incomplete(engine, &self.text) {
            None
        } else {
            Some(std::mem::take(&mut self.text))
        }
    }

    /// Whatever was gathered, complete or not (end of input).
    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

pub fn is_incomplete(engine: &Engine, input: &str) -> bool {
    if input.trim().is_empty() || input.trim_start().starts_with(':') {
        return false;
    }
    let Err(err) = engine.compile(input) else {
        return false;
    };
    if matches!(
        err.err_type(),
        ParseErrorType::BadInput(LexError::UnterminatedString)
    ) {
        return true;
    }
    let (Some(line), Some(column)) = (err.position().line(), err.position().position()) else {
        return matches!(err.err_type(), ParseErrorType::UnexpectedEOF);
    };
    let lines: Vec<&str> = input.split('\n').collect();
    let last = lines.len();
    let last_len = lines.last().map_or(0, |l| l.chars().count());
    line > last
        || (line == last && column > last_len)
        || matches!(err.err_type(), ParseErrorType::UnexpectedEOF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_strings_and_trailing_operators_are_unfinished() {
        let engine = Engine::new();
        for unfinished in [
            "fn f() {",
            "foo(1,",
            "[1, 2",
            "\"abc",
            "1 +",
            "let x = ",
            "#{a: 1",
            "if x {\n  1",
            "`tmpl",
        ] {
            assert!(is_incomplete(&engine, unfinished), "{unfinished:?}");
        }
        for finished in [
            "fn f() { 1 }",
            "let x = ;",
            "foo(1))",
            "1 +* 2",
            "",
            ":help",
            "let x = 1;",
        ] {
            assert!(!is_incomplete(&engine, finished), "{finished:?}");
        }
    }
}
