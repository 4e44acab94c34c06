/*
 * lock.h: the structure mutex (robust, process-shared) and its repair.
 *
 * Protocol for every locked mutation:
 *   shl__lock()  -> write the intent (shl__intent_set) -> mutate, passing
 *   named crash points -> shl__intent_clear() -> shl__unlock().
 * A locker that gets EOWNERDEAD reads the intent, rolls the interrupted
 * change back (an unpublished claim) or forward (a started free, a failure
 * being recorded), rebuilds derived state from the authoritative record
 * states (counts of the mutex tables, the operation-id index), closes any
 * seqlock the dead holder left odd on the records it was changing, and only
 * then calls pthread_mutex_consistent(). A repair that finds the intent
 * itself garbled poisons the segment (SHL_EPANIC for everyone after).
 */
#ifndef SHL_LOCK_H
#define SHL_LOCK_H

#include <pthread.h>

#include "shm/segment.h"

/* Lock with a deadline (timeout_ms from now). Returns 0 (locked, repaired
 * if needed), -ETIMEDOUT, SHL_EPANIC (poisoned: not locked). */
int shl__lock(struct shl__seg *s, int64_t timeout_ms);
void shl__unlock(struct shl__seg *s);

void shl__intent_set(struct shl__seg *s, enum shl__intent_kind kind,
                     int table, uint32_t index, uint64_t gen);
void shl__intent_clear(struct shl__seg *s);
/* Set the intent's note (call before shl__intent_set). */
void shl__intent_note(struct shl__seg *s, const char *note);

/* Rebuild counts and the index from the records (mutex held). */
void shl__rebuild_derived(struct shl__seg *s);

/* Mark the segment poisoned. */
void shl__poison(struct shl__seg *s, const char *why);

#endif /* SHL_LOCK_H */
