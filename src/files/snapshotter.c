/*
 * snapshotter.c: the snapshotter role, its thread, flushing, and the live
 * {opId}.operation.json files.
 *
 * Per ledger: `dr.mu` (the drainer, events.h) serialises drains inside
 * the process (the role is held
 * by the ledger's open file description, so every thread of the ledger
 * "holds" it once the lock is taken; the mutex is what makes one of them
 * drain at a time). The thread sleeps on a monotonic condition variable so
 * stop() wakes it at once.
 *
 * The JSON rewrite races with the archive (another process may complete
 * the operation between our snapshot and our rename). The archive sets the
 * terminal state before it removes the live file, and we re-check the state
 * after our rename and remove the file ourselves if it turned terminal: in
 * every interleaving the live file of an archived operation ends up gone.
 */
#include "files/snapshotter.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "files/events.h"
#include "files/json.h"
#include "files/opfiles.h"
#include "files/render.h"
#include "internal.h"
#include "shm/index.h"
#include "shm/reader.h"
#include "shm/segment.h"
#include "shm/table.h"

struct shl__snapshotter {
    struct shl__drainer dr;     /* dr.mu: one drainer per ledger */
    bool held;                  /* our descriptor holds the role (dr.mu) */
    uint32_t ops_cap;
    uint64_t *seen_gen;         /* per operation slot (dr.mu) */
    uint64_t *seen_count;

    pthread_mutex_t wmu;        /* thread sleep / stop */
    pthread_cond_t wcv;
    bool stop;
    bool running;
    pthread_t thread;
    int64_t period_ms;
    int64_t next_json_ns;       /* no JSON rewrite before this (dr.mu) */
    pthread_mutex_t jmu;        /* JSON writes of this ledger (after dr.mu) */
};

static void
report(shl_ledger *l, const char *what, int err)
{
    if (!l->opts.callbacks.on_log_line)
        return;
    char line[256];
    snprintf(line, sizeof(line), "[Ledger] snapshotter: %s: %s", what,
             shl_strerror(err));
    l->opts.callbacks.on_log_line(line, l->opts.callbacks.user);
}

/* Take the role if free (dr.mu held). */
static bool
try_take(shl_ledger *l, struct shl__snapshotter *sn)
{
    if (!sn->held && shl__ofd_trylock(l->seg.fd, SHL__LOCK_SNAPSHOTTER) == 0) {
        sn->held = true;
        atomic_store(&l->seg.hdr->snap_holder,
                     1 + (((l->slot_gen & 0xffffffffull) << 32) | l->slot));
    }
    return sn->held;
}

static void
release_role(shl_ledger *l, struct shl__snapshotter *sn)
{
    if (sn->held) {
        uint64_t mine = 1 + (((l->slot_gen & 0xffffffffull) << 32) | l->slot);
        atomic_compare_exchange_strong(&l->seg.hdr->snap_holder, &mine, 0);
        shl__ofd_unlock(l->seg.fd, SHL__LOCK_SNAPSHOTTER);
        sn->held = false;
    }
}

bool
shl__snapshotter_held(shl_ledger *l)
{
    struct shl__snapshotter *sn = l->snap;
    if (!sn)
        return false;
    pthread_mutex_lock(&sn->dr.mu);
    bool h = sn->held;
    pthread_mutex_unlock(&sn->dr.mu);
    return h;
}

/* ---- live JSON ---- */

static int
json_path(shl_ledger *l, const char *op_id, char *buf, size_t cap)
{
    /* lengths checked up front (gcc's -Wformat-truncation cannot see
     * through a checked snprintf once this is inlined) */
    static const char sfx[] = ".operation.json";
    size_t bl = strlen(l->base_path), il = strlen(op_id);
    if (bl + 1 + il + sizeof(sfx) > cap)
        return -ENAMETOOLONG;
    memcpy(buf, l->base_path, bl);
    buf[bl] = '/';
    memcpy(buf + bl + 1, op_id, il);
    memcpy(buf + bl + 1 + il, sfx, sizeof(sfx));
    return 0;
}

static int
write_snapshot(shl_ledger *l, shl_snapshot *snap)
{
    char path[PATH_MAX];
    int rc = json_path(l, snap->operation_id, path, sizeof(path));
    if (rc)
        return rc;
    char *text = NULL;
    rc = shl_snapshot_to_json(snap, 0, &text);
    if (rc)
        return rc;
    size_t len = strlen(text);
    char *t2 = realloc(text, len + 2);
    if (t2) {
        text = t2;
        text[len++] = '\n';
        text[len] = 0;
    }
    rc = shl__write_file_atomic(path, text, len);
    free(text);
    if (rc)
        shl__file_error(l, "write", path, rc);
    return rc;
}

