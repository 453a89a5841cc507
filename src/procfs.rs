//! Reading /proc: the one place that lists processes and parses `/proc/PID/stat` and
//! `/proc/PID/status`.
//!
//! The memory guard (`health`) sums resident sets by process group, the metrics
//! endpoint sums CPU time and resident sets by process group (`usage_by_group`), and
//! the runtime's last line of defence finds the processes parented to minder; all walk
//! /proc through `processes`. It owns only the reading and the parsing: what a caller makes
//! of a process is the caller's business. It never panics on what it reads (the
//! kernel's text is trusted for shape, not for content: a command name can hold any
//! byte but NUL), and a process that ends while it is being read is simply skipped.
//! Every read is a small file on a pseudo filesystem, but a walk still costs one open
//! and read per process: callers keep walks off the event loop's thread or out of its
//! hot path.

use std::io;

/// The fields of `/proc/PID/stat` that minder uses (see proc_pid_stat(5)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Field 1.
    pub pid: i32,
    /// Field 2, the command name without its parentheses, as the kernel wrote it (at
    /// most 15 bytes on Linux, but any byte except NUL, so not necessarily UTF-8).
    pub comm: Vec<u8>,
    /// Field 3, one letter: R, S, D, Z, T, t, X, I, ...
    pub state: u8,
    /// Field 4.
    pub ppid: i32,
    /// Field 5, the process group.
    pub pgrp: i32,
    /// Field 6, the session.
    pub session: i32,
    /// Fields 14 to 17 added up: user and system CPU time of the process and of the
    /// children it has waited for, in clock ticks (`clock_ticks_per_second`). Negative
    /// fields (the children's are printed signed) read as 0.
    pub cpu_ticks: u64,
    /// Field 24, the resident set in pages (what `statm` reports as resident). The
    /// kernel prints it signed; a negative value reads as 0.
    pub rss_pages: u64,
}

impl Stat {
    /// Whether the process has ended and waits to be reaped (Z) or is being torn down
    /// (X).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// Parses the text of `/proc/PID/stat`. `None` when it does not have the shape the
/// kernel writes: `pid (comm) state ppid pgrp session ...` with at least 24 fields.
///
/// The command name may contain spaces, parentheses and newlines (a process chooses it
/// with `prctl(PR_SET_NAME)`), so it runs from the first `(` to the *last* `)`: every
/// field after it is a number or the state letter, none holds a `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&byte| byte == b'(')?;
    let close = text.iter().rposition(|&byte| byte == b')')?;
    if close < open {
        return None;
    }
    let pid = number(text.get(..open)?.trim_ascii())?;
    let comm = text.get(open + 1..close)?.to_vec();
    let mut fields = text
        .get(close + 1..)?
        .split(|byte| byte.is_ascii_whitespace())
        .filter(|field| !field.is_empty());
    // Field 3 is the first after the `)`; field N is the (N-3)th from there.
    let state = match fields.next()? {
        [letter] if letter.is_ascii_alphabetic() => *letter,
        _ => return None,
    };
    let ppid = number(fields.next()?)?;
    let pgrp = number(fields.next()?)?;
    let session = number(fields.next()?)?;
    // Fields 7 to 13 are not needed; 14 to 17 are the CPU times.
    for _ in 7..14 {
        fields.next()?;
    }
    let mut cpu_ticks: u64 = 0;
    for _ in 14..=17 {
        let ticks: i64 = number(fields.next()?)?;
        cpu_ticks = cpu_ticks.saturating_add(u64::try_from(ticks).unwrap_or(0));
    }
    // Fields 18 to 23 are not needed; field 24 follows them.
    let rss: i64 = number(fields.nth(24 - 18)?)?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgrp,
        session,
        cpu_ticks,
        rss_pages: u64::try_from(rss).unwrap_or(0),
    })
}

/// A decimal number of the type asked for, from ASCII bytes; `None` for anything else
/// (including a value out of the type's range).
fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Reads and parses `/proc/PID/stat`. A process that does not exist (or has been
/// reaped) is `NotFound`; a file of an unexpected shape is `InvalidData`.
pub fn stat(pid: i32) -> io::Result<Stat> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read(&path)?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: not in the kernel's format"),
        )
    })
}

/// The value of the line `key:` of a `/proc/PID/status` text, trimmed (`"12"` for
/// `Threads:` in `Threads:\t12`). `None` when no line has that key.
pub fn parse_status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == key).then(|| value.trim())
    })
}

/// Reads the field `key` of `/proc/PID/status` (`"Threads"`, `"VmRSS"`, `"SigBlk"`,
/// ...). `Ok(None)` when the process has no such line (kernel threads have no `VmRSS`).
pub fn status_field(pid: i32, key: &str) -> io::Result<Option<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(parse_status_field(&text, key).map(str::to_string))
}

/// The pid of every process in /proc at the time of the call, in the order the kernel
/// lists them (thread ids are not listed, only processes). Empty when /proc cannot be
/// read (not mounted): callers treat that as "no process found", which is all they
/// could learn anyway.
pub fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let name = name.to_str()?;
            // `parse` would take a leading `+`; /proc's own entries never have one.
            if !name.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            name.parse().ok()
        })
}

/// `/proc/PID/stat` of every process that can be read, walking /proc once. Processes
/// that end during the walk, and entries that cannot be read or parsed, are skipped.
pub fn processes() -> impl Iterator<Item = Stat> {
    pids().filter_map(|pid| stat(pid).ok())
}

/// What the processes of one process group use, summed over its live members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupUsage {
    /// `Stat::cpu_ticks` of every member.
    pub cpu_ticks: u64,
    /// `Stat::rss_pages` of every member.
    pub rss_pages: u64,
}

/// CPU time and resident pages by process group, from one walk of /proc. Zombies are
/// left out: their memory is gone and their CPU time is about to move to the parent
/// that reaps them. A group none of whose members could be read is absent.
pub fn usage_by_group() -> std::collections::HashMap<i32, GroupUsage> {
    let mut groups: std::collections::HashMap<i32, GroupUsage> = std::collections::HashMap::new();
    for process in processes().filter(|process| !process.is_dead()) {
        let usage = groups.entry(process.pgrp).or_default();
        usage.cpu_ticks = usage.cpu_ticks.saturating_add(process.cpu_ticks);
        usage.rss_pages = usage.rss_pages.saturating_add(process.rss_pages);
    }
    groups
}

/// Clock ticks per second, the unit of `Stat::cpu_ticks`; 100 (Linux's USER_HZ on
/// every architecture) if the system will not say.
pub fn clock_ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|ticks| u64::try_from(ticks).ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// The size of a memory page in bytes, to turn `rss_pages` into bytes; 4096 if the
/// system will not say.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| u64::try_from(size).ok())
        .filter(|size| *size > 0)
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests;
