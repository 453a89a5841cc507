//! Parsers for the scalar forms a config file uses (durations, signals, umasks, command
//! strings, names) and the small helpers that word error messages (value descriptions,
//! "did you mean" suggestions).
//!
//! Owns only pure string → value functions. It knows nothing of keys, tables or
//! positions (the lowering pass adds those) and must never panic on any input.

use crate::signals::SIGNALS;
use std::time::Duration;

/// A signal given by name (`"SIGINT"`, `"INT"`, any case). The error is what was
/// expected plus the closest valid name, if any.
pub(crate) fn signal_by_name(text: &str) -> Result<i32, (String, Option<String>)> {
    let upper = text.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, number)) = SIGNALS.iter().find(|(name, _)| *name == bare) {
        return Ok(*number);
    }
    let candidates: Vec<String> = SIGNALS
        .iter()
        .map(|(name, _)| format!("SIG{name}"))
        .collect();
    let best = suggest(&format!("SIG{bare}"), candidates.iter().map(String::as_str));
    Err((
        "expected a signal name like \"SIGTERM\" or \"INT\", or a number".to_string(),
        best.map(str::to_string),
    ))
}

/// A signal given by number: any signal the kernel can deliver, real-time ones included.
pub(crate) fn signal_by_number(number: i64) -> Result<i32, String> {
    let max = i64::from(libc::SIGRTMAX());
    match i32::try_from(number) {
        Ok(signal) if (1..=max).contains(&number) => Ok(signal),
        _ => Err(format!("expected a signal number between 1 and {max}")),
    }
}

/// The name `render` prints for a signal number: minder's one `signal_name`.
pub(crate) use crate::signals::signal_name;

/// Duration units, as the manual lists them, with their length in nanoseconds. Spelt
/// exactly and case-sensitively: `M` (a month to some readers, a minute to others),
/// months and years (whose length varies) are not units here.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("sec", NANOS_PER_SECOND),
    ("second", NANOS_PER_SECOND),
    ("seconds", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("min", 60 * NANOS_PER_SECOND),
    ("minute", 60 * NANOS_PER_SECOND),
    ("minutes", 60 * NANOS_PER_SECOND),
    ("h", 3600 * NANOS_PER_SECOND),
    ("hr", 3600 * NANOS_PER_SECOND),
    ("hour", 3600 * NANOS_PER_SECOND),
    ("hours", 3600 * NANOS_PER_SECOND),
    ("d", 86_400 * NANOS_PER_SECOND),
    ("day", 86_400 * NANOS_PER_SECOND),
    ("days", 86_400 * NANOS_PER_SECOND),
    ("w", 7 * 86_400 * NANOS_PER_SECOND),
    ("week", 7 * 86_400 * NANOS_PER_SECOND),
    ("weeks", 7 * 86_400 * NANOS_PER_SECOND),
];

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Spellings other programs accept (humantime, systemd) that are not units here, with
/// the unit meant, for the error message.
const UNIT_ALIASES: &[(&str, &str)] = &[
    ("nsec", "ns"),
    ("nanos", "ns"),
    ("usec", "us"),
    ("µs", "us"),
    ("msec", "ms"),
    ("millis", "ms"),
    ("secs", "s"),
    ("mins", "min"),
    ("hrs", "h"),
    ("wk", "w"),
    ("wks", "w"),
];

/// What every duration error starts with: the form and the accepted units.
const DURATION_EXPECTED: &str = "expected a duration like \"250ms\", \"10s\" or \"5m\" \
     (units ns, us, ms, s or sec, m or min, h or hr, d or day, w or week)";

/// `"250ms"`, `"10s"`, `"1.5s"`, `"5m"`, `"1h 30m"`, `"1h30m"`: one or more numbers,
/// each followed by a unit of `DURATION_UNITS` (a space between a number and its unit,
/// and between parts, is allowed). A unit is always required, so that `"10"` cannot
/// silently mean seconds to one reader and milliseconds to another; `"0"` too, for
/// the same rule. A fraction below a nanosecond is dropped.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{DURATION_EXPECTED}; found an empty string"));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (nanos, after) = duration_part(rest)?;
        // Capped below, so the sum of any number of parts stays far from overflowing.
        total = total.saturating_add(nanos);
        rest = after.trim_start();
    }
    let max = MAX_DURATION.as_nanos();
    if total > max {
        // Deadlines are instants on the monotonic clock: a duration of centuries would
        // overflow one, and no timeout or backoff is meant to be that long.
        return Err("expected a duration of at most 10 years (3650d)".to_string());
    }
    let seconds = u64::try_from(total / NANOS_PER_SECOND).unwrap_or(u64::MAX);
    let nanos = u32::try_from(total % NANOS_PER_SECOND).unwrap_or(0);
    Ok(Duration::new(seconds, nanos))
}

