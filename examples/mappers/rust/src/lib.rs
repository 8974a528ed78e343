//! A kendo-bridge mapper in Rust: calls of the reps in `ROUTES` belong to
//! another Kendo team, so they are sent under that team's member, and the
//! title says whose call it was.
//!
//! Build: `./build.sh` (`cargo build --release --target wasm32-wasip2`,
//! copied to `mapper.wasm`).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "mapper-world",
});

use exports::kendo::bridge::mapper::{CallRecord, Decision, Guest};

/// (rep email in the source, the Kendo member whose team takes the call).
const ROUTES: &[(&str, &str)] = &[
    ("jamie@yourco.com", "emea-desk@yourco.com"),
    ("nina@yourco.com", "partners-desk@yourco.com"),
];

struct RouteByRep;

impl Guest for RouteByRep {
    fn decide(call: CallRecord, proposed: Decision) -> Decision {
        let Decision::Send(mut outgoing) = proposed else {
            return proposed;
        };
        let route = ROUTES
            .iter()
            .find(|(rep, _)| rep.eq_ignore_ascii_case(&outgoing.rep_email));
        if let Some((rep, desk)) = route {
            let name = call.rep_name.as_deref().unwrap_or(rep);
            outgoing.title = format!("{} (for {name})", outgoing.title);
            outgoing.metadata.push(("routedFrom".into(), (*rep).into()));
            outgoing.rep_email = (*desk).into();
            outgoing.rep_name = None;
        }
        Decision::Send(outgoing)
    }
}

export!(RouteByRep);
