//! The committed man page (`man/minderctl.1`) and shell completions (`completions/`)
//! are what `minderctl generate` makes from the current command line: a change to the
//! CLI that forgets to regenerate them fails here. With `UPDATE_EXPECT=1` (as for the
//! snapshot tests) the test rewrites them instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MINDERCTL: &str = env!("CARGO_BIN_EXE_minderctl");

/// Each generated file: where it is committed, and the `minderctl generate` arguments
/// that make it (the output directory is appended).
const GENERATED: &[(&str, &[&str])] = &[
    ("man/minderctl.1", &["generate", "man"]),
    (
        "completions/minderctl.bash",
        &["generate", "completions", "bash"],
    ),
    (
        "completions/_minderctl",
        &["generate", "completions", "zsh"],
    ),
    (
        "completions/minderctl.fish",
        &["generate", "completions", "fish"],
    ),
];

fn generate(args: &[&str], dir: &Path) -> PathBuf {
    // `output` would be banned by clippy.toml (only minder's reaper may wait inside
    // minder); a test process waiting for its own child steals nothing.
    #[allow(clippy::disallowed_methods)]
    let output = Command::new(MINDERCTL)
        .args(args)
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run minderctl generate");
    assert!(output.status.success(), "minderctl {args:?}: {output:?}");
    // minderctl prints the path of the file it wrote.
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8").trim())
}

#[test]
fn the_committed_man_page_and_completions_are_up_to_date() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().expect("temporary directory");
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|value| value == "1");
    let mut stale = Vec::new();
    for (committed, args) in GENERATED {
        let written = generate(args, scratch.path());
        let committed_path = repo.join(committed);
        assert_eq!(
            written.file_name(),
            committed_path.file_name(),
            "minderctl {args:?} wrote {} where {committed} is expected",
            written.display()
        );
        let fresh = std::fs::read(&written).expect("read the generated file");
        assert!(!fresh.is_empty(), "minderctl {args:?} wrote an empty file");
        if std::fs::read(&committed_path).ok().as_deref() != Some(fresh.as_slice()) {
            if update {
                std::fs::write(&committed_path, &fresh).expect("rewrite the committed file");
            } else {
                stale.push(*committed);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date with the command line: {stale:?}; regenerate them with \
         `UPDATE_EXPECT=1 cargo nextest run -E 'test(the_committed_man_page)'`"
    );
}

#[test]
fn the_man_page_documents_every_command_and_the_exit_codes() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/minderctl.1"))
            .expect("read man/minderctl.1");
    for command in [
        "status", "start", "stop", "restart", "signal", "logs", "events", "reload", "shutdown",
    ] {
        assert!(
            page.lines()
                .any(|line| line.starts_with(&format!("\\fB{command}\\fR"))),
            "no entry for {command} in COMMANDS"
        );
    }
    assert!(
        page.contains(".SH \"EXIT STATUS\""),
        "no EXIT STATUS section"
    );
    for code in ["0", "1", "2", "3"] {
        assert!(
            page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit code {code} is not documented"
        );
    }
    // The hidden packaging helper is not part of the documented interface.
    assert!(
        !page.contains("generate"),
        "the man page mentions `generate`"
    );
}
