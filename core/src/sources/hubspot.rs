//! Reading one HubSpot call before the plugin maps it: its owner (a rep
//! who left is a deactivated owner, found only by the archived lookup), the
//! portal's dispositions (custom call outcomes), and its transcript when
//! the portal has one and transcripts are wanted.
//!
//! What each costs when it fails: an owner that cannot be read fails the
//! call's read (it is read again: without its owner the call would go to
//! the wrong rep or none); dispositions are best effort (the plugin knows
//! HubSpot's default labels) and the problem is shown in `status`; a
//! transcript never holds up the recording.

use super::{Health, Lookups};
/// The ledger's name for this source.
pub const SOURCE: &str = super::write_back::SOURCE;
use crate::Millis;
use crate::ledger::intake::{self, Intake, IntakeReport};
use crate::ports::{
    HubspotCall, HubspotPlugin, Plugin, SearchOptions, SourceApi, Via, WorkflowError,
};
use crate::sources::poll::{After, Cycle, CycleReport, read_cursor};

/// The search cursor as stored in the checkpoint, by either driver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCursor {
    pub since_ms: Option<u64>,
    pub after: Option<String>,
    pub high_water_ms: Option<u64>,
}

/// What a listed call says about the reads it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    pub id: String,
    /// `hubspot_owner_id`.
    pub owner_id: Option<String>,
    /// `hs_call_transcription_id`.
    pub transcription_id: Option<String>,
}

/// The next request the read needs, for the plugin to plan
/// (`owner-request`, `dispositions-request`, `transcript-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Owner {
        owner_id: String,
        archived: bool,
    },
    Dispositions,
    Transcript {
        transcription_id: String,
    },
    /// Everything is read: map the call with these.
    Map(Inputs),
}

/// What the plugin's `map-call` gets besides the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub owner: Option<String>,
    pub dispositions: Option<String>,
    pub transcript: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Owner { archived: bool },
    Dispositions,
    Transcript,
    Done,
}

/// The key the dispositions are cached under.
const ALL: &str = "all";

/// The read of one call: [`CallRead::next`] says what to fetch,
/// [`CallRead::fetched`] takes the answer, until [`Need::Map`].
#[derive(Debug, Clone)]
pub struct CallRead {
    call: CallRef,
    transcripts: bool,
    stage: Stage,
    inputs: Inputs,
    /// Read now (not from the cache): for [`CallRead::remember`].
    read_owner: Option<Option<String>>,
    read_dispositions: Option<Option<String>>,
    health: Vec<Health>,
}

impl CallRead {
    /// Starts the read of `call`, with what the caches already hold.
    pub fn new(
        call: CallRef,
        transcripts: bool,
        owners: &Lookups,
        dispositions: &Lookups,
        now: Millis,
    ) -> CallRead {
        let mut inputs = Inputs::default();
        let mut stage = Stage::Owner { archived: false };
        match &call.owner_id {
            None => stage = Stage::Dispositions,
            Some(id) => {
                if let Some(cached) = owners.get(id, now) {
                    inputs.owner = cached;
                    stage = Stage::Dispositions;
                }
            }
        }
        let mut read = CallRead {
            call,
            transcripts,
            stage,
            inputs,
            read_owner: None,
            read_dispositions: None,
            health: Vec::new(),
        };
        if read.stage == Stage::Dispositions
            && let Some(cached) = dispositions.get(ALL, now)
        {
            read.inputs.dispositions = cached;
            read.stage = read.after_dispositions();
        }
        read
    }

    fn after_dispositions(&self) -> Stage {
        match (&self.call.transcription_id, self.transcripts) {
            (Some(_), true) => Stage::Transcript,
            _ => Stage::Done,
        }
    }

