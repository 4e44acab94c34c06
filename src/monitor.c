/*
 * monitor.c: the monitor thread of a ledger: heartbeats, proof of death,
 * staleness, the crash-cleanup protocol, abort and failure delivery.
 *
 * Threads. Each ledger with at least one session runs two threads:
 *  - the futex thread sleeps on the segment's `epoch` word (FUTEX_WAIT on a
 *    shared mapping) and turns every change into a write on an eventfd;
 *  - the monitor thread waits in epoll on that eventfd, a control eventfd,
 *    and the pidfds of the peer processes of its operations, with a timeout
 *    that is the next heartbeat tick. Every wake-up runs one pass.
 * So an abort or a state change reaches every participant within
 * milliseconds (futex wake), and so does a death (pidfd readable), whatever
 * the heartbeat interval.
 *
 * Proof of death. A participant is dead when the kernel no longer holds
 * its OFD lock on byte SHL__LOCK_PART_BASE + slot. A pidfd (opened and then
 * verified against the start time recorded in the slot, so a reused pid is
 * never watched by mistake) only tells us *when* to look; the lock decides.
 * A participant whose heartbeat is older than staleThreshold is *stale*:
 * treated as crashed for its operations (frames crashed, operation fails),
 * fenced (its flag set, so its own calls stop writing), but its slot and
 * records are never reclaimed while it lives.
 *
 * Crash protocol (DESIGN §6). Detection: under the structure lock, the
 * observer marks the crashed participant's frames `crashed` and records the
 * detection time. A crash of a failOnCrash frame moves the operation to
 * `cleanup` with the observer as coordinator (its own frames `cleaningUp`);
 * other crashes are contained (those frames are removed). Self-cleanup:
 * every live member, woken by the epoch, runs its calls' onCleanup, deletes
 * its temp resources, marks its frames `cleanedUp`, and gets the failure
 * info on every channel. Removal: when no frame is active any more, or two
 * heartbeat intervals after detection, the coordinator deletes the remaining
 * temp resources, clears the frames, and sets `failed`; then the operation
 * is archived. A dead or stale coordinator is replaced by the next observer
 * (CAS on the coordinator word).
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "archive.h"
#include "index.h"
#include "internal.h"
#include "ledger.h"
#include "lock.h"
#include "ops.h"
#include "table.h"


/* Log hooks (log.c), when present: an INFO/ERROR line in the op log, and
 * a trail-only event. */
__attribute__((weak)) void shl__oplog(shl_ledger *l, const char *op_id,
                                      int level, const char *fmt, ...);
__attribute__((weak)) void shl__optrail(shl_ledger *l, const char *op_id,
                                        const char *fmt, ...);

#define MAX_PASS_SLEEP_MS 1000

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */
/* ------------------------------------------------------------------------ */

static uint64_t
coord_make(uint32_t slot, uint64_t gen)
{
    return ((gen & ((1ull << 50) - 1)) << 13) | (uint64_t)(slot + 1);
}

static uint32_t
coord_slot(uint64_t w)
{
    return w ? (uint32_t)(w & 0x1fffu) - 1 : SHL__NO_SLOT;
}

static uint64_t
coord_gen(uint64_t w)
{
    return w >> 13;
}

static void
efd_signal(int fd)
{
    if (fd >= 0) {
        uint64_t one = 1;
        (void)!write(fd, &one, sizeof(one));
    }
}

static void
efd_drain(int fd)
{
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
}

const char *
shl_heartbeat_error_type_name(shl_heartbeat_error_type t)
{
    switch (t) {
    case SHL_HB_LEDGER_NOT_FOUND:
        return "ledgerNotFound";
    case SHL_HB_LOCK_FAILED:
        return "lockFailed";
    case SHL_HB_ABORT_FLAG_SET:
        return "abortFlagSet";
    case SHL_HB_HEARTBEAT_STALE:
        return "heartbeatStale";
    case SHL_HB_IO_ERROR:
        return "ioError";
    }
    return "unknown";
}

void
shl_heartbeat_opts_init(shl_heartbeat_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->interval_ms = 4500;
    o->jitter_ms = 500;
}

/* Is participant slot `slot` (generation gen) alive, as the kernel says? */
static bool
slot_alive(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    struct shl__seg *s = &l->seg;
    if (slot >= s->hdr->cap[SHL__T_PART])
        return false;
    if (slot == l->slot)
        return gen == l->slot_gen;
    struct shl__part *p = shl__part_at(s, slot);
    uint32_t st = atomic_load_explicit(&p->h.state, memory_order_acquire);
    if ((st != SHL__R_ALLOCATED && st != SHL__R_STARTING) ||
        atomic_load(&p->h.gen) != gen)
        return false;
    return shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + slot) == 1;
}

static bool
slot_stale(shl_ledger *l, uint32_t slot, int64_t now)
{
    struct shl__part *p = shl__part_at(&l->seg, slot);
    int64_t hb = atomic_load_explicit(&p->heartbeat_ns, memory_order_acquire);
    return hb != 0 && (now - hb) / 1000000 > l->opts.stale_threshold_ms;
}

/* ------------------------------------------------------------------------ */
/* temp-resource deletion: only what was registered, never following links  */
/* ------------------------------------------------------------------------ */

static void
report(shl_ledger *l, const char *path, const char *what, int err)
{
    char line[768];
    snprintf(line, sizeof(line), "[Ledger] temp resource %s: %s (%s)", path,
             what, strerror(err));
    if (l->opts.callbacks.on_log_line)
        l->opts.callbacks.on_log_line(line, l->opts.callbacks.user);
}

/* Remove the contents of directory fd (not following symlinks). Returns 0
 * if everything was removed. */
static int
rm_tree_at(shl_ledger *l, int dfd, const char *path)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || rm_tree_at(l, sub, path) != 0 ||
                unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
                rc = -1;
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            /* a symlink is removed itself; its target is never touched */
            if (unlinkat(dirfd(d), e->d_name, 0) != 0)
                rc = -1;
        } else {
            report(l, path,
                   "left an entry that is not a file, directory or link",
                   EPERM);
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

void shl__delete_temp_path(shl_ledger *l, const char *path);

void
shl__delete_temp_path(shl_ledger *l, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            report(l, path, "cannot inspect", errno);
        return;
    }
    if (S_ISREG(st.st_mode)) {
        if (unlink(path) != 0)
            report(l, path, "cannot delete", errno);
    } else if (S_ISDIR(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || rm_tree_at(l, fd, path) != 0 || rmdir(path) != 0)
            report(l, path, "directory not fully deleted", errno ? errno : EIO);
    } else {
        report(l, path, "left: not a regular file or directory", EPERM);
    }
}

/* Collect and free resource records matching (op, optionally owner) under
 * the structure lock; returns a malloc'd array of paths (count in *n). */
