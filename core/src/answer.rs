//! What a Kendo answer means for the call that was sent: the one place
//! that decides between sent, retried, re-sent, parked, dead, failed and a
//! paused key. Drivers read the answer with the plugin (which knows Kendo's
//! status codes and `Retry-After`), hand it here with the send's history,
//! and carry out the [`Action`].

use crate::Millis;
use crate::pacing::Backoff;

/// Kendo's answer that the plugin could not read (it trapped, or said
/// nothing the core knows): a 2xx means Kendo holds the call whatever its
/// body (sending it again would duplicate it); anything else did not
/// create it.
pub fn unread(status: u16, why: &str) -> Answer {
    if crate::ledger::send::holds_the_call(i64::from(status)) {
        Answer::Created(None)
    } else {
        // Kendo answered, so the request left: the attempt is the call's.
        Answer::Retry(format!("the plugin failed to read Kendo's {status}: {why}"))
    }
}

/// What a claim's lease adds to the longest request: the host's store
/// waits up to 10 s for a lock before it records an answer.
const CLAIM_GRACE_MS: Millis = 15_000;

/// How sends are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerPolicy {
    /// Back-off for 5xx, 408 and sends that never left.
    pub backoff: Backoff,
    /// How long the first request of a send waits for Kendo's answer.
    pub timeout_ms: Millis,
    /// Re-sends allowed after lost answers before the call is parked.
    pub ambiguous_resends: u32,
}

impl AnswerPolicy {
    /// The answer timeout of a request after `lost` lost answers: each
    /// re-send waits twice as long as the one before.
    pub fn timeout_after(&self, lost: u32) -> Millis {
        self.timeout_ms.saturating_mul(1 << lost.min(6))
    }

    /// How long a claim on a send holds: past the longest any request of
    /// the send can wait for its answer, plus time to record the answer
    /// (which may wait for another instance's write), so only a claim whose
    /// instance is gone ever expires.
    pub fn lease_ms(&self) -> Millis {
        self.timeout_after(self.ambiguous_resends)
            .saturating_add(CLAIM_GRACE_MS)
    }
}

/// Why Kendo refused a call for good, as the plugin read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// 401/403: the key, not the call.
    Unauthorized,
    /// 400: the payload.
    BadRequest,
    /// 413: the payload's size.
    TooLarge,
    /// Any other refusal.
    Other,
}

/// What came back from one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 2xx: Kendo holds the call, with its `callId` if it said.
    Created(Option<String>),
    /// 429: wait this many seconds (the plugin read `Retry-After`).
    RetryAfter(u32),
    /// 5xx or 408: a passing fault, with the reason.
    Retry(String),
    /// Refused for good.
    Rejected {
        kind: RejectionKind,
        status: u16,
        reason: String,
    },
    /// Kendo never saw the request: no connection was made.
    Unsent(String),
    /// The request may have created the call, but no answer says so (a
    /// timeout, a connection dropped after the request left).
    NoAnswer(String),
    /// The runtime refused to make the request: no byte left, and none
    /// will until its configuration changes (Spin's
    /// `allowed_outbound_hosts` not listing the Kendo URL).
    Refused(String),
}

/// The send's history before this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Requests made before this one.
    pub attempts: u32,
    /// Requests before this one whose answer was lost.
    pub ambiguous: u32,
}

/// What the driver does next with the call and its key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record the call as sent (never send it again). `after_lost_answers`
    /// above zero: Kendo may hold it more than once.
    Created {
        call_id: Option<String>,
        after_lost_answers: u32,
    },
    /// Put the send back for `retry_at` and hold every send of the key
    /// until then; count a Kendo 429.
    RateLimited { retry_at: Millis, reason: String },
    /// Put the send back for `retry_at`, count a lost answer, flag the call
    /// as possibly duplicated; its next request waits `timeout_ms`.
    ResendAfterLostAnswer {
        retry_at: Millis,
        timeout_ms: Millis,
        reason: String,
    },
    /// Stop sending the call: its outcome is unknown until the operator
    /// settles it; flag it as possibly duplicated.
    Park { reason: String },
    /// Put the send back for `retry_at`; count a retry.
    Retry { retry_at: Millis, reason: String },
    /// Retries ran out: a dead letter, for `replay` after the outage.
    Dead { reason: String },
    /// Pause the key (until it changes or the operator resumes it); the
    /// call keeps its place in the queue, due now.
    PauseKey { reason: String },
    /// Refused for good with this code (`bad-request`, `too-large`,
    /// `rejected`), for `replay --include-failed` after fixing the cause.
    Fail { code: &'static str, reason: String },
    /// No byte reached Kendo (the runtime's configuration refused the
    /// request, or no connection could be made): the call keeps its place
    /// (the attempt does not count, so an outage or a wrong URL never
    /// spends a call's retries) and is tried again at `retry_at`; Kendo's
    /// `send` health shows the problem until a send goes through. `code`
    /// is the ledger's reason code (`send-refused`, `no-connection`).
    NotSent {
        retry_at: Millis,
        code: &'static str,
        reason: String,
    },
}

