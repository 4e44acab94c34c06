/*
 * table.c: record claim / publish / release and the seqlock copy.
 *
 * Ordering: a claimer CASes state FREE->STARTING (acq_rel), opens the
 * seqlock (odd), bumps the generation and writes owner fields. Readers that
 * race with it either see the odd sequence or a sequence that changed and
 * discard their copy. Publication closes the seqlock and then stores
 * ALLOCATED with release, so a reader that sees ALLOCATED with an even,
 * unchanged sequence has a complete record.
 */
#include "shm/table.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* What a full table means to a user, and the option that sizes it. */
static const char *
table_what(int table)
{
    static const char *const what[] = {
        [SHL__T_PART] = "participants (max_participants)",
        [SHL__T_OP] = "live operations (max_operations; an operation stays "
                      "until it is completed or fails, even with nobody in "
                      "it)",
        [SHL__T_FRAME] = "active calls (max_frames)",
        [SHL__T_RES] = "temp resources (max_resources)",
    };
    return table >= 0 && table < (int)SHL__ARRAY_LEN(what) && what[table]
               ? what[table]
               : "records";
}

int64_t
shl__reuse_delay_ns(int table)
{
    switch (table) {
    case SHL__T_PART:
        return 10 * 1000000ll; /* viewer rows hold (slot, gen) briefly */
    case SHL__T_OP:
        return 10 * 1000000ll;
    default:
        return 0; /* frames and resources: generation checks suffice */
    }
}

static bool
claimable(struct shl__rec *r, uint32_t st, int64_t now)
{
    if (st == SHL__R_FREE)
        return true;
    if (st == SHL__R_RECLAIMED)
        return atomic_load_explicit(&r->reuse_after, memory_order_relaxed) <=
               now;
    return false;
}

