"""shmledger for Python: take part in a multi-process operation coordinated
through libshmledger's POSIX shared-memory ledger (ctypes, no compiler).

    import shmledger

    with shmledger.Ledger("/tmp/ledger", "script") as ledger:
        with ledger.join_operation(op_id) as op:
            with op.start_call("summarise") as call:
                do_work()          # an exception fails the call
            op.log("done")

Library lookup: SHMLEDGER_LIB, else ``pkg-config --variable=libdir
shmledger``, else ctypes.util.find_library("shmledger").

No library callback is ever registered: nothing runs on the library's
threads. Abort and failure are observed with wait_abort()/wait_failure()
(they release the GIL), check_abort()/failure_info(), or event_fd() in a
selector/asyncio loop.
"""

import ctypes
import datetime
import errno
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import List, Optional

from . import _lib

__all__ = [
    "Ledger", "Operation", "Call", "FailureInfo", "Error",
    "segment_name", "unlink_segment", "strerror",
    "LOG_DEBUG", "LOG_INFO", "LOG_WARNING", "LOG_ERROR", "version",
]

LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR = 0, 1, 2, 3
_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}

# Waits are cut into slices so Ctrl-C gets through and leave()/close()
# from another thread never free a session a wait is inside.
_WAIT_SLICE_MS = 50

version = _lib.shl_version_string().decode()

# Re-export the codes: shmledger.ENOTFOUND, ...
for _n in ("EVERSION", "EFORMAT", "EOWNER", "ECORRUPT", "ENOTREADY", "EFULL",
           "ESTALE", "EPANIC", "ESTATE", "ENOTFOUND", "EBADID", "EFAILED",
           "EABORTED", "EFENCED"):
    globals()[_n] = getattr(_lib, _n)
    __all__.append(_n)


def strerror(code: int) -> str:
    return _lib.shl_strerror(code).decode()


class Error(Exception):
    """A library failure. ``code`` is the library's negative code (-errno or
    SHL_E*, e.g. shmledger.ENOTFOUND); ``name`` its shl_strerror() text;
    ``detail`` the shl_errmsg() diagnostic."""

    def __init__(self, code: int, what: str, detail: str = ""):
        self.code = code
        self.name = strerror(code)
        self.detail = detail
        msg = f"{what}: {self.name}"
        if detail and detail != self.name:
            msg += f" ({detail})"
        super().__init__(msg)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        # shl_errmsg() is the calling thread's: read it at once.
        raise Error(rc, what, _lib.shl_errmsg().decode(errors="replace"))
    return rc


def _enc(s, what, allow_none=False):
    if s is None:
        if allow_none:
            return None
        raise TypeError(f"{what} must be a str, not None")
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, bytes):
        b = s
    elif isinstance(s, str):
        b = s.encode()
    else:
        raise TypeError(f"{what} must be a str, not {type(s).__name__}")
    if b"\0" in b and what != "path":
        raise ValueError(f"{what} contains a NUL byte")
    return b


def segment_name(base_path) -> str:
    """The POSIX shm name of the segment of base_path (it must exist)."""
    buf = ctypes.create_string_buffer(256)
    _check(_lib.shl_segment_name(_enc(os.fspath(base_path), "base_path"), buf,
                                 len(buf)), "segment_name")
    return buf.value.decode()


def unlink_segment(base_path, force: bool = False) -> bool:
    """Remove the segment of base_path (shm_unlink) when no participant is
    alive (raises with EBUSY otherwise: removing it would split the ledger);
    force=True removes it whatever its state. False when there was none."""
    fn = _lib.shl_segment_unlink_force if force else _lib.shl_segment_unlink
    rc = fn(_enc(os.fspath(base_path), "base_path"))
    if rc == -errno.ENOENT:
        return False
    _check(rc, "unlink_segment")
    return True