/* JSON writers are serialised (snapshot taken and file renamed under the
 * lock), so the last rename always carries the newest snapshot: without
 * it, the holder's periodic rewrite could rename an older snapshot over a
 * read-your-writes one (sync_files, shl_op_flush). In the process: jmu;
 * between processes (and ledgers): OFD byte SHL__LOCK_JSON, held for one
 * snapshot and one write. Bounded: a holder stopped with the byte held
 * costs the others timeout_ms, then they skip. */
static int
json_lock(shl_ledger *l, struct shl__snapshotter *sn, int64_t timeout_ms)
{
    if (sn)
        pthread_mutex_lock(&sn->jmu);
    int64_t deadline = shl__mono_ns() + timeout_ms * 1000000;
    long nap_ns = 10000;
    for (;;) {
        int rc = shl__ofd_trylock(l->seg.fd, SHL__LOCK_JSON);
        if (rc == 0)
            return 0;
        if (rc != -EAGAIN || shl__mono_ns() > deadline) {
            if (sn)
                pthread_mutex_unlock(&sn->jmu);
            return rc == -EAGAIN ? -ETIMEDOUT : rc;
        }
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 500000)
            nap_ns *= 2;
    }
}

static void
json_unlock(shl_ledger *l, struct shl__snapshotter *sn)
{
    (void)shl__ofd_unlock(l->seg.fd, SHL__LOCK_JSON);
    if (sn)
        pthread_mutex_unlock(&sn->jmu);
}

int
shl__snapshotter_write_json(shl_ledger *l, const char *op_id)
{
    int rc = json_lock(l, l->snap, l->opts.timeout_ms);
    if (rc)
        return rc;
    shl_snapshot *snap = NULL;
    rc = shl_reader_snapshot(&l->reader, op_id, &snap);
    if (rc == 0) {
        rc = write_snapshot(l, snap);
        shl_snapshot_free(snap);
    }
    json_unlock(l, l->snap);
    return rc;
}

int
shl__snapshotter_create_files(shl_ledger *l, const char *op_id)
{
    int first = 0;
    char first_path[PATH_MAX] = "";
    for (int f = SHL__FILE_LOG; f <= SHL__FILE_DEBUG; f++) {
        char path[PATH_MAX];
        int rc = shl__op_file_path(l->base_path, op_id, (enum shl__file)f,
                                   path, sizeof(path));
        if (rc < 0)
            continue;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = -errno;
            shl__file_error(l, "create", path, rc);
            if (!first) {
                first = rc;
                snprintf(first_path, sizeof(first_path), "%s", path);
            }
        } else {
            close(fd);
        }
    }
    /* and {opId}.operation.json at once, as the original's create does
     * (the snapshotter keeps it current from here on) */
    int rc = shl__snapshotter_write_json(l, op_id);
    if (rc && !first) {
        first = rc;
        (void)json_path(l, op_id, first_path, sizeof(first_path));
    }
    if (first)
        return SHL_SET_ERR(first, "cannot create the files of %s: %s: %s",
                           op_id, first_path, shl_strerror(first));
    return 0;
}

/* Rewrite the JSON of every live operation that changed (dr.mu held, role
 * held). */
