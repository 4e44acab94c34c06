/*
 * test_table.c: fixed-capacity record tables (table.c) seen through the API.
 *
 * A full table answers SHL_EFULL and changes nothing: the whole segment image
 * (every table and the index, and the header's counters) is compared byte
 * for byte before and after the refused call. Freeing a record makes room
 * again (after the reuse delay of the operation and participant tables), and
 * the reused record carries the next generation. Last, the seqlock copy:
 * refused while a writer is inside, never torn.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"
#include "layout.h"
#include "objects.h"
#include "shm/segment.h"
#include "shm/table.h"

/* SHL_WAIT_FOR is a statement expression: mark it for -Wpedantic builds. */
#define WAIT_FOR(cond, ms) (__extension__ SHL_WAIT_FOR(cond, ms))

#define CAP_PART 2
#define CAP_OP 2
#define CAP_FRAME 4
#define CAP_RES 3

static void
tiny_opts(shl_ledger_opts *o)
{
    shl_ledger_opts_init(o);
    o->max_participants = CAP_PART;
    o->max_operations = CAP_OP;
    o->max_frames = CAP_FRAME;
    o->max_resources = CAP_RES;
}

/* ---- segment images ---- */

struct image {
    unsigned char *bytes;
    size_t size;
};

/* A copy of the segment, word by word with relaxed atomic loads: other
 * threads (heartbeats, the futex thread) store atomics into it meanwhile,
 * and the words they own are masked before comparing. */
