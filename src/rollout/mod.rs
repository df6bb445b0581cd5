//! Canary waves: a notification with a `rollout` is sent in growing waves (`[50, "10%", "100%"]`),
//! and the next wave leaves only when the previous one's requests are terminal, `observe` has
//! passed since it was sent, and its failure rate is at or under `maxFailureRate`. Above it the
//! notification halts until `state resume` (or a content change). Nothing else watched a send once
//! it started: 300,000 recipients went out in the first minute, whatever the first hundred showed.
//!
//! This is the pure core: given the rollout, what the state recorded (the waves started, the
//! requests, the reported deliveries) and the instant, [`gate`] says which wave may go now and how
//! many recipients it still takes, what it waits for, or that it halts, with the figures. The plan
//! (who is sent now), the send loop (each batch asked again as its intent is journaled) and
//! `apply --wait` (between waves) all ask it: there is no second model. The instant is passed in.
//!
//! Wave sizes are cumulative over the rollout's recipients (those sent for this content since its
//! first wave, and those still to send): `[50, "10%", "100%"]` reaches 50, then 10% of them, then
//! everyone. Recipients are cut in the order of a hash of the notification key and their identity
//! ([`order_key`]): the same order on every machine and every re-plan, whatever the state. A
//! recipient added during a rollout takes its place in that order among those not sent yet, so it
//! goes with whichever pending wave reaches it; one added after the last wave started is sent with
//! it at once (the content has passed every gate).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::state::{HaltRecord, NotificationState, Outcome, RolloutRecord};

pub(crate) mod doc;
pub(crate) mod parse;
pub(crate) mod plan;

/// A notification's `rollout` (from its manifest, or its target's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    /// Cumulative wave sizes; the last is `100%`.
    pub(crate) waves: Vec<WaveSize>,
    /// How long after a wave was sent the next may leave.
    pub(crate) observe: std::time::Duration,
    /// The failure rate a wave may reach, in hundredths of a percent (`2%` is 200).
    pub(crate) max_failure_rate: u32,
    /// Reported deliveries needed before the rate is judged.
    pub(crate) min_sample: u64,
    /// Failures whose comment contains one of these (ASCII case ignored) are not counted.
    pub(crate) ignore_reasons: Vec<String>,
}

/// One wave's cumulative size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaveSize {
    Count(u64),
    /// Hundredths of a percent of the rollout's recipients (rounded up).
    Percent(u32),
}

/// `2%`, `7.5%`.
pub(crate) fn percent(hundredths: u32) -> String {
    let (whole, frac) = (hundredths / 100, hundredths % 100);
    match frac {
        0 => format!("{whole}%"),
        f if f % 10 == 0 => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    }
}

impl Rollout {
    /// How many recipients the rollout has reached after each wave, over `total`: never
    /// decreasing, the last wave everyone.
    pub(crate) fn cumulative(&self, total: u64) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.waves.len());
        let mut prev = 0;
        for (i, w) in self.waves.iter().enumerate() {
            let n = if i + 1 == self.waves.len() {
                total
            } else {
                match *w {
                    WaveSize::Count(n) => n,
                    WaveSize::Percent(p) => (total * u64::from(p)).div_ceil(10_000),
                }
            };
            prev = n.clamp(prev, total);
            out.push(prev);
        }
        out
    }

    /// Whether a failure with this comment is left out of the rate.
    pub(crate) fn ignored(&self, comment: Option<&str>) -> bool {
        let Some(c) = comment else { return false };
        let c = c.to_ascii_lowercase();
        self.ignore_reasons.iter().any(|r| c.contains(&r.to_ascii_lowercase()))
    }

    /// `waves 50, 10%, 100%; observe 15m; at most 2% failed (of at least 20 reported)`.
    pub(crate) fn describe(&self) -> String {
        let waves: Vec<String> = self
            .waves
            .iter()
            .map(|w| match w {
                WaveSize::Count(n) => n.to_string(),
                WaveSize::Percent(p) => percent(*p),
            })
            .collect();
        format!(
            "waves {}; observe {}; at most {} failed (judged from {} reported deliveries)",
            waves.join(", "),
            humantime::format_duration(self.observe),
            percent(self.max_failure_rate),
            self.min_sample
        )
    }
}