static void
rewrite_changed(shl_ledger *l, struct shl__snapshotter *sn)
{
    struct shl__seg *s = &l->seg;
    uint32_t hw = shl__table_hwm(s, SHL__T_OP);
    if (hw > sn->ops_cap)
        hw = sn->ops_cap;
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__op *r = shl__op_at(s, i);
        if (atomic_load_explicit(&r->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
            continue;
        uint64_t gen = atomic_load_explicit(&r->h.gen, memory_order_acquire);
        uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
        if (st != SHL_OP_RUNNING && st != SHL_OP_CLEANUP)
            continue; /* the archive owns terminal operations */
        uint64_t cc = atomic_load_explicit(&r->change_count,
                                           memory_order_acquire);
        if (sn->seen_gen[i] == gen && sn->seen_count[i] == cc)
            continue;
        char id[SHL_OPERATION_ID_MAX + 1];
        uint32_t seq;
        if (!shl__seq_read_begin(&r->h, &seq))
            continue;
        shl__copy_field(id, r->id, sizeof(id));
        if (!shl__seq_read_ok(&r->h, seq) || atomic_load(&r->h.gen) != gen)
            continue;
        if (json_lock(l, sn, l->opts.timeout_ms) != 0)
            continue; /* retried next period */
        shl_snapshot *snap = NULL;
        if (shl_reader_snapshot(&l->reader, id, &snap) != 0) {
            json_unlock(l, sn);
            continue;
        }
        int rc = write_snapshot(l, snap);
        json_unlock(l, sn);
        uint64_t seen = snap->change_count;
        shl_snapshot_free(snap);
        if (rc != 0)
            continue; /* retried next period */
        sn->seen_gen[i] = gen;
        sn->seen_count[i] = seen;
        /* archived meanwhile? then the live file must not stay */
        st = atomic_load_explicit(&r->op_state, memory_order_acquire);
        if (atomic_load(&r->h.gen) != gen ||
            atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            (st != SHL_OP_RUNNING && st != SHL_OP_CLEANUP)) {
            char path[PATH_MAX];
            if (json_path(l, id, path, sizeof(path)) == 0)
                unlink(path);
        }
    }
}

/* One pass with mu held. Returns 1 if the role is held, 0 if not.
 *
 * The ring is drained at every pass (passes also come from producers'
 * quarter-ring wake-ups and from flushes). The JSON files are rewritten at
 * most once a period, and a rewrite that took d delays the next one to at
 * least 4 d after its start: with many operations changing all the time
 * (1024 operations joined round-robin rewrote 1024 files per pass), the
 * files lag more but the rewriting stays under a quarter of one core
 * instead of taking it whole from the participants. `force` (an explicit
 * pass) rewrites now. */
static int
pass_locked(shl_ledger *l, struct shl__snapshotter *sn, bool *blocked,
            bool force)
{
    *blocked = false;
    if (!try_take(l, sn))
        return 0;
    (void)shl__events_drain(l, &sn->dr.ds, blocked, 0);
    int64_t t0 = shl__mono_ns();
    if (force || t0 >= sn->next_json_ns) {
        rewrite_changed(l, sn);
        int64_t took = shl__mono_ns() - t0;
        int64_t gap = sn->period_ms * 1000000;
        if (took * 4 > gap)
            gap = took * 4;
        sn->next_json_ns = t0 + gap;
    }
    return 1;
}

int
shl__snapshotter_pass(shl_ledger *l)
{
    struct shl__snapshotter *sn = l->snap;
    if (!sn)
        return -EINVAL;
    bool blocked;
    pthread_mutex_lock(&sn->dr.mu);
    int rc = pass_locked(l, sn, &blocked, true);
    pthread_mutex_unlock(&sn->dr.mu);
    return rc;
}

/* ---- flush ---- */

int
shl__snapshotter_flush(shl_ledger *l, int64_t timeout_ms)
{
    struct shl__snapshotter *sn = l->snap;
    struct shl__hdr *h = l->seg.hdr;
    if (!sn || !h || h->ev_nrings == 0)
        return 0;
    struct shl__ev_marks target;
    shl__events_mark(l, &target);
    int64_t now = shl__mono_ns();
    int64_t deadline = now + timeout_ms * 1000000;
    int64_t next_wake = now; /* when to wake the holder (again) */
    long nap_ns = 20000;     /* polls back off from 20 us to 1 ms */
    for (;;) {
        pthread_mutex_lock(&sn->dr.mu);
        bool temp = !sn->held && !l->opts.snapshotter;
        bool took = try_take(l, sn);
        int drc = 0;
        if (took) {
            bool blocked;
            drc = shl__events_drain(l, &sn->dr.ds, &blocked, 0);
            if (temp)
                release_role(l, sn);
        }
        pthread_mutex_unlock(&sn->dr.mu);
        if (shl__events_reached(l, &target))
            return 0;
        /* our own drain could not write the lines (disk full, read-only):
         * waiting will not help, say so now */
        if (drc < 0)
            return SHL_SET_ERR(drc, "event ring not drained: %s",
                               shl_strerror(drc));
        now = shl__mono_ns();
        if (now > deadline)
            return SHL_SET_ERR(-ETIMEDOUT,
                               "event ring not drained within %lld ms",
                               (long long)timeout_ms);
        /* Another process (or ledger) holds the role and sleeps up to a
         * period: wake it, or complete() from a non-holder would wait out
         * its period (100 ms by default) every time. Again every 10 ms in
         * case the holder was between its pass and its sleep. */
        if (!took && now >= next_wake) {
            atomic_fetch_add_explicit(&h->ev_wake, 1, memory_order_release);
            syscall(SYS_futex, (uint32_t *)&h->ev_wake, FUTEX_WAKE, INT32_MAX,
                    NULL, NULL, 0);
            next_wake = now + 10 * 1000000ll;
        }
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 1000000)
            nap_ns *= 2;
    }
}

