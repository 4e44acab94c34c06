/*
 * test_conform.c: the original's contract where its users lean on it
 * (issue 15): cancelled calls, leave's count, files after the archive,
 * trail pid types, trail backup callbacks, spawned-call errors, frame
 * heartbeats, error names.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shl_test.h"
#include "shl_text.h"

struct fx {
    char base[512];
    shl_ledger *l, *l2;
    shl_op *op, *j;
    char id[SHL_OPERATION_ID_MAX + 1];
};

struct cbrec {
    _Atomic int backups;
    _Atomic int trail_backups;
};

static void
on_backup(const char *path, void *user)
{
    struct cbrec *r = user;
    atomic_fetch_add(&r->backups, 1);
    if (strstr(path, "trail"))
        atomic_fetch_add(&r->trail_backups, 1);
}

static void
fx_open_cb(struct fx *f, struct cbrec *rec)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "conform");
    shl_ledger_opts lo;
    shl_ledger_opts_init(&lo);
    if (rec) {
        lo.callbacks.on_backup_created = on_backup;
        lo.callbacks.user = rec;
    }
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", &lo));
    assert_shl_ok(shl_ledger_open(&f->l2, f->base, "bridge", NULL));
    assert_shl_ok(shl_op_create(f->l, "conform", NULL, &f->op));
    snprintf(f->id, sizeof(f->id), "%s", shl_op_id(f->op));
    assert_shl_ok(shl_op_join(f->l2, f->id, NULL, &f->j));
}

static void
fx_open(struct fx *f)
{
    fx_open_cb(f, NULL);
}

static void
fx_close(struct fx *f)
{
    shl_ledger_close(f->l2);
    shl_ledger_close(f->l);
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, f->base));
    assert_segment_clean(r);
    shl_reader_close(r);
    shl_test_cleanup(f->base);
}

static bool
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- work functions ---- */

/* Waits for cancellation, then answers it the natural way. */
static int
work_until_cancelled(shl_spawned *c, void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (!shl_spawned_is_cancelled(c))
        shl_test_pause_ms(1);
    return -ECANCELED;
}

static int
work_boom(shl_spawned *c, void *arg, void **result)
{
    (void)arg;
    (void)result;
    shl_spawned_set_error(c, "boom");
    return -EIO;
}

struct crashed_seen {
    char error[64];
    _Atomic int calls;
};

static void *
crashed_no_fallback(shl_spawned *c, void *user)
{
    struct crashed_seen *s = user;
    const char *e = shl_spawned_error(c);
    snprintf(s->error, sizeof(s->error), "%s", e ? e : "(null)");
    atomic_fetch_add(&s->calls, 1);
    return NULL;
}

/* ---- 1. a cancelled spawned call does not fail the operation ---- */

static void
test_conform_cancelled_spawned_not_failure(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_until_cancelled, NULL, NULL, &c));
    assert_shl_ok(shl_op_leave(f.j, true));
    f.j = NULL;
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(f.op, &fi), 0);
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* A cancel without leave: the outcome is "cancelled", waits say so. */
static void
test_conform_cancelled_spawned_wait(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_until_cancelled, NULL, NULL,
                                    &c));
    shl_spawned_cancel(c);
    assert_int_equal(shl_spawned_wait(c, 5000, NULL), SHL_ECANCELLED);
    assert_true(shl_spawned_is_cancelled(c));
    assert_true(shl_spawned_is_completed(c));
    assert_false(shl_spawned_is_success(c));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 2. leave(false) counts every pending call ---- */

static void
test_conform_leave_counts_all(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *a = NULL, *b = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &a));
    assert_shl_ok(shl_call_start(f.j, NULL, &b));
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_until_cancelled, NULL, NULL, &c));
    assert_int_equal(shl_op_pending_call_count(f.j), 3);
    assert_int_equal(shl_op_leave(f.j, false), SHL_ESTATE);
    const char *m = shl_errmsg();
    if (!strstr(m, "3 call(s)"))
        fail_msg("leave(false) message: %s", m);
    assert_non_null(strstr(m, shl_call_id(a)));
    assert_non_null(strstr(m, shl_call_id(b)));
    assert_non_null(strstr(m, shl_spawned_id(c)));
    assert_shl_ok(shl_op_leave(f.j, true));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 3. nothing of an archived operation is left beside it ---- */

static void
assert_nothing_beside(const char *base, const char *id)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s_trail.jsonl", base, id);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/%s.operation.log", base, id);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/%s.operation.debug.log", base, id);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/%s.operation.json", base, id);
    assert_false(exists(p));
}

static bool
archived_contains(const char *base, const char *id, const char *file,
                  const char *needle)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/backup/%s/%s", base, id, file);
    char *t = shl_test_slurp(p, NULL);
    bool ok = t && strstr(t, needle);
    free(t);
    return ok;
}

/* after a plain complete: a member's late log line and call end */
static void
test_conform_no_stray_files_after_complete(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_op_log(f.op, SHL_LOG_INFO, "before"));
    assert_shl_ok(shl_op_complete(f.op));
    /* the operation ended without the call: refused, nothing logged */
    assert_int_equal(shl_call_end(c, NULL), SHL_ESTATE);
    assert_shl_ok(shl_op_log(f.j, SHL_LOG_INFO, "late line"));
    assert_shl_ok(shl_op_debug_log(f.j, "late debug line"));
    assert_shl_ok(shl_op_leave(f.j, true));
    shl_ledger_close(f.l2);
    shl_ledger_close(f.l);
    assert_nothing_beside(f.base, f.id);
    assert_true(archived_contains(f.base, f.id, "operation.log", "before"));
    assert_true(archived_contains(f.base, f.id, "operation.log", "late line"));
    assert_true(archived_contains(f.base, f.id, "operation.debug.log",
                                  "late debug line"));
    shl_test_cleanup(f.base);
}

