//! Reading one Salesloft call before the plugin maps it, and where a poll
//! starts. The call's user (the rep) is read by id and cached: reps make
//! many calls, and every request spends the team's cost points. A user
//! that cannot be read fails the call's read (it is read again: without
//! the user the call would go to no rep).

use super::Lookups;
use crate::Millis;

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
