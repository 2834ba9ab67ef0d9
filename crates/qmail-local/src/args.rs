//! qmail-local's command line: `[-nN] [--] user homedir local dash ext domain sender defaultdelivery`,
//! read with qmail's getopt rules (options first, clustered letters allowed, `--` ends them, a lone
//! `-` is an argument).
//!
//! Trust: the arguments come from qmail-lspawn (root) and are taken as they are; only their count,
//! the options and the absolute home directory are checked here.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The eight positional arguments and the mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `-N` (default): deliver; `-n`: only describe the instructions.
    pub doit: bool,
    /// The account the delivery runs as (only put in `$USER`).
    pub user: Vec<u8>,
    /// The home directory; starts with `/`.
    pub homedir: Vec<u8>,
    /// The recipient's local part, original case.
    pub local: Vec<u8>,
    /// `-` or empty: whether the address has an extension part.
    pub dash: Vec<u8>,
    /// The extension, original case.
    pub ext: Vec<u8>,
    /// The recipient's domain.
    pub domain: Vec<u8>,
    /// The envelope sender.
    pub sender: Vec<u8>,
    /// The default delivery instructions (qmail-start's argument).
    pub default_delivery: Vec<u8>,
}

/// Parses `argv` (program name first). `None` means: print the usage message, exit 100.
pub fn parse(argv: Vec<OsString>) -> Option<Args> {
    let mut args = argv.into_iter().skip(1).map(OsString::into_vec).peekable();
    let mut doit = true;
    while let Some(arg) = args.peek() {
        if arg.len() < 2 || arg[0] != b'-' {
            break;
        }
        let arg = args.next()?;
        if arg == b"--" {
            break;
        }
        for &c in &arg[1..] {
            match c {
                b'n' => doit = false,
                b'N' => doit = true,
                _ => return None,
            }
        }
    }
    let rest: Vec<Vec<u8>> = args.collect();
    let [user, homedir, local, dash, ext, domain, sender, default_delivery]: [Vec<u8>; 8] =
        rest.try_into().ok()?;
    if homedir.first() != Some(&b'/') {
        return None;
    }
    Some(Args {
        doit,
        user,
        homedir,
        local,
        dash,
        ext,
        domain,
        sender,
        default_delivery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("qmail-local")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    const EIGHT: [&str; 8] = [
        "joe",
        "/home/joe",
        "joe-x",
        "-",
        "x",
        "example.org",
        "a@b",
        "./Mailbox\n",
    ];

    #[test]
    fn table() {
        let ok = |pre: &[&str], doit: bool| {
            let mut w: Vec<&str> = pre.to_vec();
            w.extend_from_slice(&EIGHT);
            let a = parse(argv(&w)).unwrap_or_else(|| panic!("{pre:?}"));
            assert_eq!(a.doit, doit, "{pre:?}");
            assert_eq!(a.local, b"joe-x");
            assert_eq!(a.default_delivery, b"./Mailbox\n");
        };
        ok(&[], true);
        ok(&["--"], true);
        ok(&["-n", "--"], false);
        ok(&["-nN"], true);
        ok(&["-Nn", "--"], false);
        ok(&["-n"], false);

        let bad = |w: &[&str]| assert_eq!(parse(argv(w)), None, "{w:?}");
        bad(&[]);
        bad(&EIGHT[..7]);
        bad(&[
            "-x", "--", EIGHT[0], EIGHT[1], EIGHT[2], EIGHT[3], EIGHT[4], EIGHT[5], EIGHT[6],
            EIGHT[7],
        ]);
        let mut nine = EIGHT.to_vec();
        nine.push("extra");
        bad(&nine);
        let mut relative = EIGHT.to_vec();
        relative[1] = "home/joe";
        bad(&relative);
        relative[1] = "";
        bad(&relative);
    }

    #[test]
    fn empty_and_dash_arguments() {
        let a = parse(argv(&["--", "u", "/h", "u", "", "", "d", "", "-"])).unwrap();
        assert_eq!((a.dash.len(), a.ext.len(), a.sender.len()), (0, 0, 0));
        assert_eq!(a.default_delivery, b"-");
        // A lone "-" ends the options and is the first argument.
        assert_eq!(
            parse(argv(&["-", "/h", "u", "", "", "d", "", "x"]))
                .unwrap()
                .user,
            b"-"
        );
    }
}
