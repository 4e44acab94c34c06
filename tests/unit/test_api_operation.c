/*
 * test_api_operation.c: the Operation class through the public API
 * (issue 3): create, join and sessions, time properties, staleness,
 * per-session pending calls, leave, complete, abort and state.
 * Heartbeat, spawn, sync, exec and log methods are tested elsewhere.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shl_test.h"

#include "shl_text.h"

static bool
frame_present(const shl_snapshot *s, const char *call_id)
{
    for (size_t i = 0; i < s->frame_count; i++)
        if (strcmp(s->frames[i].call_id, call_id) == 0)
            return true;
    return false;
}

struct counter {
    int n;
    shl_op *last_op;
    shl_call *last_call;
    void *last_user;
};

static void
count_cleanup(shl_call *call, void *user)
{
    struct counter *c = user;
    c->n++;
    c->last_call = call;
}

static void
count_abort(shl_op *op, void *user)
{
    struct counter *c = user;
    c->n++;
    c->last_op = op;
    c->last_user = user;
}

static void
count_failure(shl_op *op, const shl_failed_info *info, void *user)
{
    (void)info;
    struct counter *c = user;
    c->n++;
    c->last_op = op;
}

/* ---- create ---- */

static void
test_api_operation_create(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));

    int64_t before = shl_test_wall_us();
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "build the world", NULL, &op));
    int64_t after = shl_test_wall_us();
    assert_true(shl_op_is_initiator(op));
    assert_int_equal(shl_op_session_id(op), 1);
    assert_string_equal(shl_op_participant_id(op), "cli");
    assert_int_equal(shl_op_pid(op), getpid());
    const char *id = shl_op_id(op);
    assert_true(
        shl_test_rx_match("^[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}"
                          "-cli-[0-9a-f]{8}$",
                          id));
    assert_int_equal(shl_validate_operation_id(id), 0);
    /* the date part is the local date of the creation time */
    time_t secs = (time_t)(shl_op_start_time_us(op) / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char ymd[48];
    snprintf(ymd, sizeof(ymd), "%04d%02d%02dT", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
    if (tm.tm_hour != 0 || tm.tm_min != 0) /* not at midnight */
        assert_memory_equal(id, ymd, 9);
    assert_false(shl_op_is_aborted(op));
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    assert_int_equal(shl_op_check_abort(op), 0);
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_false(shl_op_has_pending_calls(op));
    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(op, &fi), 0);

    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l), id);
    assert_string_equal(s->operation_id, id);
    assert_string_equal(s->initiator_id, "cli");
    assert_true(s->has_description);
    assert_string_equal(s->description, "build the world");
    assert_int_equal(s->state, SHL_OP_RUNNING);
    assert_false(s->aborted);
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->resource_count, 0);
    assert_true(shl_snapshot_is_empty(s));
    assert_in_range(s->start_time_us, before, after);
    assert_int_equal(s->start_time_us, shl_op_start_time_us(op));
    assert_int_equal(s->participant_count, 1);
    assert_string_equal(s->participants[0].participant_id, "cli");
    shl_snapshot_free(s);

    /* the list shows it */
    shl_op_summary *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_list(shl_ledger_reader(l), &rows, &n));
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].operation_id, id);
    assert_string_equal(rows[0].initiator_id, "cli");
    assert_string_equal(rows[0].description, "build the world");
    assert_int_equal(rows[0].state, SHL_OP_RUNNING);
    assert_int_equal(rows[0].frame_count, 0);
    free(rows);

    /* no description */
    shl_op *op2 = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op2));
    assert_string_not_equal(shl_op_id(op2), id);
    assert_int_equal(shl_op_session_id(op2), 1);
    s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op2));
    assert_false(s->has_description);
    assert_string_equal(s->description, "");
    shl_snapshot_free(s);

    /* an empty description is a description */
    shl_op *op3 = NULL;
    assert_shl_ok(shl_op_create(l, "", NULL, &op3));
    s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op3));
    assert_true(s->has_description);
    assert_string_equal(s->description, "");
    shl_snapshot_free(s);

    assert_shl_ok(shl_op_complete(op3));
    assert_shl_ok(shl_op_complete(op2));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- join and sessions ---- */

