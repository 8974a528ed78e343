//! Realistic data sets: a demo working day across the three sources, and a
//! Salesloft backlog for benchmarks.
//!
//! [`Dataset::demo`] holds the seed guides' example calls exactly as the
//! guides describe them (Salesloft `98765432` by Jamie Rivera, HubSpot
//! `987654321` "Discovery - Acme" by Sam Lee, Aloware `cw_12345` by Nina
//! Patel) and around them a working day (2026-04-22) of calls a bridge must
//! send, skip or hold: no answer, busy, no recording, a recording still
//! processing that finishes later, very short calls, an SMS, the test
//! payload, the repeated `Call-Disposed`, an agent missing from the rep
//! directory. [`Dataset::cases`] says what should become of each.

use std::time::Duration as StdDuration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::aloware::{
    self, AlowareAuth, AlowareCall, AlowareContact, AlowareSim, Direction, Outcome,
};
use crate::hubspot::{self, HubspotCall, HubspotOwner, HubspotSim, HubspotTranscript, Utterance};
use crate::salesloft::{
    CallDataRecord, Recording, SalesloftCall, SalesloftSim, SalesloftTranscript, SalesloftUser,
};
use crate::util::uuid_from;
use crate::{SimError, Simulators, timefmt};

/// A source system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Salesloft,
    Hubspot,
    Aloware,
}

impl Source {
    /// The name Kendo's `metadata.source` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Salesloft => "salesloft",
            Source::Hubspot => "hubspot",
            Source::Aloware => "aloware",
        }
    }
}

/// A sales rep and their identity in every source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rep {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub salesloft_user_id: u64,
    pub salesloft_guid: String,
    pub hubspot_owner_id: u64,
    pub hubspot_user_id: u64,
    pub aloware_user_id: u64,
}

impl Rep {
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// One line of the rep directory the bridge is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepDirectoryEntry {
    pub source: Source,
    /// The rep's id in that source (Salesloft user id, HubSpot owner id,
    /// Aloware user id).
    pub key: String,
    pub email: String,
    pub name: String,
}

/// What a correct bridge ends up doing with a source call once every
/// delivery and [later change](Dataset::apply_later) has happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Sent to Kendo exactly once.
    Send,
    /// Sent exactly once if `min_duration_seconds` is at most this.
    SendIfAtLeast(u32),
    /// Never sent; the reason in the WIT's `skip-code` spelling
    /// (`not-completed`, `no-media`, `unknown-rep`, `not-a-call`, `archived`).
    Skip(&'static str),
    /// Never sent yet: the source still reports it in progress.
    Wait(&'static str),
}

/// A source call in the data set and what should become of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub source: Source,
    pub source_id: String,
    pub what: &'static str,
    pub expected: Expected,
}

/// A change that happens after the data set is loaded.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A Salesloft recording finishes processing.
    SalesloftRecordingFinishes { call_id: u64, url: String },
    /// A HubSpot call is updated (`None` clears a property).
    HubspotUpdate {
        call_id: u64,
        changes: Vec<(String, Option<String>)>,
    },
}

/// A data set for the simulators.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub reps: Vec<Rep>,
    pub salesloft_users: Vec<SalesloftUser>,
    pub salesloft_calls: Vec<SalesloftCall>,
    pub salesloft_cdrs: Vec<CallDataRecord>,
    pub salesloft_transcripts: Vec<SalesloftTranscript>,
    pub hubspot_owners: Vec<HubspotOwner>,
    pub hubspot_calls: Vec<HubspotCall>,
    pub hubspot_transcripts: Vec<HubspotTranscript>,
    /// Aloware deliveries, in the order Aloware sends them.
    pub aloware_events: Vec<Value>,
    pub later: Vec<Change>,
    pub cases: Vec<Case>,
}

const PROSPECTS: &[(&str, &str, &str)] = &[
    ("Alex", "Morgan", "Acme Corp"),
    ("Jordan", "Blake", "Globex"),
    ("Taylor", "Nguyen", "Initech"),
    ("Casey", "Brooks", "Umbrella Health"),
    ("Riley", "Chen", "Stark Logistics"),
    ("Morgan", "Diaz", "Wayne Foods"),
    ("Drew", "Kim", "Hooli"),
    ("Avery", "Lopez", "Soylent Labs"),
    ("Quinn", "Foster", "Vandelay Industries"),
    ("Parker", "Singh", "Pied Piper"),
];

const SENTIMENTS: &[&str] = &["Interested", "Neutral", "Not Interested", "Follow Up"];

const DAY: OffsetDateTime = datetime!(2026-04-22 13:00 UTC);