static struct image
image_copy(const struct shl__seg *s)
{
    struct image im = {malloc(s->size), s->size};
    assert_non_null(im.bytes);
    assert_int_equal(s->size % sizeof(uint64_t), 0);
    const uint64_t *src = (const uint64_t *)s->base;
    uint64_t *dst = (uint64_t *)(void *)im.bytes;
    for (size_t i = 0; i < s->size / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    return im;
}

static struct image
image_take(const struct shl__seg *s)
{
    /* the snapshotter thread records itself in the header once, at its
     * first pass: let it first */
    (void)SHL_WAIT_FOR(atomic_load(&s->hdr->snap_holder) != 0, 5000);
    return image_copy(s);
}

/* Copy the liveness words, which their owners' monitor threads store on
 * their own schedule (a participant's heartbeat, an operation's last
 * heartbeat and change count), from the current copy `now` into the image,
 * so the comparison covers everything else. */
static void
image_mask_liveness(const struct shl__seg *s, struct image *im,
                    const unsigned char *now)
{
    const struct shl__hdr *h = s->hdr;
    /* how many futex threads are waiting on the epoch right now */
    size_t ow = offsetof(struct shl__hdr, epoch_waiters);
    memcpy(im->bytes + ow, now + ow, sizeof(uint32_t));
    /* which process holds the snapshotter role (a hint it stores itself) */
    size_t os = offsetof(struct shl__hdr, snap_holder);
    memcpy(im->bytes + os, now + os, sizeof(uint64_t));
    for (uint32_t i = 0; i < h->cap[SHL__T_PART]; i++) {
        size_t at = h->off[SHL__T_PART] + (size_t)i * h->stride[SHL__T_PART];
        size_t o = offsetof(struct shl__part, heartbeat_ns);
        memcpy(im->bytes + at + o, now + at + o,
               sizeof(int64_t));
        /* how many futex threads are waiting on its doorbell right now
         * (as epoch_waiters) */
        size_t ob = offsetof(struct shl__part, bell_waiters);
        memcpy(im->bytes + at + ob, now + at + ob, sizeof(uint32_t));
    }
    /* the event rings' drain progress (the snapshotter thread drains
     * what the creates posted, whenever it runs: as the header's words
     * after the mutex, not compared) */
    for (uint32_t i = 0; i < h->ev_nrings; i++) {
        size_t at = h->ev_off + (size_t)i * h->ev_ring_stride;
        size_t ot = offsetof(struct shl__evring, tail);
        size_t oi = offsetof(struct shl__evring, inflight);
        memcpy(im->bytes + at + ot, now + at + ot, sizeof(uint64_t));
        memcpy(im->bytes + at + oi, now + at + oi, sizeof(uint64_t));
    }
    for (uint32_t i = 0; i < h->cap[SHL__T_OP]; i++) {
        size_t at = h->off[SHL__T_OP] + (size_t)i * h->stride[SHL__T_OP];
        size_t o1 = offsetof(struct shl__op, last_heartbeat_ns);
        size_t o2 = offsetof(struct shl__op, change_count);
        memcpy(im->bytes + at + o1, now + at + o1,
               sizeof(int64_t));
        memcpy(im->bytes + at + o2, now + at + o2,
               sizeof(uint64_t));
    }
}

/* Everything but the mutex and the liveness words must be identical. */
static void
image_assert_same(const struct shl__seg *s, struct image *im,
                  const char *what)
{
    struct image cur = image_copy(s);
    const struct shl__hdr *h = (const struct shl__hdr *)(void *)cur.bytes;
    const struct shl__hdr *o = (const struct shl__hdr *)(void *)im->bytes;
    assert_int_equal(s->size, im->size);
    image_mask_liveness(s, im, cur.bytes);
    /* header: identity, geometry, counters, intent, used counts */
    if (memcmp(h, o, offsetof(struct shl__hdr, mutex)) != 0)
        fail_msg("%s: header (before the mutex) changed", what);
    if (memcmp(&h->intent, &o->intent, sizeof(h->intent)) != 0 ||
        memcmp(h->used, o->used, sizeof(h->used)) != 0)
        fail_msg("%s: intent or used counts changed", what);
    size_t from = h->off[SHL__T_PART];
    const unsigned char *now = cur.bytes;
    for (size_t i = from; i < s->size; i++)
        if (now[i] != im->bytes[i]) {
            int t = -1;
            for (int k = 0; k < SHL__NTABLES; k++)
                if (i >= h->off[k])
                    t = k;
            fail_msg("%s: segment byte %zu changed (table %d or after), "
                     "%02x -> %02x",
                     what, i, t, im->bytes[i], now[i]);
        }
    free(cur.bytes);
    free(im->bytes);
    im->bytes = NULL;
}

/* A snapshot summary compared before/after, as a reader would see it. */
static void
snap_sig(shl_reader *r, const char *opid, char *buf, size_t cap)
{
    shl_snapshot *sn = NULL;
    assert_shl_ok(shl_reader_snapshot(r, opid, &sn));
    size_t n = (size_t)snprintf(buf, cap, "%s|%d|%zu|%zu|%zu|",
                                sn->operation_id, (int)sn->state,
                                sn->frame_count, sn->resource_count,
                                sn->participant_count);
    for (size_t i = 0; i < sn->frame_count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "f:%s:%d,",
                              sn->frames[i].call_id, (int)sn->frames[i].state);
    for (size_t i = 0; i < sn->resource_count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "r:%s,",
                              sn->resources[i].path);
    for (size_t i = 0; i < sn->participant_count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "p:%u:%llu:%s:%d,",
                              sn->participants[i].slot,
                              (unsigned long long)sn->participants[i]
                                  .generation,
                              sn->participants[i].participant_id,
                              (int)sn->participants[i].alive);
    shl_snapshot_free(sn);
}

static uint64_t
gen_at(const struct shl__seg *s, int t, uint32_t i)
{
    struct shl__rec *r = shl__rec_at(s, t, i);
    return atomic_load(&r->gen);
}

static uint32_t
state_at(const struct shl__seg *s, int t, uint32_t i)
{
    struct shl__rec *r = shl__rec_at(s, t, i);
    return atomic_load(&r->state);
}

/* ---- participants ---- */

static void
test_table_participants_full(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "tbl-part");
    shl_ledger_opts o;
    tiny_opts(&o);
    shl_ledger *l1 = NULL, *l2 = NULL, *l3 = NULL;
    assert_shl_ok(shl_ledger_open(&l1, base, "p1", &o));
    assert_shl_ok(shl_ledger_open(&l2, base, "p2", &o));
    struct shl__seg *s = &l1->seg;
    shl_reader *r = shl_ledger_reader(l1);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l1, "d", NULL, &op));
    char before[4096], after[4096];
    snap_sig(r, shl_op_id(op), before, sizeof(before));

    struct image im = image_take(s);
    assert_int_equal(shl_ledger_open(&l3, base, "p3", &o), SHL_EFULL);
    assert_null(l3);
    image_assert_same(s, &im, "participant table full");
    snap_sig(r, shl_op_id(op), after, sizeof(after));
    assert_string_equal(before, after);
    assert_segment_clean(r);

    uint32_t slot2 = l2->slot;
    uint64_t gen2 = l2->slot_gen;
    assert_int_equal(gen_at(s, SHL__T_PART, slot2), gen2);
    int64_t t0 = shl__mono_ns();
    shl_ledger_close(l2);
    int64_t t1 = shl__mono_ns();
    /* freed, but held back for the reuse delay */
    struct shl__rec *rec = shl__rec_at(s, SHL__T_PART, slot2);
    assert_int_equal(atomic_load(&rec->state), SHL__R_RECLAIMED);
    int64_t ra = atomic_load(&rec->reuse_after);
    assert_true(ra >= t0 + shl__reuse_delay_ns(SHL__T_PART));
    assert_true(ra <= t1 + shl__reuse_delay_ns(SHL__T_PART));
    assert_segment_clean(r);
    assert_true(WAIT_FOR(shl_ledger_open(&l3, base, "p3", &o) == 0, 2000));
    assert_int_equal(l3->slot, slot2);
    assert_int_equal(l3->slot_gen, gen2 + 1);
    assert_int_equal(gen_at(s, SHL__T_PART, slot2), gen2 + 1);
    assert_int_equal(state_at(s, SHL__T_PART, slot2), SHL__R_ALLOCATED);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_participants, 2);
    assert_segment_clean(r);

    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l3);
    shl_ledger_close(l1);
    shl_test_cleanup(base);
}