static void
test_api_operation_join_sessions(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL, *l3 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    assert_shl_ok(shl_ledger_open(&l3, base, "vscode", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    const char *id = shl_op_id(op);

    shl_op *a1 = NULL, *a2 = NULL, *b1 = NULL, *self = NULL;
    int64_t before = shl_test_wall_us();
    assert_shl_ok(shl_op_join(l2, id, NULL, &a1));
    assert_false(shl_op_is_initiator(a1));
    assert_int_equal(shl_op_session_id(a1), 1);
    assert_string_equal(shl_op_id(a1), id);
    assert_string_equal(shl_op_participant_id(a1), "bridge");
    /* a joiner's startTime is its join time */
    assert_true(shl_op_start_time_us(a1) >= before);
    assert_true(shl_op_start_time_us(a1) >= shl_op_start_time_us(op));
    assert_shl_ok(shl_op_join(l2, id, NULL, &a2));
    assert_false(shl_op_is_initiator(a2));
    assert_int_equal(shl_op_session_id(a2), 2);
    assert_ptr_not_equal(a1, a2);
    /* session ids count per ledger */
    assert_shl_ok(shl_op_join(l3, id, NULL, &b1));
    assert_int_equal(shl_op_session_id(b1), 1);
    assert_false(shl_op_is_initiator(b1));
    /* the creating ledger joining its own operation stays the initiator
     * and gets session 2 */
    assert_shl_ok(shl_op_join(l, id, NULL, &self));
    assert_true(shl_op_is_initiator(self));
    assert_int_equal(shl_op_session_id(self), 2);
    assert_int_equal(shl_op_start_time_us(self), shl_op_start_time_us(op));

    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l), id);
    assert_int_equal(s->participant_count, 3);
    assert_string_equal(s->initiator_id, "cli");
    shl_snapshot_free(s);

    /* leaving one session keeps the other sessions working */
    assert_shl_ok(shl_op_leave(a1, false));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(a2, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    /* a new join after a leave gets the next session id */
    assert_shl_ok(shl_op_join(l2, id, NULL, &a1));
    assert_int_equal(shl_op_session_id(a1), 3);
    assert_shl_ok(shl_op_leave(a1, false));
    assert_shl_ok(shl_op_leave(a2, false));
    assert_shl_ok(shl_op_leave(b1, false));
    s = shl_test_snap(shl_ledger_reader(l), id);
    assert_int_equal(s->participant_count, 1);
    shl_snapshot_free(s);

    /* the initiator may leave its first session and complete through
     * its second one: both are the initiator's */
    assert_shl_ok(shl_op_leave(op, false));
    assert_shl_ok(shl_op_complete(self));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l3);
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A forked process joins: its own ledger, not the initiator, sessions 1, 2. */
static void
test_api_operation_join_from_forked_process(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    /* Fork first, while no ledger (and so no thread) exists: a child of a
     * threaded process may only call async-signal-safe functions. The
     * child gets the operation id through the go pipe. */
    int ack[2], go[2];
    assert_int_equal(pipe(ack), 0);
    assert_int_equal(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    char id[SHL_OPERATION_ID_MAX + 1] = {0};
    if (pid == 0) {
        close(ack[0]);
        close(go[1]);
        if (read(go[0], id, sizeof(id)) != (ssize_t)sizeof(id))
            _exit(9);
        id[SHL_OPERATION_ID_MAX] = 0;
        shl_ledger *cl = NULL;
        CHILD_CHECK(shl_ledger_open(&cl, base, "child", NULL));
        shl_op *j1 = NULL, *j2 = NULL;
        CHILD_CHECK(shl_op_join(cl, id, NULL, &j1));
        CHILD_CHECK(shl_op_join(cl, id, NULL, &j2));
        if (shl_op_is_initiator(j1) || shl_op_is_initiator(j2))
            _exit(10);
        if (shl_op_session_id(j1) != 1 || shl_op_session_id(j2) != 2)
            _exit(11);
        if (strcmp(shl_op_participant_id(j1), "child") != 0 ||
            shl_op_pid(j1) != getpid())
            _exit(12);
        shl_call *c = NULL;
        CHILD_CHECK(shl_call_start(j2, NULL, &c));
        if (write(ack[1], "j", 1) != 1)
            _exit(13);
        char b;
        if (read(go[0], &b, 1) != 1)
            _exit(14);
        CHILD_CHECK(shl_call_end(c, NULL));
        CHILD_CHECK(shl_op_leave(j1, false));
        CHILD_CHECK(shl_op_leave(j2, false));
        shl_ledger_close(cl);
        _exit(0);
    }
    close(ack[1]);
    close(go[0]);
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "forked join", NULL, &op));
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_int_equal(write(go[1], id, sizeof(id)), (ssize_t)sizeof(id));
    char b = 0;
    /* a failed child closes its end: read returns 0, no hang */
    if (read(ack[0], &b, 1) != 1) {
        assert_child_exited(pid, 0); /* reports the child's status */
        fail_msg("child did not join");
    }
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l), id);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].participant_id, "child");
    assert_int_equal(s->frames[0].pid, pid);
    assert_int_equal(s->frames[0].session_id, 2);
    assert_int_equal(s->participant_count, 2);
    shl_snapshot_free(s);
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_child_exited(pid, 0);
    close(ack[0]);
    close(go[1]);
    s = shl_test_snap(shl_ledger_reader(l), id);
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->participant_count, 1);
    shl_snapshot_free(s);
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- time properties ---- */

