/*
 * index.c: the operation-id index (see index.h for the protocol).
 */
#include "shm/index.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "internal.h"
#include "shm/table.h"

uint64_t
shl__id_hash(const char *id)
{
    uint64_t h = XXH3_64bits(id, strlen(id));
    return h < 2 ? h + 2 : h; /* 0 and 1 mark empty and tombstone */
}

int
shl__index_insert(struct shl__seg *s, uint64_t hash, uint32_t op_idx)
{
    uint32_t cap = s->hdr->index_cap, mask = cap - 1;
    for (uint32_t n = 0, i = (uint32_t)hash & mask; n < cap;
         n++, i = (i + 1) & mask) {
        struct shl__index_ent *e = shl__index_at(s, i);
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
        if (k == SHL__IDX_EMPTY || k == SHL__IDX_TOMB) {
            atomic_store_explicit(&e->op_idx, op_idx, memory_order_relaxed);
            /* key last: a reader that sees the key sees the slot */
            atomic_store_explicit(&e->key, hash, memory_order_release);
            return 0;
        }
    }
    return SHL_SET_ERR(SHL_EFULL, "operation index full");
}

void
shl__index_remove(struct shl__seg *s, uint64_t hash, uint32_t op_idx)
{
    uint32_t cap = s->hdr->index_cap, mask = cap - 1;
    for (uint32_t n = 0, i = (uint32_t)hash & mask; n < cap;
         n++, i = (i + 1) & mask) {
        struct shl__index_ent *e = shl__index_at(s, i);
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
        if (k == SHL__IDX_EMPTY)
            return;
        if (k == hash &&
            atomic_load_explicit(&e->op_idx, memory_order_relaxed) == op_idx) {
            uint32_t next = (i + 1) & mask;
            uint64_t nk = atomic_load_explicit(&shl__index_at(s, next)->key,
                                               memory_order_relaxed);
            if (nk != SHL__IDX_EMPTY) {
                atomic_store_explicit(&e->key, SHL__IDX_TOMB,
                                      memory_order_release);
                return;
            }
            /* End of a chain: empty it, and the tombstones just before it.
             * Safe for lock-free readers: a probe that would have walked
             * over these slots stops at the empty one after them anyway.
             * Without this, tombstones pile up and every miss (one per
             * create) walks them. */
            uint32_t j = i;
            for (uint32_t m = 0; m < cap; m++) {
                atomic_store_explicit(&shl__index_at(s, j)->key,
                                      SHL__IDX_EMPTY, memory_order_release);
                j = (j - 1) & mask;
                if (atomic_load_explicit(&shl__index_at(s, j)->key,
                                         memory_order_relaxed) !=
                    SHL__IDX_TOMB)
                    break;
            }
            return;
        }
    }
}

/* Does index entry i point at op_idx with the op's hash? */
static bool
indexed(struct shl__seg *s, uint64_t hash, uint32_t op_idx)
{
    uint32_t cap = s->hdr->index_cap, mask = cap - 1;
    for (uint32_t n = 0, i = (uint32_t)hash & mask; n < cap;
         n++, i = (i + 1) & mask) {
        struct shl__index_ent *e = shl__index_at(s, i);
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
        if (k == SHL__IDX_EMPTY)
            return false;
        if (k == hash &&
            atomic_load_explicit(&e->op_idx, memory_order_relaxed) == op_idx)
            return true;
    }
    return false;
}

void
shl__index_rebuild(struct shl__seg *s)
{
    struct shl__hdr *h = s->hdr;
    /* 1. drop entries that do not name a live operation with that hash.
     * Done in place (tombstones), never by clearing, so lock-free readers
     * never miss a live operation while we repair. */
    for (uint32_t i = 0; i < h->index_cap; i++) {
        struct shl__index_ent *e = shl__index_at(s, i);
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
        if (k == SHL__IDX_EMPTY || k == SHL__IDX_TOMB)
            continue;
        uint32_t oi = atomic_load_explicit(&e->op_idx, memory_order_relaxed);
        bool ok = oi < h->cap[SHL__T_OP];
        if (ok) {
            struct shl__op *op = shl__op_at(s, oi);
            ok = atomic_load_explicit(&op->h.state, memory_order_relaxed) ==
                     SHL__R_ALLOCATED &&
                 op->id_hash == k;
        }
        /* a duplicate entry for the same op also goes */
        if (ok) {
            for (uint32_t j = 0; j < i; j++) {
                struct shl__index_ent *f = shl__index_at(s, j);
                if (atomic_load_explicit(&f->key, memory_order_relaxed) == k &&
                    atomic_load_explicit(&f->op_idx, memory_order_relaxed) ==
                        oi) {
                    ok = false;
                    break;
                }
            }
        }
        if (!ok)
            atomic_store_explicit(&e->key, SHL__IDX_TOMB,
                                  memory_order_release);
    }
    /* 2. add live operations that are missing */
    uint32_t hw = shl__table_hwm(s, SHL__T_OP);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__op *op = shl__op_at(s, i);
        if (atomic_load_explicit(&op->h.state, memory_order_relaxed) !=
            SHL__R_ALLOCATED)
            continue;
        if (!indexed(s, op->id_hash, i))
            (void)shl__index_insert(s, op->id_hash, i);
    }
}

int
shl__index_lookup(struct shl__seg *s, const char *id, uint32_t *idx,
                  uint64_t *gen)
{
    uint64_t hash = shl__id_hash(id);
    uint32_t cap = s->hdr->index_cap, mask = cap - 1;
    uint32_t opcap = s->hdr->cap[SHL__T_OP];
    bool busy = false;
    for (uint32_t n = 0, i = (uint32_t)hash & mask; n < cap;
         n++, i = (i + 1) & mask) {
        struct shl__index_ent *e = shl__index_at(s, i);
        uint64_t k = atomic_load_explicit(&e->key, memory_order_acquire);
        if (k == SHL__IDX_EMPTY)
            break;
        if (k != hash)
            continue;
        uint32_t oi = atomic_load_explicit(&e->op_idx, memory_order_relaxed);
        if (oi >= opcap)
            continue; /* garbage: never trust an index from shm */
        struct shl__op *op = shl__op_at(s, oi);
        /* a record in mid-write is busy, not a miss: while its writer
         * (the structure lock's holder) may still finish, wait for it
         * (sleeping after the first 1,000 tries) up to
         * shl__reader_busy_ns, then say -EAGAIN, never SHL_ENOTFOUND; a
         * dead writer is not waited for */
        struct shl__patience pt = {0};
        for (int tries = 0;; tries++) {
            uint32_t seq;
            if (!shl__seq_read_begin(&op->h, &seq)) {
                if (tries < 1000) {
                    SHL__CPU_RELAX();
                    continue;
                }
                if (!shl__patience_wait(&pt, shl__lock_has_live_holder(s))) {
                    busy = true;
                    break;
                }
                continue;
            }
            uint32_t st =
                atomic_load_explicit(&op->h.state, memory_order_acquire);
            uint64_t g = atomic_load_explicit(&op->h.gen, memory_order_relaxed);
            bool match = st == SHL__R_ALLOCATED && op->id_hash == hash &&
                         strncmp(op->id, id, sizeof(op->id)) == 0;
            if (!shl__seq_read_ok(&op->h, seq)) {
                if (tries >= 1000 &&
                    !shl__patience_wait(&pt, shl__lock_has_live_holder(s))) {
                    busy = true;
                    break;
                }
                continue;
            }
            if (match) {
                *idx = oi;
                *gen = g;
                return 0;
            }
            break;
        }
    }
    return busy ? -EAGAIN : SHL_ENOTFOUND;
}