static char (*collect_resources_locked(struct shl__seg *s, uint32_t op_idx,
                                       uint64_t op_gen, uint32_t slot,
                                       uint64_t slot_gen, bool any_owner,
                                       size_t *n))[SHL_PATH_MAX + 1]
{
    char(*paths)[SHL_PATH_MAX + 1] = NULL;
    size_t cnt = 0, cap = 0;
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *x = shl__res_at(s, i);
        if (atomic_load(&x->h.state) != SHL__R_ALLOCATED ||
            x->op_idx != op_idx || x->op_gen != op_gen)
            continue;
        if (!any_owner && (x->part_slot != slot || x->part_gen != slot_gen))
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            void *p = realloc(paths, nc * sizeof(*paths));
            if (!p)
                break; /* keep the record: it will be retried */
            paths = p;
            cap = nc;
        }
        shl__copy_field(paths[cnt++], x->path, sizeof(x->path));
        shl__intent_set(s, SHL__I_FREE, SHL__T_RES, i, atomic_load(&x->h.gen));
        shl__rec_release(s, SHL__T_RES, &x->h);
        s->hdr->used[SHL__T_RES]--;
        shl__intent_clear(s);
    }
    *n = cnt;
    return paths;
}

/* ------------------------------------------------------------------------ */
/* detection                                                                 */
/* ------------------------------------------------------------------------ */

static bool
is_member(struct shl__op *r, uint32_t slot)
{
    if (slot >= SHL__MAX_PARTICIPANTS)
        return false;
    return (atomic_load(&r->members[slot / 64]) >> (slot % 64)) & 1u;
}

static bool
ledger_in_op(shl_ledger *l, uint32_t op_idx, uint64_t op_gen)
{
    bool in = false;
    pthread_mutex_lock(&l->mu);
    for (struct shl__lop *p = l->lops; p && !in; p = p->next)
        in = p->op_idx == op_idx && p->op_gen == op_gen;
    pthread_mutex_unlock(&l->mu);
    return in;
}

/*
 * Mark the frames of (slot, gen) in operation (op_idx, op_gen) crashed and
 * move the operation on. `why` names the cause ("crashed", "is stale").
 * Returns the number of frames marked, or a lock error.
 */
static int
crash_op(shl_ledger *l, uint32_t op_idx, uint64_t op_gen, uint32_t slot,
         uint64_t slot_gen, const char *why)
{
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__op_at(s, op_idx);
    if (atomic_load(&r->h.gen) != op_gen ||
        atomic_load(&r->h.state) != SHL__R_ALLOCATED) {
        shl__unlock(s);
        return 0;
    }
    uint32_t st = atomic_load(&r->op_state);
    if (st == SHL_OP_COMPLETED || st == SHL_OP_FAILED) {
        shl__unlock(s);
        return 0;
    }
    struct shl__part *dp = shl__part_at(s, slot);
    char who[SHL_PARTICIPANT_ID_MAX + 1];
    shl__copy_field(who, dp->id, sizeof(dp->id));
    int32_t who_pid = dp->pid;

    uint32_t marked = 0;
    bool fail = false;
    uint32_t contained[64];
    uint64_t contained_gen[64];
    uint32_t ncontained = 0;
    char ids[SHL_CRASHED_IDS_MAX][SHL_CALL_ID_MAX + 1];
    uint32_t nids = 0;
    uint32_t hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load(&f->h.state) != SHL__R_ALLOCATED)
            continue;
        uint64_t g = atomic_load(&f->h.gen);
        if (f->op_idx != op_idx || f->op_gen != op_gen ||
            f->part_slot != slot || f->part_gen != slot_gen)
            continue;
        uint64_t w = atomic_load(&f->fword);
        for (;;) {
            uint32_t fs = SHL__FWORD_STATE(w);
            if (!SHL__FWORD_GEN_OK(w, g) || fs == SHL__F_GONE ||
                fs == SHL_FRAME_CRASHED)
                break;
            if (atomic_compare_exchange_weak(&f->fword, &w,
                                             SHL__FWORD(g, SHL_FRAME_CRASHED))) {
                marked++;
                if (nids < SHL_CRASHED_IDS_MAX)
                    shl__copy_field(ids[nids++], f->call_id,
                                    sizeof(f->call_id));
                if (f->fail_on_crash)
                    fail = true;
                else if (ncontained < SHL__ARRAY_LEN(contained)) {
                    contained[ncontained] = i;
                    contained_gen[ncontained++] = g;
                }
                break;
            }
        }
    }
    bool now_cleanup = false;
    if (marked) {
        shl__intent_note(s, nids ? ids[0] : NULL);
        shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, op_idx, op_gen);
        shl__seq_write_begin(&r->h);
        int64_t now_us = shl__wall_us();
        if (r->detection_us == 0)
            r->detection_us = now_us;
        for (uint32_t k = 0; k < nids && r->crashed_count < SHL_CRASHED_IDS_MAX;
             k++) {
            memset(r->crashed[r->crashed_count], 0, sizeof(r->crashed[0]));
            memcpy(r->crashed[r->crashed_count], ids[k], strlen(ids[k]));
            r->crashed_count++;
        }
        if (fail && st == SHL_OP_RUNNING) {
            r->failed_at_us = now_us;
            memset(r->reason, 0, sizeof(r->reason));
            snprintf(r->reason, sizeof(r->reason),
                     "Participant %s (pid %d) %s", who, (int)who_pid, why);
        }
        shl__seq_write_end(&r->h);
        if (fail && st == SHL_OP_RUNNING) {
            /* the observer coordinates if it takes part; else the first
             * member that notices the cleanup state takes over */
            bool member = ledger_in_op(l, op_idx, op_gen);
            atomic_store(&r->coordinator,
                         member ? coord_make(l->slot, l->slot_gen) : 0);
            atomic_store_explicit(&r->op_state, SHL_OP_CLEANUP,
                                  memory_order_release);
            now_cleanup = true;
            if (member) {
                /* our own active frames become the coordinator marker */
                for (uint32_t i = 0; i < hw; i++) {
                    struct shl__frame *f = shl__frame_at(s, i);
                    if (atomic_load(&f->h.state) != SHL__R_ALLOCATED ||
                        f->op_idx != op_idx || f->op_gen != op_gen ||
                        f->part_slot != l->slot)
                        continue;
                    uint64_t g = atomic_load(&f->h.gen);
                    uint64_t exp = SHL__FWORD(g, SHL_FRAME_ACTIVE);
                    atomic_compare_exchange_strong(
                        &f->fword, &exp, SHL__FWORD(g, SHL_FRAME_CLEANING_UP));
                }
            }
        }
        atomic_fetch_add(&r->change_count, 1);
        shl__intent_clear(s);
        /* readers retry snapshots across this change (before frames go) */
        shl__epoch_bump(s);
    }
    /* contained crashes: those frames go, the operation goes on */
    for (uint32_t k = 0; k < ncontained; k++) {
        struct shl__frame *f = shl__frame_at(s, contained[k]);
        uint64_t exp = SHL__FWORD(contained_gen[k], SHL_FRAME_CRASHED);
        if (atomic_compare_exchange_strong(
                &f->fword, &exp, SHL__FWORD(contained_gen[k], SHL__F_GONE)))
            shl__rec_release(s, SHL__T_FRAME, &f->h);
    }
    shl__unlock(s);
    if (marked) {
        shl__epoch_bump(s);
        if (shl__oplog) {
            char opid[SHL_OPERATION_ID_MAX + 1];
            shl__copy_field(opid, r->id, sizeof(r->id));
            for (uint32_t k = 0; k < nids; k++)
                shl__oplog(l, opid, SHL_LOG_ERROR,
                           "CRASH_DETECTED callId=%s reason=Participant %s",
                           ids[k], why);
            if (now_cleanup) {
                shl__oplog(l, opid, SHL_LOG_INFO,
                           "OPERATION_STATE_CHANGED state=cleanup");
                shl__oplog(l, opid, SHL_LOG_ERROR,
                           "CLEANUP_STARTED reason=Participant %s (pid %d) %s",
                           who, (int)who_pid, why);
            }
        }
    }
    return (int)marked;
}

