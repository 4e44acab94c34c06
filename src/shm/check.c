/*
 * check.c: the invariant checker (shl_reader_check). Lock-free, read-only:
 * indexes in range, references of ALLOCATED records valid, counts and the
 * id index matching the records, no sequence left odd by a dead writer,
 * event rings well formed, the poisoned flag, the mutex word. A pass runs
 * without the lock, so anything it finds is looked at again (up to 4
 * passes, 2 ms apart) and only what every pass finds is reported.
 *
 * Every index, count and string read from the segment is bounded: a
 * garbled segment yields violations, never a crash.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shm/reader.h"

#include "internal.h"
#include "objects.h"
#include "shm/index.h"
#include "shm/segment.h"
#include "shm/table.h"

struct report {
    shl_check_report *out;
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void
violation(struct report *rp, const char *fmt, ...)
{
    rp->out->violations++;
    size_t cap = sizeof(rp->out->text);
    if (rp->len + 2 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rp->out->text + rp->len, cap - rp->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    rp->len += (size_t)n;
    if (rp->len >= cap - 1)
        rp->len = cap - 2;
    rp->out->text[rp->len++] = '\n';
    rp->out->text[rp->len] = 0;
}

static bool
mutex_held(struct shl__hdr *h)
{
    /* glibc: __data.__lock is non-zero while the mutex is held */
    return __atomic_load_n(&h->mutex.__data.__lock, __ATOMIC_ACQUIRE) != 0;
}

/* The event rings' words and records (events.c, drain.c): garbage only.
 * A batch a dead drainer left in flight, records not drained yet and a
 * ring a dead producer still names are normal states the next drainer or
 * producer finishes, not violations. */
static void
check_rings(struct shl__seg *s, struct report *rp)
{
    struct shl__hdr *h = s->hdr;
    uint32_t phase = atomic_load(&h->ev_jphase);
    if (phase > SHL__J_DONE)
        violation(rp, "event journal: bad phase %u", phase);
    if (atomic_load(&h->ev_jn) > SHL__EV_JOURNAL)
        violation(rp, "event journal: %u entries, at most %u",
                  atomic_load(&h->ev_jn), SHL__EV_JOURNAL);
    uint64_t rb = h->ev_ring_bytes;
    for (uint32_t i = 0; i < h->ev_nrings && i < SHL__EV_RINGS_MAX; i++) {
        struct shl__evring *r =
            (struct shl__evring *)((char *)h + h->ev_off +
                                   (uint64_t)i * h->ev_ring_stride);
        uint64_t w = atomic_load(&r->owner);
        if (w && (!(w >> 63) ||
                  SHL__EVOWNER_SLOT(w) >= h->cap[SHL__T_PART]))
            violation(rp, "event ring %u: bad owner word %016llx", i,
                      (unsigned long long)w);
        /* tail, head, tail again: with the tail unchanged across the
         * head's load the pair is one the ring really had (a producer never
         * runs more than a ring ahead of the tail it sees) */
        uint64_t tail, head;
        int tries = 0;
        do {
            tail = atomic_load(&r->tail);
            head = atomic_load(&r->head);
        } while (atomic_load(&r->tail) != tail && ++tries < 64);
        if (tries == 64)
            continue; /* a drainer busy on it: live, not garbage */
        if (head < tail || head - tail > rb) {
            violation(rp, "event ring %u: head %llu and tail %llu "
                      "inconsistent", i, (unsigned long long)head,
                      (unsigned long long)tail);
            continue;
        }
        const char *data = (const char *)(r + 1);
        for (uint64_t pos = tail; pos < head;) {
            uint64_t off = pos & (rb - 1);
            struct shl__evhdr e;
            memcpy(&e, data + off, sizeof(e));
            /* a live drainer may have consumed these bytes since we read
             * the tail, and a producer may be writing over them: what we
             * read only counts while the tail is still at or before it */
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load(&r->tail) > pos)
                break;
            bool ok = e.size >= 8 && e.size % 8 == 0 && off + e.size <= rb &&
                      e.size <= head - pos;
            if (ok && e.kind == 0)
                ok = off + e.size == rb;
            else if (ok)
                ok = e.size >= sizeof(e) && e.kind <= 7 /* the last kind */ &&
                     e.level <= SHL_LOG_ERROR &&
                     e.idlen <= SHL_OPERATION_ID_MAX &&
                     sizeof(e) + (uint64_t)e.idlen + e.len_a + e.len_b <=
                         e.size;
            if (!ok) {
                violation(rp, "event ring %u: bad record at %llu", i,
                          (unsigned long long)pos);
                break;
            }
            pos += e.size;
        }
    }
}

