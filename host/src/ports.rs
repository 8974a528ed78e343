//! The core's ports on the host: the state database (the shared rusqlite
//! store), the plugin (the instance pool), the clock and the team routing.
//! The core's workflows run on tokio's blocking pool over these
//! ([`HostPorts::run`]); this file only converts types and holds locks.

use std::cell::RefCell;
use std::sync::MutexGuard;

use kendo_bridge_core::Millis;
use kendo_bridge_core::decision::{BuildProblem, Built, Decided, InputProblem};
use kendo_bridge_core::inbox::{InboxPorts, KendoEvent};
use kendo_bridge_core::ledger::inbox::Cause;
use kendo_bridge_core::ledger::{Database, LedgerError, Row, Value};
use kendo_bridge_core::ports::{
    AlowareEvent, CallDataRecord, CallPage, Decision, HubspotCall, HubspotDelivery, HubspotPlugin,
    ListCursor, Listing, Plugin, Ports, Read, RecordPage, Rejected, SalesloftApi, SalesloftCall,
    SalesloftEvent, SalesloftInputs, SalesloftPlugin, SearchOptions, SearchPage, SourceApi,
    Transcription, TranscriptionPage, Trap, Via,
};
use kendo_bridge_core::sources::Lookups;
use kendo_bridge_core::sources::hubspot::{Association, Associations, Inputs, StoredCursor};

use crate::plugin::kendo::PayloadOptions;
use crate::plugin::types::{self, SyncMethod};
use crate::plugin::{PluginError, aloware, hubspot, salesloft};
use crate::sources::{Context, LookupCache, SourceError};
use crate::store::{SharedStore, Store};

/// The shared store as the core's database. A statement locks the store
/// for itself; a transaction (`BEGIN` to `COMMIT` or `ROLLBACK`, as
/// `ledger::write` runs them) holds the lock from its start to its end, so
/// no other task's statement lands inside it on the one connection.
pub struct HostDb<'a> {
    store: &'a SharedStore,
    held: RefCell<Option<MutexGuard<'a, Store>>>,
}

impl<'a> HostDb<'a> {
    pub fn new(store: &'a SharedStore) -> HostDb<'a> {
        HostDb {
            store,
            held: RefCell::new(None),
        }
    }
}

impl Database for HostDb<'_> {
    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError> {
        use kendo_bridge_core::ledger::database::{BEGIN, COMMIT, ROLLBACK};
        let mut held = self.held.borrow_mut();
        if held.is_none() {
            if sql != BEGIN {
                return self.store.lock().database().run(sql, params);
            }
            *held = Some(self.store.lock());
        }
        let rows = match held.as_ref() {
            Some(store) => store.database().run(sql, params),
            None => self.store.lock().database().run(sql, params),
        };
        if sql == COMMIT && rows.is_ok() || sql == ROLLBACK {
            *held = None;
        }
        rows
    }
}

/// The plugin pool as the core's plugin, with the rules and the payload
/// options every call of this bridge uses.
pub struct HostPlugin<'a> {
    ctx: &'a Context,
}

fn trap(e: PluginError) -> Trap {
    Trap(e.to_string())
}

fn decision(decision: types::Decision) -> Decision<types::Call> {
    match decision {
        types::Decision::Send(call) => Decision::Send(call),
        types::Decision::Skip(reason) => Decision::Skip {
            code: reason.code.to_string(),
            detail: reason.detail,
        },
        types::Decision::Wait(reason) => Decision::Wait {
            code: reason.code.to_string(),
            detail: reason.detail,
        },
    }
}

fn read<T, U>(read: Result<T, types::InputError>, f: impl FnOnce(T) -> U) -> Read<U> {
    read.map(f).map_err(|e| InputProblem::from(&e))
}

fn via(via: Via) -> SyncMethod {
    match via {
        Via::Polling => SyncMethod::Polling,
        Via::Webhook => SyncMethod::Webhook,
        Via::Workflow => SyncMethod::Workflow,
    }
}