/* Free a failed operation whose members are all gone, with its remaining
 * resource records (paths appended to *paths for deletion after unlock) and
 * frames. Structure lock held. */
static void
free_if_abandoned_locked(struct shl__seg *s, uint32_t op_idx,
                         char (**paths)[SHL_PATH_MAX + 1], size_t *npaths)
{
    struct shl__op *r = shl__op_at(s, op_idx);
    if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
        return;
    uint32_t st = atomic_load(&r->op_state);
    if (st != SHL_OP_FAILED)
        return;
    for (size_t w = 0; w < SHL__ARRAY_LEN(r->members); w++)
        if (atomic_load(&r->members[w]))
            return;
    uint64_t gen = atomic_load(&r->h.gen);
    size_t n = 0;
    char(*more)[SHL_PATH_MAX + 1] =
        collect_resources_locked(s, op_idx, gen, 0, 0, true, &n);
    if (n) {
        void *q = realloc(*paths, (*npaths + n) * sizeof(**paths));
        if (q) {
            *paths = q;
            memcpy(*paths + *npaths, more, n * sizeof(**paths));
            *npaths += n;
        }
    }
    free(more);
    shl__op_release_frames(s, op_idx, gen);
    shl__intent_set(s, SHL__I_FREE, SHL__T_OP, op_idx, gen);
    SHL_CRASH_POINT("free.intent");
    shl__index_remove(s, r->id_hash, op_idx);
    SHL_CRASH_POINT("free.unindexed");
    shl__rec_release(s, SHL__T_OP, &r->h);
    SHL_CRASH_POINT("free.released");
    s->hdr->used[SHL__T_OP]--;
    shl__intent_clear(s);
}

static void finish_orphaned_cleanups(shl_ledger *l);

int
shl__reap(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    uint32_t hw = shl__table_hwm(s, SHL__T_PART);
    uint32_t dead[64];
    uint64_t dgen[64];
    uint32_t nd = 0;
    for (uint32_t i = 0; i < hw && nd < SHL__ARRAY_LEN(dead); i++) {
        if (i == l->slot)
            continue;
        struct shl__part *p = shl__part_at(s, i);
        uint32_t st = atomic_load(&p->h.state);
        if (st != SHL__R_ALLOCATED && st != SHL__R_STARTING)
            continue;
        if (shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + i) == 1)
            continue;
        /* STARTING is also what a live creator holding the structure lock
         * shows; it holds its liveness lock before claiming, so an unlocked
         * byte means dead either way. */
        dead[nd] = i;
        dgen[nd++] = atomic_load(&p->h.gen);
    }
    if (nd == 0)
        return 0;
    /* 1. the crash protocol for every operation the dead took part in */
    uint32_t ohw = shl__table_hwm(s, SHL__T_OP);
    uint32_t fhw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t k = 0; k < nd; k++) {
        for (uint32_t o = 0; o < ohw; o++) {
            struct shl__op *r = shl__op_at(s, o);
            if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
                continue;
            bool involved = is_member(r, dead[k]);
            uint64_t og = atomic_load(&r->h.gen);
            for (uint32_t i = 0; i < fhw && !involved; i++) {
                struct shl__frame *f = shl__frame_at(s, i);
                involved = atomic_load(&f->h.state) == SHL__R_ALLOCATED &&
                           f->part_slot == dead[k] && f->part_gen == dgen[k] &&
                           f->op_idx == o && f->op_gen == og;
            }
            if (involved)
                (void)crash_op(l, o, og, dead[k], dgen[k], "crashed");
        }
    }
    /* 2. under the lock: re-check, free what the dead owned, free slots */
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    int reaped = 0;
    char(*paths)[SHL_PATH_MAX + 1] = NULL;
    size_t npaths = 0;
    for (uint32_t k = 0; k < nd; k++) {
        uint32_t slot = dead[k];
        struct shl__part *p = shl__part_at(s, slot);
        uint32_t st = atomic_load(&p->h.state);
        if ((st != SHL__R_ALLOCATED && st != SHL__R_STARTING) ||
            atomic_load(&p->h.gen) != dgen[k] ||
            shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + slot) == 1)
            continue;
        /* frames of the dead that no protocol is holding: unpublished
         * claims, and frames of finished or vanished operations */
        for (uint32_t i = 0; i < fhw; i++) {
            struct shl__frame *f = shl__frame_at(s, i);
            uint32_t fst = atomic_load(&f->h.state);
            if (atomic_load(&f->h.owner) != slot ||
                atomic_load(&f->h.owner_gen) != dgen[k])
                continue;
            if (fst == SHL__R_STARTING) {
                uint32_t q = atomic_load(&f->h.seq);
                if (q & 1u)
                    atomic_store(&f->h.seq, q + 1);
                atomic_store(&f->h.state, SHL__R_FREE);
                continue;
            }
            if (fst != SHL__R_ALLOCATED)
                continue;
            struct shl__op *r = shl__op_at(s, f->op_idx < s->hdr->cap[SHL__T_OP]
                                                  ? f->op_idx
                                                  : 0);
            bool op_live = f->op_idx < s->hdr->cap[SHL__T_OP] &&
                           atomic_load(&r->h.gen) == f->op_gen &&
                           atomic_load(&r->h.state) == SHL__R_ALLOCATED &&
                           atomic_load(&r->op_state) == SHL_OP_CLEANUP;
            if (op_live)
                continue; /* the coordinator clears it in the removal */
            (void)shl__frame_remove(s, f, atomic_load(&f->h.gen));
        }
        /* resources the dead registered: delete them (after unlock) */
        for (uint32_t o = 0; o < ohw; o++) {
            struct shl__op *r = shl__op_at(s, o);
            if (atomic_load(&r->h.state) != SHL__R_ALLOCATED)
                continue;
            size_t n = 0;
            char(*more)[SHL_PATH_MAX + 1] = collect_resources_locked(
                s, o, atomic_load(&r->h.gen), slot, dgen[k], false, &n);
            if (n) {
                void *q = realloc(paths, (npaths + n) * sizeof(*paths));
                if (q) {
                    paths = q;
                    memcpy(paths + npaths, more, n * sizeof(*paths));
                    npaths += n;
                }
            }
            free(more);
            if (is_member(r, slot)) {
                if (shl__optrail) {
                    char opid[SHL_OPERATION_ID_MAX + 1], who[64];
                    shl__copy_field(opid, r->id, sizeof(opid));
                    shl__copy_field(who, p->id, sizeof(who));
                    shl__optrail(l, opid,
                                 "PARTICIPANT_CRASHED participant=%s pid=%d",
                                 who, (int)p->pid);
                }
                atomic_fetch_and(&r->members[slot / 64],
                                 ~(1ull << (slot % 64)));
                atomic_fetch_add(&r->change_count, 1);
                free_if_abandoned_locked(s, o, &paths, &npaths);
            }
        }
        /* the slot itself */
        shl__intent_set(s, SHL__I_FREE, SHL__T_PART, slot, dgen[k]);
        if (st == SHL__R_STARTING) {
            uint32_t q = atomic_load(&p->h.seq);
            if (q & 1u)
                atomic_store(&p->h.seq, q + 1);
            atomic_store(&p->h.state, SHL__R_FREE);
        } else {
            shl__rec_release(s, SHL__T_PART, &p->h);
            s->hdr->used[SHL__T_PART]--;
        }
        shl__intent_clear(s);
        atomic_fetch_add(&s->hdr->crashes_detected, 1);
        reaped++;
    }
    shl__unlock(s);
    for (size_t i = 0; i < npaths; i++)
        shl__delete_temp_path(l, paths[i]);
    free(paths);
    if (reaped) {
        finish_orphaned_cleanups(l);
        shl__epoch_bump(s);
    }
    return reaped;
}

