/*
 * segment.h: the process-local view of one mapped segment.
 *
 * A `struct shl__seg` owns one descriptor (its own open file description,
 * so OFD locks taken through it are distinct from every other handle's) and
 * one mapping. Ledgers and readers each hold one.
 */
#ifndef SHL_SEGMENT_H
#define SHL_SEGMENT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

struct shl__seg {
    int fd;
    bool writable;
    void *base;
    size_t size;
    struct shl__hdr *hdr;
    char name[96];
};

struct shl__seg_params {
    uint32_t cap[SHL__NTABLES];
    uint32_t mode;
    int64_t heartbeat_interval_ms;
    int64_t stale_threshold_ms;
    int64_t timeout_ms;
    uint32_t ev_cap; /* event ring records (rounded up to a power of 2) */
};

/* Initialise a robust, process-shared mutex (the structure lock). Returns
 * 0 or -errno. */
int shl__mutex_init(pthread_mutex_t *m);
/* Does the structure mutex look like one shl__mutex_init made (glibc's
 * kind word, no recursion count, an owner tid in range)? 0, or
 * SHL_ECORRUPT with shl_errmsg saying what is wrong. Lock-free. */
int shl__mutex_check(const pthread_mutex_t *m);
/* Is the object still as large as our mapping? Someone may have
 * truncated it (ftruncate on the shm object): touching the pages beyond
 * its end would raise SIGBUS. 0, or SHL_ECORRUPT ("the segment is
 * gone"). One fstat. */
int shl__seg_check_size(struct shl__seg *s);

/* Name of the segment for base_path (must exist). */
int shl__seg_name(const char *base_path, char *buf, size_t cap);

/* Open or create (writable) / open only (read-only) the named segment.
 * Validates everything; on error the seg is left closed (fd -1). */
int shl__seg_open(struct shl__seg *s, const char *name, bool writable,
                  const struct shl__seg_params *p);
void shl__seg_close(struct shl__seg *s);

/* Validate a mapped header against the mapping size (also used by the
 * fuzz test). Returns 0 or SHL_E*. */
int shl__seg_validate(const struct shl__hdr *h, size_t size, uid_t uid);

uint64_t shl__format_signature(void);

static inline void *
shl__rec_at(const struct shl__seg *s, int table, uint32_t idx)
{
    const struct shl__hdr *h = s->hdr;
    return (char *)s->base + h->off[table] + (uint64_t)idx * h->stride[table];
}

static inline struct shl__part *
shl__part_at(const struct shl__seg *s, uint32_t i)
{
    return (struct shl__part *)shl__rec_at(s, SHL__T_PART, i);
}
static inline struct shl__op *
shl__op_at(const struct shl__seg *s, uint32_t i)
{
    return (struct shl__op *)shl__rec_at(s, SHL__T_OP, i);
}
static inline struct shl__frame *
shl__frame_at(const struct shl__seg *s, uint32_t i)
{
    return (struct shl__frame *)shl__rec_at(s, SHL__T_FRAME, i);
}
static inline struct shl__res *
shl__res_at(const struct shl__seg *s, uint32_t i)
{
    return (struct shl__res *)shl__rec_at(s, SHL__T_RES, i);
}

/* Convert a monotonic timestamp of this boot into wall microseconds. */
static inline int64_t
shl__mono_to_wall_us(const struct shl__seg *s, int64_t mono_ns)
{
    return s->hdr->created_wall_us +
           (mono_ns - s->hdr->created_mono_ns) / 1000;
}

/* OFD byte locks on the segment descriptor. */
int shl__ofd_trylock(int fd, uint64_t byte);   /* 0, -EAGAIN, -errno */
int shl__ofd_unlock(int fd, uint64_t byte);
/* 1 if some other open file description holds a lock on byte, 0 if not. */
int shl__ofd_is_locked(int fd, uint64_t byte);

/* Bump the epoch futex word and wake every waiter. */
void shl__epoch_bump(struct shl__seg *s);
/* Ring participant `slot`'s membership doorbell (a join or leave of an
 * operation it is in): bump its bell word and wake its futex thread if it
 * sleeps. Cheap when nobody sleeps: one atomic add and one load. */
void shl__part_ring(struct shl__seg *s, uint32_t slot);

/* Fork safety (segment.c): library threads bracket their busy sections
 * so a fork() elsewhere waits until they are parked. */
void shl__fork_guard_init(void);
void shl__busy_enter(void);
void shl__busy_leave(void);

/* Process identity helpers. */
uint64_t shl__proc_start_time(int pid); /* 0 if unknown */

/* Is the structure mutex held by a thread (its word names an owner TID)?
 * False when it is free or its owner died (the kernel clears the TID and
 * sets OWNER_DIED). Lock-free; a hint, read by readers deciding whether a
 * record in mid-write under the lock has a writer that may still finish. */
bool shl__lock_has_live_holder(const struct shl__seg *s);

#endif /* SHL_SEGMENT_H */
