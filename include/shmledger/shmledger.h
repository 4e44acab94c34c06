/*
 * shmledger: coordinate one multi-process *operation* through a POSIX
 * shared-memory ledger.
 *
 * This is the only header a user includes. It is C11 and C++ clean.
 *
 * Model
 * -----
 * A *ledger* (shl_ledger) is one process's connection to the segment that
 * belongs to a base directory (`basePath`). Through it the process creates or
 * joins *operations*; every create/join returns its own *session* handle
 * (shl_op). Inside a session the process starts *calls* (shl_call), units of
 * work that appear as call frames in the shared table until they end or fail.
 * Temporary resources, an abort flag and the operation state are shared by
 * every participant. A read-only API (shl_reader, shl_snapshot) lets any
 * process of the same user inspect the segment without taking part.
 *
 * Errors
 * ------
 * Every fallible function returns an int: 0 (or a count >= 0) on success and
 * a negative code on failure. OS failures are returned as -errno unchanged;
 * library conditions use the SHL_E* codes below (all <= -1000, disjoint from
 * errno). shl_strerror() describes any code and shl_strerror_name() names
 * it ("SHL_EFAILED", "ENOENT"); shl_errmsg() returns a diagnostic
 * text for the calling thread's last failure. The code is the contract, the
 * message is diagnostics. Out-parameters are written only on success.
 *
 * Thread safety
 * -------------
 * Every handle may be used from several threads of its process at once,
 * unless a function says otherwise. Functions marked "May block" can wait on
 * the segment's structure lock (bounded: -ETIMEDOUT) or on I/O; the
 * others are wait-free or lock-free.
 *
 * Caveats (fork, exec, signals)
 * -----------------------------
 * - Handles are not usable in a child created by fork(): the child must open
 *   its own ledger (shl_ledger_open) and must not use or close the parent's
 *   handles (their memory is simply abandoned; the parent is unaffected).
 *   At fork the library unmaps the child's copies of its segments and
 *   points their descriptors at /dev/null (a pthread_atfork handler), so a
 *   child that outlives its parent never keeps the parent's liveness lock
 *   alive: the parent's death stays provable.
 * - A ledger runs threads (monitor, snapshotter, workers). As for any
 *   threaded program, a child of fork() may only call async-signal-safe
 *   functions until it execs; fork before opening a ledger when the child
 *   must use the library (or malloc) without exec.
 * - Every descriptor the library opens is O_CLOEXEC; exec() drops them.
 * - Each ledger and reader opens its own descriptor of the segment and
 *   holds open-file-description (OFD) locks on it; the library never uses
 *   classic POSIX fcntl locks, so closing unrelated descriptors of the same
 *   file cannot drop them.
 * - A ledger's or reader's mapping lives until it is closed; never unmap or
 *   close its descriptor behind its back.
 * - No function is async-signal-safe unless stated.
 */
#ifndef SHMLEDGER_H
#define SHMLEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmledger/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SHL_API __attribute__((visibility("default")))
#define SHL_NODISCARD __attribute__((warn_unused_result))
#else
#define SHL_API
#define SHL_NODISCARD
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** Segment was created by another major format version. */
#define SHL_EVERSION (-1000)
/** Segment layout signature differs (another build/ABI of the library). */
#define SHL_EFORMAT (-1001)
/** Segment belongs to another user (uid), or another PID namespace. */
#define SHL_EOWNER (-1002)
/** Segment failed validation: truncated, garbled, or a bad index in it. */
#define SHL_ECORRUPT (-1003)
/** Segment is still being initialised by its creator (try again). */
#define SHL_ENOTREADY (-1004)
/** A fixed-capacity table is full; nothing else was changed. */
#define SHL_EFULL (-1005)
/** A record reference is out of date (the record was freed or reused). */
#define SHL_ESTALE (-1006)
/** Segment is poisoned: a crashed writer left state that could not be
 * repaired. Every further use fails; remove the segment (shmledger gc). */
#define SHL_EPANIC (-1007)
/** The call is not allowed in the object's current state (Dart StateError). */
#define SHL_ESTATE (-1008)
/** No such operation (or call). */
#define SHL_ENOTFOUND (-1009)
/** An id (operation, participant, call) has the wrong shape or length. */
#define SHL_EBADID (-1010)
/** The operation has failed (cleanup or failed state); also what ending
 * an old call returns to a participant that was declared crashed (see
 * shl_call_end). A call's own failure is SHL_ECALLFAILED. */
#define SHL_EFAILED (-1011)
/** The operation was aborted. */
#define SHL_EABORTED (-1012)
/** This participant was declared crashed by the others and fenced itself:
 * its new calls are refused with this code (see shl_call_end for its old
 * ones). */
#define SHL_EFENCED (-1013)
/** The segment's permissions are unsafe: it is writable by every local
 * user (mode bits o+w), or it grants its group access the opener did not
 * ask for (shl_ledger_opts.mode without group bits) or to a group the
 * opener is not in. Another user could have written anything into it; it
 * is refused, never used. Remove it (shmledger gc --unlink --force) or fix
 * its mode. */
#define SHL_EUNSAFE (-1014)
/** Files could not be written whole (disk full, read-only base directory,
 * I/O error). The change in the segment was made (e.g. the operation is
 * completed and `op` was freed), but what the function writes to disk is
 * incomplete; shl_errmsg() names the first file and the errno, and every
 * failed file is also reported through on_log_line. */
#define SHL_EIO (-1015)
/** The call failed (its work returned an error, or the call was failed);
 * the operation may still be running: only the call is concerned. Returned
 * by shl_spawned_wait(); the operation's own failure is SHL_EFAILED. */
#define SHL_ECALLFAILED (-1016)
/** The call was cancelled (shl_spawned_cancel, or shl_op_leave with
 * cancel_pending) and its work gave up: its own outcome, neither success
 * nor a failure of the operation. */
#define SHL_ECANCELLED (-1017)

/**
 * Describe an error code: a short English text ("operation failed",
 * "No such file or directory").
 *
 * @param err  any value returned by this library (negative errno or SHL_E*).
 * @return a static string; never NULL. Context: any thread, async-signal-safe.
 */
SHL_API const char *shl_strerror(int err);

/**
 * Name an error code: its symbol ("SHL_EFAILED", "ENOENT"; "OK" for 0,
 * "UNKNOWN" for values that are neither).
 * @return a static string; never NULL. Context: any thread, async-signal-safe.
 */
SHL_API const char *shl_strerror_name(int err);

/**
 * Diagnostic text of the calling thread's most recent failure.
 *
 * Every public function that can fail clears it on entry, so it never shows
 * an earlier call's message (shl_strerror, shl_errmsg and the plain
 * accessors leave it alone).
 * @return a thread-local string, valid until the next library call on this
 *         thread; "" when there is none. Never allocates.
 */
SHL_API const char *shl_errmsg(void);

/** Library version as "MAJOR.MINOR.PATCH". Static string. */
SHL_API const char *shl_version_string(void);

/* ------------------------------------------------------------------------ */
/* Limits and enums                                                          */
/* ------------------------------------------------------------------------ */

/** Longest participant id (bytes, without NUL). */
#define SHL_PARTICIPANT_ID_MAX 63
/** Longest operation id (bytes, without NUL). */
#define SHL_OPERATION_ID_MAX 127
/** Longest call id (bytes, without NUL). */
#define SHL_CALL_ID_MAX 127
/** Longest description of an operation or a call (bytes, without NUL). */
#define SHL_DESCRIPTION_MAX 255
/** Longest temp-resource path (bytes, without NUL). */
#define SHL_PATH_MAX 511
/** Longest failure reason stored with an operation (bytes, without NUL). */
#define SHL_REASON_MAX 255
/** Crashed call ids carried in a shl_failed_info value (the first ones);
 * the operation keeps more: see shl_failed_info.crashed_call_total,
 * shl_op_crashed_call_ids() and shl_snapshot.crashed_call_ids. */
#define SHL_CRASHED_IDS_MAX 16

/** OperationState. The numeric values are stable. */
typedef enum shl_op_state {
    SHL_OP_RUNNING = 0,   /**< "running" */
    SHL_OP_CLEANUP = 1,   /**< "cleanup": failure detected, cleaning up */
    SHL_OP_FAILED = 2,    /**< "failed" */
    SHL_OP_COMPLETED = 3, /**< "completed" */
} shl_op_state;

/** FrameState. The numeric values are stable. */
typedef enum shl_frame_state {
    SHL_FRAME_ACTIVE = 0,      /**< "active" */
    SHL_FRAME_CRASHED = 1,     /**< "crashed" */
    SHL_FRAME_CLEANING_UP = 2, /**< "cleaningUp" (cleanup coordinator) */
    SHL_FRAME_CLEANED_UP = 3,  /**< "cleanedUp" */
} shl_frame_state;

/** The JSON spelling of a state ("running", ...); "unknown" if out of range.
 * Static string. Context: any thread. */
SHL_API const char *shl_op_state_name(shl_op_state s);
/** The JSON spelling of a frame state ("active", "cleaningUp", ...). */
SHL_API const char *shl_frame_state_name(shl_frame_state s);

/* ------------------------------------------------------------------------ */
/* Ids                                                                       */
/* ------------------------------------------------------------------------ */

/**
 * Check an operation id the way joinOperation does: non-empty, at most
 * SHL_OPERATION_ID_MAX bytes, only [A-Za-z0-9_:.-], no "..".
 * @return 0 if valid, SHL_EBADID otherwise. Context: any thread.
 */
SHL_API int shl_validate_operation_id(const char *id);

/**
 * Check a participant id: 1..SHL_PARTICIPANT_ID_MAX bytes of
 * [A-Za-z0-9_:.-] (it becomes part of operation and call ids), no "..".
 * @return 0 if valid, SHL_EBADID otherwise. Context: any thread.
 */
SHL_API int shl_validate_participant_id(const char *id);

/* ------------------------------------------------------------------------ */
/* Ledger                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct shl_ledger shl_ledger;
typedef struct shl_op shl_op;
typedef struct shl_call shl_call;
typedef struct shl_reader shl_reader;

/* ------------------------------------------------------------------------ */
/* Heartbeat results and errors                                              */
/* ------------------------------------------------------------------------ */

/** HeartbeatErrorType. */
typedef enum shl_heartbeat_error_type {
    SHL_HB_LEDGER_NOT_FOUND = 0, /**< ledgerNotFound: the operation is gone */
    SHL_HB_LOCK_FAILED = 1,      /**< lockFailed: structure lock timed out */
    SHL_HB_ABORT_FLAG_SET = 2,   /**< abortFlagSet */
    SHL_HB_HEARTBEAT_STALE = 3,  /**< heartbeatStale: stale participants */
    SHL_HB_IO_ERROR = 4,         /**< ioError: the segment could not be read
                                      or a file could not be written */
} shl_heartbeat_error_type;

