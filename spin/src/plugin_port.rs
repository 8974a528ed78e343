//! The core's ports on Spin: the plugin's generated types in the core's
//! terms (plain conversions, so that the core decides what each plugin
//! answer becomes), Spin's SQLite as the database, the wall clock, and
//! the one team of the app's key.

use std::cell::{Cell, RefCell};

use kendo_bridge_core::Millis;
use kendo_bridge_core::decision::{BuildProblem, Built, Decided, InputProblem};
use kendo_bridge_core::inbox::{InboxPorts, KendoEvent};
use kendo_bridge_core::ledger::inbox::Cause;
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::ports::{
    AlowareEvent, CallDataRecord, CallPage, Decision as CoreDecision, HubspotCall, HubspotDelivery,
    HubspotPlugin, ListCursor, Listing, Plugin, Ports, Read, RecordPage, Rejected, SalesloftApi,
    SalesloftCall, SalesloftEvent, SalesloftInputs, SalesloftPlugin, SearchOptions, SearchPage,
    SourceApi, Transcription, TranscriptionPage, Trap, Via,
};
use kendo_bridge_core::sources::Lookups;
use kendo_bridge_core::sources::budget::{SALESLOFT_TEAM_POINTS, leave_to_others};
use kendo_bridge_core::sources::hubspot::{Association, Associations, Inputs, StoredCursor};

use crate::delivery::{Db, TEAM};
use crate::plugin::kendo::bridge::aloware::{self as aloware_api, Event};
use crate::plugin::kendo::bridge::hubspot::{
    self as hubspot_api, AssociationKind, CallInputs, Cursor, ListedCall,
};
use crate::plugin::kendo::bridge::kendo::{self as kendo_api, BuildError, PayloadOptions};
use crate::plugin::kendo::bridge::salesloft as salesloft_api;
use crate::plugin::kendo::bridge::types::{
    Call, Decision, HttpRequest, InputError, RejectedRecord, Rules, SyncMethod,
};

impl From<&InputError> for InputProblem {
    fn from(error: &InputError) -> InputProblem {
        match error.clone() {
            InputError::InvalidJson(message) => InputProblem::InvalidJson(message),
            InputError::MissingField(path) => InputProblem::MissingField(path),
            InputError::WrongType(p) => InputProblem::WrongType {
                field: p.field,
                detail: p.detail,
            },
            InputError::InvalidValue(p) => InputProblem::InvalidValue {
                field: p.field,
                detail: p.detail,
            },
            InputError::TooLarge(size) => InputProblem::TooLarge {
                size: size.size,
                limit: size.limit,
            },
        }
    }
}

impl From<&BuildError> for BuildProblem {
    fn from(error: &BuildError) -> BuildProblem {
        match error.clone() {
            BuildError::NoMedia => BuildProblem::NoMedia,
            BuildError::MissingRepEmail => BuildProblem::MissingRepEmail,
            BuildError::InvalidRepEmail(email) => BuildProblem::InvalidRepEmail(email),
            BuildError::InvalidCallDate(date) => BuildProblem::InvalidCallDate(date),
            BuildError::TooLarge(size) => BuildProblem::TooLarge {
                size: size.size,
                limit: size.limit,
            },
        }
    }
}

/// The composed plugin as the core's plugin, with the app's rules.
pub(crate) struct SpinPlugin {
    rules: Rules,
}

/// A trap takes this instance down with it: a plugin call here never
/// returns one.
type Never = Trap;

fn decision(decision: Decision) -> CoreDecision<Call> {
    match decision {
        Decision::Send(call) => CoreDecision::Send(call),
        Decision::Skip(reason) => CoreDecision::Skip {
            code: wit_name(&reason.code),
            detail: reason.detail,
        },
        Decision::Wait(reason) => CoreDecision::Wait {
            code: wit_name(&reason.code),
            detail: reason.detail,
        },
    }
}

fn read<T, U>(read: Result<T, InputError>, f: impl FnOnce(T) -> U) -> Read<U> {
    read.map(f).map_err(|e| InputProblem::from(&e))
}

fn via(via: Via) -> SyncMethod {
    match via {
        Via::Polling => SyncMethod::Polling,
        Via::Webhook => SyncMethod::Webhook,
        Via::Workflow => SyncMethod::Workflow,
    }
}