    /// What to fetch next, or the inputs to map the call with.
    pub fn next(&self) -> Need {
        match self.stage {
            Stage::Owner { archived } => Need::Owner {
                owner_id: self.call.owner_id.clone().unwrap_or_default(),
                archived,
            },
            Stage::Dispositions => Need::Dispositions,
            Stage::Transcript => Need::Transcript {
                transcription_id: self.call.transcription_id.clone().unwrap_or_default(),
            },
            Stage::Done => Need::Map(self.inputs.clone()),
        }
    }

    /// Takes the answer to the last [`Need`]: a body, `None` for a 404, or
    /// the driver's error. An error the read cannot go on without (the
    /// owner's) is handed back, to fail the call's read; the others are
    /// recorded as health and the read goes on. `path` names the request
    /// in what `status` shows.
    pub fn fetched<E: std::fmt::Display>(
        &mut self,
        path: &str,
        answer: Result<Option<String>, E>,
    ) -> Result<(), E> {
        match self.stage {
            Stage::Owner { archived } => {
                let body = answer?;
                if body.is_none() && !archived {
                    self.stage = Stage::Owner { archived: true };
                    return Ok(());
                }
                self.read_owner = Some(body.clone());
                self.inputs.owner = body;
                self.stage = Stage::Dispositions;
            }
            Stage::Dispositions => {
                let body = match answer {
                    Ok(Some(body)) => {
                        self.health.push(Health::Ok("dispositions"));
                        Some(body)
                    }
                    Ok(None) => {
                        self.health.push(Health::Problem(
                            "dispositions",
                            format!("{path} answered 404: custom call outcomes cannot be named"),
                        ));
                        None
                    }
                    Err(e) => {
                        self.health.push(Health::Problem(
                            "dispositions",
                            format!("{e}: custom call outcomes cannot be named"),
                        ));
                        None
                    }
                };
                self.read_dispositions = Some(body.clone());
                self.inputs.dispositions = body;
                self.stage = self.after_dispositions();
            }
            Stage::Transcript => {
                // A transcript never holds up the recording.
                self.inputs.transcript = match answer {
                    Ok(body) => {
                        self.health.push(Health::Ok("transcripts"));
                        body
                    }
                    Err(e) => {
                        self.health.push(Health::Problem(
                            "transcripts",
                            format!("the transcript of call {} was not read: {e}", self.call.id),
                        ));
                        None
                    }
                };
                self.stage = Stage::Done;
            }
            Stage::Done => {}
        }
        Ok(())
    }

    /// Keeps what was read in the caches, for the next calls.
    pub fn remember(&self, owners: &mut Lookups, dispositions: &mut Lookups, now: Millis) {
        if let (Some(id), Some(body)) = (&self.call.owner_id, &self.read_owner) {
            owners.put(id, body.clone(), now);
        }
        if let Some(body) = &self.read_dispositions {
            dispositions.put(ALL, body.clone(), now);
        }
    }

    /// How the best-effort reads did, for `status`.
    pub fn health(&self) -> &[Health] {
        &self.health
    }
}

/// Which associations a batch read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Association {
    Contacts,
    Deals,
}

/// What a search page's association batch reads found: the answers as
/// HubSpot gave them, for the plugin's `map-call` of each call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Associations {
    pub contacts: Option<String>,
    pub deals: Option<String>,
}

/// The next batch read a search page needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageNeed {
    /// One v4 batch read of `kind` for these calls (`associations-request`).
    Associations {
        kind: Association,
        call_ids: Vec<String>,
    },
    /// Everything is read: map each call with these.
    Map(Associations),
}

/// The association reads of one search page: one batch read per kind for
/// the page's calls not yet settled, whatever the page size (a call
/// already sent at its version needs none).
///
/// What a failed read costs: a passing failure (transport, 429, 5xx)
/// fails the page, which is read again next cycle, since without its
/// associations a call would reach Kendo with no contact or deal; any
/// other (a missing scope) is a health problem and the calls go without,
/// since waiting would not fix it.
#[derive(Debug, Clone)]
pub struct PageRead {
    call_ids: Vec<String>,
    next: Option<Association>,
    found: Associations,
    health: Vec<Health>,
}

