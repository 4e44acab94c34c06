/*
 * test_torture.c: the torture tier (issue 12). Random SIGKILLs of workers,
 * of the snapshotter holder and of the initiator, asynchronous and inside
 * locked mutations (the crash-point seam), while workers run calls, spawned
 * calls, temp resources, logs, debug logs and aborts on several operations
 * that an initiator ("ctl") creates, completes and replaces.
 *
 * Every process keeps an append-only record of what it did in memory shared
 * with the driver (written before each API call, completed after it), so
 * the checker knows which lines must be in the files exactly once (the call
 * returned 0), which may be there at most once (the process died inside
 * the call) and which may not be there at all.
 *
 * After each batch (workers and initiator told to finish, a reap, the
 * segment quiet): shl_reader_check clean, no operation left (stuck in
 * cleanup, failed and never reclaimed, ...), every table count back to 0,
 * and every archived backup/{opId}/operation.log, operation.debug.log and
 * trail.jsonl checked line by line (exactly once, per-process order,
 * trail seq unique and increasing, call events once per call).
 *
 * Environment: SHL_TORTURE_SECONDS (total, default 20), SHL_TORTURE_SEED
 * (default: time), SHL_TORTURE_BATCH_MS (default 10000),
 * SHL_TORTURE_RECLAIM_MS (default 5000: how long after the last process
 * ended and a reap every operation must be reclaimed), SHL_TORTURE_WORKERS
 * (default 4), SHL_TORTURE_KEEP=1 keeps the base directory of a batch
 * with violations, SHL_TORTURE_RING_POINT=<name>|none: the one event-ring
 * crash point incarnations arm for life (default: a random one of them),
 * SHL_TORTURE_WRITE_SEAM=0: no kills inside file writes, no ENOSPC.
 * Prints one line: torture: kills=N ops_failed=N ops_finished=N
 * lines_checked=N violations=N, then the count per violation kind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "files/json.h"
#include "internal.h"
#include "shl_proc.h"
#include "shl_test.h"
#include "shl_text.h"

#define T_SLOTS 4 /* operations running at once */
#define T_MAX_WORKERS 16
#define T_MAX_INC 512  /* process incarnations per batch */
#define T_MAX_REC 1024 /* records per incarnation */
#define T_MAX_OPS 1024 /* operations per batch */
#define T_CALL_MAX 48

/* ---- the shared record ---- */

enum rkind {
    RK_NONE,
    RK_LOG,        /* shl_op_log of "TL i=<inc> n=<rec> call=<id>" */
    RK_DEBUG,      /* shl_op_debug_log of "TD i=<inc> n=<rec>" */
    RK_SPAWN_LOG,  /* the same as RK_LOG, from a spawned call's work */
    RK_START,      /* shl_call_start; call = its id once known */
    RK_END,        /* shl_call_end */
    RK_FAIL,       /* shl_call_fail */
    RK_SPAWN,      /* shl_op_spawn_call; rc = outcome of the wait */
    RK_TEMP_REG,   /* shl_op_register_temp_resource(path n) */
    RK_TEMP_UNREG, /* shl_op_unregister_temp_resource */
    RK_ABORT,      /* shl_op_set_abort_flag */
};
enum rstate { RS_NONE, RS_BEGUN, RS_DONE };

struct rec {
    _Atomic uint8_t state;
    uint8_t kind;
    uint16_t op; /* index in shared.ops */
    int32_t rc;
    uint32_t arg; /* temp: file number */
    int64_t t_us; /* wall clock when the call returned */
    char call[T_CALL_MAX];
};

enum { ARM_NONE, ARM_POINT, ARM_WRITE };
struct inc {
    _Atomic uint32_t nrec;
    _Atomic int fate;  /* 1 killed (any way), 2 exited (driver sets) */
    _Atomic int armed; /* ARM_POINT: a crash point is armed; ARM_WRITE:
                          dying in a file write (the write seam) */
    int32_t pid;
    struct rec rec[T_MAX_REC];
};

struct opent {
    char id[SHL_OPERATION_ID_MAX + 1];
    _Atomic int64_t complete_us; /* wall us when complete began, 0 never */
};

struct shared {
    _Atomic int stop_workers, stop_ctl;
    _Atomic uint64_t write_failures; /* ENOSPC injected by the write seam */
    _Atomic uint32_t nops;
    _Atomic uint32_t cur[T_SLOTS]; /* op index + 1, 0 none */
    _Atomic uint32_t ninc;
    struct opent ops[T_MAX_OPS];
    struct inc inc[T_MAX_INC];
};

static struct shared *SH;
static char BASE[512], TMPDIR_[600];

/* ---- small helpers ---- */

static uint64_t
rnd(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
#define RND(s, n) ((uint32_t)(rnd(s) % (uint64_t)(n)))

static int
env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static shl_ledger_opts
t_opts(bool snapshotter)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.heartbeat_interval_ms = 100;
    o.stale_threshold_ms = 600000; /* never stale on a loaded machine */
    o.max_backups = 1000000;       /* keep every archive for the checker */
    o.snapshotter = snapshotter;
    o.snapshot_period_ms = 20;
    o.timeout_ms = 10000;
    return o;
}

static uint32_t
rec_begin(struct inc *in, int kind, uint32_t op, const char *call)
{
    uint32_t n = atomic_fetch_add(&in->nrec, 1);
    if (n >= T_MAX_REC)
        return UINT32_MAX;
    struct rec *r = &in->rec[n];
    r->kind = (uint8_t)kind;
    r->op = (uint16_t)op;
    if (call)
        snprintf(r->call, sizeof(r->call), "%s", call);
    atomic_store(&r->state, RS_BEGUN);
    return n;
}

static void
rec_done(struct inc *in, uint32_t n, int rc)
{
    if (n == UINT32_MAX)
        return;
    in->rec[n].rc = rc;
    in->rec[n].t_us = shl_test_wall_us();
    atomic_store(&in->rec[n].state, RS_DONE);
}

/* ---- the write seam: die inside a file write, or fail one ---- */

/* A worker may replace shl__sys_write (every file write of the library:
 * the snapshotter's batches, producers' own lines, archives) with this:
 * after a countdown of writes it SIGKILLs itself just before or just after
 * a write (a snapshotter holder killed in the middle of a batch, between
 * its files: the exactly-once case), or fails the write with ENOSPC and
 * goes on (a transient write failure: the batch must be redone, no line
 * lost or doubled). */
static _Atomic int64_t wk_countdown = -1;
static int wk_mode; /* 0 die before, 1 die after, 2 fail with ENOSPC */
static struct inc *wk_inc;
static uint64_t wk_rs;
static ssize_t (*wk_real)(int, const void *, size_t);

static ssize_t
t_write(int fd, const void *buf, size_t len)
{
    if (atomic_fetch_sub(&wk_countdown, 1) != 1)
        return wk_real(fd, buf, len);
    if (wk_mode == 2) {
        atomic_fetch_add(&SH->write_failures, 1);
        atomic_store(&wk_countdown, 1 + (int64_t)RND(&wk_rs, 200));
        errno = ENOSPC;
        return -1;
    }
    atomic_store(&wk_inc->armed, ARM_WRITE);
    if (wk_mode == 0)
        kill(getpid(), SIGKILL);
    ssize_t r = wk_real(fd, buf, len);
    kill(getpid(), SIGKILL);
    return r;
}

