//! qmail-qmtpd and qmail-qmqpd keep their memory bounded whatever the package (issue 15, item 2):
//! each runs from its shipped supervise run script (boot/supervise/, softlimit included) under
//! tcpserver in the sandbox and gets a package of about 200 MB with millions of recipients; the
//! peak resident size (VmHWM) of the server process is read from /proc while the connection is
//! still open, after everything has been read. qmail keeps one byte per recipient and streams
//! the envelope to qmail-queue; before this was done here the same packages grew the servers to
//! hundreds of megabytes (every recipient and every response held).

use qmail_testkit::sandbox::{text, workspace_root};
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

/// Largest peak resident size allowed to either server, in kB.
const MAX_HWM_KB: u64 = 16 * 1024;

/// `big.py qmtp|qmqp MESSAGE_MB RECIPIENTS`: sends one big package and prints `result ...`,
/// what the responses held and `hwm <kB>` of the server, measured while the connection is open.
const CLIENT: &str = r#"
import os, re, socket, sys, time
mode, mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
me = os.readlink('/proc/self/ns/mnt')
def hwm(name):
    best = 0
    for p in os.listdir('/proc'):
        try:
            if not p.isdigit() or os.readlink('/proc/%s/ns/mnt' % p) != me:
                continue
            st = open('/proc/%s/status' % p).read()
        except OSError:
            continue
        if re.search(r'^Name:\s+%s$' % name, st, re.M):
            best = max(best, int(re.search(r'^VmHWM:\s+(\d+) kB', st, re.M).group(1)))
    return best
def ns(b):
    return b'%d:' % len(b) + b + b','
def read_ns(f):
    n = b''
    while True:
        c = f.read(1)
        if not c: return None
        if c == b':': break
        n += c
    d = f.read(int(n))
    assert f.read(1) == b','
    return d
def drained(port):
    # Everything sent has been read by the server: nothing queued on either end of the
    # connection (/proc/net/tcp: local, remote, state, tx_queue:rx_queue).
    for line in open('/proc/net/tcp').read().splitlines()[1:]:
        f = line.split()
        local, remote, queues = f[1], f[2], f[4]
        tx, rx = (int(x, 16) for x in queues.split(':'))
        if local.endswith(':%04X' % port) and f[3] == '01' and rx:
            return False
        if remote.endswith(':%04X' % port) and f[3] == '01' and tx:
            return False
    return True
line = b'x' * 1022 + b'\n'
chunk = line * 1024
chunks = mb * 1024 * 1024 // len(chunk)
body_len = chunks * len(chunk)
if mode == 'qmtp':
    port, name = 209, 'qmail-qmtpd'
    head = b'\nX-Token: qmtp-big\n\n'
    good = ns(b'bob@test.example')
    bad = ns(b'a@evil.example')
    rcpts_len = len(good) + n * len(bad)
    s = socket.create_connection(('127.0.0.1', port), timeout=300)
    f = s.makefile('rb')
    s.sendall(b'%d:' % (len(head) + body_len) + head)
    for _ in range(chunks):
        s.sendall(chunk)
    s.sendall(b',' + ns(b'alice@test.example') + b'%d:' % rcpts_len + good)
    block = bad * 10000
    left = n
    while left:
        k = min(left, 10000)
        s.sendall(block if k == 10000 else bad * k)
        left -= k
    s.sendall(b',')
    print('result', read_ns(f).decode(), flush=True)
    refusal = ns(b"Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)")
    want = refusal * 10000
    left, same = n, 0
    while left:
        k = min(left, 10000)
        got = f.read(k * len(refusal))
        if got == want[:k * len(refusal)]:
            same += k
        left -= k
    print('refused', same, flush=True)
    print('hwm', hwm(name), flush=True)
    s.close()
else:
    port, name = 628, 'qmail-qmqpd'
    msg_head = b'X-Token: qmqp-big\n\n'
    msg = b'%d:' % (len(msg_head) + body_len)
    rcpt = ns(b'u@test.example')
    inner_len = len(msg) + len(msg_head) + body_len + 1 + len(ns(b'alice@test.example')) + n * len(rcpt)
    s = socket.create_connection(('127.0.0.1', port), timeout=300)
    f = s.makefile('rb')
    s.sendall(b'%d:' % inner_len + msg + msg_head)
    for _ in range(chunks):
        s.sendall(chunk)
    s.sendall(b',' + ns(b'alice@test.example'))
    block = rcpt * 10000
    left = n
    while left:
        k = min(left, 10000)
        s.sendall(block if k == 10000 else rcpt * k)
        left -= k
    # All but the outer comma: the server has read every recipient and waits for the comma.
    deadline = time.time() + 300
    while not drained(port) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    print('hwm', hwm(name), flush=True)
    s.sendall(b',')
    print('result', read_ns(f).decode(), flush=True)
    s.close()
