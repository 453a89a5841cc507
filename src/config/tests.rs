//! Unit tests of config loading: one test per kind of mistake, each pinning the exact
//! `line:column` and the words of the message, plus the lowering of valid files and a
//! snapshot of `render`.

use super::values::{format_size, size, split_command};
use super::{ConfigErrors, load_str};
use crate::spec::{
    AutoShutdown, BackoffSpec, ControlSocket, HealthSpec, LogFormat, LogOverflow, NodeSpec, Probe,
    ReadyCheck, ReadySpec, RestartType, Rlimit, RlimitResource, ServiceSpec, Spec, Strategy,
};
use expect_test::expect;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BASE: &str = "/etc/minder";

/// Test texts start with a newline so they read well; drop it so line 1 is the first
/// line written.
fn text(source: &str) -> &str {
    source.strip_prefix('\n').unwrap_or(source)
}

fn load(source: &str) -> Result<Spec, ConfigErrors> {
    load_str(text(source), "test.toml", Path::new(BASE))
}

fn ok(source: &str) -> Spec {
    match load(source) {
        Ok(spec) => spec,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

/// Every error as `LINE:COL: message`.
fn errors(source: &str) -> Vec<String> {
    match load(source) {
        Ok(spec) => panic!("expected errors, got a valid spec: {spec:?}"),
        Err(errors) => errors
            .0
            .iter()
            .map(|error| {
                assert_eq!(error.file, "test.toml");
                format!("{}:{}: {}", error.line, error.column, error.message)
            })
            .collect(),
    }
}

/// Asserts exactly one error, at `position`, whose message contains every fragment.
#[track_caller]
fn single_error(source: &str, position: &str, fragments: &[&str]) {
    let errors = errors(source);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let error = &errors[0];
    assert!(
        error.starts_with(&format!("{position}: ")),
        "expected the error at {position}, got {error}"
    );
    for fragment in fragments {
        assert!(error.contains(fragment), "{error:?} lacks {fragment:?}");
    }
}

fn services(spec: &Spec) -> Vec<&ServiceSpec> {
    fn walk<'a>(nodes: &'a [NodeSpec], out: &mut Vec<&'a ServiceSpec>) {
        for node in nodes {
            match node {
                NodeSpec::Service(service) => out.push(service),
                NodeSpec::Group(group) => walk(&group.children, out),
            }
        }
    }
    let mut out = Vec::new();
    walk(&spec.root.children, &mut out);
    out
}

fn names(nodes: &[NodeSpec]) -> Vec<&str> {
    nodes.iter().map(NodeSpec::name).collect()
}

// ---- valid files ----

#[test]
fn a_minimal_service_gets_every_default() {
    let spec = ok(r#"
[service.web]
command = "./web --port 8080"
"#);
    let expected = ServiceSpec::new(
        "web",
        vec!["./web".into(), "--port".into(), "8080".into()],
        PathBuf::from(BASE),
    );
    assert_eq!(spec.root.children, vec![NodeSpec::Service(expected)]);
    assert_eq!(spec.root.strategy, Strategy::OneForOne);
    assert_eq!(spec.root.intensity, 5);
    assert_eq!(spec.root.period, Duration::from_secs(30));
    assert_eq!(spec.daemon.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(spec.daemon.log_format, LogFormat::Text);
}

#[test]
fn implicit_root_children_keep_file_order_across_groups_and_services() {
    let spec = ok(r#"
[service.zeta]
command = "z"
[group.middle]
children = ["inner"]
[service.alpha]
command = "a"
[service.inner]
command = "i"
"#);
    assert_eq!(names(&spec.root.children), ["zeta", "middle", "alpha"]);
    let NodeSpec::Group(middle) = &spec.root.children[1] else {
        panic!("middle is a group");
    };
    assert_eq!(names(&middle.children), ["inner"]);
}

#[test]
fn explicit_root_children_set_the_order() {
    let spec = ok(r#"
[root]
children = ["b", "a"]
[service.a]
command = "a"
[service.b]
command = "b"
"#);
    assert_eq!(names(&spec.root.children), ["b", "a"]);
}

#[test]
fn instances_expand_to_consecutive_numbered_siblings() {
    let spec = ok(r#"
[service.first]
command = "f"
[service.worker]
command = "w"
instances = 3
[service.last]
command = "l"
"#);
    assert_eq!(
        names(&spec.root.children),
        ["first", "worker.0", "worker.1", "worker.2", "last"]
    );
    let all = services(&spec);
    assert_eq!(all[2].base_name, "worker");
    assert_eq!(all[2].instance, Some(1));
    assert_eq!(all[0].instance, None);
    assert_eq!(all[0].base_name, "first");
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let spec = ok(r#"
[service.a]
command = ["./run"]
working_dir = "data/a"
env_file = "a.env"
[service.b]
command = ["run"]
working_dir = "/srv/b"
"#);
    let all = services(&spec);
    assert_eq!(all[0].working_dir, Path::new("/etc/minder/data/a"));
    assert_eq!(
        all[0].env_file.as_deref(),
        Some(Path::new("/etc/minder/a.env"))
    );
    assert_eq!(all[1].working_dir, Path::new("/srv/b"));
    assert_eq!(all[1].env_file, None);
}

#[test]
fn value_forms_lower_as_documented() {
    let spec = ok(r#"
[root]
auto_shutdown = "all_significant"
[service.a]
command = "a"
restart = "on-failure"
significant = true
stop_signal = "int"
umask = 0o027
rlimits = { nofile = 1024, core = "unlimited", nproc = { soft = 10, hard = 20 } }
env = { B = "2", A = "1" }
backoff = { initial = "0s", multiplier = 3 }
[service.b]
command = "b"
restart = "never"
stop_signal = 10
success_codes = [0, 3, 3]
"#);
    assert_eq!(spec.root.auto_shutdown, AutoShutdown::AllSignificant);
    let all = services(&spec);
    let a = all[0];
    assert_eq!(a.restart, RestartType::Transient);
    assert_eq!(a.stop_signal, libc::SIGINT);
    assert_eq!(a.umask, Some(0o027));
    assert_eq!(
        a.rlimits,
        vec![
            Rlimit {
                resource: RlimitResource::Nofile,
                soft: 1024,
                hard: 1024
            },
            Rlimit {
                resource: RlimitResource::Core,
                soft: u64::MAX,
                hard: u64::MAX
            },
            Rlimit {
                resource: RlimitResource::Nproc,
                soft: 10,
                hard: 20
            },
        ]
    );
    // env keeps file order, not key order.
    assert_eq!(
        a.env,
        vec![("B".into(), "2".into()), ("A".into(), "1".into())]
    );
    assert_eq!(
        a.backoff,
        BackoffSpec {
            initial: Duration::ZERO,
            multiplier: 3.0,
            ..BackoffSpec::default()
        }
    );
    let b = all[1];
    assert_eq!(b.restart, RestartType::Temporary);
    assert_eq!(b.stop_signal, 10);
    assert_eq!(b.success_codes, vec![0, 3]);
}

#[test]
fn a_oneshot_lowers_to_transient() {
    let spec = ok(r#"
[service.migrate]
command = "migrate"
oneshot = true
"#);
    let all = services(&spec);
    assert!(all[0].oneshot);
    assert_eq!(all[0].restart, RestartType::Transient);
}

#[test]
fn command_strings_split_like_a_shell() {
    let split = |text: &str| split_command(text).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(split("  a  b\tc "), ["a", "b", "c"]);
    assert_eq!(
        split(r#"sh -c 'echo "$HOME"; ls'"#),
        ["sh", "-c", r#"echo "$HOME"; ls"#]
    );
    assert_eq!(
        split(r#"say "a \"b\" \\ c" ''"#),
        ["say", r#"a "b" \ c"#, ""]
    );
    assert_eq!(split(r"one\ word x\\y"), ["one word", r"x\y"]);
    assert_eq!(split(r#"it"'s'"here"#), ["it's'here"]);
    assert_eq!(split(""), Vec::<String>::new());
    assert!(split_command("a | b").unwrap_err().contains("`|`"));
    assert!(split_command("echo $HOME").unwrap_err().contains("`$`"));
    assert!(
        split_command(r#"echo "$HOME""#)
            .unwrap_err()
            .contains("`$`")
    );
    assert!(
        split_command("x\\")
            .unwrap_err()
            .contains("trailing backslash")
    );
    assert!(
        split_command(r#"a "b"#)
            .unwrap_err()
            .contains("unterminated double quote")
    );
}

#[test]
fn rendered_commands_split_back_to_the_same_argv() {
    for argv in [
        vec!["sh", "-c", "echo 'hi'; exit 3"],
        vec!["a b", "", "it's", "plain", "$x"],
        vec!["echo 'hi'", "it's \"$HOME\"", "back\\slash's"],
    ] {
        let rendered: Vec<String> = argv.iter().map(|w| super::values::quote_word(w)).collect();
        assert_eq!(split_command(&rendered.join(" ")).unwrap(), argv);
    }
}

// ---- one test per kind of mistake ----

#[test]
fn syntax_error_has_a_position() {
    single_error(
        r#"
[service.web]
command = "unterminated
"#,
        "2:24",
        &["TOML syntax error", "string"],
    );
}

#[test]
fn unknown_key_suggests_the_closest() {
    single_error(
        r#"
[service.web]
command = "x"
restrat = "always"
"#,
        "3:1",
        &[
            "unknown key `service.web.restrat`",
            "did you mean `restart`?",
        ],
    );
}

#[test]
fn unknown_key_without_a_close_match_lists_the_keys() {
    single_error(
        r#"
[root]
colour = "blue"
"#,
        "2:1",
        &[
            "unknown key `root.colour`",
            "expected one of: strategy, intensity, period, auto_shutdown, children",
        ],
    );
}

#[test]
fn unknown_top_level_table_suggests() {
    single_error(
        r#"
[services.web]
command = "x"
"#,
        "1:2",
        &["unknown key `services`", "did you mean `service`?"],
    );
}

#[test]
fn wrong_type_names_key_expected_and_found() {
    single_error(
        r#"
[root]
intensity = "five"
"#,
        "2:13",
        &[
            "`root.intensity`: expected an integer >= 0",
            "found \"five\"",
        ],
    );
}

#[test]
fn negative_intensity() {
    single_error(
        r#"
[group.g]
children = []
intensity = -3
"#,
        "3:13",
        &["`group.g.intensity`", "found integer -3"],
    );
}

#[test]
fn bad_duration() {
    single_error(
        r#"
[service.web]
command = "x"
stop_timeout = "10"
"#,
        "3:16",
        &[
            "`service.web.stop_timeout`",
            "expected a duration",
            "found \"10\"",
        ],
    );
}

#[test]
fn a_capital_m_is_no_unit_of_duration() {
    single_error(
        r#"
[service.web]
command = "x"
stop_timeout = "1M"
"#,
        "3:16",
        &[
            "`service.web.stop_timeout`: expected a duration like \"250ms\", \"10s\" or \"5m\" (units ns, us, ms, s or sec, m or min, h or hr, d or day, w or week)",
            "\"M\" is not a unit (a month? a minute?): for minutes write \"1m\" or \"1min\"",
            "found \"1M\"",
        ],
    );
}

#[test]
fn months_and_years_are_no_units_of_duration() {
    for (text, unit) in [("1y", "y"), ("1month", "month"), ("2years", "years")] {
        single_error(
            &format!("[daemon]\nshutdown_timeout = \"{text}\"\n"),
            "2:20",
            &[
                "`daemon.shutdown_timeout`: expected a duration",
                &format!(
                    "\"{unit}\" is not a unit: months and years have no fixed length; write days or weeks, like \"30d\" or \"52w\""
                ),
            ],
        );
    }
}

#[test]
fn a_bare_zero_needs_a_unit_too() {
    single_error(
        r#"
[service.web]
command = "x"
backoff = { initial = "0" }
"#,
        "3:23",
        &[
            "`service.web.backoff.initial`: expected a duration",
            "a unit is required after 0, like \"0s\" or \"0ms\"",
            "found \"0\"",
        ],
    );
}

#[test]
fn duration_units_from_elsewhere_get_the_unit_meant() {
    for (text, hint) in [
        (
            "5msec",
            "\"msec\" is not a unit here: did you mean \"5ms\"?",
        ),
        ("2secs", "\"secs\" is not a unit here: did you mean \"2s\"?"),
        ("10µs", "\"µs\" is not a unit here: did you mean \"10us\"?"),
        (
            "3H",
            "unknown unit \"H\" (units are lowercase): did you mean \"3h\"?",
        ),
        ("1.5sek", "unknown unit \"sek\", did you mean \"1.5sec\"?"),
        ("1 0s", "a unit is required after 1, like \"1s\" or \"1ms\""),
        ("-1s", "expected a number where '-' stands"),
        ("1.s", "a decimal point needs digits after it"),
        ("", "found an empty string"),
    ] {
        single_error(
            &format!("[daemon]\nshutdown_timeout = \"{text}\"\n"),
            "2:20",
            &["`daemon.shutdown_timeout`: expected a duration", hint],
        );
    }
}

#[test]
fn durations_in_every_listed_unit() {
    use super::values::duration;
    let ms = Duration::from_millis;
    for (text, expected) in [
        ("250ms", ms(250)),
        ("1.5s", ms(1500)),
        ("0s", Duration::ZERO),
        ("10 s", ms(10_000)),
        ("1h 30m", ms(5_400_000)),
        ("1h30min", ms(5_400_000)),
        ("2 minutes 3 seconds", ms(123_000)),
        ("1sec", ms(1000)),
        ("1second", ms(1000)),
        ("1hr", ms(3_600_000)),
        ("1hour", ms(3_600_000)),
        ("2hours", ms(7_200_000)),
        ("1d", ms(86_400_000)),
        ("1day", ms(86_400_000)),
        ("2days", ms(172_800_000)),
        ("1w", ms(604_800_000)),
        ("1week", ms(604_800_000)),
        ("2weeks", ms(1_209_600_000)),
        ("1minute", ms(60_000)),
        ("7us", Duration::from_micros(7)),
        ("9ns", Duration::from_nanos(9)),
        ("0.0000000015s", Duration::from_nanos(1)),
        ("3650d", Duration::from_secs(3650 * 86_400)),
    ] {
        assert_eq!(duration(text), Ok(expected), "{text}");
    }
    assert!(duration("3651d").is_err());
}

#[test]
fn rendered_durations_use_only_accepted_units() {
    use super::values::format_duration;
    for (value, text) in [
        (Duration::ZERO, "0s"),
        (Duration::from_millis(1500), "1s 500ms"),
        (Duration::from_secs(90), "1m 30s"),
        (Duration::from_secs(40 * 86_400 + 1), "40d 1s"),
        (Duration::from_nanos(1_001), "1us 1ns"),
    ] {
        assert_eq!(format_duration(value), text);
    }
}

#[test]
fn duration_as_a_bare_number() {
    single_error(
        r#"
[daemon]
shutdown_timeout = 30
"#,
        "2:20",
        &[
            "`daemon.shutdown_timeout`: expected a duration string",
            "found integer 30",
        ],
    );
}

#[test]
fn zero_period() {
    single_error(
        "[root]\nperiod = \"0s\"\n",
        "2:10",
        &["`root.period`", "greater than zero"],
    );
}

#[test]
fn misspelt_strategy_suggests() {
    single_error(
        r#"
[root]
strategy = "one_for_al"
"#,
        "2:12",
        &[
            "`root.strategy`",
            "found \"one_for_al\"",
            "did you mean \"one_for_all\"?",
        ],
    );
}

#[test]
fn misspelt_restart_suggests() {
    single_error(
        r#"
[service.web]
command = "x"
restart = "transiant"
"#,
        "3:11",
        &[
            "`service.web.restart`",
            "\"permanent\"",
            "did you mean \"transient\"?",
        ],
    );
}

#[test]
fn misspelt_log_format_suggests() {
    single_error(
        "[daemon]\nlog_format = \"JSON\"\n",
        "2:14",
        &["did you mean \"json\"?"],
    );
}

#[test]
fn bad_name() {
    single_error(
        r#"
[service.Web]
command = "x"
"#,
        "1:10",
        &["`service.Web`: invalid name \"Web\""],
    );
}

#[test]
fn dotted_name_is_refused() {
    single_error(
        r#"
[service."web.1"]
command = "x"
"#,
        "1:10",
        &["invalid name \"web.1\"", "dots are reserved"],
    );
}

#[test]
fn service_and_group_with_one_name() {
    single_error(
        r#"
[group.db]
children = []
[service.db]
command = "x"
"#,
        "3:10",
        &["the name `db` is already used at line 1"],
    );
}

#[test]
fn duplicate_child() {
    single_error(
        r#"
[group.a]
children = ["web"]
[group.b]
children = ["web"]
[service.web]
command = "x"
"#,
        "4:13",
        &[
            "`group.b.children`",
            "`web` is already listed as a child in `group.a.children` (line 2)",
        ],
    );
}

#[test]
fn cycle() {
    single_error(
        r#"
[group.a]
children = ["b"]
[group.b]
children = ["a"]
"#,
        "4:13",
        &["`group.b.children`: cycle: a → b → a"],
    );
}

#[test]
fn cycle_of_three_is_reported_once_in_listing_order() {
    single_error(
        r#"
[group.a]
children = ["b"]
[group.b]
children = ["c"]
[group.c]
children = ["a"]
[service.top]
command = "x"
"#,
        "6:13",
        &["`group.c.children`: cycle: a → b → c → a"],
    );
}

#[test]
fn load_reads_a_file_and_resolves_paths_against_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("minder.toml");
    std::fs::write(
        &path,
        "[service.a]\ncommand = \"a\"\nenv_file = \"a.env\"\n",
    )
    .unwrap();
    let spec = super::load(&path).unwrap();
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    let all = services(&spec);
    assert_eq!(all[0].working_dir, canonical);
    assert_eq!(all[0].env_file, Some(canonical.join("a.env")));
}

#[test]
fn load_reports_an_unreadable_file_without_a_position() {
    let errors = super::load(Path::new("/nonexistent/minder.toml")).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].line, 0);
    assert!(errors.0[0].message.starts_with("cannot read config file"));
}

#[test]
fn load_points_at_the_first_invalid_utf8_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"[service.a]\ncommand = \"caf\xe9\"\n").unwrap();
    let errors = super::load(&path).unwrap_err();
    let error = &errors.0[0];
    assert_eq!((error.line, error.column), (2, 15), "{error}");
    assert!(error.message.contains("not valid UTF-8"));
}

#[test]
fn group_listing_itself() {
    single_error(
        r#"
[group.a]
children = ["a"]
"#,
        "2:13",
        &["cycle: group `a` lists itself"],
    );
}

#[test]
fn missing_child_suggests() {
    single_error(
        r#"
[group.a]
children = ["wbe"]
[service.web]
command = "x"
"#,
        "2:13",
        &[
            "`group.a.children`: no service or group is named \"wbe\"",
            "did you mean \"web\"?",
        ],
    );
}

#[test]
fn node_not_listed_when_root_children_is_explicit() {
    single_error(
        r#"
[root]
children = ["a"]
[service.a]
command = "a"
[service.b]
command = "b"
"#,
        "5:10",
        &["`b` is not listed under any group"],
    );
}

#[test]
fn group_without_children() {
    single_error(
        "[group.g]\nstrategy = \"one_for_all\"\n",
        "1:8",
        &["`group.g`: missing `children`"],
    );
}

#[test]
fn missing_command() {
    single_error(
        "[service.web]\nrestart = \"always\"\n",
        "1:10",
        &["`service.web`: missing `command`"],
    );
}

#[test]
fn significant_on_a_permanent_service() {
    single_error(
        r#"
[root]
auto_shutdown = "any_significant"
[service.web]
command = "x"
significant = true
"#,
        "5:1",
        &[
            "`service.web.significant`",
            "a permanent service cannot be significant",
        ],
    );
}

#[test]
fn significant_while_auto_shutdown_is_never() {
    single_error(
        r#"
[service.job]
command = "x"
restart = "temporary"
significant = true
"#,
        "4:1",
        &[
            "`service.job.significant`",
            "its parent's `root.auto_shutdown` is \"never\"",
        ],
    );
}

#[test]
fn restart_on_a_oneshot() {
    single_error(
        r#"
[service.setup]
oneshot = true
command = "x"
restart = "never"
"#,
        "4:1",
        &["`service.setup.restart`: a oneshot service cannot set `restart`"],
    );
}

#[test]
fn empty_command_string() {
    single_error(
        "[service.web]\ncommand = \"   \"\n",
        "2:11",
        &["`service.web.command`: the command is empty"],
    );
}

#[test]
fn empty_command_array() {
    single_error(
        "[service.web]\ncommand = []\n",
        "2:11",
        &["`service.web.command`: the command is empty"],
    );
}

#[test]
fn command_array_with_a_number() {
    single_error(
        "[service.web]\ncommand = [\"sleep\", 5]\n",
        "2:21",
        &[
            "`service.web.command`: expected a string",
            "found integer 5",
        ],
    );
}

#[test]
fn unterminated_quote_in_command() {
    single_error(
        r#"
[service.web]
command = "sh -c 'echo hi"
"#,
        "2:11",
        &["unterminated single quote (opened at character 7"],
    );
}

#[test]
fn shell_syntax_in_a_command_string() {
    single_error(
        "[service.web]\ncommand = \"server > log.txt\"\n",
        "2:11",
        &["`>` at character 8 is shell syntax", "[\"sh\", \"-c\""],
    );
}

#[test]
fn bad_signal_name_suggests() {
    single_error(
        r#"
[service.web]
command = "x"
stop_signal = "SIGTREM"
"#,
        "3:15",
        &[
            "`service.web.stop_signal`",
            "found \"SIGTREM\"",
            "did you mean \"SIGTERM\"?",
        ],
    );
}

#[test]
fn success_signals_default_to_the_four_systemd_treats_as_clean() {
    let spec = ok("[service.web]\ncommand = \"x\"\n");
    assert_eq!(
        services(&spec)[0].success_signals,
        [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE]
    );
}

#[test]
fn success_signals_take_names_and_numbers_and_may_be_empty() {
    let spec = ok(r#"
[service.a]
command = "x"
success_signals = ["SIGUSR1", "term", 2, "SIGTERM"]
[service.b]
command = "x"
success_signals = []
"#);
    let services = services(&spec);
    assert_eq!(
        services[0].success_signals,
        [libc::SIGUSR1, libc::SIGTERM, libc::SIGINT]
    );
    assert!(services[1].success_signals.is_empty());
}

#[test]
fn bad_success_signal_is_named_at_its_item() {
    single_error(
        "[service.web]\ncommand = \"x\"\nsuccess_signals = [\"SIGTERM\", \"SIGTREM\"]\n",
        "3:31",
        &[
            "`service.web.success_signals`",
            "found \"SIGTREM\"",
            "did you mean \"SIGTERM\"?",
        ],
    );
}

#[test]
fn success_signals_must_be_a_list() {
    single_error(
        "[service.web]\ncommand = \"x\"\nsuccess_signals = \"SIGTERM\"\n",
        "3:19",
        &[
            "`service.web.success_signals`",
            "expected an array of signals",
        ],
    );
}

#[test]
fn bad_signal_number() {
    single_error(
        "[service.web]\ncommand = \"x\"\nstop_signal = 0\n",
        "3:15",
        &["expected a signal number between 1 and", "found integer 0"],
    );
}

#[test]
fn bad_umask() {
    single_error(
        "[service.web]\ncommand = \"x\"\numask = \"0778\"\n",
        "3:9",
        &[
            "`service.web.umask`: expected an octal umask",
            "found \"0778\"",
        ],
    );
}

#[test]
fn decimal_umask_is_refused() {
    single_error(
        "[service.web]\ncommand = \"x\"\numask = 27\n",
        "3:9",
        &["`service.web.umask`", "found integer 27"],
    );
}

#[test]
fn jitter_out_of_range() {
    single_error(
        r#"
[service.web]
command = "x"
backoff = { jitter = 1.5 }
"#,
        "3:22",
        &["`service.web.backoff.jitter`: expected a number from 0.0 to 1.0, found float 1.5"],
    );
}

#[test]
fn multiplier_below_one() {
    single_error(
        "[service.web]\ncommand = \"x\"\nbackoff = { multiplier = 0.5 }\n",
        "3:26",
        &["`service.web.backoff.multiplier`: expected a number >= 1.0"],
    );
}

#[test]
fn backoff_initial_above_max() {
    single_error(
        "[service.web]\ncommand = \"x\"\nbackoff = { initial = \"1m\" }\n",
        "3:11",
        &["`initial` (1m) is longer than `max` (30s)"],
    );
}

#[test]
fn rlimit_soft_above_hard() {
    single_error(
        "[service.web]\ncommand = \"x\"\nrlimits = { nofile = { soft = 9, hard = 1 } }\n",
        "3:22",
        &["`service.web.rlimits.nofile`: the soft limit is above the hard limit"],
    );
}

#[test]
fn rlimit_unknown_resource_suggests() {
    single_error(
        "[service.web]\ncommand = \"x\"\nrlimits = { nofiles = 10 }\n",
        "3:13",
        &[
            "unknown key `service.web.rlimits.nofiles`",
            "did you mean `nofile`?",
        ],
    );
}

#[test]
fn instances_zero() {
    single_error(
        "[service.web]\ncommand = \"x\"\ninstances = 0\n",
        "3:13",
        &["`service.web.instances`: expected an integer from 1 to 1024"],
    );
}

#[test]
fn success_code_out_of_range() {
    single_error(
        "[service.web]\ncommand = \"x\"\nsuccess_codes = [0, 256]\n",
        "3:21",
        &["`service.web.success_codes`: expected an exit code from 0 to 255, found integer 256"],
    );
}

#[test]
fn env_value_must_be_a_string() {
    single_error(
        "[service.web]\ncommand = \"x\"\nenv = { PORT = 8080 }\n",
        "3:16",
        &[
            "`service.web.env.PORT`: expected a string",
            "found integer 8080",
        ],
    );
}

#[test]
fn every_daemon_key_is_read() {
    let spec = ok(r#"
[daemon]
control_socket = "ctl/control.sock"
control_mode = "0660"
control_group = "adm"
metrics_listen = "127.0.0.1:9733"
log_format = "json"
log_dir = "logs"
log_max_size = "1MiB"
log_keep = 3
log_timestamps = true
log_overflow = "drop"
shutdown_timeout = "20s"
drain_delay = "5s"
state_file = "state.json"
[service.web]
command = "x"
"#);
    let daemon = &spec.daemon;
    let base = Path::new(BASE);
    assert_eq!(
        daemon.control,
        ControlSocket::Path(base.join("ctl/control.sock"))
    );
    assert_eq!(daemon.control_mode, 0o660);
    assert_eq!(daemon.control_group.as_deref(), Some("adm"));
    assert_eq!(
        daemon.metrics_listen,
        Some("127.0.0.1:9733".parse().unwrap())
    );
    assert_eq!(daemon.log_format, LogFormat::Json);
    assert_eq!(daemon.log_dir, Some(base.join("logs")));
    assert_eq!(daemon.log_max_size, 1024 * 1024);
    assert_eq!(daemon.log_keep, 3);
    assert!(daemon.log_timestamps);
    assert_eq!(daemon.log_overflow, LogOverflow::Drop);
    assert_eq!(daemon.shutdown_timeout, Duration::from_secs(20));
    assert_eq!(daemon.drain_delay, Duration::from_secs(5));
    assert_eq!(daemon.state_file, Some(base.join("state.json")));
}

#[test]
fn empty_daemon_paths_turn_the_feature_off() {
    let spec = ok(r#"
[daemon]
control_socket = ""
metrics_listen = ""
log_dir = ""
state_file = ""
[service.web]
command = "x"
"#);
    assert_eq!(spec.daemon.control, ControlSocket::Disabled);
    assert_eq!(spec.daemon.metrics_listen, None);
    assert_eq!(spec.daemon.log_dir, None);
    assert_eq!(spec.daemon.state_file, None);
    let default = ok("[service.web]\ncommand = \"x\"\n");
    assert_eq!(default.daemon.control, ControlSocket::Default);
}

#[test]
fn bad_daemon_values_name_the_key_and_what_was_expected() {
    let errors = errors(
        r#"
[daemon]
shutdown_timeout = "10s"
drain_delay = "15s"
metrics_listen = "localhost"
control_mode = "999"
log_keep = -1
log_overflow = "dorp"
log_max_size = "10"
[service.web]
command = "x"
"#,
    );
    let expected = [
        "3:15: `daemon.drain_delay`: expected at most `daemon.shutdown_timeout` (10s)",
        "4:18: `daemon.metrics_listen`: expected an address",
        "5:16: `daemon.control_mode`:",
        "6:12: `daemon.log_keep`: expected an integer from 0 to 1000",
        "7:16: `daemon.log_overflow`: expected one of \"block\", \"drop\", found \"dorp\"; did you mean \"drop\"?",
        "8:16: `daemon.log_max_size`: expected a size of at least 4KiB",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, prefix) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(prefix),
            "{error:?} should start with {prefix:?}"
        );
    }
}

#[test]
fn a_group_takes_restart_significant_and_auto_shutdown() {
    let spec = ok(r#"
[root]
auto_shutdown = "all_significant"
[group.job]
children = ["task", "helper"]
restart = "on-failure"
significant = true
auto_shutdown = "any_significant"
[service.task]
command = "x"
restart = "transient"
significant = true
[service.helper]
command = "x"
"#);
    let NodeSpec::Group(job) = &spec.root.children[0] else {
        panic!("expected the group first: {:?}", spec.root.children);
    };
    assert_eq!(job.restart, RestartType::Transient);
    assert!(job.significant);
    assert_eq!(job.auto_shutdown, AutoShutdown::AnySignificant);
    // The defaults keep what groups always did.
    let plain = ok("[group.g]\nchildren = []\n");
    let NodeSpec::Group(g) = &plain.root.children[0] else {
        panic!("expected a group");
    };
    assert_eq!(
        (g.restart, g.significant, g.auto_shutdown),
        (RestartType::Permanent, false, AutoShutdown::Never)
    );
    assert!(
        super::warnings(&spec).is_empty(),
        "{:?}",
        super::warnings(&spec)
    );
}

#[test]
fn significant_on_a_permanent_group() {
    single_error(
        r#"
[root]
auto_shutdown = "any_significant"
[group.g]
children = []
significant = true
"#,
        "5:1",
        &[
            "`group.g.significant`",
            "a permanent group cannot be significant",
        ],
    );
}

#[test]
fn significant_under_a_group_whose_auto_shutdown_is_never() {
    single_error(
        r#"
[root]
auto_shutdown = "any_significant"
[group.g]
children = ["job"]
[service.job]
command = "x"
restart = "temporary"
significant = true
"#,
        "8:1",
        &[
            "`service.job.significant`",
            "its parent's `group.g.auto_shutdown` is \"never\"",
        ],
    );
}

#[test]
fn a_significant_group_under_a_root_whose_auto_shutdown_is_never() {
    single_error(
        r#"
[group.g]
children = []
restart = "temporary"
significant = true
"#,
        "4:1",
        &[
            "`group.g.significant`",
            "its parent's `root.auto_shutdown` is \"never\"",
        ],
    );
}

#[test]
fn restart_and_significant_on_the_root() {
    assert_eq!(
        errors(
            r#"
[root]
restart = "transient"
significant = true
"#
        ),
        [
            "2:1: `root.restart`: the root has no parent to restart it or to shut down; set `restart` on a [group.NAME] instead",
            "3:1: `root.significant`: the root has no parent to restart it or to shut down; set `significant` on a [group.NAME] instead",
        ]
    );
}

#[test]
fn a_permanent_group_with_auto_shutdown_gets_a_warning() {
    let spec = ok(r#"
[group.job]
children = ["task"]
auto_shutdown = "any_significant"
[service.task]
command = "x"
restart = "transient"
significant = true
"#);
    assert_eq!(
        super::warnings(&spec),
        [
            "`group.job`: auto_shutdown is set but restart is \"permanent\", so its parent restarts it as soon as it shuts itself down; set `restart` to \"transient\" or \"temporary\" to let it stay down"
        ]
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    single_error(
        "[service.web]\ncommand = \"x\"\nenv = { \"ÉTÉ\" = \"1\", X = 2 }\n",
        "3:26",
        &["`service.web.env.X`"],
    );
}

#[test]
fn several_mistakes_are_all_reported_in_file_order() {
    let errors = errors(
        r#"
[root]
strategy = "one_for_al"
intensity = -1
[group.g]
children = ["ghost"]
[service.web]
comand = "x"
stop_timeout = "soon"
[service.Api]
command = "api"
"#,
    );
    let positions: Vec<&str> = errors
        .iter()
        .map(|error| error.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        positions,
        ["2:12", "3:13", "5:13", "7:1", "8:16", "9:10"],
        "{errors:#?}"
    );
}

// ---- ready, health and watchdog ----

#[test]
fn ready_health_and_watchdog_lower_to_the_spec() {
    let spec = ok(r#"
[service.db]
command = "postgres"
[service.db.ready]
tcp = "localhost:5432"
notify = false
deadline = "2m"
[service.db.health]
exec = "pg_isready -q"
start_period = "0s"
failures = 1
max_memory = 4096

[service.web]
command = "web"
instances = 2
watchdog = "15s"
ready = { notify = true }
health = { http = "HTTP://web.local/health", interval = "5s", timeout = "1s", max_memory = "1GiB" }

[service.worker]
command = "worker"
ready = { exec = ["test", "-e", "/run/worker.ready"], interval = "250ms", timeout = "2s" }
health = { tcp = "[::1]:9000" }

[service.piped]
command = "piped"
ready = { fd = 1023 }
health = { max_memory = "100 MB" }
"#);
    let all = services(&spec);
    let db = all[0];
    assert_eq!(
        db.ready,
        Some(ReadySpec {
            deadline: Duration::from_secs(120),
            ..ReadySpec::new(ReadyCheck::Probe(Probe::Tcp {
                address: "localhost:5432".into()
            }))
        })
    );
    assert_eq!(
        db.health,
        Some(HealthSpec {
            failures: 1,
            max_memory: Some(4096),
            ..HealthSpec::new(Some(Probe::Exec {
                command: vec!["pg_isready".into(), "-q".into()]
            }))
        })
    );
    assert_eq!(db.watchdog, None);
    // Every instance carries the same checks.
    for web in [all[1], all[2]] {
        assert_eq!(web.ready, Some(ReadySpec::new(ReadyCheck::Notify)));
        assert_eq!(web.watchdog, Some(Duration::from_secs(15)));
        assert_eq!(
            web.health,
            Some(HealthSpec {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
                max_memory: Some(1 << 30),
                ..HealthSpec::new(Some(Probe::Http {
                    url: "HTTP://web.local/health".into()
                }))
            })
        );
    }
    let worker = all[3];
    assert_eq!(
        worker.ready,
        Some(ReadySpec {
            interval: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
            ..ReadySpec::new(ReadyCheck::Probe(Probe::Exec {
                command: vec!["test".into(), "-e".into(), "/run/worker.ready".into()]
            }))
        })
    );
    assert_eq!(
        worker.health,
        Some(HealthSpec::new(Some(Probe::Tcp {
            address: "[::1]:9000".into()
        })))
    );
    let piped = all[4];
    assert_eq!(piped.ready, Some(ReadySpec::new(ReadyCheck::Fd(1023))));
    assert_eq!(
        piped.health,
        Some(HealthSpec {
            max_memory: Some(100_000_000),
            ..HealthSpec::new(None)
        })
    );
}

#[test]
fn sizes_parse_and_render_back() {
    for (text, bytes) in [
        ("4096", 4096),
        ("1B", 1),
        ("512MiB", 512 << 20),
        ("1GiB", 1 << 30),
        ("2TiB", 2 << 40),
        ("64 KiB", 64 << 10),
        ("100MB", 100_000_000),
        ("3kB", 3000),
        ("1GB", 1_000_000_000),
    ] {
        assert_eq!(size(text), Ok(bytes), "{text}");
        assert_eq!(size(&format_size(bytes)), Ok(bytes), "{text}");
    }
    assert_eq!(format_size(512 << 20), "512MiB");
    assert_eq!(format_size(100_000_000), "100MB");
    assert_eq!(format_size(1234), "1234");
    for bad in [
        "",
        "0",
        "0MiB",
        "MiB",
        "-1",
        "1.5GiB",
        "12 parsecs",
        "99999999999TiB",
    ] {
        assert!(size(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn http_url_that_is_not_a_url() {
    single_error(
        r#"
[service.web]
command = "x"
ready = { http = "localhost:8080/health" }
"#,
        "3:18",
        &[
            "`service.web.ready.http`: no \"http://\" at the start",
            "like \"http://127.0.0.1:8080/health\"",
            "found \"localhost:8080/health\"",
        ],
    );
}

#[test]
fn http_url_without_a_host() {
    single_error(
        r#"
[service.web]
command = "x"
[service.web.health]
http = "http:///health"
"#,
        "4:8",
        &[
            "`service.web.health.http`: no host;",
            "found \"http:///health\"",
        ],
    );
}

#[test]
fn http_url_with_a_space() {
    single_error(
        r#"
[service.web]
command = "x"
[service.web.health]
http = "http://web:80/my health"
"#,
        "4:8",
        &["`service.web.health.http`: spaces in the URL must be written as %20"],
    );
}

#[test]
fn https_url_is_not_supported_yet() {
    single_error(
        r#"
[service.web]
command = "x"
[service.web.ready]
http = "https://127.0.0.1:8443/ready"
"#,
        "4:8",
        &[
            "`service.web.ready.http`: https is not supported yet",
            "use an http:// URL, or a `tcp` or `exec` probe",
        ],
    );
}

#[test]
fn http_port_out_of_range() {
    single_error(
        r#"
[service.web]
command = "x"
ready = { http = "http://127.0.0.1:99999/" }
"#,
        "3:18",
        &["`service.web.ready.http`: port 99999 is out of range (1 to 65535)"],
    );
}

#[test]
fn tcp_port_zero() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.ready]
tcp = "127.0.0.1:0"
"#,
        "4:7",
        &[
            "`service.db.ready.tcp`: port 0 is out of range (1 to 65535)",
            "expected \"host:port\"",
            "found \"127.0.0.1:0\"",
        ],
    );
}

#[test]
fn tcp_port_above_65535() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.health]
tcp = "db.internal:70000"
"#,
        "4:7",
        &["`service.db.health.tcp`: port 70000 is out of range (1 to 65535)"],
    );
}

#[test]
fn tcp_without_a_port() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.ready]
tcp = "localhost"
"#,
        "4:7",
        &[
            "`service.db.ready.tcp`: no port; expected \"host:port\" like \"127.0.0.1:5432\"",
            "found \"localhost\"",
        ],
    );
}

#[test]
fn tcp_with_a_port_name() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { tcp = \"db:postgres\" }\n",
        "3:17",
        &["the port \"postgres\" is not a number from 1 to 65535"],
    );
}

#[test]
fn tcp_ipv6_without_brackets() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { tcp = \"::1:5432\" }\n",
        "3:17",
        &["an IPv6 address needs brackets: \"[::1]:5432\""],
    );
}

#[test]
fn tcp_with_a_scheme() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { tcp = \"tcp://db:5432\" }\n",
        "3:17",
        &["without a scheme (for an HTTP check, use `http` instead of `tcp`)"],
    );
}

#[test]
fn empty_exec_probe() {
    let errors = errors(
        r#"
[service.web]
command = "x"
ready = { exec = [] }
health = { exec = "  " }
"#,
    );
    assert_eq!(
        errors,
        [
            "3:18: `service.web.ready.exec`: the command is empty; expected a program and its arguments",
            "4:19: `service.web.health.exec`: the command is empty; expected a program and its arguments",
        ]
    );
}

#[test]
fn exec_probe_with_an_empty_program() {
    single_error(
        "[service.web]\ncommand = \"x\"\nready = { exec = [\"\", \"-q\"] }\n",
        "3:18",
        &["`service.web.ready.exec`: the program name is empty"],
    );
}

#[test]
fn two_checks_in_ready() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.ready]
tcp = "127.0.0.1:5432"
notify = true
"#,
        "5:1",
        &[
            "`service.db.ready`: 2 checks are set, `tcp` (line 4) and `notify` (line 5)",
            "expected exactly one of tcp, http, exec, notify = true, fd",
        ],
    );
}

#[test]
fn no_check_in_ready() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.ready]
deadline = "10s"
"#,
        "3:13",
        &[
            "`service.db.ready`: no check is set; expected exactly one of tcp = \"host:port\"",
            "notify = true, fd = N",
        ],
    );
}

#[test]
fn notify_false_is_no_check() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { notify = false }\n",
        "3:1",
        &["`service.db.ready`: no check is set (`notify = false` sets none)"],
    );
}

#[test]
fn interval_with_notify() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { notify = true, interval = \"1s\" }\n",
        "3:26",
        &[
            "`service.db.ready.interval`: only probe checks (tcp, http, exec) use `interval`",
            "`notify` waits for READY=1 until `deadline`",
        ],
    );
}

