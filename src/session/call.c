/*
 * call.c: calls (startCall, end, fail).
 *
 * The hot path takes no structure lock: a frame is claimed with a CAS on its
 * record state, filled under its seqlock and published; it is removed by a
 * CAS of its (generation, state) word to GONE, whose winner frees the
 * record. complete() and crash cleanup use the same CAS, so a frame is freed
 * exactly once whoever gets there first, and an actor holding an old
 * generation can never touch a reused record.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "files/log.h"
#include "session/call.h"
#include "session/callref.h"
#include "session/deliver.h"
#include "session/opstate.h"
#include "session/sync.h"
#include "shm/frame.h"
#include "shm/records.h"
#include "shm/table.h"

/* Per-thread state of the call path, one TLS block (one TLS look-up per
 * function in a shared library):
 *   rng   xorshift64 state of the id's 4 hex digits (0 = not seeded yet);
 *   hint  frame-claim hint + 1 (0 = not set yet): threads sharing a ledger
 *         would otherwise collide on the same candidate records; the
 *         record this thread freed last is the one it claims next. */
struct call_tls {
    uint64_t rng;
    uint32_t hint;
};
static _Thread_local struct call_tls tls;

static uint32_t
rand16(struct call_tls *t)
{
    uint64_t x = t->rng;
    if (x == 0)
        x = ((uint64_t)arc4random() << 32) | arc4random() | 1;
    x ^= x << 13; /* xorshift64 */
    x ^= x >> 7;
    x ^= x << 17;
    t->rng = x;
    return (uint32_t)(x >> 32) & 0xffffu;
}

/* "call_<participant>_<n>_<4 hex>" without snprintf (it was most of the
 * call pair's instructions). The participant id is at most 63 bytes, so the
 * result always fits SHL_CALL_ID_MAX. Returns its length. */
static size_t
make_call_id(char *out, const char *participant, size_t pl, uint64_t n,
             uint32_t r16)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    memcpy(p, "call_", 5);
    p += 5;
    memcpy(p, participant, pl);
    p += pl;
    *p++ = '_';
    char digits[20]; /* 2^64 has 20 digits */
    char *e = digits + sizeof(digits), *d = e;
    do {
        *--d = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    memcpy(p, d, (size_t)(e - d));
    p += e - d;
    *p++ = '_';
    for (int i = 3; i >= 0; i--)
        *p++ = hex[(r16 >> (i * 4)) & 15];
    *p = 0;
    return (size_t)(p - out);
}

_Static_assert(sizeof(((struct shl__frame *)0)->participant_id) ==
                   sizeof(((shl_ledger *)0)->id),
               "participant id fields");
_Static_assert(sizeof(((struct shl__frame *)0)->call_id) ==
                   SHL_CALL_ID_MAX + 1,
               "call id field");

void
shl_call_opts_init(shl_call_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->fail_on_crash = true;
}

