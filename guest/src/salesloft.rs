//! Salesloft: incremental call lists, users, transcripts, webhooks, mapping.

use crate::prelude::*;

use serde_json::Value;

use crate::datetime::{self, Instant};
use crate::fields::{self, Node, Outcome, optional};
use crate::rules::{self, CallFacts, Media, Rep, WhenUnknown};
use crate::salesloft_api::{
    CallDataRecordPage, CallInputs, CallPage, Cursor, Guest, ListedCall, ListedCallDataRecord,
    ListedTranscription, Listing, TranscriptionPage, WebhookEvent,
};
use crate::types::{Decision, HttpRequest, InputError, RejectedRecord, Rules, Source, SyncMethod};

/// Salesloft's own advice: 100 per page, oldest change first.
const LIST_QUERY: &str = "sort_by=updated_at&sort_direction=ASC&per_page=100";
/// `GET /v2/transcriptions` documents `sort_by` but no `sort_direction`
/// (docs/external-apis.md), so none is sent. Its default order is not
/// documented either: the cursor re-anchors on the newest `updated_at` read.
const TRANSCRIPTIONS_QUERY: &str = "sort_by=updated_at&per_page=100";
/// `GET /v2/call_data_records` has no filter by call
/// (https://developers.salesloft.com/docs/api/call-data-records-index/), so
/// the records are read incrementally like the calls: `has_call=true` (only
/// records with a call logged), `sort_by=updated_at` (its default is
/// `created_at`), oldest change first.
const CALL_DATA_RECORDS_QUERY: &str =
    "has_call=true&sort_by=updated_at&sort_direction=ASC&per_page=100";

/// Pages past 100 cost 3 to 30 times more of the team-wide rate limit, so
/// the cursor moves its lower bound instead of paging deeper.
const MAX_PAGE: u32 = 100;

impl Guest for crate::Plugin {
    fn next_request(what: Listing, at: Cursor) -> HttpRequest {
        let (list, query) = match what {
            Listing::Calls => ("/v2/activities/calls", LIST_QUERY),
            Listing::Transcriptions => ("/v2/transcriptions", TRANSCRIPTIONS_QUERY),
            Listing::CallDataRecords => ("/v2/call_data_records", CALL_DATA_RECORDS_QUERY),
        };
        let page = at.page.clamp(1, MAX_PAGE);
        let mut path = format!("{list}?{query}&page={page}");
        if let Some(bound) = at.updated_since.as_deref().map(str::trim)
            && !bound.is_empty()
        {
            path.push_str("&updated_at%5Bgte%5D=");
            path.push_str(&fields::percent_encode(bound));
        }
        fields::get_request(path)
    }

    fn read_page(at: Cursor, body: String) -> Result<CallPage, InputError> {
        read_page(at, body).map_err(InputError::from)
    }

    fn read_transcriptions(at: Cursor, body: String) -> Result<TranscriptionPage, InputError> {
        read_transcriptions(at, body).map_err(InputError::from)
    }

    fn user_request(user_id: String) -> HttpRequest {
        fields::get_request(format!(
            "/v2/users/{}",
            fields::percent_encode(user_id.trim())
        ))
    }

    fn read_call_data_records(at: Cursor, body: String) -> Result<CallDataRecordPage, InputError> {
        read_call_data_records(at, body).map_err(InputError::from)
    }

    fn conversation_request(conversation_id: String) -> HttpRequest {
        fields::get_request(format!(
            "/v2/conversations/{}/extensive",
            fields::percent_encode(conversation_id.trim())
        ))
    }

    fn read_conversation(body: String) -> Result<Option<String>, InputError> {
        read_conversation(body).map_err(InputError::from)
    }

    fn sentences_request(transcription_id: String, page: u32) -> HttpRequest {
        fields::get_request(format!(
            "/v2/transcriptions/{}/sentences?per_page=100&page={}",
            fields::percent_encode(transcription_id.trim()),
            page.max(1)
        ))
    }

