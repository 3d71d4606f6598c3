//! Script errors as people read them: `file:line:col: message`, then the line and a caret.

use std::fmt;
use std::path::{Path, PathBuf};

use rhai::{EvalAltResult, ParseError, Position};

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line, for the caret display.
    pub source_line: Option<String>,
}

impl ScriptError {
    /// An error at a position; the line for the caret display is attached afterwards
    /// from the text that was compiled ([`Self::with_source_text`]), not read again.
    pub fn new(file: &Path, position: Position, message: impl Into<String>) -> ScriptError {
        ScriptError {
            file: file.to_path_buf(),
            line: position.line().unwrap_or(0),
            column: position.position().unwrap_or(0),
            message: message.into(),
            source_line: None,
        }
    }

    /// The same error, its source line taken from `text`: the script as it was compiled.
    pub fn with_source_text(mut self, text: &str) -> ScriptError {
        self.source_line = (self.line > 0)
            .then(|| text.lines().nth(self.line - 1).map(str::to_owned))
            .flatten();
        self
    }

    /// An error about a whole file (or the command line), with no position in it.
    pub fn without_position(file: &Path, message: impl Into<String>) -> ScriptError {
        ScriptError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: None,
        }
    }

    pub fn from_parse(file: &Path, err: &ParseError) -> ScriptError {
        ScriptError::new(file, err.position(), err.err_type().to_string())
    }

    /// Finds the innermost position of a runtime error, and the file it is in (errors
    /// inside functions and modules are nested).
    pub fn from_eval(file: &Path, err: &EvalAltResult) -> ScriptError {
        let mut file = file.to_path_buf();
        let mut current = err;
        let mut position = err.position();
        while let EvalAltResult::ErrorInFunctionCall(_, source, inner, pos)
        | EvalAltResult::ErrorInModule(source, inner, pos) = current
        {
            if !source.is_empty() {
                file = PathBuf::from(source.as_str());
            }
            position = if inner.position().is_none() {
                *pos
            } else {
                inner.position()
            };
            current = inner;
        }
        // Rhai's message ends with " (line L, position C)"; the position is given apart.
        let message = current.to_string();
        let message = match message.rfind(" (line ") {
            Some(at) if message.ends_with(')') => message[..at].to_string(),
            _ => message,
        };
        ScriptError::new(&file, position, message)
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file.display(), self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(line) = &self.source_line {
            let caret = " ".repeat(self.column.saturating_sub(1));
            write!(f, "\n  {line}\n  {caret}^")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScriptError {}