/// One `NUMBER UNIT` at the start of `text`: its length in nanoseconds (saturating:
/// anything above `MAX_DURATION` is refused by the caller) and the text after it.
fn duration_part(text: &str) -> Result<(u128, &str), String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (whole, rest) = text.split_at(digits_end);
    if whole.is_empty() {
        let found = text.chars().next().unwrap_or(' ');
        return Err(format!(
            "{DURATION_EXPECTED}; expected a number where {found:?} stands"
        ));
    }
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            if end == 0 {
                return Err(format!(
                    "{DURATION_EXPECTED}; a decimal point needs digits after it, like \"1.5s\""
                ));
            }
            after_dot.split_at(end)
        }
        None => ("", rest),
    };
    let rest = rest.trim_start();
    let unit_end = rest
        .find(|c: char| c.is_ascii_digit() || c.is_whitespace() || c == '.')
        .unwrap_or(rest.len());
    let (unit, after) = rest.split_at(unit_end);
    let number = if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    };
    let factor = duration_unit(unit, &number)?;
    // Digits beyond what fits are beyond the cap anyway (for the whole part) or below a
    // nanosecond (for the fraction), so saturating and truncating lose nothing.
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .saturating_mul(10)
            .saturating_add(u128::from(digit - b'0'));
    }
    nanos = nanos.saturating_mul(factor);
    let mut scale = factor;
    for digit in fraction.bytes() {
        if scale < 10 {
            break;
        }
        scale /= 10;
        nanos = nanos.saturating_add(u128::from(digit - b'0') * scale);
    }
    Ok((nanos, after))
}

/// The length of `unit` in nanoseconds, or an error that says what was meant.
fn duration_unit(unit: &str, number: &str) -> Result<u128, String> {
    if let Some((_, factor)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) {
        return Ok(*factor);
    }
    let hint = if unit.is_empty() {
        format!("a unit is required after {number}, like \"{number}s\" or \"{number}ms\"")
    } else if unit == "M" {
        format!(
            "\"M\" is not a unit (a month? a minute?): for minutes write \"{number}m\" or \"{number}min\""
        )
    } else if ["y", "yr", "yrs", "year", "years", "month", "months", "mo"].contains(&unit) {
        format!(
            "\"{unit}\" is not a unit: months and years have no fixed length; write days or weeks, like \"30d\" or \"52w\""
        )
    } else if let Some((_, meant)) = UNIT_ALIASES.iter().find(|(alias, _)| *alias == unit) {
        format!("\"{unit}\" is not a unit here: did you mean \"{number}{meant}\"?")
    } else {
        let lower = unit.to_ascii_lowercase();
        let names = DURATION_UNITS.iter().map(|(name, _)| *name);
        let mut hint = format!("unknown unit \"{}\"", short(unit));
        if let Some((name, _)) = DURATION_UNITS.iter().find(|(name, _)| *name == lower) {
            hint.push_str(&format!(
                " (units are lowercase): did you mean \"{number}{name}\"?"
            ));
        } else if let Some(best) = suggest(unit, names) {
            hint.push_str(&format!(", did you mean \"{number}{best}\"?"));
        }
        hint
    };
    Err(format!("{DURATION_EXPECTED}; {hint}"))
}