static void
test_api_operation_time_properties(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    int64_t before = shl_test_wall_us();
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    int64_t after = shl_test_wall_us();

    int64_t us = shl_op_start_time_us(op);
    assert_in_range(us, before, after);
    assert_int_equal(shl_op_start_time_ms(op), us / 1000);

    int64_t e1 = shl_op_elapsed_ns(op);
    assert_true(e1 >= 0);
    assert_true(__extension__ SHL_WAIT_FOR(
        shl_op_elapsed_ns(op) >= e1 + 3000000, 2000));
    int64_t e2 = shl_op_elapsed_ns(op);
    assert_true(e2 > e1);

    char buf[64];
    int n = shl_op_elapsed_formatted(op, buf, sizeof(buf));
    assert_int_equal(n, 7);
    assert_int_equal((size_t)n, strlen(buf));
    assert_true(shl_test_rx_match("^[0-9]{3}\\.[0-9]{3}$", buf));
    assert_true(atof(buf) >= 0.003);
    /* 24 bytes always suffice; too small reports -ENOSPC */
    char small[4];
    assert_int_equal(shl_op_elapsed_formatted(op, small, sizeof(small)),
                     -ENOSPC);

    n = shl_op_start_time_iso(op, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_true(
        shl_test_rx_match("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                          "[0-9]{2}\\.[0-9]{6}[+-][0-9]{2}:[0-9]{2}$",
                          buf));
    /* the microseconds are those of startTime */
    char frac[8];
    snprintf(frac, sizeof(frac), "%06lld", (long long)(us % 1000000));
    assert_memory_equal(buf + 20, frac, 6);
    /* the local wall-clock fields are those of startTime */
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char expect[32];
    strftime(expect, sizeof(expect), "%Y-%m-%dT%H:%M:%S", &tm);
    assert_memory_equal(buf, expect, 19);
    long off = tm.tm_gmtoff;
    snprintf(expect, sizeof(expect), "%c%02ld:%02ld", off < 0 ? '-' : '+',
             labs(off) / 3600, (labs(off) % 3600) / 60);
    assert_string_equal(buf + 26, expect);
    assert_int_equal(shl_op_start_time_iso(op, small, sizeof(small)), -ENOSPC);

    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- staleness threshold ---- */

static void
test_api_operation_staleness_threshold(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_int_equal(shl_op_staleness_threshold_ms(op), 10000);
    assert_shl_ok(shl_op_set_staleness_threshold_ms(op, 2500));
    assert_int_equal(shl_op_staleness_threshold_ms(op), 2500);
    assert_int_equal(shl_op_set_staleness_threshold_ms(op, 0), -EINVAL);
    assert_int_equal(shl_op_set_staleness_threshold_ms(op, -1), -EINVAL);
    assert_int_equal(shl_op_set_staleness_threshold_ms(op, INT64_MIN), -EINVAL);
    assert_int_equal(shl_op_staleness_threshold_ms(op), 2500);
    assert_shl_ok(shl_op_set_staleness_threshold_ms(op, 1));
    assert_int_equal(shl_op_staleness_threshold_ms(op), 1);
    assert_int_equal(shl_op_set_staleness_threshold_ms(NULL, 5), -EINVAL);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- pending calls per session ---- */

static void
test_api_operation_pending_calls_per_session(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op = NULL, *s2 = NULL, *other = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l, shl_op_id(op), NULL, &s2));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &other));

    shl_call *a = NULL, *b = NULL, *c = NULL, *x = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &a));
    assert_shl_ok(shl_call_start(op, NULL, &b));
    assert_shl_ok(shl_call_start(s2, NULL, &c));
    assert_shl_ok(shl_call_start(other, NULL, &x));

    assert_int_equal(shl_op_pending_call_count(op), 2);
    assert_true(shl_op_has_pending_calls(op));
    assert_int_equal(shl_op_pending_call_count(s2), 1);
    assert_int_equal(shl_op_pending_call_count(other), 1);

    shl_call *list[8] = {0};
    assert_int_equal(shl_op_pending_calls(op, list, 8), 2);
    assert_ptr_equal(list[0], a); /* start order */
    assert_ptr_equal(list[1], b);
    assert_null(list[2]);
    /* cap smaller than the total: total returned, only cap written */
    shl_call *one[2] = {NULL, NULL};
    assert_int_equal(shl_op_pending_calls(op, one, 1), 2);
    assert_ptr_equal(one[0], a);
    assert_null(one[1]);
    assert_int_equal(shl_op_pending_calls(op, NULL, 0), 2);
    memset(list, 0, sizeof(list));
    assert_int_equal(shl_op_pending_calls(s2, list, 8), 1);
    assert_ptr_equal(list[0], c);

    assert_shl_ok(shl_call_end(a, NULL));
    assert_int_equal(shl_op_pending_call_count(op), 1);
    memset(list, 0, sizeof(list));
    assert_int_equal(shl_op_pending_calls(op, list, 8), 1);
    assert_ptr_equal(list[0], b);
    assert_shl_ok(shl_call_fail(b, "x"));
    /* fail_on_crash true by default: the operation failed; the counts
     * still follow the session */
    assert_int_equal(shl_op_pending_call_count(op), 0);
    assert_false(shl_op_has_pending_calls(op));
    assert_int_equal(shl_op_pending_calls(op, list, 8), 0);
    assert_int_equal(shl_op_pending_call_count(s2), 1);
    assert_int_equal(shl_op_pending_call_count(other), 1);

    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_call_end(x, NULL));
    assert_int_equal(shl_op_pending_call_count(s2), 0);
    assert_int_equal(shl_op_pending_call_count(other), 0);
    assert_shl_ok(shl_op_leave(other, false));
    assert_shl_ok(shl_op_leave(s2, false));
    assert_shl_ok(shl_op_leave(op, false));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- leave ---- */

