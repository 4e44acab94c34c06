/*
 * events.h: posting events into the segment's event rings (events.c).
 *
 * shl__event_post() is the one function every producer calls: the hot path
 * of calls, the library's event lines and the user's log calls. It never
 * does file I/O when the thread's ring takes the event; see events.c for
 * the producer's side and drain.c for the consumer's.
 */
#ifndef SHL_FILES_EVENTS_H
#define SHL_FILES_EVENTS_H

#include <pthread.h>
#include <stdbool.h>

#include "files/drain.h"
#include "files/render.h"
#include "objects.h"

/* Post an event: into the calling thread's ring of ledger l (taken on the
 * thread's first post), or written directly when no ring can take it.
 * Fires on_log_line on this thread for log lines. Any thread; no lock on
 * the ring path. Returns 0, or the -errno of a direct write. */
int shl__event_post(shl_ledger *l, const struct shl__event *ev);

/* A producer's ring is full: drain one batch here if no other thread of
 * this ledger and no other process is draining (try-locks only, never
 * waits). Returns true if a batch was drained (there may be room now). */
bool shl__events_help(shl_ledger *l);

/* Ledger close: give back the rings the ledger's threads took (their
 * records stay for the next drainer). After the ledger's threads stopped
 * posting. */
void shl__events_close(shl_ledger *l);

#endif /* SHL_FILES_EVENTS_H */
