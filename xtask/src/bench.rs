//! `cargo xtask bench [--quick] [--rounds N] [--out DIR] [--bin-dir DIR]`: ours side by side
//! with Postfix.
//!
//! Installs Postfix (for smtp-source, smtp-sink and as the peer) and strace from Debian when
//! missing, making sure the host's own Postfix is stopped and disabled; builds the release; runs
//! the bench target of tests/bench (both MTAs in qmail-testkit sandboxes, loopback only) and turns
//! its `SAMPLE` lines into a Markdown table of medians with min-max and the ratio ours/Postfix
//! (doc/bench.md) plus JSON (doc/bench.json). `--quick` (one round, small counts) writes to
//! target/bench-quick instead and is the smoke run of `cargo xtask test`; it asserts nothing
//! about the numbers. The bench's output is trusted no further than its format: lines that do not
//! parse are echoed and skipped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Options of `xtask bench`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BenchOptions {
    /// One round, small counts, results under target/.
    pub quick: bool,
    /// Rounds per measurement (default 3; 1 with --quick).
    pub rounds: Option<usize>,
    /// Where bench.md and bench.json go.
    pub out: Option<PathBuf>,
    /// Programs to benchmark (skips the release build; default target/release).
    pub bin_dir: Option<PathBuf>,
}

/// Parses the arguments after `bench`.
pub fn parse_args(args: &[String]) -> Result<BenchOptions, String> {
    let mut o = BenchOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a number")?;
                let n: usize = v.parse().map_err(|_| "--rounds needs a number")?;
                if n == 0 {
                    return Err("--rounds must be at least 1".into());
                }
                o.rounds = Some(n);
            }
            "--out" => o.out = Some(it.next().ok_or("--out needs a directory")?.into()),
            "--bin-dir" => o.bin_dir = Some(it.next().ok_or("--bin-dir needs a directory")?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// Median, min and max of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
}

/// Statistics of `samples`; None when empty or not all finite.
pub fn stats(samples: &[f64]) -> Option<Stats> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

/// One measured quantity with its samples per MTA (or "disk").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Stable identifier.
    pub id: String,
    /// What it is.
    pub label: String,
    /// Unit.
    pub unit: String,
    /// "high" or "low": which way is better.
    pub better: String,
    /// Samples by who was measured, in arrival order.
    pub samples: BTreeMap<String, Vec<f64>>,
}

/// The name our MTA has in the samples.
pub const OURS: &str = "qmail-rs";
/// The peer's name in the samples.
pub const PEER: &str = "postfix";

/// Collects `SAMPLE\tid\tlabel\tunit\tbetter\twho\tvalue` lines into rows (in first-seen order);
/// anything else is ignored.
pub fn collect(lines: &[String]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let [tag, id, label, unit, better, who, value] = f[..] else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        if tag != "SAMPLE" || !value.is_finite() {
            continue;
        }
        let i = match rows.iter().position(|r| r.id == id) {
            Some(i) => i,
            None => {
                rows.push(Row {
                    id: id.into(),
                    label: label.into(),
                    unit: unit.into(),
                    better: better.into(),
                    samples: BTreeMap::new(),
                });
                rows.len() - 1
            }
        };
        rows[i].samples.entry(who.into()).or_default().push(value);
    }
    rows
}

impl Row {
    /// A property of the machine (disk fsync rate, program start cost), not of either MTA.
    fn is_machine(&self) -> bool {
        self.samples.contains_key("disk") || self.samples.contains_key("machine")
    }

    fn stats_of(&self, who: &str) -> Option<Stats> {
        stats(self.samples.get(who)?)
    }

    /// Median of ours over median of Postfix's.
    pub fn ratio(&self) -> Option<f64> {
        let (a, b) = (self.stats_of(OURS)?, self.stats_of(PEER)?);
        (b.median != 0.0).then(|| a.median / b.median)
    }

    /// Whether ours is at least as good as Postfix on this row.
    pub fn goal_met(&self) -> Option<bool> {
        let r = self.ratio()?;
        Some(if self.better == "low" {
            r <= 1.0
        } else {
            r >= 1.0
        })
    }
}

fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(s: Option<Stats>) -> String {
    match s {
        Some(s) if s.min == s.max => num(s.median),
        Some(s) => format!("{} ({}-{})", num(s.median), num(s.min), num(s.max)),
        None => "-".into(),
    }
}

/// Facts about the run for the report's header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// UTC date and time.
    pub date: String,
    /// (name, value) lines describing the machine and software.
    pub machine: Vec<(String, String)>,
    /// Quick mode.
    pub quick: bool,
    /// Rounds per measurement.
    pub rounds: usize,
}

