//! The user's rules and the decision about a call, the same for every source.
//!
//! Each source module reads its own records into [`CallFacts`]: what the
//! source says about the call, normalised but not yet judged. [`decide`] then
//! applies one sequence of checks, so a Salesloft call and an Aloware call
//! with the same facts get the same decision and the same wording:
//!
//! 1. finished? (`not-completed` skip, `in-progress` wait; also `not-a-call`
//!    and `archived`);
//! 2. media: a recording URL and/or a transcript, else `recording-processing`
//!    or `transcript-pending` waits, then notes standing in for a transcript,
//!    then a `no-media` skip;
//! 3. `rules.min-duration-seconds` (an unknown duration passes);
//! 4. `rules.allowed-dispositions`;
//! 5. the rep: the rep directory first, then the source's own record.
//!
//! The title template is checked before anything else, so a bad template is
//! an error on every call rather than only on those that reach the end.

use crate::prelude::*;

use crate::fields::Outcome;
use crate::types::{
    Call, Decision, Direction, FieldProblem, InputError, RepEntry, Rules, SkipCode, SkipReason,
    Source, SyncMethod, WaitCode, WaitReason,
};

/// Where a call stands, as its source reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    /// Over, or the source does not say otherwise.
    Finished,
    /// Still ringing or talking; carries the status.
    Ongoing(String),
    /// Over without a conversation; carries the status.
    NotCompleted(String),
    /// Not a call at all; carries what it is, e.g. `an SMS`.
    NotACall(String),
    /// Deleted or archived in the source.
    Archived,
}

/// What a status word means, in any source's spelling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StatusClass {
    Finished,
    InProgress,
    NotCompleted,
    Unknown,
}

/// Classifies a status: case, `_`, `-` and spaces do not matter
/// (`IN_PROGRESS`, `in-progress` and `In Progress` are one status).
pub(crate) fn classify_status(raw: &str) -> StatusClass {
    let normal: String = raw
        .trim()
        .chars()
        .filter_map(|c| match c {
            '_' | '-' | ' ' => None,
            c => Some(c.to_ascii_lowercase()),
        })
        .collect();
    match normal.as_str() {
        "completed" | "complete" | "answered" | "finished" | "done" | "ended" | "closed" => {
            StatusClass::Finished
        }
        "ringing" | "inprogress" | "queued" | "initiated" | "connecting" | "callingcrmuser"
        | "dialing" | "hold" | "onhold" | "transferring" | "greeting" | "ringall" | "live" => {
            StatusClass::InProgress
        }
        "noanswer" | "busy" | "failed" | "canceled" | "cancelled" | "missed" | "abandoned"
        | "deadend" | "invalid" | "voicemail" | "missed+voicemail" | "rejected" | "declined"
        | "unanswered" | "notanswered" | "error" => StatusClass::NotCompleted,
        _ => StatusClass::Unknown,
    }
}

/// What a status the bridge does not recognise means for a source.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WhenUnknown {
    /// Carry on: the media and the other checks decide.
    Passes,
    /// The source lists every finished status, so anything else is not one.
    NotCompleted,
}

/// The progress given by a source's statuses in order of authority: the
/// first one recognised decides.
pub(crate) fn progress<'a>(
    statuses: impl IntoIterator<Item = &'a str>,
    when_unknown: WhenUnknown,
) -> Progress {
    let mut unknown = None;
    for status in statuses {
        match classify_status(status) {
            StatusClass::Finished => return Progress::Finished,
            StatusClass::InProgress => return Progress::Ongoing(status.to_owned()),
            StatusClass::NotCompleted => return Progress::NotCompleted(status.to_owned()),
            StatusClass::Unknown => {
                unknown.get_or_insert(status);
            }
        }
    }
    match (unknown, when_unknown) {
        (Some(status), WhenUnknown::NotCompleted) => Progress::NotCompleted(status.to_owned()),
        _ => Progress::Finished,
    }
}

/// Reads a direction in the spellings sources use for words.
pub(crate) fn parse_direction(raw: &str) -> Option<Direction> {
    let word = raw.trim();
    if crate::fields::is_one_of(word, &["inbound", "incoming", "in"]) {
        Some(Direction::Inbound)
    } else if crate::fields::is_one_of(word, &["outbound", "outgoing", "out"]) {
        Some(Direction::Outbound)
    } else {
        None
    }
}

