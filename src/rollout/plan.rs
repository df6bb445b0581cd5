//! The core put to use by the plan: which of a notification's recipients this apply sends under
//! its rollout (the gate's wave, cut in the stable order), and what the plan document shows of it
//! (the waves, which is next, the gate's state, a halt).

use serde::{Deserialize, Serialize};

use super::{Gate, Wait, WaveState, gate, in_rollout, order_key, record};
use crate::manifest::Notification;
use crate::plan::PlannedRecipient;
use crate::state::{HaltRecord, NotificationState, StoredContent};

/// What the plan says about a notification's canary rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutPlan {
    /// The rollout, in words.
    pub(crate) rollout: String,
    /// Every wave, with its recipients and its state.
    pub(crate) waves: Vec<WaveState>,
    /// The wave this apply sends (1-based), when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sending: Option<u32>,
    /// This apply starts that wave (its start is journaled before its first request), reaching
    /// `upto` recipients in all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) starts: bool,
    #[serde(default)]
    pub(crate) upto: u64,
    /// The gate's state, in words.
    pub(crate) gate: String,
    /// When the next wave may leave at the earliest (RFC 3339), while `observe` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next_at: Option<String>,
    /// Halted: `7.4% failed in wave 1 (limit 2%; …)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) halted: Option<String>,
    /// The halt's figures; `haltRecorded` false: this apply records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) halt: Option<HaltRecord>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) halt_recorded: bool,
    /// `observe`, in seconds (the forecast spaces the waves by it).
    pub(crate) observe_seconds: u64,
    /// Recipients left for later waves.
    pub(crate) later: u64,
}

impl RolloutPlan {
    /// `wave 1 of 3 now (50 recipients); then 50, 900`.
    pub(crate) fn line(&self) -> String {
        let sizes: Vec<String> = self.waves.iter().map(|w| format!("{} {}", w.recipients, w.state)).collect();
        let mut s = format!("canary waves ({}): {}", self.rollout, sizes.join(", "));
        if let Some(h) = &self.halted {
            s.push_str(&format!("; halted: {h}"));
        } else {
            s.push_str(&format!("; {}", self.gate));
        }
        s
    }

    /// The later waves' sizes and their release after `now`, spaced by `observe` after this
    /// apply's last request (`first`: seconds from the start until it leaves), for the forecast.
    pub(crate) fn later_waves(&self, first: f64, now: time::OffsetDateTime) -> Vec<(f64, usize)> {
        if self.halted.is_some() {
            return Vec::new();
        }
        let observe = self.observe_seconds as f64;
        let mut at = match self.next_at.as_deref().and_then(crate::rfc3339::parse) {
            Some(t) => ((t - now).whole_milliseconds().max(0) as f64) / 1000.0,
            None => first + observe,
        };
        let mut out = Vec::new();
        for w in self.waves.iter().filter(|w| w.state == "next" || w.state == "pending") {
            out.push((at, w.recipients as usize));
            at += observe;
        }
        out
    }
}

/// Keeps in `sends` those this apply may send under `n`'s rollout (the gate's wave, in the stable
/// order), and says what the rollout stands at. Without a rollout, everyone stays. Returns the
/// plan and how many were left for later waves.
pub(crate) fn cut(
    n: &Notification,
    entry: Option<&NotificationState>,
    sends: &mut Vec<PlannedRecipient>,
    now: time::OffsetDateTime,
) -> Option<RolloutPlan> {
    let ro = n.rollout.as_deref()?;
    let digest = crate::fingerprint::content_digest(n.api, n.channel, &StoredContent::from(&n.content));
    let rec = record(entry, &digest);
    let reached = |r: &PlannedRecipient| {
        rec.zip(entry).and_then(|(rec, e)| e.recipients.get(&r.hash).map(|rs| in_rollout(rec, rs))).unwrap_or(false)
    };
    let fresh = sends.iter().filter(|r| !reached(r)).count() as u64;
    let g = gate(ro, entry, &digest, fresh, now);
    let sent = rec.zip(entry).map_or(0, |(r, e)| super::progress(r, e).sent);
    let total = sent + fresh;
    let mut plan = RolloutPlan {
        rollout: ro.describe(),
        waves: Vec::new(),
        sending: None,
        starts: false,
        upto: 0,
        gate: String::new(),
        next_at: None,
        halted: None,
        halt: None,
        halt_recorded: false,
        observe_seconds: ro.observe.as_secs(),
        later: 0,
    };
    let started = rec.map_or(0, |r| r.waves.last().map_or(0, |w| w.wave + 1));
    let (current, next) = match &g {
        Gate::Go { wave, take, upto, starts } => {
            let mut order: Vec<([u8; 16], usize)> = sends
                .iter()
                .enumerate()
                .filter(|(_, r)| !reached(r))
                .map(|(i, r)| (order_key(&n.key, &r.id), i))
                .collect();
            order.sort_unstable();
            let mut keep = vec![false; sends.len()];
            for (_, i) in order.iter().take(*take as usize) {
                keep[*i] = true;
            }
            let mut i = 0;
            sends.retain(|r| {
                let k = keep[i] || reached(r);
                i += 1;
                k
            });
            plan.later = fresh - (*take).min(fresh);
            (plan.sending, plan.starts, plan.upto) = ((!sends.is_empty()).then_some(wave + 1), *starts, *upto);
            plan.gate = if *starts && *wave > 0 {
                format!(
                    "wave {} passed its gate: {}",
                    wave,
                    rec.zip(entry).map_or_else(String::new, |(r, e)| {
                        let mut p = super::progress(r, e);
                        super::rates(ro, r, e, &mut p);
                        super::judged(ro, &p)
                    })
                )
            } else if *starts {
                "wave 1 starts".into()
            } else {
                format!("wave {} is being sent", wave + 1)
            };
            (Some(*wave), None)
        }
        Gate::Wait { wave, why } => {
            plan.later = fresh;
            sends.clear();
            plan.gate = match why {
                Wait::Unknown(k) => format!(
                    "wave {} waits: {k} request(s) have an unknown outcome (`kore-notify state resolve`)",
                    wave + 2
                ),
                Wait::Statuses(k) => format!(
                    "wave {} waits for the delivery statuses of {k} request(s) (`kore-notify status --refresh`, or `apply --wait`)",
                    wave + 2
                ),
                Wait::Observe(t) => {
                    plan.next_at = Some(crate::rfc3339::to_second(*t));
                    format!("wave {} may leave from {} (observe)", wave + 2, crate::rfc3339::to_second(*t))
                }
            };
            (Some(*wave), Some(*wave + 1))
        }
        Gate::Halted { halt, recorded } => {
            plan.later = fresh;
            sends.clear();
            plan.halted = Some(halt.line());
            plan.gate = format!("nothing more is sent until `kore-notify state resume {}` or a content change", n.key);
            (plan.halt, plan.halt_recorded) = (Some(halt.clone()), *recorded);
            (Some(halt.wave), None)
        }
    };
    let cum = ro.cumulative(total);
    let mut prev = 0;
    for (i, c) in cum.iter().enumerate() {
        let i = i as u32;
        let state = if current == Some(i) && plan.sending.is_some() {
            "sending"
        } else if i < started || current.is_some_and(|c| i < c) || (current == Some(i) && plan.sending.is_none()) {
            "sent"
        } else if next == Some(i) {
            "next"
        } else {
            "pending"
        };
        plan.waves.push(WaveState { wave: i + 1, recipients: c - prev, state: state.into() });
        prev = *c;
    }
    Some(plan)
}