/** "ledgerNotFound", "lockFailed", ... Static string. */
SHL_API const char *shl_heartbeat_error_type_name(shl_heartbeat_error_type t);

/** HeartbeatError. */
typedef struct shl_heartbeat_error {
    shl_heartbeat_error_type type;
    char message[256];
    int cause; /**< library error code behind it, 0 if none */
} shl_heartbeat_error;

/** A participant id with its heartbeat age (participantHeartbeatAges). */
typedef struct shl_participant_age {
    char participant_id[SHL_PARTICIPANT_ID_MAX + 1];
    int64_t age_ms;
} shl_participant_age;

struct shl_snapshot;

/** HeartbeatResult. Free with shl_heartbeat_result_free(). */
typedef struct shl_heartbeat_result {
    bool abort_flag;
    bool ledger_exists;
    bool heartbeat_updated;
    uint32_t call_frame_count;
    uint32_t temp_resource_count;
    int64_t heartbeat_age_ms; /**< age of the operation's last change */
    bool is_stale;            /**< some other participant is stale */
    /** participantId of each frame, one per frame, own id included */
    size_t participant_count;
    char (*participants)[SHL_PARTICIPANT_ID_MAX + 1];
    /** per participant id: age of its heartbeat before this one */
    size_t age_count;
    shl_participant_age *ages;
    /** stale participant ids, self excluded: owners of frames whose
     * heartbeat is older than the session's staleness threshold, and
     * members of the operation without frames in the same case (a
     * stopped process) */
    size_t stale_count;
    char (*stale_participants)[SHL_PARTICIPANT_ID_MAX + 1];
    bool has_stale_children; /**< stale_count > 0 */
    struct shl_snapshot *data_before; /**< before the heartbeat store */
    struct shl_snapshot *data_after;  /**< after it */
} shl_heartbeat_result;

/** Free a heartbeat result and its snapshots. NULL is a no-op. */
SHL_API void shl_heartbeat_result_free(shl_heartbeat_result *r);

/** LedgerCallback. Every member may be NULL. Callbacks never run while a
 * ledger lock is held. */
typedef struct shl_ledger_callbacks {
    /** onBackupCreated: an operation was archived (`path` is its folder
     * backup/{opId}, on the thread that archived), or a trail file was
     * created (`path` is {basePath}/{opId}_trail.jsonl, the trail's first
     * line; on the thread that wrote it: this ledger's snapshotter thread,
     * or a thread of this ledger that wrote its own lines while the event
     * ring was full). The original called it for every trail snapshot; our
     * trail is one file appended per change, reported once when created.
     * `path` is valid only during the call. */
    void (*on_backup_created)(const char *path, void *user);
    /** A log line was written. `line` has no trailing newline and is valid
     * only during the call. Runs on the logging thread. Also receives the
     * library's own "[Ledger] ..." reports (a failed file write, say), on
     * the thread that met them: the snapshotter thread, or any thread of
     * this ledger that posted an event while the ring was full (it then
     * writes lines, or drains a batch, itself). */
    void (*on_log_line)(const char *line, void *user);
    /** onGlobalHeartbeatError: the monitor found one of this ledger's
     * operations gone (ledgerNotFound), or its own heartbeat late or a
     * heartbeat of one of its sessions found stale participants
     * (heartbeatStale). Every ledgerNotFound and heartbeatStale reported
     * to a session's on_heartbeat_error also comes here. Runs on the
     * monitor thread. */
    void (*on_global_heartbeat_error)(shl_op *op,
                                      const shl_heartbeat_error *err,
                                      void *user);
    void *user; /**< passed back to every callback */
} shl_ledger_callbacks;

/** Options of shl_ledger_open(). Initialise with shl_ledger_opts_init(). */
typedef struct shl_ledger_opts {
    /** Pid recorded in frames and resources (participantPid); 0 = getpid().
     * Liveness is always proven on the real process, never on this value. */
    int32_t participant_pid;
    /** Archive folders kept in backup/ (maxBackups). Default 20. */
    uint32_t max_backups;
    /** Heartbeat interval in ms (heartbeatInterval). Default 5000. */
    int64_t heartbeat_interval_ms;
    /** A participant whose heartbeat is older is stale (staleThreshold).
     * Default 15000. */
    int64_t stale_threshold_ms;
    /** Capacities, used only when this open creates the segment. Defaults:
     * 1024 participants, 1024 operations, 65536 frames, 16384 resources. */
    uint32_t max_participants;
    uint32_t max_operations;
    uint32_t max_frames;
    uint32_t max_resources;
    /** Permission bits of a newly created segment. Default 0600. World
     * write (0002) is refused (-EINVAL). Group bits (0060) give the
     * creator's group access to the segment object, and are also what
     * allows this ledger to open an existing segment with group access:
     * one that grants its group any access opens only when `mode` has
     * group bits and the segment's group is one of the caller's groups
     * (SHL_EUNSAFE otherwise). World-writable segments are always refused.
     * A ledger is not shared between users: the segment's name includes
     * the effective uid (shl_segment_name()), so another user opening the
     * same base directory gets a segment of their own, and the two write
     * into the same directory without seeing each other. Give each user
     * their own base directory. */
    uint32_t mode;
    /** How long to wait for a segment another process is creating, and for
     * the structure lock. Default 2000 ms. */
    int64_t timeout_ms;
    /** Grouped callbacks (LedgerCallback). Copied. */
    shl_ledger_callbacks callbacks;
    /** Take part in the snapshotter role: a thread of this ledger drains
     * the segment's event ring into the log and trail files and rewrites
     * changed {opId}.operation.json files, while this ledger holds the role
     * (one process per segment; another takes over when it dies). Default
     * true. */
    bool snapshotter;
    /** Snapshotter period in ms (> 0). Default 100. */
    int64_t snapshot_period_ms;
    /** Event ring capacity in records (rounded up to a power of two, at
     * most 1 << 20), used only when this open creates the segment. 0 means
     * no ring: every event is written by its producer. Default 16384
     * (512 bytes each: 8 MiB of the segment). */
    uint32_t max_events;
    /** Back-pressure, in microseconds (0 to 1,000,000). 0, the default:
     * a producer that finds the event ring full never waits, it writes its
     * lines to the files itself (about 20 times the snapshotter's cost per
     * line, so producers that outrun the snapshotter slow down instead of
     * speeding up). > 0: while a snapshotter holds the role, a producer of
     * this ledger that finds the ring full first waits up to this long for
     * room, yielding the CPU, and only then writes its lines itself. Trades
     * call latency under overload for throughput. */
    int64_t ring_full_wait_us;
    /** Durable archives. true, the default: shl_op_complete() and the
     * archive of a failed operation fsync every archived file, the archive
     * folder, backup/ and the base directory before they return, so the
     * archive survives a power loss once complete() has returned (cost:
     * see README, "Durability"). false: no fsync (the files are complete
     * on return but may be lost with the page cache). */
    bool durable;
    /** Read-your-writes files (the original's behaviour). false, the
     * default: {opId}.operation.json, .operation.log, .operation.debug.log
     * and the trail are written by the snapshotter, a few milliseconds
     * after the change (at most snapshot_period_ms for the JSON). true:
     * every change made through this ledger (call start, end and fail,
     * spawned calls, temp resources, the abort flag, the operation state,
     * log lines, heartbeats) is in those files when the function returns:
     * the function flushes the event ring and rewrites the JSON itself, as
     * shl_op_flush() does. Costs tens of microseconds per change instead of
     * a few hundred nanoseconds (docs/benchmarks.md); a flush that cannot
     * finish within timeout_ms leaves the change to the snapshotter and is
     * reported through on_log_line, the change itself stands. */
    bool sync_files;
} shl_ledger_opts;

/** Fill `o` with the defaults. Context: any thread. */
SHL_API void shl_ledger_opts_init(shl_ledger_opts *o);

/**
 * Open (creating if needed) the ledger of `base_path` as `participant_id`.
 *
 * Creates `base_path` (0700) and `base_path/backup` if missing, maps the
 * segment named after the caller's uid and the real path, creating and
 * initialising it if it does not exist, and takes a participant slot.
 *
 * @param[out] out             the new ledger; owned by the caller, release
 *                             with shl_ledger_close().
 * @param[in]  base_path       directory for the JSON files, logs and backups.
 * @param[in]  participant_id  see shl_validate_participant_id().
 * @param[in]  opts            NULL for the defaults.
 * @return 0; -EINVAL (NULL or out-of-range argument), SHL_EBADID,
 *         -ENAMETOOLONG, -errno from mkdir/realpath/shm_open/mmap,
 *         SHL_EVERSION, SHL_EFORMAT, SHL_EOWNER, SHL_ECORRUPT,
 *         SHL_ENOTREADY (creator still initialising after timeout_ms),
 *         SHL_EFULL (no free participant slot), SHL_EPANIC, -ETIMEDOUT,
 *         SHL_EUNSAFE (see shl_ledger_opts.mode); SHL_ECORRUPT also for a
 *         garbled structure mutex.
 * Context: any thread. May block (bounded by timeout_ms).
 */
SHL_API SHL_NODISCARD int shl_ledger_open(shl_ledger **out,
                                          const char *base_path,
                                          const char *participant_id,
                                          const shl_ledger_opts *opts);

/**
 * Close a ledger (dispose): ends every session still open as by
 * shl_op_leave(op, true), releases the participant slot and frees `l`.
 * NULL is a no-op. Closing twice is undefined in C terms (the pointer is
 * freed); keep one owner. Context: not concurrently with other calls on the
 * same ledger or its sessions. May block.
 */
SHL_API void shl_ledger_close(shl_ledger *l);

/**
 * Store a heartbeat for this participant now: one release store of
 * CLOCK_MONOTONIC into the participant's own record (no lock, no syscall
 * beyond the vDSO clock read). The monitor thread does this on its own every
 * heartbeat interval; call it directly only to refresh between ticks.
 * @return 0; -EINVAL (NULL); SHL_EFENCED if this participant was declared
 *         crashed (its slot was taken over). Context: any thread; wait-free.
 */
SHL_API int shl_ledger_heartbeat(shl_ledger *l);

