//! The PostgreSQL state store against a real server (started by `scripts/test.sh`, which sets
//! `KORE_NOTIFY_TEST_PG` to a superuser URL): every test gets a database of its own. Without the
//! variable these tests fail, never skip.

use std::time::{Duration, Instant};

use crate::harness::*;

pub(crate) const PW_VAR: &str = "KN_TEST_PG_PASSWORD";

fn admin_url() -> url::Url {
    let raw = std::env::var("KORE_NOTIFY_TEST_PG").unwrap_or_default();
    assert!(
        !raw.is_empty(),
        "KORE_NOTIFY_TEST_PG is not set: run the suite with scripts/test.sh, which starts a throwaway PostgreSQL server"
    );
    url::Url::parse(&raw).expect("KORE_NOTIFY_TEST_PG is a URL")
}

/// Runs SQL statements (simple protocol) as `url`, returning the rows' first column.
pub(crate) fn sql(url: &str, q: &str) -> Result<Vec<String>, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let msgs = c.simple_query(q).await.map_err(|e| format!("{e:?}"))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
                _ => None,
            })
            .collect())
    })
}

/// A database of the test's own, dropped afterwards.
pub(crate) struct Db {
    pub name: String,
    admin: url::Url,
}

impl Db {
    pub(crate) fn new() -> Db {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = admin_url();
        let name = format!("kn_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        sql(admin.as_str(), &format!("CREATE DATABASE {name}")).expect("create database");
        Db { name, admin }
    }

    /// A superuser URL of this database with its password in clear (for the test's own SQL and
    /// for `KORE_NOTIFY_STATE_URL`).
    pub(crate) fn url(&self) -> String {
        let mut u = self.admin.clone();
        u.set_path(&self.name);
        u.to_string()
    }

    /// The same URL as written in a config: the password as a reference.
    pub(crate) fn written(&self, user: &str) -> String {
        format!(
            "postgres://{user}:${{{PW_VAR}}}@{}:{}/{}",
            self.admin.host_str().unwrap_or_default(),
            self.admin.port().unwrap_or(5432),
            self.name
        )
    }

    pub(crate) fn password(&self) -> String {
        self.admin.password().unwrap_or_default().to_string()
    }

    pub(crate) fn query(&self, q: &str) -> Vec<String> {
        sql(&self.url(), q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    /// Recipient hashes (hex) of `key` the state knows: received, or held back by a pending or
    /// unknown request.
    pub(crate) fn recorded(&self, key: &str) -> std::collections::BTreeSet<String> {
        self.query(&format!(
            "SELECT encode(r.recipient, 'hex') FROM kore_notify.recipients r
               JOIN kore_notify.notifications n ON n.id = r.notification WHERE n.key = '{key}'
             UNION
             SELECT encode(substring(q.intent FROM i * 32 + 1 FOR 16), 'hex') FROM kore_notify.requests q
               JOIN kore_notify.notifications n ON n.id = q.notification,
               generate_series(0, length(q.intent) / 32 - 1) AS i
             WHERE n.key = '{key}' AND q.outcome IN ('pending', 'unknown')"
        ))
        .into_iter()
        .collect()
    }

    /// The standard config with the state in this database and `batch` recipients a request.
    pub(crate) fn config(&self, emu: &Emulator, batch: usize) -> String {
        config(&emu.url)
            .replace("batchSize: 1000", &format!("batchSize: {batch}"))
            .replace("state: .kore-notify/state.json", &format!("state: {}", self.written("kore")))
    }

    /// A repository whose config keeps the state in this database.
    pub(crate) fn repo(&self, emu: &Emulator) -> Test {
        self.repo_as(emu, "kore", &self.password())
    }

    pub(crate) fn repo_as(&self, emu: &Emulator, user: &str, password: &str) -> Test {
        let cfg = config(&emu.url).replace("state: .kore-notify/state.json", &format!("state: {}", self.written(user)));
        Test::repo(&emu.url).file("kore-notify.yaml", &cfg).env(PW_VAR, password)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = sql(self.admin.as_str(), &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn slack(key: &str, ids: &[String]) -> String {
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn no_state_files(t: &Test) {
    let files: Vec<_> = all_files(t.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".kore-notify") || p.to_string_lossy().contains("state.json"))
        .collect();
    assert!(files.is_empty(), "a database state leaves no file in the repository: {files:?}");
}

/// The end-to-end loop with the state in PostgreSQL: apply sends once, a rerun sends nothing,
/// plan is a no-op, status and the state commands read it, and no state file appears.
#[test]
fn apply_rerun_plan_status_with_the_state_in_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let people = ids("p", 25);
    let t = db
        .repo(&emu)
        .file(
            "kore-notify.yaml",
            &config(&emu.url)
                .replace("batchSize: 1000", "batchSize: 10")
                .replace("state: .kore-notify/state.json", &format!("state: {}", db.written("kore"))),
        )
        .manifest("a.yaml", &slack("k", &people))
        .manifest(
            "b.yaml",
            "key: b\nchannel: msteams\ncontent: {type: text, value: yo}\nidentities: [ok@x.com, fail@x.com]\n",
        );
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!(d.len(), 27, "{d:?}");
    assert!(d.values().all(|c| *c == 1));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    assert_eq!(emu.deliveries().values().sum::<u64>(), 27, "a rerun sends nothing");
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    let (_, t) = t.args(["status"]).status(3).stdout_has("Identity is not associated").run();
    // Each comment is stored once; the rows refer to it.
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.comments"), ["2"]);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.recipients WHERE comment_id IS NOT NULL"), ["27"]);
    // A refresh that finds nothing new writes nothing.
    let serial = db.query("SELECT serial::text || ' ' || changes::text FROM kore_notify.states");
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    assert_eq!(db.query("SELECT serial::text || ' ' || changes::text FROM kore_notify.states"), serial);
    let (o, t) = t.args(["state", "list"]).status(0).stdout_has("k\tslack\t25 recipient(s)\t3 request(s)").run();
    assert!(o.stdout.contains("b\tmsteams\t2 recipient(s)\t1 request(s)"), "{}", o.stdout);
    let (o, t) = t.args(["state", "info"]).status(0).stdout_has("exists true").stdout_has("serial ").run();
    assert!(o.stdout.contains("path postgres://kore:***@127.0.0.1:"), "{}", o.stdout);
    let (_, t) = t.args(["state", "show", "k"]).status(0).stdout_has("\"outcome\": \"accepted\"").run();
    // The failed delivery is retried alone, through the ledger's retry rule.
    let (_, t) = t.args(["apply", "--auto-approve", "--retry-failed=b"]).status(0).run();
    assert_eq!(emu.deliveries()["msteams:fail@x.com"], 2);
    assert_eq!(emu.deliveries()["msteams:ok@x.com"], 1);
    let (o, t) = t.args(["state", "path", "--all"]).status(0).stderr_has("PostgreSQL").run();
    assert!(o.stdout.is_empty(), "no files to commit: {}", o.stdout);
    no_state_files(&t);
    // Rows as documented: one per recipient, a ledger row per recipient per request.
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.recipients"), ["27"]);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends"), ["28"]);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends WHERE holds"), ["27"]);
    let all = db.query("SELECT string_agg(doc::text, ' ') FROM kore_notify.notifications").join("");
    assert!(!all.contains("p1") && !all.contains(SECRET), "no identities or secrets in the database: {all}");
}

/// A password is never written in the config, and never shown.
#[test]
fn passwords_stay_out_of_configs_and_outputs() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let pw = db.password();
    let literal = db.written("kore").replace(&format!("${{{PW_VAR}}}"), &pw);
    let cfg = config(&emu.url).replace("state: .kore-notify/state.json", &format!("state: {literal}"));
    let t = Test::repo(&emu.url).file("kore-notify.yaml", &cfg).manifest("a.yaml", &slack("k", &ids("p", 3)));
    let (o, t) = t.args(["plan"]).status(1).stderr_has("literal password").stderr_has("kore-notify.yaml:").run();
    assert!(!o.stderr.contains(&pw) && !o.stdout.contains(&pw));
    // The reference must be set.
    let t = t.file(
        "kore-notify.yaml",
        &config(&emu.url).replace("state: .kore-notify/state.json", &format!("state: {}", db.written("kore"))),
    );
    let (_, t) = t.unset(PW_VAR).args(["plan"]).status(1).stderr_has(PW_VAR).run();
    // KORE_NOTIFY_STATE_URL is a secret: it may carry the password, and wins over `state:`.
    let t = t.file("kore-notify.yaml", &config(&emu.url)).env("KORE_NOTIFY_STATE_URL", &db.url());
    let mut outputs = String::new();
    let mut t = t;
    for args in
        [vec!["apply", "--auto-approve"], vec!["plan"], vec!["state", "info"], vec!["status"], vec!["state", "list"]]
    {
        let (o, t2) = t.args(args).status(0).run();
        outputs.push_str(&o.stdout);
        outputs.push_str(&o.stderr);
        t = t2;
    }
    // A wrong database name: the error names the URL, password hidden.
    let bad = db.url().replace(&db.name, "no_such_db");
    let (o, t) =
        t.env("KORE_NOTIFY_STATE_URL", &bad).args(["plan"]).status(1).stderr_has("no_such_db").stderr_has("***").run();
    outputs.push_str(&o.stderr);
    assert!(!outputs.contains(&pw), "the password was shown:\n{outputs}");
    assert_eq!(emu.deliveries().len(), 3);
    no_state_files(&t);
    // A remote server without TLS is refused before connecting.
    let t = t.env("KORE_NOTIFY_STATE_URL", "postgres://u:p@db.example.com/x?sslmode=disable");
    t.args(["plan"]).status(1).stderr_has("sslmode=disable is refused").run();
}

