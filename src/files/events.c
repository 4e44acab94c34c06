/*
 * events.c: the segment's event ring: producers post, the snapshotter
 * drains.
 *
 * Ring (layout.h: shl__evrec, hdr ev_head/ev_tail). Positions grow without
 * bound; record i holds positions p with p % cap == i.
 *
 * Producer (any thread of any participant, no structure lock):
 *   1. claim: CAS ev_head p -> p + 1, only while p - ev_tail < cap. A full
 *      ring is refused here, before anything is claimed, so the caller can
 *      write the line itself without leaving a hole. (A plain fetch-add, as
 *      DESIGN §7 sketches, cannot refuse: it would claim a position whose
 *      record is still unread and leave a hole the consumer must skip.)
 *   2. name itself: CAS the record's `claim` word from its previous value to
 *      ((p + 1) << 25 | gen12 << 12 | slot). If the word already names p
 *      (the consumer gave up on p, see below) the producer writes directly.
 *   3. fill the fields, then store `commit` = p + 1 with release.
 * Consumer (the snapshotter, one per segment):
 *   - commit == t + 1: the record is complete; render it.
 *   - claim names t and its producer is alive: wait (it is between 2 and 3).
 *   - claim names t and its producer is dead (its participant liveness lock
 *     is gone, or the slot changed generation): skip t (ev_skipped).
 *   - claim does not name t yet (a producer between 1 and 2): wait; after
 *     UNNAMED_TIMEOUT CAS the claim word to "t skipped". The CAS decides
 *     against a producer that is just naming itself: exactly one wins.
 * A claimed record of a dead producer is therefore never waited on forever.
 *
 * Exactly-once into the files: before writing a batch [tail, end) the
 * consumer stores ev_inflight = end; after every write succeeded it stores
 * ev_tail = end. A consumer that finds ev_inflight > ev_tail (its
 * predecessor died mid-batch, or a write failed) renders those records
 * again and appends only the lines not already at the end of each file
 * (trail lines carry their position, log lines a microsecond timestamp).
 */
#include "files/events.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <xxhash.h>

#include "internal.h"
#include "files/json.h"
#include "shm/segment.h"
#include "files/journal.h"
#include "files/render.h"

#define UNNAMED_TIMEOUT_NS (1000ll * 1000000)
#define GIVE_UP_NS (30000ll * 1000000)
#define CHUNK 4096 /* records per batch, at most */

#define CLAIM_SKIP (1ull << 24)

static inline uint64_t
claim_word(uint64_t pos, uint32_t slot, uint64_t gen)
{
    return ((pos + 1) << 25) | ((gen & 0xfffu) << 12) | (slot & 0xfffu);
}
static inline uint64_t
claim_pos1(uint64_t w) /* position + 1 named by the word */
{
    return w >> 25;
}

static inline struct shl__evrec *
ev_at(const struct shl__seg *s, uint64_t pos)
{
    const struct shl__hdr *h = s->hdr;
    return (struct shl__evrec *)((char *)s->base + h->ev_off) +
           (pos & (h->ev_cap - 1));
}

/* ---- files kept open ----
 *
 * Appending through open(O_APPEND)+write+close costs three syscalls per
 * file; a stretch of many appends keeps the descriptors instead. Used by
 * the drain (while one drain call loops over a saturated ring) and by the
 * producers' fallback (while the ring stays full). Both close them when the
 * stretch ends, so an idle process holds no descriptor and a file the
 * archive renamed is not written through a stale one beyond that stretch. */
#define KEPT_FILES 8
struct shl__kept {
    struct {
        char op_id[SHL_OPERATION_ID_MAX + 1];
        enum shl__file file;
        int fd; /* -1: unused */
        uint64_t used;
    } f[KEPT_FILES];
    uint64_t clock;
    int open;
};

static void
kept_init(struct shl__kept *k)
{
    memset(k, 0, sizeof(*k));
    for (int i = 0; i < KEPT_FILES; i++)
        k->f[i].fd = -1;
}

static void
kept_close(struct shl__kept *k)
{
    for (int i = 0; i < KEPT_FILES; i++)
        if (k->f[i].fd >= 0) {
            close(k->f[i].fd);
            k->f[i].fd = -1;
        }
    k->open = 0;
}