static void
test_api_operation_leave_with_pending_refused(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op = NULL, *j = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &j));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(j, NULL, &c));

    shl_snapshot *before = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(shl_op_leave(j, false), SHL_ESTATE);
    assert_non_null(strstr(shl_errmsg(), "Cannot leave operation"));
    shl_snapshot *after = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(after->frame_count, before->frame_count);
    assert_int_equal(after->change_count, before->change_count);
    assert_int_equal(after->participant_count, before->participant_count);
    shl_snapshot_free(before);
    shl_snapshot_free(after);

    /* the session is still usable */
    assert_int_equal(shl_op_pending_call_count(j), 1);
    assert_false(shl_call_is_completed(c));
    shl_call *c2 = NULL;
    assert_shl_ok(shl_call_start(j, NULL, &c2));
    assert_int_equal(shl_op_pending_call_count(j), 2);
    assert_shl_ok(shl_call_end(c2, NULL));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(j, false));
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->participant_count, 1);
    shl_snapshot_free(s);
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_api_operation_leave_cancel_pending(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    struct counter fails = {0};
    shl_op_callbacks ocb = {.on_failure = count_failure, .user = &fails};
    shl_op *op = NULL, *j1 = NULL, *j2 = NULL;
    assert_shl_ok(shl_op_create(l, NULL, &ocb, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), &ocb, &j1));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), &ocb, &j2));

    struct counter cl_j1 = {0}, cl_j2 = {0}, cl_op = {0};
    shl_call_opts co;
    shl_call_opts_init(&co); /* fail_on_crash true */
    co.callbacks.on_cleanup = count_cleanup;
    shl_call *a = NULL, *b = NULL, *k = NULL, *m = NULL;
    co.callbacks.user = &cl_j1;
    assert_shl_ok(shl_call_start(j1, &co, &a));
    assert_shl_ok(shl_call_start(j1, &co, &b));
    co.callbacks.user = &cl_j2;
    assert_shl_ok(shl_call_start(j2, &co, &k));
    co.callbacks.user = &cl_op;
    assert_shl_ok(shl_call_start(op, &co, &m));
    char ka[SHL_CALL_ID_MAX + 1], kb[SHL_CALL_ID_MAX + 1];
    snprintf(ka, sizeof(ka), "%s", shl_call_id(a));
    snprintf(kb, sizeof(kb), "%s", shl_call_id(b));

    assert_shl_ok(shl_op_leave(j1, true));
    assert_int_equal(cl_j1.n, 2);
    assert_int_equal(cl_j2.n, 0);
    assert_int_equal(cl_op.n, 0);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(s->frame_count, 2);
    assert_false(frame_present(s, ka));
    assert_false(frame_present(s, kb));
    assert_true(frame_present(s, shl_call_id(k)));
    assert_true(frame_present(s, shl_call_id(m)));
    assert_int_equal(s->state, SHL_OP_RUNNING);
    shl_snapshot_free(s);
    /* cancelled calls do not fail the operation */
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(op, &fi), 0);
    assert_int_equal(fails.n, 0);
    assert_int_equal(shl_op_pending_call_count(j2), 1);
    assert_segment_clean(shl_ledger_reader(l));

    /* leave(cancel) without pending calls is a plain leave */
    assert_shl_ok(shl_call_end(k, NULL));
    assert_shl_ok(shl_op_leave(j2, true));
    assert_int_equal(cl_j2.n, 0);
    s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(s->frame_count, 1);
    assert_int_equal(s->participant_count, 1);
    shl_snapshot_free(s);

    assert_shl_ok(shl_call_end(m, NULL));
    assert_shl_ok(shl_op_complete(op));
    assert_int_equal(cl_op.n, 0);
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- complete ---- */

