//! The PostgreSQL store keeps the core's promises under the attacks that broke it once: a server
//! whose default is `synchronous_commit = off`, passwords that hold URL delimiters, manifests that
//! try to expand the state's credentials, and hosts that only look local.

use crate::harness::*;
use crate::postgres::Db;

fn slack(key: &str, n: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("{key}-p{i}")).collect();
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

/// A database whose default is `synchronous_commit = off`: every transaction that records an
/// intent, and every migration, still commits synchronously. Triggers installed by the test refuse
/// any schema change or intent written with the setting off, so an inherited default fails the run.
#[test]
fn intents_and_migrations_never_inherit_asynchronous_commit() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    db.query(&format!("ALTER DATABASE {} SET synchronous_commit = off", db.name));
    db.query(
        "CREATE FUNCTION public.kn_durable() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('synchronous_commit') <> 'on' THEN
             RAISE EXCEPTION 'schema change with synchronous_commit = %', current_setting('synchronous_commit');
           END IF;
         END $$;
         CREATE EVENT TRIGGER kn_durable_ddl ON ddl_command_start EXECUTE FUNCTION public.kn_durable();",
    );
    let t = db.repo(&emu).file("kore-notify.yaml", &db.config(&emu, 2)).manifest("a.yaml", &slack("a", 3));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    // Both triggers fire: schema changes made with the database's default are refused.
    let e = crate::postgres::sql(&db.url(), "CREATE TABLE public.kn_probe (x int)").expect_err("refused");
    assert!(e.contains("schema change with synchronous_commit = off"), "{e}");
    db.query(
        "SET synchronous_commit = on;
         CREATE FUNCTION public.kn_intent_durable() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.outcome = 'pending' AND current_setting('synchronous_commit') <> 'on' THEN
             RAISE EXCEPTION 'intent with synchronous_commit = %', current_setting('synchronous_commit');
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER kn_intent_durable BEFORE INSERT OR UPDATE ON kore_notify.requests
           FOR EACH ROW EXECUTE FUNCTION public.kn_intent_durable();",
    );
    let (_, t) = t.manifest("b.yaml", &slack("b", 5)).args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 8);
    let e = crate::postgres::sql(
        &db.url(),
        "BEGIN; UPDATE kore_notify.requests SET outcome = 'pending'
         WHERE notification = (SELECT min(notification) FROM kore_notify.requests); ROLLBACK",
    )
    .expect_err("the trigger refuses an intent written asynchronously");
    assert!(e.contains("intent with synchronous_commit = off"), "{e}");
    t.args(["plan", "--detailed-exitcode"]).status(0).run();
}