    fn sentences_has_more(body: String) -> Result<bool, InputError> {
        sentences_has_more(body).map_err(InputError::from)
    }

    fn read_webhook(event: String, body: String) -> Result<WebhookEvent, InputError> {
        read_webhook(event, body).map_err(InputError::from)
    }

    fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Result<Decision, InputError> {
        map_call(inputs, rules, via).map_err(InputError::from)
    }
}

fn read_page(at: Cursor, body: String) -> Outcome<CallPage> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let data = root.get("data")?.required()?;
    let mut calls = Vec::new();
    let mut rejected = Vec::new();
    let mut newest = None;
    for record in data.items()? {
        match listed_call(&record) {
            Ok((call, updated)) => {
                newest = newest.max(Some(updated));
                calls.push(call);
            }
            Err(fault) => {
                // One unreadable record costs that record only; its date,
                // when readable, still moves the cursor past it.
                newest = newest.max(updated_at(&record).ok());
                rejected.push(rejected_record(&record, fault.into()));
            }
        }
    }
    let (next, more) = plan_next(&at, newest, next_page(&root)?);
    Ok(CallPage {
        calls,
        next,
        more,
        rejected,
    })
}

fn read_call_data_records(at: Cursor, body: String) -> Outcome<CallDataRecordPage> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let data = root.get("data")?.required()?;
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    let mut newest = None;
    for record in data.items()? {
        match listed_call_data_record(&record) {
            Ok((listed, updated)) => {
                newest = newest.max(Some(updated));
                records.push(listed);
            }
            Err(fault) => {
                newest = newest.max(updated_at(&record).ok());
                rejected.push(rejected_record(&record, fault.into()));
            }
        }
    }
    let (next, more) = plan_next(&at, newest, next_page(&root)?);
    Ok(CallDataRecordPage {
        records,
        next,
        more,
        rejected,
    })
}

/// A list record that could not be read, under its id when that is readable.
fn rejected_record(record: &Node<'_, '_>, error: InputError) -> RejectedRecord {
    RejectedRecord {
        id: record.id_at("id").ok().flatten(),
        at: record.path(),
        error,
    }
}

fn listed_call_data_record(record: &Node<'_, '_>) -> Outcome<(ListedCallDataRecord, Instant)> {
    if !record.is_object() {
        return Err(record.wrong_type("a call data record (an object)"));
    }
    let id = record.required_id_at("id")?.unwrap_or_default();
    let call = record.get("call")?;
    let call_id = call.id_at("id")?;
    let updated = updated_at(record)?;
    Ok((
        ListedCallDataRecord {
            id,
            call_id,
            updated_at: cursor_text(record, updated)?,
            json: fields::to_json(record.value())?,
        },
        updated,
    ))
}

fn read_transcriptions(at: Cursor, body: String) -> Outcome<TranscriptionPage> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let data = root.get("data")?.required()?;
    let mut transcriptions = Vec::new();
    let mut newest = None;
    for record in data.items()? {
        let id = record.required_id_at("id")?.unwrap_or_default();
        let conversation = record.get("conversation")?;
        let conversation_id = conversation.id_at("id")?;
        let updated = updated_at(&record)?;
        newest = newest.max(Some(updated));
        transcriptions.push(ListedTranscription {
            id,
            conversation_id,
            updated_at: cursor_text(&record, updated)?,
        });
    }
    let (next, more) = plan_next(&at, newest, next_page(&root)?);
    Ok(TranscriptionPage {
        transcriptions,
        next,
        more,
    })
}

fn read_conversation(body: String) -> Outcome<Option<String>> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let conversation = unwrap_data(&root)?;
    if let Some(call_id) = conversation.id_at("call_id")? {
        return Ok(Some(call_id));
    }
    let call = conversation.get("call")?;
    call.get("id")?.id()
}

