//! Black-box tests of `minder check`: the real binary on the shipped example configs
//! (so they cannot rot) and on a broken file (exit 2, every error with FILE:LINE:COL).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn minder_check(config: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_minder"))
        .arg("check")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn minder");
    // No reaper runs in this test process, so waiting here steals nothing.
    #[allow(clippy::disallowed_methods)]
    child.wait_with_output().expect("wait for minder check")
}

fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read config/")
        .map(|entry| entry.expect("config/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_config_passes_check() {
    let files = example_configs();
    assert!(
        files.iter().any(|path| path.ends_with("example.toml")),
        "config/example.toml is missing: {files:?}"
    );
    assert!(files.iter().any(|path| path.ends_with("sidecars.toml")));
    for path in files {
        let output = minder_check(&path);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.starts_with("root: "), "{stdout}");
        assert!(stdout.contains("\n  service "), "{stdout}");
    }
}

#[test]
fn example_shows_the_resolved_tree() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let output = minder_check(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "  service setup\n",
        "  group workers: rest_for_one, intensity 3 per 10s\n",
        "    service worker.0 (instance 0 of worker)\n",
        "    service worker.1 (instance 1 of worker)\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn a_bad_file_exits_2_and_lists_every_error_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[root]\n\
         strategy = \"one_for_al\"\n\
         [service.web]\n\
         command = \"x\"\n\
         restart = \"alwayz\"\n\
         watchdog = \"30s\"\n",
    )
    .expect("write bad.toml");
    let output = minder_check(&path);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "nothing is rendered for a bad file"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors[0].starts_with(&format!("error: {file}:2:12: `root.strategy`")),
        "{stderr}"
    );
    assert!(
        errors[0].contains("did you mean \"one_for_all\"?"),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(&format!("error: {file}:5:11: `service.web.restart`")),
        "{stderr}"
    );
    assert!(errors[1].contains("did you mean \"always\"?"), "{stderr}");
    assert!(
        errors[2].starts_with(&format!(
            "error: {file}:6:1: `service.web.watchdog`: a watchdog needs `ready.notify = true`"
        )),
        "{stderr}"
    );
}

#[test]
fn a_syntax_error_exits_2_with_a_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("syntax.toml");
    std::fs::write(&path, "[service.web\ncommand = \"x\"\n").expect("write syntax.toml");
    let output = minder_check(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: {}:1:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("TOML syntax error"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2() {
    let output = minder_check(Path::new("/nonexistent/minder.toml"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}