/* An operation in `cleanup` whose members are all gone has nobody left to
 * coordinate: whoever reaps finishes the removal (resources, frames,
 * `failed`), archives it and frees it. */
static void
finish_orphaned_cleanups(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    uint32_t ohw = shl__table_hwm(s, SHL__T_OP);
    for (uint32_t o = 0; o < ohw; o++) {
        struct shl__op *r = shl__op_at(s, o);
        if (atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&r->op_state) != SHL_OP_CLEANUP)
            continue;
        bool members = false;
        for (size_t w = 0; w < SHL__ARRAY_LEN(r->members) && !members; w++)
            members = atomic_load(&r->members[w]) != 0;
        if (members || shl__lock(s, l->opts.timeout_ms) != 0)
            continue;
        uint64_t gen = atomic_load(&r->h.gen);
        members = false;
        for (size_t w = 0; w < SHL__ARRAY_LEN(r->members) && !members; w++)
            members = atomic_load(&r->members[w]) != 0;
        if (members || atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&r->op_state) != SHL_OP_CLEANUP) {
            shl__unlock(s);
            continue;
        }
        size_t n = 0;
        char(*paths)[SHL_PATH_MAX + 1] =
            collect_resources_locked(s, o, gen, 0, 0, true, &n);
        shl__op_release_frames(s, o, gen);
        shl__intent_note(s, NULL);
        shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, o, gen);
        shl__seq_write_begin(&r->h);
        r->removal_us = shl__wall_us();
        shl__seq_write_end(&r->h);
        atomic_store_explicit(&r->op_state, SHL_OP_FAILED,
                              memory_order_release);
        atomic_fetch_add(&r->change_count, 1);
        shl__intent_clear(s);
        shl_snapshot *arch = shl__archive_capture(l, o, gen);
        char opid[SHL_OPERATION_ID_MAX + 1];
        shl__copy_field(opid, r->id, sizeof(opid));
        shl__unlock(s);
        for (size_t i = 0; i < n; i++)
            shl__delete_temp_path(l, paths[i]);
        free(paths);
        if (shl__oplog) {
            shl__oplog(l, opid, SHL_LOG_INFO,
                       "OPERATION_STATE_CHANGED state=failed");
            shl__oplog(l, opid, SHL_LOG_ERROR, "OPERATION_FAILED");
        }
        (void)shl__archive_write(l, arch);
        (void)shl__op_reclaim_if_abandoned(l, o);
    }
}

int
shl__op_reclaim_if_abandoned(shl_ledger *l, uint32_t op_idx)
{
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    char(*paths)[SHL_PATH_MAX + 1] = NULL;
    size_t npaths = 0;
    free_if_abandoned_locked(s, op_idx, &paths, &npaths);
    shl__unlock(s);
    for (size_t i = 0; i < npaths; i++)
        shl__delete_temp_path(l, paths[i]);
    free(paths);
    shl__epoch_bump(s);
    return 0;
}

int
shl_ledger_reap(shl_ledger *l)
{
    shl__clear_err();
    if (!l)
        return SHL_SET_ERR(-EINVAL, "NULL ledger");
    return shl__reap(l);
}

/* ------------------------------------------------------------------------ */
/* delivery                                                                  */
/* ------------------------------------------------------------------------ */

void
shl__session_init_monitor(shl_op *op)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&op->cv, &ca);
    pthread_condattr_destroy(&ca);
    op->efd = -1;
    shl_ledger *l = op->lop->l;
    op->hb_enabled = true;
    op->hb_interval_ms = l->opts.heartbeat_interval_ms;
    op->hb_jitter_ms = 500;
    op->hb_next_ns = shl__mono_ns() + op->hb_interval_ms * 1000000;
    shl_heartbeat_opts_init(&op->hb);
}

void
shl__session_fini_monitor(shl_op *op)
{
    shl_snapshot_free(op->cached);
    op->cached = NULL;
    if (op->efd >= 0)
        close(op->efd);
    pthread_cond_destroy(&op->cv);
}

void
shl__session_deliver_abort(shl_op *op)
{
    pthread_mutex_lock(&op->mu);
    atomic_store(&op->aborted, true);
    pthread_cond_broadcast(&op->cv);
    efd_signal(op->efd);
    pthread_mutex_unlock(&op->mu);
    bool expect = false;
    if (atomic_compare_exchange_strong(&op->abort_fired, &expect, true) &&
        op->cb.on_abort)
        op->cb.on_abort(op, op->cb.user);
}

void
shl__session_deliver_failure(shl_op *op, const shl_failed_info *info)
{
    pthread_mutex_lock(&op->mu);
    if (!op->failed) {
        op->finfo = *info;
        op->failed = true;
    }
    pthread_cond_broadcast(&op->cv);
    efd_signal(op->efd);
    /* pending calls hear it too (collected under the lock, fired after) */
    size_t n = 0;
    for (struct shl_call *c = op->calls_head; c; c = c->next)
        if (atomic_load(&c->done) == 0 && c->cb.on_operation_failed)
            n++;
    struct shl_call **calls = n ? malloc(n * sizeof(*calls)) : NULL;
    size_t k = 0;
    if (calls)
        for (struct shl_call *c = op->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0 && c->cb.on_operation_failed)
                calls[k++] = c;
    pthread_mutex_unlock(&op->mu);
    bool expect = false;
    if (!atomic_compare_exchange_strong(&op->failure_fired, &expect, true)) {
        free(calls);
        return;
    }
    for (size_t i = 0; i < k; i++)
        calls[i]->cb.on_operation_failed(calls[i], info, calls[i]->cb.user);
    free(calls);
    if (op->cb.on_failure)
        op->cb.on_failure(op, info, op->cb.user);
}

