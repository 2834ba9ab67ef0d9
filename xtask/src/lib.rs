//! qmail-rs's build tasks (the cargo-xtask pattern), doing what qmail's Makefile and `hier.c` did:
//!
//! * `install [--users] [--bin-dir DIR] [--root DIR] [--source-dir DIR]
//!   [--passwd-file F --group-file F [--first-id N]]`: creates qmail's tree (qmail's `make setup`);
//! * `check [--bin-dir DIR] [--root DIR]`: reports every deviation from the table (`instcheck`);
//! * `stage DIR`: places the tree under DIR without changing ownership;
//! * `users [--passwd-file F --group-file F [--first-id N]]`: creates missing accounts and groups;
//! * `up [--no-build] [--host FQDN] [--admin USER]`: installs missing daemontools/ucspi-tcp,
//!   builds a release, installs it with its users, configures and starts qmail (up.rs);
//! * `test`: the CI entry point (test.rs);
//! * `fuzz [--engine mutate|libfuzzer] [--seconds N] [TARGET...]`: the fuzz harness of tests/fuzz
//!   (fuzz.rs);
//! * `bench [--quick] [--rounds N] [--out DIR]`: ours side by side with Postfix (bench.rs).
//!
//! `cargo xtask TASK --help` (or `-h`, or `cargo xtask help TASK`) prints the task's usage and
//! exits 0 without doing anything else. Arguments are parsed by hand (no clap, as everywhere in
//! qmail-rs).

pub mod bench;
pub mod clone_check;
pub mod fuzz;
pub mod hier;
pub mod host;
pub mod install;
pub mod test;
pub mod tidy;
pub mod up;
pub mod users;

use std::path::{Path, PathBuf};

/// The workspace this xtask was built from.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Options shared by the subcommands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Also create qmail's users and groups.
    pub users: bool,
    /// Where the compiled programs are.
    pub bin_dir: Option<PathBuf>,
    /// qmail's home to install into (default conf-qmail).
    pub root: Option<PathBuf>,
    /// Workspace root holding boot/, doc/, man/ and the scripts.
    pub source_dir: Option<PathBuf>,
    /// passwd file for the Files users backend.
    pub passwd_file: Option<PathBuf>,
    /// group file for the Files users backend.
    pub group_file: Option<PathBuf>,
    /// First id handed out by the Files users backend.
    pub first_id: Option<u32>,
    /// `up`: use the programs already built (--bin-dir or target/) instead of building.
    pub no_build: bool,
    /// `up`: fully qualified host name for config-fast (default: run config).
    pub host: Option<String>,
    /// `up`: local user who receives mail for root, postmaster, mailer-daemon and abuse.
    pub admin: Option<String>,
    /// Positional arguments.
    pub args: Vec<String>,
}

/// Parses the options after the subcommand name.
pub fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("option {name} needs a value"))
        };
        match flag {
            "--users" => o.users = true,
            "--no-build" => o.no_build = true,
            "--host" => o.host = Some(value(flag)?),
            "--admin" => o.admin = Some(value(flag)?),
            "--bin-dir" => o.bin_dir = Some(value(flag)?.into()),
            "--root" => o.root = Some(value(flag)?.into()),
            "--source-dir" => o.source_dir = Some(value(flag)?.into()),
            "--passwd-file" => o.passwd_file = Some(value(flag)?.into()),
            "--group-file" => o.group_file = Some(value(flag)?.into()),
            "--first-id" => {
                o.first_id = Some(
                    value(flag)?
                        .parse()
                        .map_err(|_| "--first-id needs a number".to_string())?,
                )
            }
            f if f.starts_with("--") => return Err(format!("unknown option {f}")),
            _ => o.args.push(a.clone()),
        }
    }
    if o.passwd_file.is_some() != o.group_file.is_some() {
        return Err("--passwd-file and --group-file go together".into());
    }
    Ok(o)
}

