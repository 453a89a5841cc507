//! Config loading: TOML text → table tree with positions → validated `spec::Spec`.
//!
//! Owns parsing and validation and every error message about a config file. Reads the
//! file it is given and nothing else (env files are read at spawn time, paths are not
//! checked for existence: the file may be checked on another machine), and only if it
//! is a regular file of at most `file::CONFIG_LIMIT` bytes (`file` says why). Never
//! panics on any input, and costs time linear in the size of the file whatever it
//! holds; every problem is collected and reported at once, each with the file, a
//! 1-based line and column, the key, the value found and what was expected. User text
//! in a message is escaped (`values::printable`), so a NUL or an escape sequence in a
//! key cannot garble a terminal. A file with any error yields no `Spec` at all, so a
//! bad file can never half-apply.
//!
//! Layout: `lower` walks the parsed tables (keeping file order by sorting on spans,
//! since the `toml` map is ordered by key) into per-service and per-group records,
//! with `lower::checks` for a service's ready and health tables and its watchdog;
//! `tree` checks names, children, cycles and cross-node rules and assembles the tree;
//! `values` parses scalar forms (durations, sizes, probe addresses); `render` prints a
//! `Spec` for `minder check`; `file` reads a user-named file without blocking (also
//! used for env files).
//! `config/reference.toml` lists every accepted key and form (a test keeps it valid).

mod file;
mod lower;
mod render;
mod tree;
mod values;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::spec::Spec;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use file::{ENV_FILE_LIMIT, read_regular_file};
pub use render::render;
pub use tree::warnings;
pub use values::printable;

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

impl std::error::Error for ConfigError {}

/// Every problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Read and validate the file at `path`. Relative paths inside it resolve against the
/// file's own directory, made absolute here so services do not depend on minder's cwd.
pub fn load(path: &Path) -> Result<Spec, ConfigErrors> {
    let file_name = printable(&path.display().to_string()).into_owned();
    let bytes = read_regular_file(path, file::CONFIG_LIMIT).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            file: file_name.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read config file: {error}"),
        }])
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(error) => {
            // Point at the first bad byte: everything before it is valid UTF-8.
            let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
            let prefix = String::from_utf8_lossy(valid);
            let mut report = Diagnostics::new(&file_name, &prefix);
            report.error(
                &(prefix.len()..prefix.len()),
                "the file is not valid UTF-8".to_string(),
            );
            return Err(report.into_errors());
        }
    };
    load_str(text, &file_name, &config_dir(path))
}

/// The absolute directory of the config file: canonical if it exists, else joined
/// with the current directory, else as given.
fn config_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&dir)
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir)
}

/// Parse and validate config `text` as if read from `file_name` in `base_dir` (which
/// relative paths in the text are joined to; pass an absolute one). No file is read.
pub fn load_str(text: &str, file_name: &str, base_dir: &Path) -> Result<Spec, ConfigErrors> {
    let mut report = Diagnostics::new(file_name, text);
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // Only syntax errors: what the recovering parser made of a broken file would
        // produce follow-on complaints that point at the wrong thing.
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            let message = error
                .message()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            report.error(&span, format!("TOML syntax error: {message}"));
        }
        return Err(report.into_errors());
    }
    let file = lower::lower_document(document.get_ref(), base_dir, &mut report);
    let spec = tree::assemble(file, &mut report);
    match spec {
        Some(spec) if report.errors.is_empty() => Ok(spec),
        _ => Err(report.into_errors()),
    }
}

/// Collects errors, turning byte spans into 1-based line and column.
pub(crate) struct Diagnostics {
    file: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    text: String,
    /// Byte offset and message of each error; positions are worked out once, at the
    /// end, in one pass over the text (`into_errors`).
    errors: Vec<(usize, String)>,
}

impl Diagnostics {
    fn new(file: &str, text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(index, _)| index + 1));
        Diagnostics {
            file: printable(file).into_owned(),
            line_starts,
            text: text.to_string(),
            errors: Vec::new(),
        }
    }

    /// 1-based line of byte `offset`, clamped into the text.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.line_index(offset.min(self.text.len())) + 1
    }

    fn line_index(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|start| *start <= offset)
            .saturating_sub(1)
    }

    /// Records an error at the start of `span`. User text in `message` is escaped here,
    /// once for every message.
    pub(crate) fn error(&mut self, span: &Range<usize>, message: String) {
        let message = match printable(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        self.errors.push((span.start.min(self.text.len()), message));
    }

    /// The errors in file order, so a reader can fix them top to bottom, each with its
    /// 1-based line and column (in chars). Sorted first, so the columns are counted
    /// in one sweep: a file of one long line with an error at every word costs no more
    /// than reading it.
    fn into_errors(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|(offset, _)| *offset);
        let mut errors = Vec::with_capacity(self.errors.len());
        // Where the last count stopped: its line, byte offset and column.
        let mut line_index = usize::MAX;
        let mut counted_to = 0;
        let mut column = 0;
        for (offset, message) in std::mem::take(&mut self.errors) {
            let index = self.line_index(offset);
            if index != line_index {
                line_index = index;
                counted_to = self.line_starts.get(index).copied().unwrap_or(0);
                column = 0;
            }
            column += self
                .text
                .get(counted_to..offset)
                .map_or(0, |between| between.chars().count());
            counted_to = offset;
            errors.push(ConfigError {
                file: self.file.clone(),
                line: index + 1,
                column: column + 1,
                message,
            });
        }
        ConfigErrors(errors)
    }
}