impl HostPlugin<'_> {
    /// One plugin call on this thread; a trap as the core's [`Trap`].
    fn call<R>(
        &self,
        f: impl FnOnce(
            &crate::plugin::Bridge,
            &mut wasmtime::Store<crate::plugin::HostState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, Trap> {
        self.ctx.plugin.call_here(f).map_err(trap)
    }
}

impl Plugin for HostPlugin<'_> {
    type Call = types::Call;
    type Request = types::HttpRequest;

    fn request_path(&self, request: &types::HttpRequest) -> String {
        request.path.clone()
    }

    fn build(&self, call: types::Call) -> Decided {
        let warnings = call
            .warnings
            .iter()
            .map(|w| (w.field.clone(), w.detail.clone()))
            .collect();
        let (title, rep_email) = (call.title.clone(), call.rep_email.clone());
        let options = PayloadOptions {
            max_body_bytes: self.ctx.config.kendo.max_body_bytes,
        };
        let built = self.call(|bridge, store| {
            bridge
                .kendo_bridge_kendo()
                .call_build_ingest(store, &call, options)
        });
        match built {
            Ok(Ok(request)) => {
                if let Some(cut) = &request.truncated {
                    tracing::info!(
                        kept = cut.kept_chars,
                        of = cut.original_chars,
                        "transcript cut to fit Kendo's body limit"
                    );
                }
                Decided::Send(Built {
                    payload: request.body,
                    title,
                    rep_email,
                    warnings,
                })
            }
            Ok(Err(problem)) => Decided::Unbuildable(BuildProblem::from(&problem)),
            Err(Trap(e)) => Decided::Trapped(format!("building the payload: {e}")),
        }
    }

    fn rep_email<'c>(&self, call: &'c types::Call) -> Option<&'c str> {
        call.rep_email.as_deref()
    }

    fn aloware_read_event(&self, body: &str) -> Result<Read<AlowareEvent>, Trap> {
        let event = self.call(|b, s| b.kendo_bridge_aloware().call_read_event(s, body))?;
        Ok(read(event, |event| match event {
            aloware::Event::Call(call) => AlowareEvent::Call {
                call_id: call.call_id,
                body: call.body,
            },
            aloware::Event::Transcript(t) => AlowareEvent::Transcript {
                name: t.name,
                call_id: t.call_id,
                transcript: t.transcript,
            },
            aloware::Event::Ignore(reason) => AlowareEvent::Ignore {
                code: reason.code.to_string(),
                detail: reason.detail,
            },
        }))
    }

    fn aloware_merge_bodies(&self, before: Option<&str>, newer: &str) -> Result<String, Trap> {
        self.call(|b, s| b.kendo_bridge_aloware().call_merge_bodies(s, before, newer))
    }

    fn aloware_map_call(
        &self,
        body: &str,
        transcript: Option<&str>,
        await_transcript: bool,
        through: Via,
    ) -> Result<Read<Decision<types::Call>>, Trap> {
        let decided = self.call(|b, s| {
            b.kendo_bridge_aloware().call_map_call(
                s,
                body,
                transcript,
                await_transcript,
                &self.ctx.rules,
                via(through),
            )
        })?;
        Ok(read(decided, decision))
    }
}

fn cursor(at: &StoredCursor) -> hubspot::Cursor {
    hubspot::Cursor {
        since_ms: at.since_ms,
        after: at.after.clone(),
        high_water_ms: at.high_water_ms,
    }
}

fn search_options(options: SearchOptions) -> hubspot::SearchOptions {
    hubspot::SearchOptions {
        limit: options.limit,
        lookback_ms: options.lookback_ms,
    }
}

/// A listed record the plugin could not read, in the core's terms.
pub fn rejected(record: types::RejectedRecord) -> Rejected {
    Rejected {
        problem: InputProblem::from(&record.error),
        id: record.id,
        at: record.at,
    }
}

fn listed(call: hubspot::ListedCall) -> HubspotCall {
    HubspotCall {
        id: call.id,
        modified_ms: call.modified_ms,
        owner_id: call.owner_id,
        transcription_id: call.transcription_id,
        json: call.json,
    }
}

