//! Kendo Push API payloads, ingest responses and outgoing webhooks.

use crate::prelude::*;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::fields::{Fault, Outcome, missing};
use crate::kendo_api::{
    BuildError, Guest, IngestOutcome, IngestRequest, PayloadOptions, Rejection, RejectionKind,
    ResultEvent, Truncation, WebhookEvent,
};
use crate::types::{Call, FieldProblem, Header, InputError, SizeProblem, Source, SyncMethod};

impl Guest for crate::Plugin {
    fn build_ingest(call: Call, options: PayloadOptions) -> Result<IngestRequest, BuildError> {
        build_ingest(&call, options.max_body_bytes)
    }

    fn read_ingest_response(
        status: u16,
        headers: Vec<Header>,
        body: String,
        now_unix_seconds: u64,
    ) -> IngestOutcome {
        read_ingest_response(status, &headers, &body, now_unix_seconds)
    }

    fn read_webhook(body: String) -> Result<WebhookEvent, InputError> {
        read_webhook(&body).map_err(InputError::from)
    }
}

/// Whether `s` is an address Kendo can match a team member by: one `@`, a
/// local part without spaces or control characters, a dotted domain without
/// empty labels, at most 254 bytes (the SMTP path limit).
pub(crate) fn is_valid_email(s: &str) -> bool {
    if s.is_empty() || s.len() > 254 {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    if local.is_empty() || domain.contains('@') {
        return false;
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if !domain.contains('.') {
        return false;
    }
    domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    })
}

// ---------------------------------------------------------------------------
// build-ingest
// ---------------------------------------------------------------------------

/// The Push API body. Field order here is the order on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IngestBody<'a> {
    call_title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rep_name: Option<&'a str>,
    rep_email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript: Option<&'a str>,
    metadata: Metadata<'a>,
}

/// `metadata` as an object whose keys keep the order they were pushed in (a
/// map type would sort them, and people read these in Kendo's UI).
struct Metadata<'a>(Vec<(&'a str, &'a str)>);

impl Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The marker's text around its two numbers:
/// `\n[transcript truncated by kendo-bridge: kept K of N characters]`.
const MARKER_HEAD: &str = "\n[transcript truncated by kendo-bridge: kept ";
const MARKER_MIDDLE: &str = " of ";
const MARKER_TAIL: &str = " characters]";

fn source_keys(source: Source) -> (&'static str, &'static str) {
    match source {
        Source::Salesloft => ("salesloft", "salesloftCallId"),
        Source::Hubspot => ("hubspot", "hubspotCallId"),
        Source::Aloware => ("aloware", "alowareCallId"),
    }
}

fn sync_method_name(method: SyncMethod) -> &'static str {
    match method {
        SyncMethod::Polling => "polling",
        SyncMethod::Webhook => "webhook",
        SyncMethod::Workflow => "workflow",
    }
}

/// A value that carries nothing is treated as absent, so Kendo never gets an
/// empty `audioUrl` it would try to download.
fn present(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|v| !v.trim().is_empty())
}

fn build_ingest(call: &Call, max_body_bytes: u64) -> Result<IngestRequest, BuildError> {
    let audio_url = present(call.audio_url.as_ref());
    let transcript = present(call.transcript.as_ref());
    if audio_url.is_none() && transcript.is_none() {
        return Err(BuildError::NoMedia);
    }
    let rep_email = match call.rep_email.as_deref() {
        None | Some("") => return Err(BuildError::MissingRepEmail),
        Some(email) if !is_valid_email(email) => {
            return Err(BuildError::InvalidRepEmail(email.to_string()));
        }
        Some(email) => email,
    };
    if let Some(date) = call.started_at.as_deref()
        && crate::datetime::rfc3339(date).is_none()
    {
        return Err(BuildError::InvalidCallDate(date.to_string()));
    }

    let (source_name, call_id_key) = source_keys(call.source);
    let sync_method = sync_method_name(call.sync_method);
    let reserved = ["source", call_id_key, "syncMethod"];
    let mut metadata = Vec::with_capacity(call.metadata.len() + 3);
    metadata.push(("source", source_name));
    metadata.push((call_id_key, call.source_id.as_str()));
    // A repeated key would make the object ambiguous: Kendo's parser keeps
    // the last one, so the reserved keys must not be shadowed and the first
    // of any other duplicate wins.
    for (key, value) in &call.metadata {
        // A linear search: a call carries a handful of entries, and a set
        // type would cost the component kilobytes.
        if reserved.contains(&key.as_str())
            || metadata.iter().any(|(seen, _)| *seen == key.as_str())
        {
            continue;
        }
        metadata.push((key.as_str(), value.as_str()));
    }
    metadata.push(("syncMethod", sync_method));

    let mut body = IngestBody {
        call_title: &call.title,
        rep_name: present(call.rep_name.as_ref()),
        rep_email,
        call_date: call.started_at.as_deref(),
        duration: call.duration_seconds,
        audio_url,
        transcript,
        metadata: Metadata(metadata),
    };

    let full = to_json(&body)?;
    let full_len = byte_len(&full);
    if full_len <= max_body_bytes {
        return Ok(IngestRequest {
            body: full,
            truncated: None,
        });
    }
    let too_large = || {
        BuildError::TooLarge(SizeProblem {
            size: full_len,
            limit: max_body_bytes,
        })
    };
    let (Some(_), Some(transcript)) = (audio_url, transcript) else {
        return Err(too_large());
    };
    drop(full);

    body.transcript = Some("");
    let base_len = byte_len(&to_json(&body)?);
    let budget = max_body_bytes.checked_sub(base_len).ok_or_else(too_large)?;
    let (cut, truncation) = fit_transcript(transcript, budget).ok_or_else(too_large)?;
    let kept = transcript.get(..cut).ok_or_else(too_large)?;

    let shortened = format!(
        "{kept}{MARKER_HEAD}{}{MARKER_MIDDLE}{}{MARKER_TAIL}",
        truncation.kept_chars, truncation.original_chars
    );
    body.transcript = Some(&shortened);
    let fitted = to_json(&body)?;
    // The arithmetic above is exact; this guards the promise, not the maths.
    if byte_len(&fitted) > max_body_bytes {
        return Err(too_large());
    }
    Ok(IngestRequest {
        body: fitted,
        truncated: Some(truncation),
    })
}

