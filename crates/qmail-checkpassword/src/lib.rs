//! checkpassword: the checkpassword interface (checkpassword(8)) for qmail-popup, verifying a
//! login against /etc/passwd and /etc/shadow. It replaces D. J. Bernstein's `checkpassword.c`,
//! which qmail's POP3 service runs between qmail-popup and qmail-pop3d.
//!
//! Who runs it: qmail-popup, normally as root (tcpserver's default), with the login data on fd 3.
//! What it reads: at most 512 bytes from fd 3 (`login\0password\0timestamp\0`), /etc/passwd
//! (through getpwnam) and /etc/shadow (read directly, bounded). On success it takes the user's
//! groups, gid and uid (through [`qmail_sys::prot::drop_to`]), changes to the home directory, sets
//! `USER`, `HOME` and `SHELL` and execs its arguments (`qmail-pop3d Maildir`).
//!
//! Hashes understood: sha512-crypt (`$6$`), sha256-crypt (`$5$`) and yescrypt (`$y$`), through the
//! RustCrypto `sha-crypt` and `yescrypt` crates, whose verifiers compare in constant time. Any
//! other hash (DES, MD5, bcrypt, a locked `!` or `*` entry, an empty field) never matches.
//!
//! EXIT CODES: 1 login refused (unknown user, wrong or empty password, unusable hash, too much
//! input) or identity change failed (as in the reference); 2 misuse (no program to run, fd 3
//! data without its two NULs); 111 temporary failure (fd 3 or /etc/shadow unreadable, chdir or
//! exec failed). A refusal waits [`FAIL_DELAY`] first. An unknown login, a locked account and a
//! wrong password cost the same hash computation, of the scheme and cost /etc/shadow's hashes
//! use ([`dummy`]), so timing does not tell them apart.
//!
//! SECURITY / trust: fd 3 comes from the network through qmail-popup and is untrusted: it is
//! bounded, parsed without panicking, and the password is never printed and is wiped from memory
//! after use. Nothing is written to any descriptor. The timestamp (APOP) is ignored, as in the
//! reference implementation, so APOP logins always fail.
#![deny(missing_docs)]

pub mod dummy;
pub mod shadow;

use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

/// Most bytes accepted on fd 3; reaching it refuses the login (as the reference does).
pub const MAX_INPUT: usize = 512;
/// Pause before reporting a refused login, to slow down guessing.
pub const FAIL_DELAY: Duration = Duration::from_secs(1);
/// Exit code: login refused.
pub const EXIT_REFUSED: i32 = 1;
/// Exit code: misuse.
pub const EXIT_MISUSE: i32 = 2;
/// Exit code: temporary failure.
pub const EXIT_TEMP: i32 = 111;

/// Login name and password taken from the fd 3 data.
#[derive(PartialEq, Eq)]
pub struct Credentials {
    /// The login name (bytes before the first NUL).
    pub login: Vec<u8>,
    /// The password (bytes between the first and second NUL).
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show the password, not even in a debug print.
        f.debug_struct("Credentials")
            .field("login", &String::from_utf8_lossy(&self.login))
            .finish()
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        wipe(&mut self.password);
    }
}

/// Overwrites `secret` with zeros in a way the optimiser keeps.
pub fn wipe(secret: &mut [u8]) {
    secret.fill(0);
    std::hint::black_box(&*secret);
}

/// Splits fd 3 data into login and password; `Err(exit code)` when the data is unusable.
pub fn parse_input(data: &[u8]) -> Result<Credentials, i32> {
    if data.len() >= MAX_INPUT {
        return Err(EXIT_REFUSED);
    }
    let mut parts = data.splitn(3, |&c| c == 0);
    let login = parts.next().unwrap_or_default();
    let password = parts.next();
    // The password must be NUL-terminated too: a third part (possibly empty) must exist.
    match (password, parts.next()) {
        (Some(password), Some(_)) => Ok(Credentials {
            login: login.to_vec(),
            password: password.to_vec(),
        }),
        _ => Err(EXIT_MISUSE),
    }
}

/// Reads fd 3 data from `r` to EOF, stopping at [`MAX_INPUT`] bytes.
pub fn read_input(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(MAX_INPUT);
    r.take(MAX_INPUT as u64).read_to_end(&mut data)?;
    Ok(data)
}

