/*
 * drain.h: the consumer of the segment's event rings (drain.c), and the
 * ring geometry both sides use.
 *
 * Producers (events.c) append records to their own single-producer ring;
 * the drainer (the snapshotter holder, or a producer whose ring is full)
 * merges the rings' published records by (wall_us, ring, position),
 * renders them and appends them to the operations' files, exactly once
 * whoever dies (ARCHITECTURE §7.3).
 */
#ifndef SHL_FILES_DRAIN_H
#define SHL_FILES_DRAIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "objects.h"

/* Ring i of the segment (i < ev_nrings). */
static inline struct shl__evring *
shl__ev_ring(const struct shl__hdr *h, uint32_t i)
{
    return (struct shl__evring *)((char *)h + h->ev_off +
                                  (uint64_t)i * h->ev_ring_stride);
}

/* The data bytes of ring r. */
static inline char *
shl__ev_data(struct shl__evring *r)
{
    return (char *)(r + 1);
}

/* Consumer state kept by the snapshotter between passes. */
struct shl__drain_state {
    uint64_t fail_seq;      /* 1 + ev_seq of a batch whose writes failed */
    int64_t fail_since_ns;
    void *batch;            /* output buffers and kept files, kept between
                               drain calls */
};

/* Free what a drain state holds (closes its kept files). */
void shl__drain_state_fini(struct shl__drain_state *st);

/* Drain the rings into the files as far as possible, or max_batches
 * batches (0: no limit). One drainer per process at a time (the caller
 * serialises, through shl__drainer.mu), and one per segment: it takes the
 * SHL__LOCK_DRAIN byte and, when another process holds it, returns 0 at
 * once with *blocked set. Finishes a dead drainer's batch first (against
 * the journal). Returns 0 or the first write error (the batch is then kept
 * and redone next time, and abandoned after 30 s of failures). */
int shl__events_drain(shl_ledger *l, struct shl__drain_state *st,
                      bool *blocked, int max_batches);

/* The same with SHL__LOCK_DRAIN already held by the caller (and
 * shl__drainer.mu). */
int shl__events_drain_locked(shl_ledger *l, struct shl__drain_state *st,
                             int max_batches);

/* The in-process drainer: the snapshotter's drain lock and state. A ledger
 * whose snapshotter object exists points l->drainer at its own
 * (snapshotter.c). */
struct shl__drainer {
    pthread_mutex_t mu; /* one drain at a time in this process */
    struct shl__drain_state ds; /* mu */
};

/* A snapshot of every ring's head, to wait for (flush). */
struct shl__ev_marks {
    uint64_t head[SHL__EV_RINGS_MAX];
};
void shl__events_mark(const shl_ledger *l, struct shl__ev_marks *m);
/* Are the records before the marks in the files? */
bool shl__events_reached(const shl_ledger *l, const struct shl__ev_marks *m);
/* Is every ring drained (tail at head)? */
bool shl__events_idle(const struct shl__hdr *h);
/* Is some ring at least a quarter full? (the holder drains again at once) */
bool shl__events_backlog(const struct shl__hdr *h);

#endif /* SHL_FILES_DRAIN_H */
