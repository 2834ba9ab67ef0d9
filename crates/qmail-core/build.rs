//! Turns qmail's build settings in `conf/` into Rust constants (qmail's `auto-*` programs and
//! `chkspawn`): line 1 of each file is the value, the rest is explanation. Refuses invalid values.

use std::fmt::Write as _;
use std::path::PathBuf;

fn lines(name: &str, count: usize) -> Vec<String> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../conf");
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("conf/{name}: {e}"));
    let values: Vec<String> = text
        .lines()
        .take(count)
        .map(|l| l.trim().to_string())
        .collect();
    if values.len() != count || values.iter().any(|v| v.is_empty()) {
        panic!("conf/{name}: expected {count} non-empty line(s) at the top");
    }
    values
}

fn main() {
    let home = lines("conf-qmail", 1).remove(0);
    assert!(home.starts_with('/'), "conf-qmail must be an absolute path");
    let split: u32 = lines("conf-split", 1)[0]
        .parse()
        .expect("conf-split: not a number");
    assert!(split >= 1, "conf-split must be at least 1");
    let spawn: u32 = lines("conf-spawn", 1)[0]
        .parse()
        .expect("conf-spawn: not a number");
    assert!(
        (1..=255).contains(&spawn),
        "conf-spawn must be between 1 and 255"
    );
    let brk = lines("conf-break", 1).remove(0);
    assert!(brk.len() == 1, "conf-break must be a single character");
    let patrn = u32::from_str_radix(&lines("conf-patrn", 1)[0], 8).expect("conf-patrn: not octal");
    let users = lines("conf-users", 9);
    let groups = lines("conf-groups", 2);

    let mut out = String::new();
    writeln!(
        out,
        "/// qmail's home directory (conf-qmail).\npub const HOME: &str = {home:?};"
    )
    .unwrap();
    writeln!(
        out,
        "/// Number of split queue subdirectories (conf-split).\npub const SPLIT: u64 = {split};"
    )
    .unwrap();
    writeln!(out, "/// Silent limit on simultaneous deliveries per channel (conf-spawn).\npub const SPAWN: u32 = {spawn};").unwrap();
    writeln!(
        out,
        "/// User-extension delimiter (conf-break).\npub const BREAK: u8 = b'{brk}';"
    )
    .unwrap();
    writeln!(out, "/// Mode bits forbidden on home directories and .qmail files (conf-patrn).\npub const PATRN: u32 = 0o{patrn:o};").unwrap();
    let unames = [
        "ALIAS", "QMAILD", "QMAILL", "ROOT", "QMAILP", "QMAILQ", "QMAILR", "QMAILS", "QMAILT",
    ];
    for (n, v) in unames.iter().zip(&users) {
        writeln!(
            out,
            "/// Account name from conf-users.\npub const USER_{n}: &str = {v:?};"
        )
        .unwrap();
    }
    writeln!(
        out,
        "/// The qmail group (conf-groups line 1).\npub const GROUP_QMAIL: &str = {:?};",
        groups[0]
    )
    .unwrap();
    writeln!(out, "/// The group owning no files (conf-groups line 2).\npub const GROUP_NOFILES: &str = {:?};", groups[1]).unwrap();
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("conf.rs");
    std::fs::write(dest, out).unwrap();
}