#[test]
fn zero_ready_timeout() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { tcp = \"db:1\", timeout = \"0s\" }\n",
        "3:35",
        &["`service.db.ready.timeout`: expected a duration greater than zero, found \"0s\""],
    );
}

#[test]
fn ready_fd_on_stdout() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { fd = 1 }\n",
        "3:16",
        &[
            "`service.db.ready.fd`: expected a file descriptor number from 3 to 1023 (0, 1 and 2 are the service's stdin, stdout and stderr), found integer 1",
        ],
    );
}

#[test]
fn ready_as_a_string() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = \"tcp 127.0.0.1:5432\"\n",
        "3:9",
        &[
            "`service.db.ready`: expected a table like { tcp = \"127.0.0.1:5432\" }, or a [service.db.ready] section",
        ],
    );
}

#[test]
fn misspelt_ready_key_suggests() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { tpc = \"db:5432\" }\n",
        "3:11",
        &["unknown key `service.db.ready.tpc`; did you mean `tcp`?"],
    );
}

#[test]
fn health_key_in_ready_says_where_it_belongs() {
    single_error(
        "[service.db]\ncommand = \"x\"\nready = { notify = true, failures = 3 }\n",
        "3:26",
        &[
            "`service.db.ready.failures`: `failures` belongs in [service.db.health], not in [service.db.ready]",
        ],
    );
}

