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
use crate::Millis;

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

/// The ledger version of a HubSpot call: its modification time,
/// zero-padded so that versions sort in time order as text.
pub fn version(modified_ms: u64) -> String {
    format!("{modified_ms:015}")
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
