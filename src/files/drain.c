/*
 * drain.c: the consumer of the event rings (drain.h; ARCHITECTURE §7.3).
 *
 * One drainer per segment at a time: the holder of OFD byte
 * SHL__LOCK_DRAIN (the snapshotter holder, or a producer whose ring is
 * full). A batch takes, from every ring, published records from its tail
 * on, merges them by (wall_us, ring) with each ring's own order kept (a
 * k-way merge of the rings' streams: the smallest head wins, ties by ring
 * index), numbers them with the segment's trail counter (ev_seq) in that
 * order, renders them into one buffer per (operation, file) and appends
 * each buffer with one write.
 *
 * Exactly once into the files, whoever dies at any instruction:
 *   1. journal (phase IDLE): every target file's size before the write
 *      (ev_journal, ev_jn), the batch's first trail seq and the next one
 *      (ev_jseq, ev_jseq_end), then every ring's `inflight` = where the
 *      batch stopped in it (and its record count);
 *   2. ev_jphase = WRITING (release), then the writes;
 *   3. ev_jphase = DONE (release), ev_seq = ev_jseq_end, every ring's
 *      `tail` = `inflight`, ev_jphase = IDLE.
 * A drainer that takes the byte and finds WRITING redoes the batch: the
 * same records ([tail, inflight) of every ring: tails move only in step
 * 3), merged the same way (the merge of truncated streams picks the same
 * records in the same order), numbered from ev_jseq: the same lines, and
 * appends to each file the journal names only those not found in it past
 * the recorded size (journal.c). DONE: it finishes step 3 (idempotent).
 * IDLE: inflight words are leftovers of an unfinished step 1; ignored.
 */
#include "files/drain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "internal.h"
#include "files/journal.h"
#include "files/json.h"
#include "files/opfiles.h"
#include "files/render.h"
#include "shm/segment.h"

#define GIVE_UP_NS (30000ll * 1000000)
/* Records per batch, at most: a batch's buffers (~250 KiB) stay in the
 * cache between rendering and writing; measured (Snapshotter/Drain):
 * 4096 records 515 ns per call pair, 1024 395, 512 440, 256 770 (the
 * fixed cost per batch: journal, fstat, phase words). */
#define CHUNK 1024

/* ---- files kept open ----
 *
 * Appending through open(O_APPEND)+write+close costs three syscalls per
 * file; the drainer keeps up to KEPT_FILES descriptors across drain calls
 * (least recently used closed first). Where a line belongs is decided when
 * a descriptor is opened (shl__op_file_open_append): a file that moved
 * into its operation's archive since is still the right one (the archive
 * is where an archived operation's lines go); one that was deleted since
 * (st_nlink 0: rotation removed the archive) is closed at the start of
 * the next drain call and opened afresh (kept_check). */
#define KEPT_FILES 16
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

/* At the start of a drain call: close kept descriptors of deleted files
 * (rotation removed the archive they were in). */
static void
kept_check(struct shl__kept *k)
{
    for (int i = 0; i < KEPT_FILES; i++) {
        struct stat st;
        if (k->f[i].fd >= 0 &&
            (fstat(k->f[i].fd, &st) != 0 || st.st_nlink == 0)) {
            close(k->f[i].fd);
            k->f[i].fd = -1;
            k->open--;
        }
    }
}