/// Finds how much of `transcript` fits in `budget` bytes of JSON string
/// content together with the marker, in one pass over its characters.
/// Returns the byte index to cut at, or None when not even the marker fits.
fn fit_transcript(transcript: &str, budget: u64) -> Option<(usize, Truncation)> {
    let original = u64::try_from(transcript.chars().count()).unwrap_or(u64::MAX);
    let marker_len = |kept: u64| {
        // The marker's `\n` is two bytes once escaped.
        let fixed = MARKER_HEAD.len() + 1 + MARKER_MIDDLE.len() + MARKER_TAIL.len();
        u64::try_from(fixed).unwrap_or(u64::MAX) + decimal_digits(kept) + decimal_digits(original)
    };
    if marker_len(0) > budget {
        return None;
    }
    let mut used: u64 = 0;
    let mut kept: u64 = 0;
    let mut cut = 0;
    // Both the kept text and the marker only grow with K, so the first
    // character that does not fit ends the search.
    for (index, c) in transcript.char_indices() {
        let next_used = used.saturating_add(escaped_len(c));
        let next_kept = kept + 1;
        if next_used.saturating_add(marker_len(next_kept)) > budget {
            break;
        }
        used = next_used;
        kept = next_kept;
        cut = index + c.len_utf8();
    }
    Some((
        cut,
        Truncation {
            original_chars: original,
            kept_chars: kept,
        },
    ))
}

/// Bytes `c` takes inside a JSON string as serde_json writes it: quote,
/// backslash and the short control escapes take two, other control
/// characters six (`\u00XX`), everything else its UTF-8 length.
fn escaped_len(c: char) -> u64 {
    match c {
        '"' | '\\' | '\u{08}' | '\u{0C}' | '\n' | '\r' | '\t' => 2,
        '\u{00}'..='\u{1F}' => 6,
        _ => c.len_utf8() as u64,
    }
}