/// A WIT enum case's name (`below-minimum-duration`), the reason code the
/// ledger keeps: from the binding's `Debug` (`BelowMinimumDuration`).
pub(crate) fn wit_name(case: &impl std::fmt::Debug) -> String {
    let debug = format!("{case:?}");
    let name = debug.rsplit("::").next().unwrap_or(&debug);
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Plugin for SpinPlugin {
    type Call = Call;
    type Request = HttpRequest;

    fn request_path(&self, request: &HttpRequest) -> String {
        request.path.clone()
    }

    fn build(&self, call: Call) -> Decided {
        let warnings = call
            .warnings
            .iter()
            .map(|w| (w.field.clone(), w.detail.clone()))
            .collect();
        let options = PayloadOptions {
            max_body_bytes: Policy::DEFAULT.kendo.max_body_bytes,
        };
        match kendo_api::build_ingest(&call, options) {
            Ok(request) => Decided::Send(Built {
                payload: request.body,
                title: call.title,
                rep_email: call.rep_email,
                warnings,
            }),
            Err(e) => Decided::Unbuildable(BuildProblem::from(&e)),
        }
    }

    fn rep_email<'c>(&self, call: &'c Call) -> Option<&'c str> {
        call.rep_email.as_deref()
    }

    fn aloware_read_event(&self, body: &str) -> Result<Read<AlowareEvent>, Never> {
        Ok(read(aloware_api::read_event(body), |event| match event {
            Event::Call(call) => AlowareEvent::Call {
                call_id: call.call_id,
                body: call.body,
            },
            Event::Transcript(t) => AlowareEvent::Transcript {
                name: t.name,
                call_id: t.call_id,
                transcript: t.transcript,
            },
            Event::Ignore(reason) => AlowareEvent::Ignore {
                code: wit_name(&reason.code),
                detail: reason.detail,
            },
        }))
    }

    fn aloware_merge_bodies(&self, before: Option<&str>, newer: &str) -> Result<String, Never> {
        Ok(aloware_api::merge_bodies(before, newer))
    }

    fn aloware_map_call(
        &self,
        body: &str,
        transcript: Option<&str>,
        await_transcript: bool,
        through: Via,
    ) -> Result<Read<CoreDecision<Call>>, Never> {
        Ok(read(
            aloware_api::map_call(
                body,
                transcript,
                await_transcript,
                &self.rules,
                via(through),
            ),
            decision,
        ))
    }
}

fn cursor(at: &StoredCursor) -> Cursor {
    Cursor {
        since_ms: at.since_ms,
        after: at.after.clone(),
        high_water_ms: at.high_water_ms,
    }
}

fn search_options(options: SearchOptions) -> hubspot_api::SearchOptions {
    hubspot_api::SearchOptions {
        limit: options.limit,
        lookback_ms: options.lookback_ms,
    }
}

/// A listed record the plugin could not read, in the core's terms.
pub(crate) fn rejected(record: RejectedRecord) -> Rejected {
    Rejected {
        problem: InputProblem::from(&record.error),
        id: record.id,
        at: record.at,
    }
}

fn listed(call: ListedCall) -> HubspotCall {
    HubspotCall {
        id: call.id,
        modified_ms: call.modified_ms,
        owner_id: call.owner_id,
        transcription_id: call.transcription_id,
        json: call.json,
    }
}

impl HubspotPlugin for SpinPlugin {
    fn hubspot_read_webhook(&self, body: &str) -> Result<Read<HubspotDelivery>, Never> {
        Ok(read(hubspot_api::read_webhook(body), |d| HubspotDelivery {
            call_ids: d.call_ids,
            ignored: d.ignored,
        }))
    }

    fn hubspot_call_request(&self, call_id: &str) -> Result<HttpRequest, Never> {
        Ok(hubspot_api::call_request(call_id))
    }

    fn hubspot_read_call(&self, body: &str) -> Result<Read<HubspotCall>, Never> {
        Ok(read(hubspot_api::read_call(body), listed))
    }

    fn hubspot_owner_request(&self, owner_id: &str, archived: bool) -> Result<HttpRequest, Never> {
        Ok(hubspot_api::owner_request(owner_id, archived))
    }