fn sentences_has_more(body: String) -> Outcome<bool> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    Ok(next_page(&root)?.is_some())
}

fn read_webhook(event: String, body: String) -> Outcome<WebhookEvent> {
    let event = event.trim();
    if !fields::is_one_of(event, &["call_created", "call_updated"]) {
        let named = if event.is_empty() {
            "without an x-salesloft-event header".to_owned()
        } else {
            format!("\"{event}\"")
        };
        return Ok(WebhookEvent::Ignore(format!(
            "Salesloft event {named} is not one the bridge acts on; calls arrive \
             as call_created and call_updated."
        )));
    }
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let record = unwrap_data(&root)?;
    let (call, _) = listed_call(&record)?;
    Ok(WebhookEvent::Call(call))
}

fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Outcome<Decision> {
    let facts = call_facts(&inputs)?;
    rules::decide(facts, &inputs.call, &rules, via)
}

/// A record that may come bare or as `{"data": record}`.
fn unwrap_data<'v, 's>(root: &'s Node<'v, '_>) -> Outcome<Node<'v, 's>> {
    let data = root.get("data")?;
    if data.is_object() && root.is_null_at("id")? {
        return Ok(data);
    }
    Ok(*root)
}

/// `metadata.paging.next_page`.
fn next_page(root: &Node<'_, '_>) -> Outcome<Option<u64>> {
    let metadata = root.get("metadata")?;
    let paging = metadata.get("paging")?;
    paging.get("next_page")?.count()
}

/// The cursor after a page: follow `next_page` up to page 100 under the same
/// bound, otherwise move the bound to the newest `updated_at` read.
fn plan_next(at: &Cursor, newest: Option<Instant>, next_page: Option<u64>) -> (Cursor, bool) {
    let bound = at.updated_since.as_deref().and_then(datetime::parse);
    // A server that ignored the bound must not move the cursor backwards.
    let moved = match (newest, bound) {
        (Some(newest), Some(bound)) if newest <= bound => None,
        (newest, _) => newest.and_then(datetime::cursor),
    };
    let reanchored = |more| {
        (
            Cursor {
                updated_since: moved.clone().or_else(|| at.updated_since.clone()),
                page: 1,
            },
            more,
        )
    };
    let page = u64::from(at.page.max(1));
    match next_page {
        // A next page that does not move forward would read the same page forever.
        None => reanchored(false),
        Some(next) if next <= page => reanchored(false),
        Some(next) if next <= u64::from(MAX_PAGE) => (
            Cursor {
                updated_since: at.updated_since.clone(),
                page: u32::try_from(next).unwrap_or(MAX_PAGE),
            },
            true,
        ),
        // A hundred full pages at the bound's own microsecond: re-anchoring
        // on it would read the same pages forever, so step one microsecond
        // past it (the only case where ties at the bound can be missed).
        Some(_) if moved.is_none() => (
            Cursor {
                updated_since: bound
                    .and_then(Instant::plus_microsecond)
                    .and_then(datetime::cursor)
                    .or_else(|| at.updated_since.clone()),
                page: 1,
            },
            bound.is_some(),
        ),
        Some(_) => reanchored(true),
    }
}

fn updated_at(record: &Node<'_, '_>) -> Outcome<Instant> {
    let field = record.get("updated_at")?.required()?;
    datetime::field(&field)?.ok_or_else(|| fields::missing(field.path()))
}

fn cursor_text(record: &Node<'_, '_>, instant: Instant) -> Outcome<String> {
    datetime::cursor(instant).ok_or_else(|| {
        record
            .get("updated_at")
            .map(|field| field.invalid("cannot be written as a UTC date".to_owned()))
            .unwrap_or_else(|error| error)
    })
}