#[test]
fn watchdog_without_ready_notify() {
    single_error(
        r#"
[service.api]
command = "x"
watchdog = "30s"
"#,
        "3:1",
        &[
            "`service.api.watchdog`: a watchdog needs `ready.notify = true`",
            "add it in [service.api.ready]",
        ],
    );
}

#[test]
fn watchdog_with_a_probe_ready_check() {
    single_error(
        r#"
[service.api]
watchdog = "30s"
command = "x"
[service.api.ready]
http = "http://127.0.0.1/"
"#,
        "2:1",
        &[
            "`service.api.watchdog`: a watchdog needs `ready.notify = true`",
            "but `service.api.ready` uses `http`",
        ],
    );
}

#[test]
fn zero_watchdog() {
    single_error(
        "[service.api]\ncommand = \"x\"\nwatchdog = \"0s\"\nready = { notify = true }\n",
        "3:12",
        &["`service.api.watchdog`: expected a duration greater than zero"],
    );
}

#[test]
fn health_failures_zero() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.health]
tcp = "db:5432"
failures = 0
"#,
        "5:12",
        &[
            "`service.db.health.failures`: expected an integer >= 1 (consecutive failures before a restart), found integer 0",
        ],
    );
}

#[test]
fn health_bad_size() {
    let errors = errors(
        r#"
[service.db]
command = "x"
health = { max_memory = "512M" }
[service.cache]
command = "x"
health = { max_memory = "lots" }
[service.queue]
command = "x"
health = { max_memory = "512mib" }
[service.mq]
command = "x"
health = { max_memory = 0 }
"#,
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].starts_with("3:25: `service.db.health.max_memory`: expected a size like")
            && errors[0].contains(
                "\"M\" is ambiguous: did you mean \"512MiB\" (powers of 1024) or \"512MB\" (powers of 1000)?; found \"512M\""
            ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("6:25: `service.cache.health.max_memory`: expected a size")
            && errors[1].ends_with("; found \"lots\""),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].starts_with("9:25: ") && errors[2].contains("did you mean \"512MiB\"?"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].starts_with("12:25: `service.mq.health.max_memory`: expected a size")
            && errors[3].ends_with("greater than zero, found integer 0"),
        "{}",
        errors[3]
    );
}

