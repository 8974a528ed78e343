//! Aloware: a webhook sender only (Aloware has no API that lists calls).
//!
//! Deliveries are `{"event": ..., "body": {...}}` with no signature, no
//! event id and no retries: [`AlowareSim::deliver`] posts once and reports
//! the status, as Aloware does. Authentication is whatever the webhook was
//! configured with in Aloware's UI: none, Basic or Bearer.
//!
//! Event names come from Aloware's own n8n trigger node
//! (`aloware/n8n-nodes-aloware`, nodes/AlowareTrigger/AlowareTrigger.node.ts):
//! `OutboundPhoneCall-DispositionCompleted`, `InboundSMS-DispositionCompleted`,
//! `transcription.call.summarized`; the inbound-call name follows the same
//! pattern. Auth None / Basic / Bearer and no retries: Aloware's support page
//! https://support.aloware.com/en/articles/9020028-aloware-webhooks-integration-guide
//! and the capture notes (external-apis.md, Aloware). Captured deliveries show
//! `Call-Disposed` repeating the disposition seconds later, `Recording-Saved`
//! as the only event with `direct_recording_url`, the summary event holding
//! no transcript text, `transcription.open_search.saved` with the text, and
//! transcript events nesting the call id in `body.communication.id`.
//! [`captured_completed_call`] and [`captured_failed_dial`] replay the
//! captured sequences with their timing ([`AlowareSim::replay`]).

use std::sync::{Arc, Mutex};

use axum::http::header;
use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::server::{http_client, lock};
use crate::{SimError, timefmt};

