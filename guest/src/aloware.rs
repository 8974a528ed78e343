//! Aloware: webhook envelopes and call mapping.
//!
//! Field names and codes come from captured deliveries and Aloware's own
//! n8n node and web app: `type` 1 call / 2 SMS, `direction` 1 in / 2 out,
//! `disposition_status` words (`completed`, `missed`, ...) or
//! `disposition_status2` codes (4 completed, 5 failed, ...), and
//! `current_status2` (1 initiated, 2 ringing, 9 closed). The first event of a
//! call (`OutboundPhoneCall`) carries no `disposition_status`,
//! `current_status` or `direct_recording_url` at all.
//!
//! A call is delivered several times: `...-DispositionCompleted`,
//! `Recording-Saved` (the only one with `direct_recording_url`) and
//! `Call-Disposed` (the same state again, seconds later). Every one is read
//! as the call: which UI checkbox produces which name is not documented, and
//! a user who ticked only one of them must still get the call. The host
//! counts it once by its id.

use crate::prelude::*;

use crate::aloware_api::{CallEvent, Event, Guest, IgnoreCode, IgnoreReason, TranscriptEvent};
use crate::datetime;
use serde_json::Value;

use crate::fields::{self, Node, Outcome, optional};
use crate::rules::{self, CallFacts, Media, Progress, Rep, WhenUnknown};
use crate::types::{
    Decision, Direction, InputError, Rules, Source, SyncMethod, WaitCode, WaitReason,
};

impl Guest for crate::Plugin {
    fn read_event(body: String) -> Result<Event, InputError> {
        read_event(body).map_err(InputError::from)
    }

    fn map_call(
        body: String,
        transcript: Option<String>,
        await_transcript: bool,
        rules: Rules,
        via: SyncMethod,
    ) -> Result<Decision, InputError> {
        map_call(body, transcript, await_transcript, rules, via).map_err(InputError::from)
    }

    fn merge_bodies(before: Option<String>, newer: String) -> String {
        merge_bodies(before.as_deref(), newer)
    }
}

fn merge_bodies(before: Option<&str>, newer: String) -> String {
    let Some(before) = before else {
        return newer;
    };
    match (
        serde_json::from_str::<Value>(before),
        serde_json::from_str::<Value>(&newer),
    ) {
        (Ok(Value::Object(mut merged)), Ok(Value::Object(newer))) => {
            for (key, value) in newer {
                if !value.is_null() || !merged.contains_key(&key) {
                    merged.insert(key, value);
                }
            }
            Value::Object(merged).to_string()
        }
        _ => newer,
    }
}