/* Append data to file f of op_id through a kept descriptor (opened
 * O_APPEND|O_CREAT on first use; the least recently used one is closed
 * when all are taken). A failed write closes its descriptor: the retry
 * opens the path afresh (a removed and recreated basePath, say). */
/* The kept descriptor of file f of op_id, or -1 (nothing opened). */
static int
kept_find(const struct shl__kept *k, const char *op_id, enum shl__file f)
{
    for (int i = 0; i < KEPT_FILES; i++)
        if (k->f[i].fd >= 0 && k->f[i].file == f &&
            !strcmp(k->f[i].op_id, op_id))
            return k->f[i].fd;
    return -1;
}

static int
kept_slot(shl_ledger *l, struct shl__kept *k, const char *op_id,
          enum shl__file f)
{
    int slot = -1, lru = 0;
    for (int i = 0; i < KEPT_FILES; i++) {
        if (k->f[i].fd >= 0 && k->f[i].file == f &&
            !strcmp(k->f[i].op_id, op_id)) {
            slot = i;
            break;
        }
        if (k->f[i].fd < 0 ||
            (k->f[lru].fd >= 0 && k->f[i].used < k->f[lru].used))
            lru = i;
    }
    if (slot < 0) {
        /* beside the operation, or in its archive (render.c) */
        int fd = shl__op_file_open_append(l, l->base_path, op_id, f);
        if (fd < 0)
            return fd;
        if (k->f[lru].fd >= 0)
            close(k->f[lru].fd);
        else
            k->open++;
        slot = lru;
        memcpy(k->f[slot].op_id, op_id, strlen(op_id) + 1);
        k->f[slot].file = f;
        k->f[slot].fd = fd;
    }
    k->f[slot].used = ++k->clock;
    return slot;
}

static int
kept_append(shl_ledger *l, struct shl__kept *k, const char *op_id,
            enum shl__file f, const char *data, size_t len)
{
    int slot = kept_slot(l, k, op_id, f);
    if (slot < 0)
        return slot;
    int rc = shl__write_all(k->f[slot].fd, data, len);
    if (rc != 0) {
        close(k->f[slot].fd);
        k->f[slot].fd = -1;
        k->open--;
    }
    return rc;
}

/* ---- producer ---- */

/* Ask for the next record's first lines in exclusive state while this
 * record is being filled. The snapshotter (another core) read them last, so
 * a plain store would stall on taking them back; PREFETCHW overlaps that
 * transfer with the work until the next post. Only where the CPU has it
 * (CPUID 0x80000001 ECX bit 8); elsewhere nothing is issued. */
static int
have_prefetchw(void)
{
#if defined(__x86_64__) || defined(__i386__)
    static _Atomic int known; /* 0 unknown, 1 no, 2 yes */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        k = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & (1u << 8)) ? 2
                                                                      : 1;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 2;
#else
    return 0;
#endif
}

