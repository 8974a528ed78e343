//! `kendo-bridge-compose BRIDGE MAPPER OUT`: writes BRIDGE with MAPPER
//! plugged into its `kendo:bridge/mapper` import. `spin build` runs it (see
//! spin.toml); the host binary does the same with `plugin compose`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bridge, mapper, out] = args.as_slice() else {
        eprintln!("usage: kendo-bridge-compose BRIDGE.wasm MAPPER.wasm OUT.wasm");
        return ExitCode::from(2);
    };
    let read =
        |path: &str| std::fs::read(path).map_err(|error| format!("could not read {path}: {error}"));
    let composed = read(bridge).and_then(|bridge| {
        let mapper = read(mapper)?;
        kendo_bridge_compose::plug_mapper(&bridge, &mapper).map_err(|error| error.to_string())
    });
    match composed.and_then(|bytes| {
        std::fs::write(out, bytes).map_err(|error| format!("could not write {out}: {error}"))
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
