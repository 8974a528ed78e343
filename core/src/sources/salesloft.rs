//! Reading one Salesloft call before the plugin maps it, and where a poll
//! starts. The call's user (the rep) is read by id and cached: reps make
//! many calls, and every request spends the team's cost points. A user
//! that cannot be read fails the call's read (it is read again: without
//! the user the call would go to no rep).
//!
//! A call's direction is in its call data record, listed apart (no filter
//! by call): a poll reads the records changed since its own checkpoint and
//! keeps each by its call ([`crate::ledger::records::put`]). A finished call
//! whose record has not been read waits for it, a bounded time; the
//! record's arrival, or the end of the wait, releases it.

use super::Lookups;
use crate::Millis;
use crate::ledger::{Database, LedgerError, hold, intake};

/// The ledger's name for this source.
pub const SOURCE: &str = "salesloft";

/// The checkpoint of the call data records read for polling.
pub const CALL_DATA_RECORDS: &str = "salesloft-call-data-records";

/// The wait reason of a finished call whose call data record (its
/// direction) has not been read yet.
pub const AWAITING_CALL_DATA_RECORD: &str = "call-data-record-pending";

/// Call data records are kept this long after they were read: a call is
/// decided within minutes of its record, and re-reads bring it back.
pub const CALL_DATA_RECORD_TTL_MS: Millis = 7 * 24 * 3_600_000;

/// Whether a call the plugin would send without a direction waits for its
/// call data record instead: only where records are read (`wait_ms` above
/// zero), only the first time (`may_wait`), and only while none was read.
pub fn waits_for_direction(
    may_wait: bool,
    has_record: bool,
    wait_ms: Millis,
    sent_without_direction: bool,
) -> bool {
    may_wait && !has_record && wait_ms > 0 && sent_without_direction
}

/// The reason a call waits for its record.
pub fn direction_wait_detail(call_id: &str, wait_ms: Millis) -> String {
    format!(
        "Salesloft call {call_id} waits up to {} s for its call data record, which gives its direction.",
        wait_ms / 1000
    )
}

/// A call decided again with its record: newer than the wait's version, so
/// the ledger decides afresh.
pub fn version_with_record(updated_at: &str) -> String {
    format!("{updated_at}+cdr")
}

/// A call waiting for its record, ready to be decided again: its sync
/// method and the call record held for it. `None` when it does not wait.
pub fn waiting_for_record<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
) -> Result<Option<(String, String)>, LedgerError> {
    let waiting = intake::waiting(db, SOURCE, AWAITING_CALL_DATA_RECORD)?;
    let Some((_, _, via, _)) = waiting.into_iter().find(|(id, ..)| id == call_id) else {
        return Ok(None);
    };
    Ok(hold::held(db, SOURCE, call_id)?
        .and_then(|h| h.body)
        .map(|body| (via, body)))
}

/// Calls whose wait for a record ended by `now`: they go without a
/// direction.
pub fn waits_over<D: Database + ?Sized>(
    db: &D,
    wait_ms: Millis,
    now: Millis,
) -> Result<Vec<String>, LedgerError> {
    let cutoff = now - wait_ms;
    Ok(intake::waiting(db, SOURCE, AWAITING_CALL_DATA_RECORD)?
        .into_iter()
        .take_while(|(_, _, _, decided_at)| *decided_at <= cutoff)
        .map(|(id, ..)| id)
        .collect())
}

/// The next request the read needs (the plugin's `user-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    User {
        user_id: String,
    },
    /// Everything is read: map the call with its user's record, if any.
    Map {
        user: Option<String>,
    },
}

/// The read of one call's user.
#[derive(Debug, Clone)]
pub struct CallRead {
    user_id: Option<String>,
    user: Option<Option<String>>,
    /// Read now (not from the cache): for [`CallRead::remember`].
    read: bool,
}

impl CallRead {
    /// Starts the read for a call linked to `user_id`, with what the cache
    /// holds. `can_read` is false without an API key: the rep then comes
    /// from the rep directory alone.
    pub fn new(user_id: Option<String>, can_read: bool, users: &Lookups, now: Millis) -> CallRead {
        let user = match &user_id {
            None => Some(None),
            Some(_) if !can_read => Some(None),
            Some(id) => users.get(id, now),
        };
        CallRead {
            user_id,
            user,
            read: false,
        }
    }

    /// What to fetch next, or what to map the call with.
    pub fn next(&self) -> Need {
        match (&self.user, &self.user_id) {
            (Some(user), _) => Need::Map { user: user.clone() },
            (None, Some(id)) => Need::User {
                user_id: id.clone(),
            },
            (None, None) => Need::Map { user: None },
        }
    }

    /// Takes the user's record (`None`: Salesloft has no such user). An
    /// error is handed back: it fails the call's read.
    pub fn fetched<E>(&mut self, answer: Result<Option<String>, E>) -> Result<(), E> {
        self.user = Some(answer?);
        self.read = true;
        Ok(())
    }

    /// Keeps a user read now in the cache.
    pub fn remember(&self, users: &mut Lookups, now: Millis) {
        if let (true, Some(id), Some(user)) = (self.read, &self.user_id, &self.user) {
            users.put(id, user.clone(), now);
        }
    }
}

/// Where a first poll starts: calls updated since `since_ms`, as
/// Salesloft's filter takes it (RFC 3339 in UTC with microseconds), page 1.
pub fn start(since_ms: Millis) -> (String, u32) {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(since_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    (at.format(&format).unwrap_or_default(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_record_is_read_once_an_hour() {
        let mut users = Lookups::default();
        let mut read = CallRead::new(Some("9".into()), true, &users, 0);
        assert_eq!(
            read.next(),
            Need::User {
                user_id: "9".into()
            }
        );
        read.fetched::<()>(Ok(Some("{}".into()))).unwrap();
        read.remember(&mut users, 0);
        let again = CallRead::new(Some("9".into()), true, &users, 10);
        assert_eq!(
            again.next(),
            Need::Map {
                user: Some("{}".into())
            }
        );
    }

    #[test]
    fn without_an_api_key_the_rep_comes_from_the_directory() {
        let read = CallRead::new(Some("9".into()), false, &Lookups::default(), 0);
        assert_eq!(read.next(), Need::Map { user: None });
    }

    #[test]
    fn a_user_that_cannot_be_read_fails_the_read() {
        let mut read = CallRead::new(Some("9".into()), true, &Lookups::default(), 0);
        assert_eq!(read.fetched(Err("503")), Err("503"));
    }

    #[test]
    fn a_first_poll_starts_at_the_look_back_in_salesloft_s_format() {
        assert_eq!(
            start(1_776_870_000_123),
            ("2026-04-22T15:00:00.123000Z".to_string(), 1)
        );
    }
}