static void
claimed(struct shl__seg *s, int table, struct shl__rec *r, uint32_t i,
        uint32_t owner, uint64_t owner_gen, uint64_t *gen)
{
    struct shl__hdr *h = s->hdr;
    /* Open the seqlock. The record is ours alone since the CAS (a STARTING
     * record is touched by nobody else but the reaper of its dead owner),
     * so a plain store does what the shared writers' fetch_add does. A
     * writer that died inside the seqlock of an earlier incarnation left
     * it odd: step over the even value (the record is ours now), or every
     * reader would take it for a write in progress from now on. */
    uint32_t q = atomic_load_explicit(&r->seq, memory_order_relaxed);
    atomic_store_explicit(&r->seq, (q & 1u) ? q + 2 : q + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    uint64_t g = atomic_load_explicit(&r->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&r->gen, g, memory_order_relaxed);
    atomic_store_explicit(&r->owner, owner, memory_order_relaxed);
    atomic_store_explicit(&r->owner_gen, owner_gen, memory_order_relaxed);
    uint32_t hw = atomic_load_explicit(&h->hwm[table], memory_order_relaxed);
    while (hw < i + 1 && !atomic_compare_exchange_weak_explicit(
                             &h->hwm[table], &hw, i + 1,
                             memory_order_release, memory_order_relaxed))
        ;
    *gen = g;
}

int
shl__rec_find_free(struct shl__seg *s, int table, uint32_t hint,
                   uint32_t *idx)
{
    uint32_t cap = s->hdr->cap[table];
    int64_t now = shl__mono_ns();
    if (hint >= cap)
        hint = 0;
    for (uint32_t n = 0; n < cap; n++) {
        uint32_t i = hint + n;
        if (i >= cap)
            i -= cap;
        struct shl__rec *r = shl__rec_at(s, table, i);
        uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
        if (claimable(r, st, now)) {
            *idx = i;
            return 0;
        }
    }
    return SHL_SET_ERR(SHL_EFULL, "the ledger is full: %u %s", cap,
                       table_what(table));
}

int
shl__rec_claim_at(struct shl__seg *s, int table, uint32_t i, uint32_t owner,
                  uint64_t owner_gen, uint64_t *gen)
{
    struct shl__rec *r = shl__rec_at(s, table, i);
    uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
    if (!claimable(r, st, shl__mono_ns()) ||
        !atomic_compare_exchange_strong_explicit(&r->state, &st,
                                                 SHL__R_STARTING,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed))
        return -EAGAIN;
    claimed(s, table, r, i, owner, owner_gen, gen);
    return 0;
}

int
shl__rec_claim(struct shl__seg *s, int table, uint32_t hint, uint32_t owner,
               uint64_t owner_gen, uint32_t *idx, uint64_t *gen)
{
    struct shl__hdr *h = s->hdr;
    uint32_t cap = h->cap[table];
    int64_t now = 0;
    if (hint >= cap)
        hint = 0;
    for (uint32_t n = 0; n < cap; n++) {
        uint32_t i = hint + n;
        if (i >= cap)
            i -= cap;
        struct shl__rec *r = shl__rec_at(s, table, i);
        uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
        if (st == SHL__R_RECLAIMED && now == 0)
            now = shl__mono_ns();
        if (!claimable(r, st, now))
            continue;
        if (!atomic_compare_exchange_strong_explicit(
                &r->state, &st, SHL__R_STARTING, memory_order_acq_rel,
                memory_order_relaxed))
            continue;
        claimed(s, table, r, i, owner, owner_gen, gen);
        *idx = i;
        return 0;
    }
    return SHL_SET_ERR(SHL_EFULL, "the ledger is full: %u %s", cap,
                       table_what(table));
}

void
shl__rec_publish(struct shl__rec *r)
{
    /* still STARTING, ours alone (see claimed): close the seqlock with a
     * store, not a locked add */
    uint32_t q = atomic_load_explicit(&r->seq, memory_order_relaxed);
    atomic_store_explicit(&r->seq, q + 1, memory_order_release);
    atomic_store_explicit(&r->state, SHL__R_ALLOCATED, memory_order_release);
}

void
shl__rec_unclaim(struct shl__rec *r)
{
    shl__seq_write_end(r);
    atomic_store_explicit(&r->state, SHL__R_FREE, memory_order_release);
}

/* state (low half) and seq (high half) are adjacent 32-bit words at the
 * start of every record (8-byte aligned): one 64-bit atomic covers both. */
_Static_assert(offsetof(struct shl__rec, seq) ==
                   offsetof(struct shl__rec, state) + 4,
               "state and seq adjacent");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian");

static inline _Atomic uint64_t *
pair_word(struct shl__rec *r)
{
    return (_Atomic uint64_t *)(void *)&r->state;
}

uint64_t
shl__rec_pair(struct shl__rec *r)
{
    return atomic_load_explicit(pair_word(r), memory_order_acquire);
}

bool
shl__rec_release_pair(struct shl__rec *r, uint64_t pair)
{
    if ((uint32_t)pair != SHL__R_ALLOCATED)
        return false;
    uint32_t seq = (uint32_t)(pair >> 32);
    uint64_t next = ((uint64_t)((seq | 1u) + 1u) << 32) | SHL__R_FREE;
    return atomic_compare_exchange_strong_explicit(
        pair_word(r), &pair, next, memory_order_acq_rel, memory_order_acquire);
}

void
shl__rec_release(struct shl__seg *s, int table, struct shl__rec *r)
{
    SHL__UNUSED(s);
    int64_t delay = shl__reuse_delay_ns(table);
    shl__seq_write_begin(r);
    if (delay > 0) {
        atomic_store_explicit(&r->reuse_after, shl__mono_ns() + delay,
                              memory_order_relaxed);
        atomic_store_explicit(&r->state, SHL__R_RECLAIMED,
                              memory_order_release);
    } else {
        atomic_store_explicit(&r->state, SHL__R_FREE, memory_order_release);
    }
    shl__seq_write_end(r);
}

/* The copy races with writers by design; a torn copy is discarded by the
 * sequence check. TSan cannot see the seqlock protocol, hence the narrow
 * exemption of this one function. */
__attribute__((no_sanitize_thread)) static void
racy_copy(void *dst, const void *src, size_t size)
{
    /* Word by word through volatile: not turned into a memcpy call (which
     * TSan would intercept and instrument). Records are 64-byte aligned
     * and sized in whole words. */
    const volatile uint64_t *s = src;
    uint64_t *d = dst;
    size_t n = size / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
    if (size % sizeof(uint64_t))
        memcpy((char *)dst + n * 8, (const char *)src + n * 8, size % 8);
}

int64_t shl__reader_busy_ns = 200ll * 1000000;

bool
shl__patience_wait(struct shl__patience *p, bool writer_may_finish)
{
    if (!writer_may_finish)
        return ++p->dead_looks < 2;
    p->dead_looks = 0;
    int64_t now = shl__mono_ns();
    if (p->deadline_ns == 0)
        p->deadline_ns = now + shl__reader_busy_ns;
    if (now > p->deadline_ns)
        return false;
    struct timespec ts = {0, 20 * 1000};
    nanosleep(&ts, NULL);
    return true;
}

int
shl__rec_copy(void *dst, const void *src, size_t size, int tries)
{
    const struct shl__rec *r = src;
    for (int t = 0; t < tries; t++) {
        uint32_t seq;
        if (!shl__seq_read_begin(r, &seq)) {
            SHL__CPU_RELAX();
            continue;
        }
        racy_copy(dst, src, size);
        if (shl__seq_read_ok(r, seq))
            return 0;
    }
    return -EAGAIN;
}

/* the copied part without crashed[]: whole words, up to its start */
#define OP_HEAD_BYTES (offsetof(struct shl__op, crashed) & ~(size_t)7)
#define OP_TAIL_OFF offsetof(struct shl__op, change_count)
_Static_assert(OP_TAIL_OFF % 8 == 0 && OP_TAIL_OFF >= OP_HEAD_BYTES,
               "operation record tail");

int
shl__op_copy(struct shl__op *dst, const struct shl__op *src, int tries)
{
    for (int t = 0; t < tries; t++) {
        uint32_t seq;
        if (!shl__seq_read_begin(&src->h, &seq)) {
            SHL__CPU_RELAX();
            continue;
        }
        racy_copy(dst, src, OP_HEAD_BYTES);
        racy_copy((char *)dst + OP_TAIL_OFF, (const char *)src + OP_TAIL_OFF,
                  sizeof(*dst) - OP_TAIL_OFF);
        if (dst->crashed_count != 0)
            racy_copy((char *)dst + OP_HEAD_BYTES,
                      (const char *)src + OP_HEAD_BYTES,
                      OP_TAIL_OFF - OP_HEAD_BYTES);
        if (shl__seq_read_ok(&src->h, seq))
            return 0;
    }
    return -EAGAIN;
}

bool
shl__op_crashed_add(struct shl__op *r, const char *id)
{
    size_t len = strnlen(id, SHL_CALL_ID_MAX);
    uint32_t off = 0, k = 0;
    const char *x;
    while ((x = shl__op_crashed_next(r, &off, &k)) != NULL)
        if (strlen(x) == len && memcmp(x, id, len) == 0)
            return true;
    r->crashed_total++;
    if (r->crashed_count >= SHL__CRASHED_BYTES || off + len + 1 > sizeof(r->crashed))
        return false;
    memcpy(r->crashed + off, id, len);
    r->crashed[off + len] = 0;
    r->crashed_count++;
    return true;
}

const char *
shl__op_crashed_next(const struct shl__op *r, uint32_t *off, uint32_t *k)
{
    /* shared memory is untrusted: bounded by count and buffer */
    if (*k >= r->crashed_count || *off >= sizeof(r->crashed))
        return NULL;
    const char *p = r->crashed + *off;
    size_t room = sizeof(r->crashed) - *off;
    size_t len = strnlen(p, room);
    if (len == room || len == 0)
        return NULL;
    *off += (uint32_t)len + 1;
    (*k)++;
    return p;
}