@dataclass(frozen=True)
class FailureInfo:
    """OperationFailedInfo: why the operation failed and which calls crashed."""
    operation_id: str
    failed_at: datetime.datetime
    reason: str
    crashed_call_ids: List[str] = field(default_factory=list)
    crashed_call_count: int = 0

    @classmethod
    def _from_c(cls, fi: _lib.FailedInfo) -> "FailureInfo":
        n = min(fi.crashed_call_count, _lib.CRASHED_IDS_MAX)
        return cls(
            operation_id=fi.operation_id.decode(errors="replace"),
            failed_at=datetime.datetime.fromtimestamp(
                fi.failed_at_us / 1e6, tz=datetime.timezone.utc),
            reason=fi.reason.decode(errors="replace"),
            crashed_call_ids=[fi.crashed_call_ids[i].value.decode(errors="replace")
                              for i in range(n)],
            crashed_call_count=fi.crashed_call_count,
        )


class Ledger:
    """One process's connection to the ledger of ``base_path``
    (shl_ledger_open). Close it (or use ``with``): close leaves every open
    session, cancelling its pending calls."""

    def __init__(self, base_path, participant_id, *, heartbeat_interval_ms=None,
                 stale_threshold_ms=None, max_backups=None, timeout_ms=None,
                 snapshotter=None, snapshot_period_ms=None, sync_files=None):
        self._h = None
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._ops = []
        opts = _lib.LedgerOpts()
        _lib.shl_ledger_opts_init(ctypes.byref(opts))  # never hand-built
        for name, val in (("heartbeat_interval_ms", heartbeat_interval_ms),
                          ("stale_threshold_ms", stale_threshold_ms),
                          ("max_backups", max_backups),
                          ("timeout_ms", timeout_ms),
                          ("snapshot_period_ms", snapshot_period_ms)):
            if val is not None:
                if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                    raise ValueError(f"{name} must be a non-negative int")
                setattr(opts, name, val)
        if snapshotter is not None:
            opts.snapshotter = bool(snapshotter)
        if sync_files is not None:
            opts.sync_files = bool(sync_files)
        self.base_path = os.fspath(base_path)
        self.participant_id = participant_id
        h = ctypes.c_void_p()
        _check(_lib.shl_ledger_open(ctypes.byref(h), _enc(self.base_path, "base_path"),
                                    _enc(participant_id, "participant_id"),
                                    ctypes.byref(opts)), "open ledger")
        self._h = h

    # -- internals
    def _handle(self, what):
        if os.getpid() != self._pid:
            raise Error(_lib.ESTATE, what, "handles are not usable in a forked child; "
                        "open a new Ledger there")
        if self._h is None:
            raise Error(_lib.ESTATE, what, "the ledger is closed")
        return self._h

    def _wrap(self, h):
        op = Operation(self, h)
        self._ops.append(op)
        return op

    # -- API
    @property
    def closed(self) -> bool:
        return self._h is None

    def create_operation(self, description: Optional[str] = None) -> "Operation":
        """createOperation: a new operation with this ledger as initiator."""
        with self._lock:
            h = self._handle("create_operation")
            out = ctypes.c_void_p()
            _check(_lib.shl_op_create(h, _enc(description, "description", True), None,
                                      ctypes.byref(out)), "create_operation")
            return self._wrap(out)

    def join_operation(self, operation_id: str) -> "Operation":
        """joinOperation: a new session in an existing operation."""
        with self._lock:
            h = self._handle("join_operation")
            out = ctypes.c_void_p()
            _check(_lib.shl_op_join(h, _enc(operation_id, "operation_id"), None,
                                    ctypes.byref(out)), "join_operation")
            return self._wrap(out)

    def heartbeat(self) -> None:
        with self._lock:
            _check(_lib.shl_ledger_heartbeat(self._handle("heartbeat")), "heartbeat")

    def close(self) -> None:
        """Dispose: leave every open session (cancelling pending calls),
        release the participant. Idempotent."""
        if os.getpid() != self._pid:
            self._h = None  # a forked child abandons the parent's handles
            return
        with self._lock:
            if self._h is None:
                return
            for op in self._ops:
                op._detach_all()
            self._ops.clear()
            h, self._h = self._h, None
            _lib.shl_ledger_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            if os.getpid() == self._pid:
                warnings.warn(f"unclosed shmledger.Ledger {self.base_path!r}",
                              ResourceWarning, source=self)
                self.close()

    def __repr__(self):
        state = "closed" if self._h is None else "open"
        return f"<shmledger.Ledger {self.base_path!r} as {self.participant_id!r} ({state})>"