static void
test_api_operation_complete_by_joiner_refused(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op = NULL, *j = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &j));
    shl_snapshot *before = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(shl_op_complete(j), SHL_ESTATE);
    assert_string_equal(shl_errmsg(),
                        "Only the initiator can complete an operation");
    shl_snapshot *after = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_int_equal(after->state, SHL_OP_RUNNING);
    assert_int_equal(after->change_count, before->change_count);
    shl_snapshot_free(before);
    shl_snapshot_free(after);
    /* j stays valid */
    assert_int_equal(shl_op_get_state(j), SHL_OP_RUNNING);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(j, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(j, false));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_api_operation_complete_releases_everything(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op = NULL, *keep = NULL, *j = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_create(l, "unrelated", NULL, &keep));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_shl_ok(shl_op_join(l2, id, NULL, &j));

    struct counter cl = {0};
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.callbacks.on_cleanup = count_cleanup;
    co.callbacks.user = &cl;
    shl_call *mine = NULL, *theirs = NULL, *other = NULL;
    assert_shl_ok(shl_call_start(op, &co, &mine));
    assert_shl_ok(shl_call_start(j, &co, &theirs));
    assert_shl_ok(shl_call_start(keep, NULL, &other));
    assert_shl_ok(shl_op_register_temp_resource(op, "/tmp/api-op-a"));
    assert_shl_ok(shl_op_register_temp_resource(j, "/tmp/api-op-b"));
    assert_shl_ok(shl_op_register_temp_resource(keep, "/tmp/api-op-c"));

    shl_reader *r = shl_ledger_reader(l);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_operations, 2);
    assert_int_equal(info.used_frames, 3);
    assert_int_equal(info.used_resources, 3);

    /* complete does not wait for pending calls (as the original) */
    assert_shl_ok(shl_op_complete(op));
    assert_int_equal(cl.n, 0); /* complete is not a failure: no cleanup */

    shl_snapshot *s = NULL;
    assert_int_equal(shl_reader_snapshot(r, id, &s), SHL_ENOTFOUND);
    shl_op_summary *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_list(r, &rows, &n));
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].operation_id, shl_op_id(keep));
    assert_int_equal(rows[0].frame_count, 1);
    free(rows);
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_operations, 1);
    assert_int_equal(info.used_frames, 1);
    assert_int_equal(info.used_resources, 1);
    assert_segment_clean(r);

    /* joining it afterwards: not found */
    shl_op *late = (shl_op *)(uintptr_t)0x1;
    assert_int_equal(shl_op_join(l2, id, NULL, &late), SHL_ENOTFOUND);
    assert_ptr_equal(late, (shl_op *)(uintptr_t)0x1);

    /* the joiner's session sees the operation gone; its call's frame was
     * released by complete, so ending it is refused: the operation ended
     * without it (SHL_EFENCED is only for a participant declared crashed) */
    assert_int_equal(shl_op_get_state(j), SHL_ESTALE);
    assert_int_equal(shl_op_check_abort(j), SHL_ESTALE);
    assert_int_equal(shl_call_end(theirs, NULL), SHL_ESTATE);
    assert_true(shl_call_is_completed(theirs));
    assert_int_equal(shl_op_pending_call_count(j), 0);
    shl_call *dead = NULL;
    assert_int_equal(shl_call_start(j, NULL, &dead), SHL_ESTALE);
    assert_int_equal(shl_op_register_temp_resource(j, "/tmp/x"), SHL_ESTALE);
    assert_shl_ok(shl_op_leave(j, false));
    assert_segment_clean(r);

    /* the other operation is untouched */
    assert_shl_ok(shl_reader_snapshot(r, shl_op_id(keep), &s));
    assert_int_equal(s->frame_count, 1);
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/api-op-c");
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(other, NULL));
    assert_shl_ok(shl_op_complete(keep));
    assert_segment_clean(r);
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_api_operation_complete_twice_and_after_failure(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op = NULL, *s2 = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l, shl_op_id(op), NULL, &s2));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_call_fail(c, "boom"));
    assert_int_equal(shl_op_get_state(op), SHL_OP_FAILED);
    /* a failed operation cannot be completed; op stays valid */
    assert_int_equal(shl_op_complete(op), SHL_ESTATE);
    assert_int_equal(shl_op_complete(s2), SHL_ESTATE);
    assert_int_equal(shl_op_get_state(op), SHL_OP_FAILED);
    assert_shl_ok(shl_op_leave(s2, false));
    assert_shl_ok(shl_op_leave(op, false));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- abort ---- */