/// The spelling `render` prints for a duration: parts from days down to nanoseconds
/// (`"1d 2h"`, `"1m 30s"`, `"1s 500ms"`, `"0s"`), which `duration` reads back to the
/// same value.
pub(crate) fn format_duration(duration: Duration) -> String {
    const PARTS: &[(&str, u128)] = &[
        ("d", 86_400 * NANOS_PER_SECOND),
        ("h", 3600 * NANOS_PER_SECOND),
        ("m", 60 * NANOS_PER_SECOND),
        ("s", NANOS_PER_SECOND),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let mut left = duration.as_nanos();
    if left == 0 {
        return "0s".to_string();
    }
    let mut parts = Vec::new();
    for (unit, factor) in PARTS {
        if left >= *factor {
            parts.push(format!("{}{unit}", left / factor));
            left %= factor;
        }
    }
    parts.join(" ")
}

/// The longest duration a config may give.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `"0027"` (octal digits only, at most 0777).
pub(crate) fn umask_from_str(text: &str) -> Result<u32, String> {
    let expected = "expected an octal umask between \"0000\" and \"0777\", like \"0027\"";
    let digits = text.trim();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(expected.to_string());
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(expected.to_string()),
    }
}

/// Checks a service or group name: `[a-z0-9][a-z0-9_-]*`. Dots are reserved for
/// instance names (`web.0`), so a user-given name may not contain one.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'));
    let rest_ok = bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if !first_ok || !rest_ok {
        let hint = if name.contains('.') {
            " (dots are reserved for instance names like `web.0`)"
        } else {
            ""
        };
        return Err(format!(
            "invalid name \"{}\": expected lowercase letters, digits, `_` and `-`, starting with a letter or digit{hint}",
            short(name)
        ));
    }
    if name == "root" {
        return Err("the name \"root\" is reserved for the [root] group".to_string());
    }
    Ok(())
}

/// Splits a command string into argv the way a POSIX shell splits words, without
/// running a shell: whitespace separates words; single quotes keep everything literal;
/// double quotes keep everything but `\"`, `\\`, `\$`, `` \` `` and backslash-newline;
/// outside quotes a backslash escapes the next character. Characters a shell would give
/// a meaning to (`| & ; < > $` and backquote) are refused unless quoted, because no
/// shell runs and the user most likely expected one.
pub(crate) fn split_command(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word exists once anything (even an empty pair of quotes) was written for it.
    let mut in_word = false;
    let mut chars = text.chars().enumerate().peekable();
    while let Some((index, c)) = chars.next() {
        let position = index + 1;
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, other)) => word.push(other),
                        None => {
                            return Err(format!(
                                "unterminated single quote (opened at character {position} of the command)"
                            ));
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\n')) => {}
                            Some((_, escaped @ ('"' | '\\' | '$' | '`'))) => word.push(escaped),
                            Some((_, other)) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => {
                                return Err(format!(
                                    "unterminated double quote (opened at character {position} of the command)"
                                ));
                            }
                        },
                        Some((inner, special @ ('$' | '`'))) => {
                            return Err(shell_syntax(special, inner + 1));
                        }
                        Some((_, other)) => word.push(other),
                        None => {
                            return Err(format!(
                                "unterminated double quote (opened at character {position} of the command)"
                            ));
                        }
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, escaped)) => {
                    in_word = true;
                    word.push(escaped);
                }
                None => {
                    return Err(format!(
                        "trailing backslash at character {position} of the command escapes nothing"
                    ));
                }
            },
            '|' | '&' | ';' | '<' | '>' | '$' | '`' => return Err(shell_syntax(c, position)),
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn shell_syntax(c: char, position: usize) -> String {
    format!(
        "`{c}` at character {position} is shell syntax, but no shell runs the command; \
         quote it, or write command = [\"sh\", \"-c\", \"...\"]"
    )
}

/// Quotes one word so that `split_command` (and a shell) reads it back unchanged;
/// words that need no quoting are left bare so `render` stays readable.
pub(crate) fn quote_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        word.to_string()
    } else if word.chars().any(char::is_control) {
        // Control characters would make the rendered line unreadable or break it.
        format!("{word:?}")
    } else if !word.contains('\'') {
        format!("'{word}'")
    } else if !word.contains(['"', '$', '`', '\\']) {
        // Double quotes read better than the '\'' dance when nothing inside needs them.
        format!("\"{word}\"")
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The closest of `candidates` to `found`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    found: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    // The distance table is quadratic: a huge key is no typo worth a suggestion.
    if found.len() > 64 {
        return None;
    }
    let found_lower = found.to_ascii_lowercase();
    let found_length = found_lower.chars().count();
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let length = candidate.chars().count();
            let allowed = (length / 3).max(2);
            // The distance is at least the difference in length: skip a candidate that
            // cannot be close enough before paying for a table (a name can be long).
            if length.abs_diff(found_length) > allowed {
                return None;
            }
            let distance = edit_distance(&found_lower, &candidate.to_ascii_lowercase());
            (distance <= allowed).then_some((distance, candidate))
        })
        // Ties go to the smaller word, so the answer never depends on the order a
        // hash map hands the candidates out in.
        .min()
        .map(|(_, candidate)| candidate)
}