#[test]
fn health_with_nothing_to_check() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.health]
interval = "5s"
"#,
        "3:13",
        &["`service.db.health`: nothing to check; expected a probe (tcp"],
    );
}

#[test]
fn probe_keys_without_a_probe() {
    let errors = errors(
        r#"
[service.db]
command = "x"
[service.db.health]
max_memory = "1GiB"
failures = 2
start_period = "10s"
"#,
    );
    assert_eq!(
        errors,
        [
            "5:1: `service.db.health.failures`: only a probe (tcp, http or exec) uses `failures`; max_memory restarts the service at the first reading above the limit; remove it or add a probe",
            "6:1: `service.db.health.start_period`: only a probe (tcp, http or exec) uses `start_period`; max_memory restarts the service at the first reading above the limit; remove it or add a probe",
        ]
    );
}

#[test]
fn two_probes_in_health() {
    single_error(
        "[service.db]\ncommand = \"x\"\nhealth = { tcp = \"db:1\", http = \"http://db/\" }\n",
        "3:26",
        &[
            "`service.db.health`: 2 checks are set, `tcp` (line 3) and `http` (line 3); expected at most one probe of tcp, http, exec",
        ],
    );
}

#[test]
fn notify_in_health() {
    single_error(
        r#"
[service.db]
command = "x"
[service.db.health]
notify = true
"#,
        "4:1",
        &[
            "`service.db.health.notify`: only `ready` supports notify and fd",
            "set `watchdog` on the service",
        ],
    );
}

