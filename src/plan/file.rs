//! A saved plan (`plan --out FILE`), bound to what it shows. A reviewer reads the file with
//! `show` (or in the pull-request comment) and `apply FILE` must send exactly that, so:
//!
//! - the file carries a digest over everything it shows (SHA-256 of the file's text up to its last
//!   member, `"digest"`), and must be byte for byte the JSON `plan --out` writes for its content:
//!   an edited value, an added field or a reformatted file is refused by `show` and `apply` alike;
//! - a digest anyone can recompute does not stop a deliberate forger, so `apply` also recomputes
//!   the plan from the manifests and the state, at the instant the plan was made
//!   (`binding.plannedAt`), and refuses unless it is the file's, field for field; then, at the
//!   present instant, the same recipients must be sent the same fingerprints (send windows).
//!
//! Only `changes` (before → after, from `plan --compare-to`) cannot be recomputed without the
//! base version: each `after` must be the manifests' value now, and `before` is bound by the digest.
//!
//! Pure functions over bytes and plans; `ops` reads the file and turns [`PlanFileError`] into the
//! command's error.

use std::io::Write;

use sha2::Digest;

use super::{Action, Plan, PlanSet};
use crate::fingerprint::Fingerprint;
use crate::manifest::Notification;

/// Why a plan file is refused. Each message ends in what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanFileError {
    #[error("not a kore-notify plan file (`kore-notify plan --out FILE` writes one): {0}")]
    NotAPlan(serde_json::Error),
    #[error(
        "made by another version of kore-notify (plan format {0}, this one reads format {PLAN_FORMAT_READ}); run `kore-notify plan --out` again with this version and review it"
    )]
    Format(u32),
    #[error(
        "it carries no digest (made by an older kore-notify, or not by `plan --out`); run `kore-notify plan --out` again and review it"
    )]
    NoDigest,
    #[error(
        "it is not as `kore-notify plan --out` wrote it (changed at line {0}); run `kore-notify plan --out` again and review it"
    )]
    Edited(usize),
    #[error(
        "its content does not match its digest: it was changed after `kore-notify plan --out` wrote it; run `kore-notify plan --out` again and review it"
    )]
    Digest,
    #[error("{0} changed since the plan was made; run `kore-notify plan --out` again and review it")]
    Stale(&'static str),
    #[error(
        "{0} is not what the manifests, the state and apply's retry options make of it: the file was edited, or apply was not given the --retry-* options the plan was made with; run `kore-notify plan --out` again and review it"
    )]
    Differs(String),
}

/// Writes into a SHA-256.
struct Hasher(sha2::Sha256);

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash(value: &impl serde::Serialize) -> [u8; 32] {
    let mut h = Hasher(sha2::Sha256::new());
    h.0.update(b"kore-notify plan\n");
    // Serialising plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut h, value);
    h.0.finalize().into()
}

/// The plan format this version reads (for messages).
const PLAN_FORMAT_READ: u32 = super::PLAN_FORMAT;

/// How the digest ends the file: the last member, then the closing brace.
fn digest_member(digest: &str) -> String {
    format!(",\n  \"digest\": \"{digest}\"\n}}")
}

/// Hashes everything written but the last two bytes (the `\n}` that closes the plan's JSON).
struct AllButEnd {
    hasher: sha2::Sha256,
    held: Vec<u8>,
}

impl Write for AllButEnd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.held.extend_from_slice(buf);
        let keep = self.held.len().min(2);
        let cut = self.held.len() - keep;
        self.hasher.update(&self.held[..cut]);
        self.held.drain(..cut);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PlanSet {
    /// Sets the digest (`plan` does, before the plan is written or shown as JSON): SHA-256 of the
    /// plan's JSON as `plan --out` writes it, up to its last member, `"digest"`; that is, of
    /// everything the file shows.
    pub fn seal(&mut self) {
        self.digest.clear();
        let mut w = AllButEnd { hasher: sha2::Sha256::new(), held: Vec::new() };
        // Serialising plain data into a hasher cannot fail.
        let _ = serde_json::to_writer_pretty(&mut w, self);
        self.digest = crate::fingerprint::to_hex(&w.hasher.finalize());
    }

    /// Seals the plan and returns the file `plan --out` writes (the same bytes as serialising the
    /// sealed plan, made with one serialisation).
    pub(crate) fn sealed_file(&mut self) -> Result<Vec<u8>, serde_json::Error> {
        self.digest.clear();
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.truncate(bytes.len().saturating_sub(2));
        self.digest = crate::fingerprint::to_hex(&sha2::Sha256::digest(&bytes));
        bytes.extend_from_slice(digest_member(&self.digest).as_bytes());
        Ok(bytes)
    }
}

/// Compares what is written with `expected`, stopping at the first difference.
struct Compare<'a> {
    rest: &'a [u8],
    at: usize,
}