/// How the two MTAs are set up (tests/bench/mta.rs), for the report.
pub const SETUP: &str = "\
- qmail-rs: the release programs installed by xtask's hier; qmail-send (started by /var/qmail/rc
  under daemontools) with `./Maildir/` and default concurrencies (local 10, remote 20);
  qmail-smtpd under tcpserver (`-c 120`, no DNS lookups), RELAYCLIENT for 127.*.
- Postfix: Debian's package, main.cf written in the sandbox: `home_mailbox = Maildir/`,
  mydestination test.example, loopback only, chroot off, no peer name lookups, everything else
  default (100 processes per service, local delivery 2 in parallel per recipient, smtp 20 per
  destination).
- Load: Postfix's smtp-source (1, 20, 100 parallel sessions, one message per connection), Python
  driving 10 concurrent `sendmail -f` as an ordinary user, Postfix's smtp-sink on 127.0.0.2:25 as
  the remote peer (its counter is checked; no bounces allowed), 20 concurrent qmail-queue
  injectors for the todo/ backlog row (ours only). The cost of TLS: Python smtplib in 20
  threads, one message per connection, once in plain text on port 25 and once with STARTTLS
  (TLS 1.3, self-signed RSA 2048 certificate, no verification) on port 2525, where qmail-smtpd
  runs behind `qmail-tlsd -n` and Postfix has an smtpd with `smtpd_tls_security_level=may`
  (smtp-source cannot do TLS).
- Storage: both queues and the maildirs live on the host disk below /var/tmp (bound into the
  sandboxes); the disk limit is measured there too.
- fsyncs: one extra round of SMTP in -> Maildir under `strace -f -Y` attached to every process of
  the MTA. RSS: VmHWM from /proc, sampled every 20 ms (SMTP server) or read after the large queue
  was injected towards 127.0.0.3, where nothing listens (queue manager). CPU per message: the
  whole machine's busy time from /proc/stat over a run (load generator included), divided by its
  messages.
";

/// The Markdown report.
pub fn markdown(ctx: &Context, rows: &[Row]) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Benchmark: qmail-rs side by side with Postfix\n");
    let _ = writeln!(
        m,
        "Produced by `cargo xtask bench{}` on {} ({} round(s) per measurement, ours and Postfix \
         alternating within each round). Both MTAs run in qmail-testkit sandboxes on loopback, \
         their queues and maildirs on the same host disk. Cells are median (min-max); the ratio is \
         ours/Postfix of the medians; \"goal\" says whether ours is at least as good.\n",
        if ctx.quick { " --quick" } else { "" },
        ctx.date,
        ctx.rounds
    );
    let _ = writeln!(m, "## Setup\n\n{SETUP}");
    let _ = writeln!(m, "## Machine\n");
    for (k, v) in &ctx.machine {
        let _ = writeln!(m, "- {k}: {v}");
    }
    let _ = writeln!(
        m,
        "\n## Results\n\n| measure | unit | better | {OURS} | {PEER} | ours/postfix | goal |\n|---|---|---|---|---|---|---|"
    );
    for r in rows.iter().filter(|r| !r.is_machine()) {
        let ratio = r.ratio().map_or("-".into(), |x| format!("{x:.2}"));
        let goal = match r.goal_met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {ratio} | {goal} |",
            r.label,
            r.unit,
            r.better,
            cell(r.stats_of(OURS)),
            cell(r.stats_of(PEER)),
        );
    }
    let _ = writeln!(
        m,
        "\n## The machine's limits\n\n| measure | unit | value |\n|---|---|---|"
    );
    for r in rows.iter().filter(|r| r.is_machine()) {
        let who = if r.samples.contains_key("disk") {
            "disk"
        } else {
            "machine"
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} |",
            r.label,
            r.unit,
            cell(r.stats_of(who))
        );
    }
    let limit = rows
        .iter()
        .find(|r| r.id == "limit_fsync_1")
        .and_then(|r| r.stats_of("disk"));
    let per = rows.iter().find(|r| r.id == "fsync_per_msg");
    if let (Some(limit), Some(per)) = (limit, per) {
        for who in [OURS, PEER] {
            if let Some(p) = per.stats_of(who).filter(|p| p.median > 0.0) {
                let _ = writeln!(
                    m,
                    "| {who}: messages/s at the limit if its fsyncs ran one after another ({} fsync/s / {} fsync/msg) | msg/s | {} |",
                    num(limit.median),
                    num(p.median),
                    num(limit.median / p.median)
                );
            }
        }
    }
    let _ = writeln!(
        m,
        "\nqmail 1.03's design syncs 5 files for one SMTP message to one local Maildir: qmail-queue \
         the message and the envelope (2), qmail-send info/ and local/ while preprocessing (2), \
         qmail-local the Maildir file (1). On Linux a link or rename is durable only after its \
         directory is synced too (doc/ARCHITECTURE.md's queue invariants), which adds one directory fsync after each of \
         those 5 links: 10 per message when messages arrive one at a time (qmail-send shares its \
         directory syncs across a todo/ batch). Postfix syncs the queue file and the Maildir file \
         and no directories."
    );
    where_the_time_goes(&mut m, rows);
    m
}