/// Every task: its name, its usage line(s) and what it does (`cargo xtask TASK --help`).
pub const TASKS: &[(&str, &str, &str)] = &[
    (
        "install",
        "install [--users] [--bin-dir DIR] [--root DIR] [--source-dir DIR]\n\
         [--passwd-file FILE --group-file FILE [--first-id N]]",
        "creates qmail's tree with owners and modes (qmail's make setup); --users also creates \
         qmail's accounts",
    ),
    (
        "check",
        "check [--bin-dir DIR] [--root DIR]",
        "reports every difference between the installed tree and the hier table (instcheck)",
    ),
    (
        "stage",
        "stage DIR [--bin-dir DIR]",
        "places the tree under DIR without changing ownership (for packages)",
    ),
    (
        "users",
        "users [--passwd-file FILE --group-file FILE [--first-id N]]",
        "creates qmail's missing users and groups",
    ),
    (
        "up",
        "up [--no-build] [--bin-dir DIR] [--host FQDN] [--admin USER]\n\
         [--passwd-file FILE --group-file FILE [--first-id N]]",
        "builds, installs and configures qmail and starts it under svscan /service;\n\
         --host names the mail host (default: its name in DNS or /etc/hosts, else\n\
         HOST.localdomain for a host name without a dot);\n\
         --admin is the user who gets the mail of root, postmaster, mailer-daemon and abuse",
    ),
    (
        "test",
        "test",
        "the CI entry point: installs the tools the tests drive, builds, runs unit and system tests",
    ),
    (
        "fuzz",
        "fuzz [--engine mutate|libfuzzer] [--seconds N] [--seed S] [TARGET...]",
        "runs the fuzz targets of tests/fuzz",
    ),
    (
        "bench",
        "bench [--quick] [--rounds N] [--out DIR] [--bin-dir DIR]",
        "measures qmail-rs side by side with Postfix",
    ),
    (
        "tidy",
        "tidy",
        "checks the house rules (dependency tables, module docs, man pages)",
    ),
];

/// `cargo xtask SYNOPSIS` after `lead`, continuation lines indented under the task's options.
fn synopsis_lines(lead: &str, task: &str, synopsis: &str) -> String {
    let indent = " ".repeat(lead.len() + "cargo xtask ".len() + task.len() + 1);
    format!(
        "{lead}cargo xtask {}",
        synopsis.replace('\n', &format!("\n{indent}"))
    )
}

/// The usage of every task.
pub fn usage() -> String {
    let lines: Vec<String> = TASKS
        .iter()
        .enumerate()
        .map(|(i, (task, synopsis, _))| {
            let lead = if i == 0 { "usage: " } else { "       " };
            synopsis_lines(lead, task, synopsis)
        })
        .collect();
    lines.join("\n")
}

/// One task's `--help` text, or None for an unknown task.
pub fn task_help(task: &str) -> Option<String> {
    let (_, synopsis, what) = TASKS.iter().find(|(name, _, _)| *name == task)?;
    Some(format!(
        "{}\n\n{what}.",
        synopsis_lines("usage: ", task, synopsis)
    ))
}

fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "--help" || a == "-h")
}

/// Runs one subcommand; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{}", usage());
        return 100;
    };
    if matches!(cmd.as_str(), "help" | "--help" | "-h") {
        match rest.first() {
            None => println!("{}", usage()),
            Some(task) => match task_help(task) {
                Some(text) => println!("{text}"),
                None => {
                    eprintln!("xtask help: fatal: unknown command {task}\n{}", usage());
                    return 100;
                }
            },
        }
        return 0;
    }
    if wants_help(rest) {
        if let Some(text) = task_help(cmd) {
            println!("{text}");
            return 0;
        }
    }
    if cmd == "bench" {
        return bench::run(&workspace_root(), rest);
    }
    if cmd == "fuzz" {
        return fuzz::run(&workspace_root(), rest);
    }
    if cmd == "tidy" {
        return tidy::run(&workspace_root());
    }
    let opts = match parse_options(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask {cmd}: fatal: {e}\n{}", usage());
            return 100;
        }
    };
    let result = match cmd.as_str() {
        "install" => cmd_install(&opts, install::Ownership::Set),
        "stage" => match opts.args.first() {
            Some(dir) => cmd_install(
                &Options {
                    root: Some(dir.into()),
                    users: false,
                    ..opts.clone()
                },
                install::Ownership::Skip,
            ),
            None => Err("stage needs a directory".into()),
        },
        "check" => cmd_check(&opts),
        "users" => cmd_users(&opts),
        "up" => cmd_up(&opts),
        "test" => return test::run(&workspace_root()),
        other => Err(format!("unknown command {other}\n{}", usage())),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask {cmd}: fatal: {e}");
            111
        }
    }
}

fn sources(o: &Options) -> hier::Sources {
    let tree = o.source_dir.clone().unwrap_or_else(workspace_root);
    let bin_dir = o.bin_dir.clone().unwrap_or_else(|| default_bin_dir(&tree));
    hier::Sources { bin_dir, tree }
}

/// target/release if it holds any qmail program, else target/debug.
fn default_bin_dir(tree: &Path) -> PathBuf {
    let target = host::target_dir(tree);
    let release = target.join("release");
    if hier::programs()
        .iter()
        .any(|(p, _, _)| release.join(p).is_file())
    {
        release
    } else {
        target.join("debug")
    }
}

fn home(o: &Options) -> PathBuf {
    o.root
        .clone()
        .unwrap_or_else(|| PathBuf::from(qmail_core::conf::HOME))
}

fn users_backend(o: &Options) -> users::Backend {
    match (&o.passwd_file, &o.group_file) {
        (Some(p), Some(g)) => users::Backend::Files {
            passwd: p.clone(),
            group: g.clone(),
            first_id: o.first_id.unwrap_or(7790),
        },
        _ => users::Backend::System,
    }
}

