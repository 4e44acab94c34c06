"""ctypes declarations of the parts of <shmledger/shmledger.h> this package
uses. The structures mirror the C ones field by field; tests/test_layout.py
compares every offset with the C compiler's when one is available, and
check_layout() below checks the option structs against the library's own
_init functions at import."""

import ctypes
import ctypes.util
import os
import subprocess

# --- limits (shmledger.h) -------------------------------------------------
PARTICIPANT_ID_MAX = 63
OPERATION_ID_MAX = 127
CALL_ID_MAX = 127
DESCRIPTION_MAX = 255
PATH_MAX = 511
REASON_MAX = 255
CRASHED_IDS_MAX = 16

# --- error codes ----------------------------------------------------------
EVERSION = -1000
EFORMAT = -1001
EOWNER = -1002
ECORRUPT = -1003
ENOTREADY = -1004
EFULL = -1005
ESTALE = -1006
EPANIC = -1007
ESTATE = -1008
ENOTFOUND = -1009
EBADID = -1010
EFAILED = -1011
EABORTED = -1012
EFENCED = -1013


def _find_library():
    """SHMLEDGER_LIB (a path to the .so), else pkg-config's libdir, else
    ctypes.util.find_library (the dynamic loader's cache)."""
    path = os.environ.get("SHMLEDGER_LIB")
    if path:
        return path
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "shmledger"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        if out:
            cand = os.path.join(out, "libshmledger.so.0")
            if os.path.exists(cand):
                return cand
    except (OSError, subprocess.SubprocessError):
        pass
    name = ctypes.util.find_library("shmledger")
    return name or "libshmledger.so.0"


def _load():
    path = _find_library()
    try:
        return ctypes.CDLL(path), path
    except OSError as e:
        raise ImportError(
            f"shmledger: cannot load the C library ({path}): {e}. Set "
            "SHMLEDGER_LIB to the path of libshmledger.so.0, or "
            "PKG_CONFIG_PATH to the directory of its shmledger.pc"
        ) from e


lib, lib_path = _load()

# --- structs --------------------------------------------------------------
_c_void_fn = ctypes.c_void_p  # callbacks are never set by this package


class LedgerCallbacks(ctypes.Structure):
    _fields_ = [
        ("on_backup_created", _c_void_fn),
        ("on_log_line", _c_void_fn),
        ("on_global_heartbeat_error", _c_void_fn),
        ("user", ctypes.c_void_p),
    ]


class LedgerOpts(ctypes.Structure):
    _fields_ = [
        ("participant_pid", ctypes.c_int32),
        ("max_backups", ctypes.c_uint32),
        ("heartbeat_interval_ms", ctypes.c_int64),
        ("stale_threshold_ms", ctypes.c_int64),
        ("max_participants", ctypes.c_uint32),
        ("max_operations", ctypes.c_uint32),
        ("max_frames", ctypes.c_uint32),
        ("max_resources", ctypes.c_uint32),
        ("mode", ctypes.c_uint32),
        ("timeout_ms", ctypes.c_int64),
        ("callbacks", LedgerCallbacks),
        ("snapshotter", ctypes.c_bool),
        ("snapshot_period_ms", ctypes.c_int64),
        ("max_events", ctypes.c_uint32),
        ("ring_full_wait_us", ctypes.c_int64),
        ("durable", ctypes.c_bool),
        ("sync_files", ctypes.c_bool),
    ]


class CallCallbacks(ctypes.Structure):
    _fields_ = [
        ("on_cleanup", _c_void_fn),
        ("on_completion", _c_void_fn),
        ("on_operation_failed", _c_void_fn),
        ("user", ctypes.c_void_p),
    ]


class CallOpts(ctypes.Structure):
    _fields_ = [
        ("description", ctypes.c_char_p),
        ("fail_on_crash", ctypes.c_bool),
        ("callbacks", CallCallbacks),
    ]


class FailedInfo(ctypes.Structure):
    _fields_ = [
        ("operation_id", ctypes.c_char * (OPERATION_ID_MAX + 1)),
        ("failed_at_us", ctypes.c_int64),
        ("reason", ctypes.c_char * (REASON_MAX + 1)),
        ("crashed_call_count", ctypes.c_uint32),
        ("crashed_call_ids",
         (ctypes.c_char * (CALL_ID_MAX + 1)) * CRASHED_IDS_MAX),
        ("crashed_call_total", ctypes.c_uint32),
    ]


# --- functions ------------------------------------------------------------
_P = ctypes.c_void_p
_I = ctypes.c_int


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


shl_strerror = _fn("shl_strerror", ctypes.c_char_p, _I)
shl_errmsg = _fn("shl_errmsg", ctypes.c_char_p)
shl_version_string = _fn("shl_version_string", ctypes.c_char_p)
shl_op_state_name = _fn("shl_op_state_name", ctypes.c_char_p, _I)
shl_validate_operation_id = _fn("shl_validate_operation_id", _I, ctypes.c_char_p)