/// The direction as it appears in `metadata`.
pub(crate) fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

/// What the source offers Kendo to analyse.
#[derive(Debug, Default)]
pub(crate) struct Media {
    /// A recording URL ready to download.
    pub audio_url: Option<String>,
    /// A recording that exists but is not ready; carries its status.
    pub recording_pending: Option<String>,
    pub transcript: Option<String>,
    /// The source says a transcript is coming.
    pub transcript_pending: bool,
    /// Notes that stand in for a transcript when nothing else is there.
    pub notes: Option<String>,
}

/// Who made the call, as the source knows them.
#[derive(Debug, Default)]
pub(crate) struct Rep {
    /// Rep-directory keys, most specific first: ids, then emails.
    pub keys: Vec<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// How to name them in a reason, e.g. `Salesloft user 1001`.
    pub who: String,
}

impl Rep {
    /// Adds a directory key unless it is already there.
    pub(crate) fn add_key(&mut self, key: Option<&str>) {
        if let Some(key) = key.map(str::trim).filter(|key| !key.is_empty())
            && !self.keys.iter().any(|known| same_key(known, key))
        {
            self.keys.push(key.to_owned());
        }
    }
}

/// A call read from a source, before the rules are applied.
#[derive(Debug)]
pub(crate) struct CallFacts {
    pub source: Source,
    pub id: String,
    pub progress: Progress,
    pub media: Media,
    pub duration_seconds: Option<u32>,
    pub disposition: Option<String>,
    pub direction: Option<Direction>,
    /// The source's own title (`hs_call_title`).
    pub title: Option<String>,
    /// RFC 3339 in UTC.
    pub started_at: Option<String>,
    pub rep: Rep,
    pub metadata: Vec<(String, String)>,
    /// Optional fields that could not be read and were left out.
    pub warnings: Vec<FieldProblem>,
}

/// Appends a metadata entry when there is a value.
pub(crate) fn push_metadata(metadata: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    if let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) {
        metadata.push((key.to_owned(), value.to_owned()));
    }
}

pub(crate) fn source_name(source: Source) -> &'static str {
    match source {
        Source::Salesloft => "Salesloft",
        Source::Hubspot => "HubSpot",
        Source::Aloware => "Aloware",
    }
}

fn default_template(source: Source) -> &'static str {
    match source {
        Source::Salesloft | Source::Aloware => "{direction} - {disposition}||{disposition}",
        Source::Hubspot => "{title}||{direction} - {disposition}||{disposition}",
    }
}

/// Applies the rules to a call, then the team's mapper to the result.
/// `raw` is the source's record as it arrived, shown to the mapper.
pub(crate) fn decide(
    facts: CallFacts,
    raw: &str,
    rules: &Rules,
    via: SyncMethod,
) -> Outcome<Decision> {
    let record = crate::mapping::record(&facts, raw);
    let proposed = propose(facts, rules, via)?;
    Ok(crate::mapping::consult(&record, proposed))
}