fn demo_reps() -> Vec<Rep> {
    let people = [
        ("Jamie", "Rivera", 41_629_712u64),
        ("Sam", "Lee", 41_629_711),
        ("Nina", "Patel", 41_629_713),
        ("Priya", "Shah", 41_629_714),
        ("Marcus", "Green", 41_629_715),
        ("Elena", "Torres", 41_629_716),
    ];
    people
        .iter()
        .zip(0u64..)
        .map(|((first, last, owner), i)| Rep {
            first_name: (*first).to_owned(),
            last_name: (*last).to_owned(),
            email: format!("{}@yourco.com", first.to_lowercase()),
            salesloft_user_id: 1001 + i,
            salesloft_guid: uuid_from(0x51_u128 << 100 | u128::from(1001 + i) << 32 | 0xbeef),
            hubspot_owner_id: *owner,
            hubspot_user_id: 9101 + i,
            aloware_user_id: 5011 + i,
        })
        .collect()
}

fn phone(rng: &mut StdRng) -> String {
    format!(
        "+1{}555{:04}",
        rng.random_range(201..990),
        rng.random_range(100..200)
    )
}

fn micros(rng: &mut StdRng) -> Duration {
    Duration::microseconds(rng.random_range(0..1_000_000))
}

fn pick<T: Copy + Default>(rng: &mut StdRng, items: &[T]) -> T {
    let i = rng.random_range(0..items.len().max(1));
    items.get(i).copied().unwrap_or_default()
}

struct Builder {
    rng: StdRng,
    ds: Dataset,
}

impl Builder {
    fn uuid(&mut self) -> String {
        uuid_from(self.rng.random())
    }