/// How a delivery authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlowareAuth {
    None,
    /// `Authorization: Bearer <token>`
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`
    Basic(String, String),
}

/// Which way a call went (`direction`: 1 inbound, 2 outbound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Connected and talked.
    Completed,
    /// The other side never picked up.
    Unanswered,
    /// The agent's leg was never answered; the lead was never dialled.
    Failed,
}

/// A contact as Aloware embeds it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlowareContact {
    /// An int or a string (`ct_7788`).
    pub id: Value,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub email: Option<String>,
    pub company_name: Option<String>,
}

/// A call communication, rendered into event bodies.
#[derive(Clone, Debug, PartialEq)]
pub struct AlowareCall {
    /// An int (`940868616`) or a string (`cw_12345`).
    pub id: Value,
    pub direction: Direction,
    pub outcome: Outcome,
    /// Seconds, ring time included.
    pub duration: u32,
    pub talk_time: u32,
    pub wait_time: u32,
    /// `call_disposition` id and name, when the agent chose one.
    pub disposition: Option<(u64, String)>,
    pub has_recording: bool,
    /// Known once the recording is saved.
    pub recording_url: Option<String>,
    pub has_transcription: bool,
    /// The contact's number.
    pub lead_number: String,
    /// The company line used.
    pub incoming_number: String,
    pub contact: AlowareContact,
    pub campaign_id: Value,
    /// The agent's Aloware user id.
    pub user_id: u64,
    pub notes: Option<String>,
    pub created_at: OffsetDateTime,
    /// Send the numeric fields (`duration`, `talk_time`, `user_id`, ...) as
    /// strings, as some Aloware deliveries do.
    pub numbers_as_strings: bool,
}

impl AlowareCall {
    /// The captured call's shape (940868616: outbound, completed, 66 s with
    /// 63 s of talk, a recording, no disposition) under the id `id`, made
    /// by Aloware user `user_id`: a call that reaches Kendo once its
    /// recording is saved.
    pub fn captured(id: u64, user_id: u64) -> AlowareCall {
        AlowareCall {
            id: json!(id),
            direction: Direction::Outbound,
            outcome: Outcome::Completed,
            duration: 66,
            talk_time: 63,
            wait_time: 2,
            disposition: None,
            has_recording: true,
            recording_url: None,
            has_transcription: false,
            lead_number: "+12025550142".into(),
            incoming_number: "+14155550199".into(),
            contact: AlowareContact {
                id: json!(155_092_004u64),
                first_name: "Aloware".into(),
                last_name: "Capture".into(),
                phone_number: "+12025550142".into(),
                email: None,
                company_name: None,
            },
            campaign_id: json!(63_949),
            user_id,
            notes: None,
            created_at: time::macros::datetime!(2026-08-05 20:58:49 UTC),
            numbers_as_strings: false,
        }
    }

    pub(crate) fn num(&self, n: u64) -> Value {
        if self.numbers_as_strings {
            Value::String(n.to_string())
        } else {
            json!(n)
        }
    }

    /// The call `body` of a call event.
    pub fn body(&self) -> Value {
        let (current, current2, disposition, disposition2) = match self.outcome {
            Outcome::Completed => ("completed", 9, "completed", 4),
            Outcome::Unanswered => ("completed", 9, "unanswered", 3),
            Outcome::Failed => ("failed", 9, "failed", 5),
        };
        json!({
            "id": self.id,
            "type": 1,
            "direction": match self.direction { Direction::Inbound => 1, Direction::Outbound => 2 },
            "duration": self.num(u64::from(self.duration)),
            "talk_time": self.num(u64::from(self.talk_time)),
            "wait_time": self.num(u64::from(self.wait_time)),
            "current_status": current,
            "current_status2": current2,
            "disposition_status": disposition,
            "disposition_status2": disposition2,
            "call_disposition_id": self.disposition.as_ref().map(|(id, _)| self.num(*id)),
            "call_disposition": self.disposition.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
            "has_recording": self.has_recording,
            "has_transcription": self.has_transcription,
            "direct_recording_url": self.recording_url,
            "lead_number": self.lead_number,
            "incoming_number": self.incoming_number,
            "contact_id": self.contact.id,
            "campaign_id": self.campaign_id,
            "user_id": self.num(self.user_id),
            "contact": contact_json(&self.contact),
            "notes": self.notes,
            "created_at": timefmt::aloware(self.created_at),
            "updated_at": timefmt::aloware(self.created_at + time::Duration::seconds(i64::from(self.duration))),
        })
    }
}

fn contact_json(c: &AlowareContact) -> Value {
    json!({
        "id": c.id,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "name": format!("{} {}", c.first_name, c.last_name),
        "phone_number": c.phone_number,
        "email": c.email,
        "company_name": c.company_name,
    })
}

fn envelope(event: &str, body: Value) -> Value {
    json!({ "event": event, "body": body })
}

/// `OutboundPhoneCall-DispositionCompleted` or
/// `InboundPhoneCall-DispositionCompleted`, by the call's direction.
pub fn disposition_completed(call: &AlowareCall) -> Value {
    let name = match call.direction {
        Direction::Outbound => "OutboundPhoneCall-DispositionCompleted",
        Direction::Inbound => "InboundPhoneCall-DispositionCompleted",
    };
    envelope(name, call.body())
}

/// `OutboundPhoneCall-DispositionFailed` or the inbound one.
pub fn disposition_failed(call: &AlowareCall) -> Value {
    let name = match call.direction {
        Direction::Outbound => "OutboundPhoneCall-DispositionFailed",
        Direction::Inbound => "InboundPhoneCall-DispositionFailed",
    };
    envelope(name, call.body())
}

/// `Call-Disposed`: the same disposition again, a few seconds later.
pub fn call_disposed(call: &AlowareCall) -> Value {
    envelope("Call-Disposed", call.body())
}

/// `Recording-Saved`: the call body with `direct_recording_url` set.
pub fn recording_saved(call: &AlowareCall, url: &str) -> Value {
    let mut c = call.clone();
    c.has_recording = true;
    c.recording_url = Some(url.to_owned());
    envelope("Recording-Saved", c.body())
}

/// The ids Aloware puts in a transcript event's `transcription`: an object
/// naming the transcription, not its text (captured traffic).
fn transcription_ids(call: &AlowareCall) -> Value {
    json!({
        "id": 88_121,
        "transcription_id": format!("dg_{}", call.id.to_string().trim_matches('"')),
        "driver": "deepgram",
    })
}

/// The call as a transcript event names it: `communication`, with no
/// top-level `id` (captured traffic).
fn communication(call: &AlowareCall) -> Value {
    json!({
        "id": call.id,
        "type": 1,
        "direction": match call.direction { Direction::Inbound => 1, Direction::Outbound => 2 },
        "created_at": timefmt::aloware(call.created_at),
        "user_id": call.user_id,
    })
}

/// `transcription.call.summarized`: the AI summary only. Its
/// `transcription` is an object of ids, not text; the call id is in
/// `communication.id`. Envelope keys `summary, json_summary, transcription,
/// contact, communication` as captured (external-apis.md, Aloware; the n8n
/// node `aloware/n8n-nodes-aloware` nodes/AlowareTrigger names the event).
pub fn call_summarized(call: &AlowareCall, summary: &str) -> Value {
    envelope(
        "transcription.call.summarized",
        json!({
            "summary": summary,
            "json_summary": { "summary": summary, "sentiment": "positive" },
            "transcription": transcription_ids(call),
            "contact": contact_json(&call.contact),
            "communication": communication(call),
        }),
    )
}

