//! A newcomer's first hour: `init`, schemas that resolve in the user's own repository, `show`,
//! `version`, completions, `-C`, the config's spellings, durations, and the README's "first hour"
//! run line by line.

use std::process::{Command, Stdio};

use crate::harness::*;

#[test]
fn init_writes_a_working_repository_and_never_overwrites() {
    let (o, t) = Test::new().args(["init", "repo"]).status(0).stdout_has("kore-notify validate").run();
    assert!(o.stdout.contains("cd repo"), "{}", o.stdout);
    for f in INIT_FILES {
        assert!(t.path().join("repo").join(f).is_file(), "{f} missing");
    }
    // Modelines resolve inside the new repository.
    for (f, target) in [
        ("kore-notify.yaml", "schemas/config.schema.json"),
        ("notifications/welcome-ivr.yaml", "schemas/manifest.schema.json"),
    ] {
        let text = std::fs::read_to_string(t.path().join("repo").join(f)).expect("read");
        let rel =
            text.lines().next().and_then(|l| l.strip_prefix("# yaml-language-server: $schema=")).expect("modeline");
        let resolved = t.path().join("repo").join(f).parent().expect("dir").join(rel);
        assert_eq!(
            std::fs::canonicalize(resolved).ok(),
            std::fs::canonicalize(t.path().join("repo").join(target)).ok()
        );
    }
    let (_, t) = t.cwd("repo").args(["validate"]).status(0).stdout_has("2 notification(s)").run();
    let (_, t) = t.args(["plan"]).status(0).stdout_has("Plan: 2 notification(s) to send to 4 recipient(s)").run();
    // Nothing is overwritten: a second init, or one over a single existing file, writes nothing.
    let before = std::fs::read_to_string(t.path().join("repo/kore-notify.yaml")).expect("config");
    let (_, t) = t.args(["init"]).status(1).stderr_has("writes nothing over existing files").run();
    assert_eq!(std::fs::read_to_string(t.path().join("repo/kore-notify.yaml")).expect("config"), before);
    let t = t.file("other/notifications/welcome-ivr.yaml", "mine\n");
    let (_, t) = t.cwd(".").args(["init", "other"]).status(1).stderr_has("welcome-ivr.yaml").run();
    assert!(!t.path().join("other/kore-notify.yaml").exists(), "a refused init wrote files");
    assert_eq!(std::fs::read_to_string(t.path().join("other/notifications/welcome-ivr.yaml")).expect("mine"), "mine\n");
    // An existing .gitignore keeps its lines and gets ours once.
    let t = t.file("third/.gitignore", "target/");
    let (_, t) = t.args(["init", "third"]).status(0).run();
    assert_eq!(
        std::fs::read_to_string(t.path().join("third/.gitignore")).expect("gitignore").matches(".kore-notify/").count(),
        1
    );
    assert!(std::fs::read_to_string(t.path().join("third/.gitignore")).expect("gitignore").starts_with("target/\n"));
}

/// The files `init` writes.
const INIT_FILES: &[&str] = &[
    "kore-notify.yaml",
    "notifications/welcome-teams.yaml",
    "notifications/welcome-ivr.yaml",
    "schemas/manifest.schema.json",
    "schemas/config.schema.json",
    ".github/workflows/notifications.yml",
    ".github/workflows/notifications-comment.yml",
    ".gitignore",
];

/// Every path `init` writes or checks, directories and files, nested or not: the directories,
/// the other config name it refuses beside its own, and its files.
fn init_paths() -> Vec<&'static str> {
    let mut paths = vec!["notifications", "schemas", ".github", ".github/workflows", "kore-notify.yml"];
    paths.extend_from_slice(INIT_FILES);
    paths
}