shl_ledger_opts_init = _fn("shl_ledger_opts_init", None, ctypes.POINTER(LedgerOpts))
shl_ledger_open = _fn("shl_ledger_open", _I, ctypes.POINTER(_P), ctypes.c_char_p,
                      ctypes.c_char_p, ctypes.POINTER(LedgerOpts))
shl_ledger_close = _fn("shl_ledger_close", None, _P)
shl_ledger_heartbeat = _fn("shl_ledger_heartbeat", _I, _P)

shl_op_create = _fn("shl_op_create", _I, _P, ctypes.c_char_p, _P, ctypes.POINTER(_P))
shl_op_join = _fn("shl_op_join", _I, _P, ctypes.c_char_p, _P, ctypes.POINTER(_P))
shl_op_leave = _fn("shl_op_leave", _I, _P, ctypes.c_bool)
shl_op_complete = _fn("shl_op_complete", _I, _P)
shl_op_session_id = _fn("shl_op_session_id", ctypes.c_uint64, _P)
shl_op_id = _fn("shl_op_id", ctypes.c_char_p, _P)
shl_op_participant_id = _fn("shl_op_participant_id", ctypes.c_char_p, _P)
shl_op_is_initiator = _fn("shl_op_is_initiator", ctypes.c_bool, _P)
shl_op_is_aborted = _fn("shl_op_is_aborted", ctypes.c_bool, _P)
shl_op_pending_call_count = _fn("shl_op_pending_call_count", ctypes.c_size_t, _P)
shl_op_set_abort_flag = _fn("shl_op_set_abort_flag", _I, _P, ctypes.c_bool)
shl_op_check_abort = _fn("shl_op_check_abort", _I, _P)
shl_op_trigger_abort = _fn("shl_op_trigger_abort", None, _P)
shl_op_get_state = _fn("shl_op_get_state", _I, _P)
shl_op_wait_abort = _fn("shl_op_wait_abort", _I, _P, ctypes.c_int64)
shl_op_wait_failure = _fn("shl_op_wait_failure", _I, _P, ctypes.c_int64,
                          ctypes.POINTER(FailedInfo))
shl_op_event_fd = _fn("shl_op_event_fd", _I, _P)
shl_op_register_temp_resource_n = _fn("shl_op_register_temp_resource_n", _I, _P,
                                      ctypes.c_char_p, ctypes.c_size_t)
shl_op_unregister_temp_resource = _fn("shl_op_unregister_temp_resource", _I, _P,
                                      ctypes.c_char_p)
shl_op_log = _fn("shl_op_log", _I, _P, _I, ctypes.c_char_p)

shl_segment_name = _fn("shl_segment_name", _I, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_size_t)
shl_segment_unlink = _fn("shl_segment_unlink", _I, ctypes.c_char_p)
shl_segment_unlink_force = _fn("shl_segment_unlink_force", _I, ctypes.c_char_p)

shl_call_opts_init = _fn("shl_call_opts_init", None, ctypes.POINTER(CallOpts))
shl_call_start = _fn("shl_call_start", _I, _P, ctypes.POINTER(CallOpts), ctypes.POINTER(_P))
shl_call_end = _fn("shl_call_end", _I, _P, _P)
shl_call_fail = _fn("shl_call_fail", _I, _P, ctypes.c_char_p)
shl_call_release = _fn("shl_call_release", _I, _P)
shl_call_id = _fn("shl_call_id", ctypes.c_char_p, _P)
shl_call_is_completed = _fn("shl_call_is_completed", ctypes.c_bool, _P)


def check_layout():
    """Let the library's _init functions fill the option structs inside a
    larger buffer of sentinel bytes: nothing past our size may change, and
    the documented defaults must land in the fields we think they do.
    Raises ImportError on a mismatch (another ABI of the header)."""
    pad = 256

    def filled(struct, init):
        size = ctypes.sizeof(struct)
        buf = (ctypes.c_ubyte * (size + pad))(*([0xA5] * (size + pad)))
        init(ctypes.cast(buf, ctypes.POINTER(struct)))
        if any(b != 0xA5 for b in buf[size:]):
            raise ImportError(
                f"shmledger: {struct.__name__} is larger in the C library than "
                f"in this package ({size} bytes): header and binding differ")
        return struct.from_buffer_copy(bytes(buf[:size]))

    o = filled(LedgerOpts, shl_ledger_opts_init)
    want = {
        "participant_pid": 0, "max_backups": 20,
        "heartbeat_interval_ms": 5000, "stale_threshold_ms": 15000,
        "mode": 0o600, "timeout_ms": 2000, "snapshotter": True,
        "snapshot_period_ms": 100, "ring_full_wait_us": 0,
    }
    for k, v in want.items():
        if getattr(o, k) != v:
            raise ImportError(
                f"shmledger: shl_ledger_opts.{k} default is {getattr(o, k)!r}, "
                f"expected {v!r}: header and binding differ")
    c = filled(CallOpts, shl_call_opts_init)
    if c.description is not None or c.fail_on_crash is not True:
        raise ImportError("shmledger: shl_call_opts layout differs from the header")


check_layout()