fn read_event(body: String) -> Outcome<Event> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    if !root.is_object() {
        return Err(root.wrong_type("a webhook envelope (an object)"));
    }
    if root.flag_at("test_payload")? == Some(true) {
        return Ok(ignore(
            IgnoreCode::TestPayload,
            "Aloware's test payload from the webhook settings page.".to_owned(),
        ));
    }
    let name = root.get("event")?.required()?.text()?.unwrap_or_default();
    let body = root.get("body")?.required()?;
    if body.object()?.is_none() {
        return Err(body.wrong_type("an object"));
    }
    if body.flag_at("test_payload")? == Some(true) {
        return Ok(ignore(
            IgnoreCode::TestPayload,
            format!("Aloware's test payload for event \"{name}\"."),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if let Some(what) = not_a_call(&body, &lower)? {
        return Ok(ignore(
            IgnoreCode::NotACall,
            format!("Aloware event \"{name}\" is about {what}, not a call."),
        ));
    }
    if lower.starts_with("transcription") {
        return transcript_event(name, &body);
    }
    if contains(&lower, "phonecall") || lower == "recording-saved" || lower == "call-disposed" {
        let call_id = body.required_id_at("id")?.unwrap_or_default();
        return Ok(Event::Call(CallEvent {
            name: name.to_owned(),
            call_id,
            body: fields::to_json(body.value())?,
        }));
    }
    Ok(ignore(
        IgnoreCode::UnknownEvent,
        if name.is_empty() {
            "Aloware delivery without an event name.".to_owned()
        } else {
            format!("Aloware event \"{name}\" is not one the bridge acts on.")
        },
    ))
}

fn map_call(
    body: String,
    transcript: Option<String>,
    await_transcript: bool,
    rules: Rules,
    via: SyncMethod,
) -> Outcome<Decision> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let facts = call_facts(&root, transcript)?;
    let decision = rules::decide(facts, &body, &rules, via)?;
    Ok(match decision {
        // Only a call that would go now is held back: one skipped or
        // waiting for another reason is not delayed further by this.
        Decision::Send(call) if await_transcript && call.transcript.is_none() => {
            Decision::Wait(WaitReason {
                code: WaitCode::TranscriptPending,
                detail: format!(
                    "Aloware call {} is ready with its recording; it waits a bounded time \
                     for Aloware's transcript, then goes with the recording alone.",
                    call.source_id
                ),
            })
        }
        decision => decision,
    })
}

/// `str::contains` for a short needle, without core's two-way searcher
/// (2 KB in the component, and its panic paths more).
fn contains(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn ignore(code: IgnoreCode, detail: String) -> Event {
    Event::Ignore(IgnoreReason { code, detail })
}

/// What a non-call communication is, by event name or `type`.
fn not_a_call(body: &Node<'_, '_>, lower_name: &str) -> Outcome<Option<String>> {
    if contains(lower_name, "sms") {
        return Ok(Some("an SMS".to_owned()));
    }
    Ok(match body.id_at("type")?.as_deref() {
        None | Some("1") => None,
        Some("2") => Some("an SMS (type 2)".to_owned()),
        Some(other) => Some(format!("a communication of type {other}")),
    })
}

fn transcript_event(name: &str, body: &Node<'_, '_>) -> Outcome<Event> {
    let communication = body.get("communication")?;
    let call_id = match communication.id_at("id")? {
        Some(id) => id,
        // `Transcription-Saved` carries the call itself, with `body.id`.
        None if communication.is_null() => body
            .id_at("id")?
            .ok_or_else(|| missing_communication_id(body))?,
        None => return Err(missing_communication_id(body)),
    };
    let mut transcript = utterances_text(&body.get("transcription")?)?;
    if transcript.is_none() {
        transcript = utterances_text(&body.get("parsed_transcription")?)?;
    }
    let summary = body.get("summary")?;
    let summary = match summary.str() {
        Ok(text) => text
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned),
        Err(_) if summary.is_object() => {
            let text = summary.text_at("summary")?;
            match text {
                Some(text) => Some(text.to_owned()),
                None => summary.text_at("text")?.map(str::to_owned),
            }
        }
        Err(error) => return Err(error),
    };
    Ok(Event::Transcript(TranscriptEvent {
        name: name.to_owned(),
        call_id,
        transcript,
        summary,
    }))
}

fn missing_communication_id(body: &Node<'_, '_>) -> fields::Fault {
    let mut path = body.path();
    path.push_str(".communication.id");
    fields::missing(path)
}

/// A transcript as plain text: a string, a list of utterances (strings or
/// `{speaker|role|name, text|content|message}`), or an object holding either.
/// Aloware's transcript shapes are not documented, so what is not recognised
/// reads as no transcript rather than as an error.
fn utterances_text(node: &Node<'_, '_>) -> Outcome<Option<String>> {
    if let Ok(text) = node.str() {
        return Ok(text
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned));
    }
    if node.is_object() {
        for key in ["text", "transcript", "transcription"] {
            if let Ok(Some(text)) = node.get(key)?.text() {
                return Ok(Some(text.to_owned()));
            }
        }
        for key in [
            "messages",
            "utterances",
            "segments",
            "transcript",
            "transcription",
        ] {
            let list = node.get(key)?;
            if matches!(list.value(), serde_json::Value::Array(_)) {
                return utterances_text(&list);
            }
        }
        return Ok(None);
    }
    let Ok(items) = node.items() else {
        return Ok(None);
    };
    // `parsed_transcription.messages[{speaker, text, start}]`: in the order
    // of `start` when messages carry one, else as delivered.
    let mut lines: Vec<(Option<u64>, String)> = Vec::new();
    for item in items {
        if let Ok(Some(text)) = item.text() {
            lines.push((None, text.to_owned()));
            continue;
        }
        if !item.is_object() {
            continue;
        }
        let text = first_text(&item, &["text", "content", "message"])?;
        let Some(text) = text else {
            continue;
        };
        let start = match item.get("start")?.number() {
            Ok(Some(start)) if start.is_finite() => Some(fields::sortable_f64(start)),
            _ => None,
        };
        match first_text(&item, &["speaker", "role", "name"])? {
            Some(speaker) => lines.push((start, format!("{speaker}: {text}"))),
            None => lines.push((start, text.to_owned())),
        }
    }
    let keyed: Vec<(Option<u64>, &str)> = lines
        .iter()
        .map(|(start, line)| (*start, line.as_str()))
        .collect();
    Ok(fields::ordered_lines(&keyed))
}