/* ---- workers ---- */

#define W_CALLS 4
struct wsess {
    uint32_t opidx1; /* op index + 1 this session is for (0 none) */
    shl_op *op;
    shl_call *calls[W_CALLS];
    uint32_t ncalls;
    uint32_t temps[8]; /* registered file numbers */
    uint32_t ntemps;
};

struct spawn_arg {
    struct inc *in;
    shl_op *op;
    uint32_t opidx, inc_idx;
    int outcome;
};

static int
spawn_work(shl_spawned *c, void *arg, void **result)
{
    struct spawn_arg *a = arg;
    const char *id = shl_spawned_id(c);
    uint32_t n = rec_begin(a->in, RK_SPAWN_LOG, a->opidx, id);
    char msg[160];
    snprintf(msg, sizeof(msg), "TL i=%u n=%u call=%s", a->inc_idx, n, id);
    int rc = n == UINT32_MAX ? 0 : shl_op_log(a->op, SHL_LOG_INFO, msg);
    rec_done(a->in, n, rc);
    *result = NULL;
    return a->outcome;
}

static void
temp_path(char *buf, size_t cap, uint32_t inc_idx, uint32_t k)
{
    snprintf(buf, cap, "%s/t%u-%u", TMPDIR_, inc_idx, k);
}

static void
w_leave(struct wsess *s)
{
    if (!s->op)
        return;
    for (uint32_t i = 0; i < s->ncalls; i++)
        (void)shl_call_end(s->calls[i], NULL);
    s->ncalls = 0;
    (void)shl_op_leave(s->op, true);
    s->op = NULL;
    s->ntemps = 0;
}

static void
w_pause(uint64_t *rs)
{
    struct timespec ts = {0, (long)(200000 + RND(rs, 1800000))};
    nanosleep(&ts, NULL); /* pacing between actions, not a wait */
}

static void __attribute__((noreturn))
worker_main(uint32_t inc_idx, uint64_t seed)
{
    struct inc *in = &SH->inc[inc_idx];
    uint64_t rs = seed;
    char pid_id[32];
    snprintf(pid_id, sizeof(pid_id), "w%u", inc_idx);
    shl_ledger_opts o = t_opts(true);
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, BASE, pid_id, &o));
    const char *ws = getenv("SHL_TORTURE_WRITE_SEAM");
    if (RND(&rs, 3) == 0 && !(ws && ws[0] == '0')) {
        wk_inc = in;
        wk_rs = rnd(&rs);
        wk_mode = (int)RND(&rs, 3);
        wk_real = atomic_load(&shl__sys_write);
        atomic_store(&wk_countdown, 1 + (int64_t)RND(&rs, 60));
        atomic_store(&shl__sys_write, t_write);
    }
    /* Some incarnations keep one of the event ring's points armed for their
     * whole life (they are not in shl__crash_points[]): the process dies
     * posting an event (filled, not published) or, as the drainer, at a
     * step of a batch (journal written, writes begun, one file written,
     * writes done and tails not moved yet). */
    static const char *const ring_points[] = {"drain.journal", "drain.done",
                                              "event.filled", "drain.inflight",
                                              "drain.wrote"};
    bool ring_armed = RND(&rs, 4) == 0;
    if (ring_armed) {
        atomic_store(&in->armed, ARM_POINT);
        shl__crash_arm(ring_points[RND(&rs, 5)], SHL__CRASH_SIGKILL);
    } else if (RND(&rs, 6) == 0) {
        /* the failer of an operation (a failOnCrash call's fail) dying
         * before or while it writes the archive: the reaper must; or a
         * cleaner (its own leave, a reaper, a coordinator) dying between
         * listing, deleting and freeing temp files: the next one must
         * delete them (temp_left); or a monitor dying between marking a
         * dead member's frames crashed and naming their calls */
        static const char *const fail_points[] = {
            "fail.unlocked",    "archive.json",       "res.listed",
            "res.deleted",      "res.deleted_locked", "cleanup.unlocked",
            "crash.marked",     "crash.intent"};
        ring_armed = true; /* one point for life, as the ring's */
        atomic_store(&in->armed, ARM_POINT);
        uint32_t k = RND(&rs, 2) ? RND(&rs, 2) : 2 + RND(&rs, 6);
        shl__crash_arm(fail_points[k], SHL__CRASH_SIGKILL);
    }
    struct wsess ss[T_SLOTS];
    memset(ss, 0, sizeof(ss));
    uint32_t tempno = 0;

    while (!atomic_load(&SH->stop_workers)) {
        if (atomic_load(&in->nrec) >= T_MAX_REC - 8) {
            w_pause(&rs);
            continue;
        }
        uint32_t k = RND(&rs, T_SLOTS);
        struct wsess *s = &ss[k];
        uint32_t cur = atomic_load(&SH->cur[k]);
        if (cur == 0) {
            w_pause(&rs);
            continue;
        }
        if (s->opidx1 != cur) {
            w_leave(s);
            s->opidx1 = cur;
            if (shl_op_join(l, SH->ops[cur - 1].id, NULL, &s->op) != 0)
                s->op = NULL;
        }
        if (!s->op) {
            w_pause(&rs);
            continue;
        }
        int st = shl_op_get_state(s->op);
        if (st != SHL_OP_RUNNING || shl_op_is_aborted(s->op)) {
            w_leave(s);
            continue;
        }
        uint32_t opi = cur - 1;
        uint32_t a = RND(&rs, 100);
        shl_call *pc = s->ncalls ? s->calls[RND(&rs, s->ncalls)] : NULL;
        const char *pcid = pc ? shl_call_id(pc) : "-";
        char msg[200];
        if (a < 28) {
            /* sometimes a burst, so the snapshotter has batches to write
             * when it is killed */
            uint32_t burst = RND(&rs, 8) == 0 ? 24 : 1;
            for (uint32_t b = 0; b < burst; b++) {
                uint32_t n = rec_begin(in, RK_LOG, opi, pcid);
                snprintf(msg, sizeof(msg), "TL i=%u n=%u call=%s", inc_idx, n,
                         pcid);
                rec_done(in, n, shl_op_log(s->op, SHL_LOG_INFO, msg));
            }
        } else if (a < 36) {
            uint32_t n = rec_begin(in, RK_DEBUG, opi, pcid);
            snprintf(msg, sizeof(msg), "TD i=%u n=%u call=%s", inc_idx, n,
                     pcid);
            rec_done(in, n, shl_op_debug_log(s->op, msg));
        } else if (a < 50) {
            if (s->ncalls == W_CALLS)
                continue;
            shl_call_opts co;
            shl_call_opts_init(&co);
            co.fail_on_crash = RND(&rs, 4) != 0;
            co.description = "torture call";
            uint32_t n = rec_begin(in, RK_START, opi, NULL);
            shl_call *c = NULL;
            int rc = shl_call_start(s->op, &co, &c);
            if (rc == 0 && n != UINT32_MAX) {
                snprintf(in->rec[n].call, T_CALL_MAX, "%s", shl_call_id(c));
                s->calls[s->ncalls++] = c;
            }
            rec_done(in, n, rc);
        } else if (a < 64) {
            if (!pc)
                continue;
            uint32_t n = rec_begin(in, RK_END, opi, pcid);
            rec_done(in, n, shl_call_end(pc, NULL));
            for (uint32_t i = 0; i < s->ncalls; i++)
                if (s->calls[i] == pc)
                    s->calls[i] = s->calls[--s->ncalls];
            (void)shl_call_release(pc);
        } else if (a < 66) {
            if (!pc)
                continue;
            uint32_t n = rec_begin(in, RK_FAIL, opi, pcid);
            rec_done(in, n, shl_call_fail(pc, "torture failure"));
            for (uint32_t i = 0; i < s->ncalls; i++)
                if (s->calls[i] == pc)
                    s->calls[i] = s->calls[--s->ncalls];
            (void)shl_call_release(pc);
        } else if (a < 74) {
            struct spawn_arg *sa = calloc(1, sizeof(*sa));
            if (!sa)
                _exit(3);
            sa->in = in;
            sa->op = s->op;
            sa->opidx = opi;
            sa->inc_idx = inc_idx;
            sa->outcome = RND(&rs, 10) == 0 ? -EIO : 0;
            shl_spawn_opts so;
            shl_spawn_opts_init(&so);
            so.fail_on_crash = RND(&rs, 3) == 0;
            so.description = "torture spawned";
            uint32_t n = rec_begin(in, RK_SPAWN, opi, NULL);
            shl_spawned *sp = NULL;
            int rc = shl_op_spawn_call(s->op, spawn_work, sa, &so, &sp);
            if (rc == 0) {
                if (n != UINT32_MAX)
                    snprintf(in->rec[n].call, T_CALL_MAX, "%s",
                             shl_spawned_id(sp));
                rc = shl_spawned_wait(sp, 20000, NULL);
                if (shl_spawned_release(sp) == 0)
                    free(sa);
            } else {
                free(sa);
            }
            rec_done(in, n, rc);
        } else if (a < 84) {
            bool armed = !ring_armed && RND(&rs, 3) == 0;
            if (armed) {
                /* die inside a locked mutation, at a random named point */
                size_t np = 0;
                while (shl__crash_points[np])
                    np++;
                const char *pt;
                do
                    pt = shl__crash_points[RND(&rs, np)];
                while (strncmp(pt, "init.", 5) == 0);
                atomic_store(&in->armed, ARM_POINT);
                shl__crash_arm(pt, SHL__CRASH_SIGKILL);
            }
            if (RND(&rs, 3) == 0 && s->ntemps) {
                uint32_t j = RND(&rs, s->ntemps);
                char p[700];
                temp_path(p, sizeof(p), inc_idx, s->temps[j]);
                uint32_t n = rec_begin(in, RK_TEMP_UNREG, opi, NULL);
                if (n != UINT32_MAX)
                    in->rec[n].arg = s->temps[j];
                int rc = shl_op_unregister_temp_resource(s->op, p);
                rec_done(in, n, rc < 0 ? rc : 0);
                s->temps[j] = s->temps[--s->ntemps];
            } else if (pc && armed && RND(&rs, 2) == 0) {
                uint32_t n = rec_begin(in, RK_FAIL, opi, pcid);
                rec_done(in, n, shl_call_fail(pc, "torture failure"));
                for (uint32_t i = 0; i < s->ncalls; i++)
                    if (s->calls[i] == pc)
                        s->calls[i] = s->calls[--s->ncalls];
                (void)shl_call_release(pc);
            } else if (s->ntemps < 8) {
                uint32_t t = tempno++;
                char p[700];
                temp_path(p, sizeof(p), inc_idx, t);
                int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
                if (fd >= 0)
                    close(fd);
                uint32_t n = rec_begin(in, RK_TEMP_REG, opi, NULL);
                if (n != UINT32_MAX)
                    in->rec[n].arg = t;
                int rc = shl_op_register_temp_resource(s->op, p);
                rec_done(in, n, rc);
                if (rc == 0)
                    s->temps[s->ntemps++] = t;
            }
            if (armed) {
                atomic_store(&shl__crash_armed, NULL);
                atomic_store(&in->armed, ARM_NONE);
            }
        } else if (a < 85) {
            uint32_t n = rec_begin(in, RK_ABORT, opi, NULL);
            rec_done(in, n, shl_op_set_abort_flag(s->op, true));
        } else {
            w_pause(&rs);
        }
        w_pause(&rs);
    }
    for (uint32_t k = 0; k < T_SLOTS; k++)
        w_leave(&ss[k]);
    shl_ledger_close(l);
    _exit(0);
}