/// `transcription.open_search.saved`, about 20 ms after the summary: the
/// text, in `parsed_transcription.messages[{speaker, text, start}]`, one
/// message per `Speaker: text` line of `transcript`. Envelope keys
/// `parsed_transcription, transcription, contact, communication, summary`
/// as captured; the messages' shape has no public reference beyond the
/// capture notes (docs/vendor-contracts.md, Aloware).
pub fn transcript_saved(call: &AlowareCall, summary: &str, transcript: &str) -> Value {
    let mut start = 0u64;
    let messages: Vec<Value> = transcript
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (speaker, text) = line.split_once(": ").unwrap_or(("Speaker", line));
            let message =
                json!({"speaker": speaker, "text": text, "start": start, "end": start + 2_300});
            start += 2_500;
            message
        })
        .collect();
    envelope(
        "transcription.open_search.saved",
        json!({
            "parsed_transcription": {
                "messages": messages,
                "talk_time_analysis": { "AGENT": 58, "CONTACT": 42 },
            },
            "transcription": transcription_ids(call),
            "summary": summary,
            "contact": contact_json(&call.contact),
            "communication": communication(call),
        }),
    )
}

/// One delivery of a replayed sequence: when (after the first) and what.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    pub at: std::time::Duration,
    pub payload: Value,
}