/// A call record as listed, and its `updated_at`.
fn listed_call(record: &Node<'_, '_>) -> Outcome<(ListedCall, Instant)> {
    if !record.is_object() {
        return Err(record.wrong_type("a call record (an object)"));
    }
    let id = record.required_id_at("id")?.unwrap_or_default();
    // A webhook body may lack `updated_at`; a new call was updated when created.
    let updated = if record.is_null_at("updated_at")? && !record.is_null_at("created_at")? {
        let created = record.get("created_at")?;
        datetime::field(&created)?.ok_or_else(|| fields::missing(created.path()))?
    } else {
        updated_at(record)?
    };
    let user = record.get("user")?;
    let user_id = user.id_at("id")?;
    Ok((
        ListedCall {
            id,
            updated_at: cursor_text(record, updated)?,
            user_id,
            json: fields::to_json(record.value())?,
        },
        updated,
    ))
}

fn call_facts(inputs: &CallInputs) -> Outcome<CallFacts> {
    let value = fields::parse(&inputs.call, "")?;
    let root = Node::root(&value, "");
    let call = unwrap_data(&root)?;
    if !call.is_object() {
        return Err(call.wrong_type("a call record (an object)"));
    }
    let id = call.required_id_at("id")?.unwrap_or_default();

    // Completion: each recording's `status` is the outcome of its leg; a
    // top-level `status` (older records) is read with them.
    let mut statuses = Vec::new();
    statuses.extend(call.text_at("status")?);
    let mut media = Media::default();
    let mut finished_leg = false;
    let recordings = call.get("recordings")?;
    for recording in recordings.items()? {
        statuses.extend(recording.text_at("status")?);
        let url = recording.text_at("url")?;
        let state = recording.text_at("recording_status")?;
        match state {
            None => {}
            Some(state) if state.eq_ignore_ascii_case("completed") => {}
            Some(state) if fields::is_one_of(state, &["pending", "processing"]) => {
                media
                    .recording_pending
                    .get_or_insert_with(|| state.to_owned());
                continue;
            }
            Some(_) => continue,
        }
        let leg = recording.text_at("status")?;
        if url.is_some_and(|u| !u.trim().is_empty())
            && leg.is_none_or(|leg| leg.eq_ignore_ascii_case("completed"))
        {
            finished_leg = true;
        }
        if media.audio_url.is_none() {
            media.audio_url = url.map(str::to_owned);
        }
    }
    // A multi-leg call lists one recording per leg, each `status` the
    // outcome of its own leg: one completed leg with a URL makes the call
    // finished whatever the first leg's outcome (docs/external-apis.md).
    let progress = if finished_leg {
        rules::Progress::Finished
    } else {
        rules::progress(statuses, WhenUnknown::Passes)
    };
    media.transcript = transcript(&inputs.sentences)?;

    let started_at = datetime::call_date_field(&call.get("created_at")?)?;

    // Optional fields that cannot be read are left out with a warning: the
    // call is still sent without them.
    let mut warnings = Vec::new();
    let direction = match optional(direction_from_record(inputs, &id), &mut warnings) {
        Some(direction) => Some(direction),
        None => optional(call.text_at("direction"), &mut warnings).and_then(rules::parse_direction),
    };

    let user = call.get("user")?;
    let call_user_id = user.id_at("id")?;
    let (mut rep, record_user_id) = rep_from_user(inputs.user.as_deref(), call_user_id.as_deref())?;
    let user_id = call_user_id.or(record_user_id);
    rep.who = match &user_id {
        Some(user_id) => format!("Salesloft user {user_id}"),
        None => "the Salesloft user".to_owned(),
    };

    let disposition = optional(call.text_at("disposition"), &mut warnings).map(str::to_owned);
    let mut metadata = Vec::new();
    rules::push_metadata(&mut metadata, "salesloftUserId", user_id.as_deref());
    rules::push_metadata(
        &mut metadata,
        "salesloftDisposition",
        disposition.as_deref(),
    );
    rules::push_metadata(
        &mut metadata,
        "salesloftDirection",
        direction.map(rules::direction_word),
    );
    for (key, link) in [
        ("salesloftPersonId", "called_person"),
        ("salesloftCadenceId", "cadence"),
    ] {
        let linked = optional(call.get(link).and_then(|l| l.id_at("id")), &mut warnings);
        rules::push_metadata(&mut metadata, key, linked.as_deref());
    }
    let duration_seconds = optional(call.seconds_at("duration", 1.0), &mut warnings);

    Ok(CallFacts {
        source: Source::Salesloft,
        id,
        progress,
        media,
        duration_seconds,
        disposition,
        direction,
        title: None,
        started_at,
        rep,
        metadata,
        warnings,
    })
}