/* Self-cleanup of this ledger's part of a failing operation. */
static void
self_cleanup(shl_ledger *l, struct shl__lop *lop, shl_op **sessions,
             size_t nsessions)
{
    struct shl__seg *s = &l->seg;
    for (size_t i = 0; i < nsessions; i++) {
        shl_op *op = sessions[i];
        if (op->lop != lop)
            continue;
        pthread_mutex_lock(&op->mu);
        bool done = op->cleaned;
        op->cleaned = true;
        size_t n = 0;
        for (struct shl_call *c = op->calls_head; c; c = c->next)
            if (atomic_load(&c->done) == 0)
                n++;
        struct shl_call **calls = n ? malloc(n * sizeof(*calls)) : NULL;
        size_t k = 0;
        if (calls)
            for (struct shl_call *c = op->calls_head; c; c = c->next)
                if (atomic_load(&c->done) == 0)
                    calls[k++] = c;
        pthread_mutex_unlock(&op->mu);
        if (done) {
            free(calls);
            continue;
        }
        for (size_t j = 0; j < k; j++) {
            struct shl_call *c = calls[j];
            bool ran = false;
            if (c->cb.on_cleanup &&
                atomic_compare_exchange_strong(&c->cleanup_ran, &ran, true))
                c->cb.on_cleanup(c, c->cb.user);
            struct shl__frame *f = shl__frame_at(s, c->frame_idx);
            uint64_t exp = SHL__FWORD(c->frame_gen, SHL_FRAME_ACTIVE);
            atomic_compare_exchange_strong(
                &f->fword, &exp, SHL__FWORD(c->frame_gen, SHL_FRAME_CLEANED_UP));
        }
        free(calls);
    }
    /* our temp resources in this operation (once: the epoch bump below
     * wakes every monitor, which must not answer with another bump) */
    if (lop->self_cleaned)
        return;
    if (shl__lock(s, l->opts.timeout_ms) == 0) {
        lop->self_cleaned = true;
        size_t n = 0;
        char(*paths)[SHL_PATH_MAX + 1] =
            collect_resources_locked(s, lop->op_idx, lop->op_gen, l->slot,
                                     l->slot_gen, false, &n);
        struct shl__op *r = shl__lop_record(lop);
        if (r)
            atomic_fetch_add(&r->change_count, 1);
        shl__unlock(s);
        for (size_t i = 0; i < n; i++)
            shl__delete_temp_path(l, paths[i]);
        free(paths);
        shl__epoch_bump(s);
    }
}

/* Phase 3 by the coordinator. Returns true when the operation was moved to
 * failed. */
static bool
coordinate(shl_ledger *l, struct shl__lop *lop)
{
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__lop_record(lop);
    if (!r || atomic_load(&r->op_state) != SHL_OP_CLEANUP)
        return false;
    uint64_t mine = coord_make(l->slot, l->slot_gen);
    uint64_t cw = atomic_load(&r->coordinator);
    if (cw != mine) {
        uint32_t cs = coord_slot(cw);
        bool dead_or_stale = true;
        if (cs != SHL__NO_SLOT && cs < s->hdr->cap[SHL__T_PART]) {
            struct shl__part *p = shl__part_at(s, cs);
            uint64_t pg = atomic_load(&p->h.gen);
            dead_or_stale = (pg & ((1ull << 50) - 1)) != coord_gen(cw) ||
                            !slot_alive(l, cs, pg) ||
                            slot_stale(l, cs, shl__mono_ns()) ||
                            atomic_load(&p->fenced);
        }
        if (!dead_or_stale ||
            !atomic_compare_exchange_strong(&r->coordinator, &cw, mine))
            return false;
    }
    /* removal condition: no frame active, or the grace period passed */
    int64_t grace_us = 2 * l->opts.heartbeat_interval_ms * 1000;
    int64_t det = r->detection_us;
    bool grace = det && shl__wall_us() - det >= grace_us;
    bool active = false;
    uint32_t hw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < hw && !active; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load(&f->h.state) != SHL__R_ALLOCATED ||
            f->op_idx != lop->op_idx || f->op_gen != lop->op_gen)
            continue;
        uint64_t w = atomic_load(&f->fword);
        if (SHL__FWORD_GEN_OK(w, atomic_load(&f->h.gen)) &&
            SHL__FWORD_STATE(w) == SHL_FRAME_ACTIVE)
            active = true;
    }
    if (active && !grace)
        return false;
    if (shl__lock(s, l->opts.timeout_ms) != 0)
        return false;
    r = shl__lop_record(lop);
    if (!r || atomic_load(&r->op_state) != SHL_OP_CLEANUP ||
        atomic_load(&r->coordinator) != mine) {
        shl__unlock(s);
        return false;
    }
    size_t n = 0;
    char(*paths)[SHL_PATH_MAX + 1] = collect_resources_locked(
        s, lop->op_idx, lop->op_gen, 0, 0, true, &n);
    /* clear the frames, then say failed (DESIGN §6 phase 3); the crashed
     * call ids stay in the failure info */
    shl__op_release_frames(s, lop->op_idx, lop->op_gen);
    shl__intent_note(s, NULL);
    shl__intent_set(s, SHL__I_FAIL, SHL__T_OP, lop->op_idx, lop->op_gen);
    shl__seq_write_begin(&r->h);
    r->removal_us = shl__wall_us();
    shl__seq_write_end(&r->h);
    atomic_store_explicit(&r->op_state, SHL_OP_FAILED, memory_order_release);
    atomic_fetch_add(&r->change_count, 1);
    shl__intent_clear(s);
    /* capture for the archive now, under the lock: once we unlock, the
     * last member may leave and the failed operation be reclaimed */
    shl_snapshot *arch = shl__archive_capture(l, lop->op_idx, lop->op_gen);
    shl__epoch_bump(s);
    shl__unlock(s);
    for (size_t i = 0; i < n; i++)
        shl__delete_temp_path(l, paths[i]);
    free(paths);
    if (shl__oplog) {
        shl__oplog(l, lop->id, SHL_LOG_INFO,
                   "OPERATION_STATE_CHANGED state=failed");
        shl__oplog(l, lop->id, SHL_LOG_ERROR, "OPERATION_FAILED");
    }
    (void)shl__archive_write(l, arch);
    return true;
}

/* ------------------------------------------------------------------------ */
/* heartbeat results                                                         */
/* ------------------------------------------------------------------------ */

void
shl_heartbeat_result_free(shl_heartbeat_result *r)
{
    if (!r)
        return;
    free(r->participants);
    free(r->ages);
    free(r->stale_participants);
    shl_snapshot_free(r->data_before);
    shl_snapshot_free(r->data_after);
    free(r);
}