fn cmd_users(o: &Options) -> Result<i32, String> {
    for line in users::ensure(&users_backend(o))? {
        eprintln!("xtask users: {line}");
    }
    Ok(0)
}

fn cmd_install(o: &Options, own: install::Ownership) -> Result<i32, String> {
    if o.users {
        cmd_users(o)?;
    }
    let src = sources(o);
    let home = home(o);
    let entries = hier::hier(&src.tree);
    let ids = match own {
        install::Ownership::Set => Some(install::Ids::resolve(&entries)?),
        install::Ownership::Skip => None,
    };
    eprintln!(
        "xtask install: {} from {}",
        home.display(),
        src.bin_dir.display()
    );
    let report = install::install(&home, &entries, &src, own, ids.as_ref())?;
    for p in &report.not_built {
        eprintln!("xtask install: {p}: not built yet");
    }
    Ok(0)
}

fn cmd_check(o: &Options) -> Result<i32, String> {
    let src = sources(o);
    let entries = hier::hier(&src.tree);
    let ids = install::Ids::resolve(&entries)?;
    let report = install::check(&home(o), &entries, &src, &ids);
    for p in &report.not_built {
        eprintln!("xtask check: {p}: not built yet");
    }
    for d in &report.deviations {
        eprintln!("xtask check: warning: {d}");
    }
    Ok(if report.deviations.is_empty() { 0 } else { 111 })
}

fn cmd_up(o: &Options) -> Result<i32, String> {
    let root = o.source_dir.clone().unwrap_or_else(workspace_root);
    up::ensure_packages()?;
    let mut bin_dir = o.bin_dir.clone();
    if !o.no_build {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(&root)
                .args(["build", "--release", "--workspace", "--bins"])
                .status()
                .map_err(|e| format!("unable to run cargo: {e}"))?;
        if !status.success() {
            return Err("cargo build --release failed".into());
        }
        bin_dir = Some(host::target_dir(&root).join("release"));
    }
    let opts = Options {
        users: true,
        bin_dir,
        source_dir: Some(root.clone()),
        ..o.clone()
    };
    cmd_install(&opts, install::Ownership::Set)?;
    // qmail's `make check` (instcheck): the tree must match hier before anything starts.
    if cmd_check(&opts)? != 0 {
        return Err("the installed tree deviates from the hier table (see above)".into());
    }
    up::configure(&up::Plan {
        home: home(&opts),
        tree: root,
        host: o.host.clone(),
        admin: o.admin.clone(),
        service_dir: PathBuf::from(up::SERVICE_DIR),
        wait: std::time::Duration::from_secs(60),
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = parse_options(&s(&["--users", "--bin-dir", "/b", "--root=/r", "x"])).unwrap();
        assert!(o.users);
        assert_eq!(o.bin_dir, Some("/b".into()));
        assert_eq!(o.root, Some("/r".into()));
        assert_eq!(o.args, s(&["x"]));
        let o = parse_options(&s(&[
            "--passwd-file",
            "p",
            "--group-file",
            "g",
            "--first-id",
            "9",
        ]))
        .unwrap();
        assert_eq!(o.first_id, Some(9));
        let bad: &[&[&str]] = &[
            &["--bin-dir"],
            &["--nope"],
            &["--first-id", "x"],
            &["--passwd-file", "p"],
        ];
        for b in bad {
            assert!(parse_options(&s(b)).is_err(), "{b:?}");
        }
    }

    /// Issue 21: `cargo xtask TASK --help` (and `-h`, `help TASK`) prints the task's usage and
    /// exits 0 for every task, before doing any of its work.
    #[test]
    fn issue_21_help_for_every_task() {
        for (task, synopsis, _) in TASKS {
            for flag in ["--help", "-h"] {
                assert_eq!(run(&s(&[task, flag])), 0, "{task} {flag}");
            }
            assert_eq!(run(&s(&[task, "--bin-dir", "/b", "--help"])), 0, "{task}");
            assert_eq!(run(&s(&["help", task])), 0, "help {task}");
            let text = task_help(task).unwrap();
            assert!(
                text.starts_with(&format!("usage: cargo xtask {task}")),
                "{text}"
            );
            assert!(usage().contains(synopsis.lines().next().unwrap()), "{task}");
        }
        assert_eq!(run(&s(&["--help"])), 0);
        assert_eq!(run(&s(&["help"])), 0);
        assert_eq!(run(&s(&["help", "frobnicate"])), 100);
        assert!(task_help("frobnicate").is_none());
    }

    #[test]
    fn unknown_command_is_an_error() {
        assert_eq!(run(&s(&["frobnicate"])), 111);
        assert_eq!(run(&[]), 100);
    }
}