/// The built-in decision: the rules alone.
fn propose(facts: CallFacts, rules: &Rules, via: SyncMethod) -> Outcome<Decision> {
    let template = Template::parse(
        rules
            .title_template
            .as_deref()
            .unwrap_or(default_template(facts.source)),
    )?;
    let name = source_name(facts.source);
    let id = facts.id.as_str();

    match &facts.progress {
        Progress::Finished => {}
        Progress::Ongoing(status) => {
            return Ok(wait(
                WaitCode::InProgress,
                format!(
                    "{name} call {id} is still in progress (status \"{status}\"); \
                     it will be checked again when {name} reports a change."
                ),
            ));
        }
        Progress::NotCompleted(status) => {
            return Ok(skip(
                SkipCode::NotCompleted,
                format!(
                    "{name} call {id} did not complete (status \"{status}\"), \
                     so there is no conversation to analyse."
                ),
            ));
        }
        Progress::NotACall(what) => {
            return Ok(skip(
                SkipCode::NotACall,
                format!("{name} record {id} is {what}, not a call."),
            ));
        }
        Progress::Archived => {
            return Ok(skip(
                SkipCode::Archived,
                format!("{name} call {id} is archived in {name}."),
            ));
        }
    }

    let Media {
        audio_url,
        recording_pending,
        transcript,
        transcript_pending,
        notes,
    } = facts.media;
    let transcript = if audio_url.is_some() || transcript.is_some() {
        transcript
    } else if let Some(status) = recording_pending {
        return Ok(wait(
            WaitCode::RecordingProcessing,
            format!(
                "{name} call {id} has a recording that is still {status}; \
                 it will be sent once the recording is ready."
            ),
        ));
    } else if transcript_pending {
        return Ok(wait(
            WaitCode::TranscriptPending,
            format!(
                "{name} call {id} has no recording, and {name} says a transcript is \
                 on its way; the call will be sent when the transcript arrives."
            ),
        ));
    } else if notes.is_some() {
        notes
    } else {
        return Ok(skip(
            SkipCode::NoMedia,
            format!(
                "{name} call {id} has no recording and no transcript, \
                 so Kendo has nothing to analyse."
            ),
        ));
    };

    if let Some(duration) = facts.duration_seconds
        && duration < rules.min_duration_seconds
    {
        return Ok(skip(
            SkipCode::BelowMinimumDuration,
            format!(
                "{name} call {id} lasted {duration} s, under the {} s minimum \
                 in rules.min-duration-seconds.",
                rules.min_duration_seconds
            ),
        ));
    }

    if let Some(reason) = disposition_refusal(name, id, facts.disposition.as_deref(), rules) {
        return Ok(Decision::Skip(reason));
    }

    let (rep_name, rep_email) = match resolve_rep(name, id, facts.rep, &rules.rep_directory) {
        Ok(rep) => rep,
        Err(reason) => return Ok(Decision::Skip(reason)),
    };

    let title = template.render(&Values {
        direction: facts.direction,
        disposition: facts.disposition.as_deref(),
        title: facts.title.as_deref(),
        source: name,
        rep_name: rep_name.as_deref(),
    });

    Ok(Decision::Send(Call {
        source: facts.source,
        source_id: facts.id,
        title,
        rep_name,
        rep_email: Some(rep_email),
        started_at: facts.started_at,
        duration_seconds: facts.duration_seconds,
        audio_url,
        transcript,
        direction: facts.direction,
        disposition: facts.disposition,
        sync_method: via,
        metadata: facts.metadata,
        warnings: facts.warnings,
    }))
}

fn skip(code: SkipCode, detail: String) -> Decision {
    Decision::Skip(SkipReason { code, detail })
}

fn wait(code: WaitCode, detail: String) -> Decision {
    Decision::Wait(WaitReason { code, detail })
}

fn disposition_refusal(
    name: &str,
    id: &str,
    disposition: Option<&str>,
    rules: &Rules,
) -> Option<SkipReason> {
    let allowed: Vec<&str> = rules
        .allowed_dispositions
        .iter()
        .map(|label| label.trim())
        .filter(|label| !label.is_empty())
        .collect();
    if allowed.is_empty() {
        return None;
    }
    let quoted: Vec<String> = allowed.iter().map(|label| format!("\"{label}\"")).collect();
    let list = crate::fields::join(quoted.iter().map(String::as_str), ", ");
    let detail = match disposition {
        None => format!(
            "{name} call {id} has no disposition, and rules.allowed-dispositions \
             only lets through {list}."
        ),
        Some(label) if allowed.iter().any(|allowed| same_key(allowed, label)) => return None,
        Some(label) => format!(
            "{name} call {id} has disposition \"{label}\", which is not in \
             rules.allowed-dispositions ({list})."
        ),
    };
    Some(SkipReason {
        code: SkipCode::DispositionFiltered,
        detail,
    })
}