static void
test_api_operation_abort_flag(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op = NULL, *j = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &j));
    shl_segment_info i0, i1;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &i0));

    assert_int_equal(shl_op_check_abort(j), 0);
    assert_shl_ok(shl_op_set_abort_flag(op, true));
    assert_int_equal(shl_op_check_abort(j), 1);
    assert_int_equal(shl_op_check_abort(op), 1);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l2), shl_op_id(op));
    assert_true(s->aborted);
    shl_snapshot_free(s);
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &i1));
    assert_true(i1.epoch > i0.epoch);
    /* setting it twice is fine */
    assert_shl_ok(shl_op_set_abort_flag(op, true));
    assert_int_equal(shl_op_check_abort(j), 1);
    /* a joiner may clear it */
    assert_shl_ok(shl_op_set_abort_flag(j, false));
    assert_int_equal(shl_op_check_abort(op), 0);
    assert_int_equal(shl_op_check_abort(j), 0);
    s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_false(s->aborted);
    shl_snapshot_free(s);
    /* the flag does not change the state */
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    assert_shl_ok(shl_op_leave(j, false));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_api_operation_trigger_abort(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    struct counter ab_op = {0}, ab_j = {0};
    shl_op_callbacks cb_op = {.on_abort = count_abort, .user = &ab_op};
    shl_op_callbacks cb_j = {.on_abort = count_abort, .user = &ab_j};
    shl_op *op = NULL, *j = NULL;
    assert_shl_ok(shl_op_create(l, NULL, &cb_op, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), &cb_j, &j));
    shl_snapshot *before = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));

    assert_false(shl_op_is_aborted(j));
    shl_op_trigger_abort(j);
    assert_true(shl_op_is_aborted(j));
    assert_int_equal(ab_j.n, 1);
    assert_ptr_equal(ab_j.last_op, j);
    assert_ptr_equal(ab_j.last_user, &ab_j);
    shl_op_trigger_abort(j);
    assert_int_equal(ab_j.n, 1); /* exactly once */
    assert_true(shl_op_is_aborted(j));

    /* local only: the shared flag and the other session are unchanged */
    assert_int_equal(shl_op_check_abort(j), 0);
    assert_int_equal(shl_op_check_abort(op), 0);
    assert_false(shl_op_is_aborted(op));
    assert_int_equal(ab_op.n, 0);
    shl_snapshot *after = shl_test_snap(shl_ledger_reader(l), shl_op_id(op));
    assert_false(after->aborted);
    assert_int_equal(after->change_count, before->change_count);
    shl_snapshot_free(before);
    shl_snapshot_free(after);

    /* an aborted session may not start calls (header: SHL_ESTATE) */
    shl_call *c = (shl_call *)(uintptr_t)0x1;
    assert_int_equal(shl_call_start(j, NULL, &c), SHL_ESTATE);
    assert_ptr_equal(c, (shl_call *)(uintptr_t)0x1);
    assert_int_equal(shl_op_pending_call_count(j), 0);
    /* ... but the other session still can */
    c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));

    /* without an on_abort callback trigger_abort still works */
    shl_op *j2 = NULL;
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &j2));
    shl_op_trigger_abort(j2);
    assert_true(shl_op_is_aborted(j2));
    assert_int_equal(ab_j.n, 1);

    assert_shl_ok(shl_op_leave(j2, false));
    assert_shl_ok(shl_op_leave(j, false));
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- state ---- */