    fn hubspot_dispositions_request(&self) -> Result<HttpRequest, Never> {
        Ok(hubspot_api::dispositions_request())
    }

    fn hubspot_transcript_request(&self, transcription_id: &str) -> Result<HttpRequest, Never> {
        Ok(hubspot_api::transcript_request(transcription_id))
    }

    fn hubspot_search_request(
        &self,
        at: &StoredCursor,
        options: SearchOptions,
    ) -> Result<HttpRequest, Never> {
        Ok(hubspot_api::search_request(
            &cursor(at),
            search_options(options),
        ))
    }

    fn hubspot_read_search(
        &self,
        at: &StoredCursor,
        options: SearchOptions,
        body: &str,
    ) -> Result<Read<SearchPage>, Never> {
        let page = hubspot_api::read_search(&cursor(at), search_options(options), body);
        Ok(read(page, |page| SearchPage {
            calls: page.calls.into_iter().map(listed).collect(),
            rejected: page.rejected.into_iter().map(rejected).collect(),
            next: StoredCursor {
                since_ms: page.next.since_ms,
                after: page.next.after,
                high_water_ms: page.next.high_water_ms,
            },
            more: page.more,
        }))
    }

    fn hubspot_associations_request(
        &self,
        kind: Association,
        call_ids: &[String],
    ) -> Result<HttpRequest, Never> {
        let kind = match kind {
            Association::Contacts => AssociationKind::Contacts,
            Association::Deals => AssociationKind::Deals,
        };
        Ok(hubspot_api::associations_request(kind, call_ids))
    }

    fn hubspot_map_call(
        &self,
        call: &HubspotCall,
        inputs: Inputs,
        associations: &Associations,
        through: Via,
    ) -> Result<Read<CoreDecision<Call>>, Never> {
        let inputs = CallInputs {
            call: call.json.clone(),
            owner: inputs.owner,
            dispositions: inputs.dispositions,
            transcript: inputs.transcript,
            contacts: associations.contacts.clone(),
            deals: associations.deals.clone(),
        };
        Ok(read(
            hubspot_api::map_call(&inputs, &self.rules, via(through)),
            decision,
        ))
    }
}

fn sl_cursor(at: &ListCursor) -> salesloft_api::Cursor {
    salesloft_api::Cursor {
        updated_since: at.updated_since.clone(),
        page: at.page,
    }
}

fn list_cursor(at: salesloft_api::Cursor) -> ListCursor {
    ListCursor {
        updated_since: at.updated_since,
        page: at.page,
    }
}

fn sl_call(call: salesloft_api::ListedCall) -> SalesloftCall {
    SalesloftCall {
        id: call.id,
        updated_at: call.updated_at,
        user_id: call.user_id,
        json: call.json,
    }
}

impl SalesloftPlugin for SpinPlugin {
    fn salesloft_next_request(
        &self,
        listing: Listing,
        at: &ListCursor,
    ) -> Result<HttpRequest, Never> {
        let what = match listing {
            Listing::Calls => salesloft_api::Listing::Calls,
            Listing::CallDataRecords => salesloft_api::Listing::CallDataRecords,
            Listing::Transcriptions => salesloft_api::Listing::Transcriptions,
        };
        Ok(salesloft_api::next_request(what, &sl_cursor(at)))
    }

    fn salesloft_read_page(&self, at: &ListCursor, body: &str) -> Result<Read<CallPage>, Never> {
        Ok(read(
            salesloft_api::read_page(&sl_cursor(at), body),
            |page| CallPage {
                calls: page.calls.into_iter().map(sl_call).collect(),
                rejected: page.rejected.into_iter().map(rejected).collect(),
                next: list_cursor(page.next),
                more: page.more,
            },
        ))
    }

    fn salesloft_read_call_data_records(
        &self,
        at: &ListCursor,
        body: &str,
    ) -> Result<Read<RecordPage>, Never> {
        let page = salesloft_api::read_call_data_records(&sl_cursor(at), body);
        Ok(read(page, |page| RecordPage {
            records: page
                .records
                .into_iter()
                .map(|r| CallDataRecord {
                    call_id: r.call_id,
                    updated_at: r.updated_at,
                    json: r.json,
                })
                .collect(),
            rejected: page.rejected.into_iter().map(rejected).collect(),
            next: list_cursor(page.next),
            more: page.more,
        }))
    }

