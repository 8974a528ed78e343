//! A test-only mapper: keeps every decision the bridge proposes, except that
//! it panics when the call's raw JSON contains `"kendo-bridge-test-trap"`,
//! never returns when it contains `"kendo-bridge-test-hang"`, and skips the
//! call saying what its clock reads when it contains
//! `"kendo-bridge-test-clock"`.
//!
//! The host's tests compose it into the bridge to prove that a mapper trap
//! or time-out costs one call and never the batch: the instance is replaced
//! and the next call maps.

wit_bindgen::generate!({
    path: "../../wit",
    world: "mapper-world",
});

use exports::kendo::bridge::mapper::{CallRecord, Decision, Guest};

/// The marker that makes the mapper panic.
pub const TRAP_MARKER: &str = "kendo-bridge-test-trap";

/// The marker that makes the mapper loop forever.
pub const HANG_MARKER: &str = "kendo-bridge-test-hang";

/// The marker that makes the mapper skip the call with its clock's reading.
pub const CLOCK_MARKER: &str = "kendo-bridge-test-clock";

struct TrapMapper;

impl Guest for TrapMapper {
    fn decide(call: CallRecord, proposed: Decision) -> Decision {
        if call.raw.contains(TRAP_MARKER) {
            panic!("{TRAP_MARKER}: this record is built to crash the plugin");
        }
        if call.raw.contains(HANG_MARKER) {
            // `black_box` keeps the optimiser from proving the loop empty.
            let mut spins = 0u64;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        if call.raw.contains(CLOCK_MARKER) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            return Decision::Skip(format!("the clock reads {now}"));
        }
        proposed
    }
}

export!(TrapMapper);
