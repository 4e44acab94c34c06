/*
 * records.h: freeing operation and resource records (records.c), and the
 * change mark every mutation of an operation leaves.
 */
#ifndef SHL_SHM_RECORDS_H
#define SHL_SHM_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm/segment.h"

/* One temp-resource path, as stored in a record. */
typedef char shl__path[SHL_PATH_MAX + 1];

/* Free operation record (idx, gen) with its id index entry, if it is still
 * that live record. Structure lock held. */
void shl__op_free_locked(struct shl__seg *s, uint32_t idx, uint64_t gen);

/* Free every resource record of operation (op_idx, op_gen), deleting
 * nothing. Structure lock held. */
void shl__op_resources_free_locked(struct shl__seg *s, uint32_t op_idx,
                                   uint64_t op_gen);

/* A resource record listed for a later free: its index and generation. */
struct shl__res_ref {
    uint32_t idx;
    uint64_t gen;
};

/* List, without freeing, the resource records of operation (op_idx,
 * op_gen), or of every operation when op_idx is UINT32_MAX, registered by
 * participant (slot, slot_gen), or by anyone when any_owner: their paths
 * and refs (malloc'd arrays the caller frees; count in *n, 0 on allocation
 * failure). For deleting the files before the records go, so a cleaner
 * killed in between leaves records the next one still finds (issue 12,
 * temp_left). Structure lock held. */
shl__path *shl__res_list_locked(struct shl__seg *s, uint32_t op_idx,
                                uint64_t op_gen, uint32_t slot,
                                uint64_t slot_gen, bool any_owner,
                                struct shl__res_ref **refs, size_t *n);

/* Free the listed records still allocated with the listed generation.
 * Structure lock held. */
void shl__res_free_refs_locked(struct shl__seg *s,
                               const struct shl__res_ref *refs, size_t n);

/* Mark an operation changed: bump change_count (readers and the
 * snapshotter look at it) and move its lastHeartbeat. Lock-free. */
void shl__op_touch(struct shl__op *r);
/* The same with the monotonic time (ns) the caller already read. */
void shl__op_touch_at(struct shl__op *r, int64_t now_ns);

/* The live operation record (idx, gen), or NULL once it was freed or
 * reused. Lock-free. */
static inline struct shl__op *
shl__op_live(struct shl__seg *s, uint32_t idx, uint64_t gen)
{
    if (idx >= s->hdr->cap[SHL__T_OP])
        return NULL;
    struct shl__op *r = shl__op_at(s, idx);
    if (atomic_load_explicit(&r->h.gen, memory_order_acquire) != gen ||
        atomic_load_explicit(&r->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
        return NULL;
    return r;
}

#endif /* SHL_SHM_RECORDS_H */
