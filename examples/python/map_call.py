"""Runs the kendo-bridge plugin component in Python with wasmtime-py.

Maps a Salesloft call, builds the Kendo ingest body, checks a Kendo webhook
signature, and prints one JSON object.

Usage: python map_call.py [CALL.json [USER.json]]
The component is $KENDO_BRIDGE_COMPONENT, or the release build under target/.
Defaults for the inputs: the seed examples under
tests/fixtures/seed-examples/inputs/. Exit 1 when the decision is not `send`
or a signature check disagrees with its vector.
"""

import json
import os
import sys
import time
from pathlib import Path

from wasmtime import Engine, Store
from wasmtime.component import Component, Linker, Record, Variant

REPO = Path(__file__).resolve().parent.parent.parent
INPUTS = REPO / "tests" / "fixtures" / "seed-examples" / "inputs"
COMPONENT = os.environ.get(
    "KENDO_BRIDGE_COMPONENT",
    str(REPO / "target" / "guest" / "wasm32-wasip2" / "release" / "kendo_bridge_guest.wasm"),
)
PACKAGE = "kendo:bridge/{}@0.1.0"

# Kendo's body limit, as the CLI uses it.
MAX_BODY_BYTES = 5_000_000


def fail(message):
    print(f"map_call.py: {message}", file=sys.stderr)
    sys.exit(1)


def record(**fields):
    """A WIT record. wasmtime-py reads fields by their WIT (kebab-case) names."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value


def plain(value):
    """A lifted value as JSON-friendly data, for error messages."""
    if isinstance(value, Variant):
        return {"tag": value.tag, "val": plain(value.payload)}
    if isinstance(value, Record):
        return {name: plain(field) for name, field in vars(value).items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class Plugin:
    """One instance of the component; exports are called by WIT name."""

    def __init__(self, path):
        engine = Engine()
        self.store = Store(engine)
        component = Component.from_file(engine, path)
        # The component imports nothing: an empty linker instantiates it.
        self.instance = Linker(engine).instantiate(self.store, component)

    def call(self, interface, function, *args):
        iface = self.instance.get_export_index(self.store, PACKAGE.format(interface))
        if iface is None:
            fail(f"the component does not export {PACKAGE.format(interface)}")
        index = self.instance.get_export_index(self.store, function, iface)
        func = index and self.instance.get_func(self.store, index)
        if func is None:
            fail(f"the component does not export {interface}.{function}")
        result = func(self.store, *args)
        func.post_return(self.store)  # wasmtime 50 works without it; older versions need it
        return result


def main():
    call_path = Path(sys.argv[1]) if len(sys.argv) > 1 else INPUTS / "salesloft-call.json"
    user_path = Path(sys.argv[2]) if len(sys.argv) > 2 else INPUTS / "salesloft-user.json"
    vectors = json.loads((REPO / "tests" / "fixtures" / "signatures" / "own-vectors.json").read_text())

    plugin = Plugin(COMPONENT)

    # The CLI's default rules (`Config::default().to_rules()`): the source's
    # title template, no minimum duration, every disposition, empty rep
    # directory.
    rules = record(
        title_template=None,
        min_duration_seconds=0,
        allowed_dispositions=[],
        rep_directory=[],
    )

    # 1. Map the call (as the CLI's `map --source salesloft` does, via polling).
    inputs = record(
        call=call_path.read_text(),
        user=user_path.read_text(),
        sentences=[],
        call_data_record=None,
    )
    # result<decision, input-error>: both sides are variants, so wasmtime-py
    # returns Variant("ok" | "err", ...).
    mapped = plugin.call("salesloft", "map-call", inputs, rules, "polling")
    if mapped.tag == "err":
        fail(f"salesloft.map-call rejected the input: {json.dumps(plain(mapped.payload))}")
    decision = mapped.payload
    if decision.tag != "send":
        fail(f"expected decision send, got {decision.tag}: {json.dumps(plain(decision.payload))}")

    # 2. Build the Kendo ingest body from the call. result<ingest-request,
    # build-error> lifts untagged: a Record on success, a Variant on error.
    built = plugin.call("kendo", "build-ingest", decision.payload, record(max_body_bytes=MAX_BODY_BYTES))
    if isinstance(built, Variant):
        fail(f"kendo.build-ingest refused the call: {json.dumps(plain(built))}")
    body = built.body
    json.loads(body)  # the plugin promises JSON; stop here if it is not

    # 3. Verify the Kendo vector's signature, and the same with a tampered
    # body. result<_, signature-error> lifts as None or the error Variant.
    vector = vectors["kendo"]

    def verify_kendo(body_text):
        request = record(
            method="POST",
            uri="https://bridge.example.com/webhooks/kendo",
            headers=[record(name="X-Kendo-Signature", value=vector["sha256_prefixed"])],
            body=body_text.encode("utf-8"),
        )
        error = plugin.call("signatures", "verify", "kendo", vector["secret"], request, time.time_ns() // 1_000_000)
        return (True, None) if error is None else (False, error.tag)

    genuine_valid, genuine_error = verify_kendo(vector["body"])
    tampered_valid, tampered_error = verify_kendo(vector["body"].replace('"aiScore":"87"', '"aiScore":"99"'))
    signature = {
        "scheme": "kendo",
        "vector": "own-vectors.json kendo.sha256_prefixed",
        "valid": genuine_valid,
        "tamperedBody": "valid" if tampered_valid else tampered_error,
    }

    # The payload is the body exactly as the plugin built it (as the CLI
    # prints it).
    truncated = ""
    if built.truncated is not None:
        cut = {"originalChars": getattr(built.truncated, "original-chars"),
               "keptChars": getattr(built.truncated, "kept-chars")}
        truncated = ',"truncated":' + json.dumps(cut, separators=(",", ":"))
    print('{"decision":"send","payload":' + body + truncated
          + ',"signature":' + json.dumps(signature, separators=(",", ":")) + "}")

    if not genuine_valid:
        fail(f"the Kendo vector's signature did not verify: {genuine_error}")
    if tampered_valid or tampered_error != "mismatch":
        fail(f"a tampered body gave {signature['tamperedBody']}, expected mismatch")


if __name__ == "__main__":
    main()
