//! One send to Kendo, start to end, written once for both drivers: sends a
//! dead instance left in flight recovered; the oldest due call claimed
//! under a lease when the key's pacing, its pause and a 429 hold allow;
//! the payload posted; a 2xx kept before its answer is read (so an instance
//! that dies reading it leaves a call recorded sent, not sent twice); the
//! answer read by the plugin; what it means decided ([`after_answer`]) and
//! carried out ([`record`]), with the call's write-backs queued in the same
//! transaction when Kendo has it.
//!
//! The driver makes the request, runs the database calls where it may
//! block, and reads the answer with its plugin ([`KendoApi`]); it then
//! logs and reports the [`Step`] as it likes.

use std::future::Future;

use crate::Millis;
use crate::answer::{Action, Answer, AnswerPolicy, Sent, after_answer, unread};
use crate::ledger::record::record;
use crate::ledger::send::{
    Claim, ClaimRequest, OutboxItem, Recovered, SendPacing, answered, claim_send, recover_in_flight,
};
use crate::ledger::{CallKey, Database, LedgerError, write_back};
use crate::ports::Trap;

/// Kendo's answer as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReply {
    /// No connection was made: Kendo never saw the request.
    Unsent(String),
    /// The request may have reached Kendo (a timeout, a connection
    /// dropped before the answer): the call may exist now.
    Lost(String),
    /// The runtime refused to make the request (Spin's
    /// `allowed_outbound_hosts`): a configuration problem.
    Refused(String),
}

/// Kendo's Push API and what a send needs around it.
pub trait KendoApi {
    type Error: From<LedgerError>;

    /// Runs `f` on the state database (the host runs it off its async
    /// threads; the database may block).
    fn db<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Database) -> Result<R, LedgerError> + Send + 'static,
    ) -> impl Future<Output = Result<R, Self::Error>>;

    /// Posts one ingest body, waiting at most `timeout_ms` for the answer.
    fn post(
        &self,
        payload: &str,
        timeout_ms: Millis,
    ) -> impl Future<Output = Result<Reply, NoReply>>;

    /// What the plugin reads in Kendo's answer; `Err` when it trapped.
    fn read_answer(&self, reply: Reply, now_s: u64) -> impl Future<Output = Result<Answer, Trap>>;

    fn now(&self) -> Millis;

    /// A uniform number in [0, 1), the back-off's jitter.
    fn jitter(&self) -> f64;

    /// A fresh claim token (random: it names this send's claim).
    fn claim_token(&self) -> String;

    /// The sources whose calls get write-backs once Kendo has them.
    fn write_backs(&self) -> Vec<String>;
}

/// The key a send goes with.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub team: &'a str,
    /// [`crate::key_fingerprint`] of the key: a pause names it.
    pub fingerprint: &'a str,
}

/// What one step came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A request went out; what its answer means is recorded. `held`:
    /// this send's claim still held it (false: its lease ran out and
    /// another instance recovered the send, which decides its fate; a 201
    /// is recorded whatever the claim).
    Sent {
        item: OutboxItem,
        action: Action,
        held: bool,
    },
    /// The key's pacing allows the next request then.
    Pace(Millis),
    /// Nothing due; the next send falls due then (`None`: none queued).
    Idle(Option<Millis>),
    /// The key is paused: why.
    Paused(String),
}

/// One step of a key's sends (see the module's text): the sends a dead
/// instance left recovered, then at most one request.
pub async fn step<K: KendoApi>(
    api: &K,
    key: Key<'_>,
    pacing: SendPacing,
    answers: AnswerPolicy,
) -> Result<(Recovered, Step), K::Error> {
    let now = api.now();
    let write_backs = api.write_backs();
    let (team, fingerprint, token) = (
        key.team.to_string(),
        key.fingerprint.to_string(),
        api.claim_token(),
    );
    let queued = write_backs.clone();
    let (recovered, claim) = api
        .db(move |db| {
            let recovered =
                recover_in_flight(db, answers.ambiguous_resends, now, |db, key, id| {
                    queue_write_back(&queued, db, key, id, now)
                })?;
            let claim = claim_send(
                db,
                &ClaimRequest {
                    team: &team,
                    key_fingerprint: &fingerprint,
                    pacing,
                    lease_ms: answers.lease_ms(),
                    token: &token,
                },
                now,
            )?;
            Ok((recovered, claim))
        })
        .await?;
    let item = match claim {
        Claim::Claimed(item) => item,
        Claim::Pace(at) => return Ok((recovered, Step::Pace(at))),
        Claim::Idle(at) => return Ok((recovered, Step::Idle(at))),
        Claim::Paused(reason) => return Ok((recovered, Step::Paused(reason))),
    };
    // The claim is durable before the request leaves: after a crash this
    // row is exactly a send whose outcome is unknown.
    let reply = api
        .post(&item.payload, answers.timeout_after(item.ambiguous))
        .await;
    let answer = match reply {
        Ok(reply) => {
            let (kept, status) = (item.clone(), reply.status);
            api.db(move |db| answered(db, &kept, status)).await?;
            let now_s = (api.now() / 1000).max(0) as u64;
            match api.read_answer(reply, now_s).await {
                Ok(answer) => answer,
                Err(Trap(trap)) => unread(status, &trap),
            }
        }
        Err(NoReply::Unsent(why)) => Answer::Unsent(why),
        Err(NoReply::Lost(why)) => Answer::NoAnswer(why),
        Err(NoReply::Refused(why)) => Answer::Refused(why),
    };
    let now = api.now();
    let action = after_answer(
        &answers,
        Sent {
            attempts: item.attempts,
            ambiguous: item.ambiguous,
        },
        answer,
        now,
        api.jitter(),
        &item.key.source_id,
        key.team,
    );
    let (recorded, done, fingerprint) = (item.clone(), action.clone(), key.fingerprint.to_string());
    let held = api
        .db(move |db| {
            record(db, &recorded, &done, &fingerprint, now, |db, key, id| {
                queue_write_back(&write_backs, db, key, id, now)
            })
        })
        .await?;
    Ok((recovered, Step::Sent { item, action, held }))
}

/// Queues `Kendo Sent` (and the callId) for a call Kendo has, when its
/// source writes back.
fn queue_write_back(
    sources: &[String],
    db: &dyn Database,
    key: &CallKey,
    call_id: Option<&str>,
    now: Millis,
) -> Result<(), LedgerError> {
    if sources.contains(&key.source) {
        write_back::enqueue_sent(db, key, call_id, now)?;
    }
    Ok(())
}