/// Two applies at once: the second is refused with exit 4 naming the holder; nobody gets two.
#[test]
fn a_second_apply_exits_4_naming_the_holder() {
    let db = Db::new();
    let emu = Emulator::start(&["--latency-ms", "60"]);
    let cfg = db.config(&emu, 2);
    let t = db.repo(&emu).file("kore-notify.yaml", &cfg).manifest("a.yaml", &slack("k", &ids("c", 40)));
    let mut first = t.spawn(&["apply", "--auto-approve", "--parallelism", "1"]);
    let start = Instant::now();
    while emu.deliveries().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (o, t) =
        t.args(["apply", "--auto-approve"]).status(4).stderr_has("locked by another run").stderr_has("pid ").run();
    assert!(o.stderr.contains("kore-notify apply") || o.stderr.contains("apply --auto-approve"), "{}", o.stderr);
    assert!(first.wait().expect("wait").success());
    let d = emu.deliveries();
    assert_eq!(d.len(), 40);
    assert!(d.values().all(|c| *c == 1), "{d:?}");
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

/// kill -9 at random points: 0 duplicates, and every delivered recipient is in the state (sent or
/// unknown).
#[test]
fn kill_9_trials_with_the_state_in_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&["--latency-ms", "15"]);
    let cfg = db.config(&emu, 2);
    let mut t = db.repo(&emu).file("kore-notify.yaml", &cfg);
    let mut seed: u64 = 0xdead_beef;
    for trial in 0..15 {
        let key = format!("k{trial}");
        let people: Vec<String> = (0..30).map(|i| format!("{key}-u{i}")).collect();
        t = t.manifest("a.yaml", &slack(&key, &people));
        let (t2, mine) = kill_and_rerun(t, &emu, &mut seed, 50, &key);
        t = t2;
        // Every delivered recipient is recorded: sent, or held back by an unknown request.
        let known = db.recorded(&key);
        let lineage = &db.query("SELECT lineage FROM kore_notify.states")[0];
        for rk in mine.keys() {
            let h = kore_notify::fingerprint::recipient_hash(lineage, rk.trim_start_matches("slack:"));
            assert!(known.contains(&hex::encode(h.0)), "trial {trial}: delivered {rk} is not in the state");
        }
        let (o, t2) = t.args(["state", "show", &key]).run();
        t = t2;
        if o.stdout.contains("\"unknown\"") {
            t = t.args(["state", "resolve", &key, "--all", "--sent"]).status(0).run().1;
        }
    }
    no_state_files(&t);
}