/* after a failure: members leave after the archive was written */
static void
test_conform_no_stray_files_after_failure(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_call_fail(c, "bad"));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_FAILED);
    assert_shl_ok(shl_op_leave(f.j, true));
    assert_shl_ok(shl_op_leave(f.op, true));
    shl_ledger_close(f.l2);
    shl_ledger_close(f.l);
    assert_nothing_beside(f.base, f.id);
    assert_true(archived_contains(f.base, f.id, "trail.jsonl",
                                  "PARTICIPANT_LEFT"));
    assert_true(archived_contains(f.base, f.id, "operation.log",
                                  "CALL_FAILED"));
    shl_test_cleanup(f.base);
}

/* ---- 5. the trail's pid is a number in every event ---- */

static void
test_conform_trail_pid_is_number(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    f.j = NULL;
    assert_shl_ok(shl_op_complete(f.op));
    char p[1024];
    snprintf(p, sizeof(p), "%s/backup/%s/trail.jsonl", f.base, f.id);
    char *t = shl_test_slurp(p, NULL);
    assert_non_null(t);
    assert_non_null(strstr(t, "PARTICIPANT_JOINED"));
    assert_non_null(strstr(t, "PARTICIPANT_LEFT"));
    assert_null(strstr(t, "\"pid\":\""));
    /* and every line has one */
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n"))
        assert_true(shl_test_rx_match("\"pid\":[0-9]+", line));
    free(t);
    fx_close(&f);
}

/* ---- 6. on_backup_created also reports trail files ---- */

static void
test_conform_backup_callback_trail(void **state)
{
    (void)state;
    struct fx f;
    struct cbrec rec = {0};
    fx_open_cb(&f, &rec);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    f.j = NULL;
    assert_shl_ok(shl_op_complete(f.op));
    assert_true(atomic_load(&rec.trail_backups) >= 1);
    assert_true(atomic_load(&rec.backups) >= 2);
    fx_close(&f);
}

/* ---- 7. spawned-call errors ---- */

static void
test_conform_spawned_error_in_crashed_cb(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct crashed_seen seen = {0};
    shl_spawn_opts so;
    shl_spawn_opts_init(&so);
    so.fail_on_crash = false;
    so.on_call_crashed = crashed_no_fallback;
    so.callbacks.user = &seen;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_boom, NULL, &so, &c));
    int rc = shl_spawned_wait(c, 5000, NULL);
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_string_equal(seen.error, "boom");
    /* only the call failed: a call-level code, not "operation failed" */
    assert_int_equal(rc, SHL_ECALLFAILED);
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_string_equal(shl_spawned_error(c), "boom");
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 9. a frame's lastHeartbeat is never before its start ---- */

static void
test_conform_frame_heartbeat_not_before_start(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    /* the participant's heartbeat was stored at open; start later */
    int64_t t0 = shl_test_now_ms();
    while (shl_test_now_ms() - t0 < 30)
        shl_test_pause_ms(5);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(f.l), f.id, &s));
    assert_int_equal(s->frame_count, 1);
    assert_true(s->frames[0].last_heartbeat_us >= s->frames[0].start_time_us);
    char *json = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &json));
    shl_snapshot *back = NULL;
    assert_shl_ok(shl_snapshot_from_json(json, &back));
    assert_true(back->frames[0].last_heartbeat_us >=
                back->frames[0].start_time_us);
    shl_snapshot_free(back);
    free(json);
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 10. names of codes ---- */

static void
test_conform_error_names(void **state)
{
    (void)state;
    assert_string_equal(shl_strerror_name(SHL_EFENCED), "SHL_EFENCED");
    assert_string_equal(shl_strerror_name(SHL_ECALLFAILED), "SHL_ECALLFAILED");
    assert_string_equal(shl_strerror_name(SHL_ECANCELLED), "SHL_ECANCELLED");
    assert_string_equal(shl_strerror_name(-ENOENT), "ENOENT");
    assert_string_equal(shl_strerror_name(-ECANCELED), "ECANCELED");
    assert_string_equal(shl_strerror_name(0), "OK");
    assert_string_equal(shl_strerror_name(-999999), "UNKNOWN");
    assert_string_equal(shl_strerror(SHL_ECALLFAILED), "call failed");
    assert_string_equal(shl_strerror(SHL_ECANCELLED), "call cancelled");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conform_cancelled_spawned_not_failure),
        cmocka_unit_test(test_conform_cancelled_spawned_wait),
        cmocka_unit_test(test_conform_leave_counts_all),
        cmocka_unit_test(test_conform_no_stray_files_after_complete),
        cmocka_unit_test(test_conform_no_stray_files_after_failure),
        cmocka_unit_test(test_conform_trail_pid_is_number),
        cmocka_unit_test(test_conform_backup_callback_trail),
        cmocka_unit_test(test_conform_spawned_error_in_crashed_cb),
        cmocka_unit_test(test_conform_frame_heartbeat_not_before_start),
        cmocka_unit_test(test_conform_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
