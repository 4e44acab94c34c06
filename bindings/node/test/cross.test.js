'use strict';
// Cross-language: a Node initiator and a Python participant share an
// operation; the Python process starts a call and is SIGKILLed; Node's
// onFailure resolves with the Python call's id in crashedCallIds.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Ledger } = require('..');
const { tempBase, withDeadline, waitLine, waitExit, PYTHON_DIR } = require('./helpers');

const PYTHON = process.env.PYTHON || 'python3';

test('SIGKILL of a Python participant fails the operation for Node', async (t) => {
  const base = tempBase(t, 'cross');
  const ledger = new Ledger({ basePath: base, participantId: 'editor',
    heartbeatIntervalMs: 1000, staleThresholdMs: 5000 });
  t.after(() => ledger.close());
  const op = ledger.createOperation({ description: 'cross-language crash' });
  const own = op.startCall({ description: 'node side', failOnCrash: false });

  const env = { ...process.env,
    PYTHONPATH: [PYTHON_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
  const py = spawn(PYTHON, [path.join(PYTHON_DIR, 'tests', 'participant.py'), base, op.id, 'script'],
    { env, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => py.kill('SIGKILL'));
  const [, callId] = await waitLine(py, /^CALL (\S+)$/, 15000, 'python call id');
  assert.match(callId, /^call_script_1_[0-9a-f]{4}$/);

  let settled = false;
  op.onFailure.then(() => { settled = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'no failure before the kill');

  const t0 = process.hrtime.bigint();
  py.kill('SIGKILL');
  const info = await withDeadline(op.onFailure, 10000, 'onFailure after SIGKILL');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  t.diagnostic(`crash of the Python participant noticed by Node after ${ms.toFixed(1)} ms`);
  console.log(`CROSS_NOTICE_MS ${ms.toFixed(1)}`);
  assert.equal(info.operationId, op.id);
  assert.ok(info.crashedCallIds.includes(callId), `crashedCallIds ${info.crashedCallIds} lacks ${callId}`);
  assert.ok(!info.crashedCallIds.includes(own.id));
  const { signal } = await waitExit(py, 5000, 'python exit');
  assert.equal(signal, 'SIGKILL');
  assert.notEqual(op.getOperationState(), 'running');
  // the own call is still ours to end (its frame was cleaned up)
  try { own.end(); } catch (e) { assert.ok(typeof e.code === 'number'); }
  op.leave(true);
});