int
shl_call_start(shl_op *op, const shl_call_opts *o, shl_call **out)
{
    shl__clear_err();
    if (!op || !out)
        return SHL_SET_ERR(-EINVAL, "shl_call_start: NULL argument");
    shl_call_opts def;
    if (!o) {
        shl_call_opts_init(&def);
        o = &def;
    }
    size_t dlen = o->description ? strlen(o->description) : 0;
    if (dlen > SHL_DESCRIPTION_MAX)
        return SHL_SET_ERR(-ENAMETOOLONG, "description longer than %d bytes",
                           SHL_DESCRIPTION_MAX);
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    struct shl__seg *s = &l->seg;
    struct shl__op *r = shl__lop_record(lop);
    if (!r)
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    /* fenced first: a participant that was declared crashed learns that,
     * whatever became of the operation since (it failed because of it) */
    if (atomic_load_explicit(&shl__part_at(s, l->slot)->fenced,
                             memory_order_acquire))
        return SHL_SET_ERR(SHL_EFENCED, "participant %s was declared crashed",
                           l->id);
    uint32_t st = atomic_load_explicit(&r->op_state, memory_order_acquire);
    if (st != SHL_OP_RUNNING)
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s", lop->id,
                           shl_op_state_name((shl_op_state)st));
    if (atomic_load(&op->aborted))
        return SHL_SET_ERR(SHL_ESTATE, "session %llu of %s is aborted",
                           (unsigned long long)op->session_id, lop->id);

    /* The id and the times first, on the stack: the call object is taken
     * (a spare of the session, or a new one) in the same critical section
     * that links it, so the call path takes op->mu once per start and
     * allocates nothing in steady state. */
    size_t plen = strlen(l->id);
    struct call_tls *t = &tls;
    __asm__("" : "+r"(t)); /* one TLS look-up: keep t, do not recompute */
    uint64_t n = atomic_fetch_add_explicit(&lop->call_counter, 1,
                                           memory_order_relaxed) + 1;
    /* zero-padded, so the frame's fixed fields are copied whole */
    char id[SHL_CALL_ID_MAX + 1] = {0};
    size_t idlen = make_call_id(id, l->id, plen, n, rand16(t));
    int64_t started_at_us = shl__wall_us();
    int64_t started_mono_ns = shl__mono_ns();

    uint32_t idx;
    uint64_t gen;
    uint32_t hint = t->hint ? t->hint - 1
                             : atomic_fetch_add_explicit(&l->frame_hint, 64,
                                                         memory_order_relaxed);
    int rc = shl__rec_claim(s, SHL__T_FRAME, hint, l->slot, l->slot_gen, &idx,
                            &gen);
    if (rc)
        return rc;
    struct shl__frame *f = shl__frame_at(s, idx);
    shl__frame_activate(f, gen);
    f->fail_on_crash = o->fail_on_crash;
    /* readers pre-filter frames on this word without the seqlock (and
     * re-check on their copy): an atomic store, a plain mov on x86 */
    __atomic_store_n(&f->op_idx, lop->op_idx, __ATOMIC_RELAXED);
    f->op_gen = lop->op_gen;
    f->part_slot = l->slot;
    f->part_gen = l->slot_gen;
    f->start_wall_us = started_at_us;
    f->session_id = op->session_id;
    f->pid = l->recorded_pid;
    f->has_description = o->description != NULL;
    memcpy(f->call_id, id, sizeof(f->call_id));
    /* l->id is zero-padded too (the ledger is calloc'd) */
    memcpy(f->participant_id, l->id, sizeof(f->participant_id));
    if (dlen)
        memcpy(f->description, o->description, dlen);
    f->description[dlen] = 0;
    shl__rec_publish(&f->h);
    shl__op_touch_at(r, started_mono_ns); /* change_count, lastHeartbeat */

    pthread_mutex_lock(&op->mu);
    struct shl_call *c = shl__call_take_spare_locked(op); /* pins == 0 */
    if (!c) {
        c = malloc(sizeof(*c));
        if (!c) {
            pthread_mutex_unlock(&op->mu);
            /* never seen by the session: take the frame back */
            (void)shl__frame_retire(s, f, gen, SHL_FRAME_ACTIVE);
            shl__op_touch(r);
            return -ENOMEM;
        }
    }
    c->op = op;
    memcpy(c->id, id, idlen + 1);
    if (o->description) { /* "" is a description, as for operations */
        memcpy(c->desc_buf, o->description, dlen);
        c->desc_buf[dlen] = 0;
        c->description = c->desc_buf;
    } else {
        c->description = NULL;
    }
    c->frame_idx = idx;
    c->frame_gen = gen;
    c->started_at_us = started_at_us;
    c->started_mono_ns = started_mono_ns;
    c->fail_on_crash = o->fail_on_crash;
    c->cb = o->callbacks;
    atomic_store_explicit(&c->done, 0, memory_order_relaxed);
    atomic_store_explicit(&c->cleanup_ran, false, memory_order_relaxed);
    c->spawned = NULL;
    c->pins = 0;
    c->released = false;
    c->next = NULL;
    c->prev = op->calls_tail;
    if (op->calls_tail)
        op->calls_tail->next = c;
    else
        op->calls_head = c;
    op->calls_tail = c;
    pthread_mutex_unlock(&op->mu);
    shl__log_call_started(l, lop->id, c->id);
    shl__op_sync(op);
    *out = c;
    return 0;
}

