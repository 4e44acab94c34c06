/*
 * events.c: the producers' side of the segment's event rings (drain.c
 * drains them; ARCHITECTURE §7.3).
 *
 * Each producer thread of a ledger takes one ring of the segment on its
 * first post and keeps it until the ledger closes or the thread exits:
 * the ring's `owner` word, CAS from 0 to SHL__EVOWNER(participant slot,
 * slot generation, thread index). A ring whose owner is proven dead (its
 * participant's OFD liveness byte is free, or the slot changed
 * generation) is taken over the same way: its published records stay
 * where they are, in order, for the drainer; the record it was filling
 * was never published and is overwritten.
 *
 * Posting (no CAS, no claim word, no timeout): fill the record at the
 * ring's head (a padding record first when it would cross the end of the
 * ring's data), then a release store of `head`. Nothing else is written:
 * every cache line the post touches is the thread's ring's own (its head
 * line and its data), apart from the shared wake word every quarter ring.
 *
 * A full ring: drain here if nobody holds the drain right (one batch of
 * every ring, under OFD byte SHL__LOCK_DRAIN), else wait for the live
 * drainer (yielding, at most ORDER_WAIT_NS), and only then write the
 * line directly (counted in ev_unordered when the ring still holds this
 * thread's earlier records). Lines written directly (too long for a
 * record, no ring free, no rings at all) take the drain byte too when
 * there are rings, after draining, so they never overtake the thread's
 * earlier records and never glue onto a torn piece of a dead drainer's
 * write (the next drainer redoes that batch before anything else).
 */
#include "files/events.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "files/opfiles.h"
#include "shm/segment.h"

#define ORDER_WAIT_NS (1000ll * 1000000)

/* ---- the threads' rings ----
 *
 * Per thread, the rings it took, by ledger id (a ledger's address can be
 * reused by the next one: the id cannot). A process-wide registry of live
 * ledgers lets a thread that exits give its rings back (the key's
 * destructor) without touching a ledger that closed meanwhile. */
#define TL_RINGS 8
struct tl_ring {
    uint64_t lid;               /* 0 = unused */
    struct shl__evring *r;
    uint64_t word;              /* our owner word */
};
static __thread struct tl_ring tl[TL_RINGS];

struct live {
    uint64_t lid;
    shl_ledger *l;
    struct live *next;
};
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct live *reg_head;
static _Atomic uint64_t next_lid = 1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t tl_key;

/* A thread that exits gives its rings back (of ledgers still open). */
static void
thread_exit(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&reg_mu);
    for (int i = 0; i < TL_RINGS; i++) {
        if (!tl[i].lid)
            continue;
        for (struct live *v = reg_head; v; v = v->next)
            if (v->lid == tl[i].lid) {
                uint64_t w = tl[i].word;
                atomic_compare_exchange_strong(&tl[i].r->owner, &w, 0);
                break;
            }
        tl[i].lid = 0;
    }
    pthread_mutex_unlock(&reg_mu);
}

/* fork: the registry's lock is NOT held across it. The fork guard's
 * prepare handler (shm/segment.c) waits for every thread's pass to leave
 * the library, and a pass can post an event, which takes reg_mu: a prepare
 * handler of ours taking reg_mu first (it runs first, registered later)
 * deadlocked against such a pass. Every change of the registry is a single
 * store of a fully built node (insert) or of a next pointer (remove), so
 * the child sees a consistent list whatever the other threads were doing;
 * it gets a fresh lock (only the forking thread lives on there) and forgets
 * its rings, none of which are the child's (the parent's ledgers stay
 * listed, unused: their ids never match a ledger the child opens). */
static void
after_fork_child(void)
{
    memset(tl, 0, sizeof(tl));
    pthread_mutex_init(&reg_mu, NULL);
}

static void
key_init(void)
{
    (void)pthread_key_create(&tl_key, thread_exit);
    (void)pthread_atfork(NULL, NULL, after_fork_child);
}

