// A kendo-bridge mapper. `decide` sees each call and the decision the
// bridge proposes, and returns the one that stands (see wit/mapper.wit).
// Build with `./build.sh`; check with `kendo-bridge plugin check mapper.wasm`.

export const mapper = {
  decide(call, proposed) {
    if (proposed.tag !== "send") {
      return proposed;
    }
    // Your rules here: change the title, the rep, the metadata, or
    // return { tag: "skip", val: "why" }.
    const outgoing = proposed.val;
    outgoing.metadata.push(["mappedBy", `my-mapper (${call.source})`]);
    return { tag: "send", val: outgoing };
  },
};