int
shl_op_heartbeat(shl_op *op, shl_heartbeat_result **out)
{
    shl__clear_err();
    if (!op || !out)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    if (!shl__lop_record(lop))
        return SHL_SET_ERR(SHL_ENOTFOUND, "Operation %s not found", lop->id);
    shl_snapshot *before = NULL, *after = NULL;
    int rc = shl_reader_snapshot(&l->reader, lop->id, &before);
    if (rc)
        return rc == SHL_ENOTFOUND
                   ? SHL_SET_ERR(SHL_ENOTFOUND, "Operation %s not found",
                                 lop->id)
                   : rc;
    rc = shl_ledger_heartbeat(l);
    if (rc) {
        shl_snapshot_free(before);
        return rc;
    }
    rc = shl_reader_snapshot(&l->reader, lop->id, &after);
    if (rc) {
        shl_snapshot_free(before);
        return rc == SHL_ENOTFOUND
                   ? SHL_SET_ERR(SHL_ENOTFOUND, "Operation %s not found",
                                 lop->id)
                   : rc;
    }
    shl_heartbeat_result *res = calloc(1, sizeof(*res));
    size_t nf = before->frame_count;
    if (res) {
        res->participants = calloc(nf ? nf : 1, sizeof(*res->participants));
        res->ages = calloc(nf ? nf : 1, sizeof(*res->ages));
        res->stale_participants =
            calloc(nf ? nf : 1, sizeof(*res->stale_participants));
    }
    if (!res || !res->participants || !res->ages || !res->stale_participants) {
        shl_snapshot_free(before);
        shl_snapshot_free(after);
        if (res) {
            free(res->participants);
            free(res->ages);
            free(res->stale_participants);
            free(res);
        }
        return -ENOMEM;
    }
    int64_t stale_ms = atomic_load(&lop->staleness_ms);
    res->abort_flag = after->aborted;
    res->ledger_exists = true;
    res->heartbeat_updated = true;
    res->call_frame_count = (uint32_t)after->frame_count;
    res->temp_resource_count = (uint32_t)after->resource_count;
    res->heartbeat_age_ms = (shl__wall_us() - before->last_heartbeat_us) / 1000;
    for (size_t i = 0; i < nf; i++) {
        const shl_call_frame *f = &before->frames[i];
        memcpy(res->participants[res->participant_count++], f->participant_id,
               sizeof(f->participant_id));
        size_t k;
        for (k = 0; k < res->age_count; k++)
            if (!strcmp(res->ages[k].participant_id, f->participant_id))
                break;
        if (k == res->age_count)
            memcpy(res->ages[res->age_count++].participant_id,
                   f->participant_id, sizeof(f->participant_id));
        res->ages[k].age_ms = f->heartbeat_age_ms;
        if (f->heartbeat_age_ms > stale_ms && strcmp(f->participant_id, l->id))
            memcpy(res->stale_participants[res->stale_count++],
                   f->participant_id, sizeof(f->participant_id));
    }
    res->is_stale = res->stale_count > 0;
    res->has_stale_children = res->stale_count > 0;
    res->data_before = before;
    res->data_after = after;
    shl__session_cache(op, after);
    *out = res;
    return 0;
}

static void
hb_error(shl_op *op, shl_heartbeat_error_type t, int cause, const char *fmt,
         ...) __attribute__((format(printf, 4, 5)));

static void
hb_error(shl_op *op, shl_heartbeat_error_type t, int cause, const char *fmt,
         ...)
{
    shl_heartbeat_error e = {.type = t, .cause = cause};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    if (op->hb.on_error)
        op->hb.on_error(op, &e, op->hb.user);
    if (op->cb.on_heartbeat_error)
        op->cb.on_heartbeat_error(op, &e, op->cb.user);
    shl_ledger *l = op->lop->l;
    if (t == SHL_HB_LEDGER_NOT_FOUND &&
        l->opts.callbacks.on_global_heartbeat_error)
        l->opts.callbacks.on_global_heartbeat_error(op, &e,
                                                    l->opts.callbacks.user);
}

/* One heartbeat tick of a session, classified as the original does. */
static void
session_tick(shl_op *op)
{
    shl_heartbeat_result *res = NULL;
    int rc = shl_op_heartbeat(op, &res);
    if (rc == SHL_ENOTFOUND) {
        hb_error(op, SHL_HB_LEDGER_NOT_FOUND, rc, "Operation %s not found",
                 op->lop->id);
        return;
    }
    if (rc) {
        hb_error(op, SHL_HB_IO_ERROR, rc, "Heartbeat failed: %s",
                 shl_strerror(rc));
        return;
    }
    if (res->abort_flag) {
        hb_error(op, SHL_HB_ABORT_FLAG_SET, 0, "Abort flag is set");
        shl__session_deliver_abort(op);
        op->hb_enabled = false; /* as the original: abort stops it */
    } else if (res->has_stale_children) {
        char msg[200] = "";
        size_t o = 0;
        for (size_t i = 0; i < res->stale_count && o < sizeof(msg) - 2; i++)
            o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%s%s",
                                  i ? ", " : "", res->stale_participants[i]);
        hb_error(op, SHL_HB_HEARTBEAT_STALE, 0,
                 "Stale heartbeat detected from: %s", msg);
    } else {
        if (op->hb.on_success)
            op->hb.on_success(op, res, op->hb.user);
        if (op->cb.on_heartbeat_success)
            op->cb.on_heartbeat_success(op, res, op->cb.user);
    }
    shl_heartbeat_result_free(res);
}

int
shl_op_start_heartbeat(shl_op *op, const shl_heartbeat_opts *o)
{
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    shl_heartbeat_opts def;
    if (!o) {
        shl_heartbeat_opts_init(&def);
        o = &def;
    }
    if (o->interval_ms <= 0 || o->jitter_ms < 0)
        return SHL_SET_ERR(-EINVAL, "heartbeat interval must be > 0 and "
                                    "jitter >= 0");
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&l->mu);
    op->hb = *o;
    op->hb_interval_ms = o->interval_ms;
    op->hb_jitter_ms = o->jitter_ms;
    int64_t jitter =
        o->jitter_ms ? (shl__wall_us() / 1000 % 1000) % o->jitter_ms : 0;
    op->hb_next_ns = shl__mono_ns() + (o->interval_ms + jitter) * 1000000;
    op->hb_enabled = true;
    pthread_mutex_unlock(&l->mu);
    shl__monitor_wake(l);
    return 0;
}

void
shl_op_stop_heartbeat(shl_op *op)
{
    if (!op)
        return;
    shl_ledger *l = op->lop->l;
    pthread_mutex_lock(&l->mu);
    op->hb_enabled = false;
    pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------------------ */
/* waits                                                                     */
/* ------------------------------------------------------------------------ */

static int
wait_until(shl_op *op, int64_t timeout_ms, bool (*cond)(shl_op *))
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
    }
    int rc = 0;
    pthread_mutex_lock(&op->mu);
    while (!cond(op)) {
        int w = timeout_ms < 0 ? pthread_cond_wait(&op->cv, &op->mu)
                               : pthread_cond_timedwait(&op->cv, &op->mu, &dl);
        if (w == ETIMEDOUT) {
            rc = cond(op) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&op->mu);
    return rc;
}

static bool
is_aborted_cond(shl_op *op)
{
    return atomic_load(&op->aborted);
}
static bool
is_failed_cond(shl_op *op)
{
    return op->failed;
}

int
shl_op_wait_abort(shl_op *op, int64_t timeout_ms)
{
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    int rc = wait_until(op, timeout_ms, is_aborted_cond);
    return rc ? SHL_SET_ERR(rc, "no abort within %lld ms",
                            (long long)timeout_ms)
              : 0;
}