    fn rep(&self, i: usize) -> Rep {
        self.ds
            .reps
            .get(i % self.ds.reps.len().max(1))
            .cloned()
            .unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn salesloft_call(
        &mut self,
        id: u64,
        rep: &Rep,
        created_at: OffsetDateTime,
        duration: Option<u32>,
        disposition: &str,
        recordings: Vec<Recording>,
        inbound: bool,
        expected: Expected,
        what: &'static str,
    ) {
        let rng = &mut self.rng;
        let settle = Duration::seconds(i64::from(duration.unwrap_or(0)) + rng.random_range(20..90));
        let updated_at = created_at + settle + micros(rng);
        let to = phone(rng);
        let sentiment = (disposition == "Connected").then(|| pick(rng, SENTIMENTS).to_owned());
        let person = rng.random_range(40_000_000..49_999_999);
        let call = SalesloftCall {
            id,
            to: Some(to.clone()),
            duration,
            disposition: Some(disposition.to_owned()),
            sentiment,
            created_at,
            updated_at,
            recordings: recordings.clone(),
            user_id: Some(rep.salesloft_user_id),
            action_id: (!inbound).then(|| rng.random_range(700_000_000..799_999_999)),
            called_person_id: Some(person),
            crm_activity_id: Some(rng.random_range(300_000_000..399_999_999)),
            note_id: None,
            cadence_id: (!inbound).then(|| rng.random_range(80_000..89_999)),
            step_id: (!inbound).then(|| rng.random_range(500_000..599_999)),
        };
        let cdr = CallDataRecord {
            id: 7_000_000 + (id % 1_000_000),
            call_id: id,
            direction: if inbound { "inbound" } else { "outbound" }.to_owned(),
            from: if inbound {
                to.clone()
            } else {
                "+14155550100".to_owned()
            },
            to: if inbound {
                "+14155550100".to_owned()
            } else {
                to
            },
            status: recordings
                .first()
                .map_or_else(|| "completed".to_owned(), |r| r.status.clone()),
            duration,
            user_id: Some(rep.salesloft_user_id),
            called_person_id: Some(person),
            recording: recordings.first().cloned(),
            created_at,
            updated_at,
        };
        self.ds.salesloft_calls.push(call);
        self.ds.salesloft_cdrs.push(cdr);
        self.ds.cases.push(Case {
            source: Source::Salesloft,
            source_id: id.to_string(),
            what,
            expected,
        });
    }

    fn recording(&mut self, id: u64) -> Recording {
        Recording {
            url: Some(format!(
                "https://recordings.salesloft.example/calls/{id}/{}.mp3",
                self.uuid()
            )),
            status: "completed".into(),
            recording_status: "completed".into(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hubspot_call(
        &mut self,
        id: u64,
        rep: &Rep,
        at: OffsetDateTime,
        title: &str,
        status: &str,
        direction: &str,
        duration_ms: u64,
        disposition: Option<&str>,
        with_recording: bool,
        expected: Expected,
        what: &'static str,
    ) -> usize {
        let rng = &mut self.rng;
        let created = at
            + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0))
            + Duration::milliseconds(rng.random_range(2_000..60_000));
        let modified = created + Duration::milliseconds(rng.random_range(500..90_000));
        let to = phone(rng);
        let mut call = HubspotCall::new(
            id,
            created,
            &[
                ("hs_timestamp", &timefmt::millis_z(at)),
                ("hs_call_title", title),
                ("hs_call_status", status),
                ("hs_call_direction", direction),
                ("hs_call_duration", &duration_ms.to_string()),
                ("hubspot_owner_id", &rep.hubspot_owner_id.to_string()),
                ("hs_call_from_number", "+14155550100"),
                ("hs_call_to_number", &to),
                ("hs_call_source", "INTEGRATIONS_PLATFORM"),
                ("hs_activity_type", "Discovery"),
                ("hs_lastmodifieddate", &timefmt::millis_z(modified)),
            ],
        );
        if let Some(d) = disposition {
            call.properties
                .insert("hs_call_disposition".into(), d.to_owned());
        }
        if with_recording {
            call.properties.insert(
                "hs_call_recording_url".into(),
                format!(
                    "https://api.hubspot.example/calling/recordings/{id}/{}.mp3",
                    uuid_from(rng.random())
                ),
            );
        }
        call.contact_ids = vec![rng.random_range(100..900)];
        self.ds.hubspot_calls.push(call);
        self.ds.cases.push(Case {
            source: Source::Hubspot,
            source_id: id.to_string(),
            what,
            expected,
        });
        self.ds.hubspot_calls.len() - 1
    }

    fn contact(&mut self, id: Value) -> AlowareContact {
        let (first, last, company) = pick(&mut self.rng, PROSPECTS);
        AlowareContact {
            id,
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            phone_number: phone(&mut self.rng),
            email: Some(format!(
                "{}.{}@{}.example",
                first.to_lowercase(),
                last.to_lowercase(),
                company.split(' ').next().unwrap_or("co").to_lowercase()
            )),
            company_name: Some(company.to_owned()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn aloware_call(
        &mut self,
        id: Value,
        user_id: u64,
        at: OffsetDateTime,
        direction: Direction,
        outcome: Outcome,
        talk_time: u32,
        disposition: Option<(u64, &str)>,
        numbers_as_strings: bool,
    ) -> AlowareCall {
        let wait_time = self.rng.random_range(2..18);
        let contact_id = json!(self.rng.random_range(30_000_000u64..39_999_999));
        AlowareCall {
            id,
            direction,
            outcome,
            duration: talk_time + wait_time,
            talk_time,
            wait_time,
            disposition: disposition.map(|(i, n)| (i, n.to_owned())),
            has_recording: outcome == Outcome::Completed,
            recording_url: None,
            has_transcription: false,
            lead_number: phone(&mut self.rng),
            incoming_number: "+14155550199".into(),
            contact: self.contact(contact_id),
            campaign_id: json!(self.rng.random_range(100..999)),
            user_id,
            notes: None,
            created_at: at,
            numbers_as_strings,
        }
    }

    fn aloware_recording_url(&mut self) -> String {
        format!(
            "https://app.aloware.example/static/recording/{}",
            self.uuid()
        )
    }
}

impl Dataset {
    /// The demo working day. The same seed gives the same data.
    pub fn demo(seed: u64) -> Self {
        let mut b = Builder {
            rng: StdRng::seed_from_u64(seed),
            ds: Dataset {
                reps: demo_reps(),
                ..Dataset::default()
            },
        };
        b.ds.salesloft_users =
            b.ds.reps
                .iter()
                .map(|r| SalesloftUser {
                    id: r.salesloft_user_id,
                    guid: r.salesloft_guid.clone(),
                    first_name: r.first_name.clone(),
                    last_name: r.last_name.clone(),
                    email: r.email.clone(),
                    active: true,
                })
                .collect();
        b.ds.hubspot_owners =
            b.ds.reps
                .iter()
                .map(|r| HubspotOwner {
                    id: r.hubspot_owner_id,
                    email: r.email.clone(),
                    first_name: r.first_name.clone(),
                    last_name: r.last_name.clone(),
                    user_id: r.hubspot_user_id,
                    archived: false,
                })
                .collect();
        salesloft_day(&mut b);
        hubspot_day(&mut b);
        aloware_day(&mut b);
        b.ds
    }

    /// `n` completed, recorded Salesloft calls (n up to 10,000 and beyond)
    /// with strictly increasing `updated_at`, for benchmarks.
    pub fn backlog(n: usize, seed: u64) -> Self {
        let mut b = Builder {
            rng: StdRng::seed_from_u64(seed),
            ds: Dataset {
                reps: demo_reps(),
                ..Dataset::default()
            },
        };
        b.ds.salesloft_users =
            b.ds.reps
                .iter()
                .map(|r| SalesloftUser {
                    id: r.salesloft_user_id,
                    guid: r.salesloft_guid.clone(),
                    first_name: r.first_name.clone(),
                    last_name: r.last_name.clone(),
                    email: r.email.clone(),
                    active: true,
                })
                .collect();
        let mut at = datetime!(2026-04-01 13:00 UTC);
        for i in 0..n {
            at += Duration::seconds(b.rng.random_range(20..60)) + micros(&mut b.rng);
            let id = 90_000_001 + i as u64;
            let rep = b.rep(i);
            let duration = b.rng.random_range(60..1200);
            let rec = b.recording(id);
            b.salesloft_call(
                id,
                &rep,
                at,
                Some(duration),
                "Connected",
                vec![rec],
                i % 5 == 4,
                Expected::Send,
                "backlog call",
            );
        }
        // `updated_at` follows `created_at` by a random settle time, which
        // could reorder neighbours; re-stamp so the order is the id order.
        let mut last = OffsetDateTime::UNIX_EPOCH;
        for (call, cdr) in
            b.ds.salesloft_calls
                .iter_mut()
                .zip(b.ds.salesloft_cdrs.iter_mut())
        {
            if call.updated_at <= last {
                call.updated_at = last + Duration::microseconds(1);
            }
            cdr.updated_at = call.updated_at;
            last = call.updated_at;
        }
        b.ds
    }

    /// Loads Salesloft and HubSpot data into the simulators. Aloware data
    /// is delivered, not loaded: see [`deliver_aloware`](Self::deliver_aloware).
    pub fn load(&self, sims: &Simulators) {
        self.load_salesloft(&sims.salesloft);
        self.load_hubspot(&sims.hubspot);
    }

    pub fn load_salesloft(&self, sim: &SalesloftSim) {
        for u in &self.salesloft_users {
            sim.add_user(u.clone());
        }
        sim.add_calls(self.salesloft_calls.iter().cloned());
        for c in &self.salesloft_cdrs {
            sim.add_call_data_record(c.clone());
        }
        for t in &self.salesloft_transcripts {
            sim.add_transcript(t.clone());
        }
    }

    pub fn load_hubspot(&self, sim: &HubspotSim) {
        for o in &self.hubspot_owners {
            sim.add_owner(o.clone());
        }
        for c in &self.hubspot_calls {
            sim.add_call(c.clone());
        }
        for t in &self.hubspot_transcripts {
            sim.add_transcript(t.clone());
        }
    }

    /// Delivers the Aloware events in order, `gap` (real time) apart, and
    /// returns each status (or the error when no answer came).
    pub async fn deliver_aloware(
        &self,
        sim: &AlowareSim,
        url: &str,
        auth: &AlowareAuth,
        gap: StdDuration,
    ) -> Vec<Result<u16, SimError>> {
        let mut out = Vec::new();
        for (i, e) in self.aloware_events.iter().enumerate() {
            if i > 0 && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            out.push(sim.deliver(url, auth, e).await);
        }
        out
    }

    /// Applies the changes that happen after loading: recordings finish,
    /// calls in progress complete.
    pub fn apply_later(&self, sims: &Simulators) -> Result<(), SimError> {
        for change in &self.later {
            match change {
                Change::SalesloftRecordingFinishes { call_id, url } => {
                    sims.salesloft.finish_recording(*call_id, url)?;
                }
                Change::HubspotUpdate { call_id, changes } => {
                    let c: Vec<(&str, Option<&str>)> = changes
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_deref()))
                        .collect();
                    sims.hubspot.update_call(*call_id, &c)?;
                }
            }
        }
        Ok(())
    }

    /// The rep directory for the bridge's configuration: each rep's id in
    /// each source, with the Kendo email and name.
    pub fn rep_directory(&self) -> Vec<RepDirectoryEntry> {
        let mut out = Vec::new();
        for r in &self.reps {
            for (source, key) in [
                (Source::Salesloft, r.salesloft_user_id),
                (Source::Hubspot, r.hubspot_owner_id),
                (Source::Aloware, r.aloware_user_id),
            ] {
                out.push(RepDirectoryEntry {
                    source,
                    key: key.to_string(),
                    email: r.email.clone(),
                    name: r.name(),
                });
            }
        }
        out
    }

    /// The source calls a correct bridge sends, each exactly once, given its
    /// `min_duration_seconds`, once every change has been applied.
    pub fn expected_sent(&self, min_duration_seconds: u32) -> Vec<(Source, String)> {
        let mut out: Vec<(Source, String)> = self
            .cases
            .iter()
            .filter(|c| match c.expected {
                Expected::Send => true,
                Expected::SendIfAtLeast(d) => min_duration_seconds <= d,
                Expected::Skip(_) | Expected::Wait(_) => false,
            })
            .map(|c| (c.source, c.source_id.clone()))
            .collect();
        out.sort();
        out
    }
}

fn salesloft_day(b: &mut Builder) {
    let jamie = b.rep(0);
    // The guide's example: 98765432, Jamie Rivera, Connected, 485 s.
    let rec = b.recording(98_765_432);
    b.salesloft_call(
        98_765_432,
        &jamie,
        datetime!(2026-04-22 15:30 UTC),
        Some(485),
        "Connected",
        vec![rec],
        false,
        Expected::Send,
        "the Salesloft guide's example call",
    );

    let mut id = 98_765_440;
    let mut at = DAY;
    let mut next = |b: &mut Builder| {
        id += b.rng.random_range(1..40);
        at += Duration::minutes(b.rng.random_range(9..45))
            + Duration::seconds(b.rng.random_range(0..60));
        // Salesloft stamps calls with microseconds.
        (id, at + micros(&mut b.rng))
    };

    for i in 0..5 {
        let (cid, t) = next(b);
        let rep = b.rep(i + 1);
        let duration = b.rng.random_range(95..1500);
        let rec = b.recording(cid);
        b.salesloft_call(
            cid,
            &rep,
            t,
            Some(duration),
            "Connected",
            vec![rec],
            i == 2,
            Expected::Send,
            "completed, recorded",
        );
    }

    let (cid, t) = next(b);
    let rep = b.rep(3);
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(22),
        "No Answer",
        vec![Recording {
            url: None,
            status: "no-answer".into(),
            recording_status: "not_recorded".into(),
        }],
        false,
        Expected::Skip("not-completed"),
        "no answer",
    );

    let (cid, t) = next(b);
    let rep = b.rep(4);
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(0),
        "Busy",
        vec![Recording {
            url: None,
            status: "busy".into(),
            recording_status: "not_recorded".into(),
        }],
        false,
        Expected::Skip("not-completed"),
        "busy",
    );

    let (cid, t) = next(b);
    let rep = b.rep(5);
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(212),
        "Connected",
        Vec::new(),
        false,
        Expected::Skip("no-media"),
        "connected but not recorded: recordings is []",
    );