impl PageRead {
    /// The reads for a page whose unsettled calls are `call_ids`.
    pub fn new(call_ids: Vec<String>) -> PageRead {
        PageRead {
            next: (!call_ids.is_empty()).then_some(Association::Contacts),
            call_ids,
            found: Associations::default(),
            health: Vec::new(),
        }
    }

    /// What to fetch next, or what to map the page's calls with.
    pub fn next(&self) -> PageNeed {
        match self.next {
            Some(kind) => PageNeed::Associations {
                kind,
                call_ids: self.call_ids.clone(),
            },
            None => PageNeed::Map(self.found.clone()),
        }
    }

    /// Takes the answer to the last [`PageNeed::Associations`]: a body,
    /// `None` for a 404, or the driver's error with whether it is
    /// passing ([`super::passing`]). A passing error is handed back, to
    /// fail the page.
    pub fn fetched<E: std::fmt::Display>(
        &mut self,
        answer: Result<Option<String>, E>,
        passing: bool,
    ) -> Result<(), E> {
        let Some(kind) = self.next else {
            return Ok(());
        };
        let body = match answer {
            Ok(body) => {
                self.health.push(Health::Ok("associations"));
                body
            }
            Err(e) if passing => return Err(e),
            Err(e) => {
                self.health
                    .push(Health::Problem("associations", e.to_string()));
                None
            }
        };
        match kind {
            Association::Contacts => {
                self.found.contacts = body;
                self.next = Some(Association::Deals);
            }
            Association::Deals => {
                self.found.deals = body;
                self.next = None;
            }
        }
        Ok(())
    }

    /// How the reads did, for `status`.
    pub fn health(&self) -> &[Health] {
        &self.health
    }
}

/// The ledger version of a HubSpot call: its modification time,
/// zero-padded so that versions sort in time order as text.
pub fn version(modified_ms: u64) -> String {
    format!("{modified_ms:015}")
}

/// A call a webhook names that HubSpot returned but the plugin cannot
/// read: a failed ledger row under its id, with the reason, so the
/// delivery's other calls still go and `deliveries --state failed` shows
/// this one (`redecide --include-failed` reads it again).
pub fn unreadable_call(
    team: &str,
    call_id: &str,
    via: &str,
    detail: String,
) -> crate::ledger::intake::Intake {
    let mut row = super::rejected(
        super::write_back::SOURCE,
        team,
        Some(call_id),
        "webhook",
        0,
        1,
        detail,
    );
    row.sync_method = via.to_string();
    row
}

/// What one HubSpot webhook or workflow delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Decided(IntakeReport),
    /// The delivery can never be read: why.
    Unreadable(String),
}

/// A stored HubSpot delivery, start to end: the plugin reads which calls
/// it names; an event it is not subscribed for is a `webhook` problem of
/// the source; each call is read by id (a call gone from HubSpot is
/// passed over; one that cannot be read is a failed row, and the
/// delivery's others go on), its owner, dispositions and transcript read
/// as [`CallRead`] says, decided, and all recorded in one intake.
/// `transcripts`: whether calls' transcripts are read.
pub async fn receive_webhook<P>(
    ports: &P,
    body: &str,
    via: Via,
    transcripts: bool,
) -> Result<Handled, <P as SourceApi>::Error>
where
    P: SourceApi,
    P::Plugin: HubspotPlugin,
{
    let (db, plugin) = (ports.db(), ports.plugin());
    let delivery = match plugin.hubspot_read_webhook(body)? {
        Ok(delivery) => delivery,
        Err(problem) => return Ok(Handled::Unreadable(problem.to_string())),
    };
    for why in &delivery.ignored {
        crate::ledger::health::problem(db, SOURCE, "webhook", why, ports.now())?;
    }
    let mut items = Vec::new();
    for id in &delivery.call_ids {
        let request = plugin.hubspot_call_request(id)?;
        let Some(body) = ports.fetch(SOURCE, &request).await? else {
            continue;
        };
        let call = match plugin.hubspot_read_call(&body)? {
            Ok(call) => call,
            Err(problem) => {
                let team = ports.team(SOURCE, None);
                items.push(unreadable_call(&team, id, via.name(), problem.to_string()));
                continue;
            }
        };
        // A webhook names one call at a time: the call object's own
        // associations are what the plugin reads.
        let version = version(call.modified_ms);
        items.push(
            decide(
                ports,
                &call,
                &Associations::default(),
                via,
                &version,
                transcripts,
            )
            .await?,
        );
    }
    Ok(Handled::Decided(intake::intake(
        db,
        &items,
        None,
        ports.now(),
    )?))
}

