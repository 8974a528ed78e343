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

/// A list's cursor as stored in the checkpoint, by either driver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCursor {
    pub updated_since: Option<String>,
    pub page: u32,
    /// Entries of this page already handled: a driver whose budget ends
    /// inside a page (the Spin app's transcript sweep) goes on from there;
    /// one that ignores it reads the page from its start, which changes
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<usize>,
}

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

/// A call's version when it is decided again after its first decision:
/// its `updated_at`, then how many of the two later facts it was decided
/// with (its wait for a call data record is over, by the record or by the
/// time; its transcript is held), then which. Each facts' count is newer
/// than the last whichever order they come in: a transcript read during
/// the wait (`~1transcript`) is older than the release after it (`~2`),
/// and a release (`~1released`) older than a transcript read after it
/// (`~2`). Once the two suffixes were fixed (`+cdr`, `+transcript`) and a
/// release after a transcript compared older, so the call never left its
/// wait. `~` sorts after every character of an `updated_at` and of those
/// old suffixes, so a call decided before the change is decided again.
fn redecided_version(updated_at: &str, released: bool, transcript: bool) -> String {
    match (released, transcript) {
        (true, true) => format!("{updated_at}~2"),
        (true, false) => format!("{updated_at}~1released"),
        (false, true) => format!("{updated_at}~1transcript"),
        (false, false) => updated_at.to_string(),
    }
}

/// The version of a call released from its wait (its record came, or the
/// wait is over): newer than the wait's, and than a transcript's read
/// during the wait.
pub fn version_with_record<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
    updated_at: &str,
) -> Result<String, LedgerError> {
    let transcript = hold::held(db, SOURCE, call_id)?.is_some_and(|h| h.transcript.is_some());
    Ok(redecided_version(updated_at, true, transcript))
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

/// The checkpoint of the transcript sweep.
pub const TRANSCRIPTS: &str = "salesloft-transcripts";

/// Sentence pages (of 100) read for one transcript at most: five thousand
/// sentences, hours of talk; a longer transcript goes cut, never holds up
/// the sweep.
pub const MAX_SENTENCE_PAGES: u32 = 50;

/// The version of a call decided again with its transcript: newer than
/// its first decision's, and than its release if it was released; a call
/// still waiting for its record stays older than its release.
pub fn version_with_transcript<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
    updated_at: &str,
) -> Result<String, LedgerError> {
    let waiting = intake::waiting(db, SOURCE, AWAITING_CALL_DATA_RECORD)?
        .iter()
        .any(|(id, ..)| id == call_id);
    Ok(redecided_version(updated_at, !waiting, true))
}

/// Whether a polled call's record is kept after its decision, so it can be
/// decided again without another request: a skip a change of configuration
/// can fix, or (with the transcript sweep on) anything not sent, which a
/// transcript that comes later may turn into a send.
pub fn keeps_record(outcome: &intake::Outcome, transcripts: bool) -> bool {
    crate::ledger::redecide::fixable(outcome)
        || (transcripts && !matches!(outcome, intake::Outcome::Send { .. }))
}

/// The next request of a transcript's read (the plugin plans each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptNeed {
    /// The transcription's conversation, which names its call
    /// (`conversation-request`, then `read-conversation`).
    Conversation { conversation_id: String },
    /// A page of its sentences (`sentences-request`, then
    /// `sentences-has-more`).
    Sentences { transcription_id: String, page: u32 },
    /// Read: hold `pages` (a JSON list of sentence pages) as the call's
    /// transcript, and decide the call again if its record is held.
    Hold { call_id: String, pages: String },
    /// The chain cannot be followed (no conversation, or one naming no
    /// call): nothing to keep. The call goes with its audio alone.
    Nothing,
}

/// The read of one listed transcription: its conversation (for the call it
/// belongs to, which Salesloft does not put on the transcription), then its
/// sentence pages until the last or [`MAX_SENTENCE_PAGES`].
#[derive(Debug, Clone)]
pub struct TranscriptRead {
    transcription_id: String,
    conversation_id: Option<String>,
    /// `None` until the conversation is read; `Some(None)` when it names
    /// no call.
    call_id: Option<Option<String>>,
    pages: Vec<String>,
    done: bool,
}