/* ---- the initiator ---- */

/* shl_op_complete, said aloud when it fails. SHL_EIO: the operation IS
 * completed and `op` freed (the archive could not be written whole), so
 * the caller must not touch `op` again; any other failure leaves it valid.
 * Returns true when `op` is gone. */
static bool
ctl_complete(shl_op *op)
{
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    int rc = shl_op_complete(op);
    if (rc != 0)
        fprintf(stderr, "torture: ctl: complete %s -> %s: %s\n", id,
                shl_strerror(rc), shl_errmsg());
    return rc == 0 || rc == SHL_EIO;
}

static int64_t
wall_us(void)
{
    return shl_test_wall_us();
}

static int
ctl_create(shl_ledger *l, uint32_t k, shl_op **out)
{
    uint32_t i = atomic_load(&SH->nops);
    if (i >= T_MAX_OPS)
        return -ENOSPC;
    int rc = shl_op_create(l, "torture op", NULL, out);
    if (rc)
        return rc;
    snprintf(SH->ops[i].id, sizeof(SH->ops[i].id), "%s", shl_op_id(*out));
    atomic_store(&SH->nops, i + 1);
    atomic_store(&SH->cur[k], i + 1);
    return 0;
}

static void __attribute__((noreturn)) ctl_main(uint32_t inc_idx, uint64_t seed)
{
    struct inc *in = &SH->inc[inc_idx];
    uint64_t rs = seed;
    shl_ledger_opts o = t_opts(false); /* never the snapshotter holder */
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, BASE, "ctl", &o));
    shl_op *ops[T_SLOTS] = {0};
    int64_t born[T_SLOTS] = {0}, life[T_SLOTS] = {0};
    /* a restarted initiator rejoins the operations (as their initiator) */
    for (uint32_t k = 0; k < T_SLOTS; k++) {
        uint32_t cur = atomic_load(&SH->cur[k]);
        if (cur && shl_op_join(l, SH->ops[cur - 1].id, NULL, &ops[k]) != 0)
            ops[k] = NULL;
        born[k] = shl_test_now_ms();
        life[k] = 300 + RND(&rs, 1500);
    }
    while (!atomic_load(&SH->stop_ctl)) {
        for (uint32_t k = 0; k < T_SLOTS; k++) {
            bool armed = RND(&rs, 40) == 0;
            if (armed) {
                /* and between complete's locked section and its archive
                 * (complete.unlocked), or half-way through writing it
                 * (archive.json): the reaper must archive it */
                static const char *const pts[] = {
                    "lock.acquired",   "alloc.claimed",    "alloc.published",
                    "free.unindexed",  "free.released",    "complete.unlocked",
                    "archive.json"};
                atomic_store(&in->armed, ARM_POINT);
                shl__crash_arm(pts[RND(&rs, 7)], SHL__CRASH_SIGKILL);
            }
            if (ops[k]) {
                int st = shl_op_get_state(ops[k]);
                if (st == SHL_OP_RUNNING && !shl_op_is_aborted(ops[k]) &&
                    shl_test_now_ms() - born[k] < life[k])
                    goto next;
                uint32_t cur = atomic_load(&SH->cur[k]);
                if (st == SHL_OP_RUNNING && shl_op_is_initiator(ops[k])) {
                    if (cur)
                        atomic_store(&SH->ops[cur - 1].complete_us, wall_us());
                    if (ctl_complete(ops[k]))
                        ops[k] = NULL;
                }
                if (ops[k])
                    (void)shl_op_leave(ops[k], true);
                ops[k] = NULL;
            }
            if (ctl_create(l, k, &ops[k]) != 0)
                ops[k] = NULL;
            born[k] = shl_test_now_ms();
            life[k] = 300 + RND(&rs, 1500);
        next:
            if (armed) {
                atomic_store(&shl__crash_armed, NULL);
                atomic_store(&in->armed, ARM_NONE);
            }
        }
        shl_test_pause_ms(10);
    }
    for (uint32_t k = 0; k < T_SLOTS; k++) {
        if (!ops[k])
            continue;
        uint32_t cur = atomic_load(&SH->cur[k]);
        if (shl_op_get_state(ops[k]) == SHL_OP_RUNNING &&
            shl_op_is_initiator(ops[k])) {
            if (cur)
                atomic_store(&SH->ops[cur - 1].complete_us, wall_us());
            if (ctl_complete(ops[k]))
                continue;
        }
        (void)shl_op_leave(ops[k], true);
    }
    /* the initiator reconnecting (as `shmledger complete` would): complete
     * every running operation it created, including one whose id a killed
     * incarnation never published */
    shl_op_summary *rows = NULL;
    size_t nrows = 0;
    if (shl_reader_list(shl_ledger_reader(l), &rows, &nrows) == 0) {
        for (size_t i = 0; i < nrows; i++) {
            shl_op *op;
            if (rows[i].state != SHL_OP_RUNNING ||
                strcmp(rows[i].initiator_id, "ctl") != 0 ||
                shl_op_join(l, rows[i].operation_id, NULL, &op) != 0) {
                if (rows[i].state == SHL_OP_RUNNING &&
                    !strcmp(rows[i].initiator_id, "ctl"))
                    fprintf(stderr, "torture: ctl: rejoin %s at the end: %s\n",
                            rows[i].operation_id, shl_errmsg());
                continue;
            }
            for (uint32_t j = 0; j < atomic_load(&SH->nops); j++)
                if (strcmp(SH->ops[j].id, rows[i].operation_id) == 0)
                    atomic_store(&SH->ops[j].complete_us, wall_us());
            if (!ctl_complete(op))
                (void)shl_op_leave(op, true);
        }
        free(rows);
    }
    shl_ledger_close(l);
    _exit(0);
}

