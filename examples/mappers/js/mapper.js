// A kendo-bridge mapper in JavaScript: calls shorter than ten minutes are
// not worth Kendo's time, except a booked meeting, which always is.
//
// Build: ./build.sh (componentize-js with every WASI feature disabled, so
// the component imports nothing).

const MIN_SECONDS = 600;
const ALWAYS_SEND = ["meeting booked", "demo booked"];

export const mapper = {
  decide(call, proposed) {
    if (proposed.tag !== "send") {
      return proposed;
    }
    const disposition = (call.disposition ?? "").toLowerCase();
    if (ALWAYS_SEND.includes(disposition)) {
      return proposed;
    }
    const seconds = call.durationSeconds;
    if (seconds !== undefined && seconds < MIN_SECONDS) {
      return {
        tag: "skip",
        val: `${call.source} call ${call.sourceId} lasted ${seconds} s, under the team's ` +
          `${MIN_SECONDS} s minimum (only ${ALWAYS_SEND.join(" and ")} calls go regardless)`,
      };
    }
    return proposed;
  },
};
