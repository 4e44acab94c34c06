/*
 * monitor.c: the monitor thread of a ledger: heartbeats, proof of death,
 * staleness, the crash-cleanup protocol, abort and failure delivery.
 *
 * Threads. Each ledger with at least one session runs two threads:
 *  - the futex thread sleeps on two shared futex words at once
 *    (futex_waitv): the segment's `epoch` and its own participant's
 *    membership doorbell (`bell`, rung by whoever joins or leaves an
 *    operation we are in), and turns a change into flags (mon_flags) and a
 *    write on an eventfd;
 *  - the monitor thread waits in epoll on that eventfd, a control eventfd,
 *    and the pidfds of the peer processes of its operations, with a timeout
 *    that is the next heartbeat tick. An epoch change, a pidfd, the control
 *    eventfd or the timeout run a full pass; a doorbell alone runs a
 *    membership pass: re-read the members of our operations and watch the
 *    new peers' pidfds (and drop the watches of those who left).
 * So an abort or a state change reaches every participant within
 * milliseconds (futex wake), and so does a death (pidfd readable), whatever
 * the heartbeat interval, from the first instant of a participant's
 * membership.
 *
 * What a pass does, and where it lives: reap the dead (crash/reaper.c);
 * for each operation we are in, watch its peers' pidfds and declare stale
 * ones crashed (crash/protocol.c), deliver the abort and a failure to our
 * sessions (session/deliver.c), run our self-cleanup (session/cleanup.c)
 * and, as coordinator, the removal (crash/protocol.c); then the heartbeat
 * ticks that are due (session/heartbeat.c). A pidfd (opened and then
 * verified against the start time recorded in the slot, so a reused pid is
 * never watched by mistake) only tells us *when* to look; the liveness
 * lock decides.
 */
#include "process/monitor.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crash/protocol.h"
#include "crash/reaper.h"
#include "internal.h"
#include "session/cleanup.h"
#include "session/deliver.h"
#include "session/heartbeat.h"
#include "session/opstate.h"
#include "session/session.h"
#include "shm/records.h"
#include "shm/segment.h"

#define MAX_PASS_SLEEP_MS 1000

/* Hop tracing for measurements (off unless built with -DSHL_HOP_TRACE):
 * one stderr line per hop, "hop <pid> <what> <CLOCK_MONOTONIC ns>", from
 * which the time of each hop (futex thread woken, monitor woken, pass
 * start, delivery, pass end) is computed against the cause's time. */
#ifdef SHL_HOP_TRACE
#define HOP(what)                                                              \
    fprintf(stderr, "hop %d %s %lld\n", (int)getpid(), what,                  \
            (long long)shl__mono_ns())
#else
#define HOP(what) ((void)0)
#endif

/* ------------------------------------------------------------------------ */
/* the monitor threads                                                       */
/* ------------------------------------------------------------------------ */

/* Watch a peer's pidfd. 0: watched already, 1: watch added, 2: no watch
 * needed (same process), -1: no pidfd (gone, another namespace, reused
 * pid, no memory): the caller re-checks the lock. */