    let (cid, t) = next(b);
    let rep = b.rep(0);
    let url = b.recording(cid).url.unwrap_or_default();
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(367),
        "Connected",
        vec![Recording {
            url: None,
            status: "completed".into(),
            recording_status: "processing".into(),
        }],
        false,
        Expected::Send,
        "recording still processing; it finishes later (apply_later)",
    );
    b.ds.later
        .push(Change::SalesloftRecordingFinishes { call_id: cid, url });

    let (cid, t) = next(b);
    let rep = b.rep(1);
    let rec = b.recording(cid);
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(9),
        "Connected",
        vec![rec],
        false,
        Expected::SendIfAtLeast(9),
        "a 9-second call",
    );

    let (cid, t) = next(b);
    let rep = b.rep(2);
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(640),
        "Connected",
        vec![Recording {
            url: None,
            status: "completed".into(),
            recording_status: "not_recorded".into(),
        }],
        false,
        Expected::Send,
        "not recorded, but a Conversations transcript exists",
    );
    let transcript_at = t + Duration::seconds(640 + 300) + micros(&mut b.rng);
    let guid = Some(rep.salesloft_guid.clone());
    let rng = &mut b.rng;
    let transcript = SalesloftTranscript::from_lines(
        cid,
        guid,
        transcript_at,
        &[
            (
                "rep",
                "Hi Taylor, this is Nina from YourCo, thanks for taking the call.",
            ),
            ("prospect", "Sure, I have about ten minutes."),
            (
                "rep",
                "Great. Last time you mentioned onboarding was slow; is that still the main pain?",
            ),
            (
                "prospect",
                "It is. We lose a week per new hire on tooling alone.",
            ),
            (
                "rep",
                "That is exactly what our guided setup cuts down. Can I show you on Thursday?",
            ),
            ("prospect", "Thursday at two works."),
        ],
        &mut || uuid_from(rng.random()),
    );
    b.ds.salesloft_transcripts.push(transcript);

    let (cid, t) = next(b);
    let rep = b.rep(3);
    let rec = b.recording(cid);
    b.salesloft_call(
        cid,
        &rep,
        t,
        Some(41),
        "Left Voicemail",
        vec![rec],
        false,
        Expected::Send,
        "left a voicemail, recorded",
    );

    let (cid, t) = next(b);
    let rep = b.rep(4);
    b.salesloft_call(
        cid,
        &rep,
        t,
        None,
        "Connected",
        vec![Recording {
            url: None,
            status: "in-progress".into(),
            recording_status: "pending".into(),
        }],
        false,
        Expected::Wait("in-progress"),
        "still in progress",
    );
}

