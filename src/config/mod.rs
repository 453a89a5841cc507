//! Config loading: TOML text → raw tree with positions → validated `spec::Spec`.
//!
//! Owns parsing and validation and every error message about a config file. Reads the
//! file it is given and nothing else (env files are read at spawn time). Never panics on
//! any input; every problem is collected and reported at once.

use crate::spec::Spec;
use std::path::Path;

/// One problem in a config file, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem has no position (the file could not be read).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Every problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Read and validate the file at `path`.
pub fn load(path: &Path) -> Result<Spec, ConfigErrors> {
    let _ = path;
    Err(ConfigErrors(vec![]))
}

/// The resolved tree as `minder check` prints it.
pub fn render(spec: &Spec) -> String {
    format!("{spec:?}\n")
}