/* ---- operations ---- */

static void
test_table_operations_full(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "tbl-op");
    shl_ledger_opts o;
    tiny_opts(&o);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p1", &o));
    struct shl__seg *s = &l->seg;
    shl_reader *r = shl_ledger_reader(l);
    shl_op *a = NULL, *b = NULL, *c = NULL;
    assert_shl_ok(shl_op_create(l, "a", NULL, &a));
    assert_shl_ok(shl_op_create(l, "b", NULL, &b));
    char keep[600];
    snprintf(keep, sizeof(keep), "%s/keep", base);
    assert_shl_ok(shl_op_register_temp_resource(b, keep));
    char before[4096], after[4096];
    snap_sig(r, shl_op_id(b), before, sizeof(before));

    struct image im = image_take(s);
    assert_int_equal(shl_op_create(l, "c", NULL, &c), SHL_EFULL);
    assert_null(c);
    image_assert_same(s, &im, "operation table full");
    snap_sig(r, shl_op_id(b), after, sizeof(after));
    assert_string_equal(before, after);
    assert_segment_clean(r);

    char aid[SHL_OPERATION_ID_MAX + 1];
    snprintf(aid, sizeof(aid), "%s", shl_op_id(a));
    uint32_t aidx = a->lop->op_idx;
    uint64_t agen = a->lop->op_gen;
    int64_t t0 = shl__mono_ns();
    assert_shl_ok(shl_op_complete(a));
    int64_t t1 = shl__mono_ns();
    struct shl__rec *rec = shl__rec_at(s, SHL__T_OP, aidx);
    assert_int_equal(atomic_load(&rec->state), SHL__R_RECLAIMED);
    int64_t ra = atomic_load(&rec->reuse_after);
    assert_true(ra >= t0 + shl__reuse_delay_ns(SHL__T_OP));
    assert_true(ra <= t1 + shl__reuse_delay_ns(SHL__T_OP));
    assert_segment_clean(r);
    assert_true(WAIT_FOR(shl_op_create(l, "c", NULL, &c) == 0, 2000));
    assert_int_equal(c->lop->op_idx, aidx);
    assert_int_equal(c->lop->op_gen, agen + 1);
    assert_int_equal(gen_at(s, SHL__T_OP, aidx), agen + 1);
    /* the old id no longer resolves to the reused record */
    shl_op *j = NULL;
    assert_int_equal(shl_op_join(l, aid, NULL, &j), SHL_ENOTFOUND);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_operations, 2);
    assert_int_equal(info.used_resources, 1);
    assert_segment_clean(r);

    assert_shl_ok(shl_op_complete(b));
    assert_shl_ok(shl_op_complete(c));
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_operations, 0);
    assert_int_equal(info.used_resources, 0);
    assert_segment_clean(r);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- frames ---- */