impl TranscriptRead {
    /// Starts the read of a transcription as listed.
    pub fn new(transcription_id: String, conversation_id: Option<String>) -> TranscriptRead {
        TranscriptRead {
            transcription_id,
            conversation_id,
            call_id: None,
            pages: Vec::new(),
            done: false,
        }
    }

    /// What to fetch next, or what to keep.
    pub fn next(&self) -> TranscriptNeed {
        let Some(conversation_id) = &self.conversation_id else {
            return TranscriptNeed::Nothing;
        };
        match &self.call_id {
            None => TranscriptNeed::Conversation {
                conversation_id: conversation_id.clone(),
            },
            Some(None) => TranscriptNeed::Nothing,
            Some(Some(call_id)) if self.done => TranscriptNeed::Hold {
                call_id: call_id.clone(),
                pages: serde_json::to_string(&self.pages).unwrap_or_else(|_| "[]".into()),
            },
            Some(Some(_)) => TranscriptNeed::Sentences {
                transcription_id: self.transcription_id.clone(),
                page: self.pages.len() as u32 + 1,
            },
        }
    }

    /// Takes the conversation's call id (`None`: no conversation, or one
    /// naming no call).
    pub fn conversation(&mut self, call_id: Option<String>) {
        self.call_id = Some(call_id);
    }

    /// Takes a sentence page (`None`: Salesloft has no such page) and
    /// whether another follows.
    pub fn sentences(&mut self, page: Option<String>, more: bool) {
        match page {
            Some(page) => {
                self.pages.push(page);
                self.done = !more || self.pages.len() as u32 >= MAX_SENTENCE_PAGES;
            }
            None => self.done = true,
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
    fn a_transcript_is_read_from_its_conversation_then_its_sentence_pages() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        assert_eq!(
            read.next(),
            TranscriptNeed::Conversation {
                conversation_id: "c1".into()
            }
        );
        read.conversation(Some("77".into()));
        assert_eq!(
            read.next(),
            TranscriptNeed::Sentences {
                transcription_id: "t1".into(),
                page: 1
            }
        );
        read.sentences(Some("{\"p\":1}".into()), true);
        assert_eq!(
            read.next(),
            TranscriptNeed::Sentences {
                transcription_id: "t1".into(),
                page: 2
            }
        );
        read.sentences(Some("{\"p\":2}".into()), false);
        assert_eq!(
            read.next(),
            TranscriptNeed::Hold {
                call_id: "77".into(),
                pages: r#"["{\"p\":1}","{\"p\":2}"]"#.into()
            }
        );
    }

    #[test]
    fn a_transcription_without_a_conversation_keeps_nothing() {
        let read = TranscriptRead::new("t1".into(), None);
        assert_eq!(read.next(), TranscriptNeed::Nothing);
    }

    #[test]
    fn a_conversation_naming_no_call_keeps_nothing() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        read.conversation(None);
        assert_eq!(read.next(), TranscriptNeed::Nothing);
    }

    #[test]
    fn a_transcript_stops_at_the_page_limit() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        read.conversation(Some("77".into()));
        for _ in 0..MAX_SENTENCE_PAGES {
            assert!(matches!(read.next(), TranscriptNeed::Sentences { .. }));
            read.sentences(Some("{}".into()), true);
        }
        assert!(matches!(read.next(), TranscriptNeed::Hold { .. }));
    }

    #[test]
    fn a_missing_sentence_page_ends_the_transcript_with_the_pages_read() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        read.conversation(Some("77".into()));
        read.sentences(Some("{}".into()), true);
        read.sentences(None, true);
        assert_eq!(
            read.next(),
            TranscriptNeed::Hold {
                call_id: "77".into(),
                pages: r#"["{}"]"#.into()
            }
        );
    }

    #[test]
    fn a_fixable_skip_keeps_the_record_and_a_send_does_not() {
        let skip = intake::Outcome::Skip {
            code: "unknown-rep".into(),
            detail: String::new(),
        };
        let no_media = intake::Outcome::Skip {
            code: "no-media".into(),
            detail: String::new(),
        };
        assert!(keeps_record(&skip, false));
        assert!(!keeps_record(&no_media, false));
        assert!(keeps_record(&no_media, true));
    }

    #[test]
    fn a_first_poll_starts_at_the_look_back_in_salesloft_s_format() {
        assert_eq!(
            start(1_776_870_000_123),
            ("2026-04-22T15:00:00.123000Z".to_string(), 1)
        );
    }
}
