//! `minderctl generate`: the man page and the shell completions, made from the clap
//! definition in `cli.rs` so that they cannot drift from the real command line. The
//! results are committed (`man/minderctl.1`, `completions/`) and installed by the
//! packages; `tests/minderctl_generated.rs` fails when they are out of date.
//!
//! The man page is one page for the whole tool: clap_mangen's sections for the synopsis,
//! the description and the global options, then a COMMANDS section written here (with
//! each command's own options), and the sections a man page is expected to have (EXIT
//! STATUS, ENVIRONMENT, FILES, EXAMPLES, SEE ALSO).

use crate::cli::{Cli, EXIT_CODES, Generate, Shell};
use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, italic, roman};
use std::path::{Path, PathBuf};

/// Writes what `what` asks for; returns the file written.
pub fn run(what: &Generate) -> std::io::Result<PathBuf> {
    match what {
        Generate::Man { dir } => write_man_page(dir),
        Generate::Completions { shell, dir } => write_completions(*shell, dir),
    }
}

fn write_completions(shell: Shell, dir: &Path) -> std::io::Result<PathBuf> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    match shell {
        Shell::Bash => {
            clap_complete::generate_to(clap_complete::Shell::Bash, &mut command, name, dir)
        }
        Shell::Zsh => {
            clap_complete::generate_to(clap_complete::Shell::Zsh, &mut command, name, dir)
        }
        Shell::Fish => {
            clap_complete::generate_to(clap_complete::Shell::Fish, &mut command, name, dir)
        }
    }
}

fn write_man_page(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("minderctl.1");
    std::fs::write(&path, man_page()?)?;
    Ok(path)
}

fn man_page() -> std::io::Result<Vec<u8>> {
    let mut command = Cli::command();
    command.build();
    let man = clap_mangen::Man::new(command.clone())
        .title("MINDERCTL")
        .manual("minder manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        command_entry(&mut roff, sub);
    }

    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_CODES {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }

    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold("MINDER_SOCKET")]);
    roff.text([roman(
        "The control socket, when --socket is not given. When neither is set (or the \
         variable is empty), the socket is /run/minder/control.sock.",
    )]);
    roff.control("TP", []);
    roff.text([bold("XDG_RUNTIME_DIR")]);
    roff.text([roman(
        "For a user other than root, the default socket is \
         $XDG_RUNTIME_DIR/minder/control.sock when this is set: where a minder run by \
         that user puts its socket by default.",
    )]);

    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([bold("/run/minder/control.sock")]);
    roff.text([roman(
        "The default control socket (daemon.control_socket in minder.toml(5)).",
    )]);

    roff.control("SH", ["NOTES"]);
    roff.text([roman(
        "Ctrl-C ends a followed stream (logs -f, events -f) quietly, with exit status 0. \
         When minder cannot keep up with a client that reads too slowly, it ends the stream; \
         minderctl then says so on standard error and exits with status 1. With --json, \
         minderctl prints minder's answers as minder sent them: a result as one document, \
         items of a stream one per line; errors still go to standard error.",
    )]);

    roff.control("SH", ["EXAMPLES"]);
    for (example, meaning) in [
        ("minderctl status", "The whole tree as a table."),
        (
            "minderctl status --json | jq '.services[] | select(.state != \"running\")'",
            "Every service that is not running, from the JSON document.",
        ),
        (
            "minderctl stop api; minderctl start api",
            "Hold a service down, then release it.",
        ),
        (
            "minderctl signal api HUP",
            "Send SIGHUP to api's process group.",
        ),
        (
            "minderctl logs web -n 100 -f",
            "The last 100 lines of every instance of web, then follow them, each line \
             prefixed with its instance's name.",
        ),
        (
            "minderctl events -f",
            "Follow starts, exits, restarts and failed checks as they happen.",
        ),
        (
            "minderctl reload --dry-run",
            "What a reload would start, stop and restart, and which keys cause it.",
        ),
        (
            "docker exec CONTAINER minderctl status",
            "The state of a container whose PID 1 is minder, over the default socket.",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(example)]);
        roff.text([roman(meaning)]);
    }

    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("minder"),
        roman("(8), "),
        bold("minder.toml"),
        roman("(5)"),
    ]);

    roff.to_writer(&mut out)?;
    Ok(out)
}

/// One command in COMMANDS: its usage line, its long description, and its own options.
fn command_entry(roff: &mut Roff, sub: &clap::Command) {
    let own_args: Vec<&clap::Arg> = sub
        .get_arguments()
        .filter(|arg| !arg.is_global_set() && !arg.is_hide_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .collect();

    let mut usage = vec![bold(sub.get_name().to_string())];
    for arg in own_args.iter().filter(|arg| !arg.is_positional()) {
        usage.push(roman(" ["));
        usage.push(bold(option_name(arg)));
        if let Some(value) = value_name(arg) {
            usage.push(roman(" "));
            usage.push(italic(value));
        }
        usage.push(roman("]"));
    }
    for arg in own_args.iter().filter(|arg| arg.is_positional()) {
        let value = value_name(arg).unwrap_or_else(|| arg.get_id().to_string());
        let repeated = matches!(arg.get_action(), clap::ArgAction::Append);
        let (open, close) = if arg.is_required_set() {
            (" ", "")
        } else {
            (" [", "]")
        };
        usage.push(roman(open));
        usage.push(italic(value));
        usage.push(roman(format!(
            "{close}{}",
            if repeated { "..." } else { "" }
        )));
    }
    roff.control("TP", []);
    roff.text(usage);
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        roff.text([roman(about.to_string())]);
    }
    let options: Vec<&&clap::Arg> = own_args.iter().filter(|arg| !arg.is_positional()).collect();
    if !options.is_empty() {
        roff.control("RS", []);
        for arg in options {
            let mut header = Vec::new();
            if let Some(short) = arg.get_short() {
                header.push(bold(format!("-{short}")));
                header.push(roman(", "));
            }
            if let Some(long) = arg.get_long() {
                header.push(bold(format!("--{long}")));
            }
            if let Some(value) = value_name(arg) {
                header.push(roman(" "));
                header.push(italic(value));
            }
            roff.control("TP", []);
            roff.text(header);
            let mut help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() && value_name(arg).is_some() {
                help.push_str(&format!(" [default: {}]", defaults.join(", ")));
            }
            roff.text([roman(help)]);
        }
        roff.control("RE", []);
    }
}

/// `--lines` (or `-f` for a flag with only a short name).
fn option_name(arg: &clap::Arg) -> String {
    match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// The value an argument takes (`N`, `NAME`), `None` for a flag.
fn value_name(arg: &clap::Arg) -> Option<String> {
    let takes_value = arg.get_num_args().is_some_and(|range| range.takes_values());
    if !takes_value {
        return None;
    }
    Some(
        arg.get_value_names()
            .and_then(|names| names.first())
            .map_or_else(
                || arg.get_id().to_string().to_uppercase(),
                ToString::to_string,
            ),
    )
}