impl HubspotPlugin for HostPlugin<'_> {
    fn hubspot_read_webhook(&self, body: &str) -> Result<Read<HubspotDelivery>, Trap> {
        let delivery = self.call(|b, s| b.kendo_bridge_hubspot().call_read_webhook(s, body))?;
        Ok(read(delivery, |d| HubspotDelivery {
            call_ids: d.call_ids,
            ignored: d.ignored,
        }))
    }

    fn hubspot_call_request(&self, call_id: &str) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| b.kendo_bridge_hubspot().call_call_request(s, call_id))
    }

    fn hubspot_read_call(&self, body: &str) -> Result<Read<HubspotCall>, Trap> {
        let call = self.call(|b, s| b.kendo_bridge_hubspot().call_read_call(s, body))?;
        Ok(read(call, listed))
    }

    fn hubspot_owner_request(
        &self,
        owner_id: &str,
        archived: bool,
    ) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_owner_request(s, owner_id, archived)
        })
    }

    fn hubspot_dispositions_request(&self) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
    }

    fn hubspot_transcript_request(
        &self,
        transcription_id: &str,
    ) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_transcript_request(s, transcription_id)
        })
    }

    fn hubspot_search_request(
        &self,
        at: &StoredCursor,
        options: SearchOptions,
    ) -> Result<types::HttpRequest, Trap> {
        let (at, options) = (cursor(at), search_options(options));
        self.call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_search_request(s, &at, options)
        })
    }

    fn hubspot_read_search(
        &self,
        at: &StoredCursor,
        options: SearchOptions,
        body: &str,
    ) -> Result<Read<SearchPage>, Trap> {
        let (at, options) = (cursor(at), search_options(options));
        let page = self.call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_read_search(s, &at, options, body)
        })?;
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
    ) -> Result<types::HttpRequest, Trap> {
        let kind = match kind {
            Association::Contacts => hubspot::AssociationKind::Contacts,
            Association::Deals => hubspot::AssociationKind::Deals,
        };
        self.call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_associations_request(s, kind, call_ids)
        })
    }

    fn hubspot_map_call(
        &self,
        call: &HubspotCall,
        inputs: Inputs,
        associations: &Associations,
        through: Via,
    ) -> Result<Read<Decision<types::Call>>, Trap> {
        let inputs = hubspot::CallInputs {
            call: call.json.clone(),
            owner: inputs.owner,
            dispositions: inputs.dispositions,
            transcript: inputs.transcript,
            contacts: associations.contacts.clone(),
            deals: associations.deals.clone(),
        };
        let decided = self.call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_map_call(s, &inputs, &self.ctx.rules, via(through))
        })?;
        Ok(read(decided, decision))
    }
}

fn sl_cursor(at: &ListCursor) -> salesloft::Cursor {
    salesloft::Cursor {
        updated_since: at.updated_since.clone(),
        page: at.page,
    }
}

fn list_cursor(at: salesloft::Cursor) -> ListCursor {
    ListCursor {
        updated_since: at.updated_since,
        page: at.page,
    }
}

fn sl_call(call: salesloft::ListedCall) -> SalesloftCall {
    SalesloftCall {
        id: call.id,
        updated_at: call.updated_at,
        user_id: call.user_id,
        json: call.json,
    }
}

impl SalesloftPlugin for HostPlugin<'_> {
    fn salesloft_next_request(
        &self,
        listing: Listing,
        at: &ListCursor,
    ) -> Result<types::HttpRequest, Trap> {
        let what = match listing {
            Listing::Calls => salesloft::Listing::Calls,
            Listing::CallDataRecords => salesloft::Listing::CallDataRecords,
            Listing::Transcriptions => salesloft::Listing::Transcriptions,
        };
        let at = sl_cursor(at);
        self.call(|b, s| b.kendo_bridge_salesloft().call_next_request(s, what, &at))
    }

    fn salesloft_read_page(&self, at: &ListCursor, body: &str) -> Result<Read<CallPage>, Trap> {
        let at = sl_cursor(at);
        let page = self.call(|b, s| b.kendo_bridge_salesloft().call_read_page(s, &at, body))?;
        Ok(read(page, |page| CallPage {
            calls: page.calls.into_iter().map(sl_call).collect(),
            rejected: page.rejected.into_iter().map(rejected).collect(),
            next: list_cursor(page.next),
            more: page.more,
        }))
    }

    fn salesloft_read_call_data_records(
        &self,
        at: &ListCursor,
        body: &str,
    ) -> Result<Read<RecordPage>, Trap> {
        let at = sl_cursor(at);
        let page = self.call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_read_call_data_records(s, &at, body)
        })?;
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
    ) -> Result<Read<TranscriptionPage>, Trap> {
        let at = sl_cursor(at);
        let page = self.call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_read_transcriptions(s, &at, body)
        })?;
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

    fn salesloft_user_request(&self, user_id: &str) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| b.kendo_bridge_salesloft().call_user_request(s, user_id))
    }

    fn salesloft_conversation_request(
        &self,
        conversation_id: &str,
    ) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_conversation_request(s, conversation_id)
        })
    }

    fn salesloft_read_conversation(&self, body: &str) -> Result<Read<Option<String>>, Trap> {
        let call = self.call(|b, s| b.kendo_bridge_salesloft().call_read_conversation(s, body))?;
        Ok(read(call, |id| id))
    }

    fn salesloft_sentences_request(
        &self,
        transcription_id: &str,
        page: u32,
    ) -> Result<types::HttpRequest, Trap> {
        self.call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_sentences_request(s, transcription_id, page)
        })
    }

    fn salesloft_sentences_has_more(&self, body: &str) -> Result<Read<bool>, Trap> {
        let more = self.call(|b, s| b.kendo_bridge_salesloft().call_sentences_has_more(s, body))?;
        Ok(read(more, |more| more))
    }

    fn salesloft_read_webhook(
        &self,
        event: &str,
        body: &str,
    ) -> Result<Read<SalesloftEvent>, Trap> {
        let read_event =
            self.call(|b, s| b.kendo_bridge_salesloft().call_read_webhook(s, event, body))?;
        Ok(read(read_event, |event| match event {
            salesloft::WebhookEvent::Call(call) => SalesloftEvent::Call(sl_call(call)),
            salesloft::WebhookEvent::Ignore(reason) => SalesloftEvent::Ignore(reason),
        }))
    }

    fn salesloft_map_call(
        &self,
        call: &SalesloftCall,
        inputs: SalesloftInputs,
        through: Via,
    ) -> Result<Read<Decision<types::Call>>, Trap> {
        let inputs = salesloft::CallInputs {
            call: call.json.clone(),
            user: inputs.user,
            sentences: inputs.sentences,
            call_data_record: inputs.call_data_record,
        };
        let decided = self.call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_map_call(s, &inputs, &self.ctx.rules, via(through))
        })?;
        Ok(read(decided, decision))
    }

    fn has_direction(&self, call: &types::Call) -> bool {
        call.direction.is_some()
    }
}

