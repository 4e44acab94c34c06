/*
 * index.h: operation id -> operation slot, an open-addressed table in the
 * segment keyed by XXH3_64 of the id.
 *
 * Writers (insert/remove) hold the structure mutex. Readers are lock-free:
 * they probe, and every candidate is confirmed by reading the operation
 * record under its seqlock (state ALLOCATED, same hash and same id string),
 * so a stale or half-written entry can only cost a retry, never a wrong
 * answer. Removal leaves a tombstone so probe chains stay intact.
 */
#ifndef SHL_INDEX_H
#define SHL_INDEX_H

#include "shm/segment.h"

uint64_t shl__id_hash(const char *id);
/* mutex held */
int shl__index_insert(struct shl__seg *s, uint64_t hash, uint32_t op_idx);
void shl__index_remove(struct shl__seg *s, uint64_t hash, uint32_t op_idx);
/* Lock-free. Returns 0 with *idx, *gen; SHL_ENOTFOUND; -EAGAIN when the
 * candidate record stayed in mid-write for 200 ms (a writer preempted or
 * dead): busy, which callers must not take for "not found". */
int shl__index_lookup(struct shl__seg *s, const char *id, uint32_t *idx,
                      uint64_t *gen);
/* mutex held: make the index exactly match ALLOCATED operation records. */
void shl__index_rebuild(struct shl__seg *s);

static inline struct shl__index_ent *
shl__index_at(const struct shl__seg *s, uint32_t i)
{
    return (struct shl__index_ent *)((char *)s->base + s->hdr->index_off) + i;
}

#endif /* SHL_INDEX_H */
