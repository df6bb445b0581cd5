//! The forecast in every plan: requests per notification from `batchSize`, the status calls that
//! follow, the earliest finish under both rolling windows, the share of the hourly budget; a
//! `notAfter` the limits cannot meet is refused at plan time, before anything is sent.

use crate::harness::*;

fn slack(key: &str, n: usize, extra: &str) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("{key}{i}@x.com")).collect();
    format!("key: {key}\nchannel: slack\ncontent: {{type: text, value: hi}}\nidentities: [{}]\n{extra}", ids.join(", "))
}

#[test]
fn every_plan_forecasts_its_requests_and_time() {
    let emu = Emulator::start(&[]);
    let cfg =
        config(&emu.url).replace("batchSize: 1000", "batchSize: 2") + "rateLimits: {perMinute: 3, perHour: 100}\n";
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &cfg)
        .manifest("a.yaml", &slack("a", 5, ""))
        .manifest("b.yaml", &slack("b", 2, ""));
    let (o, t) = t.args(["plan", "--format", "json"]).status(0).run();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let f = &v["targets"][0]["forecast"];
    assert_eq!((f["requests"].as_u64(), f["statusCalls"].as_u64()), (Some(4), Some(4)), "{f}");
    assert_eq!(f["notifications"][0]["requests"], 3);
    assert_eq!(f["notifications"][1]["requests"], 1);
    // 3 a minute: the 4th request leaves after a minute (and the client's margin).
    assert!((f["seconds"].as_f64().expect("seconds") - 60.2).abs() < 0.01, "{f}");
    assert!((f["hourlyShare"].as_f64().expect("share") - 0.08).abs() < 1e-9, "{f}");
    let (o, t) = t.args(["plan"]).status(0).run();
    assert!(
        o.stdout.contains("Forecast: 4 requests (and 4 status calls), about 1:01 at 3/min and 100/h"),
        "{}",
        o.stdout
    );
    let (o, t) = t.args(["plan", "--format", "markdown"]).status(0).run();
    assert!(o.stdout.contains("Forecast: 4 requests"), "{}", o.stdout);
    let (o, _) = t
        .file("kore-notify.yaml", &cfg.replace("perMinute: 3", "perMinute: 600"))
        .args(["apply", "--auto-approve"])
        .status(0)
        .run();
    assert!(o.stdout.contains("(forecast 0:00)"), "{}", o.stdout);
    assert_eq!(emu.deliveries().len(), 7);
}

#[test]
fn a_not_after_the_limits_cannot_meet_is_refused_before_anything_is_sent() {
    let emu = Emulator::start(&[]);
    let cfg =
        config(&emu.url).replace("batchSize: 1000", "batchSize: 1") + "rateLimits: {perMinute: 2, perHour: 100}\n";
    // NOW is 09:00:00; two requests leave at once, the third a minute later: too late for 09:00:30.
    let t = Test::repo(&emu.url)
        .file("kore-notify.yaml", &cfg)
        .manifest("a.yaml", &slack("a", 3, "notAfter: 2026-11-24T09:00:30Z\n"));
    let (_, t) =
        t.args(["plan"]).status(1).stderr_has("`a` cannot be sent before its notAfter 2026-11-24T09:00:30Z").run();
    let (_, t) = t.args(["apply", "--auto-approve"]).status(1).stderr_has("cannot be sent before its notAfter").run();
    assert!(emu.deliveries().is_empty());
    // Two recipients fit.
    let t = t.manifest("a.yaml", &slack("a", 2, "notAfter: 2026-11-24T09:00:30Z\n"));
    let (_, _) = t.args(["apply", "--auto-approve"]).status(0).run();
    assert_eq!(emu.deliveries().len(), 2);
}