static uint64_t
ledger_id(shl_ledger *l)
{
    uint64_t id = atomic_load_explicit(&l->ev_lid, memory_order_acquire);
    if (id)
        return id;
    pthread_once(&key_once, key_init);
    struct live *v = malloc(sizeof(*v));
    if (!v)
        return 0;
    pthread_mutex_lock(&reg_mu);
    id = atomic_load(&l->ev_lid);
    if (id == 0) {
        id = atomic_fetch_add(&next_lid, 1);
        v->lid = id;
        v->l = l;
        v->next = reg_head;
        /* a child forked now sees the node whole (after_fork_child) */
        atomic_thread_fence(memory_order_release);
        reg_head = v;
        atomic_store_explicit(&l->ev_lid, id, memory_order_release);
        v = NULL;
    }
    pthread_mutex_unlock(&reg_mu);
    free(v);
    return id;
}

/* Is the owner named by w proven dead? */
static bool
owner_dead(shl_ledger *l, uint64_t w)
{
    struct shl__seg *s = &l->seg;
    uint32_t slot = SHL__EVOWNER_SLOT(w);
    if (!(w >> 63) || slot >= s->hdr->cap[SHL__T_PART])
        return true; /* not an owner word: garbage */
    struct shl__part *p = shl__part_at(s, slot);
    if (atomic_load_explicit(&p->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED ||
        (atomic_load(&p->h.gen) & 0xffffffull) != SHL__EVOWNER_GEN(w))
        return true;
    if (slot == l->slot)
        return false; /* ourselves (another thread of this ledger) */
    return shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + slot) == 0;
}

/* Take a ring for this thread: a free one (starting at a spot that spreads
 * threads), else one whose owner is dead. NULL when none is to be had. */
static struct shl__evring *
take_ring(shl_ledger *l, uint64_t word)
{
    struct shl__hdr *h = l->seg.hdr;
    uint32_t n = h->ev_nrings;
    uint32_t start = (uint32_t)((l->slot * 7u + (word >> 12)) % n);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < n; k++) {
            struct shl__evring *r = shl__ev_ring(h, (start + k) % n);
            uint64_t w = atomic_load_explicit(&r->owner, memory_order_relaxed);
            if (w != 0 && (pass == 0 || !owner_dead(l, w)))
                continue;
            if (atomic_compare_exchange_strong_explicit(
                    &r->owner, &w, word, memory_order_acquire,
                    memory_order_relaxed))
                return r;
        }
    return NULL;
}

/* This thread's ring of ledger l, taken on first use; NULL if none. */
static inline struct tl_ring *
my_ring(shl_ledger *l, bool take)
{
    uint64_t lid = atomic_load_explicit(&l->ev_lid, memory_order_relaxed);
    if (SHL__LIKELY(lid != 0 && tl[0].lid == lid))
        return &tl[0];
    if (lid == UINT64_MAX)
        return NULL; /* closing: lines from here on are written directly */
    for (int i = 1; i < TL_RINGS && lid; i++)
        if (tl[i].lid == lid) {
            /* to the front: one compare on the next post */
            struct tl_ring t = tl[i];
            memmove(&tl[1], &tl[0], (size_t)i * sizeof(tl[0]));
            tl[0] = t;
            return &tl[0];
        }
    if (!take || !(lid = ledger_id(l)))
        return NULL;
    uint32_t tix = atomic_fetch_add(&l->ev_tnext, 1);
    uint64_t word = SHL__EVOWNER(l->slot, l->slot_gen, tix);
    struct shl__evring *r = take_ring(l, word);
    if (!r)
        return NULL;
    pthread_setspecific(tl_key, tl); /* any non-NULL: the destructor runs */
    /* the last entry gives its ring back (of a ledger still open) */
    pthread_mutex_lock(&reg_mu);
    struct tl_ring *last = &tl[TL_RINGS - 1];
    if (last->lid)
        for (struct live *v = reg_head; v; v = v->next)
            if (v->lid == last->lid) {
                uint64_t w = last->word;
                atomic_compare_exchange_strong(&last->r->owner, &w, 0);
                break;
            }
    memmove(&tl[1], &tl[0], (TL_RINGS - 1) * sizeof(tl[0]));
    tl[0] = (struct tl_ring){.lid = lid, .r = r, .word = word};
    pthread_mutex_unlock(&reg_mu);
    return &tl[0];
}