fn hubspot_day(b: &mut Builder) {
    let sam = b.rep(1);
    // The guide's example: "Discovery - Acme", Sam Lee, deal 123456.
    let i = b.hubspot_call(
        987_654_321,
        &sam,
        datetime!(2026-03-04 16:30 UTC),
        "Discovery - Acme",
        "COMPLETED",
        "OUTBOUND",
        1_250_000,
        Some(hubspot::CONNECTED),
        true,
        Expected::Send,
        "the HubSpot guide's example call",
    );
    if let Some(c) = b.ds.hubspot_calls.get_mut(i) {
        c.deal_ids = vec![123_456];
        c.contact_ids = vec![501];
    }

    let mut id = 987_654_330;
    let mut at = DAY + Duration::minutes(7);
    let mut next = |b: &mut Builder| {
        id += b.rng.random_range(1..25);
        at += Duration::minutes(b.rng.random_range(10..50))
            + Duration::seconds(b.rng.random_range(0..60));
        (id, at)
    };

    for k in 0..3 {
        let (cid, t) = next(b);
        let rep = b.rep(k + 2);
        let (first, _, company) = pick(&mut b.rng, PROSPECTS);
        let ms = b.rng.random_range(120_000..1_800_000);
        b.hubspot_call(
            cid,
            &rep,
            t,
            &format!("Follow-up - {company} ({first})"),
            "COMPLETED",
            if k == 1 { "INBOUND" } else { "OUTBOUND" },
            ms,
            Some(hubspot::CONNECTED),
            true,
            Expected::Send,
            "completed, recorded",
        );
    }

    let (cid, t) = next(b);
    let rep = b.rep(0);
    let idx = b.hubspot_call(
        cid,
        &rep,
        t,
        "Demo - Globex",
        "COMPLETED",
        "OUTBOUND",
        1_312_000,
        Some(hubspot::CONNECTED),
        true,
        Expected::Send,
        "completed, recorded, with a calling transcript",
    );
    let transcript_id = 4_400_000_000 + cid % 1_000_000;
    if let Some(c) = b.ds.hubspot_calls.get_mut(idx) {
        c.properties
            .insert("hs_call_has_transcript".into(), "true".into());
        c.properties
            .insert("hs_call_transcription_id".into(), transcript_id.to_string());
    }
    b.ds.hubspot_transcripts.push(HubspotTranscript {
        id: transcript_id,
        call_id: cid,
        utterances: vec![
            Utterance {
                speaker_name: rep.name(),
                speaker_email: Some(rep.email.clone()),
                text: "Thanks for joining, Jordan. I'll share my screen.".into(),
                start_ms: 0,
                end_ms: 3_900,
            },
            Utterance {
                speaker_name: "Jordan Blake".into(),
                speaker_email: None,
                text: "Sounds good. We mostly care about the reporting side.".into(),
                start_ms: 4_200,
                end_ms: 8_100,
            },
            Utterance {
                speaker_name: rep.name(),
                speaker_email: Some(rep.email.clone()),
                text: "Then let's start with the weekly pipeline report.".into(),
                start_ms: 8_400,
                end_ms: 11_700,
            },
        ],
    });

    let (cid, t) = next(b);
    let rep = b.rep(3);
    b.hubspot_call(
        cid,
        &rep,
        t,
        "Intro - Initech",
        "NO_ANSWER",
        "OUTBOUND",
        24_000,
        Some(hubspot::NO_ANSWER),
        false,
        Expected::Skip("not-completed"),
        "no answer",
    );

    let (cid, t) = next(b);
    let rep = b.rep(4);
    b.hubspot_call(
        cid,
        &rep,
        t,
        "Intro - Hooli",
        "BUSY",
        "OUTBOUND",
        0,
        Some(hubspot::BUSY),
        false,
        Expected::Skip("not-completed"),
        "busy",
    );

    let (cid, t) = next(b);
    let rep = b.rep(5);
    let idx = b.hubspot_call(
        cid,
        &rep,
        t,
        "Check-in - Wayne Foods",
        "COMPLETED",
        "OUTBOUND",
        436_000,
        Some(hubspot::CONNECTED),
        false,
        Expected::Send,
        "no recording, but notes in hs_call_body stand in for a transcript",
    );
    if let Some(c) = b.ds.hubspot_calls.get_mut(idx) {
        c.properties.insert(
            "hs_call_body".into(),
            "<p>Spoke with <strong>Morgan</strong> about the Q3 renewal.</p><ul><li>Budget approved</li><li>Wants SSO before signing</li></ul>".into(),
        );
    }

    let (cid, t) = next(b);
    let rep = b.rep(0);
    b.hubspot_call(
        cid,
        &rep,
        t,
        "Call - Soylent Labs",
        "COMPLETED",
        "INBOUND",
        188_000,
        Some(hubspot::CONNECTED),
        false,
        Expected::Skip("no-media"),
        "completed with no recording, transcript or notes",
    );

    let (cid, t) = next(b);
    let rep = b.rep(1);
    b.hubspot_call(
        cid,
        &rep,
        t,
        "Discovery - Stark Logistics",
        "IN_PROGRESS",
        "OUTBOUND",
        0,
        None,
        false,
        Expected::Send,
        "in progress; completes with a recording later (apply_later)",
    );
    let ms = b.rng.random_range(300_000..900_000u64);
    let url = format!(
        "https://api.hubspot.example/calling/recordings/{cid}/{}.mp3",
        b.uuid()
    );
    b.ds.later.push(Change::HubspotUpdate {
        call_id: cid,
        changes: vec![
            ("hs_call_status".into(), Some("COMPLETED".into())),
            ("hs_call_duration".into(), Some(ms.to_string())),
            (
                "hs_call_disposition".into(),
                Some(hubspot::CONNECTED.into()),
            ),
            ("hs_call_recording_url".into(), Some(url)),
        ],
    });

    let (cid, t) = next(b);
    let rep = b.rep(2);
    let idx = b.hubspot_call(
        cid,
        &rep,
        t,
        "Duplicate log - Pied Piper",
        "COMPLETED",
        "OUTBOUND",
        615_000,
        Some(hubspot::CONNECTED),
        true,
        Expected::Skip("archived"),
        "archived (deleted) call: search never returns it",
    );
    if let Some(c) = b.ds.hubspot_calls.get_mut(idx) {
        c.archived = true;
    }

    let (cid, t) = next(b);
    let rep = b.rep(3);
    b.hubspot_call(
        cid,
        &rep,
        t,
        "Quick question - Vandelay",
        "COMPLETED",
        "OUTBOUND",
        7_000,
        Some(hubspot::LEFT_VOICEMAIL),
        true,
        Expected::SendIfAtLeast(7),
        "a 7-second call",
    );
}

