/*
 * objects.h: the process-local objects behind the public handles (the
 * vocabulary of the upper layers, as layout.h is the segment's).
 *
 * shl_ledger   one participant slot in one segment; owns the seg mapping.
 * shl__lop     one per (ledger, operation): the "op object" of the original,
 *              shared by every session of that ledger in that operation.
 * shl_op       one session (create or join).
 * shl_call     one call started in a session.
 * shl_spawned  a spawned call: a call plus a task on the worker pool.
 *
 * Only definitions live here, no functions: each module's header declares
 * that module's functions (docs/ARCHITECTURE.md, "Layers").
 *
 * Locking inside a process: ledger->mu protects the lop list, the lop table
 * (base/lops.h: lookup by operation in constant time) and each lop's
 * session list; op->mu protects a session's call list. Order: ledger->mu
 * before op->mu. The segment's structure mutex is always taken last and
 * never held while a callback runs.
 */
#ifndef SHL_OBJECTS_H
#define SHL_OBJECTS_H

#include <limits.h>
#include <pthread.h>

#include "shm/segment.h"

struct shl_reader {
    struct shl__seg *seg;   /* the mapping (owned iff owns_seg) */
    struct shl__seg own;    /* storage when the reader owns it */
    bool owns_seg;
    uint32_t own_slot;      /* participant slot of the owning ledger */
};

struct shl__lop;
struct shl__snapshotter;

struct shl_call {
    shl_op *op;
    struct shl_call *prev, *next; /* session's call list; next also links
                                     the session's spare calls (op->mu) */
    char id[SHL_CALL_ID_MAX + 1];
    char *description;            /* desc_buf or NULL */
    uint32_t frame_idx;
    uint64_t frame_gen;
    int64_t started_at_us;
    int64_t started_mono_ns;
    bool fail_on_crash;
    shl_call_callbacks cb;
    _Atomic int done;             /* 0 pending, 1 ended, 2 failed */
    _Atomic bool cleanup_ran;     /* on_cleanup fired (fail or cleanup) */
    struct shl_spawned *spawned;  /* spawn.c: the spawned call built on this
                                     call, or NULL (op->mu) */
    /* callref.c: deliveries acting on the call outside op->mu (its
     * callbacks); while > 0 the object is not reused or freed (op->mu) */
    uint32_t pins;
    bool released; /* released while pinned: the last unpin
                      parks or frees it (op->mu) */
    char desc_buf[SHL_DESCRIPTION_MAX + 1]; /* the description, inline */
};

struct shl_op {
    struct shl__lop *lop;
    shl_op *next_session;         /* lop's session list (ledger->mu) */
    shl_op *prev_session;
    uint64_t session_id;
    shl_op_callbacks cb;
    pthread_mutex_t mu;           /* calls, spare calls */
    struct shl_call *calls_head, *calls_tail;
    /* released calls kept for the next shl_call_start (call.c): no
     * allocation on the call path in steady state (op->mu) */
    struct shl_call *calls_spare;
    uint32_t calls_spare_n;
    struct shl_spawned *spawned_head, *spawned_tail; /* spawn.c (op->mu) */
    _Atomic bool aborted;
    _Atomic bool abort_fired;
    _Atomic bool failure_fired;
    /* shl_op_wait_abort sleeps on the record's shared abort word and on
     * this private one, bumped by every delivery of the abort (deliver.c) */
    _Atomic uint32_t abort_seq;
    _Atomic uint32_t abort_waiters; /* threads in that sleep */

    /* heartbeat configuration (ledger->mu) */
    bool hb_enabled;
    int64_t hb_interval_ms;
    int64_t hb_jitter_ms;
    int64_t hb_next_ns;
    shl_heartbeat_opts hb;

    /* failure / abort delivery (op->mu) */
    pthread_cond_t cv;
    bool failed;                  /* this session learned of a failure */
    bool cleaned;                 /* self-cleanup done */
    int efd;                      /* eventfd, -1 until asked for */

    /* lifetime against the monitor (ledger->mu) */
    int busy;                     /* monitor callbacks in flight */
    bool free_pending;            /* left while busy: monitor frees */
    bool unlinked;                /* no longer on the lop's list */

    shl_snapshot *cached;         /* cachedData (op->mu) */

    /* Last, and not zeroed when the session is made (2.4 KiB of the
     * object's 2.8: the join path's memset): written before `failed` is
     * set and read only once it is (op->mu). */
    shl_failed_info finfo;
};

struct shl__lop {
    struct shl__lop *next, *prev; /* ledger's lop list (ledger->mu) */
    struct shl__lop *hnext;       /* lop table chain (base/lops.h) */
    shl_ledger *l;
    char id[SHL_OPERATION_ID_MAX + 1];
    uint32_t op_idx;
    uint64_t op_gen;
    bool is_initiator;
    int64_t start_wall_us;
    int64_t start_mono_ns;
    uint64_t session_counter;
    uint32_t join_count;
    uint32_t alive;               /* session objects not yet freed */
    shl_op *sessions;
    _Atomic uint64_t call_counter;
    _Atomic int64_t staleness_ms;
    bool self_cleaned;            /* monitor: resources cleaned up once */
    /* monitor thread: the stale peers (slot, generation) already reported
     * to this operation's sessions as heartbeatStale */
    struct {
        uint32_t slot;
        uint64_t gen;
    } stale_told[8];
    uint32_t stale_told_n;
};