void
shl__events_close(shl_ledger *l)
{
    uint64_t lid = atomic_load(&l->ev_lid);
    if (lid == UINT64_MAX)
        return;
    pthread_mutex_lock(&reg_mu);
    for (struct live **pv = &reg_head; *pv; pv = &(*pv)->next)
        if ((*pv)->lid == lid) {
            struct live *v = *pv;
            *pv = v->next;
            free(v);
            break;
        }
    atomic_store(&l->ev_lid, UINT64_MAX);
    pthread_mutex_unlock(&reg_mu);
    /* every ring a thread of ours took (any thread index) */
    struct shl__hdr *h = l->seg.hdr;
    uint64_t mine = SHL__EVOWNER_PART(SHL__EVOWNER(l->slot, l->slot_gen, 0));
    for (uint32_t i = 0; h && i < h->ev_nrings; i++) {
        struct shl__evring *r = shl__ev_ring(h, i);
        uint64_t w = atomic_load(&r->owner);
        if (w && SHL__EVOWNER_PART(w) == mine)
            atomic_compare_exchange_strong(&r->owner, &w, 0);
    }
    for (int i = 0; i < TL_RINGS; i++)
        if (tl[i].lid == lid)
            tl[i].lid = 0;
}

/* ---- direct writes ---- */

static bool
ring_empty(struct shl__evring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) >=
           atomic_load_explicit(&r->head, memory_order_relaxed);
}

/* Write the event's lines ourselves. With rings in the segment: under the
 * drain byte, after a drain that empties our ring (so nothing of ours is
 * overtaken, and any dead drainer's batch is redone first); waiting for a
 * live drainer at most ORDER_WAIT_NS (then written all the same, counted
 * in ev_unordered if our ring still holds records). */
static int
write_direct(shl_ledger *l, const struct shl__event *ev)
{
    struct shl__hdr *h = l->seg.hdr;
    if (h)
        atomic_fetch_add_explicit(&h->ev_fallback, 1, memory_order_relaxed);
    struct shl__drainer *d = l->drainer;
    if (!h || h->ev_nrings == 0 || !d)
        return shl__event_write_direct(l, ev);
    struct tl_ring *t = my_ring(l, false);
    int64_t until = 0;
    for (;;) {
        if (pthread_mutex_trylock(&d->mu) == 0) {
            if (shl__ofd_trylock(l->seg.fd, SHL__LOCK_DRAIN) == 0) {
                for (int k = 0; k < 64; k++) {
                    (void)shl__events_drain_locked(l, &d->ds, 1);
                    if (!t || ring_empty(t->r))
                        break;
                }
                if (t && !ring_empty(t->r))
                    atomic_fetch_add_explicit(&h->ev_unordered, 1,
                                              memory_order_relaxed);
                int rc = shl__event_write_direct(l, ev);
                shl__ofd_unlock(l->seg.fd, SHL__LOCK_DRAIN);
                pthread_mutex_unlock(&d->mu);
                return rc;
            }
            pthread_mutex_unlock(&d->mu);
        }
        int64_t now = shl__mono_ns();
        if (!until)
            until = now + ORDER_WAIT_NS;
        else if (now > until)
            break;
        sched_yield();
    }
    if (t && !ring_empty(t->r))
        atomic_fetch_add_explicit(&h->ev_unordered, 1, memory_order_relaxed);
    return shl__event_write_direct(l, ev);
}

/* ---- posting ---- */

static inline uint32_t
rec_size(size_t idlen, size_t a, size_t b)
{
    return (uint32_t)((sizeof(struct shl__evhdr) + idlen + a + b + 7) &
                      ~(size_t)7);
}

/* Room for `need` bytes at head (need includes padding)? */
static inline bool
has_room(const struct shl__hdr *h, struct shl__evring *r, uint64_t head,
         uint64_t need)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return head + need - tail <= h->ev_ring_bytes;
}

/* Sleep until the drainer moved our ring's tail (it bumps r->room and
 * wakes us when room_wait is set), or ROOM_SLEEP_NS passed. Dekker pairing
 * with batch_finish (drain.c): we set room_wait then read tail, it stores
 * tail then reads room_wait (each with a full fence between): either it
 * sees our flag and wakes us, or we see its tail. */
#define ROOM_SLEEP_NS (1000ll * 1000)
static void
wait_room(struct shl__hdr *h, struct shl__evring *r, uint64_t head,
          uint64_t need)
{
    uint32_t seen = atomic_load_explicit(&r->room, memory_order_acquire);
    atomic_store_explicit(&r->room_wait, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!has_room(h, r, head, need)) {
        struct timespec ts = {0, ROOM_SLEEP_NS};
        syscall(SYS_futex, (uint32_t *)&r->room, FUTEX_WAIT, seen, &ts, NULL,
                0);
    }
    atomic_store_explicit(&r->room_wait, 0, memory_order_relaxed);
}

