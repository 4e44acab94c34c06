/* shl_inspect.c: see shl_inspect.h. */
#include "shl_inspect.h"

#include "shm/index.h"
#include "objects.h"
#include <errno.h>
#include <string.h>

uint32_t
shl__test_coordinator_slot(shl_reader *r, const char *opid)
{
    uint32_t idx;
    uint64_t gen;
    if (shl__index_lookup(r->seg, opid, &idx, &gen) != 0)
        return UINT32_MAX;
    uint64_t w = atomic_load(&shl__op_at(r->seg, idx)->coordinator);
    return w ? (uint32_t)(w & 0x1fffu) - 1 : UINT32_MAX;
}

pid_t
shl__test_slot_pid(shl_reader *r, uint32_t slot)
{
    if (slot >= r->seg->hdr->cap[SHL__T_PART])
        return -1;
    return shl__part_at(r->seg, slot)->pid;
}

int
shl__test_op_state(shl_reader *r, const char *opid)
{
    shl_snapshot *s = NULL;
    int rc = shl_reader_snapshot(r, opid, &s);
    if (rc)
        return rc;
    int st = (int)s->state;
    shl_snapshot_free(s);
    return st;
}

uint32_t
shl__test_frames_gone_allocated(shl_reader *r)
{
    struct shl__seg *s = r->seg;
    uint32_t n = 0, hw = atomic_load(&s->hdr->hwm[SHL__T_FRAME]);
    for (uint32_t i = 0; i < hw && i < s->hdr->cap[SHL__T_FRAME]; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load(&f->h.state) == SHL__R_ALLOCATED &&
            SHL__FWORD_STATE(atomic_load(&f->fword)) == SHL__F_GONE)
            n++;
    }
    return n;
}

uint32_t
shl__test_odd_seqs(shl_reader *r)
{
    struct shl__seg *s = r->seg;
    uint32_t n = 0;
    for (int t = 0; t < SHL__NTABLES; t++) {
        uint32_t hw = atomic_load(&s->hdr->hwm[t]);
        for (uint32_t i = 0; i < hw && i < s->hdr->cap[t]; i++) {
            struct shl__rec *h = shl__rec_at(s, t, i);
            if (atomic_load(&h->state) != SHL__R_STARTING &&
                (atomic_load(&h->seq) & 1u))
                n++;
        }
    }
    return n;
}

bool
shl__test_op_exists(shl_reader *r, const char *opid)
{
    uint32_t idx;
    uint64_t gen;
    return shl__index_lookup(r->seg, opid, &idx, &gen) == 0;
}

int
shl__test_clear_members(shl_reader *r, const char *opid)
{
    uint32_t idx;
    uint64_t gen;
    if (shl__index_lookup(r->seg, opid, &idx, &gen) != 0)
        return -ENOENT;
    struct shl__op *o = shl__op_at(r->seg, idx);
    for (size_t w = 0; w < SHL__ARRAY_LEN(o->members); w++)
        atomic_store(&o->members[w], 0);
    return 0;
}

int
shl__test_frame_half_removed(shl_reader *r, const char *call_id)
{
    struct shl__seg *s = r->seg;
    uint32_t hw = atomic_load(&s->hdr->hwm[SHL__T_FRAME]);
    for (uint32_t i = 0; i < hw && i < s->hdr->cap[SHL__T_FRAME]; i++) {
        struct shl__frame *f = shl__frame_at(s, i);
        if (atomic_load(&f->h.state) != SHL__R_ALLOCATED ||
            strncmp(f->call_id, call_id, sizeof(f->call_id)) != 0)
            continue;
        uint64_t g = atomic_load(&f->h.gen);
        atomic_store(&f->fword, SHL__FWORD(g, SHL__F_GONE));
        atomic_fetch_add(&f->h.seq, 1);
        return 0;
    }
    return -ENOENT;
}

int
shl__test_set_cleanup(shl_reader *r, const char *opid)
{
    uint32_t idx;
    uint64_t gen;
    if (shl__index_lookup(r->seg, opid, &idx, &gen) != 0)
        return -ENOENT;
    struct shl__op *o = shl__op_at(r->seg, idx);
    atomic_store(&o->coordinator, 0);
    atomic_store(&o->op_state, SHL_OP_CLEANUP);
    return 0;
}