static void
test_table_frames_full(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "tbl-frame");
    shl_ledger_opts o;
    tiny_opts(&o);
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p1", &o));
    assert_shl_ok(shl_ledger_open(&l2, base, "p2", &o));
    struct shl__seg *s = &l->seg;
    shl_reader *r = shl_ledger_reader(l);
    shl_op *op = NULL, *op2 = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &op2));
    shl_call *c[CAP_FRAME] = {0};
    /* fill the table from both participants (two hint ranges) */
    for (int i = 0; i < CAP_FRAME; i++)
        assert_shl_ok(shl_call_start(i % 2 ? op2 : op, NULL, &c[i]));
    char before[4096], after[4096];
    snap_sig(r, shl_op_id(op), before, sizeof(before));

    struct image im = image_take(s);
    shl_call *x = NULL;
    assert_int_equal(shl_call_start(op, NULL, &x), SHL_EFULL);
    assert_int_equal(shl_call_start(op2, NULL, &x), SHL_EFULL);
    assert_null(x);
    image_assert_same(s, &im, "frame table full");
    snap_sig(r, shl_op_id(op), after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(shl_op_pending_call_count(op), CAP_FRAME / 2);
    assert_segment_clean(r);

    /* frames have no reuse delay: room at once, next generation */
    uint32_t fi = c[1]->frame_idx;
    uint64_t fg = c[1]->frame_gen;
    assert_shl_ok(shl_call_end(c[1], NULL));
    assert_shl_ok(shl_call_release(c[1]));
    assert_int_equal(state_at(s, SHL__T_FRAME, fi), SHL__R_FREE);
    assert_shl_ok(shl_call_start(op, NULL, &c[1]));
    assert_int_equal(c[1]->frame_idx, fi);
    assert_int_equal(c[1]->frame_gen, fg + 1);
    assert_int_equal(gen_at(s, SHL__T_FRAME, fi), fg + 1);
    struct shl__frame *f = shl__frame_at(s, fi);
    assert_true(SHL__FWORD_GEN_OK(atomic_load(&f->fword), fg + 1));
    assert_false(SHL__FWORD_GEN_OK(atomic_load(&f->fword), fg));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_frames, CAP_FRAME);
    assert_segment_clean(r);

    for (int i = 0; i < CAP_FRAME; i++)
        assert_shl_ok(shl_call_end(c[i], NULL));
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_frames, 0);
    assert_shl_ok(shl_op_leave(op2, false));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(r);
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- resources ---- */

static uint32_t
find_res(const struct shl__seg *s, const char *path)
{
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *x = shl__res_at(s, i);
        if (atomic_load(&x->h.state) == SHL__R_ALLOCATED &&
            strcmp(x->path, path) == 0)
            return i;
    }
    return SHL__NO_SLOT;
}

static void
test_table_resources_full(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "tbl-res");
    shl_ledger_opts o;
    tiny_opts(&o);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p1", &o));
    struct shl__seg *s = &l->seg;
    shl_reader *r = shl_ledger_reader(l);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    char paths[CAP_RES + 1][600];
    for (int i = 0; i <= CAP_RES; i++)
        snprintf(paths[i], sizeof(paths[i]), "%s/r%d", base, i);
    for (int i = 0; i < CAP_RES; i++)
        assert_shl_ok(shl_op_register_temp_resource(op, paths[i]));
    char before[4096], after[4096];
    snap_sig(r, shl_op_id(op), before, sizeof(before));

    struct image im = image_take(s);
    assert_int_equal(shl_op_register_temp_resource(op, paths[CAP_RES]),
                     SHL_EFULL);
    image_assert_same(s, &im, "resource table full");
    snap_sig(r, shl_op_id(op), after, sizeof(after));
    assert_string_equal(before, after);
    assert_segment_clean(r);

    uint32_t ri = find_res(s, paths[1]);
    assert_true(ri != SHL__NO_SLOT);
    uint64_t rg = gen_at(s, SHL__T_RES, ri);
    assert_int_equal(shl_op_unregister_temp_resource(op, paths[1]), 1);
    assert_shl_ok(shl_op_register_temp_resource(op, paths[CAP_RES]));
    assert_int_equal(find_res(s, paths[CAP_RES]), ri);
    assert_int_equal(gen_at(s, SHL__T_RES, ri), rg + 1);
    assert_int_equal(find_res(s, paths[1]), SHL__NO_SLOT);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_resources, CAP_RES);
    assert_segment_clean(r);

    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_resources, 0);
    assert_segment_clean(r);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- seqlock copy ---- */