/* ---- violations ---- */

#define V_KINDS 32
static struct {
    const char *kind;
    uint64_t n;
} VK[V_KINDS];
static uint64_t V_TOTAL, V_PRINTED;

static void __attribute__((format(printf, 2, 3)))
violation(const char *kind, const char *fmt, ...)
{
    V_TOTAL++;
    uint64_t of_kind = 0;
    for (int i = 0; i < V_KINDS; i++) {
        if (!VK[i].kind) {
            VK[i].kind = kind;
            of_kind = VK[i].n = 1;
            break;
        }
        if (strcmp(VK[i].kind, kind) == 0) {
            of_kind = ++VK[i].n;
            break;
        }
    }
    /* the first few of each kind, about twenty in all */
    if (of_kind > 4 || V_PRINTED >= 24)
        return;
    V_PRINTED++;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "torture: VIOLATION [%s] %s\n", kind, buf);
}

/* ---- the checker ---- */

static uint64_t LINES_CHECKED, OPS_FAILED, OPS_FINISHED;

/* Per call id: counts of CALL_STARTED / ENDED / FAILED in one file. */
struct callcnt {
    char id[T_CALL_MAX];
    int started, ended, failed;
};
struct ccmap {
    struct callcnt *v;
    size_t n, cap;
};

static struct callcnt *
cc_get(struct ccmap *m, const char *id, size_t len)
{
    if (len >= T_CALL_MAX)
        len = T_CALL_MAX - 1;
    for (size_t i = 0; i < m->n; i++)
        if (strncmp(m->v[i].id, id, len) == 0 && m->v[i].id[len] == 0)
            return &m->v[i];
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
        assert_non_null(m->v);
    }
    struct callcnt *c = &m->v[m->n++];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, len);
    return c;
}

/* Token counts of one file: cnt[inc][rec]. */
struct tokmap {
    uint8_t cnt[T_MAX_INC][T_MAX_REC];
    int32_t last[T_MAX_INC]; /* last rec number seen per inc (order) */
};

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Scan one log-like file: tokens "<tag> i=<inc> n=<rec>", call events, and
 * whole-line duplicates. order: check per-incarnation order. */
static void
scan_log(const char *path, const char *op_id, const char *tag,
         struct tokmap *tm, struct ccmap *cc, bool order, bool dups)
{
    char *text = shl_test_slurp(path, NULL);
    if (!text)
        return;
    size_t nl = 0;
    for (char *p = text; *p; p++)
        nl += *p == '\n';
    char **lines = calloc(nl + 1, sizeof(char *));
    assert_non_null(lines);
    size_t k = 0;
    for (char *p = text, *e; *p; p = e + 1) {
        e = strchr(p, '\n');
        if (!e) {
            violation("partial_line", "%s: no newline at the end", path);
            break;
        }
        *e = 0;
        lines[k++] = p;
        LINES_CHECKED++;
        char t[8];
        snprintf(t, sizeof(t), "%s i=", tag);
        char *q = strstr(p, t);
        unsigned ii, nn;
        if (q && sscanf(q + strlen(t), "%u n=%u", &ii, &nn) == 2) {
            if (ii >= atomic_load(&SH->ninc) || nn >= T_MAX_REC) {
                violation("phantom_line", "%s: bad token in '%s'", op_id, p);
            } else {
                if (tm->cnt[ii][nn] < 255)
                    tm->cnt[ii][nn]++;
                if (order && tm->cnt[ii][nn] == 1) {
                    if ((int32_t)nn < tm->last[ii])
                        violation("order", "%s: %s i=%u n=%u after n=%d in %s",
                                  op_id, tag, ii, nn, tm->last[ii], path);
                    else
                        tm->last[ii] = (int32_t)nn;
                }
            }
        }
        static const char *const evs[] = {
            "CALL_STARTED callId=", "CALL_ENDED callId=",
            "CALL_FAILED callId="};
        for (int j = 0; cc && j < 3; j++) {
            char *c = strstr(p, evs[j]);
            if (!c || strstr(p, " TL "))
                continue;
            c += strlen(evs[j]);
            size_t len = strcspn(c, " ");
            struct callcnt *x = cc_get(cc, c, len);
            if (j == 0)
                x->started++;
            else if (j == 1)
                x->ended++;
            else
                x->failed++;
        }
    }
    if (dups && k > 1) {
        qsort(lines, k, sizeof(char *), cmp_str);
        for (size_t i = 1; i < k; i++)
            /* worker lines are counted by their token (check_tokens) */
            if (strcmp(lines[i], lines[i - 1]) == 0 &&
                !strstr(lines[i], " TL i=") && !strstr(lines[i], " TD i="))
                violation("dup_line", "%s: line twice: %.300s", op_id,
                          lines[i]);
    }
    free(lines);
    free(text);
}