/// Every file under `dir` (links listed, not followed), relative.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).expect("prefix").display().to_string());
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `init` never writes through a symbolic link: every path it writes × a link to a directory
/// outside, to a file outside, and to nothing. Each is refused naming the path; nothing is written
/// outside, and nothing inside but what was there.
#[cfg(unix)]
#[test]
fn init_never_writes_through_a_symbolic_link() {
    for rel in init_paths() {
        for kind in ["dir", "file", "dangling"] {
            let t = Test::new().file("outside/keep", "keep").file("outside.txt", "keep");
            let repo = t.path().join("r");
            let link = repo.join(rel);
            std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
            let target = match kind {
                "dir" => t.path().join("outside"),
                "file" => t.path().join("outside.txt"),
                _ => t.path().join("nowhere"),
            };
            std::os::unix::fs::symlink(&target, &link).expect("symlink");
            let before = tree(&repo);
            let (o, t) = t.args(["init", "r"]).status(1).run();
            assert!(o.stderr.contains(rel.rsplit('/').next().unwrap_or(rel)), "{rel} → {kind}: {}", o.stderr);
            assert_eq!(tree(&repo), before, "{rel} → {kind}: init wrote inside");
            assert_eq!(tree(&t.path().join("outside")), ["keep"], "{rel} → {kind}: init wrote outside");
            assert_eq!(std::fs::read_to_string(t.path().join("outside.txt")).expect("file"), "keep", "{rel} → {kind}");
            assert!(!t.path().join("nowhere").exists(), "{rel} → {kind}: init created the link's target");
        }
    }
}

/// Files the command writes may not exceed 6,000 bytes (a schema is larger): a write fails part way,
/// as on a full disk.
#[cfg(target_os = "linux")]
fn limit_file_size(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec. An ignored SIGXFSZ stays ignored
    // across exec, so an oversized write fails with EFBIG instead of killing the process.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: 6000, rlim_max: 6000 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &raw const lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// All or nothing: an `init` that fails part way (here: a file size limit, as a full disk would)
/// removes what it wrote, the config included, and leaves an existing `.gitignore` as it was; a
/// rerun then succeeds.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_init_leaves_nothing_behind() {
    let t = Test::new().file("r/.gitignore", "target/\n").file("r/.github/other.yml", "x");
    let mut cmd = t.command();
    cmd.args(["init", "r"]);
    limit_file_size(&mut cmd);
    let out = cmd.output().expect("init");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("init wrote nothing"), "{stderr}");
    assert_eq!(tree(&t.path().join("r")), [".github", ".github/other.yml", ".gitignore"]);
    assert_eq!(std::fs::read_to_string(t.path().join("r/.gitignore")).expect("gitignore"), "target/\n");
    let (_, t) = t.args(["init", "r"]).status(0).run();
    assert!(t.path().join("r/kore-notify.yaml").is_file() && t.path().join("r/schemas/manifest.schema.json").is_file());
    // Into a directory that does not exist yet: a failure removes it too.
    let mut cmd = t.command();
    cmd.args(["init", "new/deeper"]);
    limit_file_size(&mut cmd);
    assert_eq!(cmd.output().expect("init").status.code(), Some(1));
    assert!(!t.path().join("new").exists(), "a failed init left the directory it created");
}