/** The participant id given at open. Valid while `l` is open. */
SHL_API const char *shl_ledger_participant_id(const shl_ledger *l);
/** The base path (as given). Valid while `l` is open. */
SHL_API const char *shl_ledger_base_path(const shl_ledger *l);
/** A read-only view of this ledger's segment, owned by `l` (do not close). */
SHL_API shl_reader *shl_ledger_reader(shl_ledger *l);

/* ------------------------------------------------------------------------ */
/* Operations and sessions                                                   */
/* ------------------------------------------------------------------------ */

/** OperationFailedInfo. */
typedef struct shl_failed_info {
    char operation_id[SHL_OPERATION_ID_MAX + 1];
    int64_t failed_at_us; /**< wall clock, microseconds since the epoch */
    char reason[SHL_REASON_MAX + 1]; /**< "" when none */
    /** ids in crashed_call_ids (the first SHL_CRASHED_IDS_MAX at most) */
    uint32_t crashed_call_count;
    char crashed_call_ids[SHL_CRASHED_IDS_MAX][SHL_CALL_ID_MAX + 1];
    /** crashedCallIds.length: every crashed call of the failure (>=
     * crashed_call_count). Read them all with shl_op_crashed_call_ids(),
     * or from a snapshot's crashed_call_ids. The operation record names up
     * to 8 KiB of ids (at least 64 of the longest, about 400 typical ones);
     * beyond that a call is counted here but not named. */
    uint32_t crashed_call_total;
} shl_failed_info;

/** OperationCallback. Every member may be NULL. */
typedef struct shl_op_callbacks {
    /** Each successful heartbeat of this session (monitor thread). */
    void (*on_heartbeat_success)(shl_op *op, const shl_heartbeat_result *r,
                                 void *user);
    /** A heartbeat found a problem (monitor thread). Besides this
     * session's own ticks, the monitor reports every peer of the operation
     * (a participant in another process) that hangs: once its heartbeat is
     * older than this ledger's stale_threshold_ms it is reported once, as
     * heartbeatStale with its participant id in the message ("Stale
     * heartbeat detected from: <id>"), whether or not its calls fail the
     * operation. When: within stale_threshold_ms + min(1 s,
     * stale_threshold_ms / 4) of the moment it stopped (a peer stores its
     * heartbeat, and we check, at least that often), so within the stale
     * threshold plus one heartbeat interval with the defaults (15 s, 5 s).
     * It is then declared crashed (its frames, failOnCrash, fencing). */
    void (*on_heartbeat_error)(shl_op *op, const shl_heartbeat_error *err,
                               void *user);
    /** The operation was aborted (abort flag seen, or shl_op_trigger_abort).
     * Fires at most once per session, on one of the ledger's two monitor
     * threads (the one that sleeps on the segment's futex delivers it as
     * soon as the flag's wake-up reaches it), or the thread calling
     * trigger_abort; within a millisecond or so of the flag being set on an
     * idle machine (docs/benchmarks.md, Liveness/Abort). */
    void (*on_abort)(shl_op *op, void *user);
    /** The operation failed. Fires at most once per session; `info` is valid
     * only during the call. Runs on the monitor thread (or the thread whose
     * shl_call_fail failed the operation). A peer's crash (SIGKILL included)
     * is proven by the kernel dropping its liveness lock and reaches every
     * member in milliseconds, from the first instant of its membership: a
     * join wakes the other members' monitors, which watch its pidfd at once
     * (docs/benchmarks.md, Liveness/Crash). */
    void (*on_failure)(shl_op *op, const shl_failed_info *info, void *user);
    void *user;
} shl_op_callbacks;

/**
 * Create a new operation as its initiator (createOperation).
 *
 * The id is `YYYYMMDDTHH:MM:SS.mmm-<participantId>-<8 hex>` in local time.
 * The operation starts `running`, with an empty frame table.
 *
 * @param[in]  l            the ledger.
 * @param[in]  description  stored with the operation; NULL for none; at
 *                          most SHL_DESCRIPTION_MAX bytes (else -ENAMETOOLONG).
 * @param[in]  cb           callbacks (copied); NULL for none.
 * @param[out] out          the session (sessionId 1); release with
 *                          shl_op_complete() or shl_op_leave().
 * Its files ({opId}.operation.log, .operation.debug.log, .operation.json)
 * are created before it returns.
 * @return 0; -EINVAL, -ENAMETOOLONG, -ENOMEM, SHL_EFULL, -ETIMEDOUT,
 *         SHL_EPANIC, SHL_EFENCED; SHL_EIO: the files could not be created
 *         under basePath (read-only, full): the operation is refused and
 *         removed again, nothing is kept.
 * Context: any thread. May block.
 */
SHL_API SHL_NODISCARD int shl_op_create(shl_ledger *l, const char *description,
                                        const shl_op_callbacks *cb,
                                        shl_op **out);

/**
 * Join an existing operation (joinOperation). Every join returns a new
 * session with its own session id and call accounting; a ledger that joins
 * an operation it created keeps isInitiator true. A ledger whose participant
 * id is the operation's initiatorId joins as the initiator when the
 * initiator's own session is gone (its process ended or left): the
 * initiator reconnecting, e.g. `shmledger complete` after `shmledger
 * create`.
 *
 * @return 0; -EINVAL, SHL_EBADID (see shl_validate_operation_id),
 *         SHL_ENOTFOUND (no such live operation), SHL_ESTATE (operation is
 *         completed or failed), -ENOMEM, -ETIMEDOUT, SHL_EPANIC, -EAGAIN
 *         (its record is in mid-write: the writer took longer than 200 ms,
 *         or died and its repair is pending; try again).
 * Context: any thread. May block.
 */
SHL_API SHL_NODISCARD int shl_op_join(shl_ledger *l, const char *operation_id,
                                      const shl_op_callbacks *cb,
                                      shl_op **out);

/**
 * Leave the operation for this session (leave).
 *
 * Refuses with SHL_ESTATE while the session has pending calls (the message
 * counts and names all of them, regular and spawned), unless
 * `cancel_pending` is true, in which case every pending call of the session
 * is cancelled first (its frame is removed, its onCleanup runs, and it
 * does not fail the operation: cancelled is its own outcome, see
 * shl_work_fn). On success the
 * session is closed and `op` is freed, with every call handle of the
 * session. The last session of this ledger in the operation ends the
 * ledger's participation in it.
 *
 * Pending calls are regular and spawned ones (the original's leave only
 * looked at spawned calls). With cancel_pending, spawned calls are first
 * cancelled (shl_spawned_cancel: cooperative) and waited for, at most the
 * ledger's timeout_ms; one still running after that is failed as
 * "cancelled" like a regular call, its work keeps running on its worker
 * thread, its result is discarded, and the session's memory is freed when
 * the work returns (shl_ledger_close waits for that).
 *
 * @return 0; -EINVAL (NULL), SHL_ESTATE (pending calls). Leaving twice is
 *         impossible by construction: the handle is freed on success.
 * Context: not concurrently with other calls on `op`. May block.
 */
SHL_API int shl_op_leave(shl_op *op, bool cancel_pending);

/**
 * Complete the operation (initiator only): moves it to `completed`,
 * releases its frames and temp-resource records, ends this session as
 * shl_op_leave(op, true) would, and frees `op`.
 *
 * The archive (backup/{opId}/ with operation.json, the logs and the
 * trail, every line posted before complete()) is whole on disk when 0 is
 * returned, and durable (fsync'ed) unless shl_ledger_opts.durable is false.
 *
 * @return 0; -EINVAL, SHL_ESTATE (not the initiator, or the operation is
 *         not running: `op` stays valid then), -ETIMEDOUT, SHL_EPANIC;
 *         SHL_EIO: the operation IS completed and `op` freed, but the
 *         archive could not be written whole (disk full, read-only, the
 *         event ring could not be drained into the logs); shl_errmsg()
 *         names the first failure, on_log_line got every one.
 * Context: not concurrently with other calls on `op`. May block (I/O and
 * fsync).
 */
SHL_API int shl_op_complete(shl_op *op);

/** sessionId: 1, 2, 3... per ledger and operation. */
SHL_API uint64_t shl_op_session_id(const shl_op *op);
/** operationId. Valid while `op` is. */
SHL_API const char *shl_op_id(const shl_op *op);
/** participantId of this ledger. Valid while `op` is. */
SHL_API const char *shl_op_participant_id(const shl_op *op);
/** pid recorded for this participant (participantPid). */
SHL_API int32_t shl_op_pid(const shl_op *op);
/** isInitiator. */
SHL_API bool shl_op_is_initiator(const shl_op *op);
/** startTime as microseconds since the epoch (creation time for the
 * initiator, join time for joiners, as in the original). */
SHL_API int64_t shl_op_start_time_us(const shl_op *op);
/** startTimeMs: milliseconds since the epoch. */
SHL_API int64_t shl_op_start_time_ms(const shl_op *op);
/** elapsedDuration in nanoseconds (monotonic). */
SHL_API int64_t shl_op_elapsed_ns(const shl_op *op);
/**
 * elapsedFormatted: "SSS.mmm" (seconds zero-padded to at least 3 digits).
 * @return the length written (without NUL), or -ENOSPC if `cap` is too small
 *         (24 bytes always suffice).
 */
SHL_API int shl_op_elapsed_formatted(const shl_op *op, char *buf, size_t cap);
/** startTimeIso: ISO 8601 local time with microseconds and UTC offset.
 * @return the length written, or -ENOSPC (40 bytes always suffice). */
SHL_API int shl_op_start_time_iso(const shl_op *op, char *buf, size_t cap);
/**
 * cachedData: a copy of the operation as this session last read it. It is
 * read again on access whenever the operation changed since (its
 * change_count moved: this session's own calls, temp resources, abort flag
 * and state, and every other participant's changes), and at every
 * heartbeat; so it is always current, as the original's cache is after its
 * own changes.
 * @param[out] out  the copy, or NULL when nothing was read yet; free with
 *                  shl_snapshot_free().
 * @return 1 with a copy, 0 when nothing is cached, -EINVAL, -ENOMEM.
 * Context: any thread.
 */
SHL_API int shl_op_cached_data(shl_op *op, struct shl_snapshot **out);
/** isAborted: this session saw the abort flag or called trigger_abort. */
SHL_API bool shl_op_is_aborted(const shl_op *op);
/** stalenessThresholdMs (frame staleness, default 10000). */
SHL_API int64_t shl_op_staleness_threshold_ms(const shl_op *op);
/** Set stalenessThresholdMs (> 0). @return 0 or -EINVAL. */
SHL_API int shl_op_set_staleness_threshold_ms(shl_op *op, int64_t ms);
/** pendingCallCount of this session. */
SHL_API size_t shl_op_pending_call_count(const shl_op *op);
/** hasPendingCalls. */
SHL_API bool shl_op_has_pending_calls(const shl_op *op);
/**
 * getPendingCalls: copy up to `cap` handles of this session's pending
 * calls (in start order) into `out`.
 * @return the total number pending (may exceed `cap`). The handles stay
 *         owned by the session.
 */