/// The connections dropped by the server in the middle of an apply: the run stops, nothing is
/// sent twice, and the request in flight is held back as unknown rather than forgotten.
#[test]
fn connection_lost_mid_apply() {
    let db = Db::new();
    let emu = Emulator::start(&["--latency-ms", "100"]);
    let cfg = db.config(&emu, 2);
    let t = db.repo(&emu).file("kore-notify.yaml", &cfg).manifest("a.yaml", &slack("k", &ids("x", 40)));
    let child = t
        .command()
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while emu.deliveries().len() < 6 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = db.query(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'kore-notify' AND datname = '{}'",
        db.name
    ));
    assert_ne!(killed, ["0"], "the apply's connections were found");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("postgres://kore:***@"), "{stderr}");
    let sent_before = emu.deliveries().len();
    assert!(sent_before < 40, "the run stopped ({sent_before} sent)");
    // The next run sends the rest; whoever was in flight is held back, never sent twice.
    let (o, t) = t.args(["apply", "--auto-approve"]).run();
    assert!(matches!(o.status, 0 | 3), "{}", o.stderr);
    let d = emu.deliveries();
    assert!(d.values().all(|c| *c == 1), "{d:?}");
    let known = db.recorded("k");
    let lineage = &db.query("SELECT lineage FROM kore_notify.states")[0];
    for rk in d.keys() {
        let h = kore_notify::fingerprint::recipient_hash(lineage, rk.trim_start_matches("slack:"));
        assert!(known.contains(&hex::encode(h.0)), "delivered {rk} is not recorded");
    }
    if o.status == 3 {
        let (_, t) = t.args(["state", "resolve", "k", "--all", "--not-sent"]).status(0).run();
        t.args(["apply", "--auto-approve"]).status(0).run();
        let d = emu.deliveries();
        assert_eq!(d.len(), 40);
    }
}

