//! Computing a plan: every recipient classified against the state (new, changed, unknown, failed),
//! an action chosen per notification, send windows applied, digests bound into the plan.

use super::*;

pub(super) fn rfc3339(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(crate::rfc3339::format)
}

/// Digest of one resolved notification: anything that changes what would be sent changes it.
/// Combined (sorted) over all notifications into the plan's `manifestsDigest`.
pub(super) fn notification_part_digest(n: &Notification, nd: &str, fingerprints: &[Fingerprint]) -> String {
    let mut h = sha2::Sha256::default();
    sha2::Digest::update(&mut h, n.key.as_bytes());
    sha2::Digest::update(&mut h, nd.as_bytes());
    for fp in fingerprints {
        sha2::Digest::update(&mut h, fp.0);
    }
    let mut meta = serde_json::json!([
        rfc3339(n.not_before),
        rfc3339(n.not_after),
        n.on_change == OnChange::Ignore,
        n.previous_keys
    ]);
    if let (Some(d), Some(m)) = (&n.delivery_window, meta.as_array_mut()) {
        m.push(d.describe().into());
    }
    if let (Some(r), Some(m)) = (&n.rollout, meta.as_array_mut()) {
        m.push(format!("rollout {} {:?}", r.describe(), r.ignore_reasons).into());
    }
    sha2::Digest::update(&mut h, meta.to_string().as_bytes());
    crate::fingerprint::to_hex(&sha2::Digest::finalize(h))
}