SHL_API size_t shl_op_pending_calls(const shl_op *op, shl_call **out,
                                    size_t cap);

/**
 * setAbortFlag: set or clear the shared abort flag. Bumps the segment's
 * change epoch and wakes waiters.
 * @return 0; -EINVAL, SHL_ESTALE (the operation record is gone), SHL_EPANIC.
 * Context: any thread; lock-free.
 */
SHL_API int shl_op_set_abort_flag(shl_op *op, bool aborted);

/**
 * checkAbort: read the shared abort flag. Does not fire on_abort.
 * @return 1 if aborted, 0 if not; SHL_ESTALE if the operation record is
 *         gone (the original answered true there), -EINVAL.
 * Context: any thread; lock-free.
 */
SHL_API int shl_op_check_abort(shl_op *op);

/** triggerAbort: local abort of this session: isAborted becomes true and
 * on_abort fires (on the calling thread). The shared flag is unchanged. */
SHL_API void shl_op_trigger_abort(shl_op *op);

/**
 * getOperationState.
 * @return the shl_op_state (>= 0), or SHL_ESTALE (record gone), -EINVAL.
 * Context: any thread; lock-free.
 */
SHL_API int shl_op_get_state(shl_op *op);

/**
 * setOperationState: move the operation to `state` and log
 * `OPERATION_STATE_CHANGED state=<name>`. Allowed: running -> cleanup
 * (starts the crash-cleanup protocol as a crash with failOnCrash would:
 * every member's pending calls run onCleanup, their temp resources are
 * deleted, the failure is delivered, and a coordinator moves the operation
 * to failed once no call is active, at most two heartbeat intervals
 * later), running or cleanup -> failed (fails it at once, as a failOnCrash
 * shl_call_fail does, and archives it). Setting the current state again is
 * a no-op returning 0 (nothing logged). Completing goes through
 * shl_op_complete() (initiator only).
 * @return 0; -EINVAL (NULL, unknown state); SHL_ESTATE (any other
 *         transition: from completed or failed, back to running, to
 *         completed); SHL_ESTALE (record gone); -ETIMEDOUT; SHL_EPANIC.
 * Context: any thread. May block (structure lock).
 */
SHL_API int shl_op_set_state(shl_op *op, shl_op_state state);

/**
 * Flush: a barrier after which everything this session (and this process)
 * posted before the call is in the files: the event ring is drained into
 * the log and trail files (by this process if it can take the snapshotter
 * role, else by the holder, woken at once), and {opId}.operation.json is
 * rewritten from the segment now. What sync_files does after every change,
 * on demand.
 * @return 0; -EINVAL; -ETIMEDOUT (not drained within timeout_ms: the
 *         events stay in the ring for the snapshotter); a write error
 *         (-errno, also reported through on_log_line).
 * Context: any thread. Blocks up to timeout_ms.
 */
SHL_API int shl_op_flush(shl_op *op, int64_t timeout_ms);

/**
 * Failure info of the operation, if it has failed (or is cleaning up).
 * @return 1 and fills `out` when failed, 0 when it has not failed,
 *         SHL_ESTALE, -EINVAL. Context: any thread; lock-free.
 */
SHL_API int shl_op_failure_info(shl_op *op, shl_failed_info *out);

/**
 * crashedCallIds, all of them: copy up to `cap` crashed call ids of the
 * operation's failure into `ids` (in the order they were recorded).
 * @return the number of named ids (may exceed `cap`; 0 when the operation
 *         has not failed); -EINVAL (NULL, or ids NULL with cap > 0),
 *         SHL_ESTALE (record gone), -ENOMEM, -EAGAIN.
 * Context: any thread; lock-free.
 */
SHL_API int shl_op_crashed_call_ids(shl_op *op,
                                    char (*ids)[SHL_CALL_ID_MAX + 1],
                                    size_t cap);

/* ------------------------------------------------------------------------ */
/* Temp resources                                                            */
/* ------------------------------------------------------------------------ */

/**
 * registerTempResource: record `path` (absolute; normalised: repeated '/'
 * and "." components removed, ".." resolved lexically) as a temporary
 * resource of the operation, owned by this participant. Duplicates are
 * allowed and kept, as in the original. Crash cleanup deletes a registered
 * directory with its contents, never following a symbolic link, also not
 * an intermediate one (a path whose directory is reached through a link is
 * left and reported through on_log_line).
 *
 * Deletion runs with the rights of whichever participant cleans up (root,
 * for a program run as root), so places that are never temporary are
 * refused, here and again before deleting: "/" and every top-level
 * directory ("/etc", "/home", "/tmp", "/opt" themselves); anything under
 * /etc, /usr, /boot, /bin, /sbin, /lib*, /proc, /sys, /dev (but the
 * entries of /dev/shm) and /var (but the entries of /var/tmp); /home/NAME
 * and /run/NAME themselves; the home directory ($HOME); the ledger's base
 * directory, its ancestors and its archive (`backup/` and everything in
 * it). Entries of /tmp, /var/tmp, /dev/shm, a home directory or the base
 * directory are fine.
 * @return 0; -EINVAL (NULL, empty, relative, an embedded NUL via the
 *         length form, or a refused path, above; "/", "//", "/..",
 *         "/tmp/../" are "/"), -ENAMETOOLONG, SHL_EFULL, SHL_ESTALE,
 *         SHL_ESTATE
 *         (operation not running), -ETIMEDOUT, SHL_EPANIC.
 * Context: any thread. May block.
 */
SHL_API int shl_op_register_temp_resource(shl_op *op, const char *path);
/** As shl_op_register_temp_resource() with an explicit length, so a path
 * with an embedded NUL is detected and rejected (-EINVAL). */
SHL_API int shl_op_register_temp_resource_n(shl_op *op, const char *path,
                                            size_t len);

/**
 * A temp resource of the operation registered for a call: as
 * shl_op_register_temp_resource() in the call's session, and it appears
 * in the call's frame (CallFrame.resources: shl_call_frame_resources(),
 * the frame's "resources" in the JSON; the original declared the list and
 * never filled it). It stays registered after the call ends (unregister it
 * by path); the frame link ends with the frame.
 * @return as shl_op_register_temp_resource(); SHL_ESTATE also when the
 *         call is no longer pending. Context: any thread. May block.
 */
SHL_API int shl_call_register_temp_resource(shl_call *call, const char *path);

/**
 * unregisterTempResource: remove every record of the operation whose
 * normalised path equals `path` exactly.
 * @return the number removed (>= 0; 0 when none matched); -EINVAL,
 *         -ENAMETOOLONG, SHL_ESTALE, -ETIMEDOUT, SHL_EPANIC.
 * Context: any thread. May block.
 */
SHL_API int shl_op_unregister_temp_resource(shl_op *op, const char *path);

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */
/* ------------------------------------------------------------------------ */

/** CallCallback. Every member may be NULL.
 *
 * Threads and lifetimes: each callback says which thread runs it; none
 * runs under a library lock. The `call` passed to a callback is valid, and
 * is that call, until the callback returns, even when another thread ends
 * and releases it meanwhile (the release takes effect at once; the object
 * is reused or freed only after the callback returned). A callback is not
 * fired for a call that has ended before it ran (on_operation_failed, and
 * a crash cleanup's on_cleanup, are for pending calls), though one may
 * still be running when the call's owner ends it on another thread. */
typedef struct shl_call_callbacks {
    /** Runs on shl_call_fail() (its thread), on leave(op, true) for a
     * call still pending (the leaving thread), and during crash cleanup
     * (monitor thread). At most once per call. */
    void (*on_cleanup)(shl_call *call, void *user);
    /** Runs on shl_call_end() when `result` is not NULL (as the original),
     * on its thread. */
    void (*on_completion)(shl_call *call, void *result, void *user);
    /** Runs when the operation fails while this call is pending: on the
     * monitor thread, or the thread whose shl_call_fail() failed the
     * operation, or a worker settling a spawned call. `info` is valid only
     * during the call. */
    void (*on_operation_failed)(shl_call *call, const shl_failed_info *info,
                                void *user);
    void *user;
} shl_call_callbacks;

/** Options of shl_call_start(). Initialise with shl_call_opts_init(). */
typedef struct shl_call_opts {
    const char *description; /**< NULL for none; <= SHL_DESCRIPTION_MAX */
    bool fail_on_crash;      /**< default true */
    shl_call_callbacks callbacks;
} shl_call_opts;

/** Fill `o` with the defaults (no description, fail_on_crash true). */
SHL_API void shl_call_opts_init(shl_call_opts *o);

/**
 * startCall: start a call in this session. Its frame (state `active`)
 * appears in the shared table before this returns. The call id is
 * `call_<participantId>_<n>_<4 hex>`.
 *
 * @param[out] out  the call; owned by the session. It stays valid after
 *                  end/fail (so a second end/fail is reported) until
 *                  shl_call_release() or the session ends.
 * @return 0; -EINVAL, -ENAMETOOLONG (description), -ENOMEM, SHL_EFULL
 *         (frame table full), SHL_ESTALE, SHL_ESTATE (operation not
 *         running, or session aborted), SHL_EFENCED (this participant was
 *         declared crashed; checked before the operation's state, which is
 *         failed by then).
 * Context: any thread; lock-free (no structure lock is taken).
 */
SHL_API SHL_NODISCARD int shl_call_start(shl_op *op, const shl_call_opts *o,
                                         shl_call **out);

/**
 * end: finish the call successfully. Removes its frame; fires
 * on_completion(result) when `result` is not NULL. `result` is borrowed.
 *
 * One rule for a call whose frame is no longer this process's to remove
 * (shl_call_end and shl_call_fail alike):
 *  - the frame is still ours (active, or marked cleanedUp by this
 *    process's own self-cleanup), or the operation failed and its cleanup
 *    released the frame while this participant was live and never declared
 *    crashed (a survivor): the call ends, its CALL_ENDED / CALL_FAILED line
 *    is logged, 0 is returned; the failure itself is reported through
 *    on_failure and the waits;
 *  - this participant was declared crashed (stale, then fenced): the frame
 *    was taken as crashed and the operation failed because of it:
 *    SHL_EFAILED, nothing is logged (a fenced participant stops writing);
 *    its new calls get SHL_EFENCED;
 *  - the operation ended without the call (the initiator's complete()
 *    released its frame, or the record is gone): SHL_ESTATE, nothing
 *    logged.
 * In every case the call counts as completed afterwards.
 * @return 0; -EINVAL, SHL_ESTATE (already ended or failed, or the
 *         operation ended without it), SHL_EFAILED (declared crashed).
 * Context: any thread; lock-free.
 */