/// The ledger's unique index refuses a second standing send of the same content to the same
/// recipient, whoever writes it.
#[test]
fn the_ledger_refuses_a_second_standing_send_even_without_the_lock() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let (_, _t) =
        db.repo(&emu).manifest("a.yaml", &slack("k", &ids("u", 3))).args(["apply", "--auto-approve"]).status(0).run();
    let err = sql(
        &db.url(),
        "INSERT INTO kore_notify.sends (notification, req, recipient, fp)
         SELECT notification, req + 1, recipient, fp FROM kore_notify.sends LIMIT 1",
    )
    .expect_err("a second standing send is refused");
    assert!(err.contains("sends_once"), "{err}");
    // Once it no longer stands (rejected, superseded), the same content may go again.
    sql(
        &db.url(),
        "UPDATE kore_notify.sends SET holds = false WHERE req = 0;
         INSERT INTO kore_notify.sends (notification, req, recipient, fp)
         SELECT notification, req + 1, recipient, fp FROM kore_notify.sends LIMIT 1",
    )
    .expect("allowed once the first does not stand");
}

/// file → PostgreSQL → file, losslessly: each plans as a no-op; a store holding a state is never
/// overwritten.
#[test]
fn migrate_between_file_and_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let t = db
        .repo(&emu)
        .file("kore-notify.yaml", &config(&emu.url))
        .manifest("a.yaml", &slack("k", &ids("m", 12)))
        .manifest(
            "b.yaml",
            "key: b\nchannel: msteams\ncontent: {type: text, value: yo}\nidentities: [ok@x.com, fail@x.com]\n",
        );
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    std::thread::sleep(Duration::from_millis(300));
    let (_, t) = t.args(["status", "--refresh"]).status(3).run();
    let (before, t) = t.args(["state", "show", "b"]).status(0).run();
    let (_, t) = t
        .args(["state", "migrate", "--to", "postgres://kore:hunter2@127.0.0.1/x"])
        .status(1)
        .stderr_has("literal password")
        .run();
    let (_, t) = t
        .args(["state", "migrate", "--to", &db.written("kore")])
        .status(0)
        .stdout_has("migrated 2 notification(s) and 14 recipient record(s)")
        .run();
    let (_, t) =
        t.args(["state", "migrate", "--to", &db.written("kore")]).status(1).stderr_has("refuses to overwrite").run();
    let pg_cfg = config(&emu.url).replace("state: .kore-notify/state.json", &format!("state: {}", db.written("kore")));
    let t = t.file("kore-notify.yaml", &pg_cfg);
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    let (after, t) = t.args(["state", "show", "b"]).status(0).run();
    assert_eq!(before.stdout, after.stdout, "the notification's state is the same in PostgreSQL");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    // ... and back to a file.
    let (_, t) = t.args(["state", "migrate", "--to", "back/state.json"]).status(0).run();
    let (_, t) =
        t.args(["state", "migrate", "--to", "back/state.json"]).status(1).stderr_has("refuses to overwrite").run();
    let t = t.file("kore-notify.yaml", &config(&emu.url).replace(".kore-notify/state.json", "back/state.json"));
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).run();
    let (back, _t) = t.args(["state", "show", "b"]).status(0).run();
    // The same, but for the claim the apply in the shared store recorded (which repository declares
    // it); a state file ignores it.
    let unclaimed = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).expect("state show is JSON");
        v.as_object_mut().expect("object").remove("origin");
        v
    };
    assert_eq!(unclaimed(&before.stdout), unclaimed(&back.stdout));
    assert!(back.stdout.contains("\"origin\": \""), "{}", back.stdout);
    assert_eq!(emu.deliveries().values().sum::<u64>(), 14, "nothing was sent again");
}