/// The order recipients are cut into waves: a hash of the notification key and the identity.
pub(crate) fn order_key(key: &str, id: &str) -> [u8; 16] {
    let mut h = sha2::Sha256::default();
    sha2::Digest::update(&mut h, b"kore-notify wave order\0");
    sha2::Digest::update(&mut h, key.as_bytes());
    sha2::Digest::update(&mut h, b"\0");
    sha2::Digest::update(&mut h, id.as_bytes());
    let d = sha2::Digest::finalize(h);
    let mut out = [0; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The record of the rollout of the content digesting to `digest`, if it started.
pub(crate) fn record<'a>(n: Option<&'a NotificationState>, digest: &str) -> Option<&'a RolloutRecord> {
    n?.rollout.as_ref().filter(|r| r.digest == digest && !r.waves.is_empty())
}

/// Whether a recipient of `n` is part of the rollout `r` (sent, or being sent, since its first wave).
pub(crate) fn in_rollout(r: &RolloutRecord, rs: &crate::state::RecipientState) -> bool {
    let start = r.waves.first().map_or(u32::MAX, |w| w.from_req);
    rs.pending.as_ref().is_some_and(|p| p.req >= start) || (rs.fp.is_some() && rs.req.is_some_and(|q| q >= start))
}

/// What the state says about a started rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Recipients sent (or being sent, or unknown) since the first wave.
    pub(crate) sent: u64,
    /// Requests since the first wave that are accepted and not terminal yet.
    pub(crate) open: usize,
    /// Requests since the first wave whose outcome is unknown.
    pub(crate) unknown: usize,
    /// When the current wave's last request left.
    pub(crate) last_sent: Option<OffsetDateTime>,
    /// Failed deliveries (ignored reasons left out) and reported ones, over the judged waves.
    pub(crate) failed: u64,
    pub(crate) sample: u64,
}

/// Reads the progress of rollout `r` from its notification's requests (O(requests): the send
/// loop asks it for every batch). The rate is left to [`rates`].
pub(crate) fn progress(r: &RolloutRecord, n: &NotificationState) -> Progress {
    let start = r.waves.first().map_or(0, |w| w.from_req);
    let current = r.waves.last().map_or(0, |w| w.from_req);
    let mut p = Progress::default();
    for (i, q) in n.requests.iter().enumerate().skip(start as usize) {
        if q.outcome.is_unknown() {
            p.unknown += 1;
        } else if matches!(q.outcome, Outcome::Accepted | Outcome::ResolvedSent)
            && !q.status.as_deref().is_some_and(crate::kore::is_terminal_status)
        {
            p.open += 1;
        }
        // Refused and not-sent requests reached nobody.
        if !matches!(q.outcome, Outcome::Rejected | Outcome::NotSent | Outcome::ResolvedNotSent) {
            p.sent += u64::from(q.recipients);
        }
        if i as u32 >= current {
            p.last_sent = p.last_sent.max(crate::rfc3339::parse(&q.sent_at));
        }
    }
    if let Some(w) = r.waves.last() {
        p.last_sent = p.last_sent.max(crate::rfc3339::parse(&w.at));
    }
    p
}

/// Adds the failure figures of the judged waves (since the first, or the last `state resume`) to
/// `p`: reported deliveries, failures whose comment is an ignored reason left out.
pub(crate) fn rates(ro: &Rollout, r: &RolloutRecord, n: &NotificationState, p: &mut Progress) {
    let judged = r.waves.get(r.judged_from as usize).map_or(u32::MAX, |w| w.from_req);
    for rs in n.recipients.values() {
        if rs.req.is_none_or(|q| q < judged) {
            continue;
        }
        let Some(d) = n.delivery(rs) else { continue };
        let failed = d.failed();
        if (failed && ro.ignored(d.comment.as_deref())) || !(failed || d.status == "SUCCESS") {
            continue;
        }
        p.sample += 1;
        p.failed += u64::from(failed);
    }
}

/// What the gate says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Wave `wave` (0-based) may take `take` more recipients now, reaching `upto` in all;
    /// `starts`: the wave starts with them (its start is journaled before they are sent).
    Go { wave: u32, take: u64, upto: u64, starts: bool },
    /// Wave `wave` is out; the next one waits.
    Wait { wave: u32, why: Wait },
    /// Over the limit: nothing more is sent (`recorded`: the state holds the halt already).
    Halted { halt: HaltRecord, recorded: bool },
}