/* Trail: seq unique and increasing; call events counted. */
static void
scan_trail(const char *path, const char *op_id, struct ccmap *cc)
{
    char *text = shl_test_slurp(path, NULL);
    if (!text)
        return;
    unsigned long long last = 0;
    size_t nseq = 0, capseq = 0;
    unsigned long long *seqs = NULL;
    for (char *p = text, *e; *p; p = e + 1) {
        e = strchr(p, '\n');
        if (!e) {
            violation("partial_line", "%s: no newline at the end", path);
            break;
        }
        *e = 0;
        LINES_CHECKED++;
        if (p[0] != '{' || e[-1] != '}')
            violation("trail_garbled", "%s: %.200s", op_id, p);
        unsigned long long seq;
        if (sscanf(p, "{\"seq\":%llu", &seq) == 1) {
            if (seq <= last)
                violation(seq == last ? "trail_dup_seq" : "trail_order",
                          "%s: seq %llu after %llu", op_id, seq, last);
            last = seq > last ? seq : last;
            if (nseq == capseq) {
                capseq = capseq ? capseq * 2 : 256;
                seqs = realloc(seqs, capseq * sizeof(*seqs));
                assert_non_null(seqs);
            }
            seqs[nseq++] = seq;
        }
        static const char *const evs[] = {"\"event\":\"CALL_STARTED\"",
                                          "\"event\":\"CALL_ENDED\"",
                                          "\"event\":\"CALL_FAILED\""};
        for (int j = 0; j < 3; j++) {
            if (!strstr(p, evs[j]))
                continue;
            char *c = strstr(p, "\"callId\":\"");
            if (!c)
                continue;
            c += 10;
            struct callcnt *x = cc_get(cc, c, strcspn(c, "\""));
            if (j == 0)
                x->started++;
            else if (j == 1)
                x->ended++;
            else
                x->failed++;
        }
    }
    free(seqs);
    free(text);
}

/* Call events of one operation: cc from the archived file, lv from the
 * live file left in basePath (lines written after the archive). bound: wall
 * us at which the operation ended (0 unknown); an event of an API call that
 * returned before it belongs in the archive. */
static void
check_calls(const char *op_id, const char *file, struct ccmap *cc,
            struct ccmap *lv, uint32_t opi, int64_t bound)
{
    for (size_t i = 0; i < lv->n; i++) {
        struct callcnt *l = &lv->v[i];
        struct callcnt *c = cc_get(cc, l->id, strlen(l->id));
        c->started += l->started;
        c->ended += l->ended;
        c->failed += l->failed;
    }
    uint32_t ninc = atomic_load(&SH->ninc);
    for (size_t i = 0; i < cc->n; i++) {
        struct callcnt *c = &cc->v[i];
        if (c->started > 1 || c->ended > 1 || c->failed > 1 ||
            c->ended + c->failed > 1)
            violation("dup_call_event",
                      "%s %s: %s started=%d ended=%d failed=%d (of which in "
                      "the live file: %d %d %d)",
                      op_id, file, c->id, c->started, c->ended, c->failed,
                      cc_get(lv, c->id, strlen(c->id))->started,
                      cc_get(lv, c->id, strlen(c->id))->ended,
                      cc_get(lv, c->id, strlen(c->id))->failed);
        if (c->started == 0 && c->ended + c->failed > 0)
            violation("call_end_without_start", "%s %s: %s", op_id, file,
                      c->id);
    }
    for (uint32_t ii = 0; ii < ninc; ii++) {
        struct inc *in = &SH->inc[ii];
        uint32_t nr = atomic_load(&in->nrec);
        if (nr > T_MAX_REC)
            nr = T_MAX_REC;
        for (uint32_t n = 0; n < nr; n++) {
            struct rec *r = &in->rec[n];
            if (r->op != opi || atomic_load(&r->state) != RS_DONE ||
                r->rc != 0 || !r->call[0])
                continue;
            if (r->kind != RK_START && r->kind != RK_SPAWN &&
                r->kind != RK_END && r->kind != RK_FAIL)
                continue;
            struct callcnt *c = cc_get(cc, r->call, strlen(r->call));
            struct callcnt *l = cc_get(lv, r->call, strlen(r->call));
            int seen = r->kind == RK_END    ? c->ended
                       : r->kind == RK_FAIL ? c->failed
                                            : c->started;
            int live = r->kind == RK_END    ? l->ended
                       : r->kind == RK_FAIL ? l->failed
                                            : l->started;
            const char *ev = r->kind == RK_END    ? "CALL_ENDED"
                             : r->kind == RK_FAIL ? "CALL_FAILED"
                                                  : "CALL_STARTED";
            if (seen == 0)
                violation("missing_call_event",
                          "%s %s: %s of %s (the call returned 0) missing",
                          op_id, file, ev, r->call);
            else if (seen == live && bound && r->t_us < bound)
                violation("stranded_line",
                          "%s %s: %s of %s (returned %lld us before the "
                          "operation ended) only in the live file, not in "
                          "the archive",
                          op_id, file, ev, r->call,
                          (long long)(bound - r->t_us));
        }
    }
}

static void
check_tokens(const char *op_id, const char *what, struct tokmap *tm,
             struct tokmap *lv, uint32_t opi, bool debug, int64_t bound)
{
    uint32_t ninc = atomic_load(&SH->ninc);
    const char *tag = debug ? "TD" : "TL";
    for (uint32_t ii = 0; ii < ninc && ii < T_MAX_INC; ii++) {
        struct inc *in = &SH->inc[ii];
        for (uint32_t n = 0; n < T_MAX_REC; n++) {
            int ca = tm->cnt[ii][n], cl = lv->cnt[ii][n], c = ca + cl;
            struct rec *r = &in->rec[n];
            bool mine =
                r->op == opi &&
                (debug ? r->kind == RK_DEBUG
                       : (r->kind == RK_LOG || r->kind == RK_SPAWN_LOG));
            int st = mine ? atomic_load(&r->state) : RS_NONE;
            if (c > 1)
                violation("dup_line",
                          "%s %s: %s i=%u n=%u written %d times (%d in the "
                          "archive)",
                          op_id, what, tag, ii, n, c, ca);
            else if (c == 1 && st == RS_NONE)
                violation("phantom_line",
                          "%s %s: %s i=%u n=%u was never logged to it", op_id,
                          what, tag, ii, n);
            else if (c == 0 && st == RS_DONE && r->rc == 0)
                violation("missing_line",
                          "%s %s: %s i=%u n=%u (the call returned 0) missing",
                          op_id, what, tag, ii, n);
            else if (ca == 0 && cl == 1 && st == RS_DONE && bound &&
                     r->t_us < bound)
                violation("stranded_line",
                          "%s %s: %s i=%u n=%u (returned %lld us before the "
                          "operation ended) only in the live file",
                          op_id, what, tag, ii, n,
                          (long long)(bound - r->t_us));
        }
    }
}

