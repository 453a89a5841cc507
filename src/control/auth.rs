//! Who may do what over the control socket: the peer's credentials, as the kernel gave
//! them for the connection (`SO_PEERCRED`), mapped to a `Role`.
//!
//! Root and minder's own uid may do everything; members of `control_group` may read
//! (status, logs, events); anyone else may do nothing. The socket file's mode is the
//! first gate, this is the second, checked on every request. Membership is read from
//! the peer process itself (its gid and the supplementary groups in /proc/PID/status),
//! not from the group database: that is what the kernel grants the process, and it
//! needs no NSS lookup, which could block the loop's thread.

use crate::control::protocol::Command;

/// What a connection's peer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Root or minder's own user: every command.
    Admin,
    /// A member of `control_group`: status, logs and events.
    Reader,
    /// Anyone else: nothing.
    None,
}

impl Role {
    pub fn allows(self, command: &Command) -> bool {
        match self {
            Role::Admin => true,
            Role::Reader => command.is_read_only(),
            Role::None => false,
        }
    }
}

/// What the server checks peers against; fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// minder's effective uid.
    pub own_uid: u32,
    /// The gid of `control_group`, resolved at start.
    pub reader_gid: Option<u32>,
}

impl Access {
    /// The role of a peer with this uid, gid and pid (the pid's supplementary groups
    /// are read from /proc; a peer that has already gone has only its gid).
    pub fn role(&self, uid: u32, gid: u32, pid: Option<i32>) -> Role {
        if uid == 0 || uid == self.own_uid {
            return Role::Admin;
        }
        let Some(reader_gid) = self.reader_gid else {
            return Role::None;
        };
        let member = gid == reader_gid
            || pid.is_some_and(|pid| supplementary_groups(pid).contains(&reader_gid));
        if member { Role::Reader } else { Role::None }
    }
}

/// The supplementary groups of a process (`Groups:` in /proc/PID/status); empty if it
/// cannot be read.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    match crate::procfs::status_field(pid, "Groups") {
        Ok(Some(groups)) => groups
            .split_whitespace()
            .filter_map(|gid| gid.parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_own_uid_are_admins_group_members_readers() {
        let access = Access {
            own_uid: 1000,
            reader_gid: Some(4),
        };
        assert_eq!(access.role(0, 0, None), Role::Admin);
        assert_eq!(access.role(1000, 1000, None), Role::Admin);
        assert_eq!(access.role(1001, 4, None), Role::Reader);
        assert_eq!(access.role(1001, 1001, None), Role::None);
        let no_group = Access {
            reader_gid: None,
            ..access
        };
        assert_eq!(no_group.role(1001, 4, None), Role::None);
        // This test process's own supplementary groups count as membership.
        let pid = std::process::id() as i32;
        if let Some(&group) = supplementary_groups(pid).first() {
            let access = Access {
                own_uid: 1000,
                reader_gid: Some(group),
            };
            assert_eq!(access.role(1001, 1001, Some(pid)), Role::Reader);
        }
    }

    #[test]
    fn readers_may_only_read() {
        use crate::control::protocol::{NameArgs, StatusArgs};
        let stop = Command::Stop(NameArgs { name: "a".into() });
        let status = Command::Status(StatusArgs::default());
        assert!(Role::Reader.allows(&status));
        assert!(!Role::Reader.allows(&stop));
        assert!(Role::Admin.allows(&stop));
        assert!(!Role::None.allows(&status));
    }
}