#[test]
fn ready_on_a_oneshot() {
    single_error(
        r#"
[service.migrate]
command = "x"
oneshot = true
[service.migrate.ready]
exec = "true"
"#,
        "4:18",
        &[
            "`service.migrate.ready`: a oneshot service cannot have a ready check: it counts as ready once it exits with a success code",
        ],
    );
}

#[test]
fn health_and_watchdog_on_a_oneshot() {
    let errors = errors(
        r#"
[service.migrate]
health = { max_memory = "1GiB" }
watchdog = "10s"
command = "x"
oneshot = true
"#,
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "2:1: `service.migrate.health`: a oneshot service cannot have health checks"
        ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with(
            "3:1: `service.migrate.watchdog`: a oneshot service cannot have a watchdog"
        ),
        "{}",
        errors[1]
    );
}

#[test]
fn every_check_mistake_is_reported_at_once() {
    let errors = errors(
        r#"
[service.a]
command = "x"
watchdog = "1s"
[service.a.ready]
tcp = "a:0"
http = "https://a/"
[service.a.health]
failures = -1
fd = 3
max_memory = "1 parsec"
"#,
    );
    let positions: Vec<&str> = errors
        .iter()
        .map(|error| error.split(": ").next().unwrap_or(""))
        .collect();
    // The ready table is broken, so `watchdog` gets no follow-on "needs notify";
    // `failures` is both out of range (8:12) and useless without a probe (8:1).
    assert_eq!(
        positions,
        ["5:7", "6:1", "6:8", "8:1", "8:12", "9:1", "10:14"],
        "{errors:#?}"
    );
}

