'use strict';
// shmledger for Node.js: the original's API shape (Ledger, Operation, Call)
// over the native addon (src/addon.cc). Everything here runs on the
// JavaScript thread; onAbort and onFailure are settled from the event loop.

const native = require('./build/Release/shmledger.node');

const LogLevel = Object.freeze({ debug: 0, info: 1, warning: 2, error: 3 });

function levelOf(level) {
  if (level === undefined || level === null) return LogLevel.info;
  if (typeof level === 'number') return level;
  const v = LogLevel[String(level).toLowerCase()];
  if (v === undefined) {
    const err = new TypeError(`unknown log level ${JSON.stringify(level)} (debug, info, warning, error)`);
    err.code = -22; // -EINVAL
    throw err;
  }
  return v;
}

/** One unit of work inside a session; its frame is in the shared table. */
class Call {
  constructor(nativeCall, operation) {
    this._n = nativeCall;
    this.operation = operation;
    this.id = nativeCall.id;
  }
  get isCompleted() { return this._n.isCompleted; }
  /** Finish successfully (removes the frame). */
  end() { this._n.end(); }
  /** Finish with an error; with failOnCrash the operation fails. */
  fail(error) {
    const text = error instanceof Error ? (error.message || String(error)) : error;
    this._n.fail(text === undefined ? undefined : String(text));
  }
}

/** One session of this process in an operation (createOperation/joinOperation). */
class Operation {
  constructor(ledger, factory) {
    this.ledger = ledger;
    let resolveAbort, resolveFailure;
    this.onAbort = new Promise((r) => { resolveAbort = r; });
    this.onFailure = new Promise((r) => { resolveFailure = r; });
    // Called by the addon from the event loop (MakeCallback).
    const notify = (kind, info) => {
      if (kind === 'abort') resolveAbort();
      else if (kind === 'failure') resolveFailure(info);
    };
    this._n = factory(notify);
    this.id = this._n.id;
    this.participantId = this._n.participantId;
    this.isInitiator = this._n.isInitiator;
    this.sessionId = this._n.sessionId;
  }
  get isOpen() { return this._n.isOpen; }
  get isAborted() { return this._n.isAborted; }
  get pendingCallCount() { return this._n.pendingCallCount; }

  /** startCall({ description, failOnCrash = true }) -> Call */
  startCall(opts = {}) {
    const { description, failOnCrash = true } = opts || {};
    return new Call(this._n.startCall(description, failOnCrash), this);
  }
  /** log(message, level = 'info'): level 'debug'|'info'|'warning'|'error' or 0..3 */
  log(message, level) { this._n.log(message, levelOf(level)); }
  setAbortFlag(value = true) { this._n.setAbortFlag(!!value); }
  checkAbort() { return this._n.checkAbort(); }
  triggerAbort() { this._n.triggerAbort(); }
  getOperationState() { return this._n.getOperationState(); }
  /** The failure this session learned of, or null. */
  failureInfo() { return this._n.failureInfo(); }
  registerTempResource(path) { this._n.registerTempResource(path); }
  unregisterTempResource(path) { return this._n.unregisterTempResource(path); }
  /** leave(cancelPendingCalls = false) */
  leave(cancelPendingCalls = false) { this._n.leave(!!cancelPendingCalls); }
  /** complete(): initiator only. */
  complete() { this._n.complete(); }
  /** Let the process exit while this session is open (see README). */
  unref() { this._n.unref(); return this; }
  ref() { this._n.ref(); return this; }
}

/** One process's connection to the ledger of basePath. */
class Ledger {
  /**
   * new Ledger({ basePath, participantId, heartbeatIntervalMs,
   *              staleThresholdMs, maxBackups, timeoutMs, snapshotter })
   */
  constructor(opts) {
    if (!opts || typeof opts !== 'object') {
      const err = new TypeError('new Ledger({ basePath, participantId, ... }): options object required');
      err.code = -22;
      throw err;
    }
    const { basePath, participantId, ...rest } = opts;
    this._n = new native.NativeLedger(basePath, participantId, rest);
    this.basePath = basePath;
    this.participantId = participantId;
  }
  get isOpen() { return this._n.isOpen; }
  /** createOperation({ description }) -> Operation (this ledger is the initiator) */
  createOperation(opts = {}) {
    const { description } = opts || {};
    return new Operation(this, (notify) => this._n.createOperation(description, notify));
  }
  /** joinOperation(operationId) -> Operation (a new session) */
  joinOperation(operationId) {
    return new Operation(this, (notify) => this._n.joinOperation(operationId, notify));
  }
  /** Store a heartbeat now (the library's monitor thread does it on its own). */
  heartbeat() { this._n.heartbeat(); }
  /** Leave every open session (cancelling pending calls) and release the
   * participant. Idempotent. Afterwards nothing of this ledger keeps the
   * process alive. */
  close() { this._n.close(); }
}

module.exports = {
  Ledger,
  Operation,
  Call,
  LogLevel,
  codes: native.codes,
  strerror: native.strerror,
  /** Remove the segment of basePath (shm_unlink); false when there was none. */
  unlinkSegment: native.unlinkSegment,
  /** The POSIX shm name of the segment of basePath (the directory must exist). */
  segmentName: native.segmentName,
  version: native.version,
};