fn first_text<'v>(item: &Node<'v, '_>, keys: &[&str]) -> Outcome<Option<&'v str>> {
    for key in keys {
        if let Ok(Some(text)) = item.get(key)?.text() {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The word for a `disposition_status2` code.
fn disposition_status_word(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "in-progress",
        "2" => "abandoned",
        "3" => "missed",
        "4" => "completed",
        "5" => "failed",
        "6" => "dead-end",
        "7" => "invalid",
        "12" => "voicemail",
        "13" => "missed+voicemail",
        _ => return None,
    })
}

/// The word for a `current_status2` code.
fn current_status_word(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "initiated",
        "2" => "ringing",
        "9" => "completed",
        _ => return None,
    })
}

fn parse_direction(node: &Node<'_, '_>) -> Outcome<Option<Direction>> {
    Ok(match node.scalar_text()?.as_deref() {
        None => None,
        Some("1") => Some(Direction::Inbound),
        Some("2") => Some(Direction::Outbound),
        Some(word) => match rules::parse_direction(word) {
            Some(direction) => Some(direction),
            None => {
                return Err(node.invalid(format!("is \"{word}\", not 1 (inbound) or 2 (outbound)")));
            }
        },
    })
}

fn call_facts(root: &Node<'_, '_>, transcript: Option<String>) -> Outcome<CallFacts> {
    // `call-event.body` is the body alone; a whole envelope is accepted too.
    let inner = root.get("body")?;
    let call = if inner.is_object() && !root.is_null_at("event")? {
        inner
    } else {
        *root
    };
    if !call.is_object() {
        return Err(call.wrong_type("a call body (an object)"));
    }
    let id = call.required_id_at("id")?.unwrap_or_default();

    let progress = match not_a_call(&call, "")? {
        Some(what) => Progress::NotACall(what),
        None => {
            let disposition_code = call.id_at("disposition_status2")?;
            let current_code = call.id_at("current_status2")?;
            let statuses = [
                call.scalar_text_at("disposition_status")?,
                disposition_code
                    .as_deref()
                    .and_then(disposition_status_word)
                    .map(str::to_owned),
                call.scalar_text_at("current_status")?,
                current_code
                    .as_deref()
                    .and_then(current_status_word)
                    .map(str::to_owned),
            ];
            rules::progress(
                statuses.iter().flatten().map(String::as_str),
                WhenUnknown::Passes,
            )
        }
    };

    let audio_url = call.text_at("direct_recording_url")?.map(str::to_owned);
    let has_recording = call.flag_at("has_recording")? == Some(true);
    let transcript = match transcript.map(|text| text.trim().to_owned()) {
        Some(text) if !text.is_empty() => Some(text),
        _ => utterances_text(&call.get("transcription")?)?,
    };
    let media = Media {
        // `Recording-Saved` brings the URL after the disposition announced it.
        recording_pending: (audio_url.is_none() && has_recording).then(|| "being saved".to_owned()),
        audio_url,
        transcript_pending: transcript.is_none()
            && call.flag_at("has_transcription")? == Some(true),
        transcript,
        notes: None,
    };

    let started_at = datetime::call_date_field(&call.get("created_at")?)?;
    let mut warnings = Vec::new();
    let direction = optional(
        call.get("direction").and_then(|d| parse_direction(&d)),
        &mut warnings,
    );
    let disposition = optional(disposition_label(&call), &mut warnings);
    // `talk_time` is the conversation; `duration` adds the ringing (the
    // captured 63 s call had duration 66, a failed dial duration 30 with
    // talk_time 0), so `duration` never stands in for it.
    let duration = optional(call.seconds_at("talk_time", 1.0), &mut warnings);

    let user_id = call.id_at("user_id")?;
    let rep = rep_from_call(&call, user_id.as_deref())?;

    let contact = call.get("contact")?;
    let contact_id = match call.id_at("contact_id")? {
        Some(id) => Some(id),
        None => contact.id_at("id")?,
    };
    let mut metadata = Vec::new();
    rules::push_metadata(&mut metadata, "alowareContactId", contact_id.as_deref());
    rules::push_metadata(
        &mut metadata,
        "alowareCampaignId",
        call.id_at("campaign_id")?.as_deref(),
    );
    rules::push_metadata(
        &mut metadata,
        "alowareDirection",
        direction.map(rules::direction_word),
    );
    rules::push_metadata(&mut metadata, "alowareUserId", user_id.as_deref());

    Ok(CallFacts {
        source: Source::Aloware,
        id,
        progress,
        media,
        duration_seconds: duration,
        disposition,
        direction,
        title: None,
        started_at,
        rep,
        metadata,
        warnings,
    })
}

