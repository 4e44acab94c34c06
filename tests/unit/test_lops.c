/*
 * test_lops.c: a ledger's table of its operations (base/lops.c).
 *
 * The table is checked against a plain array model through growth, several
 * generations of one record slot at once (a ledger can still hold a
 * session of an operation whose slot another operation has reused), and
 * removal in any order; the list the monitor walks keeps every lop exactly
 * once, linked both ways. Last, a lop's session list: removal from the
 * head, the middle and the tail. Then the spare objects a join takes
 * and a leave gives back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shl_test.h"

#include "base/lops.h"
#include "objects.h"

#define N 3000

static void
check_list(shl_ledger *l, size_t want)
{
    size_t n = 0;
    struct shl__lop *prev = NULL;
    for (struct shl__lop *p = l->lops; p; p = p->next) {
        assert_ptr_equal(p->prev, prev);
        prev = p;
        n++;
        assert_true(n <= want);
    }
    assert_int_equal(n, want);
    assert_int_equal(l->lop_count, want);
}

static void
test_lops_model(void **state)
{
    (void)state;
    shl_ledger *l = calloc(1, sizeof(*l));
    struct shl__lop *lops = calloc(N, sizeof(*lops));
    bool *in = calloc(N, sizeof(*in));
    assert_non_null(l);
    assert_non_null(lops);
    assert_non_null(in);
    assert_null(shl__lops_find(l, 0, 1)); /* empty, no buckets yet */
    /* slots 0..1023, three generations each (slot i % 1024, gen i / 1024) */
    for (uint32_t i = 0; i < N; i++) {
        lops[i].op_idx = i % 1024;
        lops[i].op_gen = 1 + i / 1024;
        assert_int_equal(shl__lops_add(l, &lops[i]), 0);
        in[i] = true;
    }
    check_list(l, N);
    assert_true(l->lop_nbuckets >= 1024); /* it grew */
    for (uint32_t i = 0; i < N; i++)
        assert_ptr_equal(shl__lops_find(l, i % 1024, 1 + i / 1024), &lops[i]);
    assert_null(shl__lops_find(l, 5, 99));
    assert_null(shl__lops_find(l, 5000, 1));

    /* remove two thirds in a scrambled order, checking as we go */
    size_t live = N;
    uint32_t x = 12345;
    for (int k = 0; k < 2 * N; k++) {
        x = x * 1103515245u + 12345u;
        uint32_t i = (x >> 8) % N;
        if (!in[i])
            continue;
        shl__lops_remove(l, &lops[i]);
        in[i] = false;
        live--;
        assert_null(shl__lops_find(l, lops[i].op_idx, lops[i].op_gen));
    }
    check_list(l, live);
    for (uint32_t i = 0; i < N; i++)
        assert_ptr_equal(shl__lops_find(l, lops[i].op_idx, lops[i].op_gen),
                         in[i] ? &lops[i] : NULL);
    /* the rest, then the table is empty */
    for (uint32_t i = 0; i < N; i++)
        if (in[i])
            shl__lops_remove(l, &lops[i]);
    check_list(l, 0);
    assert_null(l->lops);
    /* and usable again */
    assert_int_equal(shl__lops_add(l, &lops[7]), 0);
    assert_ptr_equal(shl__lops_find(l, 7, 1), &lops[7]);
    check_list(l, 1);
    shl__lops_fini(l);
    free(in);
    free(lops);
    free(l);
}

static void
check_sessions(struct shl__lop *lop, shl_op *const *want, size_t n)
{
    size_t i = 0;
    shl_op *prev = NULL;
    for (shl_op *op = lop->sessions; op; op = op->next_session, i++) {
        assert_true(i < n);
        assert_ptr_equal(op, want[i]);
        assert_ptr_equal(op->prev_session, prev);
        prev = op;
    }
    assert_int_equal(i, n);
}

