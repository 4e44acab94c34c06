/*
 * base/lops.c: a ledger's table of its operations (see lops.h).
 */
#include "base/lops.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LOPS_MIN_BUCKETS 16u

static inline uint32_t
bucket_of(const shl_ledger *l, uint32_t idx)
{
    return idx & (l->lop_nbuckets - 1);
}

struct shl__lop *
shl__lops_find(shl_ledger *l, uint32_t idx, uint64_t gen)
{
    if (!l->lop_buckets)
        return NULL;
    for (struct shl__lop *p = l->lop_buckets[bucket_of(l, idx)]; p;
         p = p->hnext)
        if (p->op_idx == idx && p->op_gen == gen)
            return p;
    return NULL;
}

/* Double the bucket array; on allocation failure keep the old one. */
static void
grow(shl_ledger *l)
{
    uint32_t nb = l->lop_nbuckets * 2;
    if (nb < l->lop_nbuckets)
        return;
    struct shl__lop **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (uint32_t i = 0; i < l->lop_nbuckets; i++) {
        struct shl__lop *p = l->lop_buckets[i];
        while (p) {
            struct shl__lop *next = p->hnext;
            uint32_t j = p->op_idx & (nb - 1);
            p->hnext = b[j];
            b[j] = p;
            p = next;
        }
    }
    free(l->lop_buckets);
    l->lop_buckets = b;
    l->lop_nbuckets = nb;
}

int
shl__lops_add(shl_ledger *l, struct shl__lop *lop)
{
    if (!l->lop_buckets) {
        l->lop_buckets = calloc(LOPS_MIN_BUCKETS, sizeof(*l->lop_buckets));
        if (!l->lop_buckets)
            return -ENOMEM;
        l->lop_nbuckets = LOPS_MIN_BUCKETS;
    } else if (l->lop_count >= l->lop_nbuckets) {
        grow(l);
    }
    uint32_t b = bucket_of(l, lop->op_idx);
    lop->hnext = l->lop_buckets[b];
    l->lop_buckets[b] = lop;
    lop->prev = NULL;
    lop->next = l->lops;
    if (l->lops)
        l->lops->prev = lop;
    l->lops = lop;
    l->lop_count++;
    return 0;
}

void
shl__lops_remove(shl_ledger *l, struct shl__lop *lop)
{
    if (l->lop_buckets)
        for (struct shl__lop **pp = &l->lop_buckets[bucket_of(l, lop->op_idx)];
             *pp; pp = &(*pp)->hnext)
            if (*pp == lop) {
                *pp = lop->hnext;
                break;
            }
    lop->hnext = NULL;
    if (lop->prev)
        lop->prev->next = lop->next;
    else if (l->lops == lop)
        l->lops = lop->next;
    if (lop->next)
        lop->next->prev = lop->prev;
    lop->prev = lop->next = NULL;
    l->lop_count--;
}

/* ---- spare objects ---- */

#if defined(__SANITIZE_ADDRESS__)
#define SHL__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHL__ASAN 1
#endif
#endif
#ifdef SHL__ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Zero n bytes of a fresh object. Not malloc + memset of the whole size:
 * gcc turns that into calloc, which is what this avoids. */
static void *
take_spare(void **spare, size_t size, size_t zero)
{
    void *p = *spare;
    if (p) {
        *spare = NULL;
        UNPOISON(p, size);
    } else {
        p = malloc(size);
        if (!p)
            return NULL;
    }
    /* through a volatile pointer: the compiler must not see "malloc, then
     * zero all of it" and call calloc instead */
    void *(*volatile zero_fn)(void *, int, size_t) = memset;
    zero_fn(p, 0, zero);
    return p;
}

static void
give_spare(void **spare, void *p, size_t size)
{
    if (!p)
        return;
    if (*spare) {
        free(p);
        return;
    }
    POISON(p, size);
    *spare = p;
}

struct shl__lop *
shl__lop_alloc(shl_ledger *l)
{
    return take_spare((void **)&l->spare_lop, sizeof(struct shl__lop),
                      sizeof(struct shl__lop));
}

void
shl__lop_release(shl_ledger *l, struct shl__lop *lop)
{
    give_spare((void **)&l->spare_lop, lop, sizeof(*lop));
}

shl_op *
shl__op_obj_alloc(shl_ledger *l)
{
    return take_spare((void **)&l->spare_op, sizeof(struct shl_op),
                      offsetof(struct shl_op, finfo));
}

void
shl__op_obj_release(shl_ledger *l, shl_op *op)
{
    give_spare((void **)&l->spare_op, op, sizeof(*op));
}

void
shl__lops_fini(shl_ledger *l)
{
    free(l->lop_buckets);
    l->lop_buckets = NULL;
    l->lop_nbuckets = 0;
    l->lop_count = 0;
    if (l->spare_lop) {
        UNPOISON(l->spare_lop, sizeof(*l->spare_lop));
        free(l->spare_lop);
        l->spare_lop = NULL;
    }
    if (l->spare_op) {
        UNPOISON(l->spare_op, sizeof(*l->spare_op));
        free(l->spare_op);
        l->spare_op = NULL;
    }
}

void
shl__lop_session_add(struct shl__lop *lop, shl_op *op)
{
    op->prev_session = NULL;
    op->next_session = lop->sessions;
    if (lop->sessions)
        lop->sessions->prev_session = op;
    lop->sessions = op;
}

void
shl__lop_session_remove(struct shl__lop *lop, shl_op *op)
{
    if (op->prev_session)
        op->prev_session->next_session = op->next_session;
    else if (lop->sessions == op)
        lop->sessions = op->next_session;
    if (op->next_session)
        op->next_session->prev_session = op->prev_session;
    op->prev_session = op->next_session = NULL;
}
