//! The team's mapper (`kendo:bridge/mapper`): what it is shown of a call and
//! how its answer becomes the decision.
//!
//! The built-in rules propose a decision; the mapper sees the normalised
//! call, the source's raw JSON and that proposal, and answers. A mapper can
//! change a send's presentation (title, rep, metadata) or turn any decision
//! into a skip or a wait; it cannot turn a skip or a wait into a send, since
//! such a call lacks media or a rep email Kendo needs.

use crate::prelude::*;

use crate::bindings::kendo::bridge::mapper as api;
use crate::rules::CallFacts;
use crate::types::{Decision, Direction, SkipCode, SkipReason, WaitCode, WaitReason};

/// What the mapper is shown of a call, taken before the rules consume the
/// facts.
pub(crate) fn record(facts: &CallFacts, raw: &str) -> api::CallRecord {
    let ids = |suffixes: &[&str]| -> Vec<String> {
        facts
            .metadata
            .iter()
            .filter(|(key, _)| suffixes.iter().any(|suffix| key.ends_with(suffix)))
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(ToOwned::to_owned)
            .collect()
    };
    api::CallRecord {
        source: crate::rules::source_name(facts.source).to_ascii_lowercase(),
        source_id: facts.id.clone(),
        rep_name: facts.rep.name.clone(),
        rep_email: facts.rep.email.clone(),
        direction: facts.direction.map(|direction| match direction {
            Direction::Inbound => api::Direction::Inbound,
            Direction::Outbound => api::Direction::Outbound,
        }),
        disposition: facts.disposition.clone(),
        duration_seconds: facts.duration_seconds,
        started_at: facts.started_at.clone(),
        source_title: facts.title.clone(),
        has_recording: facts.media.audio_url.is_some(),
        has_transcript: facts.media.transcript.is_some() || facts.media.notes.is_some(),
        contact_ids: ids(&["ContactIds", "ContactId"]),
        deal_ids: ids(&["DealIds"]),
        raw: raw.to_owned(),
    }
}

/// The bridge's decision in the mapper's terms.
fn proposal(decision: &Decision) -> api::Decision {
    match decision {
        Decision::Send(call) => api::Decision::Send(api::Outgoing {
            title: call.title.clone(),
            rep_email: call.rep_email.clone().unwrap_or_default(),
            rep_name: call.rep_name.clone(),
            metadata: call.metadata.clone(),
        }),
        Decision::Skip(reason) => api::Decision::Skip(reason.detail.clone()),
        Decision::Wait(reason) => api::Decision::Wait(reason.detail.clone()),
    }
}

/// Asks the mapper about `proposed` and returns the decision that stands.
pub(crate) fn consult(record: &api::CallRecord, proposed: Decision) -> Decision {
    let asked = proposal(&proposed);
    // The import links only in the component; natively (tests, the
    // benchmark) the default mapper's answer is the proposal itself.
    #[cfg(all(target_arch = "wasm32", not(test)))]
    let answer = api::decide(record, &asked);
    #[cfg(not(all(target_arch = "wasm32", not(test))))]
    let answer = {
        let _ = record;
        asked
    };
    apply(proposed, answer)
}

/// Applies the mapper's answer to the proposal.
fn apply(proposed: Decision, answer: api::Decision) -> Decision {
    match (proposed, answer) {
        (Decision::Send(mut call), api::Decision::Send(outgoing)) => {
            call.title = outgoing.title;
            call.rep_email = Some(outgoing.rep_email);
            call.rep_name = outgoing.rep_name;
            call.metadata = outgoing.metadata;
            Decision::Send(call)
        }
        // The mapper kept the built-in reason: so does the bridge, code and
        // all.
        (Decision::Skip(reason), api::Decision::Skip(detail)) if reason.detail == detail => {
            Decision::Skip(reason)
        }
        (Decision::Wait(reason), api::Decision::Wait(detail)) if reason.detail == detail => {
            Decision::Wait(reason)
        }
        (proposed @ (Decision::Skip(_) | Decision::Wait(_)), api::Decision::Send(_)) => proposed,
        (_, api::Decision::Skip(detail)) => Decision::Skip(SkipReason {
            code: SkipCode::ByMapper,
            detail,
        }),
        (_, api::Decision::Wait(detail)) => Decision::Wait(WaitReason {
            code: WaitCode::ByMapper,
            detail,
        }),
    }
}