/// Keys, emails and labels compare without regard to ASCII case (Unicode
/// case tables would cost the component more than they could ever match).
fn same_key(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The rep's name and email: the rep directory by key first, then what the
/// source says.
fn resolve_rep(
    name: &str,
    id: &str,
    rep: Rep,
    directory: &[RepEntry],
) -> Result<(Option<String>, String), SkipReason> {
    let listed = rep.keys.iter().find_map(|key| {
        directory
            .iter()
            .find(|entry| same_key(&entry.key, key))
            .map(|entry| (key, entry))
    });
    let (email, origin, display) = match listed {
        Some((key, entry)) => (
            entry.email.trim().to_owned(),
            format!("the rep directory entry \"{key}\""),
            entry
                .name
                .as_deref()
                .map(str::trim)
                .filter(|display| !display.is_empty())
                .map(str::to_owned)
                .or(rep.name),
        ),
        None => match rep.email {
            Some(email) => (email, format!("{}'s record", rep.who), rep.name),
            None => {
                let detail = match rep.keys.first() {
                    Some(key) => format!(
                        "{name} call {id}: no email is known for {}. Add the rep to the \
                         rep directory (key \"{key}\") with their Kendo email.",
                        rep.who
                    ),
                    None => format!(
                        "{name} call {id} names no rep (no user id or email), so it cannot \
                         be matched to a Kendo team member."
                    ),
                };
                return Err(SkipReason {
                    code: SkipCode::UnknownRep,
                    detail,
                });
            }
        },
    };
    // The same check `build-ingest` applies, so a call sent here is never
    // refused there for its email.
    if !crate::kendo::is_valid_email(&email) {
        return Err(SkipReason {
            code: SkipCode::InvalidRepEmail,
            detail: format!(
                "{name} call {id}: the rep email \"{email}\" from {origin} is not a valid address."
            ),
        });
    }
    Ok((display, email))
}

/// A placeholder in a title template.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placeholder {
    Direction,
    Disposition,
    Title,
    Source,
    RepName,
}

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Value(Placeholder),
}

/// A parsed `rules.title-template`.
#[derive(Debug)]
struct Template {
    alternatives: Vec<Vec<Piece>>,
}

/// The values placeholders stand for.
struct Values<'a> {
    direction: Option<Direction>,
    disposition: Option<&'a str>,
    title: Option<&'a str>,
    source: &'a str,
    rep_name: Option<&'a str>,
}

impl Values<'_> {
    fn get(&self, placeholder: Placeholder) -> Option<&str> {
        let value = match placeholder {
            Placeholder::Direction => self.direction.map(|direction| match direction {
                Direction::Inbound => "Inbound",
                Direction::Outbound => "Outbound",
            }),
            Placeholder::Disposition => self.disposition,
            Placeholder::Title => self.title,
            Placeholder::Source => Some(self.source),
            Placeholder::RepName => self.rep_name,
        };
        value.map(str::trim).filter(|value| !value.is_empty())
    }
}

const PLACEHOLDERS: &str = "{direction}, {disposition}, {title}, {source} and {rep_name}";

fn template_error(detail: String) -> crate::fields::Fault {
    InputError::InvalidValue(FieldProblem {
        field: "rules.title-template".to_owned(),
        detail,
    })
    .into()
}

