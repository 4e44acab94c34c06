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
 * crash-point seam's hook mode at "cleanup.collected" (shl_race.h).
 * tests/unit/test_call_lifetime.c does the same for the failure delivery.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shl_proc.h"
#include "shl_race.h"
#include "shl_test.h"

#include "internal.h"

static void
victim_cleanup(shl_call *call, void *user)
{
    shl_test_race_fired(user, call);
}

static void
test_release_during_self_cleanup(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "call-life");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.heartbeat_interval_ms = 100;
    /* the member first: this process has no ledger threads yet */
    char id[SHL_OPERATION_ID_MAX + 1];
    shl_test_member m = {.base = base,
                         .name = "member",
                         .opts = &o,
                         .setup = shl_test_step_start_call};
    pid_t pid = shl_test_member_fork(&m, id, sizeof(id));
    assert_true(id[0] != 0);

    struct shl_test_race r;
    shl_test_race_init(&r);
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
    assert_int_equal(pthread_create(&t, NULL, shl_test_race_release, &r), 0);
    shl__crash_arm_hook("cleanup.collected", shl_test_race_hold, &r);
    kill(pid, SIGKILL);
    assert_child_signaled(pid, SIGKILL);
    shl_failed_info info;
    assert_shl_ok(
        shl_op_wait_failure(op, 10000 * shl_test_multiplier(), &info));
    assert_int_equal(pthread_join(t, NULL), 0);
    shl__crash_arm(NULL, SHL__CRASH_SIGKILL);

    assert_int_equal(atomic_load(&r.hooked), 1);
    assert_int_equal(atomic_load(&r.done), 1);
    assert_int_equal(atomic_load(&r.end_rc), 0);
    assert_int_equal(atomic_load(&r.release_rc), 0);
    /* it ended before the cleanup reached it: no on_cleanup (and never
     * through another object) */
    assert_int_equal(atomic_load(&r.fired), 0);
    assert_int_equal(atomic_load(&r.bad_handle), 0);
    assert_int_equal(info.crashed_call_count, 1);
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_shl_ok(shl_op_leave(op, true));
    /* the failed operation is freed once its archiver (our monitor, the
     * coordinator) has written the archive: check the segment after */
    assert_true(SHL_WAIT_FOR(shl_test_list_count(l) == 0, 5000));
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
