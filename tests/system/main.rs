//! System tests: the freshly built qmail-rs installed into private sandboxes (qmail-testkit) and
//! run as a real qmail. One module per program or scenario. Run as root; as non-root each test
//! prints a loud SKIPPED line (and fails when QMAIL_REQUIRE_SYSTEM_TESTS=1, as in CI).

mod crash;
mod inject;
mod install_tree;
mod local;
mod netstring_memory;
mod newu_cdb;
mod operations;
mod pop3;
mod powercut;
mod privileges;
mod queue;
mod remote;
mod remote6;
mod remote_common;
mod remote_tls;
mod sandbox;
mod send_memory;
mod smtpd;
mod smtpd_more;
mod smtpd_stalled;
mod tls;
