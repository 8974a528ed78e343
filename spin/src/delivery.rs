//! The Spin app's calls on Spin's SQLite, in the host's schema
//! (`core/migrations`, applied here statement by statement): the ledger
//! makes a call go out once across every instance sharing the database,
//! sends are claimed in one `BEGIN IMMEDIATE` transaction that also checks
//! the key's pacing against every instance's sends (the core crate's
//! `Pacer`), and what Kendo's answer means is the core crate's
//! `after_answer`, carried out here.
//!
//! The statements are this driver's own: they mirror the host's store
//! (`host/src/store.rs`) on the same tables, so the host's `status` and
//! `deliveries` can read a database the Spin app wrote.

use anyhow::{Context as _, Result, bail};
use kendo_bridge_core::Millis;
use kendo_bridge_core::answer::Action;
use kendo_bridge_core::pacing::Pacer;
use kendo_bridge_core::schema::{MIGRATIONS, statements};
use spin_sdk::sqlite::{Connection, QueryResult, Value};

/// The Spin app sends with one key: its calls are this team's.
pub const TEAM: &str = "default";

/// Kendo's limit per key: 30 requests a minute, with a 1% margin.
const LIMIT: u32 = 30;
const WINDOW_MS: Millis = 60_000;
const MARGIN: f64 = 0.01;

/// What a claim attempt found.
pub enum Claim {
    /// In flight under this claim: send it.
    Claimed(Claimed),
    /// The key's window holds it until then.
    Pace(Millis),
    /// The key is paused, for this reason.
    Paused(String),
    /// Not queued (sent, in flight elsewhere, or ended).
    Gone,
}

/// A send in flight.
pub struct Claimed {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    pub payload: String,
    pub attempts: u32,
    pub ambiguous: u32,
    pub token: String,
}

/// A call the plugin decided to send.
#[derive(Clone, Copy)]
pub struct Decided<'a> {
    pub source: &'a str,
    pub source_id: &'a str,
    /// `webhook` or `polling`.
    pub via: &'a str,
    pub payload: &'a str,
    pub title: &'a str,
    pub rep_email: Option<&'a str>,
}

/// Where the calls stand.
pub struct Counts {
    /// `(ledger state, calls)`.
    pub by_state: Vec<(String, i64)>,
    /// Sends waiting in the queue.
    pub queued: i64,
    /// Why the key is paused, if it is.
    pub paused: Option<String>,
}