#[test]
fn schemas_in_init_and_examples_are_the_tools_own() {
    let (_, t) = Test::new().args(["init", "r"]).status(0).run();
    for name in ["manifest", "config"] {
        let (o, t2) = Test::new().args(["schema", name]).status(0).run();
        let _ = t2;
        let written = std::fs::read_to_string(t.path().join(format!("r/schemas/{name}.schema.json"))).expect("schema");
        assert_eq!(written, o.stdout);
        let example = std::fs::read_to_string(examples_dir().join(format!("schemas/{name}.schema.json")))
            .expect("example schema");
        assert_eq!(example, o.stdout, "examples/schemas/{name}.schema.json is out of date");
        let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
        assert_eq!(
            v["$id"],
            format!(
                "https://raw.githubusercontent.com/kore-notify/kore-notify/v{}/schemas/{name}.schema.json",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

#[test]
fn show_renders_a_saved_plan_as_plan_did() {
    let t = Test::repo("https://kore.example.com")
        .manifest("a.yaml", "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [x@y.com]\n");
    let (text, t) = t.args(["plan", "--out", "p.json", "--color", "never"]).status(0).run();
    let (shown, t) = t.args(["show", "p.json", "--color", "never"]).status(0).run();
    assert_eq!(shown.stdout, text.stdout);
    let (json, t) = t.args(["show", "p.json", "--format", "json"]).status(0).run();
    assert_eq!(json.stdout.trim(), std::fs::read_to_string(t.path().join("p.json")).expect("plan").trim());
    let (_, t) =
        t.args(["show", "p.json", "--format", "markdown"]).status(0).stdout_has("<!-- kore-notify-plan -->").run();
    let t = t.file("bad.json", "{}");
    t.args(["show", "bad.json"]).status(1).stderr_has("not a kore-notify plan file").run();
}

#[test]
fn completions_chdir_config_spellings_and_durations() {
    for shell in ["bash", "zsh", "fish"] {
        let (o, _) = Test::new().args(["completions", shell]).status(0).run();
        assert!(o.stdout.contains("kore-notify") && o.stdout.contains("validate"), "{shell}");
    }
    let manifest = "key: a\nchannel: slack\ncontent: {type: text, value: hi}\nidentities: [a]\n";
    // -C DIR
    let t = Test::new()
        .file("deep/repo/kore-notify.yaml", &config("https://kore.example.com"))
        .file("deep/repo/notifications/a.yaml", manifest);
    let (_, t) = t.args(["-C", "deep/repo", "validate"]).status(0).run();
    let (_, t) = t.args(["-C", "nowhere", "validate"]).status(1).stderr_has("-C nowhere").run();
    // kore-notify.yml is accepted; both spellings at once are refused; a near miss is hinted at.
    let t =
        t.file("yml/kore-notify.yml", &config("https://kore.example.com")).file("yml/notifications/a.yaml", manifest);
    let (_, t) = t.cwd("yml").args(["validate"]).status(0).run();
    let t = t.file("yml/kore-notify.yaml", &config("https://kore.example.com"));
    let (_, t) = t.args(["validate"]).status(1).stderr_has("keep one").run();
    let t = t.file("miss/kore_notify.yaml", "x: 1\n");
    let (_, _) = t.cwd("miss").args(["validate"]).status(1).stderr_has("found `kore_notify.yaml`").run();
    // Durations by humantime.
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("a.yaml", manifest);
    let (_, t) = t.args(["apply", "--auto-approve", "--wait", "--timeout", "1h30m"]).status(0).run();
    let (_, t) = t.args(["apply", "--auto-approve", "--wait", "--timeout", "5min"]).status(0).run();
    t.args(["apply", "--timeout", "5 parsecs"]).status(1).stderr_has("is not a duration").run();
}

/// The README's "first hour" block, run line by line in an empty directory.
#[test]
fn the_readme_first_hour_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let block = readme
        .split("<!-- first-hour -->")
        .nth(1)
        .and_then(|b| b.split("<!-- /first-hour -->").next())
        .expect("first-hour block");
    let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with("```") && !l.trim().is_empty()).collect();
    assert!(lines.len() >= 8, "{lines:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tmp");
    let bin_dir = std::path::Path::new(BIN).parent().expect("bin dir");
    let script = format!(
        "set -e\nexport PATH=\"{}:$PATH\" KORE_NOTIFY_NOW={NOW}\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}\n",
        bin_dir.display(),
        lines
            .iter()
            .map(|l| {
                let l = l.split("  #").next().unwrap_or(l).trim_end().replace("8085", &port.to_string());
                // The emulator needs a moment before the next line talks to it.
                if l.ends_with('&') { format!("{l}\nsleep 1") } else { format!("echo \"+ {l}\" >&2\n{l}") }
            })
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env_remove("KORE_CLIENT_ID")
        .env_remove("KORE_CLIENT_SECRET")
        .env_remove("KORE_HOST")
        .env_remove("GITHUB_ACTIONS")
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the first hour failed\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("2 request(s) accepted (4 recipient(s))"), "{stdout}\n{stderr}");
    assert!(dir.path().join("my-notifications/.kore-notify/state.json").is_file());
}