const EXAMPLE_SUMMARY: &str =
    "Nina followed up on the renewal; the customer wants a two-year term with the same seat count.";
const EXAMPLE_TRANSCRIPT: &str = "Rep: Hi, this is Nina from YourCo, calling about your renewal.\nContact: Hi Nina, yes, we were expecting your call.\nRep: Great. Are you happy to keep the same seat count?\nContact: Yes, and we'd like to look at a two-year term.";

fn aloware_day(b: &mut Builder) {
    let nina = b.rep(2);
    // The guide's example: cw_12345, Nina Patel, "Renewal Follow-up", 742 s.
    let mut example = b.aloware_call(
        json!("cw_12345"),
        nina.aloware_user_id,
        datetime!(2026-03-05 18:10 UTC),
        Direction::Outbound,
        Outcome::Completed,
        742,
        Some((31_240, "Renewal Follow-up")),
        false,
    );
    // 742 s is the guide's duration; keep it the call's full length.
    example.wait_time = 0;
    example.duration = 742;
    example.contact.id = json!("ct_7788");
    example.campaign_id = json!("cmp_44");
    let url = b.aloware_recording_url();
    example.recording_url = Some(url.clone());
    example.has_transcription = true;
    let mut events = vec![
        aloware::disposition_completed(&example),
        aloware::recording_saved(&example, &url),
        aloware::call_disposed(&example),
        // The summary, then the text about 20 ms later (captured order).
        aloware::call_summarized(&example, EXAMPLE_SUMMARY),
        aloware::transcript_saved(&example, EXAMPLE_SUMMARY, EXAMPLE_TRANSCRIPT),
    ];
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: "cw_12345".into(),
        what: "the Aloware guide's example call (disposition, recording, repeat, transcript)",
        expected: Expected::Send,
    });

    let mut at = DAY + Duration::minutes(21);
    let mut next_id = 940_868_600u64;
    let mut next = |b: &mut Builder| {
        next_id += b.rng.random_range(1..400);
        at += Duration::minutes(b.rng.random_range(12..55));
        (next_id, at)
    };

    // Inbound, numbers as strings; the recording URL comes with Recording-Saved.
    let (id, t) = next(b);
    let rep = b.rep(4);
    let talk = b.rng.random_range(200..900);
    let call = b.aloware_call(
        json!(id),
        rep.aloware_user_id,
        t,
        Direction::Inbound,
        Outcome::Completed,
        talk,
        Some((31_221, "Interested")),
        true,
    );
    let url = b.aloware_recording_url();
    events.push(aloware::disposition_completed(&call));
    events.push(aloware::recording_saved(&call, &url));
    events.push(aloware::call_disposed(&call));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "inbound; the recording URL arrives with Recording-Saved",
        expected: Expected::Send,
    });

    let (id, t) = next(b);
    let rep = b.rep(5);
    let call = b.aloware_call(
        json!(id),
        rep.aloware_user_id,
        t,
        Direction::Outbound,
        Outcome::Unanswered,
        0,
        Some((31_227, "No Answer")),
        false,
    );
    events.push(aloware::disposition_completed(&call));
    events.push(aloware::call_disposed(&call));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "the lead did not answer",
        expected: Expected::Skip("not-completed"),
    });

    let (id, t) = next(b);
    let rep = b.rep(0);
    let call = b.aloware_call(
        json!(id),
        rep.aloware_user_id,
        t,
        Direction::Outbound,
        Outcome::Failed,
        0,
        None,
        false,
    );
    events.push(aloware::disposition_failed(&call));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "the agent's leg was never answered",
        expected: Expected::Skip("not-completed"),
    });

    let (id, t) = next(b);
    let rep = b.rep(1);
    let mut call = b.aloware_call(
        json!(id),
        rep.aloware_user_id,
        t,
        Direction::Outbound,
        Outcome::Completed,
        6,
        Some((31_230, "Wrong Number")),
        false,
    );
    let url = b.aloware_recording_url();
    call.recording_url = Some(url);
    events.push(aloware::disposition_completed(&call));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "a 6-second call",
        expected: Expected::SendIfAtLeast(6),
    });

    let (id, t) = next(b);
    let mut call = b.aloware_call(
        json!(id),
        5099,
        t,
        Direction::Outbound,
        Outcome::Completed,
        315,
        Some((31_221, "Interested")),
        false,
    );
    let url = b.aloware_recording_url();
    call.recording_url = Some(url);
    events.push(aloware::disposition_completed(&call));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "agent 5099 is not in the rep directory",
        expected: Expected::Skip("unknown-rep"),
    });

    let (id, t) = next(b);
    let rep = b.rep(3);
    let contact_id = b.rng.random_range(30_000_000u64..39_999_999);
    let contact = b.contact(json!(contact_id));
    events.push(aloware::inbound_sms(
        id,
        &contact,
        rep.aloware_user_id,
        "Can we move our call to 3pm?",
        t,
    ));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "an inbound SMS",
        expected: Expected::Skip("not-a-call"),
    });

    events.push(aloware::test_payload());

    let (id, t) = next(b);
    let rep = b.rep(5);
    let talk = b.rng.random_range(200..900);
    let mut call = b.aloware_call(
        json!(id),
        rep.aloware_user_id,
        t,
        Direction::Outbound,
        Outcome::Completed,
        talk,
        Some((31_221, "Interested")),
        false,
    );
    let url = b.aloware_recording_url();
    call.recording_url = Some(url);
    events.push(aloware::disposition_completed(&call));
    events.push(aloware::call_disposed(&call));
    b.ds.cases.push(Case {
        source: Source::Aloware,
        source_id: id.to_string(),
        what: "completed, recorded",
        expected: Expected::Send,
    });

    b.ds.aloware_events = events;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_day() {
        let a = Dataset::demo(7);
        let b = Dataset::demo(7);
        assert_eq!(a.salesloft_calls, b.salesloft_calls);
        assert_eq!(a.hubspot_calls, b.hubspot_calls);
        assert_eq!(a.aloware_events, b.aloware_events);
    }

    #[test]
    fn the_guides_example_calls_are_in_the_demo() {
        let d = Dataset::demo(1);
        let sl = d
            .salesloft_calls
            .iter()
            .find(|c| c.id == 98_765_432)
            .unwrap();
        assert_eq!(sl.duration, Some(485));
        assert_eq!(sl.disposition.as_deref(), Some("Connected"));
        assert_eq!(sl.user_id, Some(1001));
        let hs = d
            .hubspot_calls
            .iter()
            .find(|c| c.id == 987_654_321)
            .unwrap();
        assert_eq!(hs.properties["hs_call_title"], "Discovery - Acme");
        assert_eq!(hs.properties["hs_call_duration"], "1250000");
        assert_eq!(hs.properties["hubspot_owner_id"], "41629711");
        assert_eq!(hs.deal_ids, vec![123_456]);
        let al = d
            .aloware_events
            .iter()
            .find(|e| e["body"]["id"] == "cw_12345")
            .unwrap();
        assert_eq!(al["body"]["duration"], 742);
        assert_eq!(al["body"]["call_disposition"]["name"], "Renewal Follow-up");
    }

    #[test]
    fn backlog_updated_at_strictly_increases_with_id() {
        let d = Dataset::backlog(2_000, 3);
        assert_eq!(d.salesloft_calls.len(), 2_000);
        assert!(
            d.salesloft_calls
                .windows(2)
                .all(|w| w[0].updated_at < w[1].updated_at && w[0].id < w[1].id)
        );
    }

    #[test]
    fn expected_sends_depend_on_the_minimum_duration() {
        let d = Dataset::demo(1);
        let all = d.expected_sent(0);
        let strict = d.expected_sent(30);
        assert_eq!(all.len(), strict.len() + 3);
        assert!(all.contains(&(Source::Salesloft, "98765432".into())));
        assert!(all.contains(&(Source::Hubspot, "987654321".into())));
        assert!(all.contains(&(Source::Aloware, "cw_12345".into())));
    }
}
