//! Truthful state while a run is live, and for a host that cannot be reached: a request another
//! run is sending is "in flight", not unknown (so a plan made during a merge does not alarm its
//! reviewer); a connection never established is "not sent", not rejected.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::postgres::Db;

fn slack(key: &str, n: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("{key}-p{i}")).collect();
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n", ids.join(", "))
}

/// Waits until `ready` holds (at most 20 s).
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// While the only request of an apply is in flight, every reader says so and exits as if
/// nothing needed a decision; once the run is over, the same commands see it sent; a run killed
/// with its request in flight leaves it unknown.
fn readers_during_a_live_run(t: Test, in_flight: impl Fn() -> bool, emu: &Emulator) -> Test {
    let mut child = t.spawn(&["apply", "--auto-approve"]);
    wait_for("the intent", &in_flight);
    let (o, t) = t.args(["status"]).status(0).stdout_has("in flight").run();
    assert!(o.stdout.contains("pid ") && !o.stdout.contains("UNKNOWN"), "{}", o.stdout);
    let (o, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("3 recipient(s) in flight").run();
    assert!(!o.stdout.contains("unknown outcome"), "{}", o.stdout);
    let (_, t) = t.args(["state", "list"]).status(0).stdout_has("in flight").run();
    let (o, t) = t.args(["status", "--format", "json"]).status(0).run();
    assert!(o.stdout.contains("\"inFlight\": 1") && o.stdout.contains("\"unknown\": 0"), "{}", o.stdout);
    assert!(child.wait().expect("wait").success());
    let (_, t) = t.args(["status"]).status(0).run();
    let (o, t) = t.args(["plan", "--detailed-exitcode"]).status(0).stdout_has("1 no-op").run();
    assert!(!o.stdout.contains("in flight"), "{}", o.stdout);
    assert_eq!(emu.deliveries().len(), 3);
    // Killed in flight: the run is gone, so the request is unknown.
    let t = t.manifest("b.yaml", &slack("b", 2));
    let mut child = t.spawn(&["apply", "--auto-approve"]);
    wait_for("the second intent", &in_flight);
    let _ = std::process::Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
    let (_, t) = t.args(["status"]).status(3).stdout_has("UNKNOWN").run();
    let (_, t) = t.args(["plan", "--detailed-exitcode"]).status(2).stdout_has("unknown outcome").run();
    t
}

#[test]
fn a_live_run_is_in_flight_for_readers_with_a_state_file() {
    let emu = Emulator::start(&["--latency-ms", "2500"]);
    let t = Test::repo(&emu.url).manifest("a.yaml", &slack("a", 3));
    let journal = t.path().join(".kore-notify/state.json.journal");
    let pending = move || {
        std::fs::read_to_string(&journal).is_ok_and(|j| {
            let intents = j.matches("\"op\":\"intent\"").count();
            intents > j.matches("\"op\":\"outcome\"").count()
        })
    };
    readers_during_a_live_run(t, pending, &emu);
}

#[test]
fn a_live_run_is_in_flight_for_readers_with_the_state_in_postgres() {
    let db = Db::new();
    let emu = Emulator::start(&["--latency-ms", "2500"]);
    let t = db.repo(&emu).manifest("a.yaml", &slack("a", 3));
    let url = db.url();
    let pending = move || {
        crate::postgres::sql(&url, "SELECT count(*) FROM kore_notify.requests WHERE outcome = 'pending'")
            .is_ok_and(|r| r.first().is_some_and(|n| n != "0"))
    };
    readers_during_a_live_run(t, pending, &emu);
}

/// A writer of the same bot holding its lock in another database of the server: a killed run's
/// request here is still unknown (exit 3), never "in flight" (`pg_locks` lists every database).
#[test]
fn a_lock_in_another_database_is_no_live_run_here() {
    let (here, there) = (Db::new(), Db::new());
    let emu = Emulator::start(&[]);
    let t = here.repo(&emu).manifest("a.yaml", &slack("a", 3));
    let (_, t) = t.args(["apply", "--auto-approve"]).status(0).run();
    // The intent of a run killed before its answer was recorded.
    here.query("UPDATE kore_notify.requests SET outcome = 'pending'");
    let (_, t) = t.args(["status"]).status(3).run();
    let key = here.query("SELECT lock_key FROM kore_notify.holders")[0].clone();
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let url = there.url();
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
            tokio::spawn(conn);
            c.simple_query(&format!("SELECT pg_advisory_lock({key})")).await.expect("lock");
            locked.send(()).expect("locked");
            let _ = tokio::task::spawn_blocking(move || release.recv()).await;
        });
    });
    is_locked.recv().expect("the other database's writer holds the lock");
    let (o, t) = t.args(["status"]).status(3).run();
    assert!(!o.stdout.contains("in flight"), "{}", o.stdout);
    let (_, _t) = t.args(["plan"]).run();
    hold.send(()).expect("release");
    holder.join().expect("holder");
}

/// A `host` the request never reaches: a closed port, TLS spoken to a plain-HTTP server (the
/// emulator itself), TLS to a server that closes every connection at once. The process is never
/// killed by the broken connection (SIGPIPE), the request is recorded as not sent (nothing
/// rejected, nothing unknown), the run stops with a connectivity error, and once the host is right
/// the next apply sends everyone exactly once.
#[test]
fn a_refused_connection_is_not_sent_and_stops_the_run() {
    let emu = Emulator::start(&[]);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let slammer = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let slams = format!("https://{}", slammer.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for c in slammer.incoming() {
            drop(c);
        }
    });
    let plain_as_tls = emu.url.replace("http://", "https://");
    let cfg = |host: &str| config(host).replace("batchSize: 1000", "batchSize: 2");
    let mut t = Test::repo(&emu.url).manifest("a.yaml", &slack("a", 5));
    for host in [closed.as_str(), plain_as_tls.as_str(), slams.as_str()] {
        let (o, t2) = t.file("kore-notify.yaml", &cfg(host)).args(["apply", "--auto-approve"]).run();
        assert_eq!(o.status, 1, "{host}: {}\n{}", o.stdout, o.stderr);
        assert!(o.stderr.contains("never reached Kore.ai"), "{host}: {}", o.stderr);
        assert!(!o.stdout.contains("REJECTED") && !o.stderr.contains("REJECTED"), "{}\n{}", o.stdout, o.stderr);
        assert!(o.stdout.contains("0 rejected, 0 unknown"), "{host}: {}", o.stdout);
        let (_, t2) = t2.args(["status"]).status(0).run();
        let (_, t2) = t2.args(["state", "show", "a"]).status(0).stdout_has("\"outcome\": \"not-sent\"").run();
        let (_, t2) =
            t2.args(["plan", "--detailed-exitcode"]).status(2).stdout_has("5 recipient(s) not sent before").run();
        t = t2;
    }
    assert!(emu.deliveries().is_empty());
    let t = t.file("kore-notify.yaml", &cfg(&emu.url));
    let (_, _t) = t.args(["apply", "--auto-approve"]).status(0).run();
    let d = emu.deliveries();
    assert_eq!(d.len(), 5);
    assert!(d.values().all(|c| *c == 1), "{d:?}");
}