/// The paragraph that puts the CPU rows next to the cost of starting a program: qmail's design
/// starts four programs for each SMTP message (tcpserver's qmail-smtpd for the connection,
/// qmail-queue, qmail-lspawn's qmail-getpw and qmail-local), Postfix none.
fn where_the_time_goes(m: &mut String, rows: &[Row]) {
    let median = |id: &str, who: &str| {
        rows.iter()
            .find(|r| r.id == id)
            .and_then(|r| r.stats_of(who))
            .map(|s| s.median)
    };
    let (Some(start), Some(ours), Some(peer)) = (
        median("start_ours", "machine"),
        median("smtp_2k_20_cpu", OURS),
        median("smtp_2k_20_cpu", PEER),
    ) else {
        return;
    };
    let starts_ms = 4.0 * start / 1000.0;
    let floor = median("start_true", "machine").map(|t| {
        let ms = 4.0 * t / 1000.0;
        format!(
            " Even at the cost of starting the smallest C program (/bin/true, {} µs), four \
             starts take {} ms, {:.0}% of {PEER}'s whole CPU per message: one process per job, \
             the heart of qmail's security design, keeps these rows from {PEER}'s CPU per SMTP \
             message on this machine.",
            num(t),
            num(ms),
            100.0 * ms / peer
        )
    });
    let _ = writeln!(
        m,
        "\n## Where the time goes\n\nWith 2 KiB messages over 20 sessions the whole machine \
         spent {} ms of CPU per message on {OURS} and {} ms on {PEER}. qmail's design starts four \
         programs for every SMTP message (qmail-smtpd per connection, qmail-queue, qmail-getpw \
         and qmail-local); one start costs {} µs of wall-clock time here (see the machine's \
         limits), so about {} ms of {OURS}'s CPU per message is process start-up before any mail \
         is handled, {:.0}% of the difference to {PEER}, whose daemons stay up between messages. \
         The remainder is the rest of the work for a message: file-system operations, the \
         directory syncs above among them, the pipes between the programs, and their own code.{}",
        num(ours),
        num(peer),
        num(start),
        num(starts_ms),
        (100.0 * starts_ms / (ours - peer)).clamp(0.0, 100.0),
        floor.unwrap_or_default()
    );
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// The machine-readable results.
pub fn json(ctx: &Context, rows: &[Row]) -> String {
    let mut j = String::from("{\n");
    let _ = writeln!(j, "  \"date\": {},", json_str(&ctx.date));
    let _ = writeln!(j, "  \"quick\": {},", ctx.quick);
    let _ = writeln!(j, "  \"rounds\": {},", ctx.rounds);
    let machine: Vec<String> = ctx
        .machine
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    let _ = writeln!(j, "  \"machine\": {{{}}},", machine.join(", "));
    j.push_str("  \"rows\": [\n");
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            let per: Vec<String> = r
                .samples
                .iter()
                .map(|(who, v)| {
                    let s = stats(v);
                    let vals: Vec<String> = v.iter().map(|x| json_num(*x)).collect();
                    format!(
                        "{}: {{\"samples\": [{}], \"median\": {}, \"min\": {}, \"max\": {}}}",
                        json_str(who),
                        vals.join(", "),
                        s.map_or("null".into(), |s| json_num(s.median)),
                        s.map_or("null".into(), |s| json_num(s.min)),
                        s.map_or("null".into(), |s| json_num(s.max)),
                    )
                })
                .collect();
            format!(
                "    {{\"id\": {}, \"label\": {}, \"unit\": {}, \"better\": {}, \"results\": {{{}}}, \"ratio\": {}, \"goal_met\": {}}}",
                json_str(&r.id),
                json_str(&r.label),
                json_str(&r.unit),
                json_str(&r.better),
                per.join(", "),
                r.ratio().map_or("null".into(), json_num),
                r.goal_met().map_or("null".into(), |b| b.to_string()),
            )
        })
        .collect();
    j.push_str(&items.join(",\n"));
    j.push_str("\n  ]\n}\n");
    j
}