/// `plan` and `status` need only a read-only role; `apply` with it sends nothing.
#[test]
fn plan_and_status_work_with_a_read_only_role() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let (_, _t) =
        db.repo(&emu).manifest("a.yaml", &slack("k", &ids("r", 5))).args(["apply", "--auto-approve"]).status(0).run();
    let role = format!("{}_ro", db.name);
    db.query(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'ro-pw'; GRANT CONNECT ON DATABASE {d} TO {role};
         GRANT USAGE ON SCHEMA kore_notify TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA kore_notify TO {role}",
        d = db.name
    ));
    let t = db.repo_as(&emu, &role, "ro-pw").manifest("a.yaml", &slack("k", &ids("r", 6)));
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(2).stdout_has("1 recipient(s) not sent before").run();
    let (_, t) = t.args(["status"]).status(0).run();
    let (_, _t) = t.args(["apply", "--auto-approve"]).status(1).stderr_has("permission denied").run();
    assert_eq!(emu.deliveries().len(), 5, "nothing was sent with a read-only role");
    db.query(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// A schema written by a newer kore-notify is refused, never used.
#[test]
fn a_newer_schema_is_refused() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let (_, t) =
        db.repo(&emu).manifest("a.yaml", &slack("k", &ids("n", 2))).args(["apply", "--auto-approve"]).status(0).run();
    db.query("INSERT INTO kore_notify.schema_version (version, tool_version) VALUES (99, '9.9.9')");
    let (_, t) = t.args(["plan"]).status(1).stderr_has("newer kore-notify").run();
    t.args(["apply", "--auto-approve"]).status(1).stderr_has("newer kore-notify").run();
}