/// Whether `password` matches the crypt(3) string `hash` (`$6$`, `$5$` or `$y$`). Empty
/// passwords and any other hash format never match.
pub fn verify(password: &[u8], hash: &[u8]) -> bool {
    use sha_crypt::PasswordVerifier as _;
    if password.is_empty() {
        return false;
    }
    let Ok(hash) = std::str::from_utf8(hash) else {
        return false;
    };
    if hash.starts_with("$6$") || hash.starts_with("$5$") {
        sha_crypt::ShaCrypt::default()
            .verify_password(password, hash)
            .is_ok()
    } else if hash.starts_with("$y$") {
        use yescrypt::PasswordVerifier as _;
        yescrypt::Yescrypt::default()
            .verify_password(password, hash)
            .is_ok()
    } else {
        false
    }
}

/// The account data checkpassword needs from /etc/passwd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: Vec<u8>,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: Vec<u8>,
    /// Login shell.
    pub shell: Vec<u8>,
    /// The password field of /etc/passwd (used when /etc/shadow has no entry).
    pub passwd: Vec<u8>,
}

/// Looks `login` up with getpwnam; `Err(exit code)` when it fails or does not exist.
fn account(login: &[u8]) -> Result<Account, i32> {
    let name = std::str::from_utf8(login).map_err(|_| EXIT_REFUSED)?;
    if name.is_empty() || name.contains('\0') {
        return Err(EXIT_REFUSED);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(Account {
            name: login.to_vec(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir.into_os_string().into_vec(),
            shell: u.shell.into_os_string().into_vec(),
            passwd: u.passwd.into_bytes(),
        }),
        Ok(None) => Err(EXIT_REFUSED),
        Err(nix::errno::Errno::ETXTBSY) => Err(EXIT_TEMP),
        Err(_) => Err(EXIT_REFUSED),
    }
}

/// Decides whether the credentials are good; returns the account or the exit code.
///
/// Every refusal costs one hash computation of the system's scheme and cost: a wrong password
/// the user's own hash; a locked entry (`!` before a hash) that hash, result ignored; an unknown
/// login, or an account without a usable hash (`*`, `!`, empty, a scheme not understood), the
/// [`dummy`] made like the real hashes of /etc/shadow. The whole shadow file is read each time.
pub fn authenticate(creds: &Credentials, shadow_path: &std::path::Path) -> Result<Account, i32> {
    let acct = account(&creds.login);
    let name = acct.as_ref().map_or(&creds.login, |a| &a.name);
    let found = match std::fs::File::open(shadow_path) {
        Ok(f) => shadow::scan(&mut io::BufReader::new(f), name).map_err(|_| EXIT_TEMP)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => shadow::Found::default(),
        Err(_) => return Err(EXIT_TEMP),
    };
    let hash = match &acct {
        Ok(a) => found.hash.clone().unwrap_or_else(|| a.passwd.clone()),
        Err(_) => Vec::new(),
    };
    let locked = hash.strip_prefix(b"!").filter(|h| dummy::computed(h));
    let (check, may_match) = match locked {
        Some(h) => (h.to_vec(), false),
        None if dummy::computed(&hash) => (hash, true),
        None => (dummy::dummy(found.model.as_deref()), false),
    };
    if check.starts_with(b"$y$") && !room_for_yescrypt() {
        // yescrypt's default parameters allocate about 16 MiB; under a tighter softlimit the
        // allocation would abort the process ("child crashed"). Say why and fail temporarily.
        eprintln!("checkpassword: fatal: memory limit too low for yescrypt (needs {YESCRYPT_MEMORY} bytes)");
        return Err(EXIT_TEMP);
    }
    let matched = verify(&creds.password, &check);
    let acct = acct?;
    if matched && may_match {
        Ok(acct)
    } else {
        Err(EXIT_REFUSED)
    }
}

/// Address space a yescrypt check needs, with room for the program itself.
pub const YESCRYPT_MEMORY: u64 = 32 * 1024 * 1024;

/// Whether the soft data and address-space limits leave room for a yescrypt check.
fn room_for_yescrypt() -> bool {
    use nix::sys::resource::{getrlimit, Resource};
    [Resource::RLIMIT_AS, Resource::RLIMIT_DATA]
        .into_iter()
        .all(|r| getrlimit(r).map_or(true, |(soft, _)| soft >= YESCRYPT_MEMORY))
}

/// Becomes the user and execs `prog` (the program arguments); returns only with an exit code.
fn become_and_exec(acct: &Account, prog: &[OsString]) -> i32 {
    let Ok(cname) = CString::new(acct.name.clone()) else {
        return EXIT_REFUSED;
    };
    let gid = nix::unistd::Gid::from_raw(acct.gid);
    let groups = match nix::unistd::getgrouplist(&cname, gid) {
        Ok(g) => g.iter().map(|g| g.as_raw()).collect(),
        Err(_) => vec![acct.gid],
    };
    let id = qmail_sys::prot::Identity {
        uid: acct.uid,
        gid: acct.gid,
        groups,
    };
    if qmail_sys::prot::drop_to(&id).is_err() {
        return EXIT_REFUSED;
    }
    let home = std::ffi::OsStr::from_bytes(&acct.home);
    if std::env::set_current_dir(home).is_err() {
        return EXIT_TEMP;
    }
    std::env::set_var("USER", std::ffi::OsStr::from_bytes(&acct.name));
    std::env::set_var("HOME", home);
    std::env::set_var("SHELL", std::ffi::OsStr::from_bytes(&acct.shell));
    let Some(program) = prog[0].to_str().and_then(qmail_sys::spawn::find_program) else {
        return EXIT_TEMP;
    };
    let argv: Result<Vec<CString>, _> = prog.iter().map(|a| CString::new(a.as_bytes())).collect();
    let Ok(argv) = argv else { return EXIT_TEMP };
    let _ = qmail_sys::spawn::exec(&program, &argv);
    EXIT_TEMP
}

/// The whole program: `checkpassword prog [args…]`. `fd3` is read and then closed (dropped)
/// before anything else happens. Returns the exit code (on success the process has become
/// `prog` and this never returns).
pub fn run(args: &[OsString], mut fd3: impl Read, shadow_path: &std::path::Path) -> i32 {
    if args.len() < 2 {
        return EXIT_MISUSE;
    }
    let read = read_input(&mut fd3);
    drop(fd3);
    let mut data = match read {
        Ok(d) => d,
        Err(_) => return EXIT_TEMP,
    };
    let parsed = parse_input(&data);
    wipe(&mut data);
    let creds = match parsed {
        Ok(c) => c,
        Err(code) => return code,
    };
    match authenticate(&creds, shadow_path) {
        Ok(acct) => {
            drop(creds);
            become_and_exec(&acct, &args[1..])
        }
        Err(code) => {
            drop(creds);
            if code == EXIT_REFUSED {
                std::thread::sleep(FAIL_DELAY);
            }
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors made with `openssl passwd -6/-5` and python3's crypt (libxcrypt) for yescrypt.
    const SHA512: &[u8] = b"$6$saltsalt$zM85MwF7wzNFxhHekCkSASe1NaC/xUx1S2eoXlbcx1w6LkHRO4n1DK7q.d/HKoYFUjJ10GWDs5jLq2A53OAzU1";
    const SHA512_ROUNDS: &[u8] = b"$6$rounds=10000$abc$TPidcyVdsuALEejDNhmEl6D0An8RGrk3MWNhKXnkA/1s3bobDmHLj1fwXJdVOCPyWqopaBFpgYCiA9mRVYusl0";
    const SHA512_RANDOM: &[u8] = b"$6$WJD4UN1TDhK/KeXC$1fyR/RCXsbI/z6h.Ac3CtsYM59MBptApHdhY0JT4vGHfC2m8YCHhYXXMc4aCvqGt1tDW9vk3IEgbWujDKOOxh0";
    const SHA256: &[u8] = b"$5$abcdefgh$XEPmEiAJvPG31m/DaIsyckkv.Sxd.8NrmElXxCKFQr/";
    const YESCRYPT: &[u8] =
        b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79";

    #[test]
    fn known_vectors() {
        let table: &[(&[u8], &[u8], bool)] = &[
            (b"secret pw", SHA512, true),
            (b"secret pw ", SHA512, false),
            (b"secret", SHA512, false),
            (b"pw", SHA512_ROUNDS, true),
            (b"pW", SHA512_ROUNDS, false),
            (b"x", SHA512_RANDOM, true),
            (b"y", SHA512_RANDOM, false),
            (b"hunter2", SHA256, true),
            (b"hunter3", SHA256, false),
            (b"correct horse", YESCRYPT, true),
            (b"correct horse!", YESCRYPT, false),
            (b"", SHA512, false),
            (b"anything", b"", false),
            (b"anything", b"!", false),
            (b"anything", b"*", false),
            (b"x", b"!$6$WJD4UN1TDhK/KeXC$1fyR/RCXsbI/z6h.Ac3CtsYM59MBptApHdhY0JT4vGHfC2m8YCHhYXXMc4aCvqGt1tDW9vk3IEgbWujDKOOxh0", false),
            (b"hunter2", b"$1$abcdefgh$XEPmEiAJvPG31m/DaIsyck", false),
            (b"hunter2", b"abJnggxhB/yWI", false),
            (b"hunter2", b"$5$abcdefgh$", false),
            (b"hunter2", b"$5$", false),
            (b"hunter2", b"$y$", false),
            (b"hunter2", b"$y$j9T$$$", false),
            (b"hunter2", b"\xff\xfe", false),
        ];
        for (pw, hash, want) in table {
            assert_eq!(
                verify(pw, hash),
                *want,
                "{:?} / {:?}",
                String::from_utf8_lossy(pw),
                String::from_utf8_lossy(hash)
            );
        }
    }

    #[test]
    fn truncated_hashes_never_match_nor_panic() {
        // yescrypt is slow in debug builds: every cut of the sha-crypt strings, every fifth of it.
        for (hash, step) in [(SHA512, 1), (SHA256, 1), (YESCRYPT, 5)] {
            for cut in (0..hash.len()).step_by(step) {
                assert!(!verify(b"secret pw", &hash[..cut]));
                assert!(!verify(b"hunter2", &hash[..cut]));
            }
        }
    }

    #[test]
    fn input_parsing() {
        let ok = |l: &[u8], p: &[u8]| Ok::<_, i32>((l.to_vec(), p.to_vec()));
        type Want = Result<(Vec<u8>, Vec<u8>), i32>;
        let table: &[(&[u8], Want)] = &[
            (b"alice\0pw\0<1.2@h>\0", ok(b"alice", b"pw")),
            (b"alice\0pw\0", ok(b"alice", b"pw")),
            (b"alice\0pw\0extra\0more", ok(b"alice", b"pw")),
            (b"alice\0\0", ok(b"alice", b"")),
            (b"\0\0", ok(b"", b"")),
            (b"alice\0pw", Err(EXIT_MISUSE)),
            (b"alice\0", Err(EXIT_MISUSE)),
            (b"alice", Err(EXIT_MISUSE)),
            (b"", Err(EXIT_MISUSE)),
        ];
        for (data, want) in table {
            let got = parse_input(data).map(|c| (c.login.clone(), c.password.clone()));
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(data));
        }
        let mut big = b"alice\0pw\0".to_vec();
        big.resize(MAX_INPUT, b'x');
        assert_eq!(parse_input(&big).map(|_| ()), Err(EXIT_REFUSED));
        big.truncate(MAX_INPUT - 1);
        assert!(parse_input(&big).is_ok());
    }

    #[test]
    fn input_cut_at_every_position() {
        let data = b"alice\0secret\0<12.34@host>\0";
        for cut in 0..=data.len() {
            let got = parse_input(&data[..cut]);
            if cut >= 13 {
                assert_eq!(got.map(|c| c.password.clone()), Ok(b"secret".to_vec()));
            } else {
                assert_eq!(got.map(|_| ()), Err(EXIT_MISUSE), "cut {cut}");
            }
        }
    }

    #[test]
    fn reading_is_bounded() {
        let data = vec![b'a'; 10_000];
        assert_eq!(read_input(&mut &data[..]).unwrap().len(), MAX_INPUT);
    }

    #[test]
    fn debug_hides_password() {
        let c = parse_input(b"bob\0topsecret\0").unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("bob") && !shown.contains("topsecret"));
    }

    #[test]
    fn misuse_without_program() {
        let args = [OsString::from("checkpassword")];
        assert_eq!(
            run(
                &args,
                &mut &b"a\0b\0"[..],
                std::path::Path::new("/nonexistent")
            ),
            EXIT_MISUSE
        );
        let args = [OsString::from("checkpassword"), OsString::from("true")];
        assert_eq!(
            run(
                &args,
                &mut &b"a\0b"[..],
                std::path::Path::new("/nonexistent")
            ),
            EXIT_MISUSE
        );
    }
}