/// Every port of the host, for one workflow run.
pub struct HostPorts<'a> {
    ctx: &'a Context,
    db: HostDb<'a>,
    plugin: HostPlugin<'a>,
    /// The source APIs a workflow reads from, each under its source's
    /// name (a source missing: no credentials).
    apis: Vec<&'a crate::sources::SourceApi>,
    /// HubSpot's owners and dispositions, kept across deliveries.
    lookups: Option<(&'a LookupCache, &'a LookupCache)>,
    /// Salesloft's users, kept across polls.
    users: Option<&'a LookupCache>,
}

impl<'a> HostPorts<'a> {
    pub fn new(ctx: &'a Context) -> HostPorts<'a> {
        HostPorts {
            ctx,
            db: HostDb::new(&ctx.store),
            plugin: HostPlugin { ctx },
            apis: Vec::new(),
            lookups: None,
            users: None,
        }
    }

    /// These ports reading from `api` too, with HubSpot's lookup caches
    /// when given.
    pub fn reading(
        mut self,
        api: Option<&'a crate::sources::SourceApi>,
        lookups: Option<(&'a LookupCache, &'a LookupCache)>,
    ) -> HostPorts<'a> {
        self.apis.extend(api);
        self.lookups = lookups.or(self.lookups);
        self
    }

    /// These ports with Salesloft's user cache.
    pub fn with_users(mut self, users: &'a LookupCache) -> HostPorts<'a> {
        self.users = Some(users);
        self
    }

    /// The API of `source` these ports read from.
    pub fn api(&self, source: &str) -> Option<&'a crate::sources::SourceApi> {
        self.apis.iter().copied().find(|api| api.name() == source)
    }

    /// Runs an async core workflow (one that reads a source's API) on
    /// tokio's blocking pool: its plugin and store calls block, and its
    /// requests are driven by this runtime. `workflow` makes the future on
    /// that thread, so it need not be `Send`.
    pub async fn run_async<R, E, F, Fut>(workflow: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: Send + 'static + From<Interrupted>,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<R, E>>,
    {
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || handle.block_on(workflow()))
            .await
            .map_err(|e| E::from(Interrupted(e.to_string())))?
    }

    /// Runs a core workflow on tokio's blocking pool (the plugin and the
    /// store are synchronous), with this context's ports.
    pub async fn run<R, E>(
        ctx: &Context,
        workflow: impl FnOnce(&HostPorts<'_>) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: Send + 'static + From<Interrupted>,
    {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || workflow(&HostPorts::new(&ctx)))
            .await
            .map_err(|e| E::from(Interrupted(e.to_string())))?
    }
}

/// A workflow's task ended without an answer (it panicked, or the runtime
/// is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("a workflow task was interrupted: {0}")]
pub struct Interrupted(pub String);

impl From<Interrupted> for crate::store::StoreError {
    fn from(e: Interrupted) -> crate::store::StoreError {
        crate::store::StoreError::Interrupted(e.0)
    }
}

impl<'a> Ports for HostPorts<'a> {
    type Db = HostDb<'a>;
    type Plugin = HostPlugin<'a>;

    fn db(&self) -> &HostDb<'a> {
        &self.db
    }

