//! qmail-smtpd's writes are bounded by timeoutsmtpd (issue 15, item 3), as qmail's are (it writes
//! through a timed substdio): a client that sends a burst of commands and then never reads its
//! replies must not keep the process alive past the timeout.

use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};

/// The timeoutsmtpd of the test, in seconds.
const TIMEOUT: u64 = 2;
/// How long past the timeout the process may take to go away.
const SLACK: u64 = 8;

/// `stall.py BYTES LIMIT`: connects with a tiny receive buffer, sends BYTES bare newlines (each
/// one an empty command with its own 502 reply), never reads, and prints how many seconds the
/// qmail-smtpd of this sandbox lived after that (`alive` if still there after LIMIT seconds).
const CLIENT: &str = r#"
import os, re, socket, sys, time
n, limit = int(sys.argv[1]), float(sys.argv[2])
me = os.readlink('/proc/self/ns/mnt')
def smtpds():
    found = []
    for p in os.listdir('/proc'):
        try:
            if not p.isdigit() or os.readlink('/proc/%s/ns/mnt' % p) != me:
                continue
            st = open('/proc/%s/status' % p).read()
        except OSError:
            continue
        if re.search(r'^Name:\s+qmail-smtpd$', st, re.M) and not re.search(r'^State:\s+Z', st, re.M):
            found.append(p)
    return found
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect(('127.0.0.1', 25))
deadline = time.time() + 10
while not smtpds() and time.time() < deadline:
    time.sleep(0.05)
print('started', len(smtpds()), flush=True)
s.settimeout(5)
try:
    s.sendall(b'\n' * n)
except socket.timeout:
    pass
t = time.time()
while smtpds() and time.time() - t < limit:
    time.sleep(0.1)
print('lived', 'alive' if smtpds() else round(time.time() - t, 1), flush=True)
"#;

fn stalled(sb: &Sandbox, bytes: usize) -> String {
    let limit = (TIMEOUT + SLACK + 10).to_string();
    let out = sb.run("python3", &["/tmp/stall.py", &bytes.to_string(), &limit]);
    let lines = text(&out.stdout);
    assert!(out.status.success(), "{lines}{}", text(&out.stderr));
    assert!(lines.contains("started 1\n"), "{lines}");
    eprintln!("{bytes} bytes: {}", lines.replace('\n', "; "));
    lines
        .lines()
        .find_map(|l| l.strip_prefix("lived "))
        .unwrap_or_else(|| panic!("{lines}"))
        .to_string()
}

#[test]
fn smtpd_client_that_never_reads_is_dropped_after_the_timeout() {
    let Some(sb) = sandbox!("smtpd_stalled") else {
        return;
    };
    sb.write_control("me", "test.example\n");
    sb.write_control("rcpthosts", "test.example\n");
    sb.write_control("timeoutsmtpd", &format!("{TIMEOUT}\n"));
    sb.write_file("/tmp/stall.py", CLIENT.as_bytes(), "root", 0o644);
    // Socket send buffers as a real network leaves them: loopback would let the kernel grow
    // the server's buffer to 4 MB and absorb the whole burst (tcp_wmem is per network
    // namespace; this is the sandbox's own).
    sb.sh_ok("echo '4096 16384 65536' > /proc/sys/net/ipv4/tcp_wmem");
    sb.start_smtpd();
    // 8 KiB of bare newlines: about 224 KiB of replies, more than the socket buffers hold.
    // 64 KiB: the same eight times over.
    for bytes in [8192, 65536] {
        let lived = stalled(&sb, bytes);
        let secs: f64 = lived
            .parse()
            .unwrap_or_else(|_| panic!("{bytes} bytes: qmail-smtpd still {lived}"));
        assert!(
            secs <= (TIMEOUT + SLACK) as f64,
            "{bytes} bytes: qmail-smtpd lived {secs} s with timeoutsmtpd {TIMEOUT}"
        );
    }
}