/* SHL_TORTURE_INJECT=dup|drop: self-test of the checker. In the first
 * archived operation.log of each batch that has a worker line, double that
 * line (dup) or delete it (drop) before the check, which must then report
 * dup_line / missing_line. */
static bool INJECTED;

static void
inject(const char *path)
{
    const char *mode = getenv("SHL_TORTURE_INJECT");
    if (INJECTED || !mode || !*mode)
        return;
    size_t len;
    char *text = shl_test_slurp(path, &len);
    if (!text)
        return;
    char *l = strstr(text, " TL i=");
    if (l) {
        while (l > text && l[-1] != '\n')
            l--;
        char *e = strchr(l, '\n');
        FILE *f = e ? fopen(path, "w") : NULL;
        if (f) {
            if (!strcmp(mode, "dup")) {
                fwrite(text, 1, len, f);
                fwrite(l, 1, (size_t)(e + 1 - l), f);
            } else {
                fwrite(text, 1, (size_t)(l - text), f);
                fwrite(e + 1, 1, len - (size_t)(e + 1 - text), f);
            }
            fclose(f);
            INJECTED = true;
            fprintf(stderr, "torture: self-test: %s a line of %s\n", mode,
                    path);
        }
    }
    free(text);
}

static bool
is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
check_archive(shl_reader *rd, uint32_t opi)
{
    const char *id = SH->ops[opi].id;
    char dir[1024], p[1200], live[1200];
    snprintf(dir, sizeof(dir), "%s/backup/%s", BASE, id);
    shl_snapshot *still = NULL;
    if (shl_reader_snapshot(rd, id, &still) == 0) {
        /* still in the segment: reported by check_segment */
        shl_snapshot_free(still);
        return;
    }
    if (!is_dir(dir)) {
        /* who failed it (OPERATION_FAILED in the live trail), and did that
         * process die before it could write the archive? */
        snprintf(live, sizeof(live), "%s/%s_trail.jsonl", BASE, id);
        char *t = shl_test_slurp(live, NULL);
        /* the line that moved it to failed (or OPERATION_FAILED) */
        char *f = t ? strstr(t, "\"state\":\"failed\"") : NULL;
        if (!f && t)
            f = strstr(t, "\"event\":\"OPERATION_FAILED\"");
        while (f && f > t && f[-1] != '\n')
            f--;
        char *pp = f ? strstr(f, "\"pid\":") : NULL;
        int pid = pp ? atoi(pp + 6) : 0;
        int fate = 0;
        for (uint32_t i = 0; pid && i < atomic_load(&SH->ninc); i++)
            if (SH->inc[i].pid == pid)
                fate = atomic_load(&SH->inc[i].fate);
        free(t);
        if (!f)
            violation("not_archived",
                      "%s: no backup folder, no "
                      "state=failed in the live trail",
                      id);
        else if (fate == 1)
            violation("not_archived_archiver_killed",
                      "%s: no backup folder; pid %d failed it and was "
                      "killed",
                      id, pid);
        else
            violation("not_archived",
                      "%s: no backup folder; pid %d failed "
                      "it and %s",
                      id, pid,
                      fate == 2 ? "exited normally" : "is not one of ours");
        return;
    }
    snprintf(p, sizeof(p), "%s/operation.json", dir);
    char *js = shl_test_slurp(p, NULL);
    shl_snapshot *s = NULL;
    if (!js || shl_snapshot_from_json(js, &s) != 0) {
        violation("archive_json", "%s: %s/operation.json %s", id, dir,
                  js ? "unparsable" : "missing");
    } else {
        if (s->state == SHL_OP_FAILED)
            OPS_FAILED++;
        else if (s->state == SHL_OP_COMPLETED)
            OPS_FINISHED++;
        else
            violation("archive_state", "%s: archived in state %s", id,
                      shl_op_state_name(s->state));
        /* temp files of a failed operation are deleted */
        if (s->state == SHL_OP_FAILED) {
            uint32_t ninc = atomic_load(&SH->ninc);
            for (uint32_t ii = 0; ii < ninc; ii++) {
                struct inc *in = &SH->inc[ii];
                uint32_t nr = atomic_load(&in->nrec);
                nr = nr > T_MAX_REC ? T_MAX_REC : nr;
                for (uint32_t n = 0; n < nr; n++) {
                    struct rec *r = &in->rec[n];
                    if (r->op != opi || r->kind != RK_TEMP_REG ||
                        atomic_load(&r->state) != RS_DONE || r->rc != 0)
                        continue;
                    bool unreg = false;
                    for (uint32_t m = n + 1; m < nr; m++)
                        if (in->rec[m].kind == RK_TEMP_UNREG &&
                            in->rec[m].arg == r->arg &&
                            atomic_load(&in->rec[m].state) != RS_NONE)
                            unreg = true;
                    char tp[700];
                    temp_path(tp, sizeof(tp), ii, r->arg);
                    struct stat st;
                    if (!unreg && lstat(tp, &st) == 0)
                        violation("temp_left",
                                  "%s: registered temp file %s not deleted", id,
                                  tp);
                }
            }
        }
    }
    int64_t bound = 0;
    if (s && s->state == SHL_OP_COMPLETED)
        bound = atomic_load(&SH->ops[opi].complete_us);
    else if (s && s->state == SHL_OP_FAILED)
        bound = s->removal_timestamp_us ? s->removal_timestamp_us
                                        : s->failure.failed_at_us;
    shl_snapshot_free(s);
    free(js);

    struct tokmap *tm = calloc(1, sizeof(*tm));
    struct tokmap *tl = calloc(1, sizeof(*tl));
    assert_non_null(tm);
    assert_non_null(tl);
    memset(tm->last, 0xff, sizeof(tm->last));
    struct ccmap cc = {0}, cl = {0};
    snprintf(p, sizeof(p), "%s/operation.log", dir);
    inject(p);
    scan_log(p, id, "TL", tm, &cc, true, true);
    /* lines posted after the archive land in a live file: count them too */
    snprintf(live, sizeof(live), "%s/%s.operation.log", BASE, id);
    scan_log(live, id, "TL", tl, &cl, false, true);
    check_tokens(id, "operation.log", tm, tl, opi, false, bound);
    check_calls(id, "operation.log", &cc, &cl, opi, bound);
    free(cc.v);
    free(cl.v);
    memset(&cc, 0, sizeof(cc));
    memset(&cl, 0, sizeof(cl));

    memset(tm, 0, sizeof(*tm));
    memset(tl, 0, sizeof(*tl));
    memset(tm->last, 0xff, sizeof(tm->last));
    snprintf(p, sizeof(p), "%s/operation.debug.log", dir);
    scan_log(p, id, "TD", tm, NULL, true, true);
    snprintf(live, sizeof(live), "%s/%s.operation.debug.log", BASE, id);
    scan_log(live, id, "TD", tl, NULL, false, true);
    check_tokens(id, "operation.debug.log", tm, tl, opi, true, bound);
    free(tm);
    free(tl);

    snprintf(p, sizeof(p), "%s/trail.jsonl", dir);
    scan_trail(p, id, &cc);
    snprintf(live, sizeof(live), "%s/%s_trail.jsonl", BASE, id);
    scan_trail(live, id, &cl);
    check_calls(id, "trail.jsonl", &cc, &cl, opi, bound);
    free(cc.v);
    free(cl.v);
}

