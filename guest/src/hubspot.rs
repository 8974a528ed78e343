//! HubSpot: incremental calls search, owners, dispositions, transcripts, webhooks, mapping.

use crate::prelude::*;

use serde_json::Value;

use crate::datetime;
use crate::fields::{self, Node, Outcome, optional, problem};
use crate::hubspot_api::{
    AssociationKind, CallInputs, Cursor, Guest, ListedCall, SearchOptions, SearchPage,
    WebhookDelivery,
};
use crate::rules::{self, CallFacts, Media, Progress, Rep, WhenUnknown};
use crate::types::{
    Decision, FieldProblem, Header, HttpRequest, InputError, RejectedRecord, Rules, Source,
    SyncMethod,
};

/// Every property the bridge reads, requested by name so pages stay small.
const PROPERTIES: &[&str] = &[
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_duration",
    "hs_call_status",
    "hs_call_direction",
    "hs_call_recording_url",
    "hs_call_disposition",
    "hs_call_has_transcript",
    "hs_call_transcription_id",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
];

/// HubSpot answers 400 to a search that pages past this many results.
const SEARCH_CAP: u64 = 10_000;

/// HubSpot's built-in call outcomes, known without `GET /calling/v1/dispositions`.
const DEFAULT_DISPOSITIONS: &[(&str, &str)] = &[
    ("f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"),
    ("9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"),
    ("73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"),
    ("a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"),
    ("b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"),
    ("17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"),
];

impl Guest for crate::Plugin {
    fn search_request(at: Cursor, options: SearchOptions) -> HttpRequest {
        // Written out rather than built as a `serde_json::Value`: the same
        // compact JSON with its keys in order, without the code for
        // building maps. `after` is a token from HubSpot, escaped as JSON.
        //
        // HubSpot's published spec (`PublicObjectSearchRequest`) types
        // `sorts` as a list of strings and `after` as a string; its Node
        // SDK's README documents a bare property name as an ascending sort
        // and `after` 0 for the first page, so both forms are the spec's
        // and the SDK's at once.
        let mut body = String::from("{\"after\":");
        let after = at.after.unwrap_or_else(|| "0".to_owned());
        body.push_str(&fields::json_text(&Value::String(after)));
        body.push_str(",\"filterGroups\":[");
        if let Some(since) = at.since_ms {
            body.push_str(
                "{\"filters\":[{\"operator\":\"GTE\",\"propertyName\":\"hs_lastmodifieddate\",\"value\":\"",
            );
            body.push_str(&since.to_string());
            body.push_str("\"}]}");
        }
        body.push_str("],\"limit\":");
        body.push_str(&limit(&options).to_string());
        body.push_str(",\"properties\":[\"");
        body.push_str(&fields::join(PROPERTIES.iter().copied(), "\",\""));
        body.push_str("\"],\"sorts\":[\"hs_lastmodifieddate\"]}");
        HttpRequest {
            method: "POST".to_owned(),
            path: "/crm/v3/objects/calls/search".to_owned(),
            headers: vec![Header {
                name: "Content-Type".to_owned(),
                value: "application/json".to_owned(),
            }],
            body: Some(body),
        }
    }

    fn read_search(
        at: Cursor,
        options: SearchOptions,
        body: String,
    ) -> Result<SearchPage, InputError> {
        read_search(at, options, body).map_err(InputError::from)
    }

    fn call_request(call_id: String) -> HttpRequest {
        fields::get_request(format!(
            "/crm/v3/objects/calls/{}?properties={}&associations=contacts,deals",
            fields::percent_encode(call_id.trim()),
            fields::join(PROPERTIES.iter().copied(), ",")
        ))
    }

    fn read_call(body: String) -> Result<ListedCall, InputError> {
        read_call(body).map_err(InputError::from)
    }

    fn owner_request(owner_id: String, archived: bool) -> HttpRequest {
        // `archived` defaults to false: a deactivated owner answers 404
        // unless asked for again with `archived=true`.
        // https://developers.hubspot.com/docs/api-reference/crm-owners-v3/guide
        // (HubSpot/HubSpot-public-api-spec-collection,
        // PublicApiSpecs/CRM/Crm Owners/Rollouts/146888/v3/crmOwners.json:
        // parameters ownerId, archived, idProperty).
        fields::get_request(format!(
            "/crm/v3/owners/{}{}",
            fields::percent_encode(owner_id.trim()),
            if archived { "?archived=true" } else { "" }
        ))
    }

