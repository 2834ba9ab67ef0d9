//! Table-driven tests of [`super::prepare`] and the option and environment readers (kept in their
//! own file so that `inject.rs` stays within the module size budget).

use super::*;

const GEN: &str =
    "Date: 24 Nov 2026 10:02:47 -0000\nMessage-ID: <20261124100247.4242.qmail@id.example>\n";

fn ctx() -> Context {
    let none = |_: &str| None;
    let mut identity = Identity::from_env(&none);
    identity.user = b"joe".to_vec();
    identity.sender_user = b"joe".to_vec();
    Context {
        config: Config::new(b"dh", b"dd.example", b"pd.example", b"id.example"),
        flags: Flags::default(),
        identity,
        mft: None,
        now: 1_795_514_567,
        pid: 4242,
    }
}

fn opts(args: &[&str]) -> Options {
    let mut v = vec![b"qmail-inject".to_vec()];
    v.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    parse_options(&v).expect("valid options")
}

fn run(fields: &[&str], o: &Options, c: &Context) -> Result<(String, String, Vec<String>), String> {
    let f: Vec<Vec<u8>> = fields.iter().map(|s| s.as_bytes().to_vec()).collect();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match prepare(&f, o, c) {
        Ok(p) => Ok((
            s(&p.header),
            s(&p.sender),
            p.recipients.iter().map(|r| s(r)).collect(),
        )),
        Err(e) => Err(format!("{} {}", e.code, s(&e.message))),
    }
}

#[test]
fn header_completion_table() {
    let c = ctx();
    let o = opts(&[]);
    let cases: &[(&[&str], String, &[&str])] = &[
        (
            &["Subject: hi\n"],
            format!("{GEN}From: joe@dh.dd.example\nCc: recipient list not shown: ;\nSubject: hi\n"),
            &[],
        ),
        (
            &["To: a, b@x.y\n", "Bcc: c\n", "Cc: d\n", "Content-Length: 3\n"],
            format!("{GEN}From: joe@dh.dd.example\nTo: a@dh.dd.example, b@x.y\nCc: d@dh.dd.example\n"),
            &["b@x.y", "a@dh.dd.example", "c@dh.dd.example", "d@dh.dd.example"],
        ),
        (
            &["To:joe ,  \"A B\"<ab@x>\n", "From: me\n", "Date: x\n", "Message-ID: <m@x>\n"],
            "To: joe@dh.dd.example, \"A B\" <ab@x.dd.example>\nFrom: me@dh.dd.example\nDate: x\nMessage-ID: <m@x>\n"
                .to_string(),
            &["ab@x.dd.example", "joe@dh.dd.example"],
        ),
        (
            &["From: x@y.z\n", "To: a@b.c\n", "Resent-To: r@s.t\n", "Resent-Bcc: q@s.t\n", "Date: d\n"],
            "Resent-Date: 24 Nov 2026 10:02:47 -0000\nResent-Message-ID: <20261124100247.4242.qmail@id.example>\n\
             Resent-From: joe@dh.dd.example\nFrom: x@y.z\nTo: a@b.c\nResent-To: r@s.t\nDate: d\n"
                .to_string(),
            &["r@s.t", "q@s.t"],
        ),
        (
            &["Resent-From: x@y.z\n"],
            "Resent-Date: 24 Nov 2026 10:02:47 -0000\nResent-Message-ID: <20261124100247.4242.qmail@id.example>\n\
             Resent-Cc: recipient list not shown: ;\nResent-From: x@y.z\n"
                .to_string(),
            &[],
        ),
        (
            &["To: list: a, b;\n", "Cc: x+ (X)\n", "X-Weird:  kept  as is \r\n", "MBOX-Line: From a b\n"],
            format!(
                "{GEN}From: joe@dh.dd.example\nTo: list: a@dh.dd.example, b@dh.dd.example;\n\
                 Cc: x+@dh.dd.example (X)\nX-Weird:  kept  as is \r\nMBOX-Line: From a b\n"
            ),
            &["b@dh.dd.example", "a@dh.dd.example", "x+@dh.dd.example"],
        ),
        (
            &["To: <@r1,@r2:u@h>, eric@mammoth.cs+, <>, z@[]\n"],
            format!("{GEN}From: joe@dh.dd.example\nTo: <u@h.dd.example>, eric@mammoth.cs.pd.example, <>, z@[]\n"),
            &["z@[]", "", "eric@mammoth.cs.pd.example", "u@h.dd.example"],
        ),
    ];
    for (fields, header, recips) in cases {
        let (h, s, r) = run(fields, &o, &c).unwrap();
        assert_eq!(h, *header, "{fields:?}");
        assert_eq!(s, "joe@dh.dd.example", "{fields:?}");
        assert_eq!(r, *recips, "{fields:?}");
    }
}

