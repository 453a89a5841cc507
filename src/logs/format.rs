//! How a captured line looks once written: the text and JSON layouts, for minder's own
//! stdout and stderr and for the per-service log files.
//!
//! Formatting happens on the writer threads (`writer.rs`, `files.rs`), not in the reader
//! tasks, so the cost of timestamps and JSON escaping never lands on the loop's thread.
//! This module only turns one line and its facts (service, stream, the time it was
//! read) into bytes; it owns no state but the width the text layout pads names to.
//!
//! The layouts (docs/design.md §6 lists them for users):
//! - text on minder's streams: `[TIME ]NAME | line`, NAME padded to the longest
//!   service name seen, so the `|` columns line up;
//! - text in a service's file: `[TIME ]stdout | line` or `[TIME ]stderr | line` (the
//!   file already says which service);
//! - JSON anywhere: `{"time":TIME,"service":NAME,"stream":"stdout","line":"..."}`.
//!
//! TIME is RFC 3339 in UTC with milliseconds (`2026-11-29T13:00:00.123Z`). JSON strings
//! are escaped by serde_json; bytes that are not UTF-8 become U+FFFD there (a JSON
//! string cannot hold them), while the text layouts pass them through untouched.

use super::writer::Stream;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What every writer of one hub needs to format a service line. Cloned into each
/// writer thread; `name_width` is shared, so a name attached later widens every
/// writer's padding at once.
#[derive(Clone, Debug, Default)]
pub struct Style {
    /// One JSON object per line (`log_format = "json"`).
    pub json: bool,
    /// A time before each text line (`log_timestamps`); JSON lines always have one.
    pub timestamps: bool,
    /// The longest service name attached so far (text layout on minder's streams).
    pub name_width: Arc<AtomicUsize>,
}

/// Where a line goes, which decides what its text prefix says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// minder's stdout or stderr, shared by every service: the prefix names the service.
    Shared,
    /// The service's own file: the prefix names the stream.
    OwnFile,
}

/// The most any layout adds to a line's text (time, padded name or stream, JSON keys),
/// beside the name itself and the escaping. Used to size a line's share of its budget.
pub const OVERHEAD: usize = 80;

impl Style {
    /// Appends `line` (without its newline) from `service`'s `stream`, read at `time`,
    /// as one complete output line (with newline) to `out`.
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        layout: Layout,
        service: &str,
        stream: Stream,
        time: SystemTime,
        line: &[u8],
    ) {
        if self.json {
            render_json(out, service, stream, time, line);
            return;
        }
        if self.timestamps {
            write_time(out, time);
            out.push(b' ');
        }
        match layout {
            Layout::Shared => {
                out.extend_from_slice(service.as_bytes());
                let width = self.name_width.load(Ordering::Relaxed);
                out.resize(out.len() + width.saturating_sub(service.len()), b' ');
            }
            Layout::OwnFile => out.extend_from_slice(stream.name().as_bytes()),
        }
        out.extend_from_slice(b" | ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

fn render_json(out: &mut Vec<u8>, service: &str, stream: Stream, time: SystemTime, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    out.extend_from_slice(b"{\"time\":\"");
    write_time(out, time);
    out.extend_from_slice(b"\",\"service\":");
    // Serialising a string into a Vec cannot fail; were it to, the line would still
    // be valid JSON with an empty value rather than cut short.
    if serde_json::to_writer(&mut *out, service).is_err() {
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"line\":");
    if serde_json::to_writer(&mut *out, &*text).is_err() {
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(b"}\n");
}

/// The last instant humantime can print (9999-12-31T23:59:59.999Z).
const LAST_PRINTABLE: Duration = Duration::from_millis(253_402_300_799_999);

/// RFC 3339, UTC, milliseconds. A clock set before 1970 or past 9999 (the formatter
/// refuses both) is printed as the nearest time it can print, rather than failing.
pub fn write_time(out: &mut Vec<u8>, time: SystemTime) {
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .min(LAST_PRINTABLE);
    let _ = write!(
        out,
        "{}",
        humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    fn render(style: &Style, layout: Layout, service: &str, line: &[u8]) -> String {
        let mut out = Vec::new();
        style.render(
            &mut out,
            layout,
            service,
            Stream::Stderr,
            at(1_764_421_200_123),
            line,
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn text_lines_pad_the_name_and_carry_the_time_when_asked() {
        let style = Style {
            json: false,
            timestamps: true,
            name_width: Arc::new(AtomicUsize::new(6)),
        };
        assert_eq!(
            render(&style, Layout::Shared, "db", b"hello"),
            "2025-11-29T13:00:00.123Z db     | hello\n"
        );
        assert_eq!(
            render(&style, Layout::OwnFile, "db", b"hello"),
            "2025-11-29T13:00:00.123Z stderr | hello\n"
        );
        let plain = Style::default();
        assert_eq!(render(&plain, Layout::Shared, "db", b"x"), "db | x\n");
        // Bytes that are not UTF-8 pass through the text layout as they are.
        let mut out = Vec::new();
        plain.render(
            &mut out,
            Layout::OwnFile,
            "db",
            Stream::Stdout,
            at(0),
            b"\xff!",
        );
        assert_eq!(out, b"stdout | \xff!\n");
    }

    #[test]
    fn json_lines_are_one_valid_object_whatever_the_bytes() {
        let style = Style {
            json: true,
            ..Style::default()
        };
        let line = render(
            &style,
            Layout::Shared,
            "web.0",
            b"a \"quote\"\t\\ \x01 \xff end",
        );
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"));
        assert_eq!(value["time"], "2025-11-29T13:00:00.123Z");
        assert_eq!(value["service"], "web.0");
        assert_eq!(value["stream"], "stderr");
        assert_eq!(value["line"], "a \"quote\"\t\\ \u{1} \u{fffd} end");
    }

    #[test]
    fn a_clock_outside_what_rfc_3339_can_print_is_clamped() {
        let mut out = Vec::new();
        write_time(&mut out, UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(out, b"1970-01-01T00:00:00.000Z");
        out.clear();
        write_time(&mut out, UNIX_EPOCH + Duration::from_secs(400_000_000_000));
        assert_eq!(out, b"9999-12-31T23:59:59.999Z");
    }
}
