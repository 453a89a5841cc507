//! `minder`: parse the command line, load the config, hand over to the runtime, and map
//! the outcome to an exit code (the table is `minder::exit`).

use clap::{Parser, Subcommand};
use minder::config;
use minder::runtime::{self, RunMode};
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONFIG: &str = "/etc/minder/minder.toml";

#[derive(Parser)]
#[command(
    name = "minder",
    version,
    about = "A self-healing process supervisor",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Container mode: run this one command like tini (`minder -- cmd args`).
    #[arg(last = true, value_name = "CMD")]
    main: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Supervise the tree of CONFIG in the foreground.
    Run {
        /// The config file.
        #[arg(default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// A main process to run after the tree, as the last root child `main`.
        #[arg(last = true, value_name = "CMD")]
        main: Vec<String>,
    },
    /// Validate CONFIG and print the resolved tree; exit 0 if valid, 2 if not.
    Check {
        #[arg(default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { config: path }) => match config::load(&path) {
            Ok(spec) => {
                print!("{}", config::render(&spec));
                for warning in config::warnings(&spec) {
                    eprintln!(
                        "warning: {}: {warning}",
                        config::printable(&path.display().to_string())
                    );
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for error in &errors.0 {
                    eprintln!("error: {error}");
                }
                eprintln!(
                    "{}: {} error(s), nothing started",
                    config::printable(&path.display().to_string()),
                    errors.0.len()
                );
                exit(minder::exit::USAGE)
            }
        },
        Some(Command::Run { config: path, main }) => {
            if main.is_empty() && separator_given() {
                eprintln!(
                    "error: `--` must be followed by the command of the main process: minder run [CONFIG] -- CMD [ARGS...]"
                );
                return exit(minder::exit::USAGE);
            }
            let mut spec = match config::load(&path) {
                Ok(spec) => spec,
                Err(errors) => {
                    for error in &errors.0 {
                        eprintln!("error: {error}");
                    }
                    return exit(minder::exit::USAGE);
                }
            };
            // What `minder check` warns about is worth a line at every start too: the
            // file runs as written, but likely not as meant.
            for warning in config::warnings(&spec) {
                eprintln!(
                    "warning: {}: {warning}",
                    config::printable(&path.display().to_string())
                );
            }
            if !main.is_empty()
                && let Err(message) = runtime::add_main_service(&mut spec, main.clone())
            {
                eprintln!("error: {message}");
                return exit(minder::exit::USAGE);
            }
            // A reload reads the same file again (and adds the same main process).
            let source = runtime::ConfigSource { path, main };
            exit(runtime::run(spec, RunMode::Config, Some(source)))
        }
        None if !cli.main.is_empty() => exit(runtime::run(
            runtime::container_spec(cli.main),
            RunMode::Container,
            None,
        )),
        None => {
            eprintln!(
                "usage: minder run [CONFIG] | minder check [CONFIG] | minder -- CMD [ARGS...]"
            );
            exit(minder::exit::USAGE)
        }
    }
}

/// Whether the command line holds `--`. clap gives the same empty `main` for
/// `minder run CONFIG` and `minder run CONFIG --`; only the second is a mistake (a
/// main process was meant and is missing), and the first `--` is always the separator
/// (clap reads nothing before it as one).
fn separator_given() -> bool {
    std::env::args_os().skip(1).any(|arg| arg == "--")
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