struct shl_ledger {
    pthread_mutex_t mu;
    struct shl__seg seg;
    struct shl_reader reader;
    char base_path[PATH_MAX];
    char id[SHL_PARTICIPANT_ID_MAX + 1];
    int32_t recorded_pid;
    int32_t pid;
    uint32_t slot;
    uint64_t slot_gen;
    shl_ledger_opts opts;
    struct shl__lop *lops;
    struct shl__lop **lop_buckets; /* lop table (base/lops.h; ledger->mu) */
    uint32_t lop_nbuckets, lop_count;
    /* base/lops.c: the last lop and session object given back, kept for
     * the next join so that a join+leave allocates nothing (ledger->mu;
     * freed at close) */
    struct shl__lop *spare_lop;
    shl_op *spare_op;
    _Atomic uint32_t frame_hint;
    struct shl__snapshotter *snap; /* snapshotter.c; NULL when not started */
    struct shl__drainer *drainer; /* events.c: the in-process drain lock
                                     of the snapshotter, or NULL */
    struct shl__pool *pool;       /* spawn.c: worker pool, created on first
                                     use (ledger->mu), stopped at close */
    /* events.c: this ledger's id for the threads' ring cache (a process-
     * wide counter; 0 until the first post) and the per-ledger index of
     * the next thread that takes a ring */
    _Atomic uint64_t ev_lid;
    _Atomic uint32_t ev_tnext;
    /* crash/reaper.c: when the reaper last swept for operations left
     * without members (mono ns; 0 = sweep at the next reap) */
    _Atomic int64_t sweep_ns;

    /* monitor (process/monitor.c); mon_wake_efd is also written by
     * session/heartbeat.c to make it recompute its timeout */
    pthread_t mon_thread;
    pthread_t futex_thread;
    bool mon_running;             /* ledger->mu */
    _Atomic bool mon_stop;
    int mon_epfd;
    int mon_wake_efd;             /* control: wake the monitor */
    int mon_epoch_efd;            /* futex thread -> monitor: read mon_flags */
    _Atomic uint32_t mon_flags;   /* SHL__MON_EPOCH | SHL__MON_MEMBERS */
    bool mon_rerun;               /* monitor thread: run a full pass again */
    /* monitor thread: peers whose pidfd fired while their liveness lock
     * was still held (the kernel can drop it a little after the exit is
     * visible): looked at again after 1, 2, then every 4 ms (64 ms after
     * a second), not re-watched */
    struct {
        uint32_t slot;
        uint64_t gen;
        int64_t since_ns;
    } mon_dying[16];
    uint32_t mon_dying_n;
    int mon_dying_backoff_ms;
    uint32_t mon_seen_epoch;      /* epoch and bell read before the threads */
    uint32_t mon_seen_bell;       /* start (the futex thread's first values) */
    int64_t mon_next_hb_ns;
    struct shl__watch *watches;   /* pidfds of peers (monitor thread) */
    /* slots with a watch (written by the monitor thread, read by joins:
     * a join tells its own monitor only about peers not watched yet) */
    _Atomic uint64_t watched[SHL__MAX_PARTICIPANTS / 64];
    size_t watch_count, watch_cap;
};

/* A peer process watched through its pidfd (monitor thread only). */
struct shl__watch {
    uint32_t slot;
    uint64_t gen;
    int pidfd;
    bool seen;                    /* still a peer at the last pass */
};


/* Outcome of a spawned call (shl_spawned.state). */
enum { SHL__SP_RUNNING = 0, SHL__SP_SUCCEEDED = 1, SHL__SP_FAILED = 2 };

struct shl_spawned {
    shl_op *op;                      /* owning session (pinned by the task) */
    struct shl_spawned *prev, *next; /* session's spawned list (op->mu) */
    struct shl_spawned *qnext;       /* pool queue (pool->mu) */
    struct shl_call *call;           /* underlying call; NULL for the private
                                        task of waitForCompletion */
    char id[SHL_CALL_ID_MAX + 1];
    char *description; /* malloc'd or NULL */
    shl_work_fn work;
    void *arg;
    void (*arg_free)(void *arg); /* exec helpers: their context */
    void (*result_free)(void *result);
    shl_call_callbacks cb; /* the user's */
    void *(*on_call_crashed)(shl_spawned *c, void *user);
    bool fail_on_crash;
    bool is_private;  /* waitForCompletion task */
    _Atomic int refs; /* private task: waiter + worker */

    _Atomic bool cancelled;
    int cancel_efd;         /* eventfd written by cancel, or -1 */
    pthread_mutex_t pid_mu; /* pid, error */
    pid_t pid;              /* attached child, 0 = none */

    _Atomic int state; /* SHL__SP_*; written under op->mu */
    bool abandoned;    /* private: the waiter gave up (op->mu) */
    void *result;      /* valid once SUCCEEDED */
    char *error;       /* malloc'd; set by the work or worker */
    char *detail;      /* malloc'd detail text (stack trace), or NULL */
    bool error_final;  /* the work returned: error no longer changes */
    int err;           /* the work's return code on failure */
};

#endif /* SHL_OBJECTS_H */