    fn dispositions_request() -> HttpRequest {
        // https://developers.hubspot.com/docs/api-reference/legacy/crm/activities/engagements/get-calling-v1-dispositions
        // answers `[{id, label}]`.
        fields::get_request("/calling/v1/dispositions".to_owned())
    }

    fn associations_request(kind: AssociationKind, call_ids: Vec<String>) -> HttpRequest {
        associations_request(kind, &call_ids)
    }

    fn transcript_request(transcription_id: String) -> HttpRequest {
        fields::get_request(format!(
            "/crm/v3/extensions/calling/transcripts/{}",
            fields::percent_encode(transcription_id.trim())
        ))
    }

    fn read_webhook(body: String) -> Result<WebhookDelivery, InputError> {
        read_webhook(body).map_err(InputError::from)
    }

    fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Result<Decision, InputError> {
        map_call(inputs, rules, via).map_err(InputError::from)
    }
}

fn read_search(at: Cursor, options: SearchOptions, body: String) -> Outcome<SearchPage> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let results = root.get("results")?.required()?;
    let mut calls = Vec::new();
    let mut rejected = Vec::new();
    let mut newest: Option<u64> = None;
    for result in results.items()? {
        match listed_call(&result) {
            Ok(call) => {
                newest = newest.max(Some(call.modified_ms));
                calls.push(call);
            }
            // One unreadable result costs that result only: the host
            // records it as failed and the cursor moves past it.
            Err(fault) => rejected.push(RejectedRecord {
                id: result.id_at("id").ok().flatten(),
                at: result.path(),
                error: fault.into(),
            }),
        }
    }
    // Nothing depends on HubSpot's `total` (an int32 in its spec, so
    // possibly negative): a value that is not a count must not cost a page
    // whose calls were read.
    let total = match root.count_at("total") {
        Ok(Some(total)) => total,
        Ok(None) | Err(_) => u64::try_from(calls.len()).unwrap_or(u64::MAX),
    };
    let high_water = at.high_water_ms.max(newest);
    let paging = root.get("paging")?;
    let next = paging.get("next")?;
    let after = next.scalar_text_at("after")?;

    let Some(after) = after else {
        // The end of this search: the next cycle starts a look-back before
        // the newest date read, because search lags writes.
        return Ok(SearchPage {
            calls,
            next: Cursor {
                since_ms: high_water
                    .map(|high| high.saturating_sub(options.lookback_ms))
                    .or(at.since_ms),
                after: None,
                high_water_ms: high_water,
            },
            more: false,
            total,
            rejected,
        });
    };
    let offset = fields::parse_u64(&after);
    let past_cap =
        offset.is_some_and(|offset| offset.saturating_add(u64::from(limit(&options))) > SEARCH_CAP);
    let next = if past_cap {
        let anchor = newest.or(high_water).unwrap_or_default();
        // `GTE` on the newest date read re-reads the calls at that very
        // millisecond; if they alone fill 10,000 results the bound would
        // never move, so it steps 1 ms forward instead, accepting that
        // calls beyond the first 10,000 in that millisecond are missed.
        let since = if Some(anchor) == at.since_ms {
            anchor.saturating_add(1)
        } else {
            anchor
        };
        Cursor {
            since_ms: Some(since),
            after: None,
            high_water_ms: high_water,
        }
    } else {
        Cursor {
            since_ms: at.since_ms,
            after: Some(after),
            high_water_ms: high_water,
        }
    };
    Ok(SearchPage {
        calls,
        next,
        more: true,
        total,
        rejected,
    })
}

fn read_call(body: String) -> Outcome<ListedCall> {
    let value = fields::parse(&body, "")?;
    listed_call(&Node::root(&value, ""))
}