SHL_API int shl_call_end(shl_call *call, void *result);

/**
 * fail: finish the call with an error. Removes its frame, fires
 * on_cleanup, and if the call has fail_on_crash the operation moves to
 * `failed` with reason "Call <id> failed: <error>" and this call id in its
 * failure info.
 * @param error  text, may be NULL ("unknown").
 * @return 0; -EINVAL, SHL_ESTATE, SHL_EFAILED (the rule of shl_call_end).
 * Context: any thread. May block (when it fails the operation).
 */
SHL_API int shl_call_fail(shl_call *call, const char *error);

/**
 * fail(error, stackTrace): shl_call_fail() with a detail text, e.g. a stack
 * trace. The detail is logged (and so archived) right after the
 * CALL_FAILED line as "CALL_STACK_TRACE callId=<id> message=<detail>" at
 * ERROR, its newlines written as " | " (one line per entry); the
 * operation's failure reason stays "Call <id> failed: <error>".
 * `detail` may be NULL or "" (none). Errors and context as
 * shl_call_fail().
 */
SHL_API int shl_call_fail_detail(shl_call *call, const char *error,
                                 const char *detail);

/** Free a finished call early: the handle is invalid afterwards. If one
 * of the call's callbacks is running on another thread meanwhile, the
 * release takes effect at once (no wait: it may be called inside that
 * callback) and the object is recycled only when the callback returns.
 * @return 0, -EINVAL, or SHL_ESTATE if the call is still pending (end or
 * fail it first). Context: any thread; takes the session's lock briefly. */
SHL_API int shl_call_release(shl_call *call);

/** callId. Valid while the handle is. */
SHL_API const char *shl_call_id(const shl_call *call);
/** description, or NULL. Valid while the handle is. */
SHL_API const char *shl_call_description(const shl_call *call);
/** startedAt, microseconds since the epoch. */
SHL_API int64_t shl_call_started_at_us(const shl_call *call);
/** isCompleted: ended or failed. */
SHL_API bool shl_call_is_completed(const shl_call *call);
/** failOnCrash. */
SHL_API bool shl_call_fail_on_crash(const shl_call *call);

/* ------------------------------------------------------------------------ */
/* Spawned calls, sync, waitForCompletion                                    */
/* ------------------------------------------------------------------------ */

typedef struct shl_spawned shl_spawned;

/**
 * The work of a spawned call (the Dart `work`/`workWithCall`). Runs on a
 * worker thread of the ledger's pool. Return 0 and set *result (may stay
 * NULL) on success; return a negative code on failure, optionally with an
 * error text through shl_spawned_set_error() (else the code's
 * shl_strerror() text is the error). It may poll
 * shl_spawned_is_cancelled() and attach a child process with
 * shl_spawned_attach_pid() so shl_spawned_kill() can reach it.
 *
 * Cancelled: work that sees shl_spawned_is_cancelled() should return
 * -ECANCELED. A call whose work returns -ECANCELED, or any negative code
 * after cancellation was requested, has the *cancelled* outcome: its frame
 * is removed (CALL_FAILED with its error), on_cleanup runs,
 * on_call_crashed is not asked for a fallback, the operation does not
 * fail (whatever fail_on_crash says), and shl_spawned_wait() returns
 * SHL_ECANCELLED. The same holds for regular calls cancelled by
 * shl_op_leave(op, true). Work that completes successfully despite a
 * cancel request succeeds.
 *
 * The pool: created on a ledger's first spawned call, it grows by a thread
 * whenever more work is queued than threads are idle, up to 16; further
 * work waits in FIFO order, so work that blocks for long holds a thread.
 * Pool threads block every signal. They are joined by shl_ledger_close(),
 * which therefore waits for running work: work should honour
 * cancellation.
 */
typedef int (*shl_work_fn)(shl_spawned *call, void *arg, void **result);

/** Options of shl_op_spawn_call(). Initialise with shl_spawn_opts_init(). */
typedef struct shl_spawn_opts {
    const char *description; /**< NULL for none */
    bool fail_on_crash;      /**< default true */
    /** Free function for a successful result (called when the handle is
     * released); NULL leaves results to the caller. */
    void (*result_free)(void *result);
    /** on_completion(result) on every success (also a NULL result or a
     * fallback), before waiters wake; on_cleanup when the call fails
     * (also when cancelled by shl_op_leave, and in crash cleanup);
     * on_operation_failed when the operation fails while the call is
     * pending. The shl_call passed to them is the spawned call's
     * underlying call (shl_call_id() == shl_spawned_id()); do not end,
     * fail or release it. on_completion and on_cleanup run on the worker
     * thread; on_operation_failed on the monitor thread, or on the thread
     * whose call failure failed the operation. */
    shl_call_callbacks callbacks;
    /** onCallCrashed: the work failed; return a non-NULL fallback to
     * complete the call successfully with it (no operation failure; the
     * fallback is freed with result_free like a result), NULL to fail the
     * call. Runs on the worker thread; `user` is callbacks.user. */
    void *(*on_call_crashed)(shl_spawned *call, void *user);
} shl_spawn_opts;

SHL_API void shl_spawn_opts_init(shl_spawn_opts *o);

/**
 * spawnCall: start a call whose work runs on a worker thread; returns at
 * once with the call id available. The frame appears before this returns
 * (CALL_STARTED); the call counts as pending for the session (pending
 * count, shl_op_leave) until its outcome is published.
 *
 * Success: the frame is removed (CALL_ENDED, then CALL_COMPLETED),
 * on_completion runs, then waiters wake. Failure (work < 0, no fallback):
 * the frame is removed (CALL_FAILED), on_cleanup runs, the operation fails
 * with reason "Call <id> failed: <error>" if fail_on_crash, then waiters
 * wake (they see the call failed and the operation failed together).
 *
 * execServerRequest: see shl_op_exec_server_request().
 *
 * @param[out] out  owned by the session; valid until
 *                  shl_spawned_release() or the session ends.
 * @return 0; -EINVAL, -ENOMEM, -EAGAIN (no thread), SHL_ESTATE (ledger
 *         closing), and the errors of shl_call_start(). Context: any
 *         thread.
 */
SHL_API SHL_NODISCARD int shl_op_spawn_call(shl_op *op, shl_work_fn work,
                                            void *arg,
                                            const shl_spawn_opts *o,
                                            shl_spawned **out);

SHL_API const char *shl_spawned_id(const shl_spawned *c);
SHL_API const char *shl_spawned_description(const shl_spawned *c);
SHL_API bool shl_spawned_is_completed(const shl_spawned *c);
SHL_API bool shl_spawned_is_success(const shl_spawned *c);
SHL_API bool shl_spawned_is_failed(const shl_spawned *c);
SHL_API bool shl_spawned_is_cancelled(const shl_spawned *c);
/** result: the value of a successful call, or NULL (resultOrNull). */
SHL_API void *shl_spawned_result(const shl_spawned *c);
/** resultOr(default). */
SHL_API void *shl_spawned_result_or(const shl_spawned *c, void *dflt);
/** error: the error text of a failed (or cancelled) call, or NULL. Also
 * available inside on_call_crashed and on_cleanup, before the outcome is
 * published: the text the work set, else its code's shl_strerror() text.
 * Valid while the handle is. */
SHL_API const char *shl_spawned_error(const shl_spawned *c);
/** stackTrace: the detail text the work gave with
 * shl_spawned_set_error_detail(), or NULL; same availability as
 * shl_spawned_error(). */
SHL_API const char *shl_spawned_stack_trace(const shl_spawned *c);
/** For the work function: record the error text of this failure. Has no
 * effect once the work returned. */
SHL_API void shl_spawned_set_error(shl_spawned *c, const char *error);
/** For the work function: the error text and a detail text (a stack
 * trace; NULL for none). The detail is logged after the CALL_FAILED line
 * as shl_call_fail_detail() does, and read with
 * shl_spawned_stack_trace(). Copied. */
SHL_API void shl_spawned_set_error_detail(shl_spawned *c, const char *error,
                                          const char *detail);
/** cancel: request cooperative cancellation (isCancelled becomes true);
 * no-op once completed. The exec helpers stop their process on it
 * (SIGTERM, then SIGKILL). */
SHL_API void shl_spawned_cancel(shl_spawned *c);
/** Attach a child process so kill() can reach it (0 detaches). */
SHL_API void shl_spawned_attach_pid(shl_spawned *c, pid_t pid);
/** kill(signal): signal the attached process. @return 1 if signalled, 0 if
 * none attached, -errno. */
SHL_API int shl_spawned_kill(shl_spawned *c, int sig);
/**
 * await_ / future: wait for the call to finish.
 * @param[out] result  the result on success (may be NULL).
 * @return 0 on success; SHL_ECALLFAILED if the call failed (whether or not
 *         it failed the operation: see shl_op_get_state() for that);
 *         SHL_ECANCELLED if it was cancelled; SHL_EFAILED only when this
 *         participant was declared crashed before the call could end;
 *         -ETIMEDOUT; -EINVAL. timeout_ms < 0 waits forever. The error
 *         text is shl_spawned_error(). Context: any thread except the
 *         call's own worker.
 */
SHL_API int shl_spawned_wait(shl_spawned *c, int64_t timeout_ms,
                             void **result);
/** Free a finished spawned call (and its result with result_free).
 * @return 0, -EINVAL, SHL_ESTATE if it is still running. */
SHL_API int shl_spawned_release(shl_spawned *c);

/** getPendingSpawnedCalls: like shl_op_pending_calls(). */
SHL_API size_t shl_op_pending_spawned_calls(const shl_op *op,
                                            shl_spawned **out, size_t cap);

/** SyncResult. Arrays are owned by the result (the handles are not): free
 * with shl_sync_result_fini(). */
typedef struct shl_sync_result {
    shl_spawned **successful;
    size_t successful_count;
    shl_spawned **failed;
    size_t failed_count;
    shl_spawned **unknown;
    size_t unknown_count;
    bool operation_failed;
    shl_failed_info failure; /**< when operation_failed */
    bool all_succeeded;      /**< no failures and no unknowns */
    bool has_failed;         /**< some call failed */
    bool all_resolved;       /**< no unknown calls */
} shl_sync_result;