    fn salesloft_read_transcriptions(
        &self,
        at: &ListCursor,
        body: &str,
    ) -> Result<Read<TranscriptionPage>, Never> {
        let page = salesloft_api::read_transcriptions(&sl_cursor(at), body);
        Ok(read(page, |page| TranscriptionPage {
            transcriptions: page
                .transcriptions
                .into_iter()
                .map(|t| Transcription {
                    id: t.id,
                    conversation_id: t.conversation_id,
                })
                .collect(),
            next: list_cursor(page.next),
            more: page.more,
        }))
    }

    fn salesloft_user_request(&self, user_id: &str) -> Result<HttpRequest, Never> {
        Ok(salesloft_api::user_request(user_id))
    }

    fn salesloft_conversation_request(&self, conversation_id: &str) -> Result<HttpRequest, Never> {
        Ok(salesloft_api::conversation_request(conversation_id))
    }

    fn salesloft_read_conversation(&self, body: &str) -> Result<Read<Option<String>>, Never> {
        Ok(read(salesloft_api::read_conversation(body), |id| id))
    }

    fn salesloft_sentences_request(
        &self,
        transcription_id: &str,
        page: u32,
    ) -> Result<HttpRequest, Never> {
        Ok(salesloft_api::sentences_request(transcription_id, page))
    }

    fn salesloft_sentences_has_more(&self, body: &str) -> Result<Read<bool>, Never> {
        Ok(read(salesloft_api::sentences_has_more(body), |more| more))
    }

    fn salesloft_read_webhook(
        &self,
        event: &str,
        body: &str,
    ) -> Result<Read<SalesloftEvent>, Never> {
        Ok(read(
            salesloft_api::read_webhook(event, body),
            |event| match event {
                salesloft_api::WebhookEvent::Call(call) => SalesloftEvent::Call(sl_call(call)),
                salesloft_api::WebhookEvent::Ignore(reason) => SalesloftEvent::Ignore(reason),
            },
        ))
    }

    fn salesloft_map_call(
        &self,
        call: &SalesloftCall,
        inputs: SalesloftInputs,
        through: Via,
    ) -> Result<Read<CoreDecision<Call>>, Never> {
        let inputs = salesloft_api::CallInputs {
            call: call.json.clone(),
            user: inputs.user,
            sentences: inputs.sentences,
            call_data_record: inputs.call_data_record,
        };
        Ok(read(
            salesloft_api::map_call(&inputs, &self.rules, via(through)),
            decision,
        ))
    }

    fn has_direction(&self, call: &Call) -> bool {
        call.direction.is_some()
    }
}

/// Every port of the app, for one workflow run.
pub(crate) struct SpinPorts<'a> {
    db: &'a Db,
    plugin: SpinPlugin,
    /// HubSpot's owners and dispositions, for this request's calls (each
    /// request is a fresh instance).
    lookups: RefCell<(Lookups, Lookups)>,
    /// Salesloft's users, for this request's calls.
    users: RefCell<Lookups>,
    /// Salesloft requests made in this request.
    salesloft_requests: Cell<u32>,
    /// `x-ratelimit-remaining-minute` of Salesloft's last answer.
    team_remaining: Cell<Option<u64>>,
}

impl<'a> SpinPorts<'a> {
    /// The ports over `db`, with the rules from the app's variables.
    pub(crate) fn new(db: &'a Db) -> anyhow::Result<SpinPorts<'a>> {
        Ok(SpinPorts {
            db,
            plugin: SpinPlugin {
                rules: crate::rules()?,
            },
            lookups: RefCell::default(),
            users: RefCell::default(),
            salesloft_requests: Cell::new(0),
            team_remaining: Cell::new(None),
        })
    }
}

impl Ports for SpinPorts<'_> {
    type Db = Db;
    type Plugin = SpinPlugin;

    fn db(&self) -> &Db {
        self.db
    }

    fn plugin(&self) -> &SpinPlugin {
        &self.plugin
    }

    fn now(&self) -> Millis {
        crate::now_ms() as Millis
    }