fn decimal_digits(mut n: u64) -> u64 {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

fn byte_len(s: &str) -> u64 {
    u64::try_from(s.len()).unwrap_or(u64::MAX)
}

fn to_json(body: &IngestBody<'_>) -> Result<String, BuildError> {
    // Serialising borrowed strings and integers cannot fail; a failure would
    // be a bug, reported as the payload being unusable rather than a trap.
    serde_json::to_string(body).map_err(|_| {
        BuildError::TooLarge(SizeProblem {
            size: u64::MAX,
            limit: 0,
        })
    })
}

// ---------------------------------------------------------------------------
// read-ingest-response
// ---------------------------------------------------------------------------

/// Used when a 429 carries no readable `Retry-After`: Kendo's limit is per
/// minute.
const DEFAULT_RETRY_AFTER: u32 = 60;
/// A longer wait is more likely a broken header than a real instruction.
const MAX_RETRY_AFTER: u32 = 3600;
/// Keeps a verbose error page from bloating the ledger.
const MAX_REASON_CHARS: usize = 500;

fn read_ingest_response(
    status: u16,
    headers: &[Header],
    body: &str,
    now_unix_seconds: u64,
) -> IngestOutcome {
    let json = serde_json::from_str::<Value>(body).ok();
    match status {
        200..=299 => IngestOutcome::Created(json.as_ref().and_then(created_call_id)),
        429 => IngestOutcome::RetryAfter(retry_after(headers, now_unix_seconds)),
        408 | 500..=599 => IngestOutcome::Retry(reason(status, json.as_ref())),
        _ => {
            let kind = match status {
                400 => RejectionKind::BadRequest,
                401 | 403 => RejectionKind::Unauthorized,
                413 => RejectionKind::TooLarge,
                _ => RejectionKind::Other,
            };
            IngestOutcome::Rejected(Rejection {
                kind,
                status,
                reason: reason(status, json.as_ref()),
            })
        }
    }
}

fn created_call_id(json: &Value) -> Option<String> {
    let data = json.get("data");
    [
        json.get("callId"),
        data.and_then(|d| d.get("callId")),
        json.get("id"),
        data.and_then(|d| d.get("id")),
    ]
    .into_iter()
    .flatten()
    .find_map(id_string)
}

/// An id as text: Kendo sends strings, but a number is just as usable.
fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(_) => Some(crate::fields::json_text(value)),
        _ => None,
    }
}

fn reason(status: u16, json: Option<&Value>) -> String {
    let from_body = json.and_then(|json| {
        let error = json.get("error");
        [
            error,
            error.and_then(|e| e.get("message")),
            json.get("message"),
            json.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
    });
    match from_body {
        Some(text) => clip(text, MAX_REASON_CHARS),
        None => status_text(status),
    }
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_string(),
    }
}

fn status_text(status: u16) -> String {
    let phrase = match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        // As u32: one integer formatter fewer in the component.
        _ => return format!("HTTP {}", u32::from(status)),
    };
    format!("{} {phrase}", u32::from(status))
}

/// Seconds to wait after a 429, always between 1 and [`MAX_RETRY_AFTER`]:
/// zero would send the next request straight into the same limit.
fn retry_after(headers: &[Header], now_unix_seconds: u64) -> u32 {
    let Some(value) = header(headers, "retry-after").map(str::trim) else {
        return DEFAULT_RETRY_AFTER;
    };
    let seconds = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too long for u64 is simply "very long".
        crate::fields::parse_u64(value).unwrap_or(u64::MAX)
    } else if let Some(at) = parse_http_date(value) {
        let now = i64::try_from(now_unix_seconds).unwrap_or(i64::MAX);
        u64::try_from(at.saturating_sub(now)).unwrap_or(0)
    } else {
        return DEFAULT_RETRY_AFTER;
    };
    u32::try_from(seconds.clamp(1, u64::from(MAX_RETRY_AFTER))).unwrap_or(MAX_RETRY_AFTER)
}

fn header<'h>(headers: &'h [Header], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.trim().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Reads an HTTP-date in any of the three forms RFC 9110 obliges a
/// recipient to accept, as Unix seconds:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` and
/// `Sun Nov  6 08:49:37 1994`.
fn parse_http_date(value: &str) -> Option<i64> {
    let mut tokens = value
        .split([' ', ',', '-'])
        .filter(|t| !t.is_empty())
        .skip(1); // the weekday, which adds nothing
    let first = tokens.next()?;
    let (day, month, year, clock) = if first.bytes().all(|b| b.is_ascii_digit()) {
        let month = tokens.next()?;
        let year = tokens.next()?;
        let clock = tokens.next()?;
        if !tokens.next()?.eq_ignore_ascii_case("GMT") {
            return None;
        }
        (first, month, year, clock)
    } else {
        let day = tokens.next()?;
        let clock = tokens.next()?;
        let year = tokens.next()?;
        (day, first, year, clock)
    };
    if tokens.next().is_some() {
        return None;
    }
    let small = |text: &str| u8::try_from(crate::fields::parse_u64(text)?).ok();
    let day = small(day)?;
    let month = month_from_abbreviation(month)?;
    let year: i32 = match year.len() {
        4 => i32::try_from(crate::fields::parse_i64(year)?).ok()?,
        // RFC 850's two-digit years: RFC 9110 reads far-future ones as the
        // past century; any date a server sends today is after 1970.
        2 => {
            let yy = i32::try_from(crate::fields::parse_i64(year)?).ok()?;
            if yy < 70 { 2000 + yy } else { 1900 + yy }
        }
        _ => return None,
    };
    let mut hms = clock.split(':');
    let hour = small(hms.next()?)?;
    let minute = small(hms.next()?)?;
    let second = small(hms.next()?)?;
    if hms.next().is_some() {
        return None;
    }
    crate::datetime::unix_seconds(
        i64::from(year),
        month,
        u32::from(day),
        u32::from(hour),
        u32::from(minute),
        u32::from(second),
    )
}