/* One output buffer per (operation, file) of a batch. */
struct outbuf {
    char op_id[SHL_OPERATION_ID_MAX + 1];
    enum shl__file file;
    struct shl__sbuf b;
    int64_t pre_size; /* the journal's fstat of the kept descriptor, or -1 */
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
batch_buf(struct batch *bt, const char *op_id, size_t len, enum shl__file f)
{
    size_t h = bt->hint[f];
    if (h < bt->n && bt->v[h].file == f &&
        !memcmp(bt->v[h].op_id, op_id, len + 1))
        return &bt->v[h].b;
    if (2 * (bt->n + 1) > bt->tab_cap && !tab_grow(bt))
        return NULL;
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

/* Before a fresh batch's write to file f of op_id: end a torn last line
 * (after the journal: the newline lands past the size recorded, and a
 * redo's hash of an empty line matches nothing of ours). */
static int
end_torn_tail(shl_ledger *l, struct shl__kept *k, const char *op_id,
              enum shl__file f, int64_t pre_size)
{
    int slot = kept_slot(l, k, op_id, f);
    if (slot < 0)
        return slot;
    /* the journal's fstat of this descriptor, a moment ago under the same
     * drain byte, when it had one (a syscall less per file and batch:
     * ~1.3 us each on this VM) */
    struct stat st;
    if (pre_size >= 0)
        st.st_size = (off_t)pre_size;
    else if (fstat(k->f[slot].fd, &st) != 0)
        return 0;
    if (!shl__journal_torn_tail(k->f[slot].fd, &st))
        return 0;
    return kept_append(l, k, op_id, f, "\n", 1);
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

/* ---- reading the rings ---- */

/* One ring's stream in a merge: the next record at `pos`, read up to
 * `lim` (exclusive). */
struct stream {
    uint64_t pos, lim;
    bool have;               /* `cur` is the record at pos */
    struct shl__evhdr cur;
};

/* Make s->cur the next record of ring r at or after s->pos (skipping
 * padding), or return false when the stream is at its limit. A record
 * that cannot be one (garbage in shared memory: the ring is untrusted) ends
 * the stream at its limit, counted in ev_skipped: the redo makes the same
 * decision over the same bytes. */
static bool
stream_peek(struct shl__hdr *h, struct shl__evring *r, struct stream *s)
{
    uint64_t rb = h->ev_ring_bytes;
    const char *data = shl__ev_data(r);
    while (!s->have) {
        if (s->pos >= s->lim)
            return false;
        uint64_t off = s->pos & (rb - 1);
        struct shl__evhdr e;
        memcpy(&e, data + off, sizeof(e));
        uint64_t left = s->lim - s->pos;
        bool ok = e.size >= 8 && e.size % 8 == 0 && e.size <= left &&
                  off + e.size <= rb;
        if (ok && e.kind == SHL__EV_NONE) {
            if (off + e.size != rb)
                ok = false;
            else {
                s->pos += e.size; /* padding up to the ring's end */
                continue;
            }
        }
        if (ok)
            ok = e.size >= sizeof(e) && e.idlen <= SHL_OPERATION_ID_MAX &&
                 sizeof(e) + (uint64_t)e.idlen + e.len_a + e.len_b <= e.size;
        if (!ok) {
            atomic_fetch_add_explicit(&h->ev_skipped, 1,
                                      memory_order_relaxed);
            s->pos = s->lim;
            return false;
        }
        s->cur = e;
        s->have = true;
    }
    return true;
}

/* ---- one batch ---- */

struct merge {
    uint32_t n;                       /* rings */
    struct stream s[SHL__EV_RINGS_MAX];
    uint64_t seq;                     /* next trail seq */
    uint64_t events;                  /* records taken */
    int64_t cut;  /* fresh batch: wall clock read before the heads */
    bool held;    /* records after the cut were left for the next batch */
    char last_id[SHL_OPERATION_ID_MAX + 1]; /* last id that validated */
    size_t last_len; /* its length; 0: none (or it held a NUL) */
    /* the log and trail buffers of last_id in this batch (entries of
     * bt->v; indices, the array may move), when call_bufs is set: a run of
     * call records of one operation finds them without a look-up (three
     * hashed look-ups with an id compare each were ~13 % of the drain's
     * instructions) */
    bool call_bufs;
    size_t call_log, call_trail;
    char iso[48];
    int64_t iso_us;                   /* wall_us of iso[], or INT64_MIN */
    int64_t iso_sec;                  /* its second, INT64_MIN: none */
    int iso_n;
    int iso_frac;                     /* offset of its fraction digits */
};

/* Render the record s->cur of ring r into the batch (or count it skipped
 * if it is garbage). Returns 0 or -ENOMEM. */
static int
render_one(struct shl__hdr *h, struct batch *bt, struct merge *m,
           struct shl__evring *r, struct stream *s)
{
    const struct shl__evhdr *e = &s->cur;
    const char *rec = shl__ev_data(r) + (s->pos & (h->ev_ring_bytes - 1));
    /* the id: the last one that validated when the record names it again
     * (most records: compared in place, no copy), else a copy validated
     * here (read as a C string, as it always was: an embedded NUL ends it) */
    const char *rid = rec + sizeof(*e);
    char idbuf[SHL_OPERATION_ID_MAX + 1];
    const char *id = m->last_id;
    size_t idlen = m->last_len;
    bool id_ok = e->idlen == m->last_len && m->last_len &&
                 !memcmp(rid, m->last_id, e->idlen);
    if (!id_ok) {
        memcpy(idbuf, rid, e->idlen);
        idbuf[e->idlen] = 0;
        id = idbuf;
        idlen = strlen(idbuf);
        /* validated once per run of records naming it */
        if (shl_validate_operation_id(idbuf) == 0) {
            memcpy(m->last_id, idbuf, idlen + 1);
            m->last_len = idlen == e->idlen ? idlen : 0;
            m->call_bufs = false;
            id_ok = true;
        }
    }
    struct shl__event ev = {0};
    ev.kind = e->kind;
    ev.level = e->level;
    ev.wall_us = e->wall_us;
    ev.value = e->value;
    ev.seq = m->seq; /* the segment's trail counter, in merge order */
    ev.pid = e->pid;
    ev.op_id = id;
    ev.a = rid + e->idlen;
    ev.a_len = e->len_a;
    ev.b = ev.a + e->len_a;
    ev.b_len = e->len_b;
    /* one timestamp text per microsecond, for all the lines using it */
    if (m->iso_us != ev.wall_us) {
        int64_t sec = ev.wall_us / 1000000;
        long us = (long)(ev.wall_us % 1000000);
        if (us < 0) {
            us += 1000000;
            sec--;
        }
        if (m->iso_n > 0 && sec == m->iso_sec && sec != INT64_MIN) {
            /* the same second (and, within a batch, the same zone): only
             * the six digits of the fraction change */
            char *q = m->iso + m->iso_frac;
            for (int i = 5; i >= 0; i--) {
                q[i] = (char)('0' + us % 10);
                us /= 10;
            }
        } else {
            m->iso_n = shl__format_iso(ev.wall_us, m->iso, sizeof(m->iso));
            /* "<date>T<time>.<6 digits><zone>": the fraction follows the
             * '.'; any other shape is formatted afresh every time */
            const char *dot = m->iso_n > 0
                                  ? memchr(m->iso, '.', (size_t)m->iso_n)
                                  : NULL;
            m->iso_sec = INT64_MIN;
            if (dot && m->iso + m->iso_n - dot > 6) {
                m->iso_frac = (int)(dot + 1 - m->iso);
                m->iso_sec = sec;
            }
        }
        m->iso_us = ev.wall_us;
    }
    ev.iso = m->iso;
    ev.iso_len = m->iso_n > 0 ? (size_t)m->iso_n : 0;
    if (!(ev.kind >= SHL__EV_LOG && ev.kind <= SHL__EV_KIND_MAX &&
          ev.level <= SHL_LOG_ERROR && id_ok && m->iso_n > 0)) {
        atomic_fetch_add_explicit(&h->ev_skipped, 1, memory_order_relaxed);
        return 0;
    }
    if (ev.kind >= SHL__EV_CALL_STARTED && ev.kind <= SHL__EV_CALL_FAILED) {
        /* most records: both lines in one go */
        if (m->call_bufs && id == m->last_id)
            return shl__event_render_call(&ev, &bt->v[m->call_log].b,
                                          &bt->v[m->call_trail].b);
        struct shl__sbuf *lb = batch_buf(bt, id, idlen, SHL__FILE_LOG);
        struct shl__sbuf *tb = lb ? batch_buf(bt, id, idlen,
                                              SHL__FILE_TRAIL)
                                  : NULL;
        /* again: adding the trail's buffer may have grown (moved) the
         * table lb points into; the log's is found now, nothing added */
        if (tb)
            lb = batch_buf(bt, id, idlen, SHL__FILE_LOG);
        if (!lb || !tb)
            return -ENOMEM;
        if (id == m->last_id) { /* batch_buf left their indices here */
            m->call_log = bt->hint[SHL__FILE_LOG];
            m->call_trail = bt->hint[SHL__FILE_TRAIL];
            m->call_bufs = true;
        }
        return shl__event_render_call(&ev, lb, tb);
    }
    for (int f = 0; f < SHL__NFILES; f++) {
        if (!shl__event_targets(&ev, (enum shl__file)f))
            continue;
        struct shl__sbuf *b = batch_buf(bt, id, idlen, (enum shl__file)f);
        int rc = b ? shl__event_render(&ev, (enum shl__file)f, b) : -ENOMEM;
        if (rc)
            return rc;
    }
    return 0;
}

/* Merge the streams into the batch: the smallest (wall_us, ring) head
 * first. Stops when every stream is at its limit, or (fresh batches:
 * limited) at CHUNK records or when the next record could name files the
 * journal has no room for. Every stream's `pos` is then where the batch
 * stops in its ring. */
static int
merge_run(struct shl__hdr *h, struct batch *bt, struct merge *m,
          bool limited)
{
    /* the rings with records left, in ring order (a stream at its limit
     * stays there: it leaves the list for good); with 32 rings and one or
     * two producers, scanning all of them per record cost more than the
     * record's rendering */
    uint8_t act[SHL__EV_RINGS_MAX];
    uint32_t nact = 0;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->s[i].pos < m->s[i].lim)
            act[nact++] = (uint8_t)i;
    for (;;) {
        int best = -1;
        uint32_t k = 0;
        for (uint32_t j = 0; j < nact; j++) {
            uint32_t i = act[j];
            struct stream *s = &m->s[i];
            if (!stream_peek(h, shl__ev_ring(h, i), s))
                continue;
            act[k++] = (uint8_t)i;
            if (best < 0 || s->cur.wall_us < m->s[best].cur.wall_us)
                best = (int)i;
        }
        nact = k;
        if (best < 0)
            return 0;
        /* Causal order across rings: a record whose event happened after
         * the heads were read (its time is past the cut) waits for the next
         * batch. An event X published before another event Y took its time
         * is then never written after Y: had the head read of X's ring
         * missed X, that read came before X's publication, hence before
         * Y's time, and Y is past the cut. (A time more than a second past
         * the cut is a clock stepped back: taken, not held for ever.) */
        if (limited && m->s[best].cur.wall_us > m->cut &&
            m->s[best].cur.wall_us - m->cut < 1000000) {
            m->held = true;
            return 0;
        }
        if (limited &&
            (m->events >= CHUNK || bt->n + 2 > SHL__EV_JOURNAL))
            return 0;
        struct stream *s = &m->s[best];
        int rc = render_one(h, bt, m, shl__ev_ring(h, (uint32_t)best), s);
        if (rc)
            return rc;
        s->pos += s->cur.size;
        s->have = false;
        m->seq++;
        m->events++;
    }
}

static void
merge_init(struct shl__hdr *h, struct merge *m, bool redo)
{
    m->n = h->ev_nrings;
    m->events = 0;
    m->held = false;
    m->cut = shl__wall_us(); /* before any head is read */
    atomic_thread_fence(memory_order_seq_cst);
    m->last_id[0] = 0;
    m->last_len = 0;
    m->call_bufs = false;
    m->iso_us = INT64_MIN;
    m->iso_sec = INT64_MIN;
    m->iso_n = 0;
    m->seq = atomic_load_explicit(redo ? &h->ev_jseq : &h->ev_seq,
                                  memory_order_relaxed);
    if (m->seq == 0)
        m->seq = 1;
    for (uint32_t i = 0; i < m->n; i++) {
        struct shl__evring *r = shl__ev_ring(h, i);
        struct stream *s = &m->s[i];
        s->pos = atomic_load_explicit(&r->tail, memory_order_acquire);
        s->lim = redo ? atomic_load_explicit(&r->inflight,
                                             memory_order_relaxed)
                      : atomic_load_explicit(&r->head, memory_order_acquire);
        /* garbage (a head behind the tail, or more than a ring ahead):
         * nothing to read */
        if (s->lim < s->pos || s->lim - s->pos > h->ev_ring_bytes)
            s->lim = s->pos;
        s->have = false;
    }
}

/* Step 1 of a fresh batch: every target file's size, the seq range, every
 * ring's inflight; then WRITING (release). */
static int
journal_write(shl_ledger *l, struct batch *bt, struct merge *m,
              uint64_t seq0)
{
    struct shl__hdr *h = l->seg.hdr;
    for (size_t i = 0; i < bt->n; i++) {
        struct outbuf *o = &bt->v[i];
        /* the kept descriptor if there is one, else a stat, not an open:
         * a batch over many operations names more files than are kept */
        struct stat st;
        int kfd = kept_find(&bt->files, o->op_id, o->file);
        o->pre_size = -1;
        if (kfd >= 0 && fstat(kfd, &st) == 0) {
            o->pre_size = (int64_t)st.st_size; /* for end_torn_tail */
        } else {
            char path[PATH_MAX];
            int rc = shl__op_file_path(l->base_path, o->op_id, o->file, path,
                                       sizeof(path));
            if (rc < 0)
                return rc;
            if (stat(path, &st) != 0) {
                if (errno != ENOENT)
                    return -errno;
                st.st_size = 0;
            }
        }
        atomic_store_explicit(&h->ev_journal[i].key,
                              shl__journal_key(o->op_id, o->file),
                              memory_order_relaxed);
        atomic_store_explicit(&h->ev_journal[i].pre_size,
                              (uint64_t)st.st_size, memory_order_relaxed);
    }
    atomic_store_explicit(&h->ev_jn, (uint32_t)bt->n, memory_order_relaxed);
    atomic_store_explicit(&h->ev_jseq, seq0, memory_order_relaxed);
    atomic_store_explicit(&h->ev_jseq_end, m->seq, memory_order_relaxed);
    for (uint32_t i = 0; i < m->n; i++)
        atomic_store_explicit(&shl__ev_ring(h, i)->inflight, m->s[i].pos,
                              memory_order_relaxed);
    SHL_CRASH_POINT("drain.journal");
    atomic_store_explicit(&h->ev_jphase, SHL__J_WRITING, memory_order_release);
    return 0;
}

/* Step 3 (also a successor's, after DONE): idempotent. */
static void
batch_finish(struct shl__hdr *h)
{
    atomic_store_explicit(&h->ev_jphase, SHL__J_DONE, memory_order_release);
    SHL_CRASH_POINT("drain.done");
    atomic_store_explicit(&h->ev_seq,
                          atomic_load_explicit(&h->ev_jseq_end,
                                               memory_order_relaxed),
                          memory_order_relaxed);
    bool moved = false;
    for (uint32_t i = 0; i < h->ev_nrings; i++) {
        struct shl__evring *r = shl__ev_ring(h, i);
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint64_t f = atomic_load_explicit(&r->inflight, memory_order_relaxed);
        if (f > t && f - t <= h->ev_ring_bytes) {
            atomic_store_explicit(&r->tail, f, memory_order_release);
            moved = true;
        }
    }
    atomic_store_explicit(&h->ev_jphase, SHL__J_IDLE, memory_order_release);
    /* a producer asleep on its full ring (events.c wait_room): the tails
     * first, then its flag (Dekker pairing with its flag, then tail) */
    if (!moved)
        return;
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t i = 0; i < h->ev_nrings; i++) {
        struct shl__evring *r = shl__ev_ring(h, i);
        if (atomic_load_explicit(&r->room_wait, memory_order_relaxed)) {
            atomic_fetch_add_explicit(&r->room, 1, memory_order_release);
            syscall(SYS_futex, (uint32_t *)&r->room, FUTEX_WAKE, INT32_MAX,
                    NULL, NULL, 0);
        }
    }
}

/* Step 2: the writes (a redo first drops, per file the journal names,
 * the lines already past the recorded size). */
static int
batch_write(shl_ledger *l, struct batch *bt, bool redo)
{
    struct shl__hdr *h = l->seg.hdr;
    int rc = 0;
    for (size_t i = 0; i < bt->n && rc == 0; i++) {
        struct outbuf *o = &bt->v[i];
        char path[PATH_MAX];
        rc = shl__op_file_path(l->base_path, o->op_id, o->file, path,
                               sizeof(path));
        if (rc < 0)
            break;
        rc = 0;
        if (redo) {
            uint64_t from =
                shl__journal_from(h, shl__journal_key(o->op_id, o->file));
            if (from != UINT64_MAX) {
                /* read the file the lines go to: the operation may have
                 * been archived since the journal was written, and its
                 * file moved into backup/ (reading the path beside found
                 * nothing there and wrote the batch twice) */
                int slot = kept_slot(l, &bt->files, o->op_id, o->file);
                rc = slot < 0 ? slot
                              : shl__journal_dedupe(bt->files.f[slot].fd,
                                                    from, &o->b);
            }
        }
        if (rc == 0 && o->b.len && !redo)
            rc = end_torn_tail(l, &bt->files, o->op_id, o->file,
                               o->pre_size);
        if (rc == 0 && o->b.len)
            rc = kept_append(l, &bt->files, o->op_id, o->file, o->b.p,
                             o->b.len);
        if (rc != 0)
            shl__file_error(l, "append to", path, rc);
        SHL_CRASH_POINT("drain.wrote");
    }
    return rc;
}

/* A batch whose writes keep failing: after GIVE_UP_NS, give it up (counted
 * and reported: never silent) and move on. */
static void
batch_failed(shl_ledger *l, struct shl__drain_state *st, int rc)
{
    struct shl__hdr *h = l->seg.hdr;
    uint64_t key = atomic_load_explicit(&h->ev_jseq, memory_order_relaxed) + 1;
    int64_t now = shl__mono_ns();
    if (st->fail_seq != key) {
        st->fail_seq = key;
        st->fail_since_ns = now;
        return;
    }
    if (now - st->fail_since_ns <= GIVE_UP_NS)
        return;
    uint64_t lines = atomic_load_explicit(&h->ev_jseq_end,
                                          memory_order_relaxed) -
                     (key - 1);
    atomic_fetch_add(&h->ev_dropped, lines);
    /* the counter (shl_segment_info.events_dropped, `shmledger info`, the
     * viewer) and on_log_line say how many lines were given up */
    char what[96];
    snprintf(what, sizeof(what),
             "%llu lines dropped after 30 s of failed writes; last",
             (unsigned long long)lines);
    shl__file_error(l, what, "append", rc);
    batch_finish(h);
    st->fail_seq = 0;
}

int
shl__events_drain_locked(shl_ledger *l, struct shl__drain_state *st,
                         int max_batches)
{
    struct shl__hdr *h = l->seg.hdr;
    if (h->ev_nrings == 0 || h->ev_nrings > SHL__EV_RINGS_MAX)
        return 0;
    if (!st->batch && !(st->batch = batch_new()))
        return -ENOMEM;
    struct batch *bt = st->batch;
    struct merge *m = malloc(sizeof(*m));
    if (!m)
        return -ENOMEM;
    kept_check(&bt->files);
    int batches = 0, result = 0, held_retries = 0;
    for (;;) {
        uint32_t phase = atomic_load_explicit(&h->ev_jphase,
                                              memory_order_acquire);
        if (phase == SHL__J_DONE) { /* a predecessor died in step 3 */
            batch_finish(h);
            continue;
        }
        /* WRITING: a predecessor died in step 2, or its writes failed:
         * the same batch again, deduped against the journal */
        bool redo = phase == SHL__J_WRITING;
        batch_reset(bt);
        merge_init(h, m, redo);
        uint64_t seq0 = m->seq;
        int rc = merge_run(h, bt, m, !redo);
        if (rc == 0 && m->events == 0 && !redo) {
            /* nothing published, or only events newer than the cut:
             * a fresh cut takes them (at most twice) */
            if (m->held && ++held_retries <= 2)
                continue;
            break;
        }
        if (rc == 0 && !redo)
            rc = journal_write(l, bt, m, seq0);
        if (rc == 0) {
            SHL_CRASH_POINT("drain.inflight");
            rc = batch_write(l, bt, redo);
        }
        if (rc != 0) {
            if (atomic_load(&h->ev_jphase) == SHL__J_WRITING)
                batch_failed(l, st, rc);
            result = rc;
            break;
        }
        st->fail_seq = 0;
        batch_finish(h);
        if (++batches == max_batches)
            break;
    }
    free(m);
    return result;
}

int
shl__events_drain(shl_ledger *l, struct shl__drain_state *st, bool *blocked,
                  int max_batches)
{
    struct shl__seg *s = &l->seg;
    *blocked = false;
    if (s->hdr->ev_nrings == 0)
        return 0;
    /* one drainer per segment: the snapshotter, or a producer helping */
    if (shl__ofd_trylock(s->fd, SHL__LOCK_DRAIN) != 0) {
        *blocked = true; /* look again soon */
        return 0;
    }
    int rc = shl__events_drain_locked(l, st, max_batches);
    shl__ofd_unlock(s->fd, SHL__LOCK_DRAIN);
    return rc;
}

/* ---- progress, for flushes and tools ---- */

void
shl__events_mark(const shl_ledger *l, struct shl__ev_marks *mk)
{
    const struct shl__hdr *h = l->seg.hdr;
    for (uint32_t i = 0; i < h->ev_nrings && i < SHL__EV_RINGS_MAX; i++)
        mk->head[i] = atomic_load_explicit(&shl__ev_ring(h, i)->head,
                                           memory_order_acquire);
}

bool
shl__events_reached(const shl_ledger *l, const struct shl__ev_marks *mk)
{
    const struct shl__hdr *h = l->seg.hdr;
    for (uint32_t i = 0; i < h->ev_nrings && i < SHL__EV_RINGS_MAX; i++)
        if (atomic_load_explicit(&shl__ev_ring(h, i)->tail,
                                 memory_order_acquire) < mk->head[i])
            return false;
    return true;
}

bool
shl__events_idle(const struct shl__hdr *h)
{
    for (uint32_t i = 0; i < h->ev_nrings && i < SHL__EV_RINGS_MAX; i++) {
        struct shl__evring *r = shl__ev_ring(h, i);
        if (atomic_load_explicit(&r->tail, memory_order_acquire) <
            atomic_load_explicit(&r->head, memory_order_acquire))
            return false;
    }
    return true;
}

bool
shl__events_backlog(const struct shl__hdr *h)
{
    for (uint32_t i = 0; i < h->ev_nrings && i < SHL__EV_RINGS_MAX; i++) {
        struct shl__evring *r = shl__ev_ring(h, i);
        uint64_t hd = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        if (hd > t && hd - t >= h->ev_ring_bytes / 4)
            return true;
    }
    return false;
}
