/* shl_inspect.c: see shl_inspect.h. */
#include "shl_inspect.h"

#include "shm/index.h"
#include "objects.h"

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
