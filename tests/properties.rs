//! Property tests on the library: recording every planned send leaves nothing to send; the YAML
//! loader never panics on arbitrary input.

use kore_notify::manifest::{Api, Channel, Content, Notification, OnChange, Params, Recipient, Source};
use kore_notify::plan::{self, Inputs};
use kore_notify::state::{Entry, Outcome, State, StoredContent};
use proptest::prelude::*;

fn notification(key: String, text: String, ids: Vec<(String, Option<String>)>) -> Notification {
    let mut seen = std::collections::HashSet::new();
    let recipients = ids
        .into_iter()
        .filter(|(id, _)| seen.insert(id.clone()))
        .map(|(id, p)| Recipient {
            id,
            custom_message: None,
            parameters: p.map(|v| Params::from_iter([("name", v)])).unwrap_or_default(),
        })
        .collect();
    Notification {
        key,
        source: Source { file: "n.yaml".into(), line: 1, column: 1 },
        channel: Channel::Ivr,
        api: Api::V2,
        user_identity_type: "resolve".into(),
        webhook_instance_name: None,
        content: Content { kind: "text".into(), value: text.into() },
        recipients,
        not_before: None,
        not_after: None,
        on_change: OnChange::Resend,
        previous_keys: vec![],
        description: None,
        reuse_retired_key: false,
        skip_unreachable: None,
        audience: kore_notify::manifest::Audience::default(),
        variables: vec![],
        audience_columns: vec![],
        delivery_window: None,
        own_window: false,
        rollout: None,
        own_rollout: false,
        targets: None,
    }
}

fn plan_for(ns: &[Notification], state: &State) -> plan::Plan {
    plan::compute(&Inputs {
        target: "st-x",
        notifications: ns,
        state,
        state_exists: true,
        state_digest: "",
        now: time::OffsetDateTime::UNIX_EPOCH,
        retry_unknown: kore_notify::plan::Select::Nothing,
        retry_failed: kore_notify::plan::Select::Nothing,
        retention: None,
        origin: "",
        shared_state: false,
        wall: None,
        skip_unreachable: false,
    })
}

/// Records a plan as apply would: an intent and an accepted outcome per notification.
fn record(ns: &[Notification], state: &mut State, p: &plan::Plan) {
    for pn in p.notifications.iter().filter(|p| p.action.sends()) {
        let n = ns.iter().find(|n| n.key == pn.key).expect("notification");
        let req = state.notifications.get(&n.key).map_or(0, |s| s.requests.len() as u32);
        let intent = Entry::Intent {
            key: n.key.clone(),
            req,
            batch: "b".into(),
            channel: n.channel,
            api: n.api,
            content: StoredContent::from(&n.content),
            recipients: pn.sends.iter().map(|r| (r.hash, r.fingerprint)).collect(),
            at: String::new(),
        };
        state.replay(&intent).expect("intent");
        let outcome = Entry::Outcome {
            key: n.key.clone(),
            req,
            outcome: Outcome::Accepted,
            request_id: Some("ds-1".into()),
            status: None,
            error: None,
        };
        state.replay(&outcome).expect("outcome");
    }
}

fn arb_notifications() -> impl Strategy<Value = Vec<Notification>> {
    prop::collection::btree_map(
        "[a-z]{1,6}",
        ("[a-zA-Z {}]{1,20}", prop::collection::vec(("[a-e]{1,3}@x", prop::option::of("[A-Z][a-z]{0,4}")), 1..12)),
        1..6,
    )
    .prop_map(|m| m.into_iter().map(|(k, (t, ids))| notification(k, t, ids)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn after_recording_every_planned_send_the_next_plan_is_empty(first in arb_notifications(), second in arb_notifications()) {
        let mut state = State::new();
        let p = plan_for(&first, &state);
        prop_assert_eq!(p.summary.recipients_to_send, first.iter().map(|n| n.recipients.len()).sum::<usize>());
        record(&first, &mut state, &p);
        let again = plan_for(&first, &state);
        prop_assert_eq!(again.summary.recipients_to_send, 0);
        // Survives a snapshot round trip.
        let state = State::from_bytes(&state.to_bytes()).expect("roundtrip");
        prop_assert_eq!(plan_for(&first, &state).summary.recipients_to_send, 0);
        // Any edit, then record: empty again.
        let mut state = state;
        let p2 = plan_for(&second, &state);
        record(&second, &mut state, &p2);
        prop_assert_eq!(plan_for(&second, &state).summary.recipients_to_send, 0);
    }

    #[test]
    fn yaml_loader_never_panics(input in "(?s).{0,400}") {
        let _ = kore_notify::yaml::parse_documents(&input);
    }

    #[test]
    fn yaml_loader_never_panics_on_yamlish_input(parts in prop::collection::vec(prop::sample::select(vec![
        "key: ", "- ", "&a ", "*a ", "[", "]", "{", "}", ": ", "\n", "  ", "---\n", "!!binary ", "'", "\"", "<<: ", "# c\n", "x", "1", "~", "|\n", ">-\n", "? ",
    ]), 0..200)) {
        let text: String = parts.concat();
        let _ = kore_notify::yaml::parse_documents(&text);
    }
}