pub fn compute(inp: &Inputs) -> Plan {
    let state = inp.state;
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(inp.notifications.len());
    let mut parts = Vec::with_capacity(inp.notifications.len());
    let mut lookups = Vec::with_capacity(inp.notifications.len());
    for n in inp.notifications {
        let (entry, renamed_from) = match state.notifications.get(&n.key) {
            Some(e) => (Some(e), None),
            None => n
                .previous_keys
                .iter()
                .find_map(|p| state.notifications.get(p).map(|e| (Some(e), Some(p.clone()))))
                .unwrap_or((None, None)),
        };
        claimed.insert(&n.key);
        if let Some(p) = n.previous_keys.iter().find(|p| Some(*p) == renamed_from.as_ref()) {
            claimed.insert(p);
        }
        lookups.push((n, entry, renamed_from));
    }
    let unreachable = crate::unreachable::Unreachable::of(state);
    // Fingerprinting a million recipients is the expensive part: spread it over the cores.
    let planned = crate::parallel::fan_out(&mut lookups, 8, None, |part| {
        part.iter_mut().map(|(n, e, r)| plan_one(inp, n, *e, r.take(), &unreachable)).collect::<Vec<_>>()
    });
    // Without a stack size, a chunk whose thread could not start is planned on this one: every
    // result is `Ok` (see `fan_out`).
    let planned = planned.into_iter().flatten();
    for (p, digest) in planned.flatten() {
        out.push(p);
        parts.push(digest);
    }
    parts.sort();
    for (key, e) in &state.notifications {
        if claimed.contains(key.as_str()) {
            continue;
        }
        match e.declared_by(inp.origin, inp.shared_state) {
            // Another repository sharing the state declares it: not an orphan here.
            Declared::Elsewhere => {}
            d => out.push(orphaned(inp, key, e, d == Declared::Here)),
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    let summary = Summary::of(&out);
    Plan {
        name: String::new(),
        host: None,
        forecast: None,
        binding: Binding {
            state_lineage: if inp.state_exists { state.lineage.clone() } else { String::new() },
            state_serial: if inp.state_exists { state.serial } else { 0 },
            state_digest: inp.state_digest.to_string(),
            manifests_digest: sha256_hex(parts.join("\n").as_bytes()),
            target: inp.target.to_string(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            planned_at: crate::rfc3339::format(inp.now).unwrap_or_default(),
        },
        summary,
        notifications: out,
    }
}

/// A notification in the state that no manifest declares any more: when it was orphaned, and
/// when the retention replaces it by a tombstone.
fn orphaned(inp: &Inputs, key: &str, e: &NotificationState, ours: bool) -> PlannedNotification {
    let since = e.orphaned_since.clone();
    let retires_at = inp
        .retention
        .filter(|_| !e.has_unknown() && ours)
        .map(|r| since.as_deref().and_then(crate::rfc3339::parse).unwrap_or(inp.now) + r)
        .map(|t| crate::rfc3339::to_second(t.max(inp.now)));
    let mut reason =
        String::from("in state but no longer in the manifests; nothing is sent (a sent message cannot be recalled)");
    match &since {
        Some(s) => reason.push_str(&format!("; orphaned since {s}")),
        None if ours => reason.push_str("; the next apply records it as orphaned"),
        None => {}
    }
    match (&retires_at, inp.retention) {
        _ if !ours => reason.push_str(
            "; the shared state does not say which repository declared it (recorded by an older kore-notify), so retention leaves it alone",
        ),
        (Some(t), _) => reason.push_str(&format!(
            "; apply replaces it by a tombstone from {t} (retention), and its key cannot be reused then"
        )),
        (None, Some(_)) => {
            reason.push_str("; kept while a request has an unknown outcome (`kore-notify state resolve`)");
        }
        (None, None) => {}
    }
    reason.push_str("; `kore-notify state rm` forgets it");
    PlannedNotification {
        key: key.to_string(),
        action: Action::Orphaned,
        channel: Some(e.channel.as_str().into()),
        api: Some(e.api.as_str().into()),
        source: None,
        description: None,
        renamed_from: None,
        removed_ids: Vec::new(),
        reason,
        variables: std::collections::BTreeMap::default(),
        recipients: Counts { removed: e.recipients.len(), ..Counts::default() },
        sends: vec![],
        records: vec![],
        content: None,
        previous_content: Some(e.content.clone()),
        not_before: None,
        not_after: None,
        delivery_window: None,
        rollout: None,
        retry_unknown: false,
        unknown_requests: vec![],
        preview: vec![],
        skip_unreachable: false,
        skipped_unreachable: vec![],
        orphaned_since: since,
        retires_at,
        audience: None,
        promotion: None,
        policy: None,
        last_override: None,
        test_send: None,
    }
}

/// Per-recipient decisions of one notification.
#[derive(Default)]
pub(super) struct Classified {
    counts: Counts,
    sends: Vec<PlannedRecipient>,
    records: Vec<PlannedRecipient>,
    fingerprints: Vec<Fingerprint>,
    /// Recipients held back, by the unknown request holding them.
    held_by: std::collections::BTreeMap<u32, usize>,
    /// Recipients of unknown requests that `--retry-unknown` sends again, by request.
    retried_by: std::collections::BTreeMap<u32, usize>,
    /// Unreachable recipients left out (`skipUnreachable`), as written.
    pub(super) skipped_unreachable: Vec<String>,
}

impl PlannedRecipient {
    /// A recipient sent now: who, why, what they get, where they are (index, hash), and whether
    /// they are unreachable.
    fn of(id: String, change: Change, fingerprint: Fingerprint, at: (usize, RecipientHash), unreachable: bool) -> Self {
        PlannedRecipient { id, change, fingerprint, index: at.0, hash: at.1, changes: Vec::new(), unreachable }
    }
}

impl Classified {
    fn count(&self, change: Change) -> usize {
        self.sends.iter().filter(|r| r.change == change).count()
    }
}

/// Whether request `req` is being sent by a live run: still pending in a state read while its
/// writer holds the lock (a dead run's pending requests are unknown once read).
fn in_flight(entry: Option<&NotificationState>, req: u32) -> bool {
    entry.and_then(|e| e.requests.get(req as usize)).is_some_and(|r| r.outcome == crate::state::Outcome::Pending)
}

/// Whether Kore.ai reported this recipient's last delivery (in `n`) as failed.
pub(super) fn delivery_failed(n: &NotificationState, rs: &crate::state::RecipientState) -> bool {
    n.delivery(rs).is_some_and(crate::state::Delivery::failed)
}

/// Decides each recipient: sent (new, changed, retried), recorded, unchanged, or held back by
/// the unknown request it is in. An unknown request holds back only its own recipients.
pub(super) fn classify(
    inp: &Inputs,
    n: &Notification,
    nd: &str,
    entry: Option<&NotificationState>,
    unreachable: &crate::unreachable::Unreachable,
) -> Classified {
    let skip_unreachable = n.skip_unreachable.unwrap_or(inp.skip_unreachable);
    let mut c = Classified { counts: Counts { total: n.recipients.len(), ..Counts::default() }, ..Default::default() };
    c.fingerprints.reserve(n.recipients.len());
    let mut present: HashSet<RecipientHash> = HashSet::new();
    for (index, r) in n.recipients.iter().enumerate() {
        let fp = recipient_fingerprint(nd, r);
        c.fingerprints.push(fp);
        let hash = recipient_hash(&inp.state.lineage, &r.id);
        let rs = entry.and_then(|e| e.recipients.get(&hash));
        if entry.is_some() {
            present.insert(hash);
        }
        let flagged = !unreachable.is_empty() && unreachable.reason(n.channel, &hash).is_some();
        c.counts.unreachable += usize::from(flagged);
        let pending = rs.and_then(|s| s.pending.as_ref()).map(|p| p.req);
        if let Some(q) = pending
            && in_flight(entry, q)
        {
            c.counts.in_flight += 1;
            continue;
        }
        let retried = pending.is_some_and(|q| inp.retry_unknown.includes(&n.key, Some(q)));
        if let Some(q) = pending {
            if !retried {
                c.counts.unknown += 1;
                *c.held_by.entry(q).or_default() += 1;
                continue;
            }
            *c.retried_by.entry(q).or_default() += 1;
        }
        let change = match rs.and_then(|s| s.fp) {
            None if retried => Change::Retry,
            None => Change::New,
            Some(old) if old != fp => Change::Changed,
            Some(_) if entry.zip(rs).is_some_and(|(e, s)| delivery_failed(e, s)) => {
                c.counts.failed += 1;
                if !inp.retry_failed.includes(&n.key, None) {
                    c.counts.unchanged += 1;
                    continue;
                }
                Change::RetryFailed
            }
            Some(_) => {
                c.counts.unchanged += 1;
                continue;
            }
        };
        if flagged && skip_unreachable {
            c.counts.unreachable_skipped += 1;
            c.skipped_unreachable.push(r.id.clone());
            continue;
        }
        let pr = PlannedRecipient::of(r.id.clone(), change, fp, (index, hash), flagged);
        match change {
            Change::New => c.counts.new += 1,
            Change::Changed => c.counts.changed += 1,
            Change::Retry | Change::RetryFailed => {}
        }
        if change == Change::Changed && n.on_change == OnChange::Ignore {
            c.records.push(pr);
        } else {
            c.sends.push(pr);
        }
    }
    if let Some(e) = entry {
        c.counts.removed = e.recipients.keys().filter(|h| !present.contains(*h)).count();
    }
    c
}

/// The notification's action and the reason in words.
pub(super) fn choose_action(n: &Notification, entry: Option<&NotificationState>, c: &Classified) -> (Action, String) {
    let (retried, refailed) = (c.count(Change::Retry), c.count(Change::RetryFailed));
    let fresh = c.sends.len() - retried - refailed;
    let mut parts = Vec::new();
    let action = if entry.is_none() {
        parts.push(format!("new notification: {} recipient(s)", c.sends.len()));
        Action::Send
    } else if c.counts.changed > 0 && n.on_change == OnChange::Resend {
        let mut p = format!("{} recipient(s) would receive different content", c.counts.changed);
        if c.counts.new > 0 {
            p.push_str(&format!(", {} added", c.counts.new));
        }
        parts.push(p);
        Action::Resend
    } else if fresh > 0 {
        parts.push(format!("{fresh} recipient(s) not sent before"));
        Action::SendToAdded
    } else if retried > 0 {
        Action::Resend
    } else if refailed > 0 {
        Action::RetryFailed
    } else if !c.records.is_empty() {
        Action::Record
    } else if c.counts.unknown > 0 {
        Action::Blocked
    } else if c.counts.in_flight > 0 {
        Action::NoOp
    } else {
        parts.push("nothing changed".into());
        Action::NoOp
    };
    if c.counts.in_flight > 0 {
        let by = entry
            .and_then(|e| e.requests.iter().find(|r| r.outcome == crate::state::Outcome::Pending))
            .and_then(|r| r.error.clone())
            .unwrap_or_else(|| "in flight".into());
        parts.push(format!("{} recipient(s) {by}; nothing to decide", c.counts.in_flight));
    }
    if retried > 0 {
        parts.push(format!(
            "{retried} recipient(s) of requests with an unknown outcome are sent again (--retry-unknown): they may receive it twice"
        ));
    }
    if refailed > 0 {
        parts.push(format!("{refailed} recipient(s) whose delivery failed are sent again (--retry-failed)"));
    }
    if !c.records.is_empty() {
        parts.push(format!("{} changed recipient(s) recorded without sending (onChange: ignore)", c.records.len()));
    }
    if c.counts.unknown > 0 {
        parts.push(held_reason(n, c));
    }
    parts.extend(super::unreachable::reason(n, &c.counts));
    if refailed == 0 && c.counts.failed > 0 {
        parts.push(format!(
            "{} recipient(s) whose delivery failed are not sent again (`kore-notify plan --retry-failed={}` shows a retry)",
            c.counts.failed, n.key
        ));
    }
    (action, parts.join("; "))
}

pub(super) fn held_reason(n: &Notification, c: &Classified) -> String {
    let reqs: Vec<String> = c.held_by.keys().map(|r| format!("#{r}")).collect();
    let example = c.held_by.keys().next().copied().unwrap_or(0);
    format!(
        "{} recipient(s) held back by {} request(s) with an unknown outcome ({}); decide per request with `kore-notify state resolve {} {example} --sent|--not-sent` or `kore-notify apply --retry-unknown={}#{example}`",
        c.counts.unknown,
        c.held_by.len(),
        reqs.join(", "),
        n.key,
        n.key
    )
}

/// Outside its window, nothing is sent or recorded now.
pub(super) fn apply_window(
    inp: &Inputs,
    n: &Notification,
    action: &mut Action,
    reason: &mut String,
    c: &mut Classified,
) {
    if !(action.sends() || *action == Action::Record) {
        return;
    }
    if let Some(nb) = n.not_before.filter(|t| inp.now < *t) {
        *action = Action::Scheduled;
        c.counts.waiting = c.sends.len();
        *reason =
            format!("{} recipient(s) waiting for notBefore {}", c.sends.len(), rfc3339(Some(nb)).unwrap_or_default());
    } else if let Some(na) = n.not_after.filter(|t| inp.now > *t) {
        *action = Action::Expired;
        *reason = format!(
            "{} recipient(s) not sent: notAfter {} has passed",
            c.sends.len(),
            rfc3339(Some(na)).unwrap_or_default()
        );
    } else {
        return;
    }
    c.sends.clear();
    c.records.clear();
}

/// Inside the notification's time window, only the recipients inside their own delivery window
/// are sent now; the others wait for it (nobody now: the action is `waiting`).
fn apply_delivery_window(
    inp: &Inputs,
    n: &Notification,
    action: &mut Action,
    reason: &mut String,
    c: &mut Classified,
) -> Option<crate::window::plan::WindowPlan> {
    if !action.sends() {
        return None;
    }
    let w = crate::window::plan::split(n, &mut c.sends, |r| r.index, inp.now)?;
    let waiting = w.waiting();
    if waiting == 0 {
        return Some(w);
    }
    c.counts.waiting += waiting;
    if c.sends.is_empty() {
        *action = if c.records.is_empty() { Action::Waiting } else { Action::Record };
        *reason = format!("{reason}; all of them wait for their delivery window");
    } else {
        *reason = format!("{reason}; {waiting} of them wait for their delivery window");
    }
    Some(w)
}

/// Under a `rollout`, only the gate's wave is sent now: the others wait for their gate, and a
/// halted rollout sends nobody (`observing`, `halted`).
fn apply_rollout(
    inp: &Inputs,
    n: &Notification,
    entry: Option<&NotificationState>,
    action: &mut Action,
    reason: &mut String,
    c: &mut Classified,
) -> Option<crate::rollout::plan::RolloutPlan> {
    if !action.sends() {
        return None;
    }
    let r = crate::rollout::plan::cut(n, entry, &mut c.sends, inp.wall.unwrap_or(inp.now))?;
    c.counts.waiting += r.later as usize;
    if let Some(h) = &r.halted {
        *action = if c.records.is_empty() { Action::Halted } else { Action::Record };
        *reason = format!("{reason}; halted: {h}; {}", r.gate);
    } else if c.sends.is_empty() {
        *action = if c.records.is_empty() { Action::Observing } else { Action::Record };
        *reason = format!("{reason}; {}", r.gate);
    } else if r.later > 0 {
        let wave = r.sending.unwrap_or(1);
        *reason = format!(
            "{reason}; canary wave {wave} of {}: {} now, {} in later waves",
            r.waves.len(),
            c.sends.len(),
            r.later
        );
    }
    Some(r)
}

pub(super) fn unknown_requests(
    entry: Option<&NotificationState>,
    c: &Classified,
    sending: bool,
) -> Vec<UnknownRequest> {
    let Some(e) = entry else { return Vec::new() };
    e.unknown_requests()
        .filter(|(_, r)| r.outcome != crate::state::Outcome::Pending)
        .map(|(i, r)| {
            let retried = sending && c.retried_by.contains_key(&i);
            UnknownRequest {
                index: i,
                batch: r.batch.clone(),
                request_id: r.request_id.clone(),
                sent_at: r.sent_at.clone(),
                reason: r.error.clone(),
                recipients: r.recipients,
                held: c.held_by.get(&i).copied().unwrap_or(0) + c.retried_by.get(&i).copied().unwrap_or(0),
                retried,
            }
        })
        .collect()
}

pub(super) fn plan_one(
    inp: &Inputs,
    n: &Notification,
    entry: Option<&NotificationState>,
    renamed_from: Option<String>,
    unreachable: &crate::unreachable::Unreachable,
) -> (PlannedNotification, String) {
    let nd = notification_digest(inp.target, n);
    let mut c = classify(inp, n, &nd, entry, unreachable);
    let content = StoredContent::from(&n.content);
    let previous_content = entry.map(|e| e.content.clone()).filter(|x| *x != content);
    let (mut action, mut reason) = choose_action(n, entry, &c);
    apply_window(inp, n, &mut action, &mut reason, &mut c);
    let rollout = apply_rollout(inp, n, entry, &mut action, &mut reason, &mut c);
    let delivery_window = apply_delivery_window(inp, n, &mut action, &mut reason, &mut c);
    if entry.is_none()
        && n.reuse_retired_key
        && let Some(t) = inp.state.tombstones.get(&n.key)
    {
        reason =
            format!("{reason}; reuses the key retired at {} (reuseRetiredKey: true): planned as new", t.tombstoned_at);
    }
    let skip_unreachable = n.skip_unreachable.unwrap_or(inp.skip_unreachable);
    let mut digest = notification_part_digest(n, &nd, &c.fingerprints);
    if !c.skipped_unreachable.is_empty() {
        // Who is left out changes what an apply sends.
        digest = sha256_hex(format!("{digest} skipped {}", c.skipped_unreachable.join("\n")).as_bytes());
    }
    let preview = previews(n, &c.sends);
    let unknown_requests = unknown_requests(entry, &c, action.sends());
    let planned = PlannedNotification {
        key: n.key.clone(),
        action,
        channel: Some(n.channel.as_str().into()),
        api: Some(n.api.as_str().into()),
        source: Some(format!("{}:{}", n.source.file.display(), n.source.line)),
        description: n.description.clone(),
        renamed_from,
        removed_ids: Vec::new(),
        reason,
        variables: n.variables.iter().cloned().collect(),
        recipients: c.counts,
        sends: c.sends,
        records: c.records,
        content: Some(content),
        previous_content,
        not_before: rfc3339(n.not_before),
        not_after: rfc3339(n.not_after),
        delivery_window,
        rollout,
        retry_unknown: unknown_requests.iter().any(|r| r.retried),
        unknown_requests,
        preview,
        skip_unreachable,
        skipped_unreachable: c.skipped_unreachable,
        orphaned_since: None,
        retires_at: None,
        audience: None,
        promotion: None,
        policy: None,
        last_override: None,
        test_send: None,
    };
    (planned, digest)
}

/// Everything one target's plan is made of.
pub(crate) struct TargetInputs<'a> {
    pub(crate) config: &'a crate::config::Config,
    pub(crate) target: &'a crate::config::Target,
    /// The target's notifications ([`super::audience_for_target`]).
    pub(crate) notifications: &'a [Notification],
    /// What the target's audience rule did, by key.
    pub(crate) audience: &'a std::collections::BTreeMap<String, super::AudienceNote>,
    pub(crate) loaded: &'a crate::state::Loaded,
    /// The target it promotes from, when it does.
    pub(crate) promotion: Option<&'a super::PromotionSources<'a>>,
    pub(crate) retry: &'a Retry,
    /// The target's test ledger (`kore-notify test-send`), when it could be read: each
    /// notification's evidence, and the policy's `testSent`.
    pub(crate) test_ledger: Option<&'a crate::state::State>,
    /// The wall clock (canary waves' `observe` is measured on it); `None`: the plan's `now`.
    pub(crate) clock: Option<crate::clock::Clock>,
}

/// The plan of one target at `now`: [`compute`], the audience notes, the promotion gate, the
/// ambiguous previews marked when the target turns `v2TemplateAsCustomMessage` off, and the
/// forecast at the target's limits.
pub(crate) fn for_target(t: &TargetInputs, now: time::OffsetDateTime) -> Plan {
    let (config, target, loaded) = (t.config, t.target, t.loaded);
    let mut p = compute(&Inputs {
        target: target.identity(),
        notifications: t.notifications,
        state: &loaded.state,
        state_exists: loaded.exists,
        state_digest: &loaded.digest,
        now,
        retry_unknown: t.retry.unknown.clone(),
        retry_failed: t.retry.failed.clone(),
        retention: config.retention,
        origin: &config.origin,
        shared_state: target.state_is_shared(),
        skip_unreachable: target.skip_unreachable,
        wall: t.clock.map(crate::clock::Clock::now),
    });
    p.name.clone_from(&target.name);
    for n in &mut p.notifications {
        n.audience = t.audience.get(&n.key).cloned();
        if let Some(a) = &n.audience {
            n.reason = format!("{}; {}", n.reason, a.line());
        }
    }
    if let Some(src) = t.promotion {
        super::promotion_gate(&mut p, t.notifications, &loaded.state, src);
    }
    if !target.v2_template_as_custom_message {
        mark_ambiguous_previews(&mut p, t.notifications);
    }
    p.host = Some(target.host.clone());
    let sends: Vec<(&str, usize, Option<&str>)> = p
        .notifications
        .iter()
        .filter(|n| n.action.sends())
        .map(|n| (n.key.as_str(), n.sends.len(), n.not_after.as_deref()))
        .collect();
    let mut forecast = super::forecast::forecast(&sends, target.batch_size, (target.per_minute, target.per_hour));
    // Later openings of notifications the promotion gate holds are not forecast: nothing of
    // them leaves until the gate opens.
    let mut later: Vec<super::forecast::Later> = p
        .notifications
        .iter()
        .filter(|n| n.action != Action::AwaitingPromotion)
        .filter_map(|n| Some((n, n.delivery_window.as_ref().filter(|w| !w.later.is_empty())?)))
        .map(|(n, w)| (n.key.as_str(), w.openings(now), n.not_after.as_deref()))
        .collect();
    // Canary waves to come: each `observe` after the one before (this apply's, or the one out).
    for n in p.notifications.iter().filter(|n| n.action != Action::AwaitingPromotion) {
        let Some(r) = &n.rollout else { continue };
        let first = forecast.notifications.iter().find(|l| l.key == n.key).map_or(0.0, |l| l.last_leaves_after);
        let waves = r.later_waves(first, now);
        if waves.is_empty() {
            continue;
        }
        forecast.later_waves += waves.iter().map(|(_, k)| k.div_ceil(target.batch_size.max(1))).sum::<usize>();
        match later.iter_mut().find(|l| l.0 == n.key) {
            Some(l) => l.1.extend(waves),
            None => later.push((n.key.as_str(), waves, n.not_after.as_deref())),
        }
    }
    super::forecast::with_windows(&mut forecast, &later, target.batch_size, now);
    p.forecast = Some(forecast);
    if let Some(ledger) = t.test_ledger {
        attach_test_sends(&mut p, t.notifications, ledger, now);
    }
    crate::policy::annotate_plan(&mut p, &config.policy_context(target), t.notifications, &loaded.state, now);
    p
}

/// Each notification still to send (or waiting to) gets what the test ledger proves of its
/// current content at `now`.
fn attach_test_sends(
    p: &mut Plan,
    notifications: &[Notification],
    ledger: &crate::state::State,
    now: time::OffsetDateTime,
) {
    let by_key: std::collections::HashMap<&str, &Notification> =
        notifications.iter().map(|n| (n.key.as_str(), n)).collect();
    for pn in &mut p.notifications {
        if matches!(pn.action, Action::NoOp | Action::Orphaned | Action::Expired | Action::Record) {
            continue;
        }
        let Some(n) = by_key.get(pn.key.as_str()) else { continue };
        let content = crate::state::StoredContent::from(&n.content);
        let digest = crate::fingerprint::content_digest(n.api, n.channel, &content);
        pn.test_send = crate::testsend::evidence(ledger, &n.key, &digest, now);
    }
}

#[cfg(test)]
mod tests;
