'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const shl = require('..');
const { Ledger, codes } = shl;
const { tempBase, openLedger, withDeadline, until } = require('./helpers');

const OPTS = { heartbeatIntervalMs: 1000, staleThresholdMs: 5000, maxBackups: 5 };

test('create, call, log, temp resource, complete', async (t) => {
  const base = tempBase(t);
  const ledger = openLedger(base, { participantId: 'cli', ...OPTS });
  t.after(() => ledger.close());
  assert.equal(ledger.participantId, 'cli');
  const op = ledger.createOperation({ description: 'build and test' });
  assert.match(op.id, /^\d{8}T[\d:.]+-cli-[0-9a-f]{8}$/);
  assert.equal(op.participantId, 'cli');
  assert.equal(op.isInitiator, true);
  assert.equal(op.getOperationState(), 'running');
  const call = op.startCall({ description: 'compile' });
  assert.match(call.id, /^call_cli_1_[0-9a-f]{4}$/);
  assert.equal(op.pendingCallCount, 1);
  op.log('compiling', 'info');
  op.log('details', 0);
  op.registerTempResource(path.join(base, 'scratch.tmp'));
  assert.equal(op.unregisterTempResource(path.join(base, 'scratch.tmp')), 1);
  call.end();
  assert.equal(call.isCompleted, true);
  assert.equal(op.pendingCallCount, 0);
  assert.equal(op.checkAbort(), false);
  assert.equal(op.failureInfo(), null);
  // the snapshotter writes the log lines shortly after
  const logFile = path.join(base, `${op.id}.operation.log`);
  await until(() => fs.existsSync(logFile) && /\[INFO\] compiling/.test(fs.readFileSync(logFile, 'utf8')),
    5000, 'log line');
  op.complete();
  assert.equal(op.isOpen, false);
});

test('abort: setAbortFlag in one session resolves onAbort in another', async (t) => {
  const base = tempBase(t);
  const a = openLedger(base, { participantId: 'a', ...OPTS });
  const b = openLedger(base, { participantId: 'b', ...OPTS });
  t.after(() => { b.close(); a.close(); });
  const op = a.createOperation({});
  const joined = b.joinOperation(op.id);
  assert.equal(joined.isInitiator, false);
  assert.equal(joined.participantId, 'b');
  const t0 = process.hrtime.bigint();
  op.setAbortFlag(true);
  await withDeadline(joined.onAbort, 5000, 'onAbort');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  t.diagnostic(`abort noticed after ${ms.toFixed(1)} ms`);
  assert.equal(joined.checkAbort(), true);
  assert.equal(joined.isAborted, true);
  joined.leave();
  op.complete();
});

test('call.fail fails the operation: onFailure carries the call id', async (t) => {
  const base = tempBase(t);
  const ledger = openLedger(base, { participantId: 'cli', ...OPTS });
  t.after(() => ledger.close());
  const op = ledger.createOperation({ description: 'fails' });
  const call = op.startCall({ description: 'doomed' });
  call.fail(new Error('disk full'));
  const info = await withDeadline(op.onFailure, 5000, 'onFailure');
  assert.equal(info.operationId, op.id);
  assert.match(info.reason, /disk full/);
  assert.deepEqual(info.crashedCallIds, [call.id]);
  assert.ok(info.failedAt instanceof Date);
  assert.deepEqual(op.failureInfo().crashedCallIds, [call.id]);
  // completing a failed operation is refused, with the library's code
  assert.throws(() => op.complete(), (e) => e.code === codes.ESTATE);
  op.leave(true);
});

test('errors carry the library code and message', (t) => {
  const base = tempBase(t);
  assert.throws(() => new Ledger(), TypeError);
  assert.throws(() => new Ledger({ basePath: base }), (e) => e instanceof TypeError && e.code === -22);
  assert.throws(() => new Ledger({ basePath: base, participantId: 'bad id/x' }),
    (e) => e.code === codes.EBADID && /malformed id/.test(e.message));
  assert.throws(() => openLedger(base, { participantId: 'x', heartbeatIntervalMs: 'soon' }), TypeError);
  assert.throws(() => openLedger(base, { participantId: 'x', maxBackups: 2 ** 33 }), TypeError);
  assert.throws(() => openLedger(base, { participantId: 'x', staleThresholdMs: 1.5 }), TypeError);
  assert.throws(() => openLedger(base, { participantId: 'x', heartbeatIntervalMs: 0 }), (e) => e.code === -22);
  const ledger = openLedger(base, { participantId: 'cli', ...OPTS });
  t.after(() => ledger.close());
  assert.throws(() => ledger.joinOperation('20260101T00:00:00.000-nobody-00000000'),
    (e) => e instanceof Error && e.code === codes.ENOTFOUND && e.codeName === 'no such operation'
      && /joinOperation/.test(e.message));
  assert.throws(() => ledger.joinOperation('../etc'), (e) => e.code === codes.EBADID);
  assert.throws(() => ledger.joinOperation(42), TypeError);
  const op = ledger.createOperation({});
  assert.throws(() => op.registerTempResource('relative/path'), (e) => e.code === -22);
  assert.throws(() => op.log('x', 'loud'), TypeError);
  const call = op.startCall({});
  assert.throws(() => op.leave(false), (e) => e.code === codes.ESTATE); // pending call
  call.end();
  assert.throws(() => call.end(), (e) => e.code === codes.ESTATE);     // twice
  const joined = ledger.joinOperation(op.id);
  assert.equal(joined.isInitiator, true); // the creating ledger stays initiator
  joined.leave();
  assert.throws(() => joined.startCall({}), (e) => e.code === codes.ESTATE);
  op.complete();
  assert.throws(() => op.complete(), (e) => e.code === codes.ESTATE && /closed/.test(e.message));
  assert.throws(() => ledger.joinOperation(op.id), (e) => e.code === codes.ENOTFOUND || e.code === codes.ESTATE);
  ledger.close();
  ledger.close(); // idempotent
  assert.throws(() => ledger.createOperation({}), (e) => e.code === codes.ESTATE);
});

test('close() leaves open sessions and cancels their pending calls', (t) => {
  const base = tempBase(t);
  const ledger = openLedger(base, { participantId: 'cli', ...OPTS });
  const op = ledger.createOperation({});
  const call = op.startCall({});
  ledger.close();
  assert.equal(op.isOpen, false);
  assert.throws(() => call.end(), (e) => e.code === codes.ESTATE);
});