/// Reads what mapping `call` needs besides the call (its owner, the
/// dispositions, its transcript), in [`CallRead`]'s order and with its
/// failure rules, keeps what was read in the caches and the best-effort
/// reads' health, then has the plugin decide the call at `version`.
pub async fn decide<P>(
    ports: &P,
    call: &HubspotCall,
    associations: &Associations,
    via: Via,
    version: &str,
    transcripts: bool,
) -> Result<Intake, <P as SourceApi>::Error>
where
    P: SourceApi,
    P::Plugin: HubspotPlugin,
{
    let plugin = ports.plugin();
    let now = ports.now();
    // A call the ledger settled at this version is a sighting: nothing
    // more to read or decide.
    if intake::is_settled(ports.db(), SOURCE, &call.id, version)? {
        let key = crate::ledger::CallKey {
            source: SOURCE.into(),
            source_id: call.id.clone(),
            team: ports.team(SOURCE, None),
        };
        return Ok(Intake::seen(key, version, via.name()));
    }
    let reference = CallRef {
        id: call.id.clone(),
        owner_id: call.owner_id.clone(),
        transcription_id: call.transcription_id.clone(),
    };
    let mut read = ports.hubspot_lookups(|owners, dispositions| {
        CallRead::new(reference, transcripts, owners, dispositions, now)
    });
    let inputs = loop {
        let request = match read.next() {
            Need::Map(inputs) => break inputs,
            Need::Owner { owner_id, archived } => {
                plugin.hubspot_owner_request(&owner_id, archived)?
            }
            Need::Dispositions => plugin.hubspot_dispositions_request()?,
            Need::Transcript { transcription_id } => {
                plugin.hubspot_transcript_request(&transcription_id)?
            }
        };
        let answer = ports.fetch(SOURCE, &request).await;
        read.fetched(&plugin.request_path(&request), answer)?;
    };
    ports.hubspot_lookups(|owners, dispositions| read.remember(owners, dispositions, now));
    for health in read.health() {
        crate::ledger::health::record(ports.db(), SOURCE, health, ports.now())?;
    }
    let decision = plugin.hubspot_map_call(call, inputs, associations, via);
    Ok(crate::decision::intake(
        ports, SOURCE, &call.id, version, via, decision,
    ))
}

/// A call decided again (`redecide`) from HubSpot's current record of
/// it, read by id (HubSpot keeps the record, so the bridge does not), at
/// `version` or the call's own if it changed since. `None` when HubSpot no
/// longer has it.
pub async fn redecide<P>(
    ports: &P,
    call_id: &str,
    version: &str,
    transcripts: bool,
) -> Result<Option<Intake>, <P as SourceApi>::Error>
where
    P: SourceApi,
    P::Plugin: HubspotPlugin,
{
    let plugin = ports.plugin();
    let request = plugin.hubspot_call_request(call_id)?;
    let Some(body) = ports.fetch(SOURCE, &request).await? else {
        return Ok(None);
    };
    let call = match plugin.hubspot_read_call(&body)? {
        Ok(call) => call,
        Err(problem) => {
            let team = ports.team(SOURCE, None);
            return Ok(Some(unreadable_call(
                &team,
                call_id,
                Via::Polling.name(),
                problem.to_string(),
            )));
        }
    };
    let version = version.to_string().max(self::version(call.modified_ms));
    Ok(Some(
        decide(
            ports,
            &call,
            &Associations::default(),
            Via::Polling,
            &version,
            transcripts,
        )
        .await?,
    ))
}