SHL_API void shl_sync_result_fini(shl_sync_result *r);

/** Callbacks of shl_op_sync(). */
typedef struct shl_sync_opts {
    void (*on_operation_failed)(const shl_failed_info *info, void *user);
    void (*on_completion)(void *user);
    void *user;
    int64_t timeout_ms; /**< < 0: no limit (default); calls still running
                             at the limit are reported unknown */
} shl_sync_opts;

SHL_API void shl_sync_opts_init(shl_sync_opts *o);

/**
 * sync: wait (no polling) until every call finishes or the operation fails
 * (or the timeout passes), and sort the calls into successful / failed /
 * unknown (still running). A call that failed the operation itself is
 * reported failed, never unknown. If the operation failed (also when it
 * had failed before sync started: then sync returns at once),
 * operation_failed and failure are set and on_operation_failed runs;
 * otherwise, when every call finished, on_completion runs (the original
 * ran it always). Both run on the calling thread. An empty list returns
 * at once, all_succeeded, without callbacks.
 * @param calls  spawned calls of this session (-EINVAL otherwise).
 * @return 0 with *out filled; -EINVAL, -ENOMEM. Context: any thread except
 *         the monitor and worker threads.
 */
SHL_API int shl_op_sync(shl_op *op, shl_spawned **calls, size_t n,
                        const shl_sync_opts *o, shl_sync_result *out);
/** awaitCall: shl_op_sync() of one call. */
SHL_API int shl_op_await_call(shl_op *op, shl_spawned *call,
                              const shl_sync_opts *o, shl_sync_result *out);

/**
 * waitForCompletion: run `work` (on a worker thread; no call frame) while
 * watching the operation. If the operation fails first (or had failed
 * already: the work is then not run), on_operation_failed runs on the
 * calling thread and SHL_EFAILED is returned with `*failure` filled
 * (OperationFailedException); the work is asked to stop
 * (shl_spawned_is_cancelled() on its `call` argument becomes true) and
 * keeps running on its thread until it returns, so `arg` must stay valid
 * until then, and a result it produces after that is dropped without being
 * freed. If the work fails and on_error is set, its return value becomes
 * the result (fallback); otherwise the work's error is returned (its text
 * in shl_errmsg()). on_operation_failed not running is the success case.
 * @return 0 with *result; SHL_EFAILED; the work's error; -EINVAL, -ENOMEM,
 *         -EAGAIN. Context: as shl_op_sync().
 */
SHL_API int shl_op_wait_for_completion(
    shl_op *op, shl_work_fn work, void *arg,
    void (*on_operation_failed)(const shl_failed_info *info, void *user),
    void *(*on_error)(int err, const char *error, void *user), void *user,
    void **result, shl_failed_info *failure);

/**
 * execServerRequest: a spawned call (description "Server request" unless
 * o->description says otherwise) whose work is given at most `timeout_ms`
 * (< 0: no limit, the work runs as a plain spawned call). When the time
 * passes first, the call fails at once with -ETIMEDOUT and the error
 * "Server request timed out after N ms" (failing the operation if
 * o->fail_on_crash, as any call failure); the work is asked to stop
 * (shl_spawned_is_cancelled() on the handle it was given becomes true) and
 * keeps running on its own pool thread until it returns: `arg` must stay
 * valid until then, and a result it produces late is freed with
 * o->result_free. With a limit, the work runs on a second pool thread and
 * receives its own handle (same id; its error text is copied to the call);
 * a cancel of the call reaches it within 50 ms. Everything else as
 * shl_op_spawn_call(): callbacks, on_call_crashed, cancelled outcome.
 * @return as shl_op_spawn_call(). Context: any thread.
 */
SHL_API SHL_NODISCARD int shl_op_exec_server_request(
    shl_op *op, shl_work_fn work, void *arg, int64_t timeout_ms,
    const shl_spawn_opts *o, shl_spawned **out);

/* ------------------------------------------------------------------------ */
/* Exec helpers and polling helpers (OperationHelper)                        */
/* ------------------------------------------------------------------------ */

/**
 * A deserializer (the original's `T Function(String content)`): turn the
 * text of a process's stdout, a result file or a polled file into the
 * result. `text` is NUL-terminated (`len` bytes) and valid only during the
 * call. Store the result in *result and return 0, or return a negative
 * code (-EINVAL, -EBADMSG...) when the text cannot be parsed: for the exec
 * helpers the call then fails with "... deserializer failed: <text of the
 * code>" (and the operation with it if fail_on_crash); the poll helpers
 * return the code. Runs on the thread doing the read (a worker thread for
 * the exec helpers).
 */
typedef int (*shl_deserialize_fn)(const char *text, size_t len, void *user,
                                  void **result);

/** Options of the exec helpers. Initialise with shl_exec_opts_init(). */
typedef struct shl_exec_opts {
    const char *executable;        /**< path or name (PATH searched) */
    const char *const *argv;       /**< arguments after argv[0]; NULL-ended,
                                        may be NULL */
    const char *working_directory; /**< NULL: current */
    const char *description;       /**< NULL: "File result worker" /
                                        "Stdio worker" */
    const char *result_file_path;  /**< file-result worker: required */
    bool delete_result_file;       /**< default true */
    int64_t poll_interval_ms;      /**< default 100 */
    int64_t timeout_ms;            /**< < 0: none (default) */
    bool fail_on_crash;            /**< default true */
    void (*on_stdout)(const char *line, void *user);
    void (*on_stderr)(const char *line, void *user);
    void (*on_exit)(int exit_code, void *user); /**< 128+sig if signalled */
    void *user;
    shl_call_callbacks callbacks;
    /** NULL: the result is the text (malloc'd, freed with the handle).
     * Else the result is what it makes of the text; `user` is passed. */
    shl_deserialize_fn deserializer;
    /** With a deserializer: frees its results (when the handle is
     * released); NULL leaves them to the caller. */
    void (*result_free)(void *result);
} shl_exec_opts;

SHL_API void shl_exec_opts_init(shl_exec_opts *o);

/**
 * execFileResultWorker: spawn a process; the call's result is the content
 * of result_file_path (a malloc'd NUL-terminated string, freed with the
 * handle) once the process has exited 0 and the file exists: if it is not
 * there yet, it is polled for (poll_interval_ms) for what is left of
 * timeout_ms; without a timeout it must exist at exit. A writer that
 * outlives the process (a detached child) must create the file atomically
 * (write a temporary name, then rename it), or a poll can read it between
 * its creation and its write (see shl_poll_file()). A non-zero exit, a
 * signal, a missing file or the timeout fail the call (the original
 * ignored exit codes and could poll forever). Exec failures (no such
 * program: "exec <exe>: No such file or directory (ENOENT)", a bad
 * working directory) are reported as the call's error, never swallowed.
 *
 * Common to both exec helpers: the call is a spawned call of `op` (it
 * counts as pending and blocks shl_op_leave; the original hid exec calls
 * in session 0). The child starts with every signal at its default
 * disposition and none blocked, stdin on /dev/null, stdout and stderr on
 * pipes read line by line for on_stdout / on_stderr (a line split across
 * reads arrives whole; empty lines are skipped), and is attached to the
 * call, so shl_spawned_kill() signals it. On timeout or cancel it gets
 * SIGTERM, then SIGKILL a second later. Every child is reaped; on_exit
 * gets its exit code, or 128 + signal. Errors: "Process <exe> exited with
 * code N", "... killed by signal N (SIGxxx) ...", "... timed out after N
 * ms ...", "cancelled ...". Callbacks run on the worker thread.
 * @return as shl_op_spawn_call().
 */
SHL_API SHL_NODISCARD int shl_op_exec_file_result_worker(
    shl_op *op, const shl_exec_opts *o, shl_spawned **out);

/**
 * execStdioWorker: spawn a process; the call's result is its whole stdout
 * (malloc'd NUL-terminated string, at most 64 MiB, freed with the handle)
 * when it exits 0; timeout honoured (the original ignored it). on_stdout,
 * if set, also gets the lines. See shl_op_exec_file_result_worker().
 */
SHL_API SHL_NODISCARD int shl_op_exec_stdio_worker(shl_op *op,
                                                   const shl_exec_opts *o,
                                                   shl_spawned **out);

/**
 * pollFile: wait until `path` exists, then read it whole (and unlink it
 * if delete_after). The deadline is monotonic; poll_interval_ms <= 0 means
 * 100; timeout_ms < 0 waits forever, 0 looks once. Writers should create
 * the file atomically (write a temporary file, then rename it).
 * @param[out] content  malloc'd NUL-terminated text; free with free().
 * @return 0; -ETIMEDOUT (timeout_ms >= 0 passed); -errno of the read (a
 *         file that exists but cannot be read is an error at once);
 *         -EINVAL. Context: any thread; blocks the caller.
 */
SHL_API int shl_poll_file(const char *path, bool delete_after,
                          int64_t poll_interval_ms, int64_t timeout_ms,
                          char **content);
/** pollFiles: pollFile for every path, in order; contents[i] for paths[i].
 * With delete_after the files are deleted only once all were read (the
 * original deleted each as it appeared, losing it on a timeout). On error
 * nothing is returned (everything read is freed) and the message names the
 * missing files. */
SHL_API int shl_poll_files(const char *const *paths, size_t n,
                           bool delete_after, int64_t poll_interval_ms,
                           int64_t timeout_ms, char **contents);
/** pollFile<T>: shl_poll_file(), then deserializer(text) is the result.
 * @return 0; the errors of shl_poll_file(); -EINVAL (NULL deserializer or
 *         result); the deserializer's negative code (nothing returned). */
SHL_API int shl_poll_file_parse(const char *path, bool delete_after,
                                int64_t poll_interval_ms, int64_t timeout_ms,
                                shl_deserialize_fn deserializer, void *user,
                                void **result);
/** pollFiles<T>: shl_poll_files(), then results[i] = deserializer(text of
 * paths[i]). On error nothing is returned: results already made are freed
 * with result_free (may be NULL). */
SHL_API int shl_poll_files_parse(const char *const *paths, size_t n,
                                 bool delete_after, int64_t poll_interval_ms,
                                 int64_t timeout_ms,
                                 shl_deserialize_fn deserializer, void *user,
                                 void (*result_free)(void *result),
                                 void **results);
/** pollUntil: call check until it returns non-NULL; that value is the
 * result. @return 0, -ETIMEDOUT. */
SHL_API int shl_poll_until(void *(*check)(void *user), void *user,
                           int64_t poll_interval_ms, int64_t timeout_ms,
                           void **result);