/// The disposition label: a `disposition` string, or the `call_disposition`
/// object's `name` (some accounts send the name as a plain string).
fn disposition_label(call: &Node<'_, '_>) -> Outcome<Option<String>> {
    if let Some(label) = call.text_at("disposition")? {
        return Ok(Some(label.to_owned()));
    }
    let disposition = call.get("call_disposition")?;
    if disposition.is_object() {
        return Ok(disposition.text_at("name")?.map(str::to_owned));
    }
    Ok(disposition.text()?.map(str::to_owned))
}

/// The rep: `user_id` for the directory, and `user{name,email}` /
/// `owner{...}` / `user_email` when the payload carries them.
fn rep_from_call(call: &Node<'_, '_>, user_id: Option<&str>) -> Outcome<Rep> {
    let mut rep = Rep::default();
    rep.add_key(user_id);
    for key in ["user", "owner"] {
        let person = call.get(key)?;
        if person.object()?.is_none() {
            continue;
        }
        let email = person.text_at("email")?;
        let name = match person.text_at("name")? {
            Some(name) => Some(name.to_owned()),
            None => {
                let first = person.text_at("first_name")?;
                let last = person.text_at("last_name")?;
                fields::full_name(first, last)
            }
        };
        if rep.email.is_none() && rep.name.is_none() {
            rep.add_key(person.id_at("id")?.as_deref());
            rep.add_key(email);
            rep.email = email.map(str::to_owned);
            rep.name = name;
        }
    }
    if rep.email.is_none()
        && let Some(email) = call.text_at("user_email")?
    {
        rep.add_key(Some(email));
        rep.email = Some(email.to_owned());
    }
    rep.who = match user_id {
        Some(user_id) => format!("Aloware user {user_id}"),
        None => "the Aloware user".to_owned(),
    };
    Ok(rep)
}