/// Where a poll cycle starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the stored cursor; on the first poll, `first_look_back_ms`
    /// back from its first try (fixed then, so a failing first poll loses
    /// no call).
    Stored { first_look_back_ms: Millis },
    /// Everything modified since this time (a backfill, on a checkpoint
    /// of its own).
    Since(Millis),
}

/// How HubSpot is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    pub options: SearchOptions,
    pub transcripts: bool,
    /// Pages one cycle reads at most (a Spin tick reads a few).
    pub max_pages: u32,
}

/// One poll cycle of HubSpot's calls search on `checkpoint`: each page
/// read; its calls the ledger has not settled at their version get their
/// contact and deal associations in one batch read per kind
/// ([`PageRead`]), each call read and decided ([`decide`]); the page's
/// decisions, its unreadable records and the cursor past it recorded in
/// one transaction ([`Cycle::page`]). `on_page` sees the running report.
pub async fn poll<P>(
    ports: &P,
    checkpoint: &str,
    start: Start,
    settings: PollSettings,
    mut on_page: impl FnMut(&CycleReport),
) -> Result<CycleReport, <P as SourceApi>::Error>
where
    P: SourceApi,
    P::Plugin: HubspotPlugin,
{
    let (db, plugin) = (ports.db(), ports.plugin());
    let mut cycle_report = CycleReport::default();
    let (mut cycle, stored) = Cycle::start(db, checkpoint, settings.max_pages)?;
    let mut at = match start {
        Start::Since(since) => cursor_since(since),
        Start::Stored { first_look_back_ms } => {
            let (cursor, unreadable) = read_cursor::<StoredCursor>(stored.as_deref());
            cycle_report.cursor_unreadable = unreadable;
            match cursor {
                Some(cursor) => cursor,
                None => {
                    let first = ports.now().saturating_sub(first_look_back_ms);
                    cursor_since(crate::ledger::checkpoint::first_look_back(
                        db, checkpoint, first,
                    )?)
                }
            }
        }
    };
    let team = ports.team(SOURCE, None);
    loop {
        let request = plugin.hubspot_search_request(&at, settings.options)?;
        let Some(body) = ports.fetch(SOURCE, &request).await? else {
            return Err(ports.list_not_found(SOURCE, &request));
        };
        let page = match plugin.hubspot_read_search(&at, settings.options, &body)? {
            Ok(page) => page,
            Err(problem) => {
                return Err(WorkflowError::Unreadable {
                    source_name: SOURCE,
                    message: format!("the search page cannot be read: {problem}"),
                }
                .into());
            }
        };
        let mut unsettled = Vec::new();
        for call in &page.calls {
            if !intake::is_settled(db, SOURCE, &call.id, &version(call.modified_ms))? {
                unsettled.push(call.id.clone());
            }
        }
        let associations = associations(ports, unsettled).await?;
        let mut items = Vec::with_capacity(page.calls.len() + page.rejected.len());
        for call in &page.calls {
            let version = version(call.modified_ms);
            items.push(
                decide(
                    ports,
                    call,
                    &associations,
                    Via::Polling,
                    &version,
                    settings.transcripts,
                )
                .await?,
            );
        }
        let position = format!(
            "{}-{}",
            at.since_ms.unwrap_or_default(),
            at.after.as_deref().unwrap_or("0")
        );
        for (index, rejected) in page.rejected.iter().enumerate() {
            items.push(super::rejected(
                SOURCE,
                &team,
                rejected.id.as_deref(),
                &position,
                index,
                15,
                crate::decision::rejected_detail(&rejected.problem, &rejected.at),
            ));
        }
        cycle_report.pages += 1;
        cycle_report.records += (page.calls.len() + page.rejected.len()) as u32;
        cycle_report.rejected += page.rejected.len() as u32;
        let next = serde_json::to_string(&page.next).map_err(|e| WorkflowError::Unreadable {
            source_name: SOURCE,
            message: format!("the cursor cannot be stored: {e}"),
        })?;
        let (report, after) = cycle.page(db, &items, next, page.more, ports.now())?;
        cycle_report.report.add(report);
        on_page(&cycle_report);
        match after {
            After::Next => at = page.next,
            After::Done => return Ok(cycle_report),
            After::Moved => {
                cycle_report.moved = true;
                return Ok(cycle_report);
            }
        }
    }
}

