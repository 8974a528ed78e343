//! `kendo-bridge-compose BRIDGE MAPPER OUT`: writes BRIDGE with MAPPER
//! plugged into its `kendo:bridge/mapper` import, refusing a mapper that
//! imports files, network or anything else a mapper may not use. `spin
//! build` runs it (see spin.toml); the host binary does the same with
//! `plugin compose`.

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
        let mapper_bytes = read(mapper)?;
        // Spin would give the mapper whatever it imports, files and
        // network included: refuse here what the host refuses at load.
        let forbidden = kendo_bridge_compose::forbidden_imports(&mapper_bytes)
            .map_err(|error| error.to_string())?;
        if !forbidden.is_empty() {
            return Err(format!(
                "the mapper {mapper} imports {}, which a mapper may not use (no files, no \
                 network); only {} may be imported",
                forbidden.join(", "),
                kendo_bridge_compose::ALLOWED_IMPORTS.join(", ")
            ));
        }
        kendo_bridge_compose::plug_mapper(&bridge, &mapper_bytes).map_err(|error| error.to_string())
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
