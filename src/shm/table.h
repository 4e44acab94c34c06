/*
 * table.h: fixed-capacity record tables in the segment.
 *
 * Claim: find a FREE (or RECLAIMED past its reuse deadline) record and CAS
 * its state to STARTING; the claimer then owns it, with the seqlock open
 * (odd). Fill the fields, then shl__rec_publish() closes the seqlock and
 * stores ALLOCATED last with release. Release: seqlock open, state
 * RECLAIMED with a reuse deadline, seqlock closed.
 *
 * Claims are lock-free (a CAS per candidate), so the frame table is used
 * without the structure mutex; the other tables claim under the mutex with
 * an intent record so a death mid-claim can be rolled back.
 */
#ifndef SHL_TABLE_H
#define SHL_TABLE_H

#include "shm/segment.h"

/* Reuse delay per table (ns): how long a freed record stays RECLAIMED. */
int64_t shl__reuse_delay_ns(int table);

/* Claim a record, scanning from `hint`. On success *idx and *gen are set,
 * the record is STARTING with its seqlock odd and owner fields written.
 * Returns 0 or SHL_EFULL. */
int shl__rec_claim(struct shl__seg *s, int table, uint32_t hint,
                   uint32_t owner, uint64_t owner_gen, uint32_t *idx,
                   uint64_t *gen);

/* Under the structure mutex, claims are two-step so the intent can name
 * the record before it changes: find a claimable index, write the intent,
 * then claim exactly that index. Returns 0 or SHL_EFULL / -EAGAIN. */
int shl__rec_find_free(struct shl__seg *s, int table, uint32_t hint,
                       uint32_t *idx);
int shl__rec_claim_at(struct shl__seg *s, int table, uint32_t idx,
                      uint32_t owner, uint64_t owner_gen, uint64_t *gen);

/* Close the seqlock opened by claim and publish ALLOCATED. */
void shl__rec_publish(struct shl__rec *r);

/* Undo a claim that was never published (back to FREE). */
void shl__rec_unclaim(struct shl__rec *r);

/* Free a record: RECLAIMED with reuse deadline. */
void shl__rec_release(struct shl__seg *s, int table, struct shl__rec *r);
/* Release a lock-free record (a frame) exactly once, by anyone: one CAS on
 * the (state, seq) pair from `pair` (loaded by the caller before it
 * checked that the record is still the incarnation it means to free) to
 * (FREE, seq advanced to the next even value). No odd window: a releaser
 * killed at any instruction leaves the record either allocated (and
 * finishable by the next observer) or free, never a seqlock left odd.
 * Returns true if this call released it. */
bool shl__rec_release_pair(struct shl__rec *r, uint64_t pair);
/* The (state, seq) pair of r, for shl__rec_release_pair. */
uint64_t shl__rec_pair(struct shl__rec *r);


/* Seqlock writer brackets for later in-place changes. */
static inline void
shl__seq_write_begin(struct shl__rec *r)
{
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}
static inline void
shl__seq_write_end(struct shl__rec *r)
{
    atomic_fetch_add_explicit(&r->seq, 1, memory_order_release);
}

/* Seqlock reader: returns the even sequence to check later, or fails (odd:
 * a writer is inside). */
static inline bool
shl__seq_read_begin(const struct shl__rec *r, uint32_t *seq)
{
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
    *seq = s;
    return (s & 1u) == 0;
}
static inline bool
shl__seq_read_ok(const struct shl__rec *r, uint32_t seq)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&r->seq, memory_order_relaxed) == seq;
}

/* Copy a record consistently into `dst` (size bytes from `src`).
 * Returns 0, or -EAGAIN after `tries` failed attempts. The copy is done with
 * relaxed byte-wise-safe loads (memcpy of racy memory is tolerated by the
 * seqlock discipline: a torn copy is always discarded). */
int shl__rec_copy(void *dst, const void *src, size_t size, int tries);
/* shl__rec_copy of an operation record without the crashed-id buffer
 * (8 KiB of its 9.6) unless the record holds crashed ids: a snapshot of an
 * operation that did not fail reads 1.4 KiB, not 9.6. dst->crashed is
 * left as it was when dst->crashed_count is 0. */
int shl__op_copy(struct shl__op *dst, const struct shl__op *src, int tries);
/* How long a lock-free reader waits for a record in mid-write whose writer
 * may still finish before it says -EAGAIN (200 ms; the fuzz targets set 0:
 * a segment image never changes). */
extern int64_t shl__reader_busy_ns;

/* A lock-free reader's patience with a record in mid-write, for one call.
 * Zero-initialise per call. */
struct shl__patience {
    int64_t deadline_ns;
    int dead_looks;
};
/* After a busy look: true to look again (having slept 20 us), false when
 * the call's patience is spent. While the writer may still finish
 * (`writer_may_finish`: the structure lock has a live holder, or a frame's
 * owner is alive), wait up to shl__reader_busy_ns from the first busy
 * look; a writer that cannot finish (dead) gets one more look, since it
 * may have just finished. */
bool shl__patience_wait(struct shl__patience *p, bool writer_may_finish);

/* Highest index + 1 ever claimed in the table (scan bound). */
static inline uint32_t
shl__table_hwm(const struct shl__seg *s, int table)
{
    uint32_t h = atomic_load_explicit(&s->hdr->hwm[table],
                                      memory_order_acquire);
    return h > s->hdr->cap[table] ? s->hdr->cap[table] : h;
}

/* Record crashed call id `id` in operation record r (under its seqlock,
 * structure lock held): crashed_total always counts it; it is stored when
 * it fits the packed buffer and is not there yet. Returns true if stored
 * or already present. */
bool shl__op_crashed_add(struct shl__op *r, const char *id);

/* Iterate the stored crashed ids of a record (or a copy of one): *off
 * starts at 0; returns the next id (bounded, NUL-terminated in the
 * buffer) or NULL at the end. */
const char *shl__op_crashed_next(const struct shl__op *r, uint32_t *off,
                                 uint32_t *k);


#endif /* SHL_TABLE_H */
