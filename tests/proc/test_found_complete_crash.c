/*
 * test_found_complete_crash.c: a completer killed in the middle of
 * shl_op_complete() (at the crash points of its resource frees) leaves the
 * operation fully gone, and archived, after the next locker's repair and a
 * reap: complete() does its segment work in one locked section, the repair
 * finishes the frees of any operation it finds `completed` with frames or
 * resources left (lock.c, finish_completed_ops), and the reaper writes the
 * archive the dead completer never wrote, then frees the record
 * (crash/reaper.c). Found as a bug by this test, fixed since; kept as a
 * regression test. (Until issue 12's torture tier, the repair freed the
 * record itself and the archive was lost for good.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shl_proc.h"
#include "shl_test.h"

#include "shm/index.h"
#include "internal.h"
#include "objects.h"
#include "shm/lock.h"
#include "shm/segment.h"

static char cur_base[512];

static void
crash_in_complete(const char *point)
{
    char base[512], res[600];
    shl_test_base(base, sizeof(base), "found-complete");
    snprintf(cur_base, sizeof(cur_base), "%s", base);
    snprintf(res, sizeof(res), "%s/res", base);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "parent", NULL)); /* no session */
    char id[SHL_OPERATION_ID_MAX + 1] = "";
    shl_test_member m = {.base = base,
                         .name = "child",
                         .point = point,
                         .setup = shl_test_step_register,
                         .act = shl_test_step_complete,
                         .arg = res};
    shl_test_member_killed(&m, id, sizeof(id));
    assert_true(id[0] != 0);

    /* the next locker repairs */
    assert_shl_ok(shl__lock(&l->seg, 2000));
    shl__unlock(&l->seg);
    assert_segment_clean(shl_ledger_reader(l));
    /* the reap (any monitor pass, open or gc) archives and frees it */
    assert_true(shl_ledger_reap(l) >= 0);
    assert_segment_clean(shl_ledger_reader(l));
    char arch[800];
    snprintf(arch, sizeof(arch), "%s/backup/%s/operation.json", base, id);
    if (access(arch, F_OK) != 0)
        fail_msg("crash at %s in complete: %s not archived", point, id);

    uint32_t idx;
    uint64_t gen;
    if (shl__index_lookup(&l->seg, id, &idx, &gen) == 0) {
        int st = (int)atomic_load(&shl__op_at(&l->seg, idx)->op_state);
        if (st != SHL_OP_RUNNING)
            fail_msg("crash at %s in complete: operation %s left %s, neither "
                     "gone nor running",
                     point, id, shl_op_state_name((shl_op_state)st));
    }
    shl_ledger_close(l);
    shl_test_cleanup(base);
    cur_base[0] = 0;
}

static void
test_found_complete_crash_at_free_intent(void **state)
{
    (void)state;
    crash_in_complete("free.intent");
}

static void
test_found_complete_crash_at_free_released(void **state)
{
    (void)state;
    crash_in_complete("free.released");
}

static int
teardown(void **state)
{
    (void)state;
    if (cur_base[0])
        shl_test_cleanup(cur_base);
    cur_base[0] = 0;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_found_complete_crash_at_free_intent,
                                  teardown),
        cmocka_unit_test_teardown(test_found_complete_crash_at_free_released,
                                  teardown),
    };
    return cmocka_run_group_tests_name("found_complete_crash", tests, NULL,
                                       NULL);
}
