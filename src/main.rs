// Plans of a million recipients allocate and free millions of small strings from several
// threads at once; glibc's allocator spent about a third of such a plan in malloc and free.
// mimalloc is built without transparent huge pages (feature `no_thp`): with them, each first
// touch of memory cleared 2 MiB, a quarter of such a plan's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // SIGPIPE stays ignored (Rust's default): a broken pipe is an error to handle, never a death.
    // With the default disposition, a server or a proxy closing a connection while a request is
    // being written (hyper writes with `writev`, which raises SIGPIPE) killed an apply mid-run,
    // and so did `apply | head` once head exited. Output to a reader that went away is dropped
    // (the shell ignores write errors) and the command finishes its work.
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
