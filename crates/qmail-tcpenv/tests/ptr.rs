//! tcp-env against a real (tiny) name server: inside `unshare --mount --net` as root, with the
//! loopback interface up, a Python DNS server on 127.0.0.1:53 and an ident server on port 113,
//! and a private /etc/resolv.conf bind-mounted over the real one. A Python driver accepts
//! loopback connections from 127.0.0.1, .2, .3 and .4 (a NUL in its PTR name and its ident
//! answer) and runs the built tcp-env on each accepted socket with `env` as its program.
//! Skipped (loudly) when not root or when namespaces are not available. Only loopback traffic,
//! inside the private network namespace.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The name server, the ident server and the driver, in one script.
const DRIVER: &str = r#"
import os, socket, struct, subprocess, sys, threading

def encode(name):
    out = b''
    for label in name.split('.'):
        out += bytes([len(label)]) + label.encode()
    return out + b'\0'

def dns(sock):
    while True:
        q, peer = sock.recvfrom(4096)
        qid = struct.unpack('>H', q[:2])[0]
        off, labels = 12, []
        while q[off]:
            n = q[off]
            labels.append(q[off + 1:off + 1 + n].decode())
            off += n + 1
        off += 1
        qtype = struct.unpack('>H', q[off:off + 2])[0]
        question = q[12:off + 4]
        name = '.'.join(labels).lower()
        rcode, answer = 3, b''
        if name == '1.0.0.127.in-addr.arpa' and qtype == 12:
            rdata = encode('LocalHost.Example')
            rcode = 0
            answer = b'\xc0\x0c' + struct.pack('>HHIH', 12, 1, 60, len(rdata)) + rdata
        elif name == '4.0.0.127.in-addr.arpa' and qtype == 12:
            rdata = encode('Evil\0Inject.example')
            rcode = 0
            answer = b'\xc0\x0c' + struct.pack('>HHIH', 12, 1, 60, len(rdata)) + rdata
        elif name == '2.0.0.127.in-addr.arpa':
            rcode = 2
        head = struct.pack('>HHHHHH', qid, 0x8180 | rcode, 1, 1 if answer else 0, 0, 0)
        sock.sendto(head + question + answer, peer)

def ident(srv):
    while True:
        c, _ = srv.accept()
        req = c.recv(512).decode().strip()
        user = 'Jo\0e' if int(req.split(',')[0]) in nul_ports else 'Joe'
        c.sendall((req + ' : USERID : UNIX : ' + user + '\r\n').encode())
        c.close()

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(('127.0.0.1', 53))
threading.Thread(target=dns, args=(udp,), daemon=True).start()
idt = socket.socket()
idt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
idt.bind(('0.0.0.0', 113))
nul_ports = set()
idt.listen(5)
threading.Thread(target=ident, args=(idt,), daemon=True).start()

srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(5)
for client, opts in (('127.0.0.1', []), ('127.0.0.2', ['-R']), ('127.0.0.3', ['-R']),
                     ('127.0.0.4', [])):
    c = socket.socket()
    c.bind((client, 0))
    if client == '127.0.0.4':
        nul_ports.add(c.getsockname()[1])
    c.connect(srv.getsockname())
    conn, _ = srv.accept()
    out = subprocess.run([sys.argv[1]] + opts + ['env'], stdin=conn, capture_output=True,
                         env={'PATH': os.environ['PATH'], 'TCPREMOTEHOST': 'stale'}, timeout=60)
    conn.close()
    c.close()
    sys.stdout.write('case %s %d\n' % (client, out.returncode))
    sys.stdout.write(out.stdout.decode('latin-1'))
    sys.stderr.write(out.stderr.decode('latin-1'))
"#;

fn root_with_namespaces() -> bool {
    let uid = Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| o.stdout == b"0\n") {
        eprintln!("SKIPPED: tcp-env PTR test needs root (unshare --mount --net)");
        return false;
    }
    let ok = Command::new("unshare")
        .args(["--mount", "--net", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("python3")
            .arg("-c")
            .arg("pass")
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: tcp-env PTR test needs unshare --mount --net and python3");
    }
    ok
}

#[test]
fn host_names_from_a_real_name_server() {
    if !root_with_namespaces() {
        return;
    }
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ptr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("resolv.conf");
    std::fs::write(
        &conf,
        "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n",
    )
    .unwrap();
    let script = dir.join("driver.py");
    std::fs::write(&script, DRIVER).unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "sh", "-c"])
        .arg(
            "ip link set lo up && { [ ! -e /etc/resolv.conf ] || mount --bind \"$1\" /etc/resolv.conf; } \
             && exec python3 \"$2\" \"$3\"",
        )
        .arg("sh")
        .arg(&conf)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_tcp-env"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "driver failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cases: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(case) = line.strip_prefix("case ") {
            current = case.to_string();
            cases.insert(current.clone(), BTreeMap::new());
        } else if let Some((k, v)) = line.split_once('=') {
            if k == "PROTO" || k.starts_with("TCP") {
                let vars = cases.get_mut(&current).unwrap();
                vars.insert(k.to_string(), v.to_string());
            }
        }
    }
    let want = |client: &str, host: Option<&str>, info: Option<&str>| {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("PROTO", Some("TCP")),
            ("TCPLOCALIP", Some("127.0.0.1")),
            ("TCPLOCALHOST", Some("localhost.example")),
            ("TCPREMOTEIP", Some(client)),
            ("TCPREMOTEHOST", host),
            ("TCPREMOTEINFO", info),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), v.to_string());
            }
        }
        m
    };
    let table = [
        (
            "127.0.0.1 0",
            want("127.0.0.1", Some("localhost.example"), Some("Joe")),
        ),
        ("127.0.0.2 0", want("127.0.0.2", Some("softdnserror"), None)),
        ("127.0.0.3 0", want("127.0.0.3", None, None)),
        // A NUL in the PTR name or the ident answer: cut there, as qmail's C strings do.
        ("127.0.0.4 0", want("127.0.0.4", Some("evil"), Some("Jo"))),
    ];
    assert_eq!(cases.len(), table.len(), "{text}");
    for (case, want) in table {
        let mut got = cases
            .get(case)
            .unwrap_or_else(|| panic!("{case}: {text}"))
            .clone();
        for port in ["TCPLOCALPORT", "TCPREMOTEPORT"] {
            let p = got
                .remove(port)
                .unwrap_or_else(|| panic!("{case}: no {port}"));
            assert!(p.parse::<u16>().is_ok_and(|p| p > 0), "{case}: {port}={p}");
        }
        assert_eq!(got, want, "{case}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