static int
watch_peer(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    for (size_t i = 0; i < l->watch_count; i++)
        if (l->watches[i].slot == slot && l->watches[i].gen == gen) {
            l->watches[i].seen = true;
            return 0;
        }
    struct shl__part *p = shl__part_at(&l->seg, slot);
    int pid = p->pid;
    uint64_t start = p->start_time;
    if (pid <= 0)
        return -1;
    if (pid == shl__part_at(&l->seg, l->slot)->pid)
        return 2; /* it dies with us */
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1; /* another namespace, or gone: the lock check covers it */
    /* verify it is the same process (pid reuse): start time after open */
    if (start && shl__proc_start_time(pid) != start) {
        close(fd);
        return -1;
    }
    if (l->watch_count == l->watch_cap) {
        size_t nc = l->watch_cap ? l->watch_cap * 2 : 8;
        void *q = realloc(l->watches, nc * sizeof(*l->watches));
        if (!q) {
            close(fd);
            return -1;
        }
        l->watches = q;
        l->watch_cap = nc;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u64 = (uint64_t)fd + 16;
    if (epoll_ctl(l->mon_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    l->watches[l->watch_count++] =
        (struct shl__watch){.slot = slot, .gen = gen, .pidfd = fd, .seen = true};
    if (slot < SHL__MAX_PARTICIPANTS)
        atomic_fetch_or(&l->watched[slot / 64], 1ull << (slot % 64));
    return 1;
}

static bool
is_dying(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    for (uint32_t i = 0; i < l->mon_dying_n; i++)
        if (l->mon_dying[i].slot == slot && l->mon_dying[i].gen == gen)
            return true;
    return false;
}

/* A watched peer's pidfd fired: it exited. Its lock decides; if the pass
 * finds it still held, we look again soon rather than re-watching a pidfd
 * that stays readable (a busy loop) or waiting for the periodic pass. */
static void
note_dying(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    if (is_dying(l, slot, gen) || l->mon_dying_n == SHL__ARRAY_LEN(l->mon_dying))
        return;
    l->mon_dying[l->mon_dying_n].slot = slot;
    l->mon_dying[l->mon_dying_n].gen = gen;
    l->mon_dying[l->mon_dying_n++].since_ns = shl__mono_ns();
    l->mon_dying_backoff_ms = 1;
}

/* The next look at a dying peer's lock: 1, 2, then every 4 ms for its
 * first second (the lock goes when the last of its threads has run its
 * exit, which on a busy machine waits for a CPU), then every 64 ms. */
static int
dying_backoff(shl_ledger *l)
{
    int64_t oldest = l->mon_dying[0].since_ns;
    for (uint32_t i = 1; i < l->mon_dying_n; i++)
        if (l->mon_dying[i].since_ns < oldest)
            oldest = l->mon_dying[i].since_ns;
    if (shl__mono_ns() - oldest > 1000000000)
        return 64;
    return l->mon_dying_backoff_ms < 4 ? l->mon_dying_backoff_ms * 2 : 4;
}

/* After a pass: forget the dying peers the reaper freed (slot freed or
 * reused), and those that kept their lock for 5 s (then the periodic pass
 * looks, as for any peer). */
static void
prune_dying(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    int64_t now = shl__mono_ns();
    for (uint32_t i = 0; i < l->mon_dying_n;) {
        struct shl__part *p = shl__part_at(s, l->mon_dying[i].slot);
        uint32_t st = atomic_load(&p->h.state);
        bool gone = (st != SHL__R_ALLOCATED && st != SHL__R_STARTING) ||
                    atomic_load(&p->h.gen) != l->mon_dying[i].gen ||
                    now - l->mon_dying[i].since_ns > 5 * (int64_t)1000000000;
        if (gone)
            l->mon_dying[i] = l->mon_dying[--l->mon_dying_n];
        else
            i++;
    }
}

/* After watch_peer: a new watch, or none, leaves a window in which the peer
 * may have died unseen (before its pidfd was opened, or reaped already):
 * look at the lock once more, and if it is gone run a full pass at once. */
static void
watch_checked(shl_ledger *l, uint32_t slot, uint64_t gen)
{
    if (is_dying(l, slot, gen))
        return; /* exited: its pidfd has nothing more to say */
    int w = watch_peer(l, slot, gen);
    if ((w == 1 || w == -1) && !shl__slot_alive(l, slot, gen))
        l->mon_rerun = true;
}

static void
unwatch(shl_ledger *l, size_t i)
{
    uint32_t slot = l->watches[i].slot;
    if (slot < SHL__MAX_PARTICIPANTS)
        atomic_fetch_and(&l->watched[slot / 64], ~(1ull << (slot % 64)));
    epoll_ctl(l->mon_epfd, EPOLL_CTL_DEL, l->watches[i].pidfd, NULL);
    close(l->watches[i].pidfd);
    l->watches[i] = l->watches[--l->watch_count];
}

/* Report a stale peer to the operation's sessions as heartbeatStale, once
 * per (peer, generation) while it stays stale or fenced. */
static void
report_stale(shl_ledger *l, struct shl__lop *lop, shl_op **ss, size_t k,
             const uint32_t *slots, const uint64_t *gens, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        bool told = false;
        for (uint32_t j = 0; j < lop->stale_told_n && !told; j++)
            told = lop->stale_told[j].slot == slots[i] &&
                   lop->stale_told[j].gen == gens[i];
        if (told)
            continue;
        char id[SHL_PARTICIPANT_ID_MAX + 1];
        shl__copy_field(id, shl__part_at(&l->seg, slots[i])->id, sizeof(id));
        for (size_t x = 0; x < k; x++)
            if (ss[x]->lop == lop)
                shl__hb_error(ss[x], SHL_HB_HEARTBEAT_STALE, 0,
                              "Stale heartbeat detected from: %s", id);
    }
    uint32_t m = n < SHL__ARRAY_LEN(lop->stale_told)
                     ? n
                     : (uint32_t)SHL__ARRAY_LEN(lop->stale_told);
    for (uint32_t i = 0; i < m; i++) {
        lop->stale_told[i].slot = slots[i];
        lop->stale_told[i].gen = gens[i];
    }
    lop->stale_told_n = m;
}

/* Peers of an operation: its members (excluding us). Watches their pidfds,
 * declares the stale ones crashed and reports them (heartbeatStale). */
static int
lop_peers(shl_ledger *l, struct shl__lop *lop, int64_t now, shl_op **ss,
          size_t k)
{
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__lop_record(lop);
    int err = 0;
    uint32_t stale[SHL__ARRAY_LEN(lop->stale_told)];
    uint64_t stale_gen[SHL__ARRAY_LEN(lop->stale_told)];
    uint32_t nstale = 0;
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
            if (!shl__slot_alive(l, slot, g))
                continue; /* the reaper handles the dead */
            watch_checked(l, slot, g);
            bool is_stale = shl__slot_stale(l, slot, now);
            bool fenced = atomic_load(&p->fenced) != 0;
            if ((is_stale || fenced) && nstale < SHL__ARRAY_LEN(stale)) {
                stale[nstale] = slot;
                stale_gen[nstale++] = g;
            }
            if (is_stale && !fenced) {
                int rc = shl__crash_op(l, lop->op_idx, lop->op_gen, slot, g,
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
    report_stale(l, lop, ss, k, stale, stale_gen, nstale);
    return err;
}

/* A membership pass (our doorbell rang, or we joined): watch the new peers
 * of the operations we have sessions in. No heartbeat, reaping or delivery:
 * if a new peer is dead already, it asks for a full pass (mon_rerun). The
 * watches of peers that left stay until the next full pass drops them: a
 * watch on a process that left costs nothing but a spurious pass if it
 * dies, and keeping it makes a leave free for everyone else. */
static void
members_pass(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    uint32_t idx[64];
    uint64_t gen[64];
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    for (struct shl__lop *lop = l->lops; lop; lop = lop->next)
        if (lop->sessions) {
            if (n == SHL__ARRAY_LEN(idx)) {
                l->mon_rerun = true; /* many operations: a full pass */
                break;
            }
            idx[n] = lop->op_idx;
            gen[n++] = lop->op_gen;
        }
    pthread_mutex_unlock(&l->mu);
    if (l->mon_rerun)
        return;
    uint32_t pcap = s->hdr->cap[SHL__T_PART];
    for (size_t j = 0; j < n; j++) {
        struct shl__op *r = shl__op_at(s, idx[j]);
        if (atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&r->h.gen) != gen[j])
            continue;
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
                watch_checked(l, slot, g);
            }
        }
    }
}

static void unpin_sessions(shl_ledger *l, shl_op **ss, size_t k);

/* The structure lock could not be taken for crash handling: lockFailed
 * (the original never emitted it; a lock failure looked like a missing
 * file there). */
static void
report_lock_failure(shl_op **ss, size_t k, struct shl__lop *lop, int rc)
{
    for (size_t i = 0; i < k; i++)
        if (!lop || ss[i]->lop == lop)
            shl__hb_error(ss[i], rc == SHL_EPANIC ? SHL_HB_IO_ERROR
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
    HOP("pass_start");
    int reap_rc = shl__reap(l);
    HOP("reaped");
    if (reap_rc < 0)
        report_lock_failure(ss, k, NULL, reap_rc);

    for (size_t j = 0; j < nl; j++) {
        struct shl__lop *lop = lops[j];
        struct shl__op *r = shl__lop_record(lop);
        if (!r)
            continue;
        if (!fenced) {
            int prc = lop_peers(l, lop, now, ss, k);
            if (prc < 0)
                report_lock_failure(ss, k, lop, prc);
        }
        uint32_t st = atomic_load(&r->op_state);
        if (atomic_load(&r->aborted))
            for (size_t i = 0; i < k; i++)
                if (ss[i]->lop == lop && !atomic_load(&ss[i]->abort_fired)) {
                    HOP("deliver_abort");
                    shl__session_deliver_abort(ss[i]);
                }
        if (st == SHL_OP_CLEANUP || st == SHL_OP_FAILED || fenced) {
            if (!fenced)
                shl__session_self_cleanup(l, lop, ss, k);
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
            HOP("deliver_failure");
            for (size_t i = 0; i < k; i++)
                if (ss[i]->lop == lop)
                    shl__session_deliver_failure(ss[i], &info);
            if (st == SHL_OP_CLEANUP && !fenced)
                (void)shl__crash_coordinate(l, lop);
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
            shl__session_tick(ss[i]);

    /* unpin; free sessions left meanwhile */
    unpin_sessions(l, ss, k);
    free(ss);
    free(lops);
    free(due);
}

/* Unpin sessions pinned by a pass; free those left meanwhile. */
static void
unpin_sessions(shl_ledger *l, shl_op **ss, size_t k)
{
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
}

/* The futex thread's own hop for the abort: on an epoch change it delivers
 * the abort flag of our operations to their sessions itself, before it
 * wakes the monitor for the full pass (which finds them delivered: the
 * delivery fires once). The flag is one word per operation, so this saves
 * the eventfd, epoll and the pass's reaping and peer checks on the way to
 * on_abort and the waits. */
static void
deliver_aborts(shl_ledger *l)
{
    shl_op *ss[32];
    size_t k = 0;
    pthread_mutex_lock(&l->mu);
    for (struct shl__lop *lop = l->lops; lop && k < 32; lop = lop->next) {
        struct shl__op *r = shl__lop_record(lop);
        if (!r || !atomic_load(&r->aborted))
            continue;
        for (shl_op *op = lop->sessions; op && k < 32; op = op->next_session)
            if (!atomic_load(&op->abort_fired)) {
                op->busy++;
                ss[k++] = op;
            }
    }
    pthread_mutex_unlock(&l->mu);
    if (k == 0)
        return;
    HOP("deliver_abort");
    for (size_t i = 0; i < k; i++)
        shl__session_deliver_abort(ss[i]);
    unpin_sessions(l, ss, k);
}

/* After deliver_aborts: does this epoch change need the monitor's full
 * pass? Not when we are not fenced and every operation we have sessions in
 * is still running: then the pass would find nothing to deliver, clean up
 * or coordinate (an abort, or a crash contained by failOnCrash false), and
 * waking the monitors of every process of the segment for it takes the CPU
 * from the threads the abort is for. Deaths come through the pidfds, stale
 * peers and heartbeats through the periodic pass. */
static bool
epoch_needs_pass(shl_ledger *l)
{
    if (atomic_load(&shl__part_at(&l->seg, l->slot)->fenced))
        return true;
    bool need = false;
    pthread_mutex_lock(&l->mu);
    for (struct shl__lop *lop = l->lops; lop && !need; lop = lop->next) {
        if (!lop->sessions)
            continue;
        struct shl__op *r = shl__lop_record(lop);
        need = !r || atomic_load(&r->op_state) != SHL_OP_RUNNING;
    }
    pthread_mutex_unlock(&l->mu);
    return need;
}

/* Sleep on the epoch and our doorbell at once. futex_waitv (Linux 5.16)
 * returns at once if either word differs from what we saw; without it
 * (ENOSYS) the epoch alone, and the doorbell is read at every wake-up and
 * at least every 50 ms. */
static void
futex_wait2(shl_ledger *l, uint32_t seen_epoch, uint32_t seen_bell)
{
    static _Atomic int no_waitv;
    _Atomic uint32_t *ep = &l->seg.hdr->epoch;
    _Atomic uint32_t *bell = &shl__part_at(&l->seg, l->slot)->bell;
    if (!atomic_load_explicit(&no_waitv, memory_order_relaxed)) {
        struct futex_waitv w[2];
        memset(w, 0, sizeof(w));
        w[0].val = seen_epoch;
        w[0].uaddr = (uint64_t)(uintptr_t)ep;
        w[0].flags = FUTEX_32; /* shared: no FUTEX_PRIVATE_FLAG */
        w[1].val = seen_bell;
        w[1].uaddr = (uint64_t)(uintptr_t)bell;
        w[1].flags = FUTEX_32;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        long rc = syscall(SYS_futex_waitv, w, 2, 0, &ts, CLOCK_MONOTONIC);
        if (rc >= 0 || errno != ENOSYS)
            return;
        atomic_store(&no_waitv, 1);
    }
    struct timespec rel = {0, 50 * 1000000};
    syscall(SYS_futex, (uint32_t *)ep, FUTEX_WAIT, seen_epoch, &rel, NULL, 0);
}

static void *
futex_main(void *arg)
{
    shl_ledger *l = arg;
    _Atomic uint32_t *ep = &l->seg.hdr->epoch;
    struct shl__part *me = shl__part_at(&l->seg, l->slot);
    /* read before either thread started (shl__monitor_ensure): a change
     * between then and our first wait must wake us, since the monitor's
     * first pass may have run before it */
    uint32_t seen = l->mon_seen_epoch;
    uint32_t seen_bell = l->mon_seen_bell;
    _Atomic uint32_t *waiters = &l->seg.hdr->epoch_waiters;
    while (!atomic_load(&l->mon_stop)) {
        /* seq_cst increments: see shl__epoch_bump and shl__part_ring */
        atomic_fetch_add(waiters, 1);
        atomic_fetch_add(&me->bell_waiters, 1);
        futex_wait2(l, seen, seen_bell);
        HOP("futex_woke");
        atomic_fetch_sub(&me->bell_waiters, 1);
        atomic_fetch_sub(waiters, 1);
        uint32_t flags = 0;
        uint32_t cur = atomic_load(ep);
        if (cur != seen) {
            seen = cur;
            flags |= SHL__MON_EPOCH;
        }
        uint32_t b = atomic_load(&me->bell);
        if (b != seen_bell) {
            seen_bell = b;
            flags |= SHL__MON_MEMBERS;
        }
        if (flags & SHL__MON_EPOCH) {
            shl__busy_enter();
            deliver_aborts(l);
            if (!epoch_needs_pass(l))
                flags &= ~SHL__MON_EPOCH;
            shl__busy_leave();
        }
        if (flags) {
            atomic_fetch_or(&l->mon_flags, flags);
            shl__efd_signal(l->mon_epoch_efd);
        }
    }
    return NULL;
}

void
shl__monitor_members_changed(shl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    bool running = l->mon_running;
    pthread_mutex_unlock(&l->mu);
    if (!running)
        return; /* its first pass will see everything */
    atomic_fetch_or(&l->mon_flags, SHL__MON_MEMBERS);
    shl__efd_signal(l->mon_epoch_efd);
}

static int64_t
next_timeout_ms(shl_ledger *l)
{
    int64_t now = shl__mono_ns();
    int64_t t = MAX_PASS_SLEEP_MS;
    int64_t stale_check = l->opts.stale_threshold_ms / 4;
    if (stale_check < t)
        t = stale_check > 1 ? stale_check : 1;
    if (l->mon_dying_n && l->mon_dying_backoff_ms < t)
        t = l->mon_dying_backoff_ms;
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
        int n = 0;
        if (!l->mon_rerun)
            n = epoll_wait(l->mon_epfd, evs, 16, (int)next_timeout_ms(l));
        if (atomic_load(&l->mon_stop))
            break;
        if (n > 0)
            HOP("epoll_woke");
        /* a full pass unless only the doorbell rang */
        bool full = n <= 0 || l->mon_rerun;
        l->mon_rerun = false;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == 1) {
                shl__efd_drain(l->mon_wake_efd);
                full = true;
            } else if (tag == 2) {
                shl__efd_drain(l->mon_epoch_efd);
            } else {
                /* a watched peer exited: forget its pidfd; the pass decides
                 * (the kernel dropped its lock before the pidfd fired) */
                full = true;
                int fd = (int)(tag - 16);
                for (size_t w = 0; w < l->watch_count; w++)
                    if (l->watches[w].pidfd == fd) {
                        note_dying(l, l->watches[w].slot, l->watches[w].gen);
                        unwatch(l, w);
                        break;
                    }
            }
        }
        uint32_t flags = atomic_exchange(&l->mon_flags, 0);
        if (flags & SHL__MON_EPOCH)
            full = true;
        shl__busy_enter();
        if (full) {
            monitor_pass(l);
            prune_dying(l);
            if (n <= 0 && l->mon_dying_n)
                l->mon_dying_backoff_ms = dying_backoff(l);
        } else if (flags & SHL__MON_MEMBERS) {
            members_pass(l);
        }
        HOP("pass_end");
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
    atomic_store(&l->mon_flags, 0);
    l->mon_rerun = false;
    l->mon_dying_n = 0;
    l->mon_seen_epoch = atomic_load(&l->seg.hdr->epoch);
    l->mon_seen_bell = atomic_load(&shl__part_at(&l->seg, l->slot)->bell);
    shl__fork_guard_init();
    /* the threads never run user signal handlers */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e1 = shl__thread_start(&l->futex_thread, futex_main, l);
    int e2 = e1 ? e1 : shl__thread_start(&l->mon_thread, monitor_main, l);
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
shl__monitor_stop(shl_ledger *l)
{
    pthread_mutex_lock(&l->mu);
    bool running = l->mon_running;
    l->mon_running = false;
    pthread_mutex_unlock(&l->mu);
    if (!running)
        return;
    atomic_store(&l->mon_stop, true);
    shl__efd_signal(l->mon_wake_efd);
    pthread_join(l->mon_thread, NULL);
    /* wake the futex thread without changing the epoch (a spurious wake
     * for other waiters, who re-check and sleep again); repeat until it has
     * seen the stop flag, since it may enter FUTEX_WAIT after one wake */
    for (;;) {
        syscall(SYS_futex, (uint32_t *)&l->seg.hdr->epoch, FUTEX_WAKE,
                INT32_MAX, NULL, NULL, 0);
        /* timedjoin takes an absolute CLOCK_REALTIME time */
        struct timespec ts = shl__deadline(CLOCK_REALTIME, 2);
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
