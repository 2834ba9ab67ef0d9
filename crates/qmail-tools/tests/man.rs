//! Checks the man pages of this package's programs (and the qmail-rs pages written with them):
//! every binary has a page in `man/`, each page's `.TH` line names it, and it has the sections
//! the house style asks for.

use std::path::Path;

fn man_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../man"))
}

fn check(page: &str, need_exit_codes: bool) {
    let (name, section) = page.rsplit_once('.').unwrap();
    let text =
        std::fs::read_to_string(man_dir().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
    assert!(
        text.starts_with(&format!(".TH {name} {section} \"\" qmail-rs\n")),
        "{page}: .TH line"
    );
    let mut want = vec![
        ".SH NAME\n",
        ".SH SYNOPSIS\n",
        ".SH DESCRIPTION\n",
        ".SH \"SEE ALSO\"\n",
    ];
    if need_exit_codes {
        want.push(".SH \"EXIT CODES\"\n");
    }
    for s in want {
        assert!(text.contains(s), "{page}: missing {s}");
    }
    assert!(text.contains(&format!("{name} \\- ")), "{page}: NAME line");
}

#[test]
fn every_binary_has_a_page() {
    let bins = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin")).unwrap();
    for b in bins {
        let name = b.unwrap().file_name().into_string().unwrap();
        let prog = name.strip_suffix(".rs").unwrap();
        let page = if prog == "splogger" {
            format!("{prog}.8")
        } else {
            format!("{prog}.1")
        };
        check(&page, true);
    }
}

#[test]
fn program_and_format_pages() {
    for p in [
        "qmail-queue.8",
        "qmail-clean.8",
        "qmail-local.8",
        "qmail-lspawn.8",
        "qmail-rspawn.8",
        "qmail-getpw.8",
        "qmail-newu.8",
        "qmail-newmrh.8",
        "qmail-pw2u.8",
        "qmail-showctl.8",
        "qmail-qread.8",
        "qmail-qstat.8",
        "qmail-tcpto.8",
        "qmail-tcpok.8",
    ] {
        check(p, true);
    }
    for p in [
        "dot-qmail.5",
        "qmail-users.5",
        "qmail-control.5",
        "qmail-log.5",
        "envelopes.5",
        "maildir.5",
        "mbox.5",
        "qmail-header.5",
    ] {
        check(p, false);
    }
}

#[test]
fn qmail_queue_page_lists_its_exit_codes() {
    let text = std::fs::read_to_string(man_dir().join("qmail-queue.8")).unwrap();
    let section = text
        .split(".SH \"EXIT CODES\"")
        .nth(1)
        .unwrap()
        .split(".SH")
        .next()
        .unwrap();
    let mut codes: Vec<u32> = section
        .lines()
        .filter_map(|l| l.strip_prefix(".B "))
        .filter_map(|n| n.parse().ok())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [0, 11, 31, 51, 52, 53, 54, 55, 56, 61, 62, 63, 64, 65, 66, 71, 72, 73, 74, 81, 91]
    );
}
