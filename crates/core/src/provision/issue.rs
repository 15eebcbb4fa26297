//! [`Issue`]: one validation finding that names its file, CSV line (when there is one) and
//! field. Validation collects them all before anything is written.

use std::fmt;

use serde::Serialize;

/// One validation problem. `line` is set for CSV rows (1-based, the header is line 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub file: String,
    pub line: Option<u64>,
    pub field: String,
    pub message: String,
}

impl Issue {
    pub fn new(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Issue {
        Issue {
            file: file.into(),
            line: None,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at_line(
        file: impl Into<String>,
        line: u64,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Issue {
        Issue {
            file: file.into(),
            line: Some(line),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} line {}", self.file, l)?,
            None => write!(f, "{}", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, ", {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}
