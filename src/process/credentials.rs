//! Resolving `user` and `group` of a service into the numeric identity its process takes
//! on: uid, gid, supplementary groups, and the passwd entry's HOME/USER/LOGNAME/SHELL.
//!
//! Runs in the parent before the clone, because user and group lookups go through NSS
//! (files, LDAP, ...), which allocates and takes locks and so must never run between clone
//! and exec. It changes nothing: the switch itself happens in the child (`spawn.rs`).

use crate::config::printable;
use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::{CString, OsString};

/// Who the child becomes. `None` fields are left as minder's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
    /// Supplementary groups (`setgroups`), set whenever `gid` is: the user's groups from
    /// the group database (initgroups semantics), or just `gid` when only `group` is set
    /// (so root's supplementary groups do not leak into a service that asked for a
    /// group).
    pub groups: Option<Vec<libc::gid_t>>,
    /// HOME, USER, LOGNAME, SHELL from the passwd entry; empty without `user` or when a
    /// numeric uid has no passwd entry.
    pub env: Vec<(OsString, OsString)>,
}

/// How long a resolved identity is reused. Lookups go through NSS, which may be a
/// network service (sssd, LDAP) and runs on the loop's thread: services with `user`
/// and their exec probes (one spawn a second, say) must not ask it every time. An
/// edit of the user database takes effect within this time.
const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// `resolve`, remembered for `CACHE_FOR` per (user, group). Called on the loop's
/// thread only, so the cache is that thread's own.
pub fn resolve_cached(user: Option<&str>, group: Option<&str>) -> Result<Credentials, String> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::time::Instant;
    type Key = (Option<String>, Option<String>);
    /// When it was resolved, and what came out.
    type Entry = (Instant, Result<Credentials, String>);
    thread_local! {
        static CACHE: RefCell<HashMap<Key, Entry>> = RefCell::new(HashMap::new());
    }
    if user.is_none() && group.is_none() {
        return Ok(Credentials::default());
    }
    let key: Key = (user.map(str::to_string), group.map(str::to_string));
    let now = Instant::now();
    if let Some(hit) = CACHE.with_borrow(|cache| {
        cache
            .get(&key)
            .filter(|(at, _)| now.duration_since(*at) < CACHE_FOR)
            .map(|(_, result)| result.clone())
    }) {
        return hit;
    }
    let result = resolve(user, group);
    CACHE.with_borrow_mut(|cache| {
        cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_FOR);
        cache.insert(key, (now, result.clone()));
    });
    result
}

/// Resolves the service's `user` and `group`. A name that is all digits and not found
/// as a name is taken as a numeric id (as `chown` and Docker's `--user` do). The error
/// is the clause after `spawn NAME: `.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Credentials, String> {
    let mut credentials = Credentials::default();
    let mut user_name_and_primary: Option<(String, Gid)> = None;
    if let Some(user) = user {
        match lookup_user(user)? {
            UserLookup::Entry(entry) => {
                credentials.uid = Some(entry.uid.as_raw());
                credentials.gid = Some(entry.gid.as_raw());
                credentials.env = vec![
                    ("HOME".into(), entry.dir.into_os_string()),
                    ("USER".into(), entry.name.clone().into()),
                    ("LOGNAME".into(), entry.name.clone().into()),
                    ("SHELL".into(), entry.shell.into_os_string()),
                ];
                user_name_and_primary = Some((entry.name, entry.gid));
            }
            UserLookup::Numeric(uid) => {
                // No passwd entry: the group defaults to the same number, as Docker
                // does for `--user 1234`.
                credentials.uid = Some(uid);
                credentials.gid = Some(uid);
            }
        }
    }
    if let Some(group) = group {
        credentials.gid = Some(lookup_group(group)?);
    }
    if let Some(gid) = credentials.gid {
        credentials.groups = Some(match &user_name_and_primary {
            Some((name, _)) => supplementary_groups(name, gid)?,
            None => vec![gid],
        });
    }
    Ok(credentials)
}