/// The CI protocol (`scripts/ci-apply.sh`) with the state in PostgreSQL: no state branch, no
/// marker; a run killed outright is followed by a run that holds its in-flight request back, and
/// `recover` only settles the dead run's requests; nobody receives anything twice.
#[cfg(target_os = "linux")]
#[test]
fn the_ci_script_keeps_the_state_in_postgres_without_a_state_branch() {
    let db = Db::new();
    let emu = Emulator::start(&["--latency-ms", "40"]);
    let work = tempfile::tempdir().expect("tempdir");
    let (origin, dev) = (work.path().join("origin.git"), work.path().join("dev"));
    git(work.path(), &["init", "-q", "--bare", "-b", "main", origin.to_str().expect("utf8")]);
    git(work.path(), &["clone", "-q", origin.to_str().expect("utf8"), dev.to_str().expect("utf8")]);
    let cfg = db.config(&emu, 2);
    std::fs::write(dev.join("kore-notify.yaml"), cfg).expect("config");
    std::fs::create_dir_all(dev.join("notifications")).expect("mkdir");
    std::fs::write(dev.join("notifications/a.yaml"), slack("k", &ids("ci", 30))).expect("manifest");
    git(&dev, &["add", "-A"]);
    git(&dev, &["commit", "-q", "-m", "notifications"]);
    git(&dev, &["push", "-q", "origin", "main"]);
    let script = format!("{}/scripts/ci-apply.sh", env!("CARGO_MANIFEST_DIR"));
    // `alone`: in a session of its own, to be killed whole as a runner kills a job (the script
    // runs kore-notify in a process group of its own).
    let ci = |action: &str, alone: bool| {
        let mut c = std::process::Command::new(if alone { "setsid" } else { "bash" });
        if alone {
            c.arg("bash");
        }
        c.arg(&script)
            .stdin(std::process::Stdio::null())
            .current_dir(&dev)
            .env("KN_BIN", BIN)
            .env("KN_ACTION", action)
            .env("KN_DEFAULT_BRANCH", "main")
            .env("KORE_CLIENT_ID", CLIENT_ID)
            .env("KORE_CLIENT_SECRET", SECRET)
            .env("KORE_NOTIFY_NOW", NOW)
            .env(PW_VAR, db.password())
            .env("GIT_AUTHOR_NAME", "dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY");
        c
    };
    // A run killed outright: its own session (the script runs kore-notify in a process group of
    // its own), killed whole, as the runner kills a job.
    let child = ci("apply", true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while emu.deliveries().len() < 6 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::process::Command::new("pkill").args(["-KILL", "-s", &child.id().to_string()]).status();
    let mut child = child;
    let _ = child.wait();
    let sid = child.id().to_string();
    while std::process::Command::new("pgrep").args(["-s", &sid]).output().is_ok_and(|o| o.status.success()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = ci("recover", false).output().expect("recover");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no state branch"), "{stderr}");
    let out = ci("apply", false).output().expect("apply");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{stderr}");
    let d = emu.deliveries();
    assert!(d.values().all(|c| *c == 1), "{d:?}");
    assert!(git(&dev, &["ls-remote", "origin"]).lines().all(|l| !l.contains("kore-notify-state")), "no state branch");
    if out.status.code() == Some(3) {
        // Held back: the killed run's request in flight. Settle it as not sent, then send.
        let mut r = ci("resolve", false);
        let unknown = db.query("SELECT req FROM kore_notify.requests WHERE outcome = 'unknown' LIMIT 1");
        r.env("KN_KEY", "k").env("KN_REQUEST", &unknown[0]).env("KN_DECISION", "not-sent");
        let out = r.output().expect("resolve");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    loop {
        let out = ci("apply", false).output().expect("apply");
        if out.status.code() != Some(3) {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        let unknown = db.query("SELECT req FROM kore_notify.requests WHERE outcome = 'unknown' LIMIT 1");
        let mut r = ci("resolve", false);
        r.env("KN_KEY", "k").env("KN_REQUEST", &unknown[0]).env("KN_DECISION", "not-sent");
        assert!(r.output().expect("resolve").status.success());
    }
    let d = emu.deliveries();
    assert_eq!(d.len(), 30);
    assert!(d.values().all(|c| *c <= 2), "{d:?}");
    assert!(all_files(&dev).iter().all(|p| !p.to_string_lossy().contains(".kore-notify")), "no state file");
}

/// The ledger follows content back and forth: A, then B, then A again are three messages (each
/// told to by a change), a recorded change (`onChange: ignore`) supersedes without sending, and a
/// rejected request can be sent again.
#[test]
fn the_ledger_lets_changed_content_go_and_stops_repeats() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let m = |value: &str, extra: &str| {
        format!("key: k\nchannel: slack\ncontent: {{type: text, value: {value}}}\nidentities: [a, b]\n{extra}")
    };
    let (_, t) = db.repo(&emu).manifest("a.yaml", &m("one", "")).args(["apply", "--auto-approve"]).status(0).run();
    let (_, t) = t.manifest("a.yaml", &m("two", "")).args(["apply", "--auto-approve"]).status(0).run();
    let (_, t) = t.manifest("a.yaml", &m("one", "")).args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries()["slack:a"], 3);
    // Recorded without sending, then back: the old content is no longer what they have.
    let (_, t) =
        t.manifest("a.yaml", &m("three", "onChange: ignore\n")).args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries()["slack:a"], 3);
    let (_, t) = t.manifest("a.yaml", &m("one", "")).args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries()["slack:a"], 4);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends WHERE holds"), ["2"], "one standing send each");
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends"), ["8"], "the ledger keeps every send");
    drop(t);
    // A request answered 500 is unknown (it stands); settled as not sent it stops standing and the
    // same content goes again.
    let db = Db::new();
    let emu = Emulator::start(&["--schedule", "1=500"]);
    let (_, t) = db.repo(&emu).manifest("a.yaml", &m("one", "")).args(["apply", "--auto-approve"]).status(3).run();
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends WHERE holds"), ["2"]);
    let (_, t) = t.args(["apply", "--auto-approve"]).status(3).run();
    let (_, t) = t.args(["state", "resolve", "k", "0", "--not-sent"]).status(0).run();
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends WHERE holds"), ["0"]);
    let (_, _t) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.sends WHERE holds"), ["2"]);
    assert_eq!(emu.deliveries()["slack:a"], 1, "the 500 was not processed: one message in all");
}

