/*
 * test_call_lifetime.c: a call handed to a crash cleanup's on_cleanup stays
 * that call until the callback returns, whatever another API thread does
 * with it meanwhile.
 *
 * The self-cleanup (session/cleanup.c, monitor thread) collects a
 * session's pending calls under op->mu and runs their on_cleanup, and
 * marks their frames cleanedUp, after dropping it. A call ended and
 * released by an API thread inside that window used to be freed (the
 * session keeps at most 16 spare call objects) or parked for reuse by the
 * next start, so the monitor read a freed or reused object: its callbacks,
 * and the frame index and generation it then marked cleanedUp (ASan:
 * heap-use-after-free in shl__session_self_cleanup). A member is SIGKILLed
 * with a failOnCrash call pending; the window is held open with the
 * crash-point seam's hook mode at "cleanup.collected".
 * tests/unit/test_call_lifetime.c does the same for the failure delivery.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shl_proc.h"
#include "shl_test.h"

#include "internal.h"
#include "objects.h"

struct race {
    shl_call *victim;
    char victim_id[SHL_CALL_ID_MAX + 1];
    _Atomic int go;         /* hook -> API thread: act now */
    _Atomic int done;       /* API thread -> hook: released */
    _Atomic int hooked;
    _Atomic int end_rc;
    _Atomic int release_rc;
    _Atomic int cleanups;   /* the victim's on_cleanup ran */
    _Atomic int bad_handle; /* ... with a handle that was not the victim */
};

/* "cleanup.collected", on the monitor thread: the victim is collected as
 * pending; hold the window until the API thread has released it. */
static void
hold_window(const char *name, void *arg)
{
    (void)name;
    struct race *r = arg;
    atomic_fetch_add(&r->hooked, 1);
    atomic_store(&r->go, 1);
    if (!SHL_WAIT_FOR(atomic_load(&r->done), 10000))
        fprintf(stderr, "hold_window: the API thread never released\n");
}

/* Make this thread's next free of a call-sized block take glibc's slow
 * path, where M_PERTURB overwrites it (a full tcache bin), so a read of
 * the freed object crashes the Debug build too. */
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
api_thread(void *arg)
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
victim_cleanup(shl_call *call, void *user)
{
    struct race *r = user;
    atomic_fetch_add(&r->cleanups, 1);
    if (call != r->victim || strcmp(shl_call_id(call), r->victim_id) != 0)
        atomic_fetch_add(&r->bad_handle, 1);
}

static void
test_release_during_self_cleanup(void **state)
{
    (void)state;
#ifdef M_PERTURB
    mallopt(M_PERTURB, 0xa5); /* glibc: freed memory is overwritten */
#endif
    char base[512];
    shl_test_base(base, sizeof(base), "call-life");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.heartbeat_interval_ms = 100;
    /* the member first: this process has no ledger threads yet */
    char id[SHL_OPERATION_ID_MAX + 1];
    shl_test_member m = {.base = base, .name = "member", .opts = &o,
                         .setup = shl_test_step_start_call};
    pid_t pid = shl_test_member_fork(&m, id, sizeof(id));
    assert_true(id[0] != 0);

    struct race r;
    memset(&r, 0, sizeof(r));
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "survivor", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_join(l, id, NULL, &op));
    shl_call_opts vo;
    shl_call_opts_init(&vo);
    vo.callbacks.on_cleanup = victim_cleanup;
    vo.callbacks.user = &r;
    assert_shl_ok(shl_call_start(op, &vo, &r.victim));
    snprintf(r.victim_id, sizeof(r.victim_id), "%s", shl_call_id(r.victim));
    /* the session's spare list full: a call released now is freed */
    shl_call *c[16];
    for (int i = 0; i < 16; i++)
        assert_shl_ok(shl_call_start(op, NULL, &c[i]));
    for (int i = 0; i < 16; i++) {
        assert_shl_ok(shl_call_end(c[i], NULL));
        assert_shl_ok(shl_call_release(c[i]));
    }

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, api_thread, &r), 0);
    shl__crash_arm_hook("cleanup.collected", hold_window, &r);
    kill(pid, SIGKILL);
    assert_child_signaled(pid, SIGKILL);
    shl_failed_info info;
    assert_shl_ok(shl_op_wait_failure(op, 10000 * shl_test_multiplier(),
                                      &info));
    assert_int_equal(pthread_join(t, NULL), 0);
    shl__crash_arm(NULL, SHL__CRASH_SIGKILL);

    assert_int_equal(atomic_load(&r.hooked), 1);
    assert_int_equal(atomic_load(&r.done), 1);
    assert_int_equal(atomic_load(&r.end_rc), 0);
    assert_int_equal(atomic_load(&r.release_rc), 0);
    /* it ended before the cleanup reached it: no on_cleanup (and never
     * through another object) */
    assert_int_equal(atomic_load(&r.cleanups), 0);
    assert_int_equal(atomic_load(&r.bad_handle), 0);
    assert_int_equal(info.crashed_call_count, 1);
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_during_self_cleanup),
    };
    return cmocka_run_group_tests_name("call_lifetime", tests, NULL, NULL);
}