impl Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(rest) = self.rest.strip_prefix(buf) {
            self.at += buf.len();
            self.rest = rest;
            return Ok(buf.len());
        }
        self.at += buf.iter().zip(self.rest).take_while(|(a, b)| a == b).count();
        Err(std::io::Error::other("differs"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a plan file's bytes: a plan of this format, sealed, exactly as `plan --out` writes it
/// (an optional final newline aside), with a digest that matches.
pub(crate) fn parse(bytes: &[u8]) -> Result<PlanSet, PlanFileError> {
    /// The format, read first: an older plan file has another shape.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        format_version: u32,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(PlanFileError::NotAPlan)?;
    if head.format_version != super::PLAN_FORMAT {
        return Err(PlanFileError::Format(head.format_version));
    }
    let plan: PlanSet = serde_json::from_slice(bytes).map_err(PlanFileError::NotAPlan)?;
    if plan.digest.is_empty() {
        return Err(PlanFileError::NoDigest);
    }
    let mut cmp = Compare { rest: bytes, at: 0 };
    let written = serde_json::to_writer_pretty(&mut cmp, &plan).is_ok();
    if !written || !matches!(cmp.rest, b"" | b"\n") {
        let line = 1 + bytes[..cmp.at.min(bytes.len())].iter().filter(|b| **b == b'\n').count();
        return Err(PlanFileError::Edited(line));
    }
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let signed = text.strip_suffix(digest_member(&plan.digest).as_bytes()).ok_or(PlanFileError::Digest)?;
    if crate::fingerprint::to_hex(&sha2::Sha256::digest(signed)) != plan.digest {
        return Err(PlanFileError::Digest);
    }
    // The sum is shown as well: it must be the sum of the targets' summaries.
    if value(&plan.summary) != value(&super::Summary::total(plan.targets.iter().map(|p| &p.summary))) {
        return Err(PlanFileError::Differs("summary (the sum of the targets' summaries)".into()));
    }
    Ok(plan)
}

/// Everything a plan shows but its digest and the instant it was made.
fn body(p: &Plan) -> [u8; 32] {
    hash(&(&p.name, &p.host, &p.forecast, &timeless(&p.binding), &p.summary, &p.notifications))
}

/// The binding without the instant the plan was made.
fn timeless(b: &super::Binding) -> super::Binding {
    super::Binding { planned_at: String::new(), ..b.clone() }
}

fn value(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Where two plans first differ, as a field path (`notifications[2] (`k`).content.value`).
fn first_difference(a: &Plan, b: &Plan) -> String {
    let (ba, bb) = (timeless(&a.binding), timeless(&b.binding));
    if ba != bb {
        return format!("binding{}", path_of(&value(&ba), &value(&bb)));
    }
    if a.notifications.len() != b.notifications.len() {
        return "the list of notifications".into();
    }
    for (i, (x, y)) in a.notifications.iter().zip(&b.notifications).enumerate() {
        if hash(x) != hash(y) {
            return format!("notifications[{i}] (`{}`){}", crate::safe::line(&x.key), path_of(&value(x), &value(y)));
        }
    }
    if a.host != b.host {
        return "host".into();
    }
    if a.forecast != b.forecast {
        return format!("forecast{}", path_of(&value(&a.forecast), &value(&b.forecast)));
    }
    format!("summary{}", path_of(&value(&a.summary), &value(&b.summary)))
}

/// Each `after` of `plan --compare-to` must be the manifests' value now (`before` is the base
/// version's, bound by the digest only); then they are set aside, as apply's own plan has none.
fn check_changes(saved: &mut Plan, notifications: &[Notification]) -> Result<(), PlanFileError> {
    let by_key: std::collections::HashMap<&str, &Notification> =
        notifications.iter().map(|n| (n.key.as_str(), n)).collect();
    for (i, p) in saved.notifications.iter_mut().enumerate() {
        if p.sends.iter().all(|r| r.changes.is_empty()) {
            continue;
        }
        let at = |j: usize| format!("notifications[{i}] (`{}`).sends[{j}].changes", crate::safe::line(&p.key));
        let n = by_key.get(p.key.as_str()).ok_or_else(|| PlanFileError::Differs(at(0)))?;
        let ids: std::collections::HashMap<&str, &crate::manifest::Recipient> =
            n.recipients.iter().map(|r| (r.id.as_str(), r)).collect();
        for (j, r) in p.sends.iter().enumerate() {
            for c in &r.changes {
                let rec = ids.get(r.id.as_str()).ok_or_else(|| PlanFileError::Differs(at(j)))?;
                let now = match (c.field.as_str(), c.field.strip_prefix("parameters.")) {
                    ("customMessage", _) => rec.custom_message.clone(),
                    (_, Some(name)) => rec.parameters.get(name).map(String::from),
                    _ => return Err(PlanFileError::Differs(at(j))),
                };
                if now != c.after {
                    return Err(PlanFileError::Differs(at(j)));
                }
            }
        }
        for r in &mut p.sends {
            r.changes.clear();
        }
    }
    Ok(())
}

/// Who would be sent which fingerprint.
fn sends(p: &Plan) -> Vec<(&str, Action, Vec<Fingerprint>)> {
    p.notifications
        .iter()
        .map(|n| (n.key.as_str(), n.action, n.sends.iter().map(|r| r.fingerprint).collect()))
        .collect()
}

/// What `apply FILE` checks of a parsed plan file (`saved`), given the plan computed now and a way
/// to compute it at another instant: the same tool, state and manifests; the file's plan exactly
/// as they give it at the instant it was made; and the same sends now.
pub(crate) fn check_against(
    saved: &mut Plan,
    now: &Plan,
    notifications: &[Notification],
    at: impl FnOnce(time::OffsetDateTime) -> Plan,
) -> Result<(), PlanFileError> {
    let (s, c) = (&saved.binding, &now.binding);
    if s.tool_version != c.tool_version {
        return Err(PlanFileError::Stale("the kore-notify version"));
    }
    if s.state_lineage != c.state_lineage || s.state_serial != c.state_serial || s.state_digest != c.state_digest {
        return Err(PlanFileError::Stale("the state"));
    }
    if s.manifests_digest != c.manifests_digest || s.target != c.target {
        return Err(PlanFileError::Stale("the manifests"));
    }
    let when = crate::rfc3339::parse(&saved.binding.planned_at)
        .filter(|t| crate::rfc3339::format(*t).as_deref() == Some(saved.binding.planned_at.as_str()))
        .ok_or_else(|| PlanFileError::Differs("binding.plannedAt".into()))?;
    check_changes(saved, notifications)?;
    if body(saved) == body(now) {
        return Ok(());
    }
    let then = at(when);
    if body(saved) != body(&then) {
        return Err(PlanFileError::Differs(first_difference(saved, &then)));
    }
    if sends(saved) != sends(now) {
        return Err(PlanFileError::Stale("what would be sent now (a notBefore or notAfter passed)"));
    }
    Ok(())
}

/// The path below two JSON values where they first differ (`.content.value`, `.sends[3].id`).
fn path_of(a: &serde_json::Value, b: &serde_json::Value) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) if p == q => {}
                    (Some(p), Some(q)) => return format!(".{k}{}", path_of(p, q)),
                    _ => return format!(".{k}"),
                }
            }
            String::new()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .position(|(p, q)| p != q)
            .map_or_else(String::new, |i| format!("[{i}]{}", path_of(&x[i], &y[i]))),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Vec<u8> {
        let state = crate::state::State::default();
        let p = super::super::compute(&super::super::Inputs {
            target: "https://kore.example.com st-bot",
            notifications: &[],
            state: &state,
            state_exists: false,
            state_digest: "",
            now: time::macros::datetime!(2026-11-24 09:00:00.123456789 UTC),
            retry_unknown: super::super::Select::Nothing,
            retry_failed: super::super::Select::Nothing,
            retention: None,
            origin: "",
            shared_state: false,
            wall: None,
            skip_unreachable: false,
        });
        let mut set = PlanSet::new(vec![p]);
        set.seal();
        serde_json::to_vec_pretty(&set).unwrap_or_default()
    }

    #[test]
    fn a_plan_file_is_read_only_as_written() {
        let file = sealed();
        let text = String::from_utf8(file.clone()).unwrap_or_default();
        assert!(text.contains("\"plannedAt\": \"2026-11-24T09:00:00.123456789Z\""), "{text}");
        assert!(parse(&file).is_ok());
        let mut p = parse(&file).expect("plan");
        assert_eq!(p.sealed_file().ok().as_deref(), Some(file.as_slice()));
        // Anyone can check it: SHA-256 of the text before `,\n  "digest"`.
        let cut = text.rfind(",\n  \"digest\"").unwrap_or(0);
        let digest = crate::fingerprint::to_hex(&sha2::Sha256::digest(&file[..cut]));
        assert!(text.ends_with(&format!("\"digest\": \"{digest}\"\n}}")), "{text}");
        assert!(parse(&[file.as_slice(), b"\n"].concat()).is_ok());
        let edited = |from: &str, to: &str| parse(text.replacen(from, to, 1).as_bytes()).err().map(|e| e.to_string());
        let line_of = |s: &str| 1 + text[..text.find(s).unwrap_or(0)].matches('\n').count();
        // An edit in place keeps the layout: the digest finds it.
        assert!(edited("st-bot", "st-bog").is_some_and(|e| e.contains("does not match its digest")));
        // Anything else is not the layout `plan --out` writes: refused at its line.
        let at = |l: usize| format!("changed at line {l}");
        let target = line_of("\"target\"");
        assert!(edited("\"target\"", " \"target\"").is_some_and(|e| e.contains(&at(target))));
        assert!(edited("\"target\"", "\"extra\": 1,\n    \"target\"").is_some_and(|e| e.contains(&at(target))));
        assert!(parse(&[file.as_slice(), b"\n\n"].concat()).is_err());
        assert!(edited("\"digest\"", "\"digestX\"").is_some_and(|e| e.contains("carries no digest")));
        assert!(edited("\"formatVersion\": 2", "\"formatVersion\": 1").is_some_and(|e| e.contains("plan format 1")));
    }
}
