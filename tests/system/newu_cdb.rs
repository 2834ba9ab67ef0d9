//! qmail-newu in a sandbox: users/assign compiled into users/cdb, read back with tinycdb's
//! `cdb -d` and compared record by record with the encoding of qmail-users(5) / qmail-newu(8).

use qmail_testkit::sandbox;

const ASSIGN: &[u8] = b"=joe:joe:507:100:/home/joe:::\n\
+joe-:joe:507:100:/home/joe:-::\n\
=Postmaster:alias:7790:7791:/var/qmail/alias:-:postmaster:\n\
+Foo.:bob:1002:1002:/home/bob:-:foo-:\n\
+listA:bob:1002:1002:/home/bob:-:list-:and:more:fields\n\
-Odd:alice:1001:1001:/home/alice:::\n\
+:alias:7790:7791:/var/qmail/alias:-::\n\
.\n\
=ignored:after:the:dot:::\n";

/// A cdb record: key and data.
type Record = (Vec<u8>, Vec<u8>);

/// (key, data) in insertion order, as qmail-newu writes them; data is the six fields joined by NUL.
fn expected() -> Vec<Record> {
    let r = |k: &[u8], fields: [&str; 6]| (k.to_vec(), fields.join("\0").into_bytes());
    vec![
        r(b"!joe\0", ["joe", "507", "100", "/home/joe", "", ""]),
        r(b"!joe-", ["joe", "507", "100", "/home/joe", "-", ""]),
        r(
            b"!postmaster\0",
            [
                "alias",
                "7790",
                "7791",
                "/var/qmail/alias",
                "-",
                "postmaster",
            ],
        ),
        r(b"!foo.", ["bob", "1002", "1002", "/home/bob", "-", "foo-"]),
        r(
            b"!lista",
            ["bob", "1002", "1002", "/home/bob", "-", "list-"],
        ),
        r(b"!odd\0", ["alice", "1001", "1001", "/home/alice", "", ""]),
        r(b"!", ["alias", "7790", "7791", "/var/qmail/alias", "-", ""]),
        // wildchars: last characters of non-empty wildcard keys, as written (not lowercased).
        (Vec::new(), b"-.A".to_vec()),
    ]
}

/// Parses tinycdb's dump format: `+klen,dlen:key->data\n` per record, then an empty line.
fn parse_dump(mut s: &[u8]) -> Result<Vec<Record>, String> {
    fn number(s: &mut &[u8], end: u8) -> Result<usize, String> {
        let pos = s
            .iter()
            .position(|&c| c == end)
            .ok_or("unterminated number")?;
        let n = std::str::from_utf8(&s[..pos])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or("bad number")?;
        *s = &s[pos + 1..];
        Ok(n)
    }
    let mut out = Vec::new();
    loop {
        match s.first() {
            Some(b'+') => s = &s[1..],
            Some(b'\n') if s.len() == 1 => return Ok(out),
            _ => return Err(format!("unexpected {:?}", String::from_utf8_lossy(s))),
        }
        let klen = number(&mut s, b',')?;
        let dlen = number(&mut s, b':')?;
        if s.len() < klen + 2 + dlen + 1
            || &s[klen..klen + 2] != b"->"
            || s[klen + 2 + dlen] != b'\n'
        {
            return Err("bad record".into());
        }
        out.push((s[..klen].to_vec(), s[klen + 2..klen + 2 + dlen].to_vec()));
        s = &s[klen + 2 + dlen + 1..];
    }
}

#[test]
fn newu_cdb() {
    let Some(sb) = sandbox!("newu_cdb") else {
        return;
    };
    if !sb.has_program("qmail-newu") {
        return;
    }
    sb.write_file("/var/qmail/users/assign", ASSIGN, "root", 0o644);
    let out = sb.run("/var/qmail/bin/qmail-newu", &[]);
    assert!(
        out.status.success(),
        "qmail-newu failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = sb.run("cdb", &["-d", "/var/qmail/users/cdb"]);
    assert!(
        dump.status.success(),
        "cdb -d failed: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert_eq!(
        parse_dump(&dump.stdout).unwrap(),
        expected(),
        "{}",
        String::from_utf8_lossy(&dump.stdout)
    );
    assert!(!sb.exists("/var/qmail/users/cdb.tmp"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(sb.path("/var/qmail/users/cdb"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644, "umask 033");

    // A bad file (no terminating dot) leaves the old cdb alone.
    let before = sb.read("/var/qmail/users/cdb").unwrap();
    sb.write_file(
        "/var/qmail/users/assign",
        b"=joe:joe:1:1:/home/joe:::\n",
        "root",
        0o644,
    );
    let out = sb.run("/var/qmail/bin/qmail-newu", &[]);
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "qmail-newu: fatal: bad format in users/assign\n"
    );
    assert_eq!(sb.read("/var/qmail/users/cdb").unwrap(), before);
}

#[test]
fn dump_parser() {
    let good: &[u8] = b"+2,1:ab->c\n+0,0:->\n\n";
    assert_eq!(
        parse_dump(good).unwrap(),
        vec![(b"ab".to_vec(), b"c".to_vec()), (vec![], vec![])]
    );
    for cut in 0..good.len() - 1 {
        assert!(parse_dump(&good[..cut]).is_err(), "cut at {cut}");
    }
}