static void
test_table_copy_refuses_odd_sequence(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "tbl-seq");
    shl_ledger_opts o;
    tiny_opts(&o);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p1", &o));
    struct shl__seg *s = &l->seg;
    struct shl__part *p = shl__part_at(s, l->slot);
    struct shl__part copy;

    assert_shl_ok(shl__rec_copy(&copy, p, sizeof(copy), 10));
    assert_string_equal(copy.id, "p1");

    shl__seq_write_begin(&p->h); /* a writer is inside */
    memset(&copy, 0xee, sizeof(copy));
    assert_int_equal(shl__rec_copy(&copy, p, sizeof(copy), 1000), -EAGAIN);
    uint32_t seq;
    assert_false(shl__seq_read_begin(&p->h, &seq));
    shl__seq_write_end(&p->h); /* and left */
    assert_true(shl__seq_read_begin(&p->h, &seq));
    assert_true(shl__seq_read_ok(&p->h, seq));
    assert_shl_ok(shl__rec_copy(&copy, p, sizeof(copy), 1));
    assert_memory_equal(&copy, p, sizeof(copy));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A writer thread rewrites a record under the seqlock with a self-checking
 * pattern; a reader copies it: every copy that succeeds is untorn. */
struct torn {
    struct shl__frame *f;
    _Atomic bool stop;
    uint64_t writes;
};

static void *
torn_writer(void *arg)
{
    struct torn *t = arg;
    for (uint32_t k = 1; !atomic_load(&t->stop); k++) {
        shl__seq_write_begin(&t->f->h);
        char c = (char)('a' + k % 26);
        memset(t->f->description, c, sizeof(t->f->description) - 1);
        t->f->start_wall_us = k;
        memset(t->f->call_id, c, sizeof(t->f->call_id) - 1);
        shl__seq_write_end(&t->f->h);
        t->writes++;
    }
    return NULL;
}

static void
test_table_copy_never_torn(void **state)
{
    (void)state;
    struct shl__frame *f = aligned_alloc(SHL__CACHE_LINE, sizeof(*f));
    assert_non_null(f);
    memset(f, 0, sizeof(*f));
    memset(f->description, 'z', sizeof(f->description) - 1);
    memset(f->call_id, 'z', sizeof(f->call_id) - 1);
    struct torn t = {.f = f};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, torn_writer, &t), 0);
    struct shl__frame *copy = malloc(sizeof(*copy));
    assert_non_null(copy);
    uint64_t ok = 0, busy = 0, torn = 0;
    int64_t end = shl_test_now_ms() + 300;
    while (shl_test_now_ms() < end) {
        if (shl__rec_copy(copy, f, sizeof(*copy), 16) != 0) {
            busy++;
            continue;
        }
        ok++;
        char c = copy->description[0];
        for (size_t i = 0; i < sizeof(copy->description) - 1; i++)
            if (copy->description[i] != c)
                torn++;
        for (size_t i = 0; i < sizeof(copy->call_id) - 1; i++)
            if (copy->call_id[i] != c)
                torn++;
        if (c != 'z' && (char)('a' + copy->start_wall_us % 26) != c)
            torn++;
    }
    atomic_store(&t.stop, true);
    pthread_join(th, NULL);
    print_message("seqlock: %llu copies, %llu refused, %llu writes\n",
                  (unsigned long long)ok, (unsigned long long)busy,
                  (unsigned long long)t.writes);
    assert_int_equal(torn, 0);
    assert_true(ok > 0);
    free(copy);
    free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_participants_full),
        cmocka_unit_test(test_table_operations_full),
        cmocka_unit_test(test_table_frames_full),
        cmocka_unit_test(test_table_resources_full),
        cmocka_unit_test(test_table_copy_refuses_odd_sequence),
        cmocka_unit_test(test_table_copy_never_torn),
    };
    return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