/* Remove the call's frame. The one rule for a frame that is no longer
 * ours to remove:
 *   0            it was still ours (active, or cleaned up by our own
 *                monitor), or the failure cleanup of the operation released
 *                it while this participant was live and never declared
 *                crashed (a survivor): the call did end;
 *   SHL_EFAILED  this participant was declared crashed (fenced): the frame
 *                was taken as crashed and the operation failed;
 *   SHL_ESTATE   the operation ended without the call (complete()
 *                released its frame), or its record is gone.
 * Only 0 logs the call's line. */
static int
remove_frame(struct shl_call *c, int64_t now_ns)
{
    shl_ledger *l = c->op->lop->l;
    struct shl__seg *s = &l->seg;
    struct shl__frame *f = shl__frame_at(s, c->frame_idx);
    if (shl__frame_retire(s, f, c->frame_gen, SHL_FRAME_ACTIVE)) {
        tls.hint = c->frame_idx + 1; /* reuse our own hot record */
        struct shl__op *r = shl__lop_record(c->op->lop);
        if (r)
            shl__op_touch_at(r, now_ns);
        return 0;
    }
    /* Our own monitor marked the frame cleanedUp (or cleaningUp, as the
     * coordinator) when the operation failed: the owner still removes it. */
    for (uint32_t mine = SHL_FRAME_CLEANING_UP; mine <= SHL_FRAME_CLEANED_UP;
         mine++)
        if (shl__frame_retire(s, f, c->frame_gen, mine))
            return 0;
    if (atomic_load_explicit(&shl__part_at(s, l->slot)->fenced,
                             memory_order_acquire))
        return SHL_SET_ERR(SHL_EFAILED,
                           "call %s: this participant was declared crashed "
                           "and the operation failed",
                           c->id);
    struct shl__op *r = shl__lop_record(c->op->lop);
    uint32_t st = r ? atomic_load(&r->op_state) : SHL_OP_COMPLETED;
    if (st == SHL_OP_CLEANUP || st == SHL_OP_FAILED)
        return 0; /* a survivor: the failure cleanup took the frame */
    return SHL_SET_ERR(SHL_ESTATE,
                       "call %s: the operation ended without it (its frame "
                       "was released)",
                       c->id);
}

/* *now_ns: when the call ended (monotonic), for its duration. */
static int
finish(struct shl_call *c, int how, bool *already, int64_t *now_ns)
{
    int expect = 0;
    *already = false;
    if (!atomic_compare_exchange_strong(&c->done, &expect, how)) {
        *already = true;
        return SHL_SET_ERR(SHL_ESTATE, "Call %s has already been completed",
                           c->id);
    }
    *now_ns = shl__mono_ns();
    return remove_frame(c, *now_ns);
}

int
shl__call_end_ex(struct shl_call *c, bool *already)
{
    int64_t now = 0;
    int rc = finish(c, 1, already, &now);
    if (*already) /* ended, failed or cancelled before */
        return rc;
    if (rc == 0)
        shl__log_call_ended(c->op->lop->l, c->op->lop->id, c->id,
                            (now - c->started_mono_ns) / 1000000);
    return rc;
}

int
shl_call_end(shl_call *c, void *result)
{
    shl__clear_err();
    if (!c)
        return SHL_SET_ERR(-EINVAL, "shl_call_end: NULL call");
    bool already;
    int rc = shl__call_end_ex(c, &already);
    if (already)
        return rc;
    if (rc == 0)
        shl__op_sync(c->op); /* sync_files: the line is in the file */
    if (rc == 0 && result && c->cb.on_completion)
        c->cb.on_completion(c, result, c->cb.user);
    return rc;
}

