//! Records the commit the binary was built from, for `kore-notify --version` and
//! `kore-notify version`: `git rev-parse --short=12 HEAD` when building from a checkout,
//! `KORE_NOTIFY_BUILD_COMMIT` when set (release builds), otherwise "unknown".

fn main() {
    println!("cargo:rerun-if-env-changed=KORE_NOTIFY_BUILD_COMMIT");
    for f in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    let commit = std::env::var("KORE_NOTIFY_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let out = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let c = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !c.is_empty()).then_some(c)
    });
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=KORE_NOTIFY_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
    println!("cargo:rustc-env=KORE_NOTIFY_BUILD_TRIPLE={target}");
}