/* ---- the driver ---- */

struct child {
    pid_t pid;
    uint32_t inc;
    bool ctl, killed;
};
static struct child KIDS[T_MAX_WORKERS + 1];
static uint64_t KILLS, KILLS_ASYNC, KILLS_HOLDER, KILLS_POINT, KILLS_CTL,
    KILLS_WRITE, WRITE_FAILURES;
static uint64_t SEED;

static pid_t
spawn(bool ctl, uint32_t *inc_out)
{
    uint32_t inc = atomic_fetch_add(&SH->ninc, 1);
    if (inc >= T_MAX_INC) {
        atomic_fetch_sub(&SH->ninc, 1);
        return -1;
    }
    uint64_t seed = SEED ^ ((uint64_t)inc * 0x100000001b3ull) ^ 0x5eed;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* cmocka's handlers would turn a crash into exit 1 (child_exit):
         * die by the signal, so the driver names it (child_crash) and a
         * core can be kept */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        if (ctl)
            ctl_main(inc, seed);
        worker_main(inc, seed);
    }
    assert_true(pid > 0);
    SH->inc[inc].pid = pid;
    *inc_out = inc;
    return pid;
}

static void
kill_all(void)
{
    for (size_t i = 0; i <= T_MAX_WORKERS; i++)
        if (KIDS[i].pid > 0) {
            kill(KIDS[i].pid, SIGKILL);
            waitpid(KIDS[i].pid, NULL, 0);
            KIDS[i].pid = 0;
        }
}

/* Reap exited children; count kills; false if a child failed. */
static void
reap_kids(void)
{
    for (size_t i = 0; i <= T_MAX_WORKERS; i++) {
        struct child *c = &KIDS[i];
        if (c->pid <= 0)
            continue;
        int st;
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r != c->pid)
            continue;
        atomic_store(&SH->inc[c->inc].fate,
                     WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 1 : 2);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            int armed = atomic_load(&SH->inc[c->inc].armed);
            if (!c->killed && armed == ARM_WRITE) {
                KILLS++;
                KILLS_WRITE++;
            } else if (!c->killed && armed == ARM_POINT) {
                KILLS++;
                KILLS_POINT++;
            } else if (!c->killed) {
                violation("child_killed",
                          "pid %d (inc %u) died by SIGKILL "
                          "nobody sent",
                          (int)c->pid, c->inc);
            }
        } else if (WIFSIGNALED(st)) {
            violation("child_crash", "%s pid %d (inc %u) died by signal %d",
                      c->ctl ? "initiator" : "worker", (int)c->pid, c->inc,
                      WTERMSIG(st));
        } else if (WEXITSTATUS(st) != 0) {
            violation("child_exit", "%s pid %d (inc %u) exited %d",
                      c->ctl ? "initiator" : "worker", (int)c->pid, c->inc,
                      WEXITSTATUS(st));
        }
        c->pid = 0;
    }
}

static bool
wait_kids(bool ctl, int ms)
{
    int64_t dl = shl_test_now_ms() + (int64_t)ms * shl_test_multiplier();
    for (;;) {
        reap_kids();
        bool any = false;
        for (size_t i = 0; i <= T_MAX_WORKERS; i++)
            if (KIDS[i].pid > 0 && KIDS[i].ctl == ctl)
                any = true;
        if (!any)
            return true;
        if (shl_test_now_ms() > dl)
            break;
        shl_test_pause_ms(5);
    }
    for (size_t i = 0; i <= T_MAX_WORKERS; i++)
        if (KIDS[i].pid > 0 && KIDS[i].ctl == ctl) {
            violation("hang", "%s pid %d (inc %u) did not finish in %d ms",
                      ctl ? "initiator" : "worker", (int)KIDS[i].pid,
                      KIDS[i].inc, ms);
            kill(KIDS[i].pid, SIGKILL);
            waitpid(KIDS[i].pid, NULL, 0);
            KIDS[i].pid = 0;
        }
    return false;
}

