fn main() -> std::process::ExitCode {
    // Behave like other Unix tools when the reader of our output goes away (`plan | head`):
    // end quietly instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Plans of a million recipients allocate from several threads at once; glibc grows each
    // thread's heap in small steps (an mprotect per step), which costs ~10% of such a plan. Ask
    // for 64 MiB at a time instead: untouched pages cost nothing.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: a malloc tuning call at start-up, before any thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
    // An empty KORE_NOTIFY_* variable means unset, everywhere (CI systems export inputs left at
    // their default as empty strings).
    for (name, value) in std::env::vars_os() {
        if value.is_empty() && name.to_string_lossy().starts_with("KORE_NOTIFY_") {
            // SAFETY: at start-up, before any thread exists.
            unsafe { std::env::remove_var(&name) };
        }
    }
    kore_notify::run().into()
}