impl Template {
    fn parse(template: &str) -> Outcome<Template> {
        let mut alternatives = Vec::new();
        let mut pieces = Vec::new();
        let mut text = String::new();
        // Character positions (1-based) make errors easy to find in a config file.
        let mut chars = template.chars().enumerate().peekable();
        while let Some((at, c)) = chars.next() {
            // `{{`, `}}` and `||`: one look-ahead for the three.
            let doubled =
                matches!(c, '{' | '}' | '|') && chars.next_if(|&(_, next)| next == c).is_some();
            match c {
                '{' | '}' if doubled => text.push(c),
                '|' if doubled => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(core::mem::take(&mut text)));
                    }
                    alternatives.push(core::mem::take(&mut pieces));
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(template_error(format!(
                            "the '{{' at character {} is never closed; write {{{{ for a literal brace",
                            at + 1
                        )));
                    }
                    let placeholder = match name.trim() {
                        "direction" => Placeholder::Direction,
                        "disposition" => Placeholder::Disposition,
                        "title" => Placeholder::Title,
                        "source" => Placeholder::Source,
                        "rep_name" => Placeholder::RepName,
                        _ => {
                            return Err(template_error(format!(
                                "unknown placeholder {{{name}}} at character {}; \
                                 the placeholders are {PLACEHOLDERS}",
                                at + 1
                            )));
                        }
                    };
                    if !text.is_empty() {
                        pieces.push(Piece::Text(core::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Value(placeholder));
                }
                '}' => {
                    return Err(template_error(format!(
                        "the '}}' at character {} has no matching '{{'; write }}}} for a literal brace",
                        at + 1
                    )));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        alternatives.push(pieces);
        Ok(Template { alternatives })
    }

    /// The first alternative whose placeholders all have values and whose
    /// result is not blank, or `<Source> call`.
    fn render(&self, values: &Values<'_>) -> String {
        self.alternatives
            .iter()
            .find_map(|pieces| {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push_str(text),
                        Piece::Value(placeholder) => out.push_str(values.get(*placeholder)?),
                    }
                }
                let out = out.trim();
                (!out.is_empty()).then(|| out.to_owned())
            })
            .unwrap_or_else(|| format!("{} call", values.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(disposition: Option<&'a str>, title: Option<&'a str>) -> Values<'a> {
        Values {
            direction: Some(Direction::Outbound),
            disposition,
            title,
            source: "Salesloft",
            rep_name: Some("Jamie Rivera"),
        }
    }

    fn render(template: &str, values: &Values<'_>) -> String {
        Template::parse(template).unwrap().render(values)
    }

    fn error_detail(template: &str) -> String {
        match Template::parse(template).map_err(InputError::from) {
            Err(InputError::InvalidValue(problem)) => {
                assert_eq!(problem.field, "rules.title-template");
                problem.detail
            }
            other => panic!("expected invalid-value for {template:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_first_alternative_with_every_value_wins() {
        let template = "{title}||{direction} - {disposition}||{disposition}";
        assert_eq!(
            render(template, &values(Some("Connected"), None)),
            "Outbound - Connected"
        );
        assert_eq!(
            render(template, &values(Some("Connected"), Some("Discovery"))),
            "Discovery"
        );
    }

    #[test]
    fn no_usable_alternative_falls_back_to_the_source_name() {
        assert_eq!(
            render("{title}||{disposition}", &values(None, None)),
            "Salesloft call"
        );
        assert_eq!(render("", &values(None, None)), "Salesloft call");
        assert_eq!(render("  ||{title}", &values(None, None)), "Salesloft call");
    }

    #[test]
    fn blank_values_count_as_missing() {
        assert_eq!(
            render("{disposition}||{source}", &values(Some("  "), None)),
            "Salesloft"
        );
    }

    #[test]
    fn doubled_braces_are_literal_and_a_single_pipe_is_text() {
        assert_eq!(
            render("{{{rep_name}}} | {source}", &values(None, None)),
            "{Jamie Rivera} | Salesloft"
        );
    }

    #[test]
    fn unknown_placeholders_are_named_with_their_position() {
        let detail = error_detail("{direction} - {agent}");
        assert!(detail.contains("{agent}"), "{detail}");
        assert!(detail.contains("character 15"), "{detail}");
    }

    #[test]
    fn unbalanced_braces_are_refused() {
        assert!(error_detail("{direction").contains("never closed"));
        assert!(error_detail("direction}").contains("no matching"));
        assert!(error_detail("{}").contains("unknown placeholder {}"));
    }

    #[test]
    fn an_error_in_an_unused_alternative_is_still_an_error() {
        error_detail("{disposition}||{nope}");
    }

    #[test]
    fn statuses_are_classified_whatever_their_spelling() {
        assert_eq!(classify_status("IN_PROGRESS"), StatusClass::InProgress);
        assert_eq!(classify_status("in-progress"), StatusClass::InProgress);
        assert_eq!(classify_status("CALLING_CRM_USER"), StatusClass::InProgress);
        assert_eq!(classify_status("no-answer"), StatusClass::NotCompleted);
        assert_eq!(classify_status("NO_ANSWER"), StatusClass::NotCompleted);
        assert_eq!(classify_status("Completed"), StatusClass::Finished);
        assert_eq!(classify_status("teleported"), StatusClass::Unknown);
    }

    #[test]
    fn the_first_recognised_status_decides() {
        assert_eq!(
            progress(["weird", "busy", "completed"], WhenUnknown::Passes),
            Progress::NotCompleted("busy".into())
        );
        assert_eq!(progress(["weird"], WhenUnknown::Passes), Progress::Finished);
        assert_eq!(
            progress(["weird"], WhenUnknown::NotCompleted),
            Progress::NotCompleted("weird".into())
        );
        assert_eq!(progress([], WhenUnknown::NotCompleted), Progress::Finished);
    }
}