static int
check_pass(shl_reader *r, shl_check_report *out)
{
    memset(out, 0, sizeof(*out));
    struct report rp = {.out = out};
    struct shl__seg *s = r->seg;
    if (shl__seg_check_size(s) != 0) {
        violation(&rp, "%s", shl_errmsg());
        return (int)out->violations;
    }
    struct shl__hdr *h = s->hdr;
    int vrc = shl__seg_validate(h, s->size, geteuid());
    if (vrc) {
        violation(&rp, "header: %s", shl_errmsg());
        return (int)out->violations;
    }
    if (atomic_load(&h->poisoned))
        violation(&rp, "segment is poisoned");
    if (shl__mutex_check(&h->mutex) != 0)
        violation(&rp, "%s", shl_errmsg());
    bool held = mutex_held(h);
    uint32_t kind = atomic_load(&h->intent.kind);
    if (kind != SHL__I_NONE && !held)
        violation(&rp,
                  "intent %u on table %u index %u left by a dead lock holder "
                  "(repaired by the next locker)",
                  kind, h->intent.table, h->intent.index);
    uint32_t counts[SHL__NTABLES] = {0};
    for (int t = 0; t < SHL__NTABLES; t++) {
        uint32_t hwv = atomic_load(&h->hwm[t]);
        if (hwv > h->cap[t])
            violation(&rp, "table %d high-water mark %u beyond capacity %u",
                      t, hwv, h->cap[t]);
        uint32_t hw = shl__table_hwm(s, t);
        for (uint32_t i = 0; i < hw; i++) {
            struct shl__rec *rec = shl__rec_at(s, t, i);
            out->records_checked++;
            uint32_t st = atomic_load(&rec->state);
            uint32_t seq = atomic_load(&rec->seq);
            if (st > SHL__R_RECLAIMED) {
                violation(&rp, "table %d record %u: bad state %u", t, i, st);
                continue;
            }
            if (st == SHL__R_ALLOCATED)
                counts[t]++;
            uint32_t owner = atomic_load(&rec->owner);
            if (st == SHL__R_ALLOCATED && owner != SHL__NO_SLOT &&
                owner >= h->cap[SHL__T_PART])
                violation(&rp, "table %d record %u: owner %u out of range",
                          t, i, owner);
            if (seq & 1u) {
                /* a frame's writer is its owner; a dead owner's frame that
                 * is still ALLOCATED (or STARTING) awaits the crash
                 * cleanup, which repairs the sequence with it: pending
                 * work, not a violation. Other tables are written under the
                 * structure mutex. */
                bool writer_alive =
                    t == SHL__T_FRAME
                        ? (owner < h->cap[SHL__T_PART] &&
                           (shl__reader_part_alive(r, owner) || st == SHL__R_ALLOCATED ||
                            st == SHL__R_STARTING))
                        : held;
                if (!writer_alive)
                    violation(&rp,
                              "table %d record %u: sequence %u left odd by a "
                              "dead writer",
                              t, i, seq);
            }
            if (st == SHL__R_STARTING && t != SHL__T_FRAME && !held)
                violation(&rp,
                          "table %d record %u: STARTING outside the lock", t,
                          i);
            if (st != SHL__R_ALLOCATED)
                continue;
            if (t == SHL__T_FRAME) {
                struct shl__frame *f = (struct shl__frame *)rec;
                uint64_t w = atomic_load(&f->fword);
                uint64_t g = atomic_load(&rec->gen);
                if (!SHL__FWORD_GEN_OK(w, g))
                    violation(&rp, "frame %u: state word generation differs",
                              i);
                else if (SHL__FWORD_STATE(w) > SHL_FRAME_CLEANED_UP &&
                         SHL__FWORD_STATE(w) != SHL__F_GONE)
                    violation(&rp, "frame %u: bad frame state %u", i,
                              SHL__FWORD_STATE(w));
                if (f->op_idx >= h->cap[SHL__T_OP]) {
                    violation(&rp, "frame %u: operation index %u out of range",
                              i, f->op_idx);
                } else {
                    struct shl__op *o = shl__op_at(s, f->op_idx);
                    if (SHL__FWORD_STATE(w) != SHL__F_GONE &&
                        (atomic_load(&o->h.gen) != f->op_gen ||
                         atomic_load(&o->h.state) != SHL__R_ALLOCATED))
                        violation(&rp,
                                  "frame %u (%.*s): its operation is gone", i,
                                  64, f->call_id);
                }
                if (f->part_slot >= h->cap[SHL__T_PART])
                    violation(&rp, "frame %u: participant %u out of range", i,
                              f->part_slot);
            } else if (t == SHL__T_RES) {
                struct shl__res *x = (struct shl__res *)rec;
                if (x->op_idx >= h->cap[SHL__T_OP]) {
                    violation(&rp, "resource %u: operation index out of range",
                              i);
                } else {
                    struct shl__op *o = shl__op_at(s, x->op_idx);
                    if (atomic_load(&o->h.gen) != x->op_gen ||
                        atomic_load(&o->h.state) != SHL__R_ALLOCATED)
                        violation(&rp, "resource %u: its operation is gone",
                                  i);
                }
                if (!memchr(x->path, 0, sizeof(x->path)))
                    violation(&rp, "resource %u: path not terminated", i);
            } else if (t == SHL__T_OP) {
                struct shl__op *o = (struct shl__op *)rec;
                if (!memchr(o->id, 0, sizeof(o->id)))
                    violation(&rp, "operation %u: id not terminated", i);
                else if (o->id_hash != shl__id_hash(o->id))
                    violation(&rp, "operation %u: id hash mismatch", i);
                if (atomic_load(&o->op_state) > SHL_OP_COMPLETED)
                    violation(&rp, "operation %u: bad state", i);
                uint32_t xi;
                uint64_t xg;
                int lrc = memchr(o->id, 0, sizeof(o->id))
                              ? shl__index_lookup(s, o->id, &xi, &xg)
                              : -EAGAIN;
                /* -EAGAIN: in mid-write, a later pass looks again */
                if (lrc != -EAGAIN && (lrc != 0 || xi != i))
                    violation(&rp, "operation %u (%s) is not in the id index",
                              i, o->id);
            } else if (t == SHL__T_PART) {
                struct shl__part *p = (struct shl__part *)rec;
                if (!memchr(p->id, 0, sizeof(p->id)))
                    violation(&rp, "participant %u: id not terminated", i);
            }
        }
    }
    if (!held) {
        const int counted[] = {SHL__T_PART, SHL__T_OP, SHL__T_RES};
        for (size_t k = 0; k < SHL__ARRAY_LEN(counted); k++) {
            int t = counted[k];
            if (h->used[t] != counts[t])
                violation(&rp, "table %d: count %u but %u records allocated",
                          t, h->used[t], counts[t]);
        }
        /* every index entry names a live operation with its hash */
        for (uint32_t i = 0; i < h->index_cap; i++) {
            struct shl__index_ent *e = shl__index_at(s, i);
            uint64_t k = atomic_load(&e->key);
            if (k == SHL__IDX_EMPTY || k == SHL__IDX_TOMB)
                continue;
            uint32_t oi = atomic_load(&e->op_idx);
            if (oi >= h->cap[SHL__T_OP]) {
                violation(&rp, "index entry %u: slot %u out of range", i, oi);
                continue;
            }
            struct shl__op *o = shl__op_at(s, oi);
            if (atomic_load(&o->h.state) != SHL__R_ALLOCATED ||
                o->id_hash != k)
                violation(&rp, "index entry %u names a dead operation slot %u",
                          i, oi);
        }
    }
    check_rings(s, &rp);
    return (int)out->violations;
}

int
shl_reader_check(shl_reader *r, shl_check_report *out)
{
    shl__clear_err();
    if (!r || !out)
        return -EINVAL;
    /* A pass reads without the lock, so a locked change can fall between
     * two of its loads. Garbage stays; such a view does not: a pass that
     * finds something is repeated 2 ms apart, and only what every pass
     * finds is reported (the last pass's text). */
    int rc = 0;
    for (int pass = 0; pass < 4; pass++) {
        if (pass) {
            struct timespec ts = {0, 2000000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        rc = check_pass(r, out);
        if (rc <= 0)
            break;
    }
    return rc;
}