/* The ring is full: drain here, or sleep until the live drainer made room
 * (woken by it, or every ROOM_SLEEP_NS to look again), at most
 * ORDER_WAIT_NS in all. True once there is room. The wait sleeps rather
 * than yields: a producer spinning on sched_yield (and a failing OFD
 * try-lock, a syscall) took the CPU the drainer needed on a 2-core machine,
 * and two producers made fewer pairs per second than one (issue 14). */
static bool
make_room(shl_ledger *l, struct shl__evring *r, uint64_t head, uint64_t need)
{
    struct shl__hdr *h = l->seg.hdr;
    int64_t until = 0;
    for (;;) {
        if (shl__events_help(l) && has_room(h, r, head, need))
            return true;
        if (has_room(h, r, head, need))
            return true;
        int64_t now = shl__mono_ns();
        if (!until)
            until = now + ORDER_WAIT_NS;
        else if (now > until)
            return false;
        wait_room(h, r, head, need);
        if (has_room(h, r, head, need))
            return true;
    }
}

int
shl__event_post(shl_ledger *l, const struct shl__event *ev)
{
    shl__event_notify(l, ev);
    struct shl__hdr *h = l->seg.hdr;
    size_t idlen = strlen(ev->op_id);
    if (h->ev_nrings == 0 || idlen > SHL_OPERATION_ID_MAX ||
        ev->a_len > UINT16_MAX || ev->b_len > UINT16_MAX)
        return write_direct(l, ev);
    uint32_t size = rec_size(idlen, ev->a_len, ev->b_len);
    uint32_t rb = h->ev_ring_bytes;
    if (size > SHL__EV_REC_MAX || size > rb / 4)
        return write_direct(l, ev);
    struct tl_ring *t = my_ring(l, true);
    if (!t)
        return write_direct(l, ev); /* every ring taken by a live thread */
    struct shl__evring *r = t->r;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t off = head & (rb - 1);
    uint64_t pad = off + size > rb ? rb - off : 0;
    if (SHL__UNLIKELY(!has_room(h, r, head, pad + size)) &&
        !make_room(l, r, head, pad + size))
        return write_direct(l, ev);
    char *data = shl__ev_data(r);
    if (pad) {
        struct shl__evhdr ph = {.size = (uint32_t)pad, .kind = SHL__EV_NONE};
        memcpy(data + off, &ph, sizeof(ph.size) + sizeof(ph.kind));
        off = 0;
    }
    char *p = data + off;
    struct shl__evhdr e = {
        .size = size,
        .kind = (uint8_t)ev->kind,
        .level = (uint8_t)ev->level,
        .idlen = (uint8_t)idlen,
        .pid = ev->pid,
        .len_a = (uint16_t)ev->a_len,
        .len_b = (uint16_t)ev->b_len,
        .wall_us = ev->wall_us,
        .value = ev->value,
    };
    memcpy(p, &e, sizeof(e));
    p += sizeof(e);
    memcpy(p, ev->op_id, idlen);
    p += idlen;
    if (ev->a_len)
        memcpy(p, ev->a, ev->a_len);
    if (ev->b_len)
        memcpy(p + ev->a_len, ev->b, ev->b_len);
    SHL_CRASH_POINT("event.filled");
    uint64_t nh = head + pad + size;
    atomic_store_explicit(&r->head, nh, memory_order_release);
    /* every quarter ring, wake the snapshotter (one syscall per quarter
     * ring): it drains while the ring still has room */
    if (SHL__UNLIKELY(nh / (rb / 4) != head / (rb / 4))) {
        atomic_fetch_add_explicit(&h->ev_wake, 1, memory_order_release);
        syscall(SYS_futex, (uint32_t *)&h->ev_wake, FUTEX_WAKE, INT32_MAX,
                NULL, NULL, 0);
    }
    return 0;
}

bool
shl__events_help(shl_ledger *l)
{
    struct shl__drainer *d = l->drainer;
    if (!d || pthread_mutex_trylock(&d->mu) != 0)
        return false; /* a thread of ours is draining already */
    bool blocked = true;
    (void)shl__events_drain(l, &d->ds, &blocked, 1);
    pthread_mutex_unlock(&d->mu);
    return !blocked;
}
