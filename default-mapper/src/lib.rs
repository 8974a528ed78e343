//! The default mapper composed into the built-in component: every decision
//! stands as the built-in rules propose it (`[rules]` in the config is how a
//! team changes them without code).

#![no_std]

extern crate alloc;
// Linked for its allocator, panic handler and `cabi_realloc`.
extern crate kendo_bridge_guest as _;

wit_bindgen::generate!({
    path: "../wit",
    world: "mapper-world",
});

use exports::kendo::bridge::mapper::{CallRecord, Decision, Guest};

struct Default;

impl Guest for Default {
    fn decide(_call: CallRecord, proposed: Decision) -> Decision {
        proposed
    }
}

export!(Default);