/// How an error names what a child was setting when `setgroups` failed: the user's
/// supplementary groups, or, with `group` and no `user`, that one group alone (see
/// `Credentials::groups`). User text is escaped.
pub fn groups_being_set(user: Option<&str>, group: Option<&str>) -> String {
    match (user, group) {
        (Some(user), _) => format!("supplementary groups of user `{}`", printable(user)),
        (None, Some(group)) => {
            format!("supplementary groups to group `{}` alone", printable(group))
        }
        (None, None) => "supplementary groups".to_string(),
    }
}

enum UserLookup {
    Entry(User),
    Numeric(libc::uid_t),
}

fn lookup_user(user: &str) -> Result<UserLookup, String> {
    let shown = printable(user);
    match User::from_name(user) {
        Ok(Some(entry)) => return Ok(UserLookup::Entry(entry)),
        Ok(None) => {}
        Err(errno) => return Err(format!("look up user `{shown}`: {errno}")),
    }
    match user.parse::<libc::uid_t>() {
        Ok(uid) => match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(entry)) => Ok(UserLookup::Entry(entry)),
            Ok(None) => Ok(UserLookup::Numeric(uid)),
            Err(errno) => Err(format!("look up user `{shown}`: {errno}")),
        },
        Err(_) => Err(format!("unknown user `{shown}`")),
    }
}

fn lookup_group(group: &str) -> Result<libc::gid_t, String> {
    let shown = printable(group);
    match Group::from_name(group) {
        Ok(Some(entry)) => Ok(entry.gid.as_raw()),
        Ok(None) => group
            .parse::<libc::gid_t>()
            .map_err(|_| format!("unknown group `{shown}`")),
        Err(errno) => Err(format!("look up group `{shown}`: {errno}")),
    }
}

fn supplementary_groups(user: &str, gid: libc::gid_t) -> Result<Vec<libc::gid_t>, String> {
    let shown = printable(user);
    let name = CString::new(user.as_bytes())
        .map_err(|_| format!("user name `{shown}` contains a NUL byte"))?;
    let mut groups: Vec<libc::gid_t> = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
        .map_err(|errno| format!("look up groups of user `{shown}`: {errno}"))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_with_passwd_variables() {
        let credentials = resolve(Some("root"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(credentials.uid, Some(0));
        assert_eq!(credentials.gid, Some(0));
        assert!(credentials.groups.as_ref().is_some_and(|g| g.contains(&0)));
        let keys: Vec<_> = credentials.env.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, ["HOME", "USER", "LOGNAME", "SHELL"]);
    }

    #[test]
    fn unknown_names_are_errors_and_numbers_are_ids() {
        assert_eq!(
            resolve(Some("no-such-user-minder"), None),
            Err("unknown user `no-such-user-minder`".into())
        );
        assert_eq!(
            resolve(None, Some("no-such-group-minder")),
            Err("unknown group `no-such-group-minder`".into())
        );
        let numeric = resolve(Some("4242424"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(numeric.uid, Some(4242424));
        assert_eq!(numeric.gid, Some(4242424));
        assert_eq!(numeric.groups, Some(vec![4242424]));
        let only_group = resolve(None, Some("0")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((only_group.uid, only_group.gid), (None, Some(0)));
    }

    #[test]
    fn the_groups_being_set_are_named_by_what_the_service_asked_for() {
        assert_eq!(
            groups_being_set(Some("app"), Some("staff")),
            "supplementary groups of user `app`"
        );
        assert_eq!(
            groups_being_set(None, Some("staff")),
            "supplementary groups to group `staff` alone"
        );
        assert_eq!(
            groups_being_set(Some("a\nb"), None),
            "supplementary groups of user `a\\nb`"
        );
    }

    #[test]
    fn cached_resolution_gives_what_a_fresh_one_gives() {
        for (user, group) in [
            (Some("nobody"), None),
            (Some("root"), Some("nogroup")),
            (Some("no-such-user-here"), None),
            (None, None),
        ] {
            let fresh = resolve(user, group);
            assert_eq!(resolve_cached(user, group), fresh, "{user:?} {group:?}");
            // The second answer comes from the cache and is the same.
            assert_eq!(resolve_cached(user, group), fresh, "{user:?} {group:?}");
        }
    }
}