/// The month number (1 to 12) of an English abbreviation, in any case.
fn month_from_abbreviation(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let index = MONTHS
        .iter()
        .position(|abbr| abbr.eq_ignore_ascii_case(name))?;
    u32::try_from(index + 1).ok()
}

// ---------------------------------------------------------------------------
// read-webhook
// ---------------------------------------------------------------------------

fn read_webhook(body: &str) -> Outcome<WebhookEvent> {
    let json: Value = serde_json::from_str(body)
        .map_err(|e| Fault::from(InputError::InvalidJson(e.to_string())))?;
    let Value::Object(root) = &json else {
        return Err(wrong_type("$", "expected an object", &json));
    };
    let event = match root.get("event") {
        None | Some(Value::Null) => return Err(missing("event".to_string())),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(wrong_type("event", "expected a string", other)),
    };
    let (subject_key, make): (&str, fn(ResultEvent) -> WebhookEvent) = match event {
        "call.uploaded" => ("callId", WebhookEvent::CallUploaded),
        "ai.training.completed" => ("trainingId", WebhookEvent::TrainingCompleted),
        other => return Ok(WebhookEvent::Unknown(other.to_string())),
    };
    let data = match root.get("data") {
        None | Some(Value::Null) => return Err(missing("data".to_string())),
        Some(Value::Object(data)) => data,
        Some(other) => return Err(wrong_type("data", "expected an object", other)),
    };
    let is_test = match data.get("_isTest") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("data._isTest", "expected a boolean", other)),
    };
    // The "Send Test" button may leave ids out; a real delivery may not.
    let required =
        |map: &Map<String, Value>, key: &str, path: String| match optional_id(map, key, &path)? {
            Some(id) => Ok(id),
            None if is_test => Ok(String::new()),
            None => Err(missing(path)),
        };
    let id = required(root, "id", "id".to_string())?;
    let subject_id = required(data, subject_key, format!("data.{subject_key}"))?;
    let created_at = match root.get("created_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(wrong_type("created_at", "expected a string", other)),
    };
    Ok(make(ResultEvent {
        id,
        created_at,
        subject_id,
        agent_id: optional_id(data, "agentId", "data.agentId")?,
        agent_name: optional_text(data, "agentName", "data.agentName")?,
        user_id: optional_id(data, "userId", "data.userId")?,
        team_member_user_id: optional_id(data, "teamMemberUserId", "data.teamMemberUserId")?,
        duration_seconds: optional_number(data, "duration", "data.duration")?,
        ai_score: optional_number(data, "aiScore", "data.aiScore")?,
        is_test,
    }))
}

/// An identifier: a non-empty string, or a number taken as its text.
fn optional_id(map: &Map<String, Value>, key: &str, path: &str) -> Outcome<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(number @ Value::Number(_)) => Ok(Some(crate::fields::json_text(number))),
        Some(other) => Err(wrong_type(path, "expected a string or a number", other)),
    }
}

fn optional_text(map: &Map<String, Value>, key: &str, path: &str) -> Outcome<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(path, "expected a string", other)),
    }
}

/// A number that Kendo may send as JSON number or as text (`"87"`).
fn optional_number(map: &Map<String, Value>, key: &str, path: &str) -> Outcome<Option<f64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match crate::decimal::parse_f64(s.trim()) {
            Some(n) => Ok(Some(n)),
            None => Err(InputError::InvalidValue(FieldProblem {
                field: path.to_string(),
                detail: format!("expected a number, got {}", Quoted(s)),
            })
            .into()),
        },
        Some(other) => Err(wrong_type(path, "expected a number", other)),
    }
}

/// A string as `{:?}` writes it, without the Unicode tables `{:?}` needs
/// (kilobytes in the component) to decide which non-ASCII characters to
/// escape: those are written as they are, except C1 controls.
struct Quoted<'a>(&'a str);

impl core::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0' => f.write_str("\\0")?,
                c if c.is_control() => {
                    // At most 0x9f: two hex digits, the first dropped when 0.
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let code = u32::from(c) as usize;
                    f.write_str("\\u{")?;
                    if code >= 16 {
                        f.write_char(char::from(HEX[code >> 4 & 15]))?;
                    }
                    f.write_char(char::from(HEX[code & 15]))?;
                    f.write_char('}')?;
                }
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

#[inline(never)]
fn wrong_type(path: &str, expected: &str, found: &Value) -> Fault {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    InputError::WrongType(FieldProblem {
        field: path.to_string(),
        detail: format!("{expected}, found {found}"),
    })
    .into()
}
