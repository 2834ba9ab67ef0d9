//! qmail-sys links GCC's unwinder statically (build.rs). The test harness and `catch_unwind`
//! depend on unwinding, and backtraces on walking the stack: both must still work, and
//! libgcc_s.so.1 must really be gone from a program linked with qmail-sys.

// Linked for its build script's native-library request; nothing in it is called here.
extern crate qmail_sys;

#[test]
fn libgcc_s_is_not_loaded() {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    assert!(!maps.contains("libgcc_s"), "{maps}");
}

#[test]
fn a_panic_unwinds_through_the_static_unwinder() {
    let caught = std::panic::catch_unwind(|| {
        let _guard = Dropped;
        panic!("deliberate");
    });
    assert!(caught.is_err());
    assert!(DROPPED.load(std::sync::atomic::Ordering::SeqCst));
}

static DROPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Dropped;

impl Drop for Dropped {
    fn drop(&mut self) {
        DROPPED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_backtrace_walks_the_stack() {
    let bt = std::backtrace::Backtrace::force_capture();
    assert_eq!(bt.status(), std::backtrace::BacktraceStatus::Captured);
    let text = bt.to_string();
    assert!(text.contains("a_backtrace_walks_the_stack"), "{text}");
}