/// Edit distance where swapping two neighbours counts as one edit (optimal string
/// alignment), since transposed letters are the commonest typo ("SIGTREM"). Keeps three
/// rows of the table (the transposition looks two rows back), so the cost is one small
/// allocation whatever the lengths.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Row i holds the distances between the first i chars of a and every prefix of b.
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[width - 1]
}

/// `text` with every control character (a NUL, a newline, an escape sequence's ESC)
/// and every invisible direction or formatting mark written as an escape (`\\0`,
/// `\\n`, `\\u{202e}`), so that an error message quoting user input prints as one
/// honest line on a terminal. Anything else is kept as written.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
    };
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A user-supplied string cut to a length that keeps one error on one line.
pub(crate) fn short(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    }
}

/// Checks a tcp probe address: `host:port`, with an IPv6 host in brackets
/// (`[::1]:80`) and a numeric port from 1 to 65535. The address is kept as written and
/// resolved at probe time, so a host name is only checked for its characters.
pub(crate) fn tcp_address(text: &str) -> Result<(), String> {
    let example = "expected \"host:port\" like \"127.0.0.1:5432\" or \"[::1]:80\"";
    if text.contains("://") {
        return Err(format!(
            "{example}, without a scheme (for an HTTP check, use `http` instead of `tcp`)"
        ));
    }
    host_and_port(text, true).map_err(|problem| format!("{problem}; {example}"))
}

/// Checks an http probe URL: `http://host[:port][/path][?query]`. The scheme must be
/// `http` (minder's probe speaks plain HTTP/1.1); the path may only hold the characters
/// RFC 3986 allows, so the probe can send it as it is.
pub(crate) fn http_url(text: &str) -> Result<(), String> {
    let example = "expected a URL like \"http://127.0.0.1:8080/health\"";
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => return Err(format!("no \"http://\" at the start; {example}")),
    };
    match scheme.as_str() {
        "http" => {}
        "https" => {
            return Err(
                "https is not supported yet (the http probe speaks plain HTTP); use an http:// URL, or a `tcp` or `exec` probe"
                    .to_string(),
            );
        }
        _ => {
            return Err(format!(
                "the scheme \"{}\" is not supported; {example}",
                short(&scheme)
            ));
        }
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(format!(
            "credentials in the URL (user@host) are not supported; {example}"
        ));
    }
    host_and_port(authority, false).map_err(|problem| format!("{problem}; {example}"))?;
    url_path(path).map_err(|problem| format!("{problem}; {example}"))
}

/// `host:port` (port required) or `host[:port]` (port optional), IPv6 in brackets.
fn host_and_port(text: &str, port_required: bool) -> Result<(), String> {
    if text.is_empty() {
        return Err("no host".to_string());
    }
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err("the IPv6 address has no closing `]`".to_string());
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("\"[{}]\" is not an IPv6 address", short(inside)));
        }
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => {
                return Err(format!(
                    "unexpected \"{}\" after the IPv6 address",
                    short(after)
                ));
            }
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) if host.contains(':') => {
                return Err(format!(
                    "an IPv6 address needs brackets: \"[{}]:{}\"",
                    short(host),
                    short(port)
                ));
            }
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(text), None),
        }
    };
    if let Some(host) = host {
        check_host(host)?;
    }
    match port {
        Some(port) => check_port(port),
        None if port_required => Err("no port".to_string()),
        None => Ok(()),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("no host before the port".to_string());
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "invalid character {bad:?} in the host \"{}\"",
            short(host)
        ));
    }
    // All digits and dots can only be an IPv4 address, so it must be a valid one.
    if host.chars().all(|c| c.is_ascii_digit() || c == '.')
        && host.parse::<std::net::Ipv4Addr>().is_err()
    {
        return Err(format!("\"{}\" is not an IPv4 address", short(host)));
    }
    Ok(())
}