/// The direction from the call data record: `{"data": {...}}`, a bare
/// record, or a list response. Only a record whose `call.id` is this call's
/// counts: `GET /v2/call_data_records` has no `call_id` filter, so a list may
/// hold the newest records of the whole team (docs/external-apis.md), and a
/// record of another call must never lend its direction.
fn direction_from_record(
    inputs: &CallInputs,
    call_id: &str,
) -> Outcome<Option<crate::types::Direction>> {
    let Some(body) = inputs.call_data_record.as_deref() else {
        return Ok(None);
    };
    let value = fields::parse(body, "call-data-record")?;
    let root = Node::root(&value, "call-data-record");
    let data = root.get("data")?;
    let own = |record: &Node<'_, '_>| -> Outcome<Option<String>> {
        let call = record.get("call")?;
        if call.id_at("id")?.as_deref() != Some(call_id) {
            return Ok(None);
        }
        Ok(record.text_at("direction")?.map(str::to_owned))
    };
    let direction = if let Value::Array(_) = data.value() {
        let mut chosen = None;
        for record in data.items()? {
            if let Some(direction) = own(&record)? {
                chosen = Some(direction);
                break;
            }
        }
        chosen
    } else if data.is_object() {
        own(&data)?
    } else {
        own(&root)?
    };
    Ok(direction.as_deref().and_then(rules::parse_direction))
}

/// The rep as `GET /v2/users/{id}` describes them, and the record's own id.
fn rep_from_user(body: Option<&str>, call_user_id: Option<&str>) -> Outcome<(Rep, Option<String>)> {
    let mut rep = Rep::default();
    rep.add_key(call_user_id);
    let Some(body) = body else {
        return Ok((rep, None));
    };
    let value = fields::parse(body, "user")?;
    let root = Node::root(&value, "user");
    let user = unwrap_data(&root)?;
    if !user.is_object() {
        return Err(user.wrong_type("a user record (an object)"));
    }
    let id = user.id_at("id")?;
    rep.add_key(id.as_deref());
    rep.add_key(user.text_at("guid")?);
    let email = user.text_at("email")?;
    rep.add_key(email);
    rep.email = email.map(str::to_owned);
    rep.name = match user.text_at("name")? {
        Some(name) => Some(name.to_owned()),
        None => {
            let first = user.text_at("first_name")?;
            let last = user.text_at("last_name")?;
            fields::full_name(first, last)
        }
    };
    Ok((rep, id))
}

/// The sentences pages joined in `order_number` order, one sentence a line.
fn transcript(pages: &[String]) -> Outcome<Option<String>> {
    let mut sentences: Vec<(Option<u64>, &str)> = Vec::new();
    let values = pages
        .iter()
        .enumerate()
        .map(|(index, page)| {
            let label = format!("sentences[{index}]");
            fields::parse(page, &label).map(|value| (label, value))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (label, value) in &values {
        let root = Node::root(value, label);
        let data = root.get("data")?;
        for sentence in data.items()? {
            let Some(text) = sentence.text_at("text")? else {
                continue;
            };
            sentences.push((sentence.count_at("order_number")?, text));
        }
    }
    // Stable: sentences without an order number keep their page order, last.
    Ok(fields::ordered_lines(&sentences))
}