/// Retention with the state in PostgreSQL: the orphan date is kept, the tombstone replaces the
/// rows, the key is refused until reused on purpose, and a migration carries tombstones.
#[test]
fn retention_and_tombstones_in_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let later = |days: i64| {
        let t = time::OffsetDateTime::parse(NOW, &time::format_description::well_known::Rfc3339).expect("NOW")
            + time::Duration::days(days);
        t.format(&time::format_description::well_known::Rfc3339).expect("format")
    };
    let cfg = format!(
        "{}retention: 30d\n",
        config(&emu.url).replace("state: .kore-notify/state.json", &format!("state: {}", db.written("kore")))
    );
    let (_, t) = db
        .repo(&emu)
        .file("kore-notify.yaml", &cfg)
        .manifest("a.yaml", &slack("k", &ids("t", 3)))
        .manifest("b.yaml", &slack("other", &ids("o", 1)))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    let t = t.file("notifications/a.yaml", "# k was removed\n");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("`k` is orphaned since").run();
    let doc = db.query("SELECT doc->>'orphanedSince' FROM kore_notify.notifications WHERE key = 'k'");
    assert_eq!(doc, [NOW]);
    let t = t.env("KORE_NOTIFY_NOW", &later(31));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("replaced by a tombstone").run();
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.notifications WHERE key = 'k'"), ["0"]);
    assert_eq!(db.query("SELECT doc->>'recipients' FROM kore_notify.tombstones WHERE key = 'k'"), ["3"]);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.recipients"), ["1"], "only `other` keeps its rows");
    let orphans = "SELECT count(*) FROM kore_notify.sends s
                   WHERE NOT EXISTS (SELECT 1 FROM kore_notify.notifications n WHERE n.id = s.notification)";
    assert_eq!(db.query(orphans), ["0"], "the retired notification's ledger rows go with it");
    assert_ne!(db.query("SELECT count(*) FROM kore_notify.sends"), ["0"], "`other` keeps its ledger rows");
    let t = t.manifest("a.yaml", &format!("# back\n{}", slack("k", &ids("t", 3))));
    let (_, t) = t.args(["plan"]).status(1).stderr_has("notifications/a.yaml:2").stderr_has("was retired at").run();
    // Migrated to a file and back into another database: the tombstone travels.
    let (_, t) = t.args(["state", "migrate", "--to", "copy/state.json"]).status(0).run();
    let db2 = Db::new();
    let file_cfg =
        format!("{}retention: 30d\n", config(&emu.url).replace(".kore-notify/state.json", "copy/state.json"));
    let t = t.file("kore-notify.yaml", &file_cfg);
    let (_, t) = t.args(["state", "show", "k"]).status(0).stdout_has("\"tombstone\"").run();
    let (_, t) = t.args(["state", "migrate", "--to", &db2.written("kore")]).status(0).run();
    assert_eq!(db2.query("SELECT count(*) FROM kore_notify.tombstones"), ["1"]);
    let t = t.file("kore-notify.yaml", &cfg);
    let t = t.manifest("a.yaml", &format!("# back\nreuseRetiredKey: true\n{}", slack("k", &ids("t", 3))));
    let (_, _t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("tombstone dropped").run();
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.tombstones"), ["0"]);
    assert_eq!(emu.deliveries()["slack:t0"], 2, "sent again only when the reuse was asked for");
}

/// TLS: verified against the server's own certificate it connects; `require` without that
/// certificate is refused (the platform's roots do not know it: certificates are always
/// verified); plain TCP to loopback remains the default.
#[test]
fn tls_certificates_are_always_verified() {
    let ca = std::env::var("KORE_NOTIFY_TEST_PG_CA").unwrap_or_default();
    assert!(!ca.is_empty(), "KORE_NOTIFY_TEST_PG_CA is not set: run the suite with scripts/test.sh");
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let t = Test::repo(&emu.url).manifest("a.yaml", &slack("k", &ids("s", 2)));
    let with = |q: &str| format!("{}?{q}", db.url());
    let verified = with(&format!("sslmode=verify-full&sslrootcert={ca}"));
    let (_, t) = t.env("KORE_NOTIFY_STATE_URL", &verified).args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 2);
    let (o, t) = t.env("KORE_NOTIFY_STATE_URL", &with("sslmode=require")).args(["plan"]).status(1).run();
    assert!(o.stderr.to_lowercase().contains("certificate"), "{}", o.stderr);
    let (_, t) = t.env("KORE_NOTIFY_STATE_URL", &with("sslmode=verify-ca")).args(["plan"]).status(1).run();
    let (_, t) = t.env("KORE_NOTIFY_STATE_URL", &db.url()).args(["plan", "--detailed-exitcode"]).status(0).run();
    let (_, _t) = t
        .env("KORE_NOTIFY_STATE_URL", &with("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"))
        .args(["plan"])
        .status(1)
        .stderr_has("sslrootcert")
        .run();
}