"#;

/// Starts the shipped supervise service `name` (boot/supervise/NAME, `QMAIL` replaced) and waits
/// until `port` answers.
fn start_shipped(sb: &Sandbox, name: &str, port: u16) {
    let boot = workspace_root().join("boot/supervise").join(name);
    let read = |f: &str| {
        std::fs::read_to_string(boot.join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", boot.join(f).display()))
            .replace("QMAIL", "/var/qmail")
    };
    let run = read("run");
    assert!(
        run.contains("exec softlimit -m 64000000 "),
        "{name}/run: {run}"
    );
    let log_dir = format!("/var/log/qmail/{}", name.trim_start_matches("qmail-"));
    sb.start_service(name, &run, &read("log/run"), &log_dir);
    let probe =
        format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()");
    let open = sb.wait_until(Duration::from_secs(15), || {
        sb.run("python3", &["-c", &probe]).status.success()
    });
    assert!(
        open,
        "nothing listens on port {port}: {}",
        text(&sb.read(&format!("{log_dir}/current")).unwrap_or_default())
    );
}

/// Sets up controls and tcpserver rules, starts `name` and runs the client; returns its lines.
fn big_package(
    test: &str,
    name: &str,
    port: u16,
    mode: &str,
    message_mib: u32,
    recipients: u32,
) -> Option<(Sandbox, String)> {
    let sb = sandbox!(test)?;
    sb.write_control("me", "test.example\n");
    sb.write_control("rcpthosts", "test.example\n");
    sb.write_control("concurrencyincoming", "5\n");
    for (rules, contents) in [
        ("/etc/tcp.qmtp", "127.:allow\n"),
        ("/etc/tcp.qmqp", "127.:allow\n:deny\n"),
    ] {
        sb.write_file(rules, contents.as_bytes(), "root", 0o644);
        sb.sh_ok(&format!("tcprules {rules}.cdb {rules}.tmp < {rules}"));
    }
    sb.write_file("/tmp/big.py", CLIENT.as_bytes(), "root", 0o644);
    start_shipped(&sb, name, port);
    let n = recipients.to_string();
    let mib = message_mib.to_string();
    let out = sb.run("python3", &["/tmp/big.py", mode, &mib, &n]);
    let lines = text(&out.stdout);
    assert!(
        out.status.success(),
        "{lines}{}\nlog: {}",
        text(&out.stderr),
        text(
            &sb.read(&format!("/var/log/qmail/{}/current", &name[6..]))
                .unwrap_or_default()
        )
    );
    eprintln!("{test}: {}", lines.replace('\n', "; "));
    Some((sb, lines))
}

fn field<'a>(lines: &'a str, key: &str) -> &'a str {
    lines
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key} line in {lines}"))
}

#[test]
fn qmtpd_memory_stays_bounded() {
    // 199 MB of message (190 MiB, just below the 200000000-byte limit of a netstring) and 3
    // million recipients (54 MB), all but the first refused: 210 MB of responses go back.
    let n = 3_000_000;
    let Some((_sb, lines)) = big_package("qmtpd_memory", "qmail-qmtpd", 209, "qmtp", 190, n) else {
        return;
    };
    let result = field(&lines, "result");
    assert!(
        result.starts_with("Kok ") && result.contains(" qp "),
        "{lines}"
    );
    assert_eq!(field(&lines, "refused"), n.to_string(), "{lines}");
    let hwm: u64 = field(&lines, "hwm").parse().unwrap();
    assert!(hwm > 0 && hwm < MAX_HWM_KB, "qmail-qmtpd VmHWM {hwm} kB");
}

#[test]
fn qmqpd_memory_stays_bounded() {
    // 136 MB of message and 3 million recipients (54 MB), every one queued: 190 MB, just below
    // the 200000000-byte limit of the outer netstring.
    let n = 3_000_000;
    let Some((sb, lines)) = big_package("qmqpd_memory", "qmail-qmqpd", 628, "qmqp", 130, n) else {
        return;
    };
    let result = field(&lines, "result");
    assert!(
        result.starts_with("Kok ") && result.contains(" qp "),
        "{lines}"
    );
    // qmail-send is not running: the envelope waits in todo/ with every recipient.
    let out = sb.sh_ok(
        "find /var/qmail/queue/todo -type f -exec cat {} + | tr '\\0' '\\n' \
         | grep -c '^Tu@test.example$'",
    );
    assert_eq!(text(&out.stdout).trim(), n.to_string());
    let hwm: u64 = field(&lines, "hwm").parse().unwrap();
    assert!(hwm > 0 && hwm < MAX_HWM_KB, "qmail-qmqpd VmHWM {hwm} kB");
}