#[test]
fn long_lists_are_folded() {
    let addrs: Vec<String> = (0..8).map(|i| format!("someone{i}@example.com")).collect();
    let field = format!("To: {}\n", addrs.join(","));
    let (h, _, _) = run(&[&field], &opts(&[]), &ctx()).unwrap();
    let to = h.split("To: ").nth(1).unwrap();
    assert_eq!(
        to,
        "someone0@example.com, someone1@example.com, someone2@example.com,\n  \
         someone3@example.com, someone4@example.com, someone5@example.com,\n  \
         someone6@example.com, someone7@example.com\n"
    );
}

#[test]
fn envelope_sender() {
    let mut c = ctx();
    let rp: &[&str] = &[
        "Return-Path: <rp@x.y>, <other@x.y>\n",
        "Return-Path: <third@x.y>\n",
        "To: a@b.c\n",
    ];
    let sender = |fields: &[&str], o: &Options, c: &Context| run(fields, o, c).unwrap().1;
    assert_eq!(sender(rp, &opts(&[]), &c), "other@x.y");
    assert!(!run(rp, &opts(&[]), &c).unwrap().0.contains("Return-Path"));
    assert_eq!(sender(rp, &opts(&["-f", "f"]), &c), "f@dh.dd.example");
    assert_eq!(sender(&["Return-Path: <>\n"], &opts(&[]), &c), "");
    c.flags = Flags::parse(b"s");
    assert_eq!(sender(rp, &opts(&[]), &c), "joe@dh.dd.example");
    c.flags = Flags::parse(b"r");
    assert_eq!(sender(&[], &opts(&[]), &c), "joe-@dh.dd.example-@[]");
    assert_eq!(sender(rp, &opts(&[]), &c), "other@x.y-@[]");
    assert_eq!(sender(rp, &opts(&["-fa@b.c"]), &c), "a@b.c");
    c.flags = Flags::parse(b"m");
    assert_eq!(
        sender(&[], &opts(&[]), &c),
        "joe-1795514567.4242@dh.dd.example"
    );
    c.flags = Flags::default();
    c.identity.sender_user = b"a b".to_vec();
    c.identity.sender_host = Some(b"s.example".to_vec());
    assert_eq!(sender(&[], &opts(&[]), &c), "a b@s.example");
    assert_eq!(
        return_path_line(b"a b@s.example"),
        b"Return-Path: <\"a b\"@s.example>\n"
    );
    assert_eq!(return_path_line(b""), b"Return-Path: <>\n");
}

#[test]
fn recipient_strategies() {
    let c = ctx();
    let fields: &[&str] = &["To: h1@x.y, h2@x.y\n"];
    let recips = |args: &[&str]| run(fields, &opts(args), &c).unwrap().2;
    assert_eq!(recips(&[]), ["h2@x.y", "h1@x.y"]);
    assert_eq!(recips(&["a1", "a2@x.y"]), ["a1@dh.dd.example", "a2@x.y"]);
    assert_eq!(recips(&["-a"]), Vec::<String>::new());
    assert_eq!(recips(&["-h", "a1"]), ["h2@x.y", "h1@x.y"]);
    assert_eq!(
        recips(&["-H", "a1"]),
        ["a1@dh.dd.example", "h2@x.y", "h1@x.y"]
    );
    assert_eq!(
        recips(&["-H", "--", "-a"]),
        ["-a@dh.dd.example", "h2@x.y", "h1@x.y"]
    );
    assert_eq!(recips(&["a b"]), ["a b@dh.dd.example"]);
}

