//! Identity changes (qmail's `prot.c`): supplementary groups, gid, uid, in that order, then verified.
//!
//! Root programs call [`drop_to`] before touching anything on behalf of a less trusted party. The
//! verification re-reads real, effective and saved ids so that a partially failed drop can never go
//! unnoticed.

use nix::unistd::{getgroups, getresgid, getresuid, setgid, setgroups, setuid, Gid, Uid};

/// A Unix identity to become: uid, primary gid and the full supplementary group list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user id (real, effective and saved).
    pub uid: u32,
    /// The primary group id (real, effective and saved).
    pub gid: u32,
    /// The supplementary groups; qmail always sets exactly `[gid]`.
    pub groups: Vec<u32>,
}

impl Identity {
    /// qmail's usual identity: the groups list holds just the primary group.
    pub fn new(uid: u32, gid: u32) -> Self {
        Identity {
            uid,
            gid,
            groups: vec![gid],
        }
    }
}

/// Sets supplementary groups and the gid only (qmail-start does this before forking its children).
pub fn set_groups_and_gid(gid: u32, groups: &[u32]) -> nix::Result<()> {
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups)?;
    setgid(Gid::from_raw(gid))?;
    let r = getresgid()?;
    if [r.real, r.effective, r.saved] != [Gid::from_raw(gid); 3] {
        return Err(nix::errno::Errno::EPERM);
    }
    Ok(())
}

/// Becomes `id` for good: setgroups, setgid, setuid, then checks all three ids and the group list.
pub fn drop_to(id: &Identity) -> nix::Result<()> {
    set_groups_and_gid(id.gid, &id.groups)?;
    setuid(Uid::from_raw(id.uid))?;
    verify(id)
}

/// Checks that the process has exactly identity `id` (real, effective, saved; groups as a set).
pub fn verify(id: &Identity) -> nix::Result<()> {
    let u = getresuid()?;
    let g = getresgid()?;
    let want_u = Uid::from_raw(id.uid);
    let want_g = Gid::from_raw(id.gid);
    if [u.real, u.effective, u.saved] != [want_u; 3]
        || [g.real, g.effective, g.saved] != [want_g; 3]
    {
        return Err(nix::errno::Errno::EPERM);
    }
    let mut have: Vec<u32> = getgroups()?.iter().map(|g| g.as_raw()).collect();
    let mut want = id.groups.clone();
    have.sort_unstable();
    have.dedup();
    want.sort_unstable();
    want.dedup();
    if have != want {
        return Err(nix::errno::Errno::EPERM);
    }
    Ok(())
}