/* A detail text (a stack trace) as one log line: newlines become " | ". */
static void
log_detail(struct shl_call *c, const char *detail)
{
    size_t n = strlen(detail);
    char *flat = malloc(n * 3 + 1);
    if (!flat)
        return;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (detail[i] == '\n') {
            memcpy(flat + o, " | ", 3);
            o += 3;
        } else if (detail[i] != '\r') {
            flat[o++] = detail[i];
        }
    }
    flat[o] = 0;
    shl__oplog(c->op->lop->l, c->op->lop->id, SHL_LOG_ERROR,
               "CALL_STACK_TRACE callId=%s message=%s", c->id, flat);
    free(flat);
}

static int
fail_impl(struct shl_call *c, const char *error, const char *detail,
          bool may_fail_op)
{
    bool already;
    int64_t now = 0;
    int rc = finish(c, 2, &already, &now);
    if (already)
        return rc;
    if (rc == 0) {
        shl__log_call_failed(c->op->lop->l, c->op->lop->id, c->id,
                             (now - c->started_mono_ns) / 1000000, error);
        if (detail && *detail)
            log_detail(c, detail);
    }
    bool ran = false;
    if (c->cb.on_cleanup &&
        atomic_compare_exchange_strong(&c->cleanup_ran, &ran, true))
        c->cb.on_cleanup(c, c->cb.user);
    if (rc == 0 && may_fail_op && c->fail_on_crash) {
        char reason[SHL_REASON_MAX + 1];
        snprintf(reason, sizeof(reason), "Call %s failed: %s", c->id,
                 error ? error : "unknown");
        int frc = shl__op_fail(c->op->lop, reason, c->id);
        if (frc == 0) {
            shl_op *op = c->op;
            shl_failed_info info;
            if (shl_op_failure_info(op, &info) == 1)
                shl__session_deliver_failure(op, &info);
        }
    }
    return rc;
}

int
shl_call_fail(shl_call *c, const char *error)
{
    return shl_call_fail_detail(c, error, NULL);
}

int
shl_call_fail_detail(shl_call *c, const char *error, const char *detail)
{
    shl__clear_err();
    if (!c)
        return SHL_SET_ERR(-EINVAL, "shl_call_fail: NULL call");
    int rc = fail_impl(c, error, detail, true);
    if (rc != SHL_ESTATE)
        shl__op_sync(c->op);
    return rc;
}

int
shl__call_cancel(struct shl_call *c)
{
    return fail_impl(c, "cancelled", NULL, false);
}

int
shl__call_fail_local(struct shl_call *c, const char *error)
{
    return shl__call_fail_local_detail(c, error, NULL);
}

int
shl__call_fail_local_detail(struct shl_call *c, const char *error,
                            const char *detail)
{
    int rc = fail_impl(c, error, detail, false);
    if (rc != SHL_ESTATE)
        shl__op_sync(c->op);
    return rc;
}

void
shl__call_orphan(struct shl_call *c)
{
    int expect = 0;
    atomic_compare_exchange_strong(&c->done, &expect, 2);
}

int
shl_call_release(shl_call *c)
{
    shl__clear_err();
    if (!c)
        return SHL_SET_ERR(-EINVAL, "NULL call");
    if (atomic_load(&c->done) == 0)
        return SHL_SET_ERR(SHL_ESTATE, "call %s is still pending", c->id);
    shl_op *op = c->op;
    pthread_mutex_lock(&op->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        op->calls_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        op->calls_tail = c->prev;
    /* kept for the session's next start, or freed (its handle is invalid
     * now); a delivery still holding it (a callback of this call is
     * running on another thread) keeps it until it is done (callref.c) */
    bool free_it = shl__call_retire_locked(op, c);
    pthread_mutex_unlock(&op->mu);
    if (free_it)
        shl__call_free(c);
    return 0;
}

const char *
shl_call_id(const shl_call *c)
{
    return c ? c->id : NULL;
}
const char *
shl_call_description(const shl_call *c)
{
    return c ? c->description : NULL;
}
int64_t
shl_call_started_at_us(const shl_call *c)
{
    return c ? c->started_at_us : 0;
}
bool
shl_call_is_completed(const shl_call *c)
{
    return c && atomic_load(&c->done) != 0;
}
bool
shl_call_fail_on_crash(const shl_call *c)
{
    return c && c->fail_on_crash;
}