/// A saved plan applies with the state in PostgreSQL, exactly once: from an empty database too,
/// and a plan made before a change is refused.
#[test]
fn plan_files_apply_once_with_the_state_in_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let t = db.repo(&emu).manifest("a.yaml", &slack("k", &ids("f", 3)));
    let (_, t) = t.args(["plan", "--out", "first.plan"]).status(0).run();
    let (_, t) = t.args(["apply", "first.plan", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 3);
    let (_, t) = t.args(["apply", "first.plan", "--auto-approve"]).status(1).stderr_has("the state changed").run();
    let t = t.manifest("b.yaml", &slack("b", &ids("g", 2)));
    let (_, t) = t.args(["plan", "--out", "second.plan"]).status(0).run();
    let (_, _t) = t.args(["apply", "second.plan", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!(d.len(), 5);
    assert!(d.values().all(|c| *c == 1), "{d:?}");
}

/// A database written by the previous release (schema 2, each recipient's comment on its row,
/// after `status --refresh`): read as it is by `plan` and `status`, migrated in place by the
/// first writer (each comment then stored once), and nobody is sent anything again.
#[test]
fn a_schema_2_database_is_read_then_migrated_in_place_without_resending() {
    let db = Db::new();
    db.query(include_str!("fixtures/pg-v2-refreshed.sql"));
    let emu = Emulator::start(&[]);
    let greet =
        "key: greet\nchannel: msteams\ncontent: {type: text, value: hi}\nidentities: [ok1@x.com, fail@x.com, ok2@x.com";
    let standup = "key: standup\nchannel: hangouts\ncontent: {type: text, value: moved}\nidentities: [AAQAPWi0001, spaceId: o7ZNt8A0002]\n";
    let t = db.repo(&emu).manifest("a.yaml", &format!("{greet}]\n")).manifest("b.yaml", standup);
    let failed = "failed: fail@x.com: Identity is not associated with the channel";
    let version = || db.query("SELECT max(version)::text FROM kore_notify.schema_version");
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("2 no-op").run();
    let (_, t) = t.args(["status"]).status(3).stdout_has(failed).run();
    assert_eq!(version(), ["2"], "readers migrate nothing");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    assert_eq!(version(), ["3"]);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.comments"), ["2"]);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.recipients WHERE comment_id IS NOT NULL"), ["5"]);
    let columns = db.query(
        "SELECT string_agg(column_name, ',') FROM information_schema.columns
         WHERE table_schema = 'kore_notify' AND table_name = 'recipients'",
    );
    assert!(!columns[0].split(',').any(|c| c == "comment"), "{columns:?}");
    let (_, t) = t.args(["status"]).status(3).stdout_has(failed).run();
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("2 no-op").run();
    assert!(emu.deliveries().is_empty(), "{:?}", emu.deliveries());
    let t = t.manifest("a.yaml", &format!("{greet}, new@x.com]\n"));
    let (_, _) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().into_keys().collect::<Vec<_>>(), ["msteams:new@x.com"]);
}

/// `apply --override-policy` with the state in PostgreSQL: the override is recorded in the
/// notification's row (created by the override entry, before its first request), and the next
/// plan, read from the database, shows it.
#[test]
fn a_policy_override_is_recorded_in_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let policy = "policy:\n  - name: all-slack\n    when: {channel: slack}\n    require: {approvals: 1, from: [bob]}\n";
    let t = db
        .repo(&emu)
        .file("kore-notify.yaml", &format!("{}{policy}", db.config(&emu, 1000)))
        .manifest("a.yaml", &slack("k", &ids("p", 3)))
        .env("GITHUB_ACTOR", "octocat");
    let (_, t) = t.args(["apply", "--auto-approve"]).status(3).stderr_has("awaiting approval, not sent: `k`").run();
    assert!(emu.deliveries().is_empty());
    let (_, t) = t.args(["apply", "--auto-approve", "--override-policy", "--reason", "incident 42"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 3);
    let doc = db.query("SELECT doc::text FROM kore_notify.notifications WHERE key = 'k'").join("");
    assert!(doc.contains("incident 42") && doc.contains("octocat") && doc.contains("all-slack"), "{doc}");
    let t = t.manifest("a.yaml", &slack("k", &ids("p", 4)));
    let (_, t) =
        t.args(["plan"]).status(0).stdout_has("last sent despite the policy (override of all-slack) by octocat").run();
    no_state_files(&t);
}
