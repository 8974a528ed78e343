//! A poll's cycle over a source's list, page by page: each page's
//! decisions are recorded with the checkpoint moved past it, in one
//! transaction; the checkpoint moves on only from where this cycle found
//! it ([`crate::ledger::checkpoint::advance`]), so two instances polling one
//! source never move it back, and the one that finds it moved ends its
//! cycle. A driver reads each page (the plugin plans and reads it) and
//! hands it here.

use crate::Millis;
use crate::ledger::intake::{Intake, IntakeReport, intake_advancing};
use crate::ledger::{Database, LedgerError, checkpoint};

/// A stored cursor read as `T`. `None` when there is none yet, or when
/// this build cannot read it (written by another version): the poll then
/// starts again from its first look-back rather than stop, and the ledger
/// absorbs whatever it reads again. The second value says why it could
/// not be read, for the driver's log.
pub fn read_cursor<T: serde::de::DeserializeOwned>(
    stored: Option<&str>,
) -> (Option<T>, Option<String>) {
    match stored.map(serde_json::from_str::<T>) {
        None => (None, None),
        Some(Ok(cursor)) => (Some(cursor), None),
        Some(Err(e)) => (
            None,
            Some(format!(
                "the stored cursor is unreadable ({e}); starting from the initial look-back"
            )),
        ),
    }
}

/// What one polling cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub pages: u32,
    /// Records the pages held (read or not).
    pub records: u32,
    /// Of those, the ones the plugin could not read (kept as failed rows).
    pub rejected: u32,
    pub report: IntakeReport,
    /// Another instance moved the checkpoint meanwhile: it goes on from
    /// there, and this cycle ended.
    pub moved: bool,
    /// The stored cursor could not be read (written by another version):
    /// why; the cycle started from the first look-back.
    pub cursor_unreadable: Option<String>,
}

/// How a poll cycle went, as its source's health (`status` shows the
/// source's `poll` part): the error's text when it failed.
pub fn health<T, E: std::fmt::Display>(outcome: &Result<T, E>) -> super::Health {
    match outcome {
        Ok(_) => super::Health::Ok("poll"),
        Err(e) => super::Health::Problem("poll", e.to_string()),
    }
}

/// One cycle of a poll on the checkpoint `name`.
#[derive(Debug, Clone)]
pub struct Cycle {
    name: String,
    /// The checkpoint as this cycle found it, then as it last wrote it.
    from: Option<String>,
    pages: u32,
    max_pages: u32,
}

/// What comes after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Read the next page.
    Next,
    /// The source has nothing newer now, or the cycle read its pages.
    Done,
    /// Another instance moved the checkpoint: it goes on from there.
    Moved,
}

impl Cycle {
    /// Starts a cycle on `name` at most `max_pages` long; returns the
    /// stored cursor (the driver's JSON), if any, to start from.
    pub fn start<D: Database + ?Sized>(
        db: &D,
        name: &str,
        max_pages: u32,
    ) -> Result<(Cycle, Option<String>), LedgerError> {
        let stored = checkpoint::get(db, name)?;
        let cycle = Cycle {
            name: name.to_string(),
            from: stored.clone(),
            pages: 0,
            max_pages: max_pages.max(1),
        };
        Ok((cycle, stored))
    }

    /// Records a page: its decisions, and the checkpoint moved to `next`
    /// (the driver's JSON of the cursor past it); `more` says whether the
    /// source has another page now.
    pub fn page<D: Database + ?Sized>(
        &mut self,
        db: &D,
        items: &[Intake],
        next: String,
        more: bool,
        now: Millis,
    ) -> Result<(IntakeReport, After), LedgerError> {
        self.pages += 1;
        let (report, moved) =
            intake_advancing(db, items, &self.name, self.from.as_deref(), &next, now)?;
        let after = if !moved {
            After::Moved
        } else if !more || self.pages >= self.max_pages {
            After::Done
        } else {
            After::Next
        };
        self.from = Some(next);
        Ok((report, after))
    }

    /// Pages recorded so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }
}