class Operation:
    """One session of this process in an operation. ``with op:`` leaves the
    session on exit if still open (cancelling pending calls); call
    complete() inside the block to complete it as the initiator."""

    def __init__(self, ledger: Ledger, h):
        self.ledger = ledger
        self._h = h
        self._lock = threading.RLock()
        self._calls = []
        self.id = _lib.shl_op_id(h).decode()
        self.participant_id = _lib.shl_op_participant_id(h).decode()
        self.is_initiator = bool(_lib.shl_op_is_initiator(h))
        self.session_id = int(_lib.shl_op_session_id(h))

    def _handle(self, what):
        self.ledger._handle(what)
        if self._h is None:
            raise Error(_lib.ESTATE, what, "the session has ended")
        return self._h

    def _detach_all(self):
        with self._lock:
            self._h = None
            for c in self._calls:
                c._h = None
            self._calls.clear()

    def _ended(self):
        self._detach_all()
        try:
            self.ledger._ops.remove(self)
        except ValueError:
            pass

    @property
    def is_open(self) -> bool:
        return self._h is not None and not self.ledger.closed

    @property
    def is_aborted(self) -> bool:
        with self._lock:
            return bool(_lib.shl_op_is_aborted(self._handle("is_aborted")))

    @property
    def pending_call_count(self) -> int:
        with self._lock:
            return int(_lib.shl_op_pending_call_count(self._handle("pending_call_count")))

    @property
    def state(self) -> str:
        """getOperationState: "running", "cleanup", "failed", "completed"."""
        with self._lock:
            rc = _check(_lib.shl_op_get_state(self._handle("state")), "state")
            return _lib.shl_op_state_name(rc).decode()

    def start_call(self, description: Optional[str] = None,
                   fail_on_crash: bool = True) -> "Call":
        """startCall: the frame is in the shared table when this returns."""
        with self._lock:
            h = self._handle("start_call")
            opts = _lib.CallOpts()
            _lib.shl_call_opts_init(ctypes.byref(opts))
            opts.description = _enc(description, "description", True)
            opts.fail_on_crash = bool(fail_on_crash)
            out = ctypes.c_void_p()
            _check(_lib.shl_call_start(h, ctypes.byref(opts), ctypes.byref(out)),
                   "start_call")
            # Release finished calls: the library keeps them until then.
            keep = []
            for c in self._calls:
                if c._h is not None and _lib.shl_call_is_completed(c._h):
                    _lib.shl_call_release(c._h)
                    c._h = None
                elif c._h is not None:
                    keep.append(c)
            call = Call(self, out)
            keep.append(call)
            self._calls = keep
            return call

    def log(self, message: str, level="info") -> None:
        """log: a line "<time> [LEVEL] message" in the operation's log."""
        if isinstance(level, str):
            if level.lower() not in _LEVELS:
                raise ValueError(f"unknown log level {level!r} (debug, info, warning, error)")
            level = _LEVELS[level.lower()]
        with self._lock:
            _check(_lib.shl_op_log(self._handle("log"), int(level),
                                   _enc(message, "message")), "log")

    def set_abort_flag(self, value: bool = True) -> None:
        with self._lock:
            _check(_lib.shl_op_set_abort_flag(self._handle("set_abort_flag"), bool(value)),
                   "set_abort_flag")

    def check_abort(self) -> bool:
        """checkAbort: the shared flag (True when the record is gone, as the
        original answered)."""
        with self._lock:
            rc = _lib.shl_op_check_abort(self._handle("check_abort"))
            if rc == _lib.ESTALE:
                return True
            return _check(rc, "check_abort") == 1

    def trigger_abort(self) -> None:
        with self._lock:
            _lib.shl_op_trigger_abort(self._handle("trigger_abort"))

    def _wait(self, timeout, once, what):
        """Run once(slice_ms) -> bool in slices until true or timeout (s)."""
        import time
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            left_ms = _WAIT_SLICE_MS
            if deadline is not None:
                left_ms = min(left_ms, max(0, int((deadline - time.monotonic()) * 1000)))
            with self._lock:
                h = self._handle(what)
                r = once(h, left_ms)
            if r is not None:
                return r
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def wait_abort(self, timeout: Optional[float] = None) -> bool:
        """onAbort: True once this session sees the abort, False on timeout
        (seconds; None waits forever). Releases the GIL while waiting."""
        def once(h, ms):
            rc = _lib.shl_op_wait_abort(h, ms)
            if rc == 0:
                return True
            if rc != -errno.ETIMEDOUT:
                _check(rc, "wait_abort")
            return None
        return bool(self._wait(timeout, once, "wait_abort"))

    def wait_failure(self, timeout: Optional[float] = None) -> Optional[FailureInfo]:
        """onFailure: the FailureInfo once this session learns the operation
        failed, None on timeout (seconds; None waits forever)."""
        def once(h, ms):
            fi = _lib.FailedInfo()
            rc = _lib.shl_op_wait_failure(h, ms, ctypes.byref(fi))
            if rc == 0:
                return FailureInfo._from_c(fi)
            if rc != -errno.ETIMEDOUT:
                _check(rc, "wait_failure")
            return None
        return self._wait(timeout, once, "wait_failure")

    def failure_info(self) -> Optional[FailureInfo]:
        """The failure this session learned of, or None (does not wait)."""
        return self.wait_failure(0)

    def event_fd(self) -> int:
        """An eventfd that becomes readable on abort or failure (for
        selectors / asyncio loop.add_reader). Owned by the session."""
        with self._lock:
            return _check(_lib.shl_op_event_fd(self._handle("event_fd")), "event_fd")

    fileno = event_fd

    def register_temp_resource(self, path) -> None:
        b = _enc(path, "path")
        with self._lock:
            _check(_lib.shl_op_register_temp_resource_n(
                self._handle("register_temp_resource"), b, len(b)),
                "register_temp_resource")

    def unregister_temp_resource(self, path) -> int:
        with self._lock:
            return _check(_lib.shl_op_unregister_temp_resource(
                self._handle("unregister_temp_resource"), _enc(path, "path")),
                "unregister_temp_resource")

    def leave(self, cancel_pending_calls: bool = False) -> None:
        """leave: refused (Error ESTATE) with pending calls unless
        cancel_pending_calls, which fails them as "cancelled" first."""
        with self.ledger._lock, self._lock:
            _check(_lib.shl_op_leave(self._handle("leave"), bool(cancel_pending_calls)),
                   "leave")
            self._ended()

    def complete(self) -> None:
        """complete: initiator only; the operation becomes "completed"."""
        with self.ledger._lock, self._lock:
            _check(_lib.shl_op_complete(self._handle("complete")), "complete")
            self._ended()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.is_open:
            self.leave(cancel_pending_calls=True)
        return False

    def __repr__(self):
        return (f"<shmledger.Operation {self.id} session {self.session_id}"
                f"{' initiator' if self.is_initiator else ''}"
                f"{'' if self.is_open else ' (ended)'}>")


