//! Identity changes (qmail's `prot.c`): supplementary groups, gid, uid, in that order, then verified.
//!
//! Root programs call [`drop_to`] before touching anything on behalf of a less trusted party. The
//! verification re-reads real, effective and saved ids so that a partially failed drop can never go
//! unnoticed.

use nix::unistd::{getresgid, getresuid, setgid, setgroups, setuid, Gid, Uid};

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
    let mut scratch = vec![0; id.groups.len() + 1];
    verify_ids(id.uid, id.gid, &id.groups, &mut scratch)
}

/// [`verify`] without allocating, for a forked child of a multi-threaded parent (the spawn door's
/// fork path): real, effective and saved uid must be `uid`, the three gids `gid`, and the
/// supplementary groups the same set as `groups`. `scratch` receives the kernel's group list; it
/// must be longer than `groups` (a process holding more groups than `scratch` fits fails the
/// check, as it must: it holds a group `groups` does not name).
pub fn verify_ids(uid: u32, gid: u32, groups: &[u32], scratch: &mut [u32]) -> nix::Result<()> {
    let u = getresuid()?;
    let g = getresgid()?;
    let want_u = Uid::from_raw(uid);
    let want_g = Gid::from_raw(gid);
    if [u.real, u.effective, u.saved] != [want_u; 3]
        || [g.real, g.effective, g.saved] != [want_g; 3]
        || scratch.len() <= groups.len()
    {
        return Err(nix::errno::Errno::EPERM);
    }
    // nix's getgroups returns a Vec; this one fills the caller's buffer. A size of 0 would ask for
    // the count only, which the length check above rules out.
    #[allow(unsafe_code)]
    // SAFETY: `scratch` is valid for writes of `scratch.len()` gids, the size passed.
    let n = unsafe { libc::getgroups(scratch.len() as libc::c_int, scratch.as_mut_ptr()) };
    let have = match usize::try_from(n) {
        Ok(n) if n <= scratch.len() => &scratch[..n],
        _ => return Err(nix::errno::Errno::EPERM),
    };
    let same_set =
        have.iter().all(|g| groups.contains(g)) && groups.iter().all(|g| have.contains(g));
    if !same_set {
        return Err(nix::errno::Errno::EPERM);
    }
    Ok(())
}
