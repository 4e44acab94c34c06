/*
 * events.h: posting events, and (events.c) the segment's event ring.
 *
 * shl__event_post() is the one function every producer calls: the hot path
 * of calls, the library's event lines and the user's log calls. It never
 * does file I/O when the ring takes the event; see events.c for the ring
 * protocol.
 */
#ifndef SHL_FILES_EVENTS_H
#define SHL_FILES_EVENTS_H

#include <pthread.h>
#include <stdbool.h>

#include "files/render.h"
#include "objects.h"

/* Post an event: into the ring, or written directly when the ring cannot
 * take it. Fires on_log_line on this thread for log lines. Returns 0, or
 * the -errno of a direct write. */
int shl__event_post(shl_ledger *l, const struct shl__event *ev);

/* Consumer state kept by the snapshotter between passes. */
struct shl__drain_state {
    uint64_t wait_pos;      /* position + 1 waited on without a name */
    int64_t wait_since_ns;
    uint64_t fail_pos;      /* tail + 1 of a batch whose writes failed */
    int64_t fail_since_ns;
    void *batch;            /* output buffers, kept between batches */
};

/* Free what a drain state holds. */
void shl__drain_state_fini(struct shl__drain_state *st);

/* Drain the ring into the files as far as possible, or max_batches batches
 * (0: no limit). One drainer per process at a time (the caller serialises),
 * and one per segment: it takes the SHL__LOCK_DRAIN byte and, when another
 * process is draining, returns 0 at once with *blocked set. *blocked is
 * set when it stopped at a record whose live producer has not committed it yet. Returns 0 or the
 * first write error (the batch is then kept and redone next time, and
 * abandoned after 30 s of failures). */
int shl__events_drain(shl_ledger *l, struct shl__drain_state *st,
                      bool *blocked, int max_batches);

/* The in-process drainer: the snapshotter's drain lock and state. A ledger
 * whose snapshotter runs points l->drainer at its own (snapshotter.c). */
struct shl__drainer {
    pthread_mutex_t mu; /* one drain at a time in this process */
    struct shl__drain_state ds; /* mu */
};

/* A producer found the ring full: drain one batch here if no other thread of
 * this ledger and no other process is draining (try-locks only, never
 * waits). Returns true if a batch was drained (there may be room now). */
bool shl__events_help(shl_ledger *l);

/* Close and free the files the ledger's producers kept open while the ring
 * was full (ledger close). */
void shl__events_fallback_free(shl_ledger *l);


#endif /* SHL_FILES_EVENTS_H */
