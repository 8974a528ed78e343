// Builds mapper.wasm from mapper.js with componentize-js. Every WASI
// feature is disabled, so the component imports nothing: no clock, no
// randomness, no files, no network (the bridge would refuse those).
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const source = process.argv[2] ?? "mapper.js";
const out = process.argv[3] ?? "mapper.wasm";
const { component } = await componentize({
  sourcePath: source,
  witPath: process.env.MAPPER_WIT ?? "wit",
  worldName: "mapper-world",
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
console.log(`wrote ${out}`);