int
shl_op_wait_failure(shl_op *op, int64_t timeout_ms, shl_failed_info *info)
{
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    int rc = wait_until(op, timeout_ms, is_failed_cond);
    if (rc)
        return SHL_SET_ERR(rc, "no failure within %lld ms",
                           (long long)timeout_ms);
    if (info) {
        pthread_mutex_lock(&op->mu);
        *info = op->finfo;
        pthread_mutex_unlock(&op->mu);
    }
    return 0;
}

int
shl_op_event_fd(shl_op *op)
{
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    pthread_mutex_lock(&op->mu);
    if (op->efd < 0) {
        op->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (op->efd >= 0 && (atomic_load(&op->aborted) || op->failed))
            efd_signal(op->efd);
    }
    int fd = op->efd;
    pthread_mutex_unlock(&op->mu);
    return fd >= 0 ? fd : SHL_SET_ERR(-errno, "eventfd: %s", strerror(errno));
}

/* ------------------------------------------------------------------------ */
/* the monitor threads                                                       */
/* ------------------------------------------------------------------------ */

static void
watch_peer(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    for (size_t i = 0; i < l->watch_count; i++)
        if (l->watches[i].slot == slot && l->watches[i].gen == gen) {
            l->watches[i].seen = true;
            return;
        }
    struct shl__part *p = shl__part_at(&l->seg, slot);
    int pid = p->pid;
    uint64_t start = p->start_time;
    if (pid <= 0)
        return;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return; /* another namespace, or gone: the lock check covers it */
    /* verify it is the same process (pid reuse): start time after open */
    if (start && shl__proc_start_time(pid) != start) {
        close(fd);
        return;
    }
    if (l->watch_count == l->watch_cap) {
        size_t nc = l->watch_cap ? l->watch_cap * 2 : 8;
        void *q = realloc(l->watches, nc * sizeof(*l->watches));
        if (!q) {
            close(fd);
            return;
        }
        l->watches = q;
        l->watch_cap = nc;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u64 = (uint64_t)fd + 16;
    if (epoll_ctl(l->mon_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return;
    }
    l->watches[l->watch_count++] =
        (struct shl__watch){.slot = slot, .gen = gen, .pidfd = fd, .seen = true};
}

static void
unwatch(shl_ledger *l, size_t i)
{
    epoll_ctl(l->mon_epfd, EPOLL_CTL_DEL, l->watches[i].pidfd, NULL);
    close(l->watches[i].pidfd);
    l->watches[i] = l->watches[--l->watch_count];
}

/* Peers of an operation: members and frame owners (excluding us). */
static int
lop_peers(shl_ledger *l, struct shl__lop *lop, int64_t now)
{
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__lop_record(lop);
    int err = 0;
    if (!r)
        return 0;
    uint32_t pcap = s->hdr->cap[SHL__T_PART];
    for (uint32_t w = 0; w < SHL__ARRAY_LEN(r->members); w++) {
        uint64_t bits = atomic_load(&r->members[w]);
        while (bits) {
            uint32_t slot = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (slot >= pcap || slot == l->slot)
                continue;
            struct shl__part *p = shl__part_at(s, slot);
            uint64_t g = atomic_load(&p->h.gen);
            if (atomic_load(&p->h.state) != SHL__R_ALLOCATED)
                continue;
            if (!slot_alive(l, slot, g))
                continue; /* the reaper handles the dead */
            watch_peer(l, slot, g);
            if (slot_stale(l, slot, now) && !atomic_load(&p->fenced)) {
                int rc = crash_op(l, lop->op_idx, lop->op_gen, slot, g,
                                  "is stale");
                if (rc >= 0) {
                    /* fence it: it must stop writing when it wakes */
                    atomic_store(&p->fenced, 1);
                    shl__epoch_bump(s);
                } else if (!err) {
                    err = rc;
                }
            }
        }
    }
    return err;
}

/* The structure lock could not be taken for crash handling: lockFailed
 * (the original never emitted it; a lock failure looked like a missing
 * file there). */
static void
report_lock_failure(shl_op **ss, size_t k, struct shl__lop *lop, int rc)
{
    for (size_t i = 0; i < k; i++)
        if (!lop || ss[i]->lop == lop)
            hb_error(ss[i], rc == SHL_EPANIC ? SHL_HB_IO_ERROR
                                             : SHL_HB_LOCK_FAILED,
                     rc, "Failed to acquire the structure lock: %s (%s)",
                     shl_strerror(rc), shl_errmsg());
}

static void
monitor_pass(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    int64_t now = shl__mono_ns();

    /* collect the sessions (pinned by busy) */
    pthread_mutex_lock(&l->mu);
    size_t n = 0;
    bool any_hb = false;
    for (struct shl__lop *lop = l->lops; lop; lop = lop->next)
        for (shl_op *op = lop->sessions; op; op = op->next_session)
            n++;
    shl_op **ss = n ? malloc(n * sizeof(*ss)) : NULL;
    struct shl__lop **lops = n ? malloc(n * sizeof(*lops)) : NULL;
    bool *due = n ? calloc(n, sizeof(bool)) : NULL;
    size_t k = 0, nl = 0;
    if (ss && lops && due) {
        for (struct shl__lop *lop = l->lops; lop; lop = lop->next) {
            if (lop->sessions)
                lops[nl++] = lop;
            for (shl_op *op = lop->sessions; op; op = op->next_session) {
                op->busy++;
                if (op->hb_enabled) {
                    any_hb = true;
                    if (now >= op->hb_next_ns) {
                        due[k] = true;
                        int64_t jitter =
                            op->hb_jitter_ms
                                ? (shl__wall_us() / 1000 % 1000) %
                                      op->hb_jitter_ms
                                : 0;
                        op->hb_next_ns =
                            now + (op->hb_interval_ms + jitter) * 1000000;
                    }
                }
                ss[k++] = op;
            }
        }
    }
    pthread_mutex_unlock(&l->mu);

    if (any_hb)
        (void)shl_ledger_heartbeat(l);

    /* fenced: we were declared crashed while hung; stop writing, tell */
    bool fenced = atomic_load(&shl__part_at(s, l->slot)->fenced) != 0;

    for (size_t i = 0; i < l->watch_count; i++)
        l->watches[i].seen = false;
    int reap_rc = shl__reap(l);
    if (reap_rc < 0)
        report_lock_failure(ss, k, NULL, reap_rc);

    for (size_t j = 0; j < nl; j++) {
        struct shl__lop *lop = lops[j];
        struct shl__op *r = shl__lop_record(lop);
        if (!r)
            continue;
        if (!fenced) {
            int prc = lop_peers(l, lop, now);
            if (prc < 0)
                report_lock_failure(ss, k, lop, prc);
        }
        uint32_t st = atomic_load(&r->op_state);
        if (atomic_load(&r->aborted))
            for (size_t i = 0; i < k; i++)
                if (ss[i]->lop == lop && !atomic_load(&ss[i]->abort_fired))
                    shl__session_deliver_abort(ss[i]);
        if (st == SHL_OP_CLEANUP || st == SHL_OP_FAILED || fenced) {
            if (!fenced)
                self_cleanup(l, lop, ss, k);
            shl_failed_info info;
            memset(&info, 0, sizeof(info));
            bool have = false;
            for (size_t i = 0; i < k && !have; i++)
                if (ss[i]->lop == lop)
                    have = shl_op_failure_info(ss[i], &info) == 1;
            if (!have) {
                shl__copy_field(info.operation_id, lop->id,
                                sizeof(info.operation_id));
                info.failed_at_us = shl__wall_us();
                snprintf(info.reason, sizeof(info.reason),
                         "Participant %s was declared crashed (fenced)",
                         l->id);
            }
            for (size_t i = 0; i < k; i++)
                if (ss[i]->lop == lop)
                    shl__session_deliver_failure(ss[i], &info);
            if (st == SHL_OP_CLEANUP && !fenced)
                (void)coordinate(l, lop);
        }
    }
    /* drop watches of peers no longer seen */
    for (size_t i = 0; i < l->watch_count;)
        if (!l->watches[i].seen)
            unwatch(l, i);
        else
            i++;

    /* heartbeat ticks */
    for (size_t i = 0; i < k; i++)
        if (due[i] && !fenced)
            session_tick(ss[i]);

    /* unpin; free sessions left meanwhile */
    pthread_mutex_lock(&l->mu);
    shl_op *to_free[64];
    size_t nfree = 0;
    for (size_t i = 0; i < k; i++) {
        ss[i]->busy--;
        if (ss[i]->busy == 0 && ss[i]->free_pending && nfree < 64)
            to_free[nfree++] = ss[i];
    }
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < nfree; i++)
        shl__session_free(to_free[i]);
    free(ss);
    free(lops);
    free(due);
}

static void *
futex_main(void *arg)
{
    shl_ledger *l = arg;
    _Atomic uint32_t *ep = &l->seg.hdr->epoch;
    uint32_t seen = atomic_load(ep);
    _Atomic uint32_t *waiters = &l->seg.hdr->epoch_waiters;
    while (!atomic_load(&l->mon_stop)) {
        struct timespec ts = {1, 0};
        atomic_fetch_add(waiters, 1); /* seq_cst: see shl__epoch_bump */
        syscall(SYS_futex, (uint32_t *)ep, FUTEX_WAIT, seen, &ts, NULL, 0);
        atomic_fetch_sub(waiters, 1);
        uint32_t cur = atomic_load(ep);
        if (cur != seen) {
            seen = cur;
            efd_signal(l->mon_epoch_efd);
        }
    }
    return NULL;
}

static int64_t
next_timeout_ms(shl_ledger *l)
{
    int64_t now = shl__mono_ns();
    int64_t t = MAX_PASS_SLEEP_MS;
    int64_t stale_check = l->opts.stale_threshold_ms / 4;
    if (stale_check < t)
        t = stale_check > 1 ? stale_check : 1;
    pthread_mutex_lock(&l->mu);
    for (struct shl__lop *lop = l->lops; lop; lop = lop->next)
        for (shl_op *op = lop->sessions; op; op = op->next_session)
            if (op->hb_enabled) {
                int64_t d = (op->hb_next_ns - now) / 1000000;
                if (d < t)
                    t = d;
            }
    pthread_mutex_unlock(&l->mu);
    return t < 0 ? 0 : t;
}

static void *
monitor_main(void *arg)
{
    shl_ledger *l = arg;
    struct epoll_event evs[16];
    shl__busy_enter();
    monitor_pass(l);
    shl__busy_leave();
    while (!atomic_load(&l->mon_stop)) {
        int n = epoll_wait(l->mon_epfd, evs, 16, (int)next_timeout_ms(l));
        if (atomic_load(&l->mon_stop))
            break;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == 1)
                efd_drain(l->mon_wake_efd);
            else if (tag == 2)
                efd_drain(l->mon_epoch_efd);
            else {
                /* a watched peer exited: forget its pidfd; the pass decides
                 * (the kernel dropped its lock before the pidfd fired) */
                int fd = (int)(tag - 16);
                for (size_t w = 0; w < l->watch_count; w++)
                    if (l->watches[w].pidfd == fd) {
                        unwatch(l, w);
                        break;
                    }
            }
        }
        shl__busy_enter();
        monitor_pass(l);
        shl__busy_leave();
    }
    return NULL;
}