/// How long a send refused by the runtime's configuration waits before it
/// is tried again: a person has to change the configuration, so a retry
/// sooner only repeats the refusal.
pub const MISCONFIGURED_RETRY_MS: Millis =
    crate::policy::Policy::DEFAULT.kendo.misconfigured_retry_ms;

/// Decides what `answer` means for the send of `source_id` in `team`.
/// `unit` is a uniform random number in [0, 1), for the back-off's jitter.
pub fn after_answer(
    policy: &AnswerPolicy,
    sent: Sent,
    answer: Answer,
    now: Millis,
    unit: f64,
    source_id: &str,
    team: &str,
) -> Action {
    let attempts = sent.attempts + 1;
    match answer {
        Answer::Created(call_id) => Action::Created {
            call_id,
            after_lost_answers: sent.ambiguous,
        },
        Answer::RetryAfter(seconds) => Action::RateLimited {
            retry_at: now + i64::from(seconds.max(1)) * 1000,
            reason: format!("Kendo answered 429; retrying after {seconds} s"),
        },
        // Kendo documents no idempotency key: after a lost answer the call
        // may exist, and every re-send may add a copy. So re-send rarely,
        // later, and with more patience; then ask the operator.
        Answer::NoAnswer(cause) if sent.ambiguous < policy.ambiguous_resends => {
            let timeout_ms = policy.timeout_after(sent.ambiguous + 1);
            let retry_at = now + timeout_ms.max(policy.backoff.cap_ms);
            Action::ResendAfterLostAnswer {
                retry_at,
                timeout_ms,
                reason: format!(
                    "attempt {attempts}: the answer was lost ({cause}); Kendo may hold the call; re-send {} of {} with a {} s timeout",
                    sent.ambiguous + 1,
                    policy.ambiguous_resends,
                    timeout_ms as f64 / 1000.0
                ),
            }
        }
        Answer::NoAnswer(cause) => Action::Park {
            reason: format!(
                "{} answer(s) lost (last: {cause}); Kendo may hold the call: check Kendo, then `kendo-bridge settle --sent {source_id}` or `--resend {source_id}`",
                sent.ambiguous + 1
            ),
        },
        Answer::Refused(cause) => Action::NotSent {
            retry_at: now + MISCONFIGURED_RETRY_MS,
            code: "send-refused",
            reason: format!(
                "the runtime refused to send the call to Kendo ({cause}): nothing left; allow Kendo's URL (Spin: `allowed_outbound_hosts` in spin.toml); the call stays queued and goes once the request is allowed"
            ),
        },
        Answer::Unsent(cause) => Action::NotSent {
            retry_at: now + MISCONFIGURED_RETRY_MS,
            code: "no-connection",
            reason: format!(
                "no connection to Kendo ({cause}): nothing left; check the Kendo URL and that Kendo is reachable from here; the call stays queued and goes once a connection is made"
            ),
        },
        Answer::Retry(cause) => match policy.backoff.delay(attempts, unit) {
            Some(delay) => Action::Retry {
                retry_at: now + delay,
                reason: format!("attempt {attempts} failed: {cause}"),
            },
            None => Action::Dead {
                reason: format!("gave up after {attempts} attempts; last: {cause}"),
            },
        },
        Answer::Rejected {
            kind,
            status,
            reason,
        } => {
            let reason = format!("Kendo answered {status}: {reason}");
            match kind {
                RejectionKind::Unauthorized => Action::PauseKey {
                    reason: format!(
                        "{reason}; sending for team `{team}` is paused until its key is replaced (kendo-bridge resume --team {team})"
                    ),
                },
                RejectionKind::BadRequest => Action::Fail {
                    code: "bad-request",
                    reason,
                },
                RejectionKind::TooLarge => Action::Fail {
                    code: "too-large",
                    reason,
                },
                RejectionKind::Other => Action::Fail {
                    code: "rejected",
                    reason,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: AnswerPolicy = AnswerPolicy {
        backoff: Backoff {
            base_ms: 2_000,
            cap_ms: 600_000,
            max_attempts: 3,
        },
        timeout_ms: 30_000,
        ambiguous_resends: 1,
    };

    fn decide(sent: Sent, answer: Answer) -> Action {
        after_answer(&POLICY, sent, answer, 1_000, 0.5, "42", "main")
    }

    const FIRST: Sent = Sent {
        attempts: 0,
        ambiguous: 0,
    };

    #[test]
    fn a_401_pauses_the_key_and_keeps_the_call() {
        let action = decide(
            FIRST,
            Answer::Rejected {
                kind: RejectionKind::Unauthorized,
                status: 401,
                reason: "Invalid API key".into(),
            },
        );
        let Action::PauseKey { reason } = action else {
            panic!("{action:?}");
        };
        assert!(reason.contains("resume --team main"), "{reason}");
    }

    #[test]
    fn a_429_waits_for_retry_after_and_never_less_than_a_second() {
        assert!(matches!(
            decide(FIRST, Answer::RetryAfter(7)),
            Action::RateLimited {
                retry_at: 8_000,
                ..
            }
        ));
        assert!(matches!(
            decide(FIRST, Answer::RetryAfter(0)),
            Action::RateLimited {
                retry_at: 2_000,
                ..
            }
        ));
    }

    #[test]
    fn a_lost_answer_is_re_sent_once_later_with_a_doubled_timeout_then_parked() {
        let first = decide(FIRST, Answer::NoAnswer("timeout".into()));
        assert_eq!(
            first,
            Action::ResendAfterLostAnswer {
                retry_at: 601_000,
                timeout_ms: 60_000,
                reason: "attempt 1: the answer was lost (timeout); Kendo may hold the call; re-send 1 of 1 with a 60 s timeout".into(),
            }
        );
        let again = decide(
            Sent {
                attempts: 1,
                ambiguous: 1,
            },
            Answer::NoAnswer("timeout".into()),
        );
        assert!(matches!(again, Action::Park { .. }), "{again:?}");
    }

    #[test]
    fn a_send_the_runtime_refuses_stays_queued_and_is_never_outcome_unknown() {
        let action = decide(
            Sent {
                attempts: 7,
                ambiguous: 0,
            },
            Answer::Refused("HttpRequestDenied".into()),
        );
        let Action::NotSent {
            retry_at, reason, ..
        } = action
        else {
            panic!("{action:?}");
        };
        assert_eq!(retry_at, 1_000 + MISCONFIGURED_RETRY_MS);
        assert!(reason.contains("allowed_outbound_hosts"), "{reason}");
    }

    #[test]
    fn a_connection_never_made_spends_no_attempt_however_many_failed_before() {
        let action = decide(
            Sent {
                attempts: 99,
                ambiguous: 0,
            },
            Answer::Unsent("connection refused".into()),
        );
        let Action::NotSent {
            retry_at,
            code,
            reason,
        } = action
        else {
            panic!("{action:?}");
        };
        assert_eq!(
            (retry_at, code),
            (1_000 + MISCONFIGURED_RETRY_MS, "no-connection")
        );
        assert!(reason.contains("connection refused"), "{reason}");
    }

    #[test]
    fn a_non_2xx_the_plugin_cannot_read_spends_an_attempt() {
        assert!(matches!(unread(502, "trap"), Answer::Retry(_)));
        assert_eq!(unread(201, "trap"), Answer::Created(None));
    }

    #[test]
    fn a_5xx_backs_off_with_jitter_until_the_attempts_run_out() {
        assert_eq!(
            decide(FIRST, Answer::Retry("503".into())),
            Action::Retry {
                retry_at: 2_000,
                reason: "attempt 1 failed: 503".into()
            }
        );
        let last = decide(
            Sent {
                attempts: 2,
                ambiguous: 0,
            },
            Answer::Retry("503".into()),
        );
        assert!(matches!(last, Action::Dead { .. }), "{last:?}");
    }

    #[test]
    fn a_400_and_a_413_fail_for_good_with_their_code() {
        for (kind, code) in [
            (RejectionKind::BadRequest, "bad-request"),
            (RejectionKind::TooLarge, "too-large"),
            (RejectionKind::Other, "rejected"),
        ] {
            let action = decide(
                FIRST,
                Answer::Rejected {
                    kind,
                    status: 400,
                    reason: "no".into(),
                },
            );
            assert!(
                matches!(action, Action::Fail { code: c, .. } if c == code),
                "{action:?}"
            );
        }
    }

    #[test]
    fn a_created_call_after_lost_answers_says_so() {
        assert_eq!(
            decide(
                Sent {
                    attempts: 1,
                    ambiguous: 1
                },
                Answer::Created(Some("call_1".into()))
            ),
            Action::Created {
                call_id: Some("call_1".into()),
                after_lost_answers: 1
            }
        );
    }
}