/// A role whose password holds every URL delimiter, given in `KORE_NOTIFY_STATE_URL`: it works, and
/// no output of any command shows it (state path and info, the exit-4 lock message, connection
/// errors).
#[test]
fn passwords_with_url_delimiters_never_show() {
    let db = Db::new();
    let emu = Emulator::start(&["--latency-ms", "80"]);
    let role = format!("{}_delim", db.name);
    let pw = "Zq7/x?y#z:w&v=u+t";
    db.query(&format!("CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{pw}'"));
    let admin = url::Url::parse(&db.url()).expect("url");
    let hostport = format!("{}:{}", admin.host_str().unwrap_or_default(), admin.port().unwrap_or(5432));
    let raw_url = format!("postgres://{role}:{pw}@{hostport}/{}", db.name);
    let t = Test::repo(&emu.url)
        .manifest("a.yaml", &slack("a", 30))
        .file("kore-notify.yaml", &config(&emu.url).replace("batchSize: 1000", "batchSize: 2"))
        .env("KORE_NOTIFY_STATE_URL", &raw_url);
    let mut seen = String::new();
    let mut first = t.spawn(&["apply", "--auto-approve", "--parallelism", "1"]);
    let start = std::time::Instant::now();
    while emu.deliveries().is_empty() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (o, mut t) = t.args(["apply", "--auto-approve"]).status(4).stderr_has(":***@").run();
    seen.push_str(&o.stderr);
    assert!(first.wait().expect("wait").success());
    for args in [vec!["state", "path"], vec!["state", "info"], vec!["plan"], vec!["status"], vec!["state", "list"]] {
        let (o, t2) = t.args(args).run();
        seen.push_str(&o.stdout);
        seen.push_str(&o.stderr);
        t = t2;
    }
    // Connection errors: a wrong database, a closed port.
    for bad in [raw_url.replace(&db.name, "no_such_db"), raw_url.replace(&hostport, "127.0.0.1:1")] {
        let (o, t2) = t.env("KORE_NOTIFY_STATE_URL", &bad).args(["plan"]).status(1).stderr_has("***").run();
        seen.push_str(&o.stderr);
        t = t2;
    }
    for piece in [pw, "Zq7", "y#z", "v=u+t"] {
        assert!(!seen.contains(piece), "`{piece}` of the password was shown:\n{seen}");
    }
    assert_eq!(emu.deliveries().len(), 30);
    db.query(&format!("REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// Literal passwords in the config or `--to`, in any spelling the client reads, are refused
/// without being echoed.
#[test]
fn literal_passwords_are_refused_in_every_spelling() {
    let emu = Emulator::start(&[]);
    let spellings = [
        "postgres://kn:Sec/9@127.0.0.1:5432/db",
        "postgres://kn:Sec?9@127.0.0.1:5432/db",
        "postgres://kn:Sec#9@127.0.0.1/db",
        "postgres://kn@127.0.0.1/db?password=Sec9",
        "postgres://kn@127.0.0.1/db?sslmode=prefer&password=Sec9",
        "postgresql://kn@127.0.0.1/db?pass%77ord=Sec9",
    ];
    for url in spellings {
        let t = Test::repo(&emu.url).manifest("a.yaml", &slack("a", 1)).file(
            "kore-notify.yaml",
            &config(&emu.url).replace("state: .kore-notify/state.json", &format!("state: \"{url}\"")),
        );
        let (o, t) = t.args(["validate"]).status(1).stderr_has("kore-notify.yaml:").run();
        assert!(!o.stderr.contains("Sec") && !o.stdout.contains("Sec"), "{url}:\n{}", o.stderr);
        let t = t.file("kore-notify.yaml", &config(&emu.url));
        let (o, _) = t.args(["state", "migrate", "--to", url]).status(1).run();
        assert!(!o.stderr.contains("Sec") && !o.stdout.contains("Sec"), "{url}:\n{}", o.stderr);
        assert!(o.stderr.contains("password"), "{url}:\n{}", o.stderr);
    }
}

/// The variables the state's credentials come from cannot be declared for manifests.
#[test]
fn state_credentials_are_undeclarable() {
    let emu = Emulator::start(&[]);
    let written = "state: postgres://kn:${KN_STATE_PW}@127.0.0.1:5432/db";
    for (state, var) in [
        ("state: .kore-notify/state.json", "KORE_NOTIFY_STATE_URL"),
        (written, "KN_STATE_PW"),
        (written, "KORE_NOTIFY_STATE_URL"),
    ] {
        let cfg = config(&emu.url).replace("state: .kore-notify/state.json", state) + &format!("variables: [{var}]\n");
        let t = Test::repo(&emu.url).file("kore-notify.yaml", &cfg).manifest("a.yaml", &slack("a", 1));
        t.args(["validate"]).status(1).stderr_has("holds a credential").stderr_has(var).run();
    }
}

/// A host that only looks local (`hostaddr` elsewhere, or no host at all) gets TLS or no
/// connection: the password never travels in clear off the machine.
#[test]
fn only_loopback_addresses_go_without_tls() {
    let emu = Emulator::start(&[]);
    for url in [
        "postgres://u:p@127.0.0.1/db?hostaddr=10.9.9.9&sslmode=disable",
        "postgres://u:p@localhost/db?hostaddr=192.0.2.1&sslmode=disable",
        "postgres://u:p@/db?sslmode=disable",
    ] {
        let t = Test::repo(&emu.url).manifest("a.yaml", &slack("a", 1)).env("KORE_NOTIFY_STATE_URL", url);
        let (o, _) = t.args(["plan"]).status(1).stderr_has("sslmode=disable is refused").run();
        assert!(!o.stderr.contains(":p@"), "{}", o.stderr);
    }
}

/// The date `days` after the suite's fixed `NOW`.
fn days_after(days: i64) -> String {
    let rfc = &time::format_description::well_known::Rfc3339;
    (time::OffsetDateTime::parse(NOW, rfc).expect("NOW") + time::Duration::days(days)).format(rfc).expect("format")
}

/// Two repositories share a bot and a database; one has a retention. Neither treats the other's
/// notifications as orphans, so the retention never retires what the other declares, even over a
/// state written before origins were recorded; and its own orphans are still retired.
#[test]
fn a_shared_state_retires_only_what_this_repository_declared() {
    let db = Db::new();
    let emu = Emulator::start(&[]);
    let cfg = db.config(&emu, 1000);
    let b = db.repo(&emu).file("kore-notify.yaml", &cfg).manifest("b.yaml", &slack("b-live", 2));
    let (_, b) = b.args(["apply", "--auto-approve"]).status(0).run();
    let a = db
        .repo(&emu)
        .file("kore-notify.yaml", &format!("{cfg}retention: 1d\n"))
        .manifest("a.yaml", &slack("a-gone", 1))
        .manifest("a2.yaml", &slack("a-live", 1));
    let (_, a) = a.args(["apply", "--auto-approve"]).status(0).run();
    let (o, a) = a.args(["plan", "--detailed-exitcode"]).status(0).run();
    assert!(!o.stdout.contains("b-live"), "another repository's notification is no orphan here:\n{}", o.stdout);
    // a-gone leaves A's manifests: orphaned, then retired after the retention; b-live never.
    let a = a.file("notifications/a.yaml", "# removed\n");
    let (o, a) = a.args(["apply", "--auto-approve"]).status(0).stderr_has("`a-gone` is orphaned since").run();
    assert!(!o.stderr.contains("b-live"), "{}", o.stderr);
    let (o, a) = a.env("KORE_NOTIFY_NOW", &days_after(3)).args(["apply", "--auto-approve"]).status(0).run();
    assert!(o.stderr.contains("`a-gone` was orphaned longer than the retention"), "{}", o.stderr);
    assert!(!o.stderr.contains("b-live"), "{}", o.stderr);
    assert_eq!(db.query("SELECT key FROM kore_notify.tombstones ORDER BY key"), ["a-gone"]);
    let (_, b) = b.args(["plan", "--detailed-exitcode"]).status(0).run();
    // A state written before origins were kept: nobody's origin is known. A shows b-live as an
    // orphan it will not retire; B's next apply claims it and A stops showing it.
    db.query("UPDATE kore_notify.notifications SET doc = doc - 'origin'");
    let a = a.env("KORE_NOTIFY_NOW", &days_after(9));
    let (o, a) = a.args(["plan"]).status(0).stdout_has("retention leaves it alone").run();
    assert!(o.stdout.contains("b-live"), "{}", o.stdout);
    let (o, a) = a.args(["apply", "--auto-approve"]).status(0).run();
    assert!(!o.stderr.contains("`b-live` is orphaned") && !o.stderr.contains("`b-live` was orphaned"), "{}", o.stderr);
    assert_eq!(db.query("SELECT count(*) FROM kore_notify.notifications WHERE key = 'b-live'"), ["1"]);
    assert_eq!(db.query("SELECT doc->>'orphanedSince' FROM kore_notify.notifications WHERE key = 'b-live'"), ["NULL"]);
    let (_, _b) = b.args(["apply", "--auto-approve"]).status(0).stderr_has("Nothing to send").run();
    let (o, _a) = a.args(["plan", "--detailed-exitcode"]).status(0).run();
    assert!(!o.stdout.contains("b-live"), "{}", o.stdout);
    assert_eq!(emu.deliveries().values().sum::<u64>(), 4, "nobody received anything twice");
}