// ---- render ----

#[test]
fn a_file_using_every_key_renders_its_resolved_tree() {
    let spec = ok(r#"
[daemon]
shutdown_timeout = "20s"
log_format = "json"

[root]
strategy = "one_for_all"
intensity = 2
period = "1m"
auto_shutdown = "any_significant"
children = ["setup", "backend", "job"]

[group.backend]
strategy = "rest_for_one"
intensity = 0
period = "10s"
auto_shutdown = "all_significant"
restart = "transient"
significant = true
children = ["db", "api"]

[service.setup]
command = ["sh", "-c", "echo ready > state"]
oneshot = true
success_codes = [0, 2]
success_signals = ["SIGTERM", "SIGUSR2"]

[service.db]
command = ["/usr/bin/postgres", "-D", "/var/lib/pg"]
restart = "permanent"
working_dir = "/var/lib/pg"
user = "postgres"
group = "postgres"
env = { PGTZ = "UTC", GREETING = "hello world" }
env_file = "db.env"
umask = "0027"
rlimits = { nofile = 65536, core = "unlimited", nproc = { soft = 100, hard = 200 } }
stop_signal = "SIGINT"
stop_timeout = "20s"
significant = false
backoff = { initial = "1s", max = "1m", multiplier = 1.5, jitter = 0.0, reset_after = "5m" }

[service.db.ready]
tcp = "127.0.0.1:5432"
interval = "500ms"
timeout = "2s"
deadline = "2m"

[service.db.health]
exec = ["pg_isready", "-q"]
interval = "30s"
timeout = "5s"
start_period = "1m"
failures = 5
max_memory = "512MiB"

[service.api]
command = "./api --port 8080"
restart = "always"
instances = 2
ready = { notify = true, deadline = "10s" }
watchdog = "30s"
health = { http = "http://[::1]:8080/healthz?full=1" }

[service.job]
command = "report --once"
restart = "transient"
significant = true
stop_signal = 1
ready = { fd = 3 }
health = { max_memory = "100MB" }
"#);
    expect![[r#"
        root: one_for_all, intensity 2 per 1m, auto_shutdown any_significant
          service setup
            command          sh -c 'echo ready > state'
            restart          oneshot (retried after a failure, done after success)
            significant      no
            working_dir      /etc/minder
            user             (minder's own)
            group            (minder's own)
            env_file         (none)
            env              (inherited only)
            umask            (inherited)
            rlimits          (inherited)
            stop             SIGTERM, then SIGKILL after 10s
            success_codes    0 2
            success_signals  SIGTERM SIGUSR2
            backoff          initial 100ms, max 30s, multiplier 2, jitter 0.1, reset_after 30s
            ready            (once it exits with a success code)
            health           (none)
            watchdog         (none)
          group backend: rest_for_one, intensity 0 per 10s, auto_shutdown all_significant, restart transient, significant
            service db
              command          /usr/bin/postgres -D /var/lib/pg
              restart          permanent
              significant      no
              working_dir      /var/lib/pg
              user             postgres
              group            postgres
              env_file         /etc/minder/db.env
              env              PGTZ=UTC 'GREETING=hello world'
              umask            0027
              rlimits          nofile=65536 core=unlimited nproc=100:200
              stop             SIGINT, then SIGKILL after 20s
              success_codes    0
              success_signals  SIGHUP SIGINT SIGTERM SIGPIPE
              backoff          initial 1s, max 1m, multiplier 1.5, jitter 0, reset_after 5m
              ready            tcp 127.0.0.1:5432, interval 500ms, timeout 2s, deadline 2m
              health           exec pg_isready -q, interval 30s, timeout 5s, start_period 1m, failures 5, max_memory 512MiB
              watchdog         (none)
            service api.0 (instance 0 of api)
              command          ./api --port 8080
              restart          permanent
              significant      no
              working_dir      /etc/minder
              user             (minder's own)
              group            (minder's own)
              env_file         (none)
              env              (inherited only)
              umask            (inherited)
              rlimits          (inherited)
              stop             SIGTERM, then SIGKILL after 10s
              success_codes    0
              success_signals  SIGHUP SIGINT SIGTERM SIGPIPE
              backoff          initial 100ms, max 30s, multiplier 2, jitter 0.1, reset_after 30s
              ready            notify (READY=1), deadline 10s
              health           http http://[::1]:8080/healthz?full=1, interval 10s, timeout 3s, start_period 0s, failures 3
              watchdog         30s
            service api.1 (instance 1 of api)
              command          ./api --port 8080
              restart          permanent
              significant      no
              working_dir      /etc/minder
              user             (minder's own)
              group            (minder's own)
              env_file         (none)
              env              (inherited only)
              umask            (inherited)
              rlimits          (inherited)
              stop             SIGTERM, then SIGKILL after 10s
              success_codes    0
              success_signals  SIGHUP SIGINT SIGTERM SIGPIPE
              backoff          initial 100ms, max 30s, multiplier 2, jitter 0.1, reset_after 30s
              ready            notify (READY=1), deadline 10s
              health           http http://[::1]:8080/healthz?full=1, interval 10s, timeout 3s, start_period 0s, failures 3
              watchdog         30s
          service job
            command          report --once
            restart          transient
            significant      yes
            working_dir      /etc/minder
            user             (minder's own)
            group            (minder's own)
            env_file         (none)
            env              (inherited only)
            umask            (inherited)
            rlimits          (inherited)
            stop             SIGHUP, then SIGKILL after 10s
            success_codes    0
            success_signals  SIGHUP SIGINT SIGTERM SIGPIPE
            backoff          initial 100ms, max 30s, multiplier 2, jitter 0.1, reset_after 30s
            ready            fd 3 (a newline written to it), deadline 1m
            health           max_memory 100MB, interval 10s
            watchdog         (none)
        daemon
          shutdown_timeout 20s
          log_format       json
          drain_delay      0s
          control_socket   default
          control_mode     0600
          log_dir          none (minder's stdout and stderr)
          log_timestamps   false
          log_overflow     block
    "#]]
    .assert_eq(&super::render(&spec));
}

#[test]
fn render_of_an_empty_file() {
    expect![[r#"
        root: one_for_one, intensity 5 per 30s, auto_shutdown never
          (no children)
        daemon
          shutdown_timeout 30s
          log_format       text
          drain_delay      0s
          control_socket   default
          control_mode     0600
          log_dir          none (minder's stdout and stderr)
          log_timestamps   false
          log_overflow     block
    "#]]
    .assert_eq(&super::render(&ok("")));
}

#[test]
fn a_duration_of_centuries_is_refused_where_it_stands() {
    let errors = errors("[service.a]\ncommand = \"x\"\nstop_timeout = \"500000000000d\"\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("3:16: "), "{}", errors[0]);
    assert!(errors[0].contains("at most 10 years"), "{}", errors[0]);
}

#[test]
fn control_characters_from_the_file_are_printed_escaped() {
    let errors = errors(
        "[service.\"a\\u0000b\"]\ncommand = \"x\"\n\"\\u001b[2J\\u202e\" = 1\n[daemon]\nlog_format = \"te\\u0007xt\"\n",
    );
    for error in &errors {
        assert!(!error.chars().any(char::is_control), "{error:?}");
    }
    assert_eq!(
        errors,
        [
            "1:10: `service.a\\0b`: invalid name \"a\\0b\": expected lowercase letters, digits, `_` and `-`, starting with a letter or digit",
            "3:1: unknown key `service.a\\0b.\\u{1b}[2J\\u{202e}`; expected one of: command, restart, working_dir, user, group, env, env_file, umask, rlimits, stop_signal, stop_timeout, success_codes, success_signals, significant, oneshot, instances, backoff, ready, health, watchdog",
            "5:14: `daemon.log_format`: expected one of \"text\", \"json\", found \"te\\u{7}xt\"; did you mean \"text\"?",
        ]
    );
}

#[test]
fn columns_after_several_errors_on_one_line_are_exact() {
    let errors = errors("[root]\nchildren = [\"é1\", \"x\", \"ü2\"]\n");
    assert_eq!(
        errors,
        [
            "2:13: `root.children`: no service or group is named \"é1\"; expected the name of a [service.NAME] or [group.NAME] table",
            "2:19: `root.children`: no service or group is named \"x\"; expected the name of a [service.NAME] or [group.NAME] table",
            "2:24: `root.children`: no service or group is named \"ü2\"; expected the name of a [service.NAME] or [group.NAME] table",
        ]
    );
}

/// `[group.g0]` listing `g1`, ... down to a service: a chain of `depth` nested groups.
fn nested_groups(depth: usize) -> String {
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&format!(
            "[group.g{level}]\nchildren = [\"g{}\"]\n",
            level + 1
        ));
    }
    text.push_str(&format!("[service.g{depth}]\ncommand = \"x\"\n"));
    text
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_at_the_first_group_too_deep() {
    assert!(load(&nested_groups(31)).is_ok());
    let errors = errors(&nested_groups(40));
    assert_eq!(
        errors,
        ["62:13: group `g31` is nested more than 32 levels deep"]
    );
}

#[test]
fn a_chain_of_10000_groups_is_refused_like_a_short_one() {
    // Validation used to walk every group's ancestors, each step searching the path so
    // far: minutes for this file. Now every pass is linear and building stops at the
    // limit. (tests/config_check.rs runs 100 000 through the binary.)
    let errors = errors(&nested_groups(10_000));
    assert_eq!(
        errors,
        ["62:13: group `g31` is nested more than 32 levels deep"]
    );
}

#[test]
fn a_long_cycle_is_reported_once_with_its_middle_left_out() {
    let mut text = String::new();
    for index in 0..1000 {
        text.push_str(&format!(
            "[group.c{index}]\nchildren = [\"c{}\"]\n",
            (index + 1) % 1000
        ));
    }
    text.push_str("[service.top]\ncommand = \"x\"\n");
    assert_eq!(
        errors(&text),
        [
            "2000:13: `group.c999.children`: cycle: c0 → c1 → c2 → c3 → (993 more) → c997 → c998 → c999 → c0; no node can contain itself"
        ]
    );
}

#[test]
fn a_file_full_of_missing_children_costs_linear_time() {
    // Each missing child used to be compared with every name for a suggestion: minutes
    // for 5000 of them. Suggestions now stop after the first few.
    let mut text = String::new();
    for index in 0..5000 {
        text.push_str(&format!("[group.g{index}]\nchildren = [\"g{index}x\"]\n"));
    }
    let errors = errors(&text);
    assert_eq!(errors.len(), 5000);
    assert!(
        errors[0].ends_with("no service or group is named \"g0x\"; did you mean \"g0\"?"),
        "{}",
        errors[0]
    );
    assert!(
        errors[4999].ends_with(
            "no service or group is named \"g4999x\"; expected the name of a [service.NAME] or [group.NAME] table"
        ),
        "{}",
        errors[4999]
    );
}

#[test]
fn a_tree_of_more_than_10000_services_is_refused_before_it_is_built() {
    let mut text = String::new();
    for index in 0..20 {
        text.push_str(&format!(
            "[service.s{index}]\ncommand = \"x\"\ninstances = 1000\n"
        ));
    }
    assert_eq!(
        errors(&text),
        [
            "31:10: `service.s10` with its 1000 instances brings the tree to 11000 services (each instance counts), more than the 10000 minder supervises"
        ]
    );
    let plain: String = (0..10_001)
        .map(|index| format!("[service.p{index}]\ncommand = \"x\"\n"))
        .collect();
    assert_eq!(
        errors(&plain),
        [
            "20001:10: `service.p10000` brings the tree to 10001 services (each instance counts), more than the 10000 minder supervises"
        ]
    );
}