static void
run_helper_reap(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        shl_ledger_opts o = t_opts(true);
        shl_ledger *l;
        CHILD_CHECK(shl_ledger_open(&l, BASE, "reaper", &o));
        CHILD_CHECK(shl_ledger_reap(l));
        shl_ledger_close(l);
        _exit(0);
    }
    int64_t dl = shl_test_now_ms() + 30000 * shl_test_multiplier();
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (shl_test_now_ms() > dl) {
            violation("hang", "reaper pid %d did not finish", (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        shl_test_pause_ms(5);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        violation("reaper", "reaper exited with status 0x%x", st);
}

static bool
quiet(shl_reader *r)
{
    shl_segment_info si;
    shl_op_summary *ops = NULL;
    size_t n = 0;
    if (shl_reader_info(r, &si) != 0 || shl_reader_list(r, &ops, &n) != 0)
        return false;
    free(ops);
    return n == 0 && si.used_participants == 0 && si.used_operations == 0 &&
           si.used_frames == 0 && si.used_resources == 0 &&
           si.events_pending == 0;
}

static void
check_segment(shl_reader *r, int batch)
{
    /* wait (bounded) for every operation to be finished and reclaimed */
    /* the bound: every operation finished and reclaimed, every record
     * freed, within SHL_TORTURE_RECLAIM_MS (default 5 s) of the reap */
    if (!SHL_WAIT_FOR(quiet(r), env_int("SHL_TORTURE_RECLAIM_MS", 5000))) {
        shl_op_summary *ops = NULL;
        size_t n = 0;
        if (shl_reader_list(r, &ops, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                const char *k = ops[i].state == SHL_OP_CLEANUP ? "stuck_cleanup"
                                : ops[i].state == SHL_OP_FAILED
                                    ? "failed_not_reclaimed"
                                : ops[i].state == SHL_OP_RUNNING
                                    ? "running_left"
                                    : "completed_not_reclaimed";
                violation(k,
                          "batch %d: %s state=%s members=%u frames=%u "
                          "after all processes ended and a reap",
                          batch, ops[i].operation_id,
                          shl_op_state_name(ops[i].state),
                          ops[i].participant_count, ops[i].frame_count);
            }
            free(ops);
        }
        shl_segment_info si;
        if (shl_reader_info(r, &si) == 0) {
            if (si.used_participants)
                violation("leak_participants", "batch %d: %u slots in use",
                          batch, si.used_participants);
            if (si.used_frames)
                violation("leak_frames", "batch %d: %u frame records in use",
                          batch, si.used_frames);
            if (si.used_resources)
                violation("leak_resources",
                          "batch %d: %u resource records in use", batch,
                          si.used_resources);
            if (si.used_operations > n)
                violation("leak_operations",
                          "batch %d: %u operation records, %zu listed", batch,
                          si.used_operations, n);
            if (si.events_pending)
                violation("events_pending",
                          "batch %d: %llu events never written", batch,
                          (unsigned long long)si.events_pending);
        }
    }
    shl_check_report rep;
    int rc = shl_reader_check(r, &rep);
    if (rc != 0) {
        char *save = NULL;
        for (char *ln = strtok_r(rep.text, "\n", &save); ln;
             ln = strtok_r(NULL, "\n", &save))
            violation(strstr(ln, "seq") ? "check_odd_seq" : "check",
                      "batch "
                      "%d: %s",
                      batch, ln);
        if (rep.violations && !rep.text[0])
            violation("check", "batch %d: %u violations", batch,
                      rep.violations);
    }
}

static void
run_batch(int batch, int batch_ms, int workers, uint64_t *rs)
{
    /* each batch has its own base directory, so its own segment */
    shl_test_base(BASE, sizeof(BASE), "torture");
    assert_int_equal(mkdir(BASE, 0700), 0);
    snprintf(TMPDIR_, sizeof(TMPDIR_), "%s/tmp", BASE);
    assert_int_equal(mkdir(TMPDIR_, 0700), 0);
    shl_reader *r = NULL;
    uint64_t v_before = V_TOTAL;
    munmap(SH, sizeof(struct shared));
    SH = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(SH != MAP_FAILED);
    memset(KIDS, 0, sizeof(KIDS));

    uint32_t inc;
    KIDS[T_MAX_WORKERS] = (struct child){spawn(true, &inc), inc, true, false};
    if (!SHL_WAIT_FOR(shl_reader_open(&r, BASE) == 0, 20000)) {
        kill_all();
        fail_msg("torture: no segment appeared at %s", BASE);
    }
    for (int k = 0; k < workers; k++)
        KIDS[k] = (struct child){spawn(false, &inc), inc, false, false};

    int64_t end = shl_test_now_ms() + batch_ms;
    int64_t next = shl_test_now_ms() + 30 + RND(rs, 150);
    while (shl_test_now_ms() < end) {
        reap_kids();
        for (int k = 0; k < workers; k++)
            if (KIDS[k].pid <= 0) {
                pid_t p = spawn(false, &inc);
                if (p > 0)
                    KIDS[k] = (struct child){p, inc, false, false};
            }
        if (KIDS[T_MAX_WORKERS].pid <= 0) {
            pid_t p = spawn(true, &inc);
            if (p > 0)
                KIDS[T_MAX_WORKERS] = (struct child){p, inc, true, false};
        }
        if (shl_test_now_ms() >= next) {
            next = shl_test_now_ms() + 20 + RND(rs, 160);
            uint32_t what = RND(rs, 100);
            struct child *victim = NULL;
            if (what < 30) {
                /* the snapshotter holder, found through the reader */
                shl_segment_info si;
                if (shl_reader_info(r, &si) == 0 && si.snapshotter_held)
                    for (int k = 0; k < workers; k++)
                        if (KIDS[k].pid > 0 &&
                            KIDS[k].pid == si.snapshotter_pid)
                            victim = &KIDS[k];
                if (victim)
                    KILLS_HOLDER++;
            } else if (what < 36) {
                if (KIDS[T_MAX_WORKERS].pid > 0) {
                    victim = &KIDS[T_MAX_WORKERS];
                    KILLS_CTL++;
                }
            }
            if (!victim) {
                struct child *c = &KIDS[RND(rs, (uint64_t)workers)];
                if (c->pid > 0)
                    victim = c;
            }
            if (victim) {
                victim->killed = true;
                kill(victim->pid, SIGKILL);
                KILLS++;
                KILLS_ASYNC++;
            }
        }
        shl_test_pause_ms(2);
    }
    atomic_store(&SH->stop_workers, 1);
    wait_kids(false, 60000);
    atomic_store(&SH->stop_ctl, 1);
    wait_kids(true, 60000);
    /* the initiator reconnecting once more (its last incarnation may have
     * been killed): completes every running operation it created */
    KIDS[T_MAX_WORKERS] = (struct child){spawn(true, &inc), inc, true, false};
    wait_kids(true, 60000);
    run_helper_reap();
    WRITE_FAILURES += atomic_load(&SH->write_failures);
    check_segment(r, batch);
    uint32_t nops = atomic_load(&SH->nops);
    INJECTED = false;
    for (uint32_t i = 0; i < nops; i++)
        check_archive(r, i);
    shl_reader_close(r);
    fprintf(stderr,
            "torture: batch %d: kills=%llu ops=%u lines_checked=%llu "
            "violations=%llu\n",
            batch, (unsigned long long)KILLS, nops,
            (unsigned long long)LINES_CHECKED, (unsigned long long)V_TOTAL);
    if (getenv("SHL_TORTURE_KEEP") && V_TOTAL != v_before)
        fprintf(stderr, "torture: kept %s\n", BASE);
    else
        shl_test_cleanup(BASE);
}

static void
test_torture(void **state)
{
    (void)state;
    int seconds = env_int("SHL_TORTURE_SECONDS", 20);
    int batch_ms = env_int("SHL_TORTURE_BATCH_MS", 10000);
    int workers = env_int("SHL_TORTURE_WORKERS", 4);
    if (workers < 1)
        workers = 1;
    if (workers > T_MAX_WORKERS)
        workers = T_MAX_WORKERS;
    const char *sv = getenv("SHL_TORTURE_SEED");
    SEED = sv && *sv ? strtoull(sv, NULL, 0)
                     : (uint64_t)shl_test_wall_us() ^ (uint64_t)getpid();
    fprintf(stderr,
            "torture: seed=%llu seconds=%d batch_ms=%d workers=%d "
            "(rerun with SHL_TORTURE_SEED=%llu)\n",
            (unsigned long long)SEED, seconds, batch_ms, workers,
            (unsigned long long)SEED);
    SH = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(SH != MAP_FAILED);

    uint64_t rs = SEED;
    int64_t end = shl_test_now_ms() + (int64_t)seconds * 1000;
    int batch = 0;
    do {
        int ms = batch_ms;
        int64_t left = end - shl_test_now_ms();
        if (left < ms && batch > 0)
            ms = (int)(left > 1000 ? left : 1000);
        run_batch(batch++, ms, workers, &rs);
    } while (shl_test_now_ms() < end);
    kill_all();

    printf("torture: kills=%llu ops_failed=%llu ops_finished=%llu "
           "lines_checked=%llu violations=%llu\n",
           (unsigned long long)KILLS, (unsigned long long)OPS_FAILED,
           (unsigned long long)OPS_FINISHED, (unsigned long long)LINES_CHECKED,
           (unsigned long long)V_TOTAL);
    printf("torture: kills: async=%llu (snapshotter holder=%llu, "
           "initiator=%llu) crash-point=%llu in-write=%llu; "
           "write-failures=%llu batches=%d seed=%llu\n",
           (unsigned long long)KILLS_ASYNC, (unsigned long long)KILLS_HOLDER,
           (unsigned long long)KILLS_CTL, (unsigned long long)KILLS_POINT,
           (unsigned long long)KILLS_WRITE, (unsigned long long)WRITE_FAILURES,
           batch, (unsigned long long)SEED);
    for (int i = 0; i < V_KINDS && VK[i].kind; i++)
        printf("torture: violations[%s]=%llu\n", VK[i].kind,
               (unsigned long long)VK[i].n);
    fflush(stdout);
    munmap(SH, sizeof(struct shared));
    if (V_TOTAL)
        fail_msg("torture: %llu violations (seed %llu)",
                 (unsigned long long)V_TOTAL, (unsigned long long)SEED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
