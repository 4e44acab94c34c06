'use strict';
// Cross-language: a Node initiator and a Python participant share an
// operation; the Python process starts a call and is SIGKILLed; Node's
// onFailure resolves with the Python call's id in crashedCallIds.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Ledger } = require('..');
const { tempBase, openLedger, withDeadline, waitLine, waitExit, PYTHON_DIR } = require('./helpers');

const PYTHON = process.env.PYTHON || 'python3';

const HB_MS = 1000;

// The library watches a peer's pidfd from its monitor's next pass after the
// peer joined (passes run on every heartbeat tick, on abort/state changes
// and on deaths): a peer killed right after joining is noticed at that pass
// (within one heartbeat interval), one the monitor already watches within
// milliseconds. Both cases are measured.
for (const [name, settleMs] of [['right after its call starts', 0],
  [`once the monitor watches it (${1.5 * HB_MS} ms after joining)`, 1.5 * HB_MS]]) {
  test(`SIGKILL of a Python participant fails the operation for Node: ${name}`, async (t) => {
    const base = tempBase(t, 'cross');
    const ledger = openLedger(base, { participantId: 'editor',
      heartbeatIntervalMs: HB_MS, staleThresholdMs: 5000 });
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
    if (settleMs > 0) {
      // not a synchronisation: lets the peer age past one monitor pass
      await new Promise((r) => setTimeout(r, settleMs));
    } else {
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(settled, false, 'no failure before the kill');

    const t0 = process.hrtime.bigint();
    py.kill('SIGKILL');
    const info = await withDeadline(op.onFailure, 4 * HB_MS + 5000, 'onFailure after SIGKILL');
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.diagnostic(`crash of the Python participant noticed by Node after ${ms.toFixed(1)} ms`);
    assert.equal(info.operationId, op.id);
    assert.ok(info.crashedCallIds.includes(callId), `crashedCallIds ${info.crashedCallIds} lacks ${callId}`);
    assert.ok(!info.crashedCallIds.includes(own.id));
    assert.match(info.reason, /script .*crashed/);
    const { signal } = await waitExit(py, 5000, 'python exit');
    assert.equal(signal, 'SIGKILL');
    assert.notEqual(op.getOperationState(), 'running');
    // the own call ends or reports why it cannot; the session leaves
    try { own.end(); } catch (e) { assert.equal(typeof e.code, 'number'); }
    op.leave(true);
  });
}