/* ---- read-your-writes ---- */

int
shl__snapshotter_sync(shl_ledger *l, const char *op_id, int64_t timeout_ms)
{
    int rc = shl__snapshotter_flush(l, timeout_ms);
    int rc2 = json_lock(l, l->snap, timeout_ms);
    if (rc2)
        return rc ? rc : rc2;
    shl_snapshot *snap = NULL;
    rc2 = shl_reader_snapshot(&l->reader, op_id, &snap);
    if (rc2 == 0) {
        /* a terminal operation's files are the archive's */
        if (snap->state == SHL_OP_RUNNING || snap->state == SHL_OP_CLEANUP) {
            rc2 = write_snapshot(l, snap);
            /* archived meanwhile? then the live file must not stay (as
             * rewrite_changed) */
            uint32_t idx;
            uint64_t gen;
            bool live = false;
            int lrc = shl__index_lookup(&l->seg, op_id, &idx, &gen);
            if (lrc == -EAGAIN)
                live = true; /* in mid-write: keep the file */
            else if (lrc == 0) {
                struct shl__op *r = shl__op_at(&l->seg, idx);
                uint32_t st = atomic_load(&r->op_state);
                live = atomic_load(&r->h.gen) == gen &&
                       atomic_load(&r->h.state) == SHL__R_ALLOCATED &&
                       (st == SHL_OP_RUNNING || st == SHL_OP_CLEANUP);
            }
            char path[PATH_MAX];
            if (!live && json_path(l, op_id, path, sizeof(path)) == 0)
                unlink(path);
        }
        shl_snapshot_free(snap);
    } else if (rc2 == SHL_ENOTFOUND) {
        rc2 = 0;
    }
    json_unlock(l, l->snap);
    return rc ? rc : rc2;
}

/* ---- thread ---- */

static void *
run(void *arg)
{
    shl_ledger *l = arg;
    struct shl__snapshotter *sn = l->snap;
    struct shl__hdr *h = l->seg.hdr;
    pthread_mutex_lock(&sn->wmu);
    while (!sn->stop) {
        pthread_mutex_unlock(&sn->wmu);
        /* read the wake word before the pass: a wake-up asked for during
         * the pass (a flush waiting on us) makes the sleep below return at
         * once instead of being missed */
        uint32_t seen = atomic_load_explicit(&h->ev_wake,
                                             memory_order_acquire);
        bool blocked;
        /* the fork guard before dr.mu, as the monitor's pass (busy) then
         * its archive's flush (dr.mu): the other order deadlocks with a
         * fork waiting on the pass, since a waiting writer blocks new
         * readers (writer preference) while we held dr.mu */
        shl__busy_enter();
        pthread_mutex_lock(&sn->dr.mu);
        int held = pass_locked(l, sn, &blocked, false);
        pthread_mutex_unlock(&sn->dr.mu);
        shl__busy_leave();
        pthread_mutex_lock(&sn->wmu);
        if (sn->stop)
            break;
        /* a live producer mid-record: look again soon, not a period later.
         * Otherwise sleep a period on the ring's wake word (a shared
         * futex): producers in any process bump it every quarter ring. */
        int64_t ms = blocked ? 1 : sn->period_ms;
        /* still a quarter ring behind: drain again now. Only the holder:
         * a process without the role spun here on a failing try-lock for
         * as long as the backlog lasted, taking CPU from the producers and
         * the holder exactly when they were short of it. */
        if (held && !blocked && shl__events_backlog(h))
            continue;
        if (!held) {
            /* Without the role, only the period matters (is the role free
             * now?): sleep on our own condition variable, not on the ring's
             * wake word, which producers bump every quarter ring for the
             * holder and which woke every process's thread to fail a
             * try-lock. stop() signals the condition. */
            struct timespec until =
                shl__deadline(CLOCK_MONOTONIC, sn->period_ms);
            if (!sn->stop)
                pthread_cond_timedwait(&sn->wcv, &sn->wmu, &until);
            continue;
        }
        pthread_mutex_unlock(&sn->wmu);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        syscall(SYS_futex, (uint32_t *)&h->ev_wake, FUTEX_WAIT, seen, &ts,
                NULL, 0);
        pthread_mutex_lock(&sn->wmu);
    }
    pthread_mutex_unlock(&sn->wmu);
    return NULL;
}

