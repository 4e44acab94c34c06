/*
 * base/lops.c: a ledger's table of its operations (see lops.h).
 */
#include "base/lops.h"

#include <errno.h>
#include <stdlib.h>

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

void
shl__lops_fini(shl_ledger *l)
{
    free(l->lop_buckets);
    l->lop_buckets = NULL;
    l->lop_nbuckets = 0;
    l->lop_count = 0;
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
