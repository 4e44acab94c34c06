/*
 * test_cleaner_killed.c: a member whose self-cleanup (DESIGN §6 phase 2:
 * delete the temp resources it registered) is SIGKILLed after taking its
 * records and before deleting the files. The files must still be deleted
 * by whoever reaps it (issue 12; found by the torture tier as temp_left).
 *
 * Before: every cleaner freed the resource records under the lock and
 * deleted the files after unlocking, so one killed in between left files
 * that no record named any more. Now the files go first and the records
 * after (shl__res_delete_then_free).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "shl_proc.h"
#include "shl_test.h"

static void
test_self_cleanup_killed(void **state)
{
    (void)state;
    char base[512], tmp[600];
    shl_test_base(base, sizeof(base), "cleaner-killed");
    snprintf(tmp, sizeof(tmp), "%s/tmpfile", base);
    shl_ledger *l = NULL;
    shl_op *op = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "parent", NULL));
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fclose(f);
    /* its monitor dies at the point when the failure reaches it */
    shl_test_member m = {.base = base,
                         .name = "child",
                         .join = id,
                         .point = "cleanup.unlocked",
                         .setup = shl_test_step_register,
                         .arg = tmp};
    pid_t pid = shl_test_member_fork(&m, NULL, 0);
    assert_shl_ok(shl_op_set_state(op, SHL_OP_FAILED));
    assert_child_signaled(pid, SIGKILL);
    assert_shl_ok(shl_op_leave(op, true));
    assert_true(shl_ledger_reap(l) >= 0);
    struct stat st;
    if (!SHL_WAIT_FOR(stat(tmp, &st) != 0, 5000))
        fail_msg("the temp file of a member killed in its self-cleanup was "
                 "never deleted");
    shl_segment_info si;
    assert_true(SHL_WAIT_FOR(shl_reader_info(shl_ledger_reader(l), &si) == 0 &&
                                 si.used_resources == 0 &&
                                 si.used_operations == 0,
                             5000));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_cleanup_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