class Call:
    """A call frame of this session. ``with call:`` ends it, or fails it with
    the exception's text when the block raises."""

    def __init__(self, op: Operation, h):
        self.operation = op
        self._h = h
        self.id = _lib.shl_call_id(h).decode()

    def _handle(self, what):
        self.operation.ledger._handle(what)
        if self._h is None:
            raise Error(_lib.ESTATE, what, "the call's session has ended")
        return self._h

    @property
    def is_completed(self) -> bool:
        with self.operation._lock:
            return self._h is None or bool(_lib.shl_call_is_completed(self._h))

    def end(self) -> None:
        with self.operation._lock:
            _check(_lib.shl_call_end(self._handle("end"), None), "end")

    def fail(self, error=None) -> None:
        """fail: with fail_on_crash the operation fails with reason
        "Call <id> failed: <error>"."""
        text = None if error is None else str(error) or type(error).__name__
        with self.operation._lock:
            _check(_lib.shl_call_fail(self._handle("fail"),
                                      None if text is None else text.encode(errors="replace")),
                   "fail")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._h is None or self.is_completed:
            return False
        if exc_type is None:
            self.end()
        else:
            text = str(exc) or exc_type.__name__
            self.fail(f"{exc_type.__name__}: {text}" if str(exc) else text)
        return False

    def __repr__(self):
        return f"<shmledger.Call {self.id}{' (completed)' if self.is_completed else ''}>"