fn read_webhook(body: String) -> Outcome<WebhookDelivery> {
    let value = fields::parse(&body, "")?;
    let root = Node::root(&value, "");
    let mut ids: Vec<String> = Vec::new();
    let mut ignored = Vec::new();
    match &value {
        Value::Array(_) => {
            for event in root.items()? {
                let type_id = event.scalar_text_at("objectTypeId")?;
                let subscription = event.text_at("subscriptionType")?;
                let is_call = type_id.as_deref() == Some(CALL_OBJECT_TYPE)
                    || subscription.is_some_and(|kind| kind.starts_with("call."));
                if !is_call {
                    continue;
                }
                let id = event.required_id_at("objectId")?.unwrap_or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Value::Object(_) => match workflow_object(&root)? {
            WorkflowObject::Call => ids.push(workflow_object_id(&root)?),
            WorkflowObject::Other(reason) => ignored.push(reason),
        },
        _ => return Err(root.wrong_type("a list of events or a workflow body (an object)")),
    }
    Ok(WebhookDelivery {
        call_ids: ids,
        ignored,
    })
}

/// HubSpot's object type id for calls, as webhook events name it.
const CALL_OBJECT_TYPE: &str = "0-48";

/// What a workflow action's body is about.
enum WorkflowObject {
    Call,
    /// Not a call, and why that was concluded.
    Other(String),
}

/// Whether a workflow body is a call. HubSpot publishes no schema for the
/// "Send a webhook" action's body beyond "the enrolled record's
/// properties" (https://knowledge.hubspot.com/workflows/how-do-i-use-webhooks-with-hubspot-workflows),
/// and most workflows are enrolled on contacts or deals, whose ids are not
/// call ids. So a body counts as a call only when it says so: an object
/// type naming calls, or at least one `hs_call_*` property (at the top or
/// under `properties`). Anything else is answered and recorded, never
/// fetched as a call.
fn workflow_object(root: &Node<'_, '_>) -> Outcome<WorkflowObject> {
    for key in ["objectTypeId", "objectType"] {
        if let Some(kind) = root.scalar_text_at(key)? {
            let is_call = kind == CALL_OBJECT_TYPE || fields::is_one_of(&kind, &["call", "calls"]);
            return Ok(if is_call {
                WorkflowObject::Call
            } else {
                WorkflowObject::Other(format!(
                    "a workflow delivery for object type `{kind}` is not a call; \
                     only call-based workflows (object type {CALL_OBJECT_TYPE}) are read"
                ))
            });
        }
    }
    let has_call_property = |value: &Value| {
        value
            .as_object()
            .is_some_and(|members| members.keys().any(|key| key.starts_with("hs_call_")))
    };
    let properties = root.get("properties")?;
    if has_call_property(root.value()) || has_call_property(properties.value()) {
        return Ok(WorkflowObject::Call);
    }
    Ok(WorkflowObject::Other(
        "a workflow delivery without any hs_call_* property or object type 0-48 is not a call \
         (a contact- or deal-based workflow names their ids, not call ids); include a call \
         property such as hs_call_title in the webhook action"
            .to_owned(),
    ))
}

fn map_call(inputs: CallInputs, rules: Rules, via: SyncMethod) -> Outcome<Decision> {
    let facts = call_facts(&inputs)?;
    rules::decide(facts, &inputs.call, &rules, via)
}

fn limit(options: &SearchOptions) -> u32 {
    options.limit.clamp(1, 200)
}

/// The call id in a workflow action's body: `hs_object_id`, `objectId` or
/// `id` at the top, or `properties.hs_object_id` (plain or `{value}`).
fn workflow_object_id(root: &Node<'_, '_>) -> Outcome<String> {
    for key in ["hs_object_id", "objectId", "id"] {
        if let Some(id) = root.id_at(key)? {
            return Ok(id);
        }
    }
    let properties = root.get("properties")?;
    let property = properties.get("hs_object_id")?;
    let id = if property.is_object() {
        property.id_at("value")?
    } else {
        property.id()?
    };
    id.ok_or_else(|| fields::missing("hs_object_id".to_owned()))
}

/// A call object as search or `GET` returns it.
fn listed_call(result: &Node<'_, '_>) -> Outcome<ListedCall> {
    if !result.is_object() {
        return Err(result.wrong_type("a call object"));
    }
    let id = result.required_id_at("id")?.unwrap_or_default();
    let properties = result.get("properties")?;
    if properties.object()?.is_none() {
        return Err(fields::missing(properties.path()));
    }
    // The cursor's date: `hs_lastmodifieddate`, else the object's
    // `updatedAt`; a failure names the field that was read.
    let modified = properties.get("hs_lastmodifieddate")?;
    let updated = result.get("updatedAt")?;
    let modified_ms = match modified_ms(&modified) {
        Ok(Some(ms)) => ms,
        Ok(None) => modified_ms(&updated)?.ok_or_else(|| fields::missing(modified.path()))?,
        Err(fault) => match modified_ms(&updated) {
            Ok(Some(ms)) => ms,
            Ok(None) | Err(_) => return Err(fault),
        },
    };
    Ok(ListedCall {
        id,
        modified_ms,
        owner_id: properties.scalar_text_at("hubspot_owner_id")?,
        // Optional: a transcription id that cannot be read only costs the
        // transcript (the call is still mapped, by its recording).
        transcription_id: properties
            .scalar_text_at("hs_call_transcription_id")
            .ok()
            .flatten(),
        json: fields::to_json(result.value())?,
    })
}

/// A date field as epoch milliseconds; `invalid-value` naming it when it is
/// not a date or is before 1970.
fn modified_ms(node: &Node<'_, '_>) -> Outcome<Option<u64>> {
    match datetime::field(node)? {
        Some(instant) => datetime::epoch_ms(instant)
            .map(Some)
            .ok_or_else(|| node.invalid("is before 1970".to_owned())),
        None => Ok(None),
    }
}

fn call_facts(inputs: &CallInputs) -> Outcome<CallFacts> {
    let value = fields::parse(&inputs.call, "")?;
    let call = Node::root(&value, "");
    if !call.is_object() {
        return Err(call.wrong_type("a call object"));
    }
    let id = call.required_id_at("id")?.unwrap_or_default();
    let properties = call.get("properties")?;
    if properties.object()?.is_none() {
        return Err(fields::missing(properties.path()));
    }
    let property = |key| -> Outcome<Option<String>> { properties.get(key)?.scalar_text() };

    let status = property("hs_call_status")?;
    let progress = if call.flag_at("archived")? == Some(true) {
        Progress::Archived
    } else {
        // HubSpot lists its finished statuses; only COMPLETED is one. A call
        // logged by hand has no status and counts as finished.
        rules::progress(status.as_deref(), WhenUnknown::NotCompleted)
    };

    let mut warnings = Vec::new();
    let transcript = transcript(inputs.transcript.as_deref())?;
    // An unreadable flag only means the bridge does not wait for a
    // transcript HubSpot may be making.
    let has_transcript = optional(properties.flag_at("hs_call_has_transcript"), &mut warnings);
    let media = Media {
        audio_url: property("hs_call_recording_url")?,
        recording_pending: None,
        transcript_pending: transcript.is_none() && has_transcript == Some(true),
        transcript,
        notes: property("hs_call_body")?
            .map(|body| html_to_text(&body))
            .filter(|notes| !notes.is_empty()),
    };

    // `hs_timestamp`, else when the object was created, else no date: each
    // unreadable one is a warning, never the call.
    let started_at = match optional(
        datetime::call_date_field(&properties.get("hs_timestamp")?),
        &mut warnings,
    ) {
        Some(date) => Some(date),
        None => optional(
            datetime::call_date_field(&call.get("createdAt")?),
            &mut warnings,
        ),
    };

    let direction = optional(property("hs_call_direction"), &mut warnings)
        .as_deref()
        .and_then(rules::parse_direction);
    let disposition = match optional(property("hs_call_disposition"), &mut warnings) {
        Some(guid) => disposition_label(&guid, inputs.dispositions.as_deref(), &mut warnings),
        None => None,
    };
    let duration_seconds = optional(
        properties.seconds_at("hs_call_duration", 1000.0),
        &mut warnings,
    );
    let title = optional(property("hs_call_title"), &mut warnings);
    let owner_id = property("hubspot_owner_id")?;
    let rep = rep_from_owner(inputs.owner.as_deref(), owner_id.as_deref())?;

    let mut metadata = Vec::new();
    rules::push_metadata(&mut metadata, "hubspotOwnerId", owner_id.as_deref());
    let associations = call.get("associations")?;
    for (key, kind, batch) in [
        ("hubspotContactIds", "contacts", inputs.contacts.as_deref()),
        ("hubspotDealIds", "deals", inputs.deals.as_deref()),
    ] {
        let mut ids = associated_ids(&associations, kind)?;
        if ids.is_empty()
            && let Some(body) = batch
        {
            ids =
                optional(batch_associated_ids(body, kind, &id), &mut warnings).unwrap_or_default();
        }
        rules::push_metadata(
            &mut metadata,
            key,
            Some(&fields::join(ids.iter().map(String::as_str), ",")),
        );
    }
    rules::push_metadata(&mut metadata, "hubspotDisposition", disposition.as_deref());
    rules::push_metadata(
        &mut metadata,
        "hubspotDirection",
        direction.map(rules::direction_word),
    );

    Ok(CallFacts {
        source: Source::Hubspot,
        id,
        progress,
        media,
        duration_seconds,
        disposition,
        direction,
        title,
        started_at,
        rep,
        metadata,
        warnings,
    })
}

/// The ids associated with `call_id` in a v4 associations batch read
/// (`{results: [{from: {id}, to: [{toObjectId, associationTypes}]}]}`,
/// HubSpot/HubSpot-public-api-spec-collection
/// PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json,
/// `BatchResponsePublicAssociationMultiWithLabel`). A call with no
/// associations is absent from `results` (HubSpot lists it under `errors`).
/// Only the first page of a call's associations is read (`paging` is
/// per call): a call with hundreds of contacts gets the first ones.
fn batch_associated_ids(body: &str, kind: &str, call_id: &str) -> Outcome<Option<Vec<String>>> {
    let value = fields::parse(body, kind)?;
    let root = Node::root(&value, kind);
    let results = root.get("results")?;
    let mut ids: Vec<String> = Vec::new();
    for result in results.items()? {
        let from = result.get("from")?;
        if from.id_at("id")?.as_deref() != Some(call_id) {
            continue;
        }
        let to = result.get("to")?;
        for target in to.items()? {
            if let Some(id) = target.id_at("toObjectId")?
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
    }
    Ok(Some(ids))
}

/// `POST /crm/v4/associations/calls/{kind}/batch/read` for a page of calls
/// (HubSpot/HubSpot-public-api-spec-collection
/// PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json:
/// body `BatchInputPublicFetchAssociationsBatchRequest` = `{inputs: [{id}]}`).
fn associations_request(kind: AssociationKind, call_ids: &[String]) -> HttpRequest {
    let to = match kind {
        AssociationKind::Contacts => "contacts",
        AssociationKind::Deals => "deals",
    };
    let inputs: Vec<Value> = call_ids
        .iter()
        .map(|id| serde_json::json!({ "id": id.trim() }))
        .collect();
    HttpRequest {
        method: "POST".to_owned(),
        path: format!("/crm/v4/associations/calls/{to}/batch/read"),
        headers: vec![Header {
            name: "Content-Type".to_owned(),
            value: "application/json".to_owned(),
        }],
        body: Some(fields::json_text(&serde_json::json!({ "inputs": inputs }))),
    }
}

/// `associations.<kind>.results[].id`, de-duplicated in order: HubSpot
/// lists an object once per association type.
fn associated_ids(associations: &Node<'_, '_>, kind: &str) -> Outcome<Vec<String>> {
    let group = associations.get(kind)?;
    let results = group.get("results")?;
    let mut ids: Vec<String> = Vec::new();
    for result in results.items()? {
        if let Some(id) = result.id_at("id")?
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The label for a disposition GUID: from the portal's list when given,
/// else HubSpot's defaults. A GUID with no known label is left out with a
/// warning (a GUID shown as if it were a label would mislead Kendo); so is
/// a list that cannot be read, after the defaults are tried.
fn disposition_label(
    guid: &str,
    body: Option<&str>,
    warnings: &mut Vec<FieldProblem>,
) -> Option<String> {
    if let Some(body) = body {
        match portal_disposition(guid, body) {
            Ok(Some(label)) => return Some(label),
            Ok(None) => {}
            Err(fault) => warnings.push(problem(fault.into())),
        }
    }
    let label = DEFAULT_DISPOSITIONS
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(guid))
        .map(|(_, label)| (*label).to_owned());
    if label.is_none() {
        warnings.push(FieldProblem {
            field: "properties.hs_call_disposition".to_owned(),
            detail: format!(
                "disposition {guid} has no known label (not a HubSpot default{})",
                if body.is_some() {
                    " and not in the portal's list"
                } else {
                    "; the portal's list was not read"
                }
            ),
        });
    }
    label
}

/// The label for `guid` in the body of `GET /calling/v1/dispositions`.
fn portal_disposition(guid: &str, body: &str) -> Outcome<Option<String>> {
    let value = fields::parse(body, "dispositions")?;
    let root = Node::root(&value, "dispositions");
    // The v1 endpoint answers a bare list; accept `{results: [...]}` too.
    let list = if root.is_object() {
        root.get("results")?
    } else {
        root
    };
    for entry in list.items()? {
        let id = entry.id_at("id")?;
        if id.is_some_and(|id| id.eq_ignore_ascii_case(guid))
            && let Some(label) = entry.text_at("label")?
        {
            return Ok(Some(label.to_owned()));
        }
    }
    Ok(None)
}

/// The rep as `GET /crm/v3/owners/{id}` describes them.
fn rep_from_owner(body: Option<&str>, owner_id: Option<&str>) -> Outcome<Rep> {
    let mut rep = Rep::default();
    rep.add_key(owner_id);
    if let Some(body) = body {
        let value = fields::parse(body, "owner")?;
        let owner = Node::root(&value, "owner");
        if !owner.is_object() {
            return Err(owner.wrong_type("an owner (an object)"));
        }
        rep.add_key(owner.id_at("id")?.as_deref());
        rep.add_key(owner.id_at("userId")?.as_deref());
        let email = owner.text_at("email")?;
        rep.add_key(email);
        rep.email = email.map(str::to_owned);
        let first = owner.text_at("firstName")?;
        let last = owner.text_at("lastName")?;
        rep.name = fields::full_name(first, last);
    }
    rep.who = match rep.keys.first() {
        Some(id) => format!("HubSpot owner {id}"),
        None => "the HubSpot owner".to_owned(),
    };
    Ok(rep)
}

/// `transcriptUtterances` as `Name: text` lines in time order.
fn transcript(body: Option<&str>) -> Outcome<Option<String>> {
    let Some(body) = body else {
        return Ok(None);
    };
    let value = fields::parse(body, "transcript")?;
    let root = Node::root(&value, "transcript");
    let utterances = root.get("transcriptUtterances")?;
    let mut lines: Vec<(Option<u64>, String)> = Vec::new();
    for utterance in utterances.items()? {
        let Some(text) = utterance.text_at("text")? else {
            continue;
        };
        let speaker = utterance.get("speaker")?;
        let name = match speaker.text_at("name")? {
            Some(name) => Some(name),
            None => speaker.text_at("email")?,
        };
        let start = utterance
            .get("startTimeMillis")?
            .number()?
            .map(fields::sortable_f64);
        lines.push((
            start,
            match name {
                Some(name) => format!("{name}: {text}"),
                None => text.to_owned(),
            },
        ));
    }
    // Stable, with utterances that have no start time kept in order, last.
    let lines: Vec<(Option<u64>, &str)> = lines
        .iter()
        .map(|(start, line)| (*start, line.as_str()))
        .collect();
    Ok(fields::ordered_lines(&lines))
}

/// Plain text from `hs_call_body`'s HTML: tags dropped, line breaks kept,
/// the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut chars = html.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' if chars
                .peek()
                .is_some_and(|next| next.is_ascii_alphabetic() || matches!(next, '/' | '!')) =>
            {
                let mut tag = String::new();
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                    tag.push(c);
                }
                let name: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase())
                    .collect();
                // `<br>` always breaks the line; a block element starts or
                // ends one only if the text is not already at a line start,
                // so empty paragraphs and nested blocks add no blank lines.
                match name.as_str() {
                    "br" => text.push('\n'),
                    "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul"
                    | "ol" | "table" | "blockquote"
                        if !text.is_empty() && !text.ends_with('\n') =>
                    {
                        text.push('\n');
                    }
                    _ => {}
                }
            }
            '&' => {
                let mut entity = String::new();
                while let Some(&next) = chars.peek() {
                    if next == ';'
                        || entity.len() > 10
                        || !(next.is_ascii_alphanumeric() || next == '#')
                    {
                        break;
                    }
                    entity.push(next);
                    chars.next();
                }
                match (decode_entity(&entity), chars.peek() == Some(&';')) {
                    (Some(decoded), true) => {
                        chars.next();
                        text.push(decoded);
                    }
                    _ => {
                        text.push('&');
                        text.push_str(&entity);
                    }
                }
            }
            c => text.push(c),
        }
    }
    // One blank line at most between paragraphs, and no stray spaces.
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

