//! Property tests: no input, however mangled, makes loading panic, and every error it
//! reports has a real position. Inputs are the shipped example files with random byte
//! edits, and random TOML-ish text built from the config's own vocabulary.
//! `reference.toml` is among the seeds because it uses every key, so mangling it
//! reaches every rule (the ready and health tables and their probes included).

use super::load_str;
use super::values::{
    MAX_DURATION, duration, format_duration, format_size, http_url, printable, quote_word, size,
    split_command, tcp_address,
};
use proptest::prelude::*;
use std::path::Path;

const EXAMPLES: &[&str] = &[
    include_str!("../../config/example.toml"),
    include_str!("../../config/sidecars.toml"),
    include_str!("../../config/reference.toml"),
];

/// Loads `text` and checks the invariants every outcome must keep.
fn check(text: &str) -> Result<(), TestCaseError> {
    let line_count = text.lines().count().max(1);
    if let Err(errors) = load_str(text, "fuzz.toml", Path::new("/etc/minder")) {
        prop_assert!(!errors.0.is_empty(), "an Err must carry at least one error");
        for error in &errors.0 {
            prop_assert!(error.line >= 1, "no line: {error}");
            prop_assert!(error.column >= 1, "no column: {error}");
            // A position one past the last line is allowed for "unexpected end of file".
            prop_assert!(error.line <= line_count + 1, "line past the end: {error}");
            prop_assert!(!error.message.is_empty());
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes a config is made of, plus a few that break UTF-8-free assumptions.
    let byte = prop_oneof![
        Just(b'"'),
        Just(b'\''),
        Just(b'['),
        Just(b']'),
        Just(b'{'),
        Just(b'}'),
        Just(b'='),
        Just(b','),
        Just(b'.'),
        Just(b'\n'),
        Just(b'\\'),
        Just(b'#'),
        Just(b'-'),
        b'0'..=b'9',
        b'a'..=b'z',
        Just(b' '),
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Replace(at, b)),
    ]
}

fn mangle(source: &str, edits: &[Edit]) -> String {
    let mut bytes = source.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Delete(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            Edit::Delete(_) => {}
            Edit::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Edit::Replace(at, byte) => {
                if let Some(slot) = bytes.get_mut(at % len) {
                    *slot = byte;
                }
            }
        }
    }
    // Edits are ASCII, so only a cut through a multi-byte char can break UTF-8; `load`
    // reports that separately, so test what the parser sees.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One line of TOML-ish text made of the config's keys and values.
fn toml_line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("command"),
        Just("restart"),
        Just("children"),
        Just("strategy"),
        Just("intensity"),
        Just("period"),
        Just("auto_shutdown"),
        Just("significant"),
        Just("oneshot"),
        Just("instances"),
        Just("backoff"),
        Just("rlimits"),
        Just("env"),
        Just("umask"),
        Just("stop_signal"),
        Just("stop_timeout"),
        Just("success_codes"),
        Just("success_signals"),
        Just("working_dir"),
        Just("ready"),
        Just("health"),
        Just("watchdog"),
        Just("tcp"),
        Just("http"),
        Just("exec"),
        Just("notify"),
        Just("fd"),
        Just("interval"),
        Just("timeout"),
        Just("deadline"),
        Just("start_period"),
        Just("failures"),
        Just("max_memory"),
        Just("a"),
        Just("b"),
    ];
    let value = prop_oneof![
        Just("\"a\"".to_string()),
        Just("\"b\"".to_string()),
        Just("[\"a\", \"b\"]".to_string()),
        Just("[\"a\"]".to_string()),
        Just("[]".to_string()),
        Just("true".to_string()),
        Just("\"10s\"".to_string()),
        Just("\"one_for_all\"".to_string()),
        Just("\"transient\"".to_string()),
        Just("\"any_significant\"".to_string()),
        Just("{ jitter = 2.0 }".to_string()),
        Just("{ nofile = { soft = 2, hard = 1 } }".to_string()),
        Just("\"sh -c 'x\"".to_string()),
        Just("0o777".to_string()),
        Just("\"127.0.0.1:80\"".to_string()),
        Just("\"[::1]:0\"".to_string()),
        Just("\"http://[::1]:8080/x?y=%20\"".to_string()),
        Just("\"https://h\"".to_string()),
        Just("\"512MiB\"".to_string()),
        Just("\"18446744073709551615TiB\"".to_string()),
        Just("{ notify = true }".to_string()),
        Just("{ tcp = \"a:1\", fd = 3 }".to_string()),
        Just("{ max_memory = 1 }".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    let header = prop_oneof![
        Just("[root]"),
        Just("[daemon]"),
        Just("[group.a]"),
        Just("[group.b]"),
        Just("[service.a]"),
        Just("[service.b]"),
        Just("[service.c]"),
        Just("[[service]]"),
        Just("[service.a.ready]"),
        Just("[service.a.health]"),
        Just("[service.b.ready]"),
    ];
    prop_oneof![
        header.prop_map(str::to_string),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        "[ -~]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mangled_examples_never_panic(
        which in 0..EXAMPLES.len(),
        edits in proptest::collection::vec(edit(), 1..12),
    ) {
        let source = EXAMPLES.get(which).copied().unwrap_or_default();
        check(&mangle(source, &edits))?;
    }

    #[test]
    fn toml_ish_text_never_panics(lines in proptest::collection::vec(toml_line(), 0..30)) {
        check(&lines.join("\n"))?;
    }

    /// `render` prints commands with `quote_word`; reading them back must give the
    /// same argv, or the printed tree would lie about what runs.
    #[test]
    fn quoted_words_split_back_unchanged(argv in proptest::collection::vec("[ -~é]{0,12}", 1..6)) {
        let rendered: Vec<String> = argv.iter().map(|word| quote_word(word)).collect();
        prop_assert_eq!(split_command(&rendered.join(" ")), Ok(argv));
    }

    /// The probe and size parsers take any string a file can hold.
    #[test]
    fn probe_and_size_parsers_never_panic(
        text in "\\PC{0,40}",
        url_tail in "[\\[\\]:/%@#?.a-f0-9 é]{0,24}",
    ) {
        let _ = (tcp_address(&text), http_url(&text), size(&text));
        let _ = (tcp_address(&url_tail), http_url(&format!("http://{url_tail}")), size(&url_tail));
    }

    /// `render` prints `max_memory` with `format_size`; it must read back the same.
    #[test]
    fn rendered_sizes_parse_back_unchanged(bytes in 1..u64::MAX) {
        prop_assert_eq!(size(&format_size(bytes)), Ok(bytes));
    }

    /// `render` prints durations with `format_duration`; they must read back the same.
    #[test]
    fn rendered_durations_parse_back_unchanged(nanos in 0..=MAX_DURATION.as_nanos()) {
        let value = std::time::Duration::new(
            u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX),
            u32::try_from(nanos % 1_000_000_000).unwrap_or(0),
        );
        prop_assert_eq!(duration(&format_duration(value)), Ok(value));
    }

    /// The duration parser takes any string; what it accepts is within the cap, and what
    /// it refuses names the accepted units.
    #[test]
    fn the_duration_parser_never_panics(text in "[0-9. a-zA-Zµ]{0,16}|\\PC{0,24}") {
        match duration(&text) {
            Ok(value) => prop_assert!(value <= MAX_DURATION),
            Err(message) => prop_assert!(
                message.contains("units ns, us, ms") || message.contains("at most 10 years"),
                "{}", message
            ),
        }
    }

    /// Escaped text holds no control character and keeps every other one.
    #[test]
    fn printable_text_has_no_control_character(text in "\\PC{0,40}|[\\x00-\\x1f\\x7f a-z\u{202e}]{0,20}") {
        let shown = printable(&text);
        prop_assert!(!shown.chars().any(char::is_control), "{:?}", shown);
        if !text.chars().any(|c| c.is_control() || ('\u{2000}'..='\u{2100}').contains(&c) || c == '\u{feff}') {
            prop_assert_eq!(shown.as_ref(), text.as_str());
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text)?;
    }
}

#[test]
fn the_shipped_examples_are_valid() {
    for source in EXAMPLES {
        let result = load_str(source, "example.toml", Path::new("/etc/minder"));
        assert!(
            result.is_ok(),
            "{}",
            result.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }
}