static void
test_api_operation_get_state(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-op");
    shl_ledger *l = NULL, *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op = NULL, *j = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &j));
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    assert_int_equal(shl_op_get_state(j), SHL_OP_RUNNING);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(j, NULL, &c));
    assert_shl_ok(shl_call_fail(c, "bad"));
    assert_int_equal(shl_op_get_state(j), SHL_OP_FAILED);
    assert_int_equal(shl_op_get_state(op), SHL_OP_FAILED);
    assert_string_equal(shl_op_state_name(SHL_OP_FAILED), "failed");
    assert_string_equal(shl_op_state_name(SHL_OP_RUNNING), "running");
    assert_string_equal(shl_op_state_name(SHL_OP_CLEANUP), "cleanup");
    assert_string_equal(shl_op_state_name(SHL_OP_COMPLETED), "completed");
    assert_string_equal(shl_op_state_name((shl_op_state)42), "unknown");
    /* a failed operation cannot be joined */
    shl_op *late = NULL;
    assert_int_equal(shl_op_join(l2, shl_op_id(op), NULL, &late), SHL_ESTATE);
    assert_null(late);
    assert_shl_ok(shl_op_leave(j, false));
    /* the initiator's last leave reclaims a failed operation */
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_shl_ok(shl_op_leave(op, false));
    shl_snapshot *s = NULL;
    assert_int_equal(shl_reader_snapshot(shl_ledger_reader(l), id, &s),
                     SHL_ENOTFOUND);
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_operation_create),
        cmocka_unit_test(test_api_operation_join_sessions),
        cmocka_unit_test(test_api_operation_join_from_forked_process),
        cmocka_unit_test(test_api_operation_time_properties),
        cmocka_unit_test(test_api_operation_staleness_threshold),
        cmocka_unit_test(test_api_operation_pending_calls_per_session),
        cmocka_unit_test(test_api_operation_leave_with_pending_refused),
        cmocka_unit_test(test_api_operation_leave_cancel_pending),
        cmocka_unit_test(test_api_operation_complete_by_joiner_refused),
        cmocka_unit_test(test_api_operation_complete_releases_everything),
        cmocka_unit_test(test_api_operation_complete_twice_and_after_failure),
        cmocka_unit_test(test_api_operation_abort_flag),
        cmocka_unit_test(test_api_operation_trigger_abort),
        cmocka_unit_test(test_api_operation_get_state),
    };
    return cmocka_run_group_tests_name("api_operation", tests, NULL, NULL);
}
