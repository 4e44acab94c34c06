/*
 * test_archiver_killed.c: the process that finishes an operation (its
 * archiver: the completer, or the member that fails it) is SIGKILLed after
 * its locked section and before its archive is whole on disk. Whoever
 * comes next (a reap: any monitor pass, open or gc; or the last member
 * leaving) must write the archive, with the logs moved in, and free the
 * record: nothing lost, nothing stuck (issue 12; found by the torture tier
 * as not_archived / not_archived_archiver_killed).
 *
 * Before: complete() freed the record in its locked section, so a
 * completer killed before writing left no archive at all; a failed
 * operation was freed as soon as backup/{id}/operation.json existed, so an
 * archiver killed between that file and moving the logs left the logs
 * stranded beside the archive.
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
#include "shl_text.h"

static bool
exists(const char *base, const char *id, const char *name)
{
    char p[900];
    snprintf(p, sizeof(p), "%s/backup/%s/%s", base, id, name);
    return access(p, F_OK) == 0;
}

static bool
live_exists(const char *base, const char *id, const char *suffix)
{
    char p[900];
    snprintf(p, sizeof(p), "%s/%s%s", base, id, suffix);
    return access(p, F_OK) == 0;
}

/* The archive is whole: operation.json and the logs in backup/{id}/, no
 * live log or trail left beside it, with the marker line in the log. */
static void
assert_archived(const char *base, const char *id, const char *point)
{
    if (!exists(base, id, "operation.json"))
        fail_msg("killed at %s: %s has no backup/.../operation.json", point,
                 id);
    if (!exists(base, id, "operation.log") || !exists(base, id, "trail.jsonl"))
        fail_msg("killed at %s: %s: the log or trail is not in the archive",
                 point, id);
    if (live_exists(base, id, ".operation.log") ||
        live_exists(base, id, "_trail.jsonl"))
        fail_msg("killed at %s: %s: a log or trail left beside the archive",
                 point, id);
    char p[900];
    snprintf(p, sizeof(p), "%s/backup/%s/operation.log", base, id);
    char *text = shl_test_slurp(p, NULL);
    assert_non_null(text);
    if (!strstr(text, "before the kill"))
        fail_msg("killed at %s: %s: the line logged before the kill is not "
                 "in the archived log",
                 point, id);
    free(text);
}

/* The member's setup (shl_test_member): a line in the log first. */
static int
log_before(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    (void)arg;
    return shl_op_log(op, SHL_LOG_INFO, "before the kill");
}

/* complete() killed at `point`; then a reap by another process. */
static void
complete_killed_at(const char *point)
{
    char base[512];
    shl_test_base(base, sizeof(base), "arch-killed");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "parent", NULL));
    char id[SHL_OPERATION_ID_MAX + 1] = "";
    shl_test_member m = {.base = base,
                         .name = "child",
                         .point = point,
                         .setup = log_before,
                         .act = shl_test_step_complete};
    shl_test_member_killed(&m, id, sizeof(id));
    assert_true(id[0] != 0);

    assert_true(shl_ledger_reap(l) >= 0);
    assert_true(SHL_WAIT_FOR(shl_test_list_count(l) == 0, 5000));
    assert_archived(base, id, point);
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_completer_killed_before_archive(void **state)
{
    (void)state;
    complete_killed_at("complete.unlocked");
}

static void
test_completer_killed_mid_archive(void **state)
{
    (void)state;
    complete_killed_at("archive.json");
}

/* A member fails the operation (shl_op_set_state failed) and is killed at
 * `point`; the parent, the other member, then leaves: the last member
 * leaving finishes it (archive written by whoever took over, record
 * freed). */
static void
failer_killed_at(const char *point)
{
    char base[512];
    shl_test_base(base, sizeof(base), "arch-killed");
    shl_ledger *l = NULL;
    shl_op *op = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "parent", NULL));
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "before the kill"));
    shl_test_member m = {.base = base,
                         .name = "child",
                         .join = id,
                         .point = point,
                         .act = shl_test_step_fail};
    shl_test_member_killed(&m, NULL, 0);
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_shl_ok(shl_op_leave(op, true));
    assert_true(shl_ledger_reap(l) >= 0);
    assert_true(SHL_WAIT_FOR(shl_test_list_count(l) == 0, 5000));
    assert_archived(base, id, point);
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_failer_killed_before_archive(void **state)
{
    (void)state;
    failer_killed_at("fail.unlocked");
}

static void
test_failer_killed_mid_archive(void **state)
{
    (void)state;
    failer_killed_at("archive.json");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completer_killed_before_archive),
        cmocka_unit_test(test_completer_killed_mid_archive),
        cmocka_unit_test(test_failer_killed_before_archive),
        cmocka_unit_test(test_failer_killed_mid_archive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
