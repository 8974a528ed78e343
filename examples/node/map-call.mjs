// Runs the kendo-bridge plugin component in Node, transpiled by jco into
// ./out (run.sh does that). Maps a Salesloft call, builds the Kendo ingest
// body, checks a Kendo webhook signature, and prints one JSON object.
//
// Usage: node map-call.mjs [CALL.json [USER.json]]
// Defaults: the seed examples under tests/fixtures/seed-examples/inputs/.
// Exit 1 when the decision is not `send` or a signature check disagrees
// with its vector.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { salesloft, kendo, signatures } from './out/kendo_bridge.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const inputs = join(repo, 'tests', 'fixtures', 'seed-examples', 'inputs');

const callPath = process.argv[2] ?? join(inputs, 'salesloft-call.json');
const userPath = process.argv[3] ?? join(inputs, 'salesloft-user.json');
const vectors = JSON.parse(
  readFileSync(join(repo, 'tests', 'fixtures', 'signatures', 'own-vectors.json'), 'utf8'),
);

// Kendo's body limit, as the CLI uses it.
const MAX_BODY_BYTES = 5_000_000n;

// The CLI's default rules (`Config::default().to_rules()`): the source's
// title template, no minimum duration, every disposition, empty rep directory.
const rules = {
  titleTemplate: undefined,
  minDurationSeconds: 0,
  allowedDispositions: [],
  repDirectory: [],
};

function fail(message) {
  process.stderr.write(`map-call.mjs: ${message}\n`);
  process.exit(1);
}

// A WIT `result` error arrives as a thrown ComponentError carrying `payload`.
function call(what, fn) {
  try {
    return { ok: fn() };
  } catch (error) {
    if (error && 'payload' in error) {
      return { err: error.payload };
    }
    fail(`${what} trapped: ${error?.stack ?? error}`);
  }
}

// 1. Map the call (as the CLI's `map --source salesloft` does, via polling).
const mapped = call('salesloft.map-call', () =>
  salesloft.mapCall(
    {
      call: readFileSync(callPath, 'utf8'),
      user: readFileSync(userPath, 'utf8'),
      sentences: [],
      callDataRecord: undefined,
    },
    rules,
    'polling',
  ),
);
if (mapped.err) {
  fail(`salesloft.map-call rejected the input: ${JSON.stringify(mapped.err)}`);
}
const decision = mapped.ok;
if (decision.tag !== 'send') {
  fail(`expected decision send, got ${decision.tag}: ${JSON.stringify(decision.val)}`);
}

// 2. Build the Kendo ingest body from the call.
const built = call('kendo.build-ingest', () =>
  kendo.buildIngest(decision.val, { maxBodyBytes: MAX_BODY_BYTES }),
);
if (built.err) {
  fail(`kendo.build-ingest refused the call: ${JSON.stringify(built.err)}`);
}
const body = built.ok.body;
JSON.parse(body); // the plugin promises JSON; stop here if it is not

// 3. Verify the Kendo vector's signature, and the same with a tampered body.
const vector = vectors.kendo;
function verifyKendo(bodyText) {
  const result = call('signatures.verify', () =>
    signatures.verify(
      'kendo',
      vector.secret,
      {
        method: 'POST',
        uri: 'https://bridge.example.com/webhooks/kendo',
        headers: [{ name: 'X-Kendo-Signature', value: vector.sha256_prefixed }],
        body: new TextEncoder().encode(bodyText),
      },
      BigInt(Date.now()),
    ),
  );
  return 'err' in result ? { valid: false, error: result.err.tag } : { valid: true };
}
const genuine = verifyKendo(vector.body);
const tampered = verifyKendo(vector.body.replace('"aiScore":"87"', '"aiScore":"99"'));
const signature = {
  scheme: 'kendo',
  vector: 'own-vectors.json kendo.sha256_prefixed',
  valid: genuine.valid,
  tamperedBody: tampered.valid ? 'valid' : tampered.error,
};

// The payload is the body exactly as the plugin built it (as the CLI prints it).
const truncated = built.ok.truncated
  ? `,"truncated":${JSON.stringify({
      originalChars: Number(built.ok.truncated.originalChars),
      keptChars: Number(built.ok.truncated.keptChars),
    })}`
  : '';
process.stdout.write(
  `{"decision":"send","payload":${body}${truncated},"signature":${JSON.stringify(signature)}}\n`,
);

if (!genuine.valid) {
  fail(`the Kendo vector's signature did not verify: ${genuine.error}`);
}
if (tampered.valid || tampered.error !== 'mismatch') {
  fail(`a tampered body gave ${tampered.valid ? 'valid' : tampered.error}, expected mismatch`);
}