#[test]
fn generated_from_and_flags() {
    let mut c = ctx();
    c.identity.name = Some(b"Joe \"Q\" Public".to_vec());
    c.identity.host = Some(b"h.example".to_vec());
    let from = |c: &Context, fields: &[&str]| {
        let h = run(fields, &opts(&[]), c).unwrap().0;
        h.lines()
            .find(|l| l.starts_with("From:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        from(&c, &[]),
        "From: \"Joe \\\"Q\\\" Public\" <joe@h.example>"
    );
    c.flags = Flags::parse(b"c");
    assert_eq!(from(&c, &[]), "From: joe@h.example (Joe \\\"Q\\\" Public)");
    c.flags = Flags::parse(b"fi");
    let h = run(
        &["From: old@x.y\n", "Message-ID: <old@x>\n", "To: a@b.c\n"],
        &opts(&[]),
        &c,
    )
    .unwrap()
    .0;
    assert_eq!(
        h,
        format!("{GEN}From: \"Joe \\\"Q\\\" Public\" <joe@h.example>\nTo: a@b.c\n")
    );
    c.flags = Flags::default();
    c.identity.name = None;
    c.identity.host = None;
    c.identity.user = b"a b".to_vec();
    assert_eq!(from(&c, &[]), "From: \"a b\"@dh.dd.example");
}

#[test]
fn mail_followup_to() {
    let mut c = ctx();
    c.mft = Some(vec![b"LIST@x.y".to_vec()]);
    let fields: &[&str] = &["To: list@x.y\n", "Cc: a@b.c, \"d e\"@f.g\n"];
    let h = run(fields, &opts(&[]), &c).unwrap().0;
    assert!(
        h.contains("Mail-Followup-To: a@b.c,\n  \"d e\"@f.g,\n  list@x.y\nTo: list@x.y\n"),
        "{h}"
    );
    let h = run(&["To: other@x.y\n"], &opts(&[]), &c).unwrap().0;
    assert!(!h.contains("Mail-Followup-To"));
    let h = run(
        &["To: list@x.y\n", "Mail-Followup-To: me@x.y\n"],
        &opts(&[]),
        &c,
    )
    .unwrap()
    .0;
    assert_eq!(h.matches("Mail-Followup-To").count(), 1);
    let h = run(&["To: list@x.y\n", "Resent-From: me@x.y\n"], &opts(&[]), &c)
        .unwrap()
        .0;
    assert!(!h.contains("Mail-Followup-To"));
}

#[test]
fn failures() {
    let c = ctx();
    let cases: &[(&[&str], &[&str], &str)] = &[
        (
            &["From: a (b\n"],
            &[],
            "100 unable to parse this line:\nFrom: a (b",
        ),
        (
            &["To: x\n", "Reply-To: a,\n b: c\n"],
            &[],
            "100 unable to parse this line:\nReply-To: a,\n b: c",
        ),
        (
            &["To: x\n", "Return-Path: <a\n"],
            &[],
            "100 unable to parse this line:\nReturn-Path: <a",
        ),
        (
            &["Subject: x\n"],
            &["a@b(c"],
            "100 unable to parse address: a@b(c",
        ),
        (
            &["Subject: x\n"],
            &["-f", "x@]"],
            "100 unable to parse address: x@]",
        ),
        (&["bad line\n"], &[], "100 invalid header field: bad line"),
    ];
    for (fields, args, want) in cases {
        assert_eq!(run(fields, &opts(args), &c).unwrap_err(), *want);
    }
    let f = Failure::perm(b"x");
    assert_eq!(f.line(), b"qmail-inject: fatal: x\n");
}

/// Issue 21 (notqmail 1.09's "fix header parse regression"): a To, Cc, Bcc, Apparently-To or
/// Resent- recipient field that does not parse is kept as written (no host completion) instead
/// of refusing the message; qmail 1.03 and netqmail 1.06 exited 100 with "unable to parse this
/// line". The addresses after the error (the list is read from its end) stay header
/// recipients, as in notqmail.
#[test]
fn issue_21_unparsable_recipient_fields_are_kept() {
    let c = ctx();
    let h = |fields: &[&str], args: &[&str]| run(fields, &opts(args), &c).unwrap();
    // -a: the envelope comes from the arguments; the broken field goes through untouched.
    let (header, _, rcpts) = h(&["To: foo: bar, baz\n", "Subject: s\n"], &["-a", "fwd"]);
    assert_eq!(rcpts, ["fwd@dh.dd.example"]);
    assert!(
        header.ends_with("To: foo: bar, baz\nSubject: s\n"),
        "{header}"
    );
    // Header recipients: the parsable fields still count and are completed.
    let (header, _, rcpts) = h(&["To: a (b\n", "Cc: carol\n"], &[]);
    assert_eq!(rcpts, ["carol@dh.dd.example"]);
    assert!(
        header.ends_with("To: a (b\nCc: carol@dh.dd.example\n"),
        "{header}"
    );
    // A colon outside a group: bar and baz come after it.
    let (header, _, rcpts) = h(&["To: foo: bar, baz\n"], &[]);
    assert_eq!(rcpts, ["baz@dh.dd.example", "bar@dh.dd.example"]);
    assert!(header.ends_with("\nTo: foo: bar, baz\n"), "{header}");
    // Bcc is still removed; Resent- fields likewise kept as written; an unclosed quote.
    let (header, _, rcpts) = h(&["To: d\n", "Bcc: (open\n"], &[]);
    assert_eq!(rcpts, ["d@dh.dd.example"]);
    assert!(!header.contains("Bcc"), "{header}");
    let (header, _, rcpts) = h(
        &["Resent-From: joe\n", "Resent-To: e (f\n", "Resent-Cc: g\n"],
        &[],
    );
    assert_eq!(rcpts, ["g@dh.dd.example"]);
    assert!(header.contains("\nResent-To: e (f\n"), "{header}");
    let (header, _, rcpts) = h(&["To: z\n", "Cc: \"q\n"], &[]);
    assert_eq!(rcpts, ["z@dh.dd.example"]);
    assert!(
        header.ends_with("To: z@dh.dd.example\nCc: \"q\n"),
        "{header}"
    );
}

#[test]
fn options_and_environment() {
    let argv = |w: &[&str]| w.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(parse_options(&argv(&["qi", "-x"])), None);
    assert_eq!(parse_options(&argv(&["qi", "-f"])), None);
    let o = parse_options(&argv(&["qi", "-nNn", "-fs@x", "r"])).unwrap();
    assert!(o.print && o.sender.as_deref() == Some(&b"s@x"[..]) && o.recipients == [b"r".to_vec()]);
    let env = |v: &str| match v {
        "USER" => Some(b"u".to_vec()),
        "LOGNAME" => Some(b"l".to_vec()),
        "MAILHOST" => Some(b"mh".to_vec()),
        "NAME" => Some(b"N".to_vec()),
        "QMAILSUSER" => Some(b"su".to_vec()),
        _ => None,
    };
    let id = Identity::from_env(&env);
    assert_eq!(
        id,
        Identity {
            user: b"u".to_vec(),
            host: Some(b"mh".to_vec()),
            name: Some(b"N".to_vec()),
            sender_user: b"su".to_vec(),
            sender_host: Some(b"mh".to_vec()),
        }
    );
    assert_eq!(Identity::from_env(&|_: &str| None).user, b"anonymous");
    let f = Flags::parse(b"csfirmxyz");
    assert!(f.comment_style && f.delete_return_path && f.delete_from && f.delete_message_id);
    assert!(f.verp_recipient && f.verp_message);
}

#[test]
fn hostile_headers_cut_at_every_position() {
    let c = ctx();
    let msg: &[u8] = b"To: \"A\\\"B\" <@r:a.b@[1.2.3.4]> (c (d)), g: x@y, <>;, z w\nCc: \x00\xff\r, a+\nReturn-Path: <>\nResent-Bcc: q\n";
    for n in 0..=msg.len() {
        let (h, _) = qmail_rfc822::headerbody::split(&msg[..n]).unwrap();
        let _ = prepare(&h.fields, &opts(&["-H", "x"]), &c);
    }
    let long = format!("To: {}\n", "a,".repeat(20_000));
    let p = prepare(&[long.into_bytes()], &opts(&[]), &c).unwrap();
    assert_eq!(p.recipients.len(), 20_000);
    assert!(p.header.split(|&b| b == b'\n').all(|l| l.len() <= 78));
}