/// What the next wave waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Requests with an unknown outcome: a decision (`state resolve`).
    Unknown(usize),
    /// Requests not terminal yet: a status refresh.
    Statuses(usize),
    /// `observe` to pass: until then.
    Observe(OffsetDateTime),
}

/// Which wave may go now. `fresh`: recipients to send that the rollout has not reached yet;
/// `digest`: the notification's content digest now; `at`: stamps a halt.
pub(crate) fn gate(ro: &Rollout, n: Option<&NotificationState>, digest: &str, fresh: u64, now: OffsetDateTime) -> Gate {
    let last = ro.waves.len().saturating_sub(1) as u32;
    let (Some(r), Some(n)) = (record(n, digest), n) else {
        let upto = ro.cumulative(fresh).first().copied().unwrap_or(fresh);
        return Gate::Go { wave: 0, take: upto.min(fresh), upto, starts: true };
    };
    if let Some(h) = &r.halt {
        return Gate::Halted { halt: h.clone(), recorded: true };
    }
    let mut p = progress(r, n);
    let total = p.sent + fresh;
    let Some(cur) = r.waves.last() else { return Gate::Go { wave: 0, take: 0, upto: 0, starts: true } };
    let upto = if cur.wave >= last { total } else { cur.upto };
    if p.sent < upto || cur.wave >= last {
        let take = upto.saturating_sub(p.sent).min(fresh);
        return Gate::Go { wave: cur.wave, take, upto, starts: false };
    }
    let wave = cur.wave;
    if p.unknown > 0 {
        return Gate::Wait { wave, why: Wait::Unknown(p.unknown) };
    }
    if p.open > 0 {
        return Gate::Wait { wave, why: Wait::Statuses(p.open) };
    }
    if let Some(t) = p.last_sent.map(|t| t + ro.observe).filter(|t| now < *t) {
        return Gate::Wait { wave, why: Wait::Observe(t) };
    }
    rates(ro, r, n, &mut p);
    if p.sample >= ro.min_sample.max(1) && p.failed * 10_000 > u64::from(ro.max_failure_rate) * p.sample {
        let halt = HaltRecord {
            first: r.judged_from.min(wave),
            wave,
            failed: p.failed,
            sample: p.sample,
            limit: ro.max_failure_rate,
            at: crate::rfc3339::to_second(now),
        };
        return Gate::Halted { halt, recorded: false };
    }
    // The next wave that reaches someone new (a small rollout may pass several at once).
    let cum = ro.cumulative(total);
    let next = (wave + 1..=last).find(|w| cum.get(*w as usize).is_some_and(|c| *c > p.sent)).unwrap_or(last);
    let upto = cum.get(next as usize).copied().unwrap_or(total);
    Gate::Go { wave: next, take: upto.saturating_sub(p.sent).min(fresh), upto, starts: true }
}

/// The judgement the gate would give, in words, for the plan (`under minSample`, the rate).
pub(crate) fn judged(ro: &Rollout, p: &Progress) -> String {
    if p.sample < ro.min_sample.max(1) {
        return format!("{} reported deliveries, under minSample {}: not judged", p.sample, ro.min_sample.max(1));
    }
    format!(
        "{} failed ({} of {}; limit {})",
        crate::state::percent_of(p.failed, p.sample),
        p.failed,
        p.sample,
        percent(ro.max_failure_rate)
    )
}

/// The send loop's question for one batch of wave `wave` carrying `fresh` recipients the rollout
/// has not reached: whether the gate still lets them go (the wave's start is journaled by now).
pub(crate) fn admits(ro: &Rollout, n: Option<&NotificationState>, digest: &str, wave: u32, fresh: u64) -> bool {
    match gate(ro, n, digest, fresh, OffsetDateTime::UNIX_EPOCH) {
        Gate::Go { wave: w, take, starts: false, .. } => w == wave && take >= fresh,
        _ => fresh == 0 && record(n, digest).is_some_and(|r| r.halt.is_none()),
    }
}

/// The rollout as the plan document shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WaveState {
    /// 1-based.
    pub(crate) wave: u32,
    /// Recipients in this wave (its cumulative size less the previous one's).
    pub(crate) recipients: u64,
    /// `sent`, `sending` (this apply), `next` (waits for its gate) or `pending`.
    pub(crate) state: String,
}

#[cfg(test)]
mod tests;
