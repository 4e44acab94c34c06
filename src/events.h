/*
 * events.h: posting events, and (events.c) the segment's event ring.
 *
 * shl__event_post() is the one function every producer calls: the hot path
 * of calls, the library's event lines and the user's log calls. It never
 * does file I/O when the ring takes the event; see events.c for the ring
 * protocol.
 */
#ifndef SHL_EVENTS_H
#define SHL_EVENTS_H

#include "log.h"

/* Post an event: into the ring, or written directly when the ring cannot
 * take it. Fires on_log_line on this thread for log lines. Returns 0, or
 * the -errno of a direct write. */
int shl__event_post(shl_ledger *l, const struct shl__event *ev);

/* Make every event posted so far (by any process) reach its files: drain
 * the ring here if this ledger can take the snapshotter role, else wait for
 * the holder to pass the current head. Returns 0, or -ETIMEDOUT after
 * timeout_ms (the events then stay in the ring for the holder). */
int shl__events_flush(shl_ledger *l, int64_t timeout_ms);

/* Count a file write error (segment counter when there is a ring). */
void shl__events_count_error(shl_ledger *l);

#endif /* SHL_EVENTS_H */