/* ------------------------------------------------------------------------ */
/* Heartbeats, liveness, waits                                               */
/* ------------------------------------------------------------------------ */

/** Options of shl_op_start_heartbeat(). Initialise with
 * shl_heartbeat_opts_init() (interval 4500 ms, jitter 500 ms). */
typedef struct shl_heartbeat_opts {
    int64_t interval_ms;
    int64_t jitter_ms;
    void (*on_error)(shl_op *op, const shl_heartbeat_error *err, void *user);
    void (*on_success)(shl_op *op, const shl_heartbeat_result *r,
                       void *user);
    void *user;
} shl_heartbeat_opts;

SHL_API void shl_heartbeat_opts_init(shl_heartbeat_opts *o);

/**
 * startHeartbeat: (re)start this session's heartbeat checks with new
 * settings. Sessions start with the ledger's heartbeat interval when created
 * or joined. Each tick fills a HeartbeatResult and reports it through
 * on_success / on_error (and the session's OperationCallback).
 * The participant's liveness does not depend on it: death is proven by the
 * kernel and noticed in milliseconds whatever the interval.
 * @return 0; -EINVAL (`op` or `o` NULL, interval <= 0, jitter < 0); use
 *         shl_heartbeat_opts_init() for the defaults.
 * Context: any thread.
 */
SHL_API int shl_op_start_heartbeat(shl_op *op, const shl_heartbeat_opts *o);

/** stopHeartbeat: no more ticks for this session. While no session of the
 * ledger has its heartbeat running, the participant's heartbeat store stops
 * too, and after staleThreshold the others treat it as hung. */
SHL_API void shl_op_stop_heartbeat(shl_op *op);

/**
 * heartbeat: one heartbeat now: store it, then read the operation.
 * @param[out] out  the result; free with shl_heartbeat_result_free().
 * @return 0; -EINVAL; SHL_ENOTFOUND (the operation is gone: ledgerNotFound,
 *         *out not set); SHL_EFENCED; -ENOMEM; -EAGAIN.
 * Context: any thread; lock-free.
 */
SHL_API int shl_op_heartbeat(shl_op *op, shl_heartbeat_result **out);

/**
 * Wait until this session sees the abort (the onAbort future): it was
 * delivered to the session, or the operation's shared abort flag is set
 * (the wait sleeps on the flag itself, so it returns on the setter's
 * wake-up; the session then counts as aborted, and on_abort may still be
 * running or about to run on the monitor's futex thread).
 * @return 0 when aborted; -ETIMEDOUT; -EINVAL. timeout_ms < 0 waits
 *         forever. Context: any thread except the monitor (callbacks).
 */
SHL_API int shl_op_wait_abort(shl_op *op, int64_t timeout_ms);

/**
 * Wait until this session learns the operation failed (the onFailure
 * future).
 * @param[out] info  filled on success; may be NULL.
 * @return 0; -ETIMEDOUT; -EINVAL. Context: any thread except the monitor.
 */
SHL_API int shl_op_wait_failure(shl_op *op, int64_t timeout_ms,
                                shl_failed_info *info);

/**
 * A descriptor (eventfd) that becomes readable when this session is aborted
 * or learns of a failure, for poll/epoll loops. Owned by the session (closed
 * with it). Reading it is optional; use shl_op_is_aborted() and
 * shl_op_failure_info() to see which.
 * @return the fd, or -EINVAL / -errno.
 */
SHL_API int shl_op_event_fd(shl_op *op);

/**
 * Reap now: find participants whose process is proven dead (their kernel
 * lock is gone), run the crash protocol for their operations and free their
 * slots. The monitor does this on its own; tools (`shmledger gc`) call it.
 * @return the number of dead participants reaped (>= 0), or lock errors.
 * Context: any thread. May block.
 */
SHL_API int shl_ledger_reap(shl_ledger *l);

/* ------------------------------------------------------------------------ */
/* Logs                                                                      */
/* ------------------------------------------------------------------------ */

/** LogLevel. Written upper case in log lines (DEBUG, INFO, WARNING, ERROR). */
typedef enum shl_log_level {
    SHL_LOG_DEBUG = 0,
    SHL_LOG_INFO = 1,
    SHL_LOG_WARNING = 2,
    SHL_LOG_ERROR = 3,
} shl_log_level;

/** "DEBUG", "INFO", "WARNING", "ERROR"; "UNKNOWN" out of range. Static. */
SHL_API const char *shl_log_level_name(shl_log_level level);

/**
 * log: append "<ISO timestamp> [<LEVEL>] <message>" to
 * {basePath}/{opId}.operation.log and pass the line to on_log_line.
 * @return 0; -EINVAL (NULL, or a level out of range), -errno of the write
 *         (the line is then also reported through on_log_line).
 * Context: any thread; takes no ledger lock. May block on I/O.
 */
SHL_API int shl_op_log(shl_op *op, shl_log_level level, const char *message);

/** debugLog: append "<ISO timestamp> <message>" to
 * {opId}.operation.debug.log (no callback). Errors as shl_op_log(). */
SHL_API int shl_op_debug_log(shl_op *op, const char *message);

/**
 * logMessage: log at INFO the line
 * "<elapsedFormatted> | " + 4 spaces per depth + "[<participantId>] <msg>"
 * and also print that bare line to stdout, as the original does.
 * @return as shl_op_log(); -EINVAL if depth < 0.
 */
SHL_API int shl_op_log_message(shl_op *op, int depth, const char *message);

/* ------------------------------------------------------------------------ */
/* Read-only API: segments, snapshots, the invariant checker                 */
/* ------------------------------------------------------------------------ */

/** A participant as seen in the segment. */
typedef struct shl_participant_info {
    uint32_t slot;         /**< index in the participant table */
    uint64_t generation;   /**< bumped on every reuse of the slot */
    char participant_id[SHL_PARTICIPANT_ID_MAX + 1];
    int32_t pid;           /**< real pid of the process */
    int32_t recorded_pid;  /**< participantPid given at open */
    int64_t heartbeat_age_ms;
    bool alive;            /**< the kernel still holds its liveness lock */
} shl_participant_info;

/** CallFrame. */
typedef struct shl_call_frame {
    char participant_id[SHL_PARTICIPANT_ID_MAX + 1];
    char call_id[SHL_CALL_ID_MAX + 1];
    int32_t pid;
    int64_t start_time_us;     /**< wall clock, us since the epoch */
    /** lastHeartbeat: the frame's own, as the original's readers take
     * it: the owner's last heartbeat, but never before start_time_us
     * (wall us); heartbeat_age_ms is measured from it */
    int64_t last_heartbeat_us;
    shl_frame_state state;
    bool has_description;
    char description[SHL_DESCRIPTION_MAX + 1];
    bool fail_on_crash;
    int64_t heartbeat_age_ms;
    uint64_t session_id;
    uint32_t participant_slot;
    /** resources.length: temp resources registered for this call
     * (shl_call_register_temp_resource); list them with
     * shl_call_frame_resources() */
    uint32_t resource_count;
} shl_call_frame;

/** TempResource. */
typedef struct shl_temp_resource {
    char path[SHL_PATH_MAX + 1];
    int32_t owner;            /**< the registering participant's pid */
    int64_t registered_at_us; /**< wall clock */
    /** the call it was registered for (its frame's resources), "" for the
     * operation's own */
    char call_id[SHL_CALL_ID_MAX + 1];
} shl_temp_resource;

/** LedgerData plus what the shared memory adds. */
typedef struct shl_snapshot {
    char operation_id[SHL_OPERATION_ID_MAX + 1];
    char initiator_id[SHL_PARTICIPANT_ID_MAX + 1];
    char description[SHL_DESCRIPTION_MAX + 1];
    bool has_description;
    int64_t start_time_us;
    shl_op_state state;
    bool aborted;
    int64_t last_heartbeat_us;
    int64_t detection_timestamp_us; /**< 0 = null */
    int64_t removal_timestamp_us;   /**< 0 = null */
    uint64_t change_count;          /**< bumped by every change */
    shl_failed_info failure;        /**< meaningful in cleanup/failed */
    /** every named crashed call id of the failure (failure has the first
     * SHL_CRASHED_IDS_MAX); owned by the snapshot, NULL when none */
    size_t crashed_call_id_count;
    char (*crashed_call_ids)[SHL_CALL_ID_MAX + 1];
    size_t frame_count;
    shl_call_frame *frames;
    size_t resource_count;
    shl_temp_resource *resources;
    size_t participant_count; /**< participants with frames or sessions */
    shl_participant_info *participants;
} shl_snapshot;

/**
 * CallFrame.resources: the paths of the temp resources of frame `f` (one
 * of s->frames), in registration order; paths[i] point into `s` (valid
 * while it is). @return the number (may exceed `cap`; paths may be NULL
 * to count). Context: any thread.
 */
SHL_API size_t shl_call_frame_resources(const shl_snapshot *s,
                                        const shl_call_frame *f,
                                        const char **paths, size_t cap);

/** isEmpty: no call frames and no temp resources. */
SHL_API bool shl_snapshot_is_empty(const shl_snapshot *s);

/** One row of shl_reader_list(). */
typedef struct shl_op_summary {
    char operation_id[SHL_OPERATION_ID_MAX + 1];
    char initiator_id[SHL_PARTICIPANT_ID_MAX + 1];
    char description[SHL_DESCRIPTION_MAX + 1];
    shl_op_state state;
    bool aborted;
    int64_t start_time_us;
    uint32_t frame_count;
    uint32_t participant_count;
} shl_op_summary;

/** Segment facts and counters. */
typedef struct shl_segment_info {
    char shm_name[96];
    uint32_t format_major;
    uint64_t format_signature;
    uint32_t owner_uid;
    char boot_id[40];
    int64_t created_at_us;
    uint32_t cap_participants, cap_operations, cap_frames, cap_resources;
    uint32_t used_participants, used_operations, used_frames,
        used_resources;
    uint64_t lock_recoveries;  /**< EOWNERDEAD repairs done */
    uint64_t crashes_detected; /**< dead participants reaped */
    uint64_t epoch;            /**< bumped by state/abort changes */
    uint32_t cap_events;       /**< event ring capacity (records) */
    uint64_t events_pending;   /**< posted, not yet written by the
                                    snapshotter */
    uint64_t events_fallback;  /**< written by their producer (ring full) */
    uint64_t events_skipped;   /**< claimed by a producer that died */
    uint64_t events_dropped;   /**< lines that could not be written and
                                    were given up after 30 s of failed
                                    writes (each drop is also reported
                                    through on_log_line of the ledger that
                                    gave up; `shmledger info` and the
                                    viewer show this counter) */
    uint64_t file_errors;      /**< failed writes of the operation files
                                    (each reported through on_log_line) */
    bool poisoned;
    /** A process holds the snapshotter role (its lock is held). */
    bool snapshotter_held;
    /** The holder, when snapshotter_held and it is known: its participant
     * slot, id and real pid (snapshotter_slot is UINT32_MAX and the id
     * empty when the role is held but the holder is not known, e.g. while
     * it takes over). */
    uint32_t snapshotter_slot;
    char snapshotter_id[SHL_PARTICIPANT_ID_MAX + 1];
    int32_t snapshotter_pid;
} shl_segment_info;