fn capture(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn first_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// Describes this machine.
pub fn machine() -> Vec<(String, String)> {
    let v = |k: &str, s: String| (k.to_string(), s);
    vec![
        v("kernel", capture("uname", &["-srm"])),
        v("cpu", first_field("/proc/cpuinfo", "model name")),
        v("cpus", capture("nproc", &[])),
        v("memory", first_field("/proc/meminfo", "MemTotal")),
        v(
            "storage (/var/tmp)",
            capture(
                "findmnt",
                &["-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", "/var/tmp"],
            ),
        ),
        v(
            "postfix",
            capture("/usr/sbin/postconf", &["-d", "-h", "mail_version"]),
        ),
        v("rustc", capture("rustc", &["--version"])),
    ]
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Stops and disables the host's Postfix service (the bench only runs Postfix in sandboxes).
pub fn stop_host_postfix() {
    let quiet = |c: &mut Command| {
        let _ = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .status();
    };
    quiet(Command::new("systemctl").args(["disable", "--now", "postfix"]));
    quiet(Command::new("service").args(["postfix", "stop"]));
    quiet(Command::new("update-rc.d").args(["postfix", "disable"]));
}

/// Installs Postfix ("No configuration") and strace when missing.
fn ensure_tools() -> Result<(), String> {
    let mut missing = Vec::new();
    if !Path::new("/usr/sbin/smtp-source").is_file() || !Path::new("/usr/sbin/postfix").is_file() {
        missing.push("postfix");
    }
    if !crate::host::have_command("strace") {
        missing.push("strace");
    }
    if !missing.is_empty() {
        eprintln!("xtask bench: installing {}", missing.join(" "));
        let mut preseed = Command::new("debconf-set-selections");
        preseed.stdin(Stdio::piped());
        if let Ok(mut child) = preseed.spawn() {
            use std::io::Write;
            if let Some(mut i) = child.stdin.take() {
                let _ = i.write_all(b"postfix postfix/main_mailer_type select No configuration\n");
            }
            let _ = child.wait();
        }
        if !crate::host::apt_install(&missing) {
            stop_host_postfix();
            return Err(format!("unable to install {}", missing.join(" ")));
        }
    }
    stop_host_postfix();
    Ok(())
}

/// The whole `cargo xtask bench`; returns the exit code.
pub fn run(root: &Path, args: &[String]) -> i32 {
    match bench(root, args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("xtask bench: fatal: {e}");
            111
        }
    }
}

fn bench(root: &Path, args: &[String]) -> Result<(), String> {
    let o = parse_args(args)?;
    if !nix::unistd::geteuid().is_root() {
        return Err("the benchmark needs root (sandboxes, Postfix)".into());
    }
    ensure_tools()?;
    let target = crate::host::target_dir(root);
    let bin_dir = match &o.bin_dir {
        Some(d) => d
            .canonicalize()
            .map_err(|e| format!("{}: {e}", d.display()))?,
        None => {
            if !ok(crate::host::cargo().current_dir(root).args([
                "build",
                "--release",
                "--workspace",
                "--bins",
            ])) {
                return Err("cargo build --release failed".into());
            }
            target.join("release")
        }
    };
    let rounds = o.rounds.unwrap_or(if o.quick { 1 } else { 3 });
    let mut cmd = crate::host::cargo();
    cmd.current_dir(root)
        // The driver is built without optimisation (it only waits and counts): no LTO rebuild.
        .args([
            "bench",
            "--profile",
            "dev",
            "-p",
            "qmail-tests",
            "--bench",
            "queue",
            "--",
        ])
        .env("QMAIL_BIN_DIR", &bin_dir)
        .env("QMAIL_BENCH_ROUNDS", rounds.to_string())
        .stdout(Stdio::piped());
    if o.quick {
        cmd.arg("--quick");
    }
    eprintln!("==> {cmd:?}");
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("unable to run cargo bench: {e}"))?;
    let mut lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            lines.push(line);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("unable to wait for cargo bench: {e}"))?;
    // Whatever happened, the host's Postfix stays off.
    stop_host_postfix();
    if !status.success() {
        return Err(format!("the bench failed ({status})"));
    }
    let rows = collect(&lines);
    if rows.is_empty() {
        return Err("the bench printed no samples".into());
    }
    let ctx = Context {
        date: capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine: machine(),
        quick: o.quick,
        rounds,
    };
    let out = o.out.unwrap_or_else(|| {
        if o.quick {
            target.join("bench-quick")
        } else {
            root.join("doc")
        }
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("unable to create {}: {e}", out.display()))?;
    let md = markdown(&ctx, &rows);
    for (name, data) in [("bench.md", md.clone()), ("bench.json", json(&ctx, &rows))] {
        let p = out.join(name);
        std::fs::write(&p, data).map_err(|e| format!("unable to write {}: {e}", p.display()))?;
    }
    println!("{md}");
    eprintln!(
        "xtask bench: wrote {}/bench.md and bench.json",
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn arguments() {
        let o = parse_args(&s(&[
            "--quick",
            "--rounds",
            "5",
            "--out",
            "/o",
            "--bin-dir",
            "/b",
        ]))
        .unwrap();
        assert_eq!(
            o,
            BenchOptions {
                quick: true,
                rounds: Some(5),
                out: Some("/o".into()),
                bin_dir: Some("/b".into()),
            }
        );
        let bad: &[&[&str]] = &[
            &["--rounds"],
            &["--rounds", "x"],
            &["--rounds", "0"],
            &["--out"],
            &["--bin-dir"],
            &["-x"],
        ];
        for b in bad {
            assert!(parse_args(&s(b)).is_err(), "{b:?}");
        }
    }

    #[test]
    fn medians() {
        type Case<'a> = (&'a [f64], Option<(f64, f64, f64)>);
        let cases: &[Case] = &[
            (&[], None),
            (&[2.0], Some((2.0, 2.0, 2.0))),
            (&[3.0, 1.0, 2.0], Some((2.0, 1.0, 3.0))),
            (&[4.0, 1.0, 2.0, 3.0], Some((2.5, 1.0, 4.0))),
            (&[1.0, f64::NAN], None),
        ];
        for (input, want) in cases {
            let got = stats(input).map(|s| (s.median, s.min, s.max));
            assert_eq!(got, *want, "{input:?}");
        }
    }

    fn sample_lines() -> Vec<String> {
        s(&[
            "SAMPLE\tr\tRate\tmsg/s\thigh\tqmail-rs\t10",
            "SAMPLE\tr\tRate\tmsg/s\thigh\tpostfix\t5",
            "noise",
            "SAMPLE\tr\tRate\tmsg/s\thigh\tqmail-rs\t30",
            "SAMPLE\tr\tRate\tmsg/s\thigh\tqmail-rs\t20",
            "SAMPLE\tt\tTime\ts\tlow\tqmail-rs\t4",
            "SAMPLE\tt\tTime\ts\tlow\tpostfix\t2",
            "SAMPLE\td\tDisk\tfsync/s\thigh\tdisk\t900",
            "SAMPLE\tx\tBad\ts\tlow\tpostfix\tNaN",
            "SAMPLE\tx\tshort",
        ])
    }

    #[test]
    fn rows_ratios_and_goals() {
        let rows = collect(&sample_lines());
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].samples[OURS], vec![10.0, 30.0, 20.0]);
        assert_eq!(rows[0].ratio(), Some(4.0));
        assert_eq!(rows[0].goal_met(), Some(true));
        assert_eq!(rows[1].ratio(), Some(2.0));
        assert_eq!(rows[1].goal_met(), Some(false));
        assert_eq!(rows[2].ratio(), None);
        let ctx = Context {
            date: "d".into(),
            machine: vec![("cpu".into(), "x \"y\"".into())],
            quick: true,
            rounds: 3,
        };
        let md = markdown(&ctx, &rows);
        assert!(
            md.contains("| Rate | msg/s | high | 20.0 (10.0-30.0) | 5.00 | 4.00 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| Time | s | low | 4.00 | 2.00 | 2.00 | **no** |"),
            "{md}"
        );
        assert!(md.contains("| Disk | fsync/s | 900 |"), "{md}");
        let j = json(&ctx, &rows);
        assert!(j.contains("\"cpu\": \"x \\\"y\\\"\""), "{j}");
        assert!(j.contains("\"ratio\": 4, \"goal_met\": true"), "{j}");
        // Every cut of the input collects without panicking.
        let all = sample_lines().join("\n");
        for cut in 0..all.len() {
            let lines: Vec<String> = all[..cut].lines().map(String::from).collect();
            let _ = collect(&lines);
        }
    }

    #[test]
    fn json_strings() {
        let cases = [
            ("a", "\"a\""),
            ("\"", "\"\\\"\""),
            ("\\", "\"\\\\\""),
            ("\n", "\"\\u000a\""),
        ];
        for (input, want) in cases {
            assert_eq!(json_str(input), want);
        }
    }
}