int
shl__monitor_ensure(shl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->mon_running) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    int rc = 0;
    l->mon_epfd = epoll_create1(EPOLL_CLOEXEC);
    l->mon_wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->mon_epoch_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->mon_epfd < 0 || l->mon_wake_efd < 0 || l->mon_epoch_efd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u64 = 1;
    epoll_ctl(l->mon_epfd, EPOLL_CTL_ADD, l->mon_wake_efd, &ev);
    ev.data.u64 = 2;
    epoll_ctl(l->mon_epfd, EPOLL_CTL_ADD, l->mon_epoch_efd, &ev);
    atomic_store(&l->mon_stop, false);
    shl__fork_guard_init();
    /* the threads never run user signal handlers */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e1 = pthread_create(&l->futex_thread, NULL, futex_main, l);
    int e2 = e1 ? e1 : pthread_create(&l->mon_thread, NULL, monitor_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e1 || e2) {
        if (!e1) {
            atomic_store(&l->mon_stop, true);
            pthread_join(l->futex_thread, NULL);
        }
        rc = -(e1 ? e1 : e2);
        goto fail;
    }
    l->mon_running = true;
    pthread_mutex_unlock(&l->mu);
    return 0;
fail:
    if (l->mon_epfd >= 0)
        close(l->mon_epfd);
    if (l->mon_wake_efd >= 0)
        close(l->mon_wake_efd);
    if (l->mon_epoch_efd >= 0)
        close(l->mon_epoch_efd);
    l->mon_epfd = l->mon_wake_efd = l->mon_epoch_efd = -1;
    pthread_mutex_unlock(&l->mu);
    return SHL_SET_ERR(rc, "cannot start the monitor: %s", strerror(-rc));
}

void
shl__monitor_wake(shl_ledger *l)
{
    if (l->mon_wake_efd >= 0)
        efd_signal(l->mon_wake_efd);
}

void
shl__monitor_stop(shl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    bool running = l->mon_running;
    l->mon_running = false;
    pthread_mutex_unlock(&l->mu);
    if (!running)
        return;
    atomic_store(&l->mon_stop, true);
    efd_signal(l->mon_wake_efd);
    pthread_join(l->mon_thread, NULL);
    /* wake the futex thread without changing the epoch (a spurious wake
     * for other waiters, who re-check and sleep again); repeat until it has
     * seen the stop flag, since it may enter FUTEX_WAIT after one wake */
    for (;;) {
        syscall(SYS_futex, (uint32_t *)&l->seg.hdr->epoch, FUTEX_WAKE,
                INT32_MAX, NULL, NULL, 0);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* timedjoin: absolute, REALTIME */
        ts.tv_nsec += 2000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_timedjoin_np(l->futex_thread, NULL, &ts) == 0)
            break;
    }
    while (l->watch_count)
        unwatch(l, 0);
    free(l->watches);
    l->watches = NULL;
    l->watch_cap = 0;
    close(l->mon_epfd);
    close(l->mon_wake_efd);
    close(l->mon_epoch_efd);
    l->mon_epfd = l->mon_wake_efd = l->mon_epoch_efd = -1;
}