void
shl__snapshotter_start(shl_ledger *l)
{
    struct shl__snapshotter *sn = calloc(1, sizeof(*sn));
    if (!sn) {
        report(l, "cannot start", -ENOMEM);
        return;
    }
    sn->ops_cap = l->seg.hdr->cap[SHL__T_OP];
    sn->seen_gen = calloc(sn->ops_cap, sizeof(uint64_t));
    sn->seen_count = calloc(sn->ops_cap, sizeof(uint64_t));
    if (!sn->seen_gen || !sn->seen_count) {
        free(sn->seen_gen);
        free(sn->seen_count);
        free(sn);
        report(l, "cannot start", -ENOMEM);
        return;
    }
    pthread_mutex_init(&sn->dr.mu, NULL);
    pthread_mutex_init(&sn->wmu, NULL);
    pthread_mutex_init(&sn->jmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sn->wcv, &ca);
    pthread_condattr_destroy(&ca);
    sn->period_ms = l->opts.snapshot_period_ms > 0
                        ? l->opts.snapshot_period_ms
                        : 100;
    l->snap = sn;
    l->drainer = &sn->dr;
    if (l->opts.snapshotter) {
        int rc = shl__thread_start(&sn->thread, run, l);
        if (rc == 0)
            sn->running = true;
        else
            report(l, "cannot start its thread", -rc);
        return;
    }
    /* recovery on open: drain what a dead holder left, if the role is free */
    struct shl__hdr *h = l->seg.hdr;
    if (h->ev_nrings && !shl__events_idle(h)) {
        pthread_mutex_lock(&sn->dr.mu);
        bool blocked;
        if (try_take(l, sn)) {
            (void)shl__events_drain(l, &sn->dr.ds, &blocked, 0);
            release_role(l, sn);
        }
        pthread_mutex_unlock(&sn->dr.mu);
    }
}

void
shl__snapshotter_stop(shl_ledger *l)
{
    struct shl__snapshotter *sn = l->snap;
    if (!sn)
        return;
    if (sn->running) {
        pthread_mutex_lock(&sn->wmu);
        sn->stop = true;
        pthread_cond_signal(&sn->wcv);
        pthread_mutex_unlock(&sn->wmu);
        /* it may sleep on the ring's wake word: wake it (a spurious wake
         * for other snapshotters, who look and sleep again) until joined */
        for (;;) {
            syscall(SYS_futex, (uint32_t *)&l->seg.hdr->ev_wake, FUTEX_WAKE,
                    INT32_MAX, NULL, NULL, 0);
            /* timedjoin takes an absolute CLOCK_REALTIME time */
            struct timespec ts = shl__deadline(CLOCK_REALTIME, 2);
            if (pthread_timedjoin_np(sn->thread, NULL, &ts) == 0)
                break;
        }
        sn->running = false;
    }
    /* last drain: everything this process posted reaches the files, and
     * what others posted too if the role is free or ours */
    pthread_mutex_lock(&sn->dr.mu);
    if (try_take(l, sn)) {
        int64_t deadline = shl__mono_ns() + 1000ll * 1000000;
        struct shl__hdr *h = l->seg.hdr;
        for (;;) {
            bool blocked;
            (void)shl__events_drain(l, &sn->dr.ds, &blocked, 0);
            if (!blocked || shl__mono_ns() > deadline ||
                shl__events_idle(h))
                break;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        rewrite_changed(l, sn);
        release_role(l, sn);
    }
    pthread_mutex_unlock(&sn->dr.mu);
    pthread_cond_destroy(&sn->wcv);
    pthread_mutex_destroy(&sn->wmu);
    pthread_mutex_destroy(&sn->dr.mu);
    pthread_mutex_destroy(&sn->jmu);
    shl__drain_state_fini(&sn->dr.ds);
    free(sn->seen_gen);
    free(sn->seen_count);
    free(sn);
    l->drainer = NULL;
    l->snap = NULL;
}