static inline void
prefetch_for_write(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

/* Before a line of ours is written directly: our earlier ring records
 * must be in the files first, or the line would overtake them (the ring's
 * tail moves only once a batch is in the files). Drain them ourselves
 * when nobody is draining (a dead snapshotter's successor, typically);
 * while another drainer holds the drain byte it is writing them now:
 * yield until the tail passes ours, for at most ORDER_WAIT_NS (a drainer
 * stuck that long loses the order, counted in ev_unordered, never a
 * line). */
#define ORDER_WAIT_NS (1000ll * 1000000)
static void
order_before_direct(shl_ledger *l)
{
    struct shl__hdr *h = l->seg.hdr;
    if (!h || h->ev_cap == 0)
        return;
    uint64_t mine = atomic_load_explicit(&l->ev_last, memory_order_relaxed);
    if (atomic_load_explicit(&h->ev_tail, memory_order_acquire) >= mine)
        return;
    int64_t until = shl__mono_ns() + ORDER_WAIT_NS;
    for (;;) {
        if (!shl__events_help(l))
            sched_yield();
        if (atomic_load_explicit(&h->ev_tail, memory_order_acquire) >= mine)
            return;
        if (shl__mono_ns() > until) {
            atomic_fetch_add_explicit(&h->ev_unordered, 1,
                                      memory_order_relaxed);
            return;
        }
    }
}

static int
fallback(shl_ledger *l, const struct shl__event *ev)
{
    order_before_direct(l);
    if (l->seg.hdr)
        atomic_fetch_add_explicit(&l->seg.hdr->ev_fallback, 1,
                                  memory_order_relaxed);
    return shl__event_write_direct(l, ev);
}

static int
kept_append_cb(void *ctx, shl_ledger *l, const char *op_id, enum shl__file f,
               const char *data, size_t len)
{
    return kept_append(l, ctx, op_id, f, data, len);
}

/* The ring is full: write the event's lines to its files through the
 * ledger's kept descriptors (a full ring tends to stay full for a while:
 * an open and close per line made each event cost ~14 us instead of ~4). */
static int
fallback_full(shl_ledger *l, const struct shl__event *ev)
{
    order_before_direct(l);
    atomic_fetch_add_explicit(&l->seg.hdr->ev_fallback, 1,
                              memory_order_relaxed);
    pthread_mutex_lock(&l->fb_mu);
    if (!l->fb_files && (l->fb_files = malloc(sizeof(*l->fb_files))))
        kept_init(l->fb_files);
    /* without memory for the kept set, open and close per line */
    int rc = shl__event_write_via(l, ev, l->fb_files ? kept_append_cb : NULL,
                                  l->fb_files);
    atomic_store_explicit(&l->fb_any, l->fb_files && l->fb_files->open > 0,
                          memory_order_relaxed);
    pthread_mutex_unlock(&l->fb_mu);
    return rc;
}

static void
fallback_close(shl_ledger *l)
{
    pthread_mutex_lock(&l->fb_mu);
    if (l->fb_files)
        kept_close(l->fb_files);
    atomic_store_explicit(&l->fb_any, false, memory_order_relaxed);
    pthread_mutex_unlock(&l->fb_mu);
}

void
shl__events_fallback_free(shl_ledger *l)
{
    pthread_mutex_lock(&l->fb_mu);
    if (l->fb_files) {
        kept_close(l->fb_files);
        free(l->fb_files);
        l->fb_files = NULL;
    }
    atomic_store_explicit(&l->fb_any, false, memory_order_relaxed);
    pthread_mutex_unlock(&l->fb_mu);
}

/* Back-pressure: wait (yielding the CPU) up to ring_full_wait_us for the
 * snapshotter to make room, only while one exists (nobody else would make
 * room). Our own snapshotter thread counts by the option: a lock held
 * through our own descriptor does not show in the test. Returns true if it
 * waited (whether or not room came). */
static bool
wait_for_room(shl_ledger *l)
{
    struct shl__hdr *h = l->seg.hdr;
    if (!l->opts.snapshotter &&
        shl__ofd_is_locked(l->seg.fd, SHL__LOCK_SNAPSHOTTER) != 1)
        return false;
    int64_t until = shl__mono_ns() + l->opts.ring_full_wait_us * 1000;
    do
        sched_yield();
    while (atomic_load_explicit(&h->ev_head, memory_order_relaxed) -
                   atomic_load_explicit(&h->ev_tail, memory_order_acquire) >=
               h->ev_cap &&
           shl__mono_ns() < until);
    return true;
}

int
shl__event_post(shl_ledger *l, const struct shl__event *ev)
{
    shl__event_notify(l, ev);
    struct shl__seg *s = &l->seg;
    struct shl__hdr *h = s->hdr;
    uint32_t cap = h->ev_cap;
    size_t idlen = strlen(ev->op_id);
    if (cap == 0 || ev->a_len + ev->b_len > SHL__EV_TEXT ||
        idlen > SHL_OPERATION_ID_MAX || l->slot >= 4096)
        return fallback(l, ev);

    uint64_t pos = atomic_load_explicit(&h->ev_head, memory_order_relaxed);
    uint64_t tail;
    bool yielded = false, helped = false, waited = false, ordered = false;
    for (;;) {
        tail = atomic_load_explicit(&h->ev_tail, memory_order_acquire);
        if (pos - tail >= cap) {
            /* Full. Writing the lines ourselves costs ~20 times what the
             * snapshotter spends on them, so when producers outrun it the
             * fallback would eat the CPU it needs to catch up. Give up the
             * CPU once (sched_yield returns at once when nothing else is
             * runnable here: no wait), then write them ourselves. */
            if (!yielded) {
                yielded = true;
                sched_yield();
                pos = atomic_load_explicit(&h->ev_head, memory_order_relaxed);
                continue;
            }
            /* opt-in back-pressure (ring_full_wait_us) */
            if (!waited && l->opts.ring_full_wait_us > 0) {
                waited = true;
                if (wait_for_room(l)) {
                    pos = atomic_load_explicit(&h->ev_head,
                                               memory_order_relaxed);
                    continue;
                }
            }
            /* Our own earlier records are still in the ring: a line
             * written now would overtake them. Drain up to them (or let
             * the live drainer pass them), then try the ring again: it
             * has room once the tail moved. */
            if (!ordered && tail < atomic_load_explicit(&l->ev_last,
                                                        memory_order_relaxed)) {
                ordered = true;
                order_before_direct(l);
                pos = atomic_load_explicit(&h->ev_head, memory_order_relaxed);
                continue;
            }
            /* Still full: drain one batch ourselves if nobody is draining
             * (a try-lock: no waiting on anyone). Writing a batch costs
             * about what writing ~40 of our own lines would, and it makes
             * room for the next ~quarter ring of events. */
            if (!helped && l->opts.snapshotter) {
                helped = true;
                if (shl__events_help(l)) {
                    pos = atomic_load_explicit(&h->ev_head,
                                               memory_order_relaxed);
                    continue;
                }
            }
            return fallback_full(l, ev); /* never block the caller */
        }
        if (atomic_compare_exchange_weak_explicit(&h->ev_head, &pos, pos + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    atomic_store_explicit(&l->ev_last, pos + 1, memory_order_relaxed);
    SHL_CRASH_POINT("event.claimed");
    /* the ring is back under half full: the stretch of writing lines
     * ourselves is over (not at the first free record: a ring that hovers
     * at full would open and close the files over and over) */
    if (SHL__UNLIKELY(atomic_load_explicit(&l->fb_any,
                                           memory_order_relaxed)) &&
        pos - tail < cap / 2)
        fallback_close(l);
    /* every quarter ring, wake the snapshotter (one syscall per cap/4
     * events): it drains while the ring still has room */
    if ((pos & ((cap >> 2) - 1)) == 0 && cap >= 4) {
        atomic_fetch_add_explicit(&h->ev_wake, 1, memory_order_release);
        syscall(SYS_futex, (uint32_t *)&h->ev_wake, FUTEX_WAKE, INT32_MAX,
                NULL, NULL, 0);
    }
    struct shl__evrec *r = ev_at(s, pos);
    if (have_prefetchw()) {
        const char *next = (const char *)ev_at(s, pos + 1);
        prefetch_for_write(next);
        prefetch_for_write(next + offsetof(struct shl__evrec, op_id));
        prefetch_for_write(next + offsetof(struct shl__evrec, text));
    }
    uint64_t mine = claim_word(pos, l->slot, l->slot_gen);
    uint64_t w = atomic_load_explicit(&r->claim, memory_order_acquire);
    do {
        if (claim_pos1(w) >= pos + 1)
            return fallback(l, ev); /* the consumer gave up on us */
    } while (!atomic_compare_exchange_weak_explicit(
        &r->claim, &w, mine, memory_order_acq_rel, memory_order_acquire));
    SHL_CRASH_POINT("event.named");
    r->kind = (uint16_t)ev->kind;
    r->level = (uint16_t)ev->level;
    r->len_a = (uint16_t)ev->a_len;
    r->len_b = (uint16_t)ev->b_len;
    r->part_slot = l->slot;
    r->pid = ev->pid;
    r->wall_us = ev->wall_us;
    r->value = ev->value;
    memcpy(r->op_id, ev->op_id, idlen + 1);
    if (ev->a_len)
        memcpy(r->text, ev->a, ev->a_len);
    if (ev->b_len)
        memcpy(r->text + ev->a_len, ev->b, ev->b_len);
    SHL_CRASH_POINT("event.filled");
    atomic_store_explicit(&r->commit, pos + 1, memory_order_release);
    return 0;
}

/* ---- consumer ---- */

/* Is the producer named by claim word w alive? */
static bool
producer_alive(shl_ledger *l, uint64_t w)
{
    struct shl__seg *s = &l->seg;
    uint32_t slot = (uint32_t)(w & 0xfffu);
    uint64_t gen12 = (w >> 12) & 0xfffu;
    if (slot >= s->hdr->cap[SHL__T_PART])
        return false;
    if (slot == l->slot)
        return (l->slot_gen & 0xfffu) == gen12;
    struct shl__part *p = shl__part_at(s, slot);
    if (atomic_load_explicit(&p->h.state, memory_order_acquire) !=
            SHL__R_ALLOCATED ||
        (atomic_load(&p->h.gen) & 0xfffu) != gen12)
        return false;
    return shl__ofd_is_locked(s->fd, SHL__LOCK_PART_BASE + slot) == 1;
}

enum verdict { V_READY, V_SKIP, V_WAIT };

static enum verdict
examine(shl_ledger *l, struct shl__drain_state *st, uint64_t t,
        struct shl__evrec *copy)
{
    struct shl__evrec *r = ev_at(&l->seg, t);
    for (;;) {
        if (atomic_load_explicit(&r->commit, memory_order_acquire) == t + 1) {
            /* the head and only the text in use (not the whole 512 B) */
            memcpy(copy, r, offsetof(struct shl__evrec, text));
            size_t used = (size_t)copy->len_a + copy->len_b;
            if (used > sizeof(copy->text))
                used = sizeof(copy->text); /* garbage: rejected later */
            memcpy(copy->text, r->text, used);
            return V_READY;
        }
        uint64_t w = atomic_load_explicit(&r->claim, memory_order_acquire);
        if (claim_pos1(w) == t + 1) {
            if (w & CLAIM_SKIP)
                return V_SKIP;
            if (producer_alive(l, w))
                return V_WAIT;
            /* dead: it may still have committed just before dying */
            if (atomic_load_explicit(&r->commit, memory_order_acquire) ==
                t + 1)
                continue;
            atomic_fetch_add(&l->seg.hdr->ev_skipped, 1);
            return V_SKIP;
        }
        /* claimed (head passed t) but not named yet */
        int64_t now = shl__mono_ns();
        if (st->wait_pos != t + 1) {
            st->wait_pos = t + 1;
            st->wait_since_ns = now;
            return V_WAIT;
        }
        if (now - st->wait_since_ns < UNNAMED_TIMEOUT_NS)
            return V_WAIT;
        uint64_t skip = ((t + 1) << 25) | CLAIM_SKIP | 0xfffu;
        if (atomic_compare_exchange_strong(&r->claim, &w, skip)) {
            atomic_fetch_add(&l->seg.hdr->ev_skipped, 1);
            return V_SKIP;
        }
        /* the producer named itself meanwhile: look again */
    }
}

/* One output buffer per (operation, file) of a batch. */
struct outbuf {
    char op_id[SHL_OPERATION_ID_MAX + 1];
    enum shl__file file;
    struct shl__sbuf b;
};

struct batch {
    struct shl__kept files;
    struct outbuf *v;
    size_t n, cap;
    size_t hint[SHL__NFILES]; /* per file, the entry used last */
    size_t inited; /* entries whose buffer is set up (kept across batches:
                      re-growing ~1 MB of buffers every batch costs page
                      faults and copies on the snapshotter's hot loop) */
    /* (operation, file) -> entry, open addressing; a slot is in use when
     * its stamp equals `stamp` (a new batch bumps it: no clearing). A batch
     * over many operations searched its entries linearly per event. */
    uint32_t *tab, *tab_stamp;
    size_t tab_cap; /* power of two, >= 2 n */
    uint32_t stamp;
};

static size_t
key_hash(const char *op_id, size_t len, enum shl__file f)
{
    return (size_t)(XXH3_64bits(op_id, len) + (uint64_t)f * 0x9e3779b97f4a7c15ull);
}

static bool
tab_grow(struct batch *bt)
{
    size_t nc = bt->tab_cap ? bt->tab_cap * 2 : 64;
    uint32_t *t = malloc(nc * sizeof(*t));
    uint32_t *st = calloc(nc, sizeof(*st));
    if (!t || !st) {
        free(t);
        free(st);
        return false;
    }
    free(bt->tab);
    free(bt->tab_stamp);
    bt->tab = t;
    bt->tab_stamp = st;
    bt->tab_cap = nc;
    bt->stamp = 1;
    for (size_t i = 0; i < bt->n; i++) {
        size_t j = key_hash(bt->v[i].op_id, strlen(bt->v[i].op_id),
                            bt->v[i].file) & (nc - 1);
        while (st[j] == 1)
            j = (j + 1) & (nc - 1);
        st[j] = 1;
        t[j] = (uint32_t)i;
    }
    return true;
}

static struct shl__sbuf *
batch_buf(struct batch *bt, const char *op_id, enum shl__file f)
{
    size_t h = bt->hint[f];
    if (h < bt->n && bt->v[h].file == f && !strcmp(bt->v[h].op_id, op_id))
        return &bt->v[h].b;
    if (2 * (bt->n + 1) > bt->tab_cap && !tab_grow(bt))
        return NULL;
    size_t len = strlen(op_id);
    size_t mask = bt->tab_cap - 1;
    size_t j = key_hash(op_id, len, f) & mask;
    for (; bt->tab_stamp[j] == bt->stamp; j = (j + 1) & mask) {
        struct outbuf *o = &bt->v[bt->tab[j]];
        if (o->file == f && !strcmp(o->op_id, op_id)) {
            bt->hint[f] = bt->tab[j];
            return &o->b;
        }
    }
    if (bt->n == bt->cap) {
        size_t nc = bt->cap ? bt->cap * 2 : 8;
        struct outbuf *p = realloc(bt->v, nc * sizeof(*p));
        if (!p)
            return NULL;
        bt->v = p;
        bt->cap = nc;
        /* the buffers moved: re-point those still using their own array */
        for (size_t i = 0; i < bt->inited; i++)
            if (!bt->v[i].b.heap)
                bt->v[i].b.p = bt->v[i].b.local;
    }
    struct outbuf *o = &bt->v[bt->n];
    memcpy(o->op_id, op_id, len + 1);
    o->file = f;
    if (bt->n < bt->inited)
        shl__sbuf_reset(&o->b);
    else {
        shl__sbuf_init(&o->b);
        bt->inited = bt->n + 1;
    }
    bt->tab_stamp[j] = bt->stamp;
    bt->tab[j] = (uint32_t)bt->n;
    bt->hint[f] = bt->n;
    bt->n++;
    return &o->b;
}

/* Forget the batch's contents, keep its buffers. */
static void
batch_reset(struct batch *bt)
{
    bt->n = 0;
    if (++bt->stamp == 0) { /* wrapped: clear the stamps once */
        if (bt->tab_stamp)
            memset(bt->tab_stamp, 0, bt->tab_cap * sizeof(*bt->tab_stamp));
        bt->stamp = 1;
    }
}

static struct batch *
batch_new(void)
{
    struct batch *bt = calloc(1, sizeof(*bt));
    if (bt)
        kept_init(&bt->files);
    return bt;
}

void
shl__drain_state_fini(struct shl__drain_state *st)
{
    struct batch *bt = st->batch;
    if (!bt)
        return;
    kept_close(&bt->files);
    for (size_t i = 0; i < bt->inited; i++)
        shl__sbuf_fini(&bt->v[i].b);
    free(bt->tab);
    free(bt->tab_stamp);
    free(bt->v);
    free(bt);
    st->batch = NULL;
}

/* Before a fresh batch's write to file f of op_id: end a torn last line
 * (after the journal: the newline lands past the size recorded, and a
 * redo's hash of an empty line matches nothing of ours). */
static int
end_torn_tail(shl_ledger *l, struct shl__kept *k, const char *op_id,
              enum shl__file f)
{
    int slot = kept_slot(l, k, op_id, f);
    if (slot < 0)
        return slot;
    struct stat st;
    if (fstat(k->f[slot].fd, &st) != 0 || !shl__journal_torn_tail(k->f[slot].fd, &st))
        return 0;
    return kept_append(l, k, op_id, f, "\n", 1);
}

/* Before a fresh batch's writes: record every target file's size, then
 * publish the journal and ev_inflight = end (release), in that order, so a
 * successor that sees ev_inflight > ev_tail finds a complete journal. */
static int
journal_write(shl_ledger *l, struct batch *bt, uint64_t tail, uint64_t end)
{
    struct shl__hdr *h = l->seg.hdr;
    atomic_store_explicit(&h->ev_jn, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < bt->n; i++) {
        struct outbuf *o = &bt->v[i];
        char path[PATH_MAX];
        int rc = shl__op_file_path(l->base_path, o->op_id, o->file, path,
                                   sizeof(path));
        if (rc < 0)
            return rc;
        /* the kept descriptor if there is one, else a stat, not an open:
         * a batch over many operations names more files than the drain
         * keeps open */
        struct stat st;
        int kfd = kept_find(&bt->files, o->op_id, o->file);
        if (kfd >= 0 && fstat(kfd, &st) == 0) {
            /* st filled */
        } else if (stat(path, &st) != 0) {
            if (errno != ENOENT)
                return -errno;
            st.st_size = 0;
        }
        atomic_store_explicit(&h->ev_journal[i].key, shl__journal_key(o->op_id, o->file),
                              memory_order_relaxed);
        atomic_store_explicit(&h->ev_journal[i].pre_size, (uint64_t)st.st_size,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&h->ev_jtail, tail, memory_order_relaxed);
    atomic_store_explicit(&h->ev_jn, (uint32_t)bt->n, memory_order_release);
    SHL_CRASH_POINT("drain.journal");
    atomic_store_explicit(&h->ev_inflight, end, memory_order_release);
    return 0;
}

int
shl__events_drain(shl_ledger *l, struct shl__drain_state *st, bool *blocked,
                  int max_batches)
{
    struct shl__seg *s = &l->seg;
    struct shl__hdr *h = s->hdr;
    *blocked = false;
    if (h->ev_cap == 0)
        return 0;
    /* one drainer per segment: the snapshotter, or a producer helping */
    if (shl__ofd_trylock(s->fd, SHL__LOCK_DRAIN) != 0) {
        *blocked = true; /* look again soon */
        return 0;
    }
    struct shl__evrec *rec = malloc(sizeof(*rec));
    if (!rec) {
        shl__ofd_unlock(s->fd, SHL__LOCK_DRAIN);
        return -ENOMEM;
    }
    int batches = 0;
    char last_id[SHL_OPERATION_ID_MAX + 1] = ""; /* last id that validated */
    /* The tail moves only when a batch is in the files: with batches of a
     * quarter ring, producers find room while the consumer writes (a batch
     * of the whole ring made them fall back for its whole write). */
    uint64_t chunk = h->ev_cap / 4 < CHUNK ? h->ev_cap / 4 : CHUNK;
    if (chunk == 0)
        chunk = 1;
    char iso[48];
    int result = 0;
    for (;;) {
        uint64_t tail = atomic_load_explicit(&h->ev_tail,
                                             memory_order_acquire);
        uint64_t head = atomic_load_explicit(&h->ev_head,
                                             memory_order_acquire);
        if (tail >= head)
            break;
        uint64_t inflight =
            atomic_load_explicit(&h->ev_inflight, memory_order_acquire);
        /* a predecessor died in [tail, inflight), or its write failed:
         * redo that stretch only (the journal covers no more), deduped */
        bool redo = inflight > tail;
        if (!st->batch && !(st->batch = batch_new())) {
            result = -ENOMEM;
            break;
        }
        struct batch *btp = st->batch;
        batch_reset(btp);
        uint64_t end = tail;
        int rc = 0;
        while (end < head && end - tail < chunk && (!redo || end < inflight)) {
            /* a fresh batch writes at most SHL__EV_JOURNAL files (an
             * event has at most two) */
            if (!redo && btp->n + 2 > SHL__EV_JOURNAL)
                break;
            enum verdict v = examine(l, st, end, rec);
            if (v == V_WAIT) {
                *blocked = true;
                break;
            }
            if (v == V_READY) {
                struct shl__event ev = {0};
                ev.kind = rec->kind;
                ev.level = rec->level;
                ev.wall_us = rec->wall_us;
                ev.value = rec->value;
                ev.seq = end + 1;
                ev.pid = rec->pid;
                rec->op_id[SHL_OPERATION_ID_MAX] = 0;
                ev.op_id = rec->op_id;
                ev.a = rec->text;
                ev.a_len = rec->len_a;
                ev.b = rec->text + rec->len_a;
                ev.b_len = rec->len_b;
                /* the id is validated once per run of records naming it
                 * (most batches hold one or a few operations) */
                bool id_ok = !strcmp(ev.op_id, last_id);
                if (!id_ok && shl_validate_operation_id(ev.op_id) == 0) {
                    memcpy(last_id, ev.op_id, strlen(ev.op_id) + 1);
                    id_ok = true;
                }
                /* one timestamp text for all of the event's lines */
                int iso_n = shl__format_iso(ev.wall_us, iso, sizeof(iso));
                ev.iso = iso;
                ev.iso_len = iso_n > 0 ? (size_t)iso_n : 0;
                bool sane = ev.kind >= SHL__EV_LOG &&
                            ev.kind <= SHL__EV_KIND_MAX &&
                            ev.level <= SHL_LOG_ERROR &&
                            (size_t)rec->len_a + rec->len_b <= SHL__EV_TEXT &&
                            id_ok && iso_n > 0;
                if (!sane) {
                    atomic_fetch_add(&h->ev_skipped, 1);
                } else {
                    for (int f = 0; f < SHL__NFILES && rc == 0; f++) {
                        if (!shl__event_targets(&ev, (enum shl__file)f))
                            continue;
                        struct shl__sbuf *b =
                            batch_buf(btp, ev.op_id, (enum shl__file)f);
                        rc = b ? shl__event_render(&ev, (enum shl__file)f, b)
                               : -ENOMEM;
                    }
                }
            }
            if (rc)
                break;
            end++;
        }
        if (rc == 0 && end > tail && !redo)
            rc = journal_write(l, btp, tail, end);
        if (rc == 0 && end > tail) {
            SHL_CRASH_POINT("drain.inflight");
            for (size_t i = 0; i < btp->n && rc == 0; i++) {
                struct outbuf *o = &btp->v[i];
                char path[PATH_MAX];
                int prc = shl__op_file_path(l->base_path, o->op_id, o->file,
                                            path, sizeof(path));
                if (prc < 0) {
                    rc = prc;
                    break;
                }
                if (redo) {
                    uint64_t from =
                        shl__journal_from(h, tail, shl__journal_key(o->op_id, o->file));
                    if (from != UINT64_MAX)
                        rc = shl__journal_dedupe(path, from, &o->b);
                }
                if (rc == 0 && o->b.len && !redo)
                    rc = end_torn_tail(l, &btp->files, o->op_id, o->file);
                if (rc == 0 && o->b.len)
                    rc = kept_append(l, &btp->files, o->op_id, o->file,
                                     o->b.p, o->b.len);
                if (rc != 0)
                    shl__file_error(l, "append to", path, rc);
                SHL_CRASH_POINT("drain.wrote");
            }
        }
        if (rc != 0) {
            /* keep the records; the next pass redoes the batch (dedupe
             * against the journal), if anything was written */
            int64_t now = shl__mono_ns();
            if (st->fail_pos != tail + 1) {
                st->fail_pos = tail + 1;
                st->fail_since_ns = now;
            } else if (now - st->fail_since_ns > GIVE_UP_NS && end > tail) {
                atomic_fetch_add(&h->ev_dropped, end - tail);
                /* never silent: the counter (shl_segment_info
                 * .events_dropped, `shmledger info`, the viewer) and
                 * on_log_line say how many lines were given up */
                char what[96];
                snprintf(what, sizeof(what),
                         "%llu lines dropped after 30 s of failed writes; "
                         "last",
                         (unsigned long long)(end - tail));
                shl__file_error(l, what, "append", rc);
                atomic_store_explicit(&h->ev_tail, end, memory_order_release);
                st->fail_pos = 0;
            }
            result = rc;
            break;
        }
        st->fail_pos = 0;
        if (end > tail)
            atomic_store_explicit(&h->ev_tail, end, memory_order_release);
        if (*blocked || end == tail || ++batches == max_batches)
            break;
    }
    if (st->batch)
        kept_close(&((struct batch *)st->batch)->files);
    free(rec);
    shl__ofd_unlock(s->fd, SHL__LOCK_DRAIN);
    return result;
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