impl Scheduled {
    /// The envelope's event name.
    pub fn event(&self) -> &str {
        self.payload
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

fn at_ms(ms: u64, payload: Value) -> Scheduled {
    Scheduled {
        at: std::time::Duration::from_millis(ms),
        payload,
    }
}

/// `OutboundPhoneCall` / `InboundPhoneCall` as captured when a call is
/// placed: `current_status2` 1, `disposition_status2` 1, the counters 0,
/// `customer_leg_status` null, and `current_status`, `disposition_status`,
/// `direct_recording_url` and `call_disposition` absent (not null).
pub fn initiated(call: &AlowareCall) -> Value {
    let name = match call.direction {
        Direction::Outbound => "OutboundPhoneCall",
        Direction::Inbound => "InboundPhoneCall",
    };
    let mut body = call.body();
    if let Some(fields) = body.as_object_mut() {
        for key in [
            "current_status",
            "disposition_status",
            "direct_recording_url",
            "call_disposition",
        ] {
            fields.remove(key);
        }
        fields.insert("current_status2".into(), json!(1));
        fields.insert("disposition_status2".into(), json!(1));
        fields.insert("call_disposition_id".into(), Value::Null);
        fields.insert("customer_leg_status".into(), Value::Null);
        fields.insert("has_recording".into(), json!(false));
        fields.insert("has_transcription".into(), json!(false));
        for key in ["talk_time", "wait_time", "duration"] {
            fields.insert(key.into(), call.num(0));
        }
    }
    envelope(name, body)
}

/// A call event without `direct_recording_url`: captured, only
/// `Recording-Saved` carries it.
fn without_recording_url(mut event: Value) -> Value {
    if let Some(body) = event.get_mut("body").and_then(Value::as_object_mut) {
        body.remove("direct_recording_url");
    }
    event
}

/// The captured sequence of a completed call, offsets as Aloware sent them
/// for call 940868616 (external-apis.md, Aloware: "Captured real timing"):
/// `OutboundPhoneCall` 0 s, `...-DispositionCompleted` 70.365 s
/// (`has_transcription` false although a transcript follows),
/// `Recording-Saved` 74.375 s (the only one with `direct_recording_url`),
/// `Call-Disposed` 77.001 s (the same state again), the summary 118.634 s
/// and the transcript 118.651 s.
pub fn captured_completed_call(
    call: &AlowareCall,
    recording_url: &str,
    summary: &str,
    transcript: &str,
) -> Vec<Scheduled> {
    let mut done = call.clone();
    done.outcome = Outcome::Completed;
    done.has_recording = true;
    done.has_transcription = false;
    done.recording_url = None;
    vec![
        at_ms(0, initiated(call)),
        at_ms(70_365, without_recording_url(disposition_completed(&done))),
        at_ms(74_375, recording_saved(&done, recording_url)),
        at_ms(77_001, without_recording_url(call_disposed(&done))),
        at_ms(118_634, call_summarized(&done, summary)),
        at_ms(118_651, transcript_saved(&done, summary, transcript)),
    ]
}

/// The captured failed dial: the agent's leg rang 30 s unanswered, the lead
/// was never dialled. `OutboundPhoneCall` 0 s, `...-DispositionFailed`
/// 31.746 s with `wait_time` 30, `talk_time` 0, `customer_leg_status` null.
pub fn captured_failed_dial(call: &AlowareCall) -> Vec<Scheduled> {
    let mut failed = call.clone();
    failed.outcome = Outcome::Failed;
    failed.wait_time = 30;
    failed.talk_time = 0;
    failed.duration = 30;
    failed.has_recording = false;
    failed.recording_url = None;
    failed.disposition = None;
    let mut event = disposition_failed(&failed);
    if let Some(body) = event.get_mut("body").and_then(Value::as_object_mut) {
        body.insert("customer_leg_status".into(), Value::Null);
    }
    vec![at_ms(0, initiated(call)), at_ms(31_746, event)]
}

/// `InboundSMS-DispositionCompleted`: a text message (`type` 2), not a call.
pub fn inbound_sms(
    id: u64,
    contact: &AlowareContact,
    user_id: u64,
    text: &str,
    at: OffsetDateTime,
) -> Value {
    envelope(
        "InboundSMS-DispositionCompleted",
        json!({
            "id": id,
            "type": 2,
            "direction": 1,
            "duration": 0,
            "talk_time": 0,
            "current_status": "completed",
            "disposition_status": "completed",
            "body": text,
            "has_recording": false,
            "has_transcription": false,
            "lead_number": contact.phone_number,
            "contact_id": contact.id,
            "user_id": user_id,
            "contact": contact_json(contact),
            "created_at": timefmt::aloware(at),
        }),
    )
}

/// What the "test" button of Aloware's webhook settings sends.
pub fn test_payload() -> Value {
    json!({ "test_payload": true })
}

/// One delivery made.
#[derive(Clone, Debug, PartialEq)]
pub struct AlowareDelivery {
    pub url: String,
    /// The envelope's `event`, when it has one.
    pub event: Option<String>,
    /// The receiver's status; `None` when no answer came.
    pub status: Option<u16>,
}

/// The Aloware webhook sender. Cheap to clone.
#[derive(Clone)]
pub struct AlowareSim {
    client: reqwest::Client,
    log: Arc<Mutex<Vec<AlowareDelivery>>>,
}

impl AlowareSim {
    pub fn new() -> Result<Self, SimError> {
        Ok(Self {
            client: http_client()?,
            log: Arc::default(),
        })
    }

    /// Posts `payload` once and returns the status. Aloware never retries,
    /// even after a 500: a receiver that fails loses the event.
    pub async fn deliver(
        &self,
        url: &str,
        auth: &AlowareAuth,
        payload: &Value,
    ) -> Result<u16, SimError> {
        let mut req = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "GuzzleHttp/7")
            .body(payload.to_string());
        match auth {
            AlowareAuth::None => {}
            AlowareAuth::Bearer(t) => {
                req = req.header(header::AUTHORIZATION, format!("Bearer {t}"))
            }
            AlowareAuth::Basic(user, pass) => {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                req = req.header(header::AUTHORIZATION, format!("Basic {token}"));
            }
        }
        let result = crate::server::deliver(url, req.send()).await;
        lock(&self.log).push(AlowareDelivery {
            url: url.to_owned(),
            event: payload
                .get("event")
                .and_then(Value::as_str)
                .map(str::to_owned),
            status: result.as_ref().ok().copied(),
        });
        result
    }

    /// Delivers `sequence` in order, each at its offset divided by
    /// `time_scale` (1.0: the captured timing; 1000.0: 118 s in 118 ms),
    /// and returns each status. Aloware never retries, so neither does this.
    pub async fn replay(
        &self,
        url: &str,
        auth: &AlowareAuth,
        sequence: &[Scheduled],
        time_scale: f64,
    ) -> Vec<Result<u16, SimError>> {
        let start = tokio::time::Instant::now();
        let scale = if time_scale > 0.0 { time_scale } else { 1.0 };
        let mut out = Vec::new();
        for step in sequence {
            tokio::time::sleep_until(start + step.at.div_f64(scale)).await;
            out.push(self.deliver(url, auth, &step.payload).await);
        }
        out
    }

    /// Every delivery made, in order.
    pub fn deliveries(&self) -> Vec<AlowareDelivery> {
        lock(&self.log).clone()
    }
}