/**
 * Open the segment of `base_path` read-only, without taking part (no
 * participant slot, no locks, never writes). Used by tools.
 * @param[out] out  release with shl_reader_close().
 * @return 0; -EINVAL, -ENOENT (no segment for this path), -errno,
 *         SHL_EVERSION, SHL_EFORMAT, SHL_EOWNER, SHL_ECORRUPT,
 *         SHL_ENOTREADY, SHL_EUNSAFE (world-writable, or group access for
 *         a group the caller is not in). Context: any thread.
 *
 * Every reader call below first checks that the segment was not truncated
 * behind its back (one fstat) and returns SHL_ECORRUPT ("the segment is
 * gone") if it was, instead of touching pages that would raise SIGBUS.
 */
SHL_API SHL_NODISCARD int shl_reader_open(shl_reader **out,
                                          const char *base_path);
/** Close a reader from shl_reader_open(). NULL is a no-op. */
SHL_API void shl_reader_close(shl_reader *r);

/** Fill `out` with the segment's facts. @return 0, -EINVAL, SHL_ECORRUPT.
 * Lock-free. */
SHL_API int shl_reader_info(shl_reader *r, shl_segment_info *out);

/**
 * List every participant slot in use (live processes, and dead ones not yet
 * reaped), in slot order. `alive` is the kernel's word (the participant's
 * liveness lock), never a pid check. Lock-free.
 * @param[out] out    array of `*count` rows; free with free() (NULL when
 *                    there are none).
 * @return 0; -EINVAL, -ENOMEM. Context: any thread.
 */
SHL_API int shl_reader_participants(shl_reader *r, shl_participant_info **out,
                                    size_t *count);

/**
 * List the live operations (running, cleanup, or finished but not yet
 * reclaimed). Lock-free; every row is a consistent copy of one record. A
 * record caught in mid-write is waited for while its writer may still
 * finish (up to 200 ms), never skipped.
 * @param[out] out  array of `*count` rows; free with free() (untouched on
 *                  error).
 * @return 0; -EINVAL, -ENOMEM, SHL_ECORRUPT, -EAGAIN (a record is in
 *         mid-write: its writer took longer than 200 ms, or died and its
 *         repair is pending; try again). Context: any thread.
 */
SHL_API int shl_reader_list(shl_reader *r, shl_op_summary **out,
                            size_t *count);

/**
 * Take a consistent snapshot of one operation (its record, frames,
 * resources and participants), lock-free under the records' sequence
 * counters. A record caught in mid-write is waited for while its writer
 * may still finish (up to 200 ms), never taken for gone: SHL_ENOTFOUND
 * means the operation is not in the segment.
 * @param[out] out  free with shl_snapshot_free() (untouched on error).
 * @return 0; -EINVAL, SHL_EBADID, SHL_ENOTFOUND, -ENOMEM, SHL_ECORRUPT,
 *         -EAGAIN (a record is in mid-write: its writer took longer than
 *         200 ms, or died and its repair is pending; try again).
 *         Context: any thread.
 */
SHL_API int shl_reader_snapshot(shl_reader *r, const char *operation_id,
                                shl_snapshot **out);
/** Free a snapshot. NULL is a no-op. */
SHL_API void shl_snapshot_free(shl_snapshot *s);

/** Result of the invariant checker. */
typedef struct shl_check_report {
    uint32_t violations;  /**< number of problems found */
    uint32_t records_checked;
    char text[4096];      /**< one line per problem (truncated) */
} shl_check_report;

/**
 * Check every invariant of the segment: indexes in range, references of
 * ALLOCATED records valid, counts and the id index matching the records,
 * no sequence counter left odd by a dead writer (a dead participant's
 * frame that still awaits its crash cleanup is pending work, not a
 * violation), event rings well formed, no poisoned flag, a structure mutex
 * that is not garbled, a segment not truncated.
 * Lock-free and safe on a live segment: a pass that finds something is
 * repeated (up to 4 passes, 2 ms apart) and only what every pass finds is
 * reported, so a change in flight is not reported as a violation.
 * Thread context: any thread; it does not block other processes.
 * @return 0 when clean, the number of violations (> 0), or -EINVAL.
 */
SHL_API int shl_reader_check(shl_reader *r, shl_check_report *out);

/** Flags of shl_snapshot_to_json(). */
#define SHL_JSON_COMPACT 1u /**< one line instead of 2-space indentation */

/**
 * Serialise a snapshot as the operation JSON of the original
 * ({opId}.operation.json: operationId, initiatorId, startTime,
 * operationState, aborted, lastHeartbeat, callFrames, tempResources,
 * detectionTimestamp, removalTimestamp, in that order), plus `description`,
 * `participants` and `failure`. Timestamps: ISO 8601, microseconds, offset.
 * @param[out] out  NUL-terminated text; free with free().
 * @return 0; -EINVAL, -ENOMEM. Context: any thread.
 */
SHL_API int shl_snapshot_to_json(const shl_snapshot *s, unsigned flags,
                                 char **out);

/**
 * Parse operation JSON (ours or the original's, including its legacy
 * `stack` key and missing-field defaults) into a snapshot.
 * @param[out] out  free with shl_snapshot_free().
 * @return 0; -EINVAL (NULL), SHL_ECORRUPT (not JSON, or a required field is
 *         missing or of the wrong type; shl_errmsg() says which), -ENOMEM.
 */
SHL_API int shl_snapshot_from_json(const char *json, shl_snapshot **out);

/** POSIX shm name of the segment of `base_path` (for tools and cleanup).
 * @return the length written, -ENOSPC, -EINVAL, or -errno (realpath). */
SHL_API int shl_segment_name(const char *base_path, char *buf, size_t cap);

/**
 * Remove the segment of `base_path` (shm_unlink) when nobody uses it: no
 * participant alive by the kernel's word (their liveness locks; close your
 * own ledger first). A segment removed while in use would split the
 * ledger: those who have it mapped go on in the old one, newcomers get a
 * new one, and neither sees the other. The check is not atomic with the
 * removal (a process opening the ledger in between is not seen).
 * @return 0; -ENOENT (no segment), -EBUSY (participants alive; shl_errmsg()
 *         names one pid), the error of shl_reader_open() when the segment
 *         cannot be read (corrupt, another version, unsafe: use
 *         shl_segment_unlink_force()), -EINVAL, -errno.
 * Context: any thread.
 */
SHL_API int shl_segment_unlink(const char *base_path);
/**
 * Remove the segment of `base_path` (shm_unlink) whatever its state: for
 * a segment that cannot be used (poisoned, garbled, truncated) or when you
 * know better. Processes that have it mapped keep using it.
 * @return 0, -ENOENT, -EINVAL, -errno. Context: any thread.
 */
SHL_API int shl_segment_unlink_force(const char *base_path);

/* ------------------------------------------------------------------------ */
/* Printing (toString) and CallFrame.isStale                                 */
/* ------------------------------------------------------------------------ */

/*
 * The toString() of the original's objects, for logs and messages: each
 * writes one line into buf like snprintf (at most cap bytes with the NUL;
 * cap 0 and buf NULL measure) and returns the length the whole text needs
 * (so a result >= cap means it was cut), or -EINVAL for a NULL object (or
 * a NULL buf with cap > 0). Booleans print as true/false, a missing text
 * as null. Context: any thread (the handles' own rules apply); they take
 * no ledger lock beyond what the accessors they read take.
 *
 *  Operation(operationId: .., participantId: .., sessionId: n, pid: n,
 *            isInitiator: b, startTime: <ISO>, pendingCallCount: n,
 *            isAborted: b)
 *  Call(callId: .., description: .., startedAt: <ISO>, isCompleted: b)
 *  SpawnedCall(callId: .., completed: b, success: b, cancelled: b)
 *  OperationFailedInfo(operationId: .., crashedCallIds: [a, b], reason: ..)
 *      (", ... N more" inside the list when crashed_call_total exceeds the
 *      ids the value carries)
 *  HeartbeatResult(abortFlag: b, ledgerExists: b, heartbeatUpdated: b,
 *      callFrameCount: n, tempResourceCount: n, heartbeatAgeMs: n,
 *      isStale: b, participants: [..], participantHeartbeatAges: {id: n},
 *      staleParticipants: [..], hasStaleChildren: b)
 *  SyncResult(success: n, failed: n, unknown: n, operationFailed: b)
 *  CallFrame(participantId: .., callId: .., pid: n, state: ..,
 *            heartbeatAgeMs: n)
 *  TempResource(path: .., owner: n)
 */
SHL_API int shl_op_format(const shl_op *op, char *buf, size_t cap);
SHL_API int shl_call_format(const shl_call *call, char *buf, size_t cap);
SHL_API int shl_spawned_format(const shl_spawned *c, char *buf, size_t cap);
SHL_API int shl_failed_info_format(const shl_failed_info *info, char *buf,
                                   size_t cap);
SHL_API int shl_heartbeat_result_format(const shl_heartbeat_result *r,
                                        char *buf, size_t cap);
SHL_API int shl_sync_result_format(const shl_sync_result *r, char *buf,
                                   size_t cap);
SHL_API int shl_call_frame_format(const shl_call_frame *f, char *buf,
                                  size_t cap);
SHL_API int shl_temp_resource_format(const shl_temp_resource *t, char *buf,
                                     size_t cap);

/**
 * CallFrame.isStale({timeoutMs}): the frame's heartbeat age is strictly
 * greater than timeout_ms (<= 0 means the original's default, 10000). The
 * age is the frame's own (see shl_call_frame.last_heartbeat_us); a frame
 * whose owner's heartbeat is unknown (age -1) is not stale.
 * @return false for NULL. Context: any thread.
 */
SHL_API bool shl_call_frame_is_stale(const shl_call_frame *f,
                                     int64_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* SHMLEDGER_H */
