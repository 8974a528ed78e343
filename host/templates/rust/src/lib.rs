//! A kendo-bridge mapper. `decide` sees each call and the decision the
//! bridge proposes, and returns the one that stands (see wit/mapper.wit).
//! Build with `./build.sh`; check with `kendo-bridge plugin check mapper.wasm`.

wit_bindgen::generate!({
    path: "wit",
    world: "mapper-world",
});

use exports::kendo::bridge::mapper::{CallRecord, Decision, Guest};

struct Mapper;

impl Guest for Mapper {
    fn decide(call: CallRecord, proposed: Decision) -> Decision {
        let Decision::Send(mut outgoing) = proposed else {
            return proposed;
        };
        // Your rules here: change the title, the rep, the metadata, or
        // return Decision::Skip("why".into()).
        outgoing
            .metadata
            .push(("mappedBy".into(), format!("my-mapper ({})", call.source)));
        Decision::Send(outgoing)
    }
}

export!(Mapper);