static void
test_lops_sessions(void **state)
{
    (void)state;
    struct shl__lop lop;
    memset(&lop, 0, sizeof(lop));
    shl_op *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = calloc(1, sizeof(shl_op));
        assert_non_null(s[i]);
        shl__lop_session_add(&lop, s[i]);
    }
    check_sessions(&lop, (shl_op *[]){s[3], s[2], s[1], s[0]}, 4);
    shl__lop_session_remove(&lop, s[2]); /* middle */
    check_sessions(&lop, (shl_op *[]){s[3], s[1], s[0]}, 3);
    shl__lop_session_remove(&lop, s[3]); /* head */
    check_sessions(&lop, (shl_op *[]){s[1], s[0]}, 2);
    shl__lop_session_remove(&lop, s[0]); /* tail */
    check_sessions(&lop, (shl_op *[]){s[1]}, 1);
    shl__lop_session_remove(&lop, s[1]);
    assert_null(lop.sessions);
    for (int i = 0; i < 4; i++)
        free(s[i]);
}

/* The spare objects: the last lop and session object given back come
 * back zeroed (a session up to its failure info); a second one given back
 * is freed; close (fini) frees the spares (ASan's leak check). */
static void
test_lops_spares(void **state)
{
    (void)state;
    shl_ledger *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    struct shl__lop *a = shl__lop_alloc(l);
    assert_non_null(a);
    memset(a, 0xa5, sizeof(*a));
    shl__lop_release(l, a);
    assert_ptr_equal(l->spare_lop, a);
    struct shl__lop *b = shl__lop_alloc(l);
    assert_ptr_equal(b, a);
    assert_null(l->spare_lop);
    static const struct shl__lop zero_lop;
    assert_memory_equal(b, &zero_lop, sizeof(zero_lop));
    struct shl__lop *c = shl__lop_alloc(l);
    assert_non_null(c);
    assert_ptr_not_equal(c, b);
    shl__lop_release(l, b);
    shl__lop_release(l, c); /* a spare already: freed */
    assert_ptr_equal(l->spare_lop, b);

    shl_op *o = shl__op_obj_alloc(l);
    assert_non_null(o);
    memset(o, 0x5a, sizeof(*o));
    shl__op_obj_release(l, o);
    shl_op *p = shl__op_obj_alloc(l);
    assert_ptr_equal(p, o);
    static const shl_op zero_op;
    assert_memory_equal(p, &zero_op, offsetof(shl_op, finfo));
    shl__op_obj_release(l, p);
    shl__lops_fini(l);
    assert_null(l->spare_lop);
    assert_null(l->spare_op);
    free(l);
}

/* A join+leave loop allocates nothing: the next join gets the objects the
 * leave gave back, as a fresh session (public API). */
static void
test_lops_join_leave_reuses(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "spares");
    shl_ledger *a, *b;
    assert_shl_ok(shl_ledger_open(&a, base, "creator", NULL));
    assert_shl_ok(shl_ledger_open(&b, base, "joiner", NULL));
    shl_op *op;
    assert_shl_ok(shl_op_create(a, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    shl_op *j1, *j2;
    assert_shl_ok(shl_op_join(b, id, NULL, &j1));
    struct shl__lop *lop1 = j1->lop;
    shl_call *c;
    assert_shl_ok(shl_call_start(j1, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(j1, false));
    /* given back at once, or by the monitor when a pass had it pinned */
    int64_t deadline = shl_test_now_ms() + 5000 * shl_test_multiplier();
    for (;;) {
        pthread_mutex_lock(&b->mu);
        bool back = b->spare_op == j1 && b->spare_lop == lop1;
        pthread_mutex_unlock(&b->mu);
        if (back)
            break;
        assert_true(shl_test_now_ms() < deadline);
        shl_test_pause_ms(1);
    }
    assert_shl_ok(shl_op_join(b, id, NULL, &j2));
    assert_ptr_equal(j2, j1);
    assert_ptr_equal(j2->lop, lop1);
    assert_int_equal(shl_op_pending_call_count(j2), 0);
    assert_null(j2->calls_head);
    assert_false(j2->failed);
    assert_int_equal(j2->lop->join_count, 1);
    assert_string_equal(shl_op_id(j2), id);
    assert_shl_ok(shl_op_leave(j2, false));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(b);
    shl_ledger_close(a);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lops_model),
        cmocka_unit_test(test_lops_sessions),
        cmocka_unit_test(test_lops_spares),
        cmocka_unit_test(test_lops_join_leave_reuses),
    };
    return cmocka_run_group_tests_name("lops", tests, NULL, NULL);
}