/// The app's database connection.
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens the `default` database and brings it to the shared schema.
    pub fn open() -> Result<Db> {
        let conn = Connection::open_default().context(
            "cannot open Spin's `default` SQLite database (sqlite_databases in spin.toml)",
        )?;
        let db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    fn exec(&self, sql: &str, params: &[Value]) -> Result<QueryResult> {
        self.conn
            .execute(sql, params)
            .with_context(|| format!("SQLite: {}", first_line(sql)))
    }

    fn migrate(&self) -> Result<()> {
        if self.user_version()? as usize >= MIGRATIONS.len() {
            return Ok(());
        }
        // Instances starting together: one migrates, the others then find
        // the version moved and skip.
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = (|| {
            let found = self.user_version()? as usize;
            if found > MIGRATIONS.len() {
                bail!("the database was written by a newer kendo-bridge (schema {found})");
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
                for statement in statements(sql) {
                    self.exec(&statement, &[])?;
                }
                self.exec(&format!("PRAGMA user_version = {}", i + 1), &[])?;
            }
            Ok(())
        })();
        self.finish(result)
    }

    fn user_version(&self) -> Result<i64> {
        let rows = self.exec("PRAGMA user_version", &[])?;
        Ok(int(&rows, 0, 0).unwrap_or(0))
    }

    /// Commits after `Ok`, rolls back after an error.
    fn finish<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Ok(value) => {
                self.exec("COMMIT", &[])?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK", &[]);
                Err(e)
            }
        }
    }

    /// Queues a decided call, once: `None` when the ledger already has it
    /// (sent, queued or ended, by this instance or another).
    pub fn intake(&self, call: &Decided<'_>, now: Millis) -> Result<Option<i64>> {
        let Decided {
            source,
            source_id,
            via,
            payload,
            title,
            rep_email,
        } = *call;
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = (|| {
            let inserted = self.exec(
                "INSERT INTO ledger (source, source_id, team, state, version, sync_method, title,
                                     rep_email, first_seen_at, updated_at)
                 VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (source, source_id, team) DO UPDATE SET seen_count = seen_count + 1
                 RETURNING seen_count",
                &[
                    text(source),
                    text(source_id),
                    text(TEAM),
                    text(via),
                    text(via),
                    text(title),
                    rep_email.map_or(Value::Null, text),
                    Value::Integer(now),
                    Value::Integer(now),
                ],
            )?;
            if int(&inserted, 0, 0) != Some(1) {
                return Ok(None);
            }
            let queued = self.exec(
                "INSERT INTO outbox (source, source_id, team, payload, state, not_before)
                 VALUES (?, ?, ?, ?, 'pending', ?) RETURNING id",
                &[
                    text(source),
                    text(source_id),
                    text(TEAM),
                    text(payload),
                    Value::Integer(now),
                ],
            )?;
            Ok(int(&queued, 0, 0))
        })();
        self.finish(result)
    }

    /// Claims the send `id` if the key's pacing allows a request now.
    pub fn claim(
        &self,
        id: i64,
        key_fingerprint: &str,
        token: &str,
        lease_ms: Millis,
        now: Millis,
    ) -> Result<Claim> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = (|| {
            let paused = self.exec(
                "SELECT reason, key_fingerprint FROM paused_teams WHERE team = ?",
                &[text(TEAM)],
            )?;
            if let (Some(reason), Some(fingerprint)) =
                (string(&paused, 0, 0), string(&paused, 0, 1))
            {
                if fingerprint == key_fingerprint {
                    return Ok(Claim::Paused(reason));
                }
                // The key was replaced: try again.
                self.exec("DELETE FROM paused_teams WHERE team = ?", &[text(TEAM)])?;
            }
            let history = self.exec(
                "SELECT at FROM sends WHERE team = ? AND at >= ? ORDER BY at",
                &[text(TEAM), Value::Integer(now - 2 * WINDOW_MS)],
            )?;
            let history: Vec<Millis> = (0..history.rows.len())
                .filter_map(|r| int(&history, r, 0))
                .collect();
            let last = self.exec(
                "SELECT MAX(COALESCE(slot, at)) FROM sends WHERE team = ?",
                &[text(TEAM)],
            )?;
            let blocked =
                self.exec("SELECT until FROM key_blocks WHERE team = ?", &[text(TEAM)])?;
            let mut pacer =
                Pacer::new(LIMIT, WINDOW_MS, MARGIN, history).after_slot(int(&last, 0, 0));
            if let Some(until) = int(&blocked, 0, 0) {
                pacer.block_until(until);
            }
            let slot = pacer.next_slot(now);
            if slot > now {
                return Ok(Claim::Pace(slot));
            }
            let taken = self.exec(
                "UPDATE outbox SET in_flight_since = ?, claim = ?, lease_until = ?, attempts = attempts + 1
                 WHERE id = ? AND in_flight_since IS NULL AND state = 'pending' AND not_before <= ?
                 RETURNING source, source_id, payload, attempts, ambiguous",
                &[
                    Value::Integer(now),
                    text(token),
                    Value::Integer(now + lease_ms),
                    Value::Integer(id),
                    Value::Integer(now),
                ],
            )?;
            let (Some(source), Some(source_id), Some(payload)) = (
                string(&taken, 0, 0),
                string(&taken, 0, 1),
                string(&taken, 0, 2),
            ) else {
                return Ok(Claim::Gone);
            };
            self.exec(
                "INSERT INTO sends (team, at, slot) VALUES (?, ?, ?)",
                &[
                    text(TEAM),
                    Value::Integer(now),
                    Value::Integer(pacer.slot_of(now)),
                ],
            )?;
            self.exec(
                "UPDATE ledger SET state = 'sending', attempts = attempts + 1, updated_at = ?,
                        reason_code = NULL, reason = NULL
                 WHERE source = ? AND source_id = ? AND team = ?",
                &[
                    Value::Integer(now),
                    text(&source),
                    text(&source_id),
                    text(TEAM),
                ],
            )?;
            Ok(Claim::Claimed(Claimed {
                id,
                source,
                source_id,
                payload,
                // Before this request, as the core counts them.
                attempts: int(&taken, 0, 3).unwrap_or(1).saturating_sub(1) as u32,
                ambiguous: int(&taken, 0, 4).unwrap_or(0) as u32,
                token: token.to_string(),
            }))
        })();
        self.finish(result)
    }

    /// Records what the core decided Kendo's answer means, if the claim
    /// still holds the send (false: it expired and another instance took
    /// the send over).
    pub fn record(
        &self,
        sent: &Claimed,
        action: &Action,
        key_fingerprint: &str,
        now: Millis,
    ) -> Result<bool> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = (|| {
            let held = self.exec(
                "UPDATE outbox SET in_flight_since = NULL, claim = NULL, lease_until = NULL
                 WHERE id = ? AND claim = ? RETURNING id",
                &[Value::Integer(sent.id), text(&sent.token)],
            )?;
            if held.rows.is_empty() && !matches!(action, Action::Created { .. }) {
                return Ok(false);
            }
            let key = [text(&sent.source), text(&sent.source_id), text(TEAM)];
            let ledger = |state: &str, code: Option<&str>, reason: Option<&str>| {
                self.exec(
                    "UPDATE ledger SET state = ?, reason_code = ?, reason = ?, updated_at = ?
                     WHERE source = ? AND source_id = ? AND team = ?",
                    &[
                        text(state),
                        code.map_or(Value::Null, text),
                        reason.map_or(Value::Null, text),
                        Value::Integer(now),
                        key[0].clone(),
                        key[1].clone(),
                        key[2].clone(),
                    ],
                )
            };
            let requeue = |not_before: Millis,
                           code: &str,
                           reason: &str,
                           lost: bool|
             -> Result<()> {
                self.exec(
                    "UPDATE outbox SET not_before = ?, last_error = ?, ambiguous = ambiguous + ? WHERE id = ?",
                    &[
                        Value::Integer(not_before),
                        text(reason),
                        Value::Integer(i64::from(lost)),
                        Value::Integer(sent.id),
                    ],
                )?;
                ledger("queued", Some(code), Some(reason))?;
                Ok(())
            };
            let maybe_duplicated = || {
                self.exec(
                    "UPDATE ledger SET maybe_duplicated = 1 WHERE source = ? AND source_id = ? AND team = ?",
                    &key,
                )
            };
            match action {
                Action::Created { call_id, .. } => {
                    self.exec(
                        "DELETE FROM outbox WHERE id = ?",
                        &[Value::Integer(sent.id)],
                    )?;
                    self.exec(
                        "UPDATE ledger SET state = 'sent', kendo_call_id = ?, sent_at = ?, updated_at = ?,
                                reason_code = NULL, reason = NULL
                         WHERE source = ? AND source_id = ? AND team = ?",
                        &[
                            call_id.as_deref().map_or(Value::Null, text),
                            Value::Integer(now),
                            Value::Integer(now),
                            key[0].clone(),
                            key[1].clone(),
                            key[2].clone(),
                        ],
                    )?;
                    if let Some(call_id) = call_id {
                        self.exec(
                            "INSERT INTO kendo_call_ids (source, source_id, team, kendo_call_id, at)
                             VALUES (?, ?, ?, ?, ?)",
                            &[key[0].clone(), key[1].clone(), key[2].clone(), text(call_id), Value::Integer(now)],
                        )?;
                    }
                }
                Action::RateLimited { retry_at, reason } => {
                    self.exec(
                        "INSERT INTO key_blocks (team, until) VALUES (?, ?)
                         ON CONFLICT (team) DO UPDATE SET until = MAX(until, excluded.until)",
                        &[text(TEAM), Value::Integer(*retry_at)],
                    )?;
                    requeue(*retry_at, "rate-limited", reason, false)?;
                }
                Action::Retry { retry_at, reason } => {
                    requeue(*retry_at, "transient", reason, false)?
                }
                Action::ResendAfterLostAnswer {
                    retry_at, reason, ..
                } => {
                    requeue(*retry_at, "answer-lost", reason, true)?;
                    maybe_duplicated()?;
                }
                Action::PauseKey { reason } => {
                    self.exec(
                        "INSERT INTO paused_teams (team, reason, key_fingerprint, paused_at) VALUES (?, ?, ?, ?)
                         ON CONFLICT (team) DO UPDATE SET reason = excluded.reason,
                            key_fingerprint = excluded.key_fingerprint, paused_at = excluded.paused_at",
                        &[text(TEAM), text(reason), text(key_fingerprint), Value::Integer(now)],
                    )?;
                    // Not the call's fault: it keeps its place.
                    requeue(now, "key-refused", reason, false)?;
                }
                Action::Park { reason } => {
                    self.exec(
                        "UPDATE outbox SET state = 'parked', last_error = ?, ambiguous = ambiguous + 1 WHERE id = ?",
                        &[text(reason), Value::Integer(sent.id)],
                    )?;
                    ledger("outcome-unknown", Some("outcome-unknown"), Some(reason))?;
                    maybe_duplicated()?;
                }
                Action::Dead { reason } => {
                    self.exec(
                        "UPDATE outbox SET state = 'dead', last_error = ? WHERE id = ?",
                        &[text(reason), Value::Integer(sent.id)],
                    )?;
                    ledger("dead", Some("retries-exhausted"), Some(reason))?;
                }
                Action::Fail { code, reason } => {
                    self.exec(
                        "UPDATE outbox SET state = 'dead', last_error = ? WHERE id = ?",
                        &[text(reason), Value::Integer(sent.id)],
                    )?;
                    ledger("failed", Some(code), Some(reason))?;
                }
            }
            Ok(true)
        })();
        self.finish(result)
    }

    /// Sends whose instance died with them (the claim's lease ran out) go
    /// back to the queue as lost answers, flagged as possibly duplicated.
    pub fn recover_expired(&self, now: Millis) -> Result<u64> {
        self.exec("BEGIN IMMEDIATE", &[])?;
        let result = (|| {
            let expired = self.exec(
                "UPDATE outbox SET in_flight_since = NULL, claim = NULL, lease_until = NULL,
                        ambiguous = ambiguous + 1, not_before = ?
                 WHERE team = ? AND lease_until IS NOT NULL AND lease_until < ?
                 RETURNING source, source_id",
                &[Value::Integer(now), text(TEAM), Value::Integer(now)],
            )?;
            for r in 0..expired.rows.len() {
                let (Some(source), Some(id)) = (string(&expired, r, 0), string(&expired, r, 1))
                else {
                    continue;
                };
                self.exec(
                    "UPDATE ledger SET state = 'queued', maybe_duplicated = 1, reason_code = 'unknown-outcome',
                            reason = 'the instance sending this call stopped; sending it again (Kendo may now hold it twice)'
                     WHERE source = ? AND source_id = ? AND team = ?",
                    &[text(&source), text(&id), text(TEAM)],
                )?;
            }
            Ok(expired.rows.len() as u64)
        })();
        self.finish(result)
    }

    /// Queued sends due now, oldest first.
    pub fn due(&self, now: Millis) -> Result<Vec<i64>> {
        let rows = self.exec(
            "SELECT id FROM outbox WHERE team = ? AND state = 'pending' AND in_flight_since IS NULL
               AND not_before <= ? ORDER BY not_before, id",
            &[text(TEAM), Value::Integer(now)],
        )?;
        Ok((0..rows.rows.len())
            .filter_map(|r| int(&rows, r, 0))
            .collect())
    }

    /// Keeps a webhook delivery in the inbox: `ended` with its reason when
    /// it can never be processed, else pending for `POST /tick`. The same
    /// delivery twice is kept once.
    pub fn inbox_keep(
        &self,
        source: &str,
        body: &[u8],
        reason: &str,
        ended: bool,
        now: Millis,
    ) -> Result<()> {
        use sha2::{Digest, Sha256};
        let digest: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.exec(
            "INSERT INTO inbox (source, delivery_id, body, received_at, processed_at, error, attempts, last_error)
             VALUES (?, ?, ?, ?, ?, ?, 1, ?)
             ON CONFLICT (source, delivery_id) DO NOTHING",
            &[
                text(source),
                text(&format!("sha256:{digest}")),
                Value::Blob(body.to_vec()),
                Value::Integer(now),
                if ended { Value::Integer(now) } else { Value::Null },
                if ended { text(reason) } else { Value::Null },
                text(reason),
            ],
        )?;
        Ok(())
    }

    /// Deliveries of `source` kept for a later attempt.
    pub fn inbox_pending(&self, source: &str) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows = self.exec(
            "SELECT id, body FROM inbox WHERE source = ? AND processed_at IS NULL ORDER BY id",
            &[text(source)],
        )?;
        Ok((0..rows.rows.len())
            .filter_map(|r| {
                let id = int(&rows, r, 0)?;
                match rows.rows.get(r)?.values.get(1)? {
                    Value::Blob(b) => Some((id, b.clone())),
                    Value::Text(t) => Some((id, t.clone().into_bytes())),
                    _ => None,
                }
            })
            .collect())
    }

    /// A kept delivery is done (with the reason it ended unread, if so).
    pub fn inbox_done(&self, id: i64, error: Option<&str>, now: Millis) -> Result<()> {
        self.exec(
            "UPDATE inbox SET processed_at = ?, error = ? WHERE id = ?",
            &[
                Value::Integer(now),
                error.map_or(Value::Null, text),
                Value::Integer(id),
            ],
        )?;
        Ok(())
    }

    /// A kept delivery failed again for a passing reason.
    pub fn inbox_failed(&self, id: i64, reason: &str) -> Result<()> {
        self.exec(
            "UPDATE inbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            &[text(reason), Value::Integer(id)],
        )?;
        Ok(())
    }

    /// A source's stored cursor.
    pub fn checkpoint(&self, source: &str) -> Result<Option<String>> {
        let rows = self.exec(
            "SELECT cursor FROM checkpoints WHERE source = ?",
            &[text(source)],
        )?;
        Ok(string(&rows, 0, 0))
    }

    /// Moves a source's cursor.
    pub fn set_checkpoint(&self, source: &str, cursor: &str, now: Millis) -> Result<()> {
        self.exec(
            "INSERT INTO checkpoints (source, cursor, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            &[text(source), text(cursor), Value::Integer(now)],
        )?;
        Ok(())
    }

    /// Lifts a pause (the operator replaced the key).
    pub fn resume(&self) -> Result<()> {
        self.exec("DELETE FROM paused_teams WHERE team = ?", &[text(TEAM)])?;
        Ok(())
    }

    /// Calls by ledger state, queued sends, and the pause if any.
    pub fn counts(&self) -> Result<Counts> {
        let states = self.exec(
            "SELECT state, COUNT(*) FROM ledger GROUP BY state ORDER BY state",
            &[],
        )?;
        let by_state = (0..states.rows.len())
            .filter_map(|r| Some((string(&states, r, 0)?, int(&states, r, 1)?)))
            .collect();
        let queued = self.exec("SELECT COUNT(*) FROM outbox WHERE state = 'pending'", &[])?;
        let paused = self.exec(
            "SELECT reason FROM paused_teams WHERE team = ?",
            &[text(TEAM)],
        )?;
        Ok(Counts {
            by_state,
            queued: int(&queued, 0, 0).unwrap_or(0),
            paused: string(&paused, 0, 0),
        })
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn int(result: &QueryResult, row: usize, column: usize) -> Option<i64> {
    match result.rows.get(row)?.values.get(column)? {
        Value::Integer(v) => Some(*v),
        _ => None,
    }
}

fn string(result: &QueryResult, row: usize, column: usize) -> Option<String> {
    match result.rows.get(row)?.values.get(column)? {
        Value::Text(v) => Some(v.clone()),
        _ => None,
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or_default()
}
