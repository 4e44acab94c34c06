'use strict';
// Tests with real processes: the process exits on its own after close(), an
// open session keeps it alive, and a leak check over many operations.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { tempBase, waitExit, waitLine } = require('./helpers');

const ROOT = require('node:path').resolve(__dirname, '..');

function runNode(script, args) {
  return spawn(process.execPath, ['-e', script, ROOT, ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
}

test('a process exits on its own after close()', async (t) => {
  const base = tempBase(t);
  const child = runNode(`
    const { Ledger } = require(process.argv[1]);
    const ledger = new Ledger({ basePath: process.argv[2], participantId: 'exiter' });
    const op = ledger.createOperation({ description: 'exit test' });
    op.onFailure.then(() => console.log('unexpected failure'));
    op.onAbort.then(() => console.log('unexpected abort'));
    const left = ledger.createOperation({});   // left open: close() ends it
    left.startCall({});
    op.startCall({}).end();
    op.complete();
    ledger.close();
    console.log('closed');
  `, [base]);
  const t0 = Date.now();
  await waitLine(child, /^closed$/, 10000, 'closed line');
  const { code, signal } = await waitExit(child, 5000, 'exit after close()');
  t.diagnostic(`exited ${Date.now() - t0} ms after start`);
  assert.equal(signal, null);
  assert.equal(code, 0);
});

test('an open session keeps the process alive; unref() lets it exit', async (t) => {
  const base = tempBase(t);
  const kept = runNode(`
    const { Ledger } = require(process.argv[1]);
    const ledger = new Ledger({ basePath: process.argv[2], participantId: 'kept' });
    ledger.createOperation({});
    console.log('open');
  `, [base]);
  t.after(() => kept.kill('SIGKILL'));
  await waitLine(kept, /^open$/, 10000, 'open line');
  // still alive a while later (bounded wait on the exit event)
  await assert.rejects(waitExit(kept, 500, 'kept alive'), /no result within/);
  kept.kill('SIGTERM');
  await waitExit(kept, 5000, 'kept exits on SIGTERM');

  const unref = runNode(`
    const { Ledger } = require(process.argv[1]);
    const ledger = new Ledger({ basePath: process.argv[2], participantId: 'unref' });
    ledger.createOperation({}).unref();
    console.log('open');
  `, [base]);
  await waitLine(unref, /^open$/, 10000, 'open line');
  const { code } = await waitExit(unref, 5000, 'unref exits');
  assert.equal(code, 0);
});

test('create/join/leave/complete loop: no leak growth', async (t) => {
  const base = tempBase(t);
  // Finalizers of collected wrappers run on the loop (after GC), so the
  // loop yields between rounds. RSS is not the measure: it also counts the
  // pages of the shared segment that new records touch; RssAnon is
  // private memory only. Both settle after a warm-up (allocator, V8).
  const script = `
    const fs = require('fs');
    const { Ledger } = require(process.argv[1]);
    const ledger = new Ledger({ basePath: process.argv[2], participantId: 'loop', maxBackups: 2 });
    const anon = () => parseInt(fs.readFileSync('/proc/self/status', 'utf8')
      .split(String.fromCharCode(10)).find((l) => l.startsWith('RssAnon:'))
      .replace('RssAnon:', '').trim(), 10) * 1024;
    const settle = async () => {
      for (let k = 0; k < 3; k++) { global.gc(); await new Promise((r) => setImmediate(r)); }
    };
    const round = async (n) => {
      for (let i = 0; i < n; i++) {
        const op = ledger.createOperation({ description: 'loop' });
        const c = op.startCall({ description: 'c' });
        op.log('line ' + i);
        c.end();
        const j = ledger.joinOperation(op.id);
        j.leave();
        op.complete();
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      await settle();
    };
    (async () => {
      await round(3000);
      const a = [anon(), process.memoryUsage().heapUsed];
      await round(2000);
      const b = [anon(), process.memoryUsage().heapUsed];
      ledger.close();
      console.log('MEM ' + (b[0] - a[0]) + ' ' + (b[1] - a[1]));
    })();
  `;
  const proc = spawn(process.execPath, ['--expose-gc', '-e', script, ROOT, base],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const m = await waitLine(proc, /^MEM (-?\d+) (-?\d+)$/, 120000, 'MEM line');
  const anonMiB = Number(m[1]) / 1048576;
  const heapMiB = Number(m[2]) / 1048576;
  t.diagnostic(`over 2000 rounds after a 3000-round warm-up: RssAnon ${anonMiB.toFixed(2)} MiB, V8 heap ${heapMiB.toFixed(2)} MiB`);
  assert.ok(heapMiB < 1, `V8 heap grew ${heapMiB.toFixed(2)} MiB: wrappers retained`);
  assert.ok(anonMiB < 4, `private memory grew ${anonMiB.toFixed(2)} MiB`);
  assert.equal((await waitExit(proc, 10000, 'loop exit')).code, 0);
});