/// The cursor of a search from `since_ms`.
pub fn cursor_since(since_ms: Millis) -> StoredCursor {
    StoredCursor {
        since_ms: Some(since_ms.max(0) as u64),
        after: None,
        high_water_ms: None,
    }
}

/// Contact and deal associations of a page's unsettled calls, read as
/// [`PageRead`] says; the reads' health recorded.
async fn associations<P>(
    ports: &P,
    call_ids: Vec<String>,
) -> Result<Associations, <P as SourceApi>::Error>
where
    P: SourceApi,
    P::Plugin: HubspotPlugin,
{
    let plugin = ports.plugin();
    let mut read = PageRead::new(call_ids);
    let found = loop {
        let request = match read.next() {
            PageNeed::Map(found) => break found,
            PageNeed::Associations { kind, call_ids } => {
                plugin.hubspot_associations_request(kind, &call_ids)?
            }
        };
        let answer = ports.fetch(SOURCE, &request).await;
        let passing = answer.as_ref().is_err_and(|e| ports.passing(e));
        read.fetched(answer, passing)?;
    };
    for health in read.health() {
        crate::ledger::health::record(ports.db(), SOURCE, health, ports.now())?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(owner: Option<&str>, transcript: Option<&str>) -> CallRef {
        CallRef {
            id: "c1".into(),
            owner_id: owner.map(str::to_string),
            transcription_id: transcript.map(str::to_string),
        }
    }

    /// Runs a read against canned answers, returning the needs in order.
    fn run(
        read: &mut CallRead,
        mut answer: impl FnMut(&Need) -> Result<Option<String>, String>,
    ) -> Result<(Vec<Need>, Inputs), String> {
        let mut asked = Vec::new();
        loop {
            match read.next() {
                Need::Map(inputs) => return Ok((asked, inputs)),
                need => {
                    let got = answer(&need);
                    asked.push(need);
                    read.fetched("/path", got)?;
                }
            }
        }
    }

    #[test]
    fn a_departed_reps_owner_is_found_by_the_archived_lookup() {
        let mut read = CallRead::new(
            call(Some("7"), None),
            true,
            &Lookups::default(),
            &Lookups::default(),
            0,
        );
        let (asked, inputs) = run(&mut read, |need| match need {
            Need::Owner {
                archived: false, ..
            } => Ok(None),
            Need::Owner { archived: true, .. } => Ok(Some("owner".into())),
            _ => Ok(Some("dispositions".into())),
        })
        .unwrap();
        assert_eq!(asked.len(), 3);
        assert_eq!(inputs.owner.as_deref(), Some("owner"));
    }

    #[test]
    fn an_owner_that_cannot_be_read_fails_the_read() {
        let mut read = CallRead::new(
            call(Some("7"), None),
            true,
            &Lookups::default(),
            &Lookups::default(),
            0,
        );
        assert_eq!(
            run(&mut read, |_| Err("503".into())).unwrap_err(),
            "503".to_string()
        );
    }

    #[test]
    fn dispositions_and_transcripts_that_fail_do_not_hold_up_the_call() {
        let mut read = CallRead::new(
            call(None, Some("t1")),
            true,
            &Lookups::default(),
            &Lookups::default(),
            0,
        );
        let (asked, inputs) = run(&mut read, |_| Err("500".into())).unwrap();
        assert_eq!(asked.len(), 2);
        assert_eq!(inputs, Inputs::default());
        assert_eq!(read.health().len(), 2);
    }

    #[test]
    fn cached_owners_and_dispositions_are_not_read_again_within_the_hour() {
        let (mut owners, mut dispositions) = (Lookups::default(), Lookups::default());
        let mut first = CallRead::new(call(Some("7"), None), false, &owners, &dispositions, 0);
        run(&mut first, |_| Ok(Some("body".into()))).unwrap();
        first.remember(&mut owners, &mut dispositions, 0);
        let second = CallRead::new(call(Some("7"), None), false, &owners, &dispositions, 1_000);
        assert!(matches!(second.next(), Need::Map(_)));
        let later = CallRead::new(
            call(Some("7"), None),
            false,
            &owners,
            &dispositions,
            Lookups::TTL_MS,
        );
        assert!(matches!(later.next(), Need::Owner { .. }));
    }

    /// Runs a page's association reads against canned answers.
    fn associations(
        ids: &[&str],
        mut answer: impl FnMut(Association) -> (Result<Option<String>, String>, bool),
    ) -> (Vec<Association>, Result<Associations, String>, PageRead) {
        let mut read = PageRead::new(ids.iter().map(|s| s.to_string()).collect());
        let mut asked = Vec::new();
        loop {
            match read.next() {
                PageNeed::Map(found) => return (asked, Ok(found), read),
                PageNeed::Associations { kind, call_ids } => {
                    assert_eq!(call_ids.len(), ids.len());
                    asked.push(kind);
                    let (got, passing) = answer(kind);
                    if let Err(e) = read.fetched(got, passing) {
                        return (asked, Err(e), read);
                    }
                }
            }
        }
    }

    #[test]
    fn a_page_reads_contacts_then_deals_once_for_all_its_calls() {
        let (asked, found, read) = associations(&["1", "2", "3"], |kind| {
            (Ok(Some(format!("{kind:?}"))), false)
        });
        assert_eq!(asked, vec![Association::Contacts, Association::Deals]);
        let found = found.unwrap();
        assert_eq!(found.contacts.as_deref(), Some("Contacts"));
        assert_eq!(found.deals.as_deref(), Some("Deals"));
        assert!(read.health().iter().all(|h| matches!(h, Health::Ok(_))));
    }

    #[test]
    fn a_page_with_every_call_settled_reads_no_associations() {
        let (asked, found, _) = associations(&[], |_| unreachable!());
        assert!(asked.is_empty());
        assert_eq!(found.unwrap(), Associations::default());
    }

    #[test]
    fn a_passing_association_failure_fails_the_page() {
        let (asked, found, _) =
            associations(&["1"], |_| (Err("HubSpot answered 503".into()), true));
        assert_eq!(asked, vec![Association::Contacts]);
        assert_eq!(found.unwrap_err(), "HubSpot answered 503");
    }

    #[test]
    fn a_lasting_association_failure_is_a_health_problem_and_the_calls_go_without() {
        let (asked, found, read) = associations(&["1"], |kind| match kind {
            Association::Contacts => (Err("HubSpot answered 403".into()), false),
            Association::Deals => (Ok(Some("deals".into())), false),
        });
        assert_eq!(asked.len(), 2);
        let found = found.unwrap();
        assert_eq!(found.contacts, None);
        assert_eq!(found.deals.as_deref(), Some("deals"));
        assert_eq!(
            read.health()[0],
            Health::Problem("associations", "HubSpot answered 403".into())
        );
    }

    #[test]
    fn a_transcript_is_read_only_when_wanted() {
        let read = CallRead::new(
            call(None, Some("t1")),
            false,
            &Lookups::default(),
            &Lookups::default(),
            0,
        );
        let mut read = read;
        let (asked, _) = run(&mut read, |_| Ok(Some("d".into()))).unwrap();
        assert_eq!(asked, vec![Need::Dispositions]);
    }
}
