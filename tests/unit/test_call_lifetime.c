/*
 * test_call_lifetime.c: a call handed to a callback stays that call until
 * the callback returns, whatever another API thread does with it
 * meanwhile.
 *
 * The failure delivery (session/deliver.c) collects a session's pending
 * calls under op->mu and fires their on_operation_failed after dropping it.
 * A call ended and released by another thread inside that window used to
 * be freed (the session keeps at most 16 spare call objects) or parked for
 * reuse by the next start, so the callback read a freed or reused object
 * (ASan: heap-use-after-free in shl__session_deliver_failure). The window
 * is held open with the crash-point seam's hook mode at
 * "deliver.collected" (shl_race.h); the proc test test_call_lifetime does
 * the same for the crash cleanup's on_cleanup (session/cleanup.c) with a
 * SIGKILL.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "shl_race.h"
#include "shl_test.h"

#include "internal.h"

struct counts {
    struct shl_test_race race;
    _Atomic int on_failure; /* the session's on_failure ran */
};

static void
victim_op_failed(shl_call *call, const shl_failed_info *info, void *user)
{
    (void)info;
    shl_test_race_fired(user, call);
}

static void
session_failed(shl_op *op, const shl_failed_info *info, void *user)
{
    (void)op;
    (void)info;
    struct counts *k = user;
    atomic_fetch_add(&k->on_failure, 1);
}

/* The session's spare list full (16 released calls), so a call released
 * now is freed, not kept: the strongest form of the race. */
static void
fill_spares(shl_op *op)
{
    shl_call *c[16];
    for (int i = 0; i < 16; i++)
        assert_shl_ok(shl_call_start(op, NULL, &c[i]));
    for (int i = 0; i < 16; i++) {
        assert_shl_ok(shl_call_end(c[i], NULL));
        assert_shl_ok(shl_call_release(c[i]));
    }
}

static void
test_release_during_failure_delivery(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "call-life");
    struct counts k;
    shl_test_race_init(&k.race);
    atomic_store(&k.on_failure, 0);
    struct shl_test_race *r = &k.race;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p", NULL));
    shl_op_callbacks ocb = {.on_failure = session_failed, .user = &k};
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "lifetime", &ocb, &op));

    shl_call_opts vo;
    shl_call_opts_init(&vo);
    vo.callbacks.on_operation_failed = victim_op_failed;
    vo.callbacks.user = r;
    assert_shl_ok(shl_call_start(op, &vo, &r->victim));
    snprintf(r->victim_id, sizeof(r->victim_id), "%s", shl_call_id(r->victim));
    shl_call *failing = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &failing)); /* fail_on_crash */
    fill_spares(op);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, shl_test_race_release, r), 0);
    /* the first deliverer (this thread or the monitor) waits there while
     * the other thread ends and releases the victim */
    shl__crash_arm_hook("deliver.collected", shl_test_race_hold, r);
    /* fails the operation and delivers the failure on this thread */
    assert_shl_ok(shl_call_fail(failing, "boom"));
    assert_int_equal(pthread_join(t, NULL), 0);
    shl__crash_arm(NULL, SHL__CRASH_SIGKILL);

    assert_int_equal(atomic_load(&r->hooked), 1);
    assert_int_equal(atomic_load(&r->done), 1);
    assert_int_equal(atomic_load(&r->end_rc), 0);     /* a survivor's end */
    assert_int_equal(atomic_load(&r->release_rc), 0); /* not refused */
    /* the victim had ended before the callbacks fired: it is not told
     * (and never through another object) */
    assert_int_equal(atomic_load(&r->fired), 0);
    assert_int_equal(atomic_load(&r->bad_handle), 0);
    assert_true(SHL_WAIT_FOR(atomic_load(&k.on_failure) == 1, 5000));
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_shl_ok(shl_call_release(failing));
    assert_shl_ok(shl_op_leave(op, true));
    assert_true(SHL_WAIT_FOR(shl_test_list_count(l) == 0, 5000));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A callback may end and release its own call: the release takes effect
 * at once (no wait on the delivery that holds the call) and the object is
 * recycled, here freed (the spare list is full), after the callback. */
struct self_release {
    _Atomic int fired;
    _Atomic int end_rc;
    _Atomic int release_rc;
};

static void
release_myself(shl_call *call, const shl_failed_info *info, void *user)
{
    (void)info;
    struct self_release *s = user;
    atomic_fetch_add(&s->fired, 1);
    atomic_store(&s->end_rc, shl_call_end(call, NULL));
    atomic_store(&s->release_rc, shl_call_release(call));
}

static void
test_release_inside_callback(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "call-self");
    struct self_release sr;
    memset(&sr, 0, sizeof(sr));
    atomic_store(&sr.end_rc, -1);
    atomic_store(&sr.release_rc, -1);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_call_opts vo;
    shl_call_opts_init(&vo);
    vo.callbacks.on_operation_failed = release_myself;
    vo.callbacks.user = &sr;
    shl_call *self = NULL, *failing = NULL;
    assert_shl_ok(shl_call_start(op, &vo, &self));
    assert_shl_ok(shl_call_start(op, NULL, &failing));
    fill_spares(op);
    assert_shl_ok(shl_call_fail(failing, "boom"));
    assert_true(SHL_WAIT_FOR(atomic_load(&sr.release_rc) != -1, 5000));
    assert_int_equal(atomic_load(&sr.fired), 1);
    assert_int_equal(atomic_load(&sr.end_rc), 0);
    assert_int_equal(atomic_load(&sr.release_rc), 0);
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_shl_ok(shl_call_release(failing));
    assert_shl_ok(shl_op_leave(op, true));
    assert_true(SHL_WAIT_FOR(shl_test_list_count(l) == 0, 5000));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_during_failure_delivery),
        cmocka_unit_test(test_release_inside_callback),
    };
    return cmocka_run_group_tests_name("call_lifetime", tests, NULL, NULL);
}
