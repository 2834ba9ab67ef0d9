//! `qmail-fuzz [--seconds N] [--iterations N] [--seed S] [TARGET...]` runs the targets (all by
//! default) for the budget each; `qmail-fuzz --list`; `qmail-fuzz --replay TARGET FILE...`.
//! Exit 0 when nothing crashed, 1 on a crash, 100 on usage errors.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(qmail_fuzz::driver::main(&args));
}