fn decode_entity(entity: &str) -> Option<char> {
    let numeric = |digits: &str, radix| {
        u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32)
    };
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "ndash" => Some('\u{2013}'),
        "mdash" => Some('\u{2014}'),
        "hellip" => Some('\u{2026}'),
        "lsquo" => Some('\u{2018}'),
        "rsquo" => Some('\u{2019}'),
        "ldquo" => Some('\u{201c}'),
        "rdquo" => Some('\u{201d}'),
        _ => match entity.strip_prefix('#') {
            Some(hex) if hex.starts_with(['x', 'X']) => numeric(hex.get(1..)?, 16),
            Some(decimal) => numeric(decimal, 10),
            None => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The body as the plugin first built it, with `serde_json::json!`.
    fn search_body_as_json_built_it(at: &Cursor, options: &SearchOptions) -> String {
        let filter_groups = match at.since_ms {
            Some(since) => json!([{
                "filters": [{
                    "propertyName": "hs_lastmodifieddate",
                    "operator": "GTE",
                    "value": since.to_string(),
                }]
            }]),
            None => json!([]),
        };
        json!({
            "after": at.after.clone().unwrap_or_else(|| "0".to_owned()),
            "filterGroups": filter_groups,
            "sorts": ["hs_lastmodifieddate"],
            "properties": PROPERTIES,
            "limit": limit(options),
        })
        .to_string()
    }

    #[test]
    fn search_bodies_are_byte_for_byte_what_json_wrote() {
        for (since_ms, after) in [
            (None, None),
            (Some(1_772_600_000_000), None),
            (Some(0), Some("200")),
            (None, Some("a \"quoted\" \\ token\n\u{1}é")),
        ] {
            let at = Cursor {
                since_ms,
                after: after.map(str::to_owned),
                high_water_ms: None,
            };
            let options = SearchOptions {
                limit: 500,
                lookback_ms: 0,
            };
            let request = <crate::Plugin as Guest>::search_request(at.clone(), options);
            assert_eq!(
                request.body.as_deref(),
                Some(search_body_as_json_built_it(&at, &options).as_str())
            );
        }
    }

    /// A string HubSpot's spec allows for a date property or `createdAt`:
    /// any string, so dates, epoch milliseconds, pre-1970 dates and junk.
    fn odd_date() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("2026-04-22T15:30:00Z".to_owned()),
            Just("1776871800000".to_owned()),
            Just("1969-07-20T20:17:40Z".to_owned()),
            Just("0001-01-01T00:00:00Z".to_owned()),
            Just(String::new()),
            Just("-5".to_owned()),
            Just("99999999999999999999".to_owned()),
            "[ -~]{0,12}",
        ]
    }

    fn odd_flag() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("true".to_owned())),
            Just(Some("false".to_owned())),
            "[ -~]{0,6}".prop_map(Some),
        ]
    }

    fn rules() -> Rules {
        Rules {
            title_template: None,
            min_duration_seconds: 0,
            allowed_dispositions: Vec::new(),
            rep_directory: Vec::new(),
        }
    }

    fn readable_date(text: &str) -> bool {
        datetime::parse(text).and_then(datetime::epoch_ms).is_some()
    }

    proptest! {
        /// HubSpot's search page with values its published schema allows
        /// (`total` any int32, every property any string or null): only a
        /// call with neither date readable is lost, and only that call; a
        /// call read is mapped to a decision, never to an error.
        #[test]
        fn schema_valid_odd_values_cost_at_most_their_own_call(
            total in any::<i32>(),
            calls in prop::collection::vec(
                (odd_date(), odd_date(), odd_date(), odd_date(), odd_flag()),
                0..8,
            ),
            after in prop::option::of(any::<i32>()),
        ) {
            let results: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(index, (modified, updated, timestamp, created, flag))| {
                    json!({
                        "id": (index + 1).to_string(),
                        "properties": {
                            "hs_lastmodifieddate": modified,
                            "hs_timestamp": timestamp,
                            "hs_call_has_transcript": flag,
                            "hs_call_status": "COMPLETED",
                            "hs_call_recording_url": "https://example.com/a.mp3",
                        },
                        "createdAt": created,
                        "updatedAt": updated,
                        "archived": false,
                    })
                })
                .collect();
            let mut page = json!({"total": total, "results": results});
            if let (Some(after), Value::Object(members)) = (after, &mut page) {
                members.insert("paging".to_owned(), json!({"next": {"after": after.to_string()}}));
            }
            let at = Cursor { since_ms: Some(0), after: None, high_water_ms: None };
            let options = SearchOptions { limit: 100, lookback_ms: 0 };
            let read = read_search(at, options, page.to_string());
            prop_assert!(read.is_ok(), "the page failed: {:?}", read.err().map(InputError::from));
            let Ok(read) = read else { return Ok(()) };
            let lost = calls
                .iter()
                .filter(|(modified, updated, ..)| {
                    !readable_date(modified) && !readable_date(updated)
                })
                .count();
            prop_assert_eq!(read.rejected.len(), lost);
            prop_assert_eq!(read.calls.len() + lost, calls.len());
            for call in read.calls {
                let inputs = CallInputs {
                    call: call.json,
                    owner: None,
                    dispositions: None,
                    transcript: None,
                    contacts: None,
                    deals: None,
                };
                let decision = map_call(inputs, rules(), SyncMethod::Polling);
                prop_assert!(decision.is_ok(), "call {} failed: {:?}", call.id, decision.err().map(InputError::from));
            }
        }
    }

    #[test]
    fn a_pre_1970_updated_at_is_named_as_read() {
        let page = json!({"results": [{
            "id": "1",
            "properties": {"hs_lastmodifieddate": null},
            "updatedAt": "1969-12-31T23:59:59Z",
        }]});
        let at = Cursor {
            since_ms: None,
            after: None,
            high_water_ms: None,
        };
        let options = SearchOptions {
            limit: 100,
            lookback_ms: 0,
        };
        let read = read_search(at, options, page.to_string()).map_err(InputError::from);
        let rejected = read.map(|page| page.rejected).unwrap_or_default();
        assert_eq!(rejected.len(), 1);
        let named = match &rejected[0].error {
            InputError::InvalidValue(problem) => problem.field.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(named, "results[0].updatedAt");
    }

    #[test]
    fn an_unreadable_call_date_falls_back_with_a_warning() {
        let call = json!({
            "id": "7",
            "properties": {
                "hs_timestamp": "yesterday",
                "hs_call_has_transcript": "maybe",
                "hs_call_status": "COMPLETED",
                "hs_call_recording_url": "https://example.com/a.mp3",
            },
            "createdAt": "2026-04-22T15:30:00Z",
        });
        let inputs = CallInputs {
            call: call.to_string(),
            owner: None,
            dispositions: None,
            transcript: None,
            contacts: None,
            deals: None,
        };
        let facts = match call_facts(&inputs) {
            Ok(facts) => facts,
            Err(fault) => panic!("the call failed: {:?}", InputError::from(fault)),
        };
        assert_eq!(facts.started_at.as_deref(), Some("2026-04-22T15:30:00Z"));
        let warned: Vec<&str> = facts.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(
            warned,
            [
                "properties.hs_call_has_transcript",
                "properties.hs_timestamp"
            ]
        );
    }

    #[test]
    fn html_notes_become_plain_text_lines() {
        assert_eq!(
            html_to_text("<p>Discussed pricing &amp; timeline.</p><p>Next:<br>send quote</p>"),
            "Discussed pricing & timeline.\nNext:\nsend quote"
        );
    }

    #[test]
    fn entities_and_stray_brackets_are_handled() {
        assert_eq!(
            html_to_text("5 &lt; 6 &#62; 4 &#x41; a < b &bogus; &amp"),
            "5 < 6 > 4 A a < b &bogus; &amp"
        );
    }

    #[test]
    fn empty_paragraphs_add_no_blank_lines_but_repeated_breaks_keep_one() {
        assert_eq!(
            html_to_text("<div>one</div><p></p><p></p><div>two</div>"),
            "one\ntwo"
        );
        assert_eq!(html_to_text("one<br><br><br>two"), "one\n\ntwo");
    }

    #[test]
    fn unknown_guids_are_left_out_with_a_warning() {
        let mut warnings = Vec::new();
        assert_eq!(disposition_label("nope", None, &mut warnings), None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            disposition_label("F240BBAC-87C9-4F6E-BF70-924B57D47DB7", None, &mut warnings)
                .as_deref(),
            Some("Connected")
        );
        assert_eq!(warnings.len(), 1);
    }
}