    fn plugin(&self) -> &HostPlugin<'a> {
        &self.plugin
    }

    fn now(&self) -> Millis {
        self.ctx.clock.now_ms()
    }

    fn team(&self, source: &str, rep_email: Option<&str>) -> String {
        self.ctx.config.route(source, rep_email).to_string()
    }
}

impl SourceApi for HostPorts<'_> {
    type Error = SourceError;

    async fn fetch(
        &self,
        source: &'static str,
        request: &types::HttpRequest,
    ) -> Result<Option<String>, SourceError> {
        match self.api(source) {
            Some(api) => api.fetch(request).await,
            None => Err(SourceError::NoCredentials(source)),
        }
    }

    fn passing(&self, error: &SourceError) -> bool {
        error.is_transient()
    }

    fn list_not_found(&self, source: &'static str, request: &types::HttpRequest) -> SourceError {
        match self.api(source) {
            Some(api) => api.list_not_found(request),
            None => SourceError::NoCredentials(source),
        }
    }

    fn hubspot_lookups<R>(&self, f: impl FnOnce(&mut Lookups, &mut Lookups) -> R) -> R {
        match self.lookups {
            Some((owners, dispositions)) => {
                owners.with(|owners| dispositions.with(|dispositions| f(owners, dispositions)))
            }
            None => f(&mut Lookups::default(), &mut Lookups::default()),
        }
    }
}

impl SalesloftApi for HostPorts<'_> {
    fn salesloft_users<R>(&self, f: impl FnOnce(&mut Lookups) -> R) -> R {
        match self.users {
            Some(users) => users.with(f),
            None => f(&mut Lookups::default()),
        }
    }

    /// Never: the host's client paces every request under the team's
    /// cost-point budget instead of stopping.
    fn salesloft_spent(&self, _limit: Option<u32>) -> bool {
        false
    }

    fn salesloft_requests(&self) -> u32 {
        0
    }

    fn salesloft_can_read(&self) -> bool {
        self.api(kendo_bridge_core::sources::salesloft::SOURCE)
            .is_some()
    }
}

impl InboxPorts for HostPorts<'_> {
    fn cause(&self, error: &SourceError) -> Cause {
        cause(error)
    }

    fn jitter(&self) -> f64 {
        rand::random()
    }

    fn kendo_read_webhook(&self, body: &str) -> Result<Read<KendoEvent>, Trap> {
        use crate::plugin::kendo::WebhookEvent;
        let event = self
            .plugin
            .call(|b, s| b.kendo_bridge_kendo().call_read_webhook(s, body))?;
        Ok(read(event, |event| {
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
        }))
    }
}

/// What a source client's error was, in the core's terms
/// ([`kendo_bridge_core::ledger::inbox::failure`] says what it costs a
/// delivery): a refused credential or a setting missing needs a person; a
/// record that cannot be read, or a plugin that failed on it, never works.
fn cause(error: &SourceError) -> Cause {
    match error {
        SourceError::Status { status, .. } => Cause::Answered(*status),
        SourceError::NotFound { .. } => Cause::Answered(404),
        SourceError::NoCredentials(_)
        | SourceError::Config { .. }
        | SourceError::WrongProperty(_) => Cause::NotConfigured,
        SourceError::Transport { .. } => Cause::NoAnswer,
        SourceError::Store(_) => Cause::Database,
        SourceError::Unreadable { .. } | SourceError::Checkpoint(_) | SourceError::Plugin(_) => {
            Cause::Unreadable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kendo_bridge_core::ledger::inbox::{Failure, failure};

    fn status(status: u16) -> SourceError {
        SourceError::Status {
            source_name: "hubspot",
            status,
            method: "GET".into(),
            path: "/crm/v3/objects/calls/1".into(),
            body: String::new(),
            hint: String::new(),
        }
    }

    #[test]
    fn a_refused_token_keeps_a_delivery_for_a_person_and_a_5xx_for_a_retry() {
        assert_eq!(failure(cause(&status(401))), Failure::Setting);
        assert_eq!(
            failure(cause(&SourceError::NoCredentials("hubspot"))),
            Failure::Setting
        );
        assert_eq!(failure(cause(&status(503))), Failure::Passing);
        assert_eq!(failure(cause(&status(429))), Failure::Passing);
    }

    #[test]
    fn a_delivery_that_cannot_be_read_is_closed() {
        let unreadable = SourceError::Unreadable {
            source_name: "aloware",
            message: "not JSON".into(),
        };
        assert_eq!(failure(cause(&unreadable)), Failure::Lasting);
        assert_eq!(failure(cause(&status(400))), Failure::Lasting);
    }
}
