/*
 * records.c: operation and temp-resource records freed under the structure
 * lock, each step behind an intent record and a named crash point, so a
 * death anywhere in between is rolled forward by the next holder (lock.c).
 */
#include "shm/records.h"

#include <stdlib.h>

#include "internal.h"
#include "shm/index.h"
#include "shm/lock.h"
#include "shm/table.h"

/* Free an operation record (structure mutex held). */
void
shl__op_free_locked(struct shl__seg *s, uint32_t idx, uint64_t gen)
{
    struct shl__op *r = shl__op_at(s, idx);
    if (atomic_load(&r->h.gen) != gen ||
        atomic_load(&r->h.state) != SHL__R_ALLOCATED)
        return;
    shl__intent_set(s, SHL__I_FREE, SHL__T_OP, idx, gen);
    SHL_CRASH_POINT("free.intent");
    shl__index_remove(s, r->id_hash, idx);
    SHL_CRASH_POINT("free.unindexed");
    shl__rec_release(s, SHL__T_OP, &r->h);
    SHL_CRASH_POINT("free.released");
    s->hdr->used[SHL__T_OP]--;
    shl__intent_clear(s);
}

/* Free every resource record of an operation (structure mutex held). */
void
shl__op_resources_free_locked(struct shl__seg *s, uint32_t op_idx,
                              uint64_t op_gen)
{
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *r = shl__res_at(s, i);
        if (atomic_load(&r->h.state) != SHL__R_ALLOCATED ||
            r->op_idx != op_idx || r->op_gen != op_gen)
            continue;
        shl__intent_set(s, SHL__I_FREE, SHL__T_RES, i, atomic_load(&r->h.gen));
        SHL_CRASH_POINT("free.intent");
        shl__rec_release(s, SHL__T_RES, &r->h);
        SHL_CRASH_POINT("free.released");
        s->hdr->used[SHL__T_RES]--;
        shl__intent_clear(s);
    }
}

shl__path *
shl__res_list_locked(struct shl__seg *s, uint32_t op_idx, uint64_t op_gen,
                     uint32_t slot, uint64_t slot_gen, bool any_owner,
                     struct shl__res_ref **refs, size_t *n)
{
    shl__path *paths = NULL;
    struct shl__res_ref *rv = NULL;
    size_t cnt = 0, cap = 0;
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *x = shl__res_at(s, i);
        if (atomic_load(&x->h.state) != SHL__R_ALLOCATED)
            continue;
        if (op_idx != UINT32_MAX &&
            (x->op_idx != op_idx || x->op_gen != op_gen))
            continue;
        if (!any_owner && (x->part_slot != slot || x->part_gen != slot_gen))
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            void *p = realloc(paths, nc * sizeof(*paths));
            if (!p)
                break;
            paths = p;
            p = realloc(rv, nc * sizeof(*rv));
            if (!p)
                break;
            rv = p;
            cap = nc;
        }
        shl__copy_field(paths[cnt], x->path, sizeof(x->path));
        rv[cnt].idx = i;
        rv[cnt++].gen = atomic_load(&x->h.gen);
    }
    *refs = rv;
    *n = cnt;
    return paths;
}

void
shl__res_free_refs_locked(struct shl__seg *s, const struct shl__res_ref *refs,
                          size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct shl__res *x = shl__res_at(s, refs[k].idx);
        if (atomic_load(&x->h.state) != SHL__R_ALLOCATED ||
            atomic_load(&x->h.gen) != refs[k].gen)
            continue; /* freed meanwhile (by another cleaner) */
        shl__intent_set(s, SHL__I_FREE, SHL__T_RES, refs[k].idx, refs[k].gen);
        shl__rec_release(s, SHL__T_RES, &x->h);
        s->hdr->used[SHL__T_RES]--;
        shl__intent_clear(s);
    }
}

void
shl__op_touch(struct shl__op *r)
{
    shl__op_touch_at(r, shl__mono_ns());
}

void
shl__op_touch_at(struct shl__op *r, int64_t now_ns)
{
    atomic_fetch_add_explicit(&r->change_count, 1, memory_order_release);
    atomic_store_explicit(&r->last_heartbeat_ns, now_ns, memory_order_relaxed);
}
