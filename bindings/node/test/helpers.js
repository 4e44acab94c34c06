'use strict';
// Test helpers: a private base directory (so a private segment) per test,
// removed with its segment afterwards; deadlines instead of sleeps.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const shl = require('..');

const ledgersOf = new Map(); // base -> ledgers opened with openLedger

// A private base directory, removed after the test: first every ledger
// opened on it with openLedger() is closed (so no snapshotter writes into
// it any more), then its segment is unlinked, then it is removed.
function tempBase(t, tag = 'node') {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), `shl-${tag}-`));
  ledgersOf.set(base, []);
  t.after(() => {
    for (const l of ledgersOf.get(base)) l.close();
    ledgersOf.delete(base);
    try { shl.unlinkSegment(base, true); } catch (_) { /* already gone */ }
    fs.rmSync(base, { recursive: true, force: true, maxRetries: 20, retryDelay: 25 });
  });
  return base;
}

function openLedger(base, opts) {
  const l = new shl.Ledger({ basePath: base, ...opts });
  ledgersOf.get(base).push(l);
  return l;
}

// Resolve with the promise's value, or reject once ms have passed.
function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// Poll cond() every 10 ms until it is truthy (its value) or ms pass.
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Read lines of a child's stdout; resolves with the first matching one.
function waitLine(child, re, ms, what) {
  return withDeadline(new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = re.exec(line);
        if (m) { child.stdout.off('data', onData); resolve(m); return; }
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', (code, sig) => reject(new Error(`${what}: child exited (${code ?? sig}) first`)));
  }), ms, what);
}

// Wait for a child to exit; resolves { code, signal }.
function waitExit(child, ms, what) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return withDeadline(new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  }), ms, what);
}

const ROOT = path.resolve(__dirname, '..');
const PYTHON_DIR = path.resolve(ROOT, '..', 'python');

module.exports = { tempBase, openLedger, withDeadline, until, waitLine, waitExit, ROOT, PYTHON_DIR };
