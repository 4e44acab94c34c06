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
 * is held open here with the crash-point seam's hook mode at
 * "deliver.collected"; the proc test test_call_lifetime does the same for
 * the crash cleanup's on_cleanup (session/cleanup.c) with a SIGKILL.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shl_test.h"

#include "internal.h"
#include "objects.h"

/* What the hook and the other API thread share. */
struct race {
    shl_call *victim;        /* the call the other thread ends and releases */
    char victim_id[SHL_CALL_ID_MAX + 1];
    _Atomic int go;          /* hook -> other thread: act now */
    _Atomic int done;        /* other thread -> hook: released */
    _Atomic int hooked;      /* threads that reached the point */
    _Atomic int end_rc;
    _Atomic int release_rc;
    _Atomic int op_failed;   /* victim's on_operation_failed ran */
    _Atomic int bad_handle;  /* ... with a handle that was not the victim */
    _Atomic int on_failure;  /* the session's on_failure ran */
};

/* Runs at "deliver.collected" on the delivering thread (the thread whose
 * shl_call_fail failed the operation, or the monitor): the victim is
 * collected as pending; another thread now ends and releases it, and every
 * deliverer waits for that before it goes on to fire the callbacks. */
static void
hold_window(const char *name, void *arg)
{
    (void)name;
    struct race *r = arg;
    atomic_fetch_add(&r->hooked, 1);
    atomic_store(&r->go, 1);
    if (!SHL_WAIT_FOR(atomic_load(&r->done), 10000))
        fprintf(stderr, "hold_window: the other thread never released\n");
}

/* Make this thread's next free of a call-sized block take glibc's slow
 * path, where M_PERTURB overwrites the freed block: its tcache bin is full.
 * So a read of a freed call object (a callback pointer) crashes the Debug
 * build too, not only under ASan, TSan or valgrind. */
static void
fill_tcache(void)
{
    void *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = malloc(sizeof(struct shl_call));
    for (int i = 0; i < 8; i++)
        free(p[i]);
}

static void *
other_thread(void *arg)
{
    struct race *r = arg;
    if (!SHL_WAIT_FOR(atomic_load(&r->go), 10000))
        return NULL;
    fill_tcache();
    atomic_store(&r->end_rc, shl_call_end(r->victim, NULL));
    atomic_store(&r->release_rc, shl_call_release(r->victim));
    atomic_store(&r->done, 1);
    return NULL;
}

static void
victim_op_failed(shl_call *call, const shl_failed_info *info, void *user)
{
    (void)info;
    struct race *r = user;
    atomic_fetch_add(&r->op_failed, 1);
    if (call != r->victim || strcmp(shl_call_id(call), r->victim_id) != 0)
        atomic_fetch_add(&r->bad_handle, 1);
}

static void
session_failed(shl_op *op, const shl_failed_info *info, void *user)
{
    (void)op;
    (void)info;
    struct race *r = user;
    atomic_fetch_add(&r->on_failure, 1);
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
#ifdef M_PERTURB
    mallopt(M_PERTURB, 0xa5); /* glibc: freed memory is overwritten */
#endif
    char base[512];
    shl_test_base(base, sizeof(base), "call-life");
    struct race r;
    memset(&r, 0, sizeof(r));
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "p", NULL));
    shl_op_callbacks ocb = {.on_failure = session_failed, .user = &r};
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "lifetime", &ocb, &op));

    shl_call_opts vo;
    shl_call_opts_init(&vo);
    vo.callbacks.on_operation_failed = victim_op_failed;
    vo.callbacks.user = &r;
    assert_shl_ok(shl_call_start(op, &vo, &r.victim));
    snprintf(r.victim_id, sizeof(r.victim_id), "%s", shl_call_id(r.victim));
    shl_call *failing = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &failing)); /* fail_on_crash */
    fill_spares(op);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &r), 0);
    shl__crash_arm_hook("deliver.collected", hold_window, &r);
    /* fails the operation and delivers the failure on this thread */
    assert_shl_ok(shl_call_fail(failing, "boom"));
    assert_int_equal(pthread_join(t, NULL), 0);
    shl__crash_arm(NULL, SHL__CRASH_SIGKILL);

    assert_true(atomic_load(&r.hooked) >= 1);
    assert_int_equal(atomic_load(&r.done), 1);
    assert_int_equal(atomic_load(&r.end_rc), 0);     /* a survivor's end */
    assert_int_equal(atomic_load(&r.release_rc), 0); /* not refused */
    /* the victim had ended before the callbacks fired: it is not told
     * (and never through another object) */
    assert_int_equal(atomic_load(&r.op_failed), 0);
    assert_int_equal(atomic_load(&r.bad_handle), 0);
    assert_true(SHL_WAIT_FOR(atomic_load(&r.on_failure) == 1, 5000));
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_shl_ok(shl_call_release(failing));
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_during_failure_delivery),
    };
    return cmocka_run_group_tests_name("call_lifetime", tests, NULL, NULL);
}