fn check_port(port: &str) -> Result<(), String> {
    if port.is_empty() {
        return Err("the port after `:` is empty".to_string());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the port \"{}\" is not a number from 1 to 65535",
            short(port)
        ));
    }
    // Leading zeros aside, more than 5 digits is out of range whatever they are.
    match port.trim_start_matches('0').len() {
        0 => Err("port 0 is out of range (1 to 65535)".to_string()),
        1..=5 if port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("port {} is out of range (1 to 65535)", short(port))),
    }
}

/// The part of a URL after the authority: RFC 3986 path and query characters and
/// well-formed `%XX` escapes; no fragment (it is never sent to the server).
fn url_path(path: &str) -> Result<(), String> {
    let mut bytes = path.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'%' => {
                let hex = |byte: Option<u8>| byte.is_some_and(|byte| byte.is_ascii_hexdigit());
                if !(hex(bytes.next()) && hex(bytes.next())) {
                    return Err("`%` in the URL must start an escape like %20".to_string());
                }
            }
            b'#' => {
                return Err("a fragment (#...) is never sent to the server; remove it".to_string());
            }
            b' ' => {
                return Err("spaces in the URL must be written as %20".to_string());
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) => {}
            _ => {
                // Report the whole character, not one byte of it.
                let bad = path
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(*c)))
                    .unwrap_or('?');
                return Err(format!(
                    "the character {bad:?} is not allowed in a URL; percent-encode it"
                ));
            }
        }
    }
    Ok(())
}

/// Size units `max_memory` accepts, with their factors: IEC (powers of 1024) and SI
/// (powers of 1000), spelt exactly so that `M` or `mb` cannot be read two ways.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// A size in bytes: `"512MiB"`, `"1GiB"`, `"100MB"`, `"64 kB"` or a bare number of
/// bytes `"4096"`. Whole numbers only, greater than zero.
pub(crate) fn size(text: &str) -> Result<u64, String> {
    let expected = "expected a size like \"512MiB\", \"1GiB\" or \"100MB\" (units B, KiB, MiB, GiB, TiB, kB, MB, GB, TB) or a number of bytes";
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let unit = unit.trim_start();
    if digits.is_empty() {
        return Err(expected.to_string());
    }
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "{expected}; use a whole number with a smaller unit instead of a fraction (\"1536MiB\", not \"1.5GiB\")"
        ));
    }
    let factor = if unit.is_empty() {
        1
    } else {
        match SIZE_UNITS.iter().find(|(name, _)| *name == unit) {
            Some((_, factor)) => *factor,
            None if unit.len() == 1 && "kmgtKMGT".contains(unit) => {
                let letter = unit.to_ascii_uppercase();
                let si = if letter == "K" { "k" } else { letter.as_str() };
                return Err(format!(
                    "{expected}; \"{unit}\" is ambiguous: did you mean \"{digits}{letter}iB\" (powers of 1024) or \"{digits}{si}B\" (powers of 1000)?"
                ));
            }
            None => {
                let mut message = format!("{expected}; unknown unit \"{}\"", short(unit));
                let names = SIZE_UNITS.iter().map(|(name, _)| *name);
                if let Some(best) = suggest(unit, names) {
                    message.push_str(&format!(", did you mean \"{digits}{best}\"?"));
                }
                return Err(message);
            }
        }
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(factor))
        .ok_or_else(|| format!("{expected}; this one is too large"))?;
    if bytes == 0 {
        return Err(format!("{expected}, greater than zero"));
    }
    Ok(bytes)
}

/// The shortest exact spelling of a size that `size` reads back: the largest unit that
/// divides it (IEC first), else bare bytes.
pub(crate) fn format_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .filter(|(_, factor)| *factor > 1 && bytes.is_multiple_of(*factor))
        .max_by_key(|(name, factor)| (*factor, name.contains('i')))
        .map_or_else(
            || bytes.to_string(),
            |(name, factor)| format!("{}{name}", bytes / factor),
        )
}