    /// One Kendo team: the app has one key.
    fn team(&self, _source: &str, _rep_email: Option<&str>) -> String {
        TEAM.to_string()
    }
}

impl SourceApi for SpinPorts<'_> {
    type Error = anyhow::Error;

    async fn fetch(
        &self,
        source: &'static str,
        request: &HttpRequest,
    ) -> anyhow::Result<Option<String>> {
        match source {
            kendo_bridge_core::sources::hubspot::SOURCE => {
                Ok(crate::source_http::hubspot(request).await?)
            }
            kendo_bridge_core::sources::salesloft::SOURCE => {
                self.salesloft_requests
                    .set(self.salesloft_requests.get() + 1);
                let (body, remaining) = crate::source_http::salesloft(request).await?;
                if remaining.is_some() {
                    self.team_remaining.set(remaining);
                }
                Ok(body)
            }
            other => Err(anyhow::anyhow!("no API for source {other}")),
        }
    }

    fn passing(&self, error: &anyhow::Error) -> bool {
        error
            .downcast_ref::<crate::Failed>()
            .is_some_and(|failed| failed.passing)
    }

    fn list_not_found(&self, source: &'static str, request: &HttpRequest) -> anyhow::Error {
        anyhow::Error::new(crate::Failed::lasting(format!(
            "{source} answered 404 to {} {}: check {source}_api_url",
            request.method, request.path
        )))
    }

    fn hubspot_lookups<R>(&self, f: impl FnOnce(&mut Lookups, &mut Lookups) -> R) -> R {
        let mut lookups = self.lookups.borrow_mut();
        let (owners, dispositions) = &mut *lookups;
        f(owners, dispositions)
    }
}

impl SalesloftApi for SpinPorts<'_> {
    fn salesloft_users<R>(&self, f: impl FnOnce(&mut Lookups) -> R) -> R {
        f(&mut self.users.borrow_mut())
    }

    /// `limit` requests made in this request, or the team almost out of
    /// cost points, the last ones left to its other integrations (the
    /// core's rule; the next tick goes on).
    fn salesloft_spent(&self, limit: Option<u32>) -> bool {
        limit.is_some_and(|limit| self.salesloft_requests.get() >= limit)
            || self
                .team_remaining
                .get()
                .is_some_and(|r| leave_to_others(SALESLOFT_TEAM_POINTS, r))
    }

    fn salesloft_requests(&self) -> u32 {
        self.salesloft_requests.get()
    }

    fn salesloft_can_read(&self) -> bool {
        crate::variable("salesloft_api_key").is_some()
    }
}

impl InboxPorts for SpinPorts<'_> {
    /// A source request's failure as the core's [`Cause`]; anything else
    /// (the database, a connection to it) passes.
    fn cause(&self, error: &anyhow::Error) -> Cause {
        match error
            .chain()
            .find_map(|c| c.downcast_ref::<crate::Failed>())
        {
            None => Cause::Database,
            Some(crate::Failed {
                status: Some(status),
                ..
            }) => Cause::Answered(*status),
            Some(crate::Failed { passing: true, .. }) => Cause::NoAnswer,
            // A variable not set.
            Some(crate::Failed { passing: false, .. }) => Cause::NotConfigured,
        }
    }

    fn jitter(&self) -> f64 {
        crate::jitter()
    }

    /// A trap here takes the instance down (the plugin is composed into
    /// the app): the inbox's engine closes the delivery after it stopped
    /// its processor often enough.
    fn kendo_read_webhook(&self, body: &str) -> Result<Read<KendoEvent>, Trap> {
        use kendo_api::WebhookEvent;
        Ok(kendo_api::read_webhook(body)
            .map(|event| {
                let (event, r) = match event {
                    WebhookEvent::CallUploaded(r) => ("call.uploaded", r),
                    WebhookEvent::TrainingCompleted(r) => ("ai.training.completed", r),
                    WebhookEvent::Unknown(name) => return KendoEvent::Unknown(name),
                };
                KendoEvent::Result {
                    event,
                    id: r.id,
                    subject_id: r.subject_id,
                    ai_score: r.ai_score,
                    is_test: r.is_test,
                    created_at: r.created_at,
                }
            })
            .map_err(|e| InputProblem::from(&e)))
    }
}
