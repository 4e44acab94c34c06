/*
 * test_api_badinput.c: bad input to the public API (issue 3). Every case
 * returns its documented error (or is a documented no-op) AND leaves the
 * segment unchanged: a snapshot of the operation, the session counters and
 * the segment counts are compared before and after, and the invariant
 * checker must pass.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shl_test.h"

/* A busy operation: two ledgers, two sessions, pending calls in both,
 * finished calls, a temp resource. */
struct fx {
    char base[512];
    shl_ledger *l, *l2;
    shl_op *op, *j;
    shl_call *pend_op, *pend_j, *ended, *failed;
    char id[SHL_OPERATION_ID_MAX + 1];
};

/* What "unchanged" compares. */
struct cap {
    shl_snapshot *s;
    shl_segment_info info;
    size_t pending_op, pending_j;
    size_t listed;
};

static void
fx_open(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "api-bad");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    /* no heartbeat tick may touch the operation during a comparison */
    o.heartbeat_interval_ms = 3600000;
    o.stale_threshold_ms = 7200000;
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", &o));
    assert_shl_ok(shl_ledger_open(&f->l2, f->base, "bridge", &o));
    assert_shl_ok(shl_op_create(f->l, "bad input", NULL, &f->op));
    snprintf(f->id, sizeof(f->id), "%s", shl_op_id(f->op));
    assert_shl_ok(shl_op_join(f->l2, f->id, NULL, &f->j));
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.fail_on_crash = false; /* failing it must not fail the operation */
    assert_shl_ok(shl_call_start(f->op, &co, &f->pend_op));
    assert_shl_ok(shl_call_start(f->j, &co, &f->pend_j));
    assert_shl_ok(shl_call_start(f->j, &co, &f->ended));
    assert_shl_ok(shl_call_end(f->ended, NULL));
    assert_shl_ok(shl_call_start(f->op, &co, &f->failed));
    assert_shl_ok(shl_call_fail(f->failed, "expected"));
    /* inside the test's own directory: a failed operation's cleanup
     * deletes the resources it finds */
    char res[600];
    snprintf(res, sizeof(res), "%s/api-bad", f->base);
    assert_shl_ok(shl_op_register_temp_resource(f->op, res));
    assert_int_equal(shl_op_get_state(f->op), SHL_OP_RUNNING);
}

/* The operation's resource count as a reader sees it (-1 if unreadable). */
static long
op_resources(struct fx *f)
{
    shl_snapshot *s = NULL;
    if (shl_reader_snapshot(shl_ledger_reader(f->l), f->id, &s) != 0)
        return -1;
    long n = (long)s->resource_count;
    shl_snapshot_free(s);
    return n;
}

static void
fx_close(struct fx *f)
{
    assert_segment_clean(shl_ledger_reader(f->l));
    assert_shl_ok(shl_call_end(f->pend_j, NULL));
    assert_shl_ok(shl_op_leave(f->j, false));
    assert_shl_ok(shl_call_end(f->pend_op, NULL));
    assert_shl_ok(shl_op_complete(f->op));
    assert_segment_clean(shl_ledger_reader(f->l));
    shl_ledger_close(f->l2);
    shl_ledger_close(f->l);
    shl_test_cleanup(f->base);
}

static void
capture(struct fx *f, struct cap *c)
{
    shl_reader *r = shl_ledger_reader(f->l);
    assert_shl_ok(shl_reader_snapshot(r, f->id, &c->s));
    assert_shl_ok(shl_reader_info(r, &c->info));
    c->pending_op = shl_op_pending_call_count(f->op);
    c->pending_j = shl_op_pending_call_count(f->j);
    shl_op_summary *rows = NULL;
    assert_shl_ok(shl_reader_list(r, &rows, &c->listed));
    free(rows);
}

static void
compare(struct fx *f, struct cap *a, const char *what, int line)
{
    struct cap b;
    capture(f, &b);
    const shl_snapshot *x = a->s, *y = b.s;
#define SAME(field)                                                            \
    do {                                                                       \
        if ((x->field) != (y->field))                                          \
            fail_msg("line %d: %s changed " #field ": %lld -> %lld", line,     \
                     what, (long long)(x->field), (long long)(y->field));      \
    } while (0)
#define SAME_INFO(field)                                                       \
    do {                                                                       \
        if ((a->info.field) != (b.info.field))                                 \
            fail_msg("line %d: %s changed info." #field ": %lld -> %lld",      \
                     line, what, (long long)(a->info.field),                   \
                     (long long)(b.info.field));                               \
    } while (0)
    SAME(state);
    SAME(aborted);
    SAME(change_count);
    SAME(frame_count);
    SAME(resource_count);
    SAME(participant_count);
    SAME(start_time_us);
    for (size_t i = 0; i < x->frame_count; i++) {
        if (strcmp(x->frames[i].call_id, y->frames[i].call_id) != 0 ||
            x->frames[i].state != y->frames[i].state)
            fail_msg("line %d: %s changed frame %zu", line, what, i);
    }
    for (size_t i = 0; i < x->resource_count; i++)
        if (strcmp(x->resources[i].path, y->resources[i].path) != 0)
            fail_msg("line %d: %s changed resource %zu", line, what, i);
    if (strcmp(x->failure.reason, y->failure.reason) != 0)
        fail_msg("line %d: %s changed the failure reason", line, what);
    SAME_INFO(used_participants);
    SAME_INFO(used_operations);
    SAME_INFO(used_frames);
    SAME_INFO(used_resources);
    SAME_INFO(epoch);
    SAME_INFO(poisoned);
    if (a->pending_op != b.pending_op || a->pending_j != b.pending_j)
        fail_msg("line %d: %s changed pending counts", line, what);
    if (a->listed != b.listed)
        fail_msg("line %d: %s changed the operation list", line, what);
#undef SAME
#undef SAME_INFO
    shl_snapshot_free(a->s);
    shl_snapshot_free(b.s);
    assert_segment_clean(shl_ledger_reader(f->l));
}

/* Evaluate expr, which must return expect, and check nothing changed. */
/* The message of the call under test, kept before compare() reads the
 * segment (every public function clears shl_errmsg on entry). */
static char last_errmsg[512];

#define EXPECT_UNCHANGED(f, expr, expect)                                      \
    do {                                                                       \
        struct cap _c;                                                         \
        capture((f), &_c);                                                     \
        long long _rc = (long long)(expr);                                     \
        snprintf(last_errmsg, sizeof(last_errmsg), "%s", shl_errmsg());        \
        if (_rc != (long long)(expect))                                        \
            fail_msg("%s -> %lld (%s), expected %lld (%s); errmsg: %s", #expr, \
                     _rc, shl_strerror((int)_rc), (long long)(expect),         \
                     shl_strerror((int)(expect)), shl_errmsg());               \
        compare((f), &_c, #expr, __LINE__);                                    \
    } while (0)

/* For void functions: call, then check nothing changed. */
#define CALL_UNCHANGED(f, stmt)                                                \
    do {                                                                       \
        struct cap _c;                                                         \
        capture((f), &_c);                                                     \
        stmt;                                                                  \
        compare((f), &_c, #stmt, __LINE__);                                    \
    } while (0)

#define SENTINEL(type) ((type *)(uintptr_t)0x1)

/* ---- ids ---- */

static void
test_api_badinput_operation_ids(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    char too_long[SHL_OPERATION_ID_MAX + 2];
    memset(too_long, 'o', SHL_OPERATION_ID_MAX + 1);
    too_long[SHL_OPERATION_ID_MAX + 1] = 0;
    const char *bad[] = {"../../../etc/passwd",
                         "/absolute/path",
                         "",
                         "test<script>",
                         "a..b",
                         "with space",
                         "x/y",
                         "new\nline",
                         "ünï",
                         too_long};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        shl_op *out = SENTINEL(shl_op);
        EXPECT_UNCHANGED(&f, shl_op_join(f.l2, bad[i], NULL, &out), SHL_EBADID);
        assert_ptr_equal(out, SENTINEL(shl_op));
        assert_int_equal(shl_validate_operation_id(bad[i]), SHL_EBADID);
        shl_snapshot *s = SENTINEL(shl_snapshot);
        EXPECT_UNCHANGED(
            &f, shl_reader_snapshot(shl_ledger_reader(f.l), bad[i], &s),
            SHL_EBADID);
        assert_ptr_equal(s, SENTINEL(shl_snapshot));
    }
    /* well-formed ids (accepted set of the original), longest included,
     * that name no operation */
    char longest[SHL_OPERATION_ID_MAX + 1];
    memset(longest, 'o', SHL_OPERATION_ID_MAX);
    longest[SHL_OPERATION_ID_MAX] = 0;
    const char *missing[] = {"20260125T12:30:45.123-cli-abcd1234",
                             "simple_test",
                             "test-with-dashes",
                             "test.with.dots",
                             "TEST_123:456",
                             longest};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        assert_int_equal(shl_validate_operation_id(missing[i]), 0);
        shl_op *out = SENTINEL(shl_op);
        EXPECT_UNCHANGED(&f, shl_op_join(f.l2, missing[i], NULL, &out),
                         SHL_ENOTFOUND);
        assert_ptr_equal(out, SENTINEL(shl_op));
        shl_snapshot *s = SENTINEL(shl_snapshot);
        EXPECT_UNCHANGED(
            &f, shl_reader_snapshot(shl_ledger_reader(f.l), missing[i], &s),
            SHL_ENOTFOUND);
        assert_ptr_equal(s, SENTINEL(shl_snapshot));
    }
    fx_close(&f);
}

static void
test_api_badinput_participant_ids_and_open(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    char too_long[SHL_PARTICIPANT_ID_MAX + 2];
    memset(too_long, 'p', SHL_PARTICIPANT_ID_MAX + 1);
    too_long[SHL_PARTICIPANT_ID_MAX + 1] = 0;
    const char *bad[] = {"", "a/b", "..", "x..y", "<p>", "sp ace", too_long};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        shl_ledger *l = SENTINEL(shl_ledger);
        EXPECT_UNCHANGED(&f, shl_ledger_open(&l, f.base, bad[i], NULL),
                         SHL_EBADID);
        assert_ptr_equal(l, SENTINEL(shl_ledger));
    }

    /* options out of range */
    shl_ledger_opts bado[12];
    for (int i = 0; i < 12; i++)
        shl_ledger_opts_init(&bado[i]);
    bado[0].heartbeat_interval_ms = 0;
    bado[1].stale_threshold_ms = 0;
    bado[2].stale_threshold_ms = -5;
    bado[3].timeout_ms = -1;
    bado[4].max_participants = 0;
    bado[5].max_frames = 0;
    bado[6].max_operations = 0;
    bado[7].max_resources = 0;
    bado[8].participant_pid = -1;
    bado[9].mode = 01777;
    bado[10].ring_full_wait_us = -1;
    bado[11].ring_full_wait_us = 1000001;
    for (int i = 0; i < 12; i++) {
        shl_ledger *l = SENTINEL(shl_ledger);
        EXPECT_UNCHANGED(&f, shl_ledger_open(&l, f.base, "opt", &bado[i]),
                         -EINVAL);
        assert_ptr_equal(l, SENTINEL(shl_ledger));
    }

    /* base paths */
    shl_ledger *l = SENTINEL(shl_ledger);
    EXPECT_UNCHANGED(&f, shl_ledger_open(&l, "", "x", NULL), -EINVAL);
    char *huge = malloc(PATH_MAX + 16);
    assert_non_null(huge);
    memset(huge, 'b', PATH_MAX + 15);
    huge[0] = '/';
    huge[PATH_MAX + 15] = 0;
    EXPECT_UNCHANGED(&f, shl_ledger_open(&l, huge, "x", NULL), -ENAMETOOLONG);
    free(huge);
    assert_ptr_equal(l, SENTINEL(shl_ledger));
    fx_close(&f);
}

static void
test_api_badinput_descriptions_too_long(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    char d[SHL_DESCRIPTION_MAX + 2];
    memset(d, 'd', SHL_DESCRIPTION_MAX + 1);
    d[SHL_DESCRIPTION_MAX + 1] = 0;
    shl_op *op = SENTINEL(shl_op);
    EXPECT_UNCHANGED(&f, shl_op_create(f.l, d, NULL, &op), -ENAMETOOLONG);
    assert_ptr_equal(op, SENTINEL(shl_op));
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.description = d;
    shl_call *c = SENTINEL(shl_call);
    EXPECT_UNCHANGED(&f, shl_call_start(f.j, &o, &c), -ENAMETOOLONG);
    assert_ptr_equal(c, SENTINEL(shl_call));
    fx_close(&f);
}

/* ---- NULL arguments ---- */

static void
test_api_badinput_null_ledger_and_reader(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_ledger *l = SENTINEL(shl_ledger);
    EXPECT_UNCHANGED(&f, shl_ledger_open(NULL, f.base, "x", NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_ledger_open(&l, NULL, "x", NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_ledger_open(&l, f.base, NULL, NULL), -EINVAL);
    assert_ptr_equal(l, SENTINEL(shl_ledger));
    CALL_UNCHANGED(&f, shl_ledger_opts_init(NULL));
    CALL_UNCHANGED(&f, shl_ledger_close(NULL));
    EXPECT_UNCHANGED(&f, shl_ledger_heartbeat(NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_ledger_participant_id(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_ledger_base_path(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_ledger_reader(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_validate_operation_id(NULL), SHL_EBADID);
    EXPECT_UNCHANGED(&f, shl_validate_participant_id(NULL), SHL_EBADID);

    shl_reader *r = shl_ledger_reader(f.l);
    shl_reader *ro = SENTINEL(shl_reader);
    EXPECT_UNCHANGED(&f, shl_reader_open(NULL, f.base), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_open(&ro, NULL), -EINVAL);
    assert_ptr_equal(ro, SENTINEL(shl_reader));
    CALL_UNCHANGED(&f, shl_reader_close(NULL));
    /* closing a ledger's own reader is a no-op: the ledger owns it */
    CALL_UNCHANGED(&f, shl_reader_close(r));
    assert_ptr_equal(shl_ledger_reader(f.l), r);
    shl_segment_info info;
    EXPECT_UNCHANGED(&f, shl_reader_info(NULL, &info), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_info(r, NULL), -EINVAL);
    shl_op_summary *rows = SENTINEL(shl_op_summary);
    size_t n = 77;
    EXPECT_UNCHANGED(&f, shl_reader_list(NULL, &rows, &n), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_list(r, NULL, &n), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_list(r, &rows, NULL), -EINVAL);
    assert_ptr_equal(rows, SENTINEL(shl_op_summary));
    assert_int_equal(n, 77);
    shl_snapshot *s = SENTINEL(shl_snapshot);
    EXPECT_UNCHANGED(&f, shl_reader_snapshot(NULL, f.id, &s), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_snapshot(r, NULL, &s), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_snapshot(r, f.id, NULL), -EINVAL);
    assert_ptr_equal(s, SENTINEL(shl_snapshot));
    CALL_UNCHANGED(&f, shl_snapshot_free(NULL));
    EXPECT_UNCHANGED(&f, shl_snapshot_is_empty(NULL), 1);
    shl_check_report rep;
    EXPECT_UNCHANGED(&f, shl_reader_check(NULL, &rep), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_reader_check(r, NULL), -EINVAL);
    char buf[96];
    EXPECT_UNCHANGED(&f, shl_segment_name(NULL, buf, sizeof(buf)), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_segment_name(f.base, NULL, sizeof(buf)), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_segment_name(f.base, buf, 4), -ENOSPC);
    EXPECT_UNCHANGED(&f, shl_segment_unlink(NULL), -EINVAL);

    /* names of codes and states never return NULL */
    const int codes[] = {
        0, -1,      -EINVAL,      -4095,       -4096,          -999999,
        1, INT_MIN, SHL_EVERSION, SHL_EFENCED, SHL_EFENCED - 1};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_non_null(shl_strerror(codes[i]));
        assert_true(strlen(shl_strerror(codes[i])) > 0);
    }
    assert_string_equal(shl_op_state_name((shl_op_state)-1), "unknown");
    assert_string_equal(shl_frame_state_name((shl_frame_state)99), "unknown");
    assert_non_null(shl_version_string());
    assert_non_null(shl_errmsg());
    fx_close(&f);
}

static void
test_api_badinput_null_operation(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_op *o = SENTINEL(shl_op);
    EXPECT_UNCHANGED(&f, shl_op_create(NULL, "d", NULL, &o), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_create(f.l, "d", NULL, NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_join(NULL, f.id, NULL, &o), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_join(f.l2, NULL, NULL, &o), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_join(f.l2, f.id, NULL, NULL), -EINVAL);
    assert_ptr_equal(o, SENTINEL(shl_op));
    EXPECT_UNCHANGED(&f, shl_op_leave(NULL, false), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_leave(NULL, true), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_complete(NULL), -EINVAL);

    /* properties of NULL: zero values, no crash */
    EXPECT_UNCHANGED(&f, shl_op_session_id(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_id(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_op_participant_id(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_op_pid(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_is_initiator(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_start_time_us(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_start_time_ms(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_elapsed_ns(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_is_aborted(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_staleness_threshold_ms(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_pending_call_count(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_op_has_pending_calls(NULL), 0);
    shl_call *list[2] = {SENTINEL(shl_call), SENTINEL(shl_call)};
    EXPECT_UNCHANGED(&f, shl_op_pending_calls(NULL, list, 2), 0);
    assert_ptr_equal(list[0], SENTINEL(shl_call));
    /* NULL array: only the count */
    EXPECT_UNCHANGED(&f, shl_op_pending_calls(f.op, NULL, 2), 1);

    char buf[64];
    EXPECT_UNCHANGED(&f, shl_op_elapsed_formatted(NULL, buf, sizeof(buf)),
                     -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_elapsed_formatted(f.op, NULL, 64), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_elapsed_formatted(f.op, buf, 0), -ENOSPC);
    EXPECT_UNCHANGED(&f, shl_op_start_time_iso(NULL, buf, sizeof(buf)),
                     -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_start_time_iso(f.op, NULL, 64), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_start_time_iso(f.op, buf, 10), -ENOSPC);
    EXPECT_UNCHANGED(&f, shl_op_set_staleness_threshold_ms(NULL, 10), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_set_staleness_threshold_ms(f.op, 0), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_set_staleness_threshold_ms(f.op, -1), -EINVAL);
    assert_int_equal(shl_op_staleness_threshold_ms(f.op), 10000);

    EXPECT_UNCHANGED(&f, shl_op_set_abort_flag(NULL, true), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_check_abort(NULL), -EINVAL);
    CALL_UNCHANGED(&f, shl_op_trigger_abort(NULL));
    EXPECT_UNCHANGED(&f, shl_op_get_state(NULL), -EINVAL);
    shl_failed_info fi;
    EXPECT_UNCHANGED(&f, shl_op_failure_info(NULL, &fi), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_failure_info(f.op, NULL), -EINVAL);

    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource(NULL, "/tmp/x"),
                     -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource(f.op, NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource_n(NULL, "/tmp/x", 6),
                     -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource_n(f.op, NULL, 6),
                     -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_unregister_temp_resource(NULL, "/tmp/api-bad"),
                     -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_unregister_temp_resource(f.op, NULL), -EINVAL);
    fx_close(&f);
}

static void
test_api_badinput_null_call(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    CALL_UNCHANGED(&f, shl_call_opts_init(NULL));
    shl_call *c = SENTINEL(shl_call);
    shl_call_opts o;
    shl_call_opts_init(&o);
    EXPECT_UNCHANGED(&f, shl_call_start(NULL, &o, &c), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_start(f.op, &o, NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_start(NULL, NULL, NULL), -EINVAL);
    assert_ptr_equal(c, SENTINEL(shl_call));
    int v = 1;
    EXPECT_UNCHANGED(&f, shl_call_end(NULL, &v), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_end(NULL, NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_fail(NULL, "x"), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_fail(NULL, NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_release(NULL), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_call_id(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_call_description(NULL) == NULL, 1);
    EXPECT_UNCHANGED(&f, shl_call_started_at_us(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_call_is_completed(NULL), 0);
    EXPECT_UNCHANGED(&f, shl_call_fail_on_crash(NULL), 0);
    fx_close(&f);
}

/* ---- state errors ---- */

static void
test_api_badinput_state_errors(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    int v = 3;
    /* end/fail of finished calls */
    EXPECT_UNCHANGED(&f, shl_call_end(f.failed, &v), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_call_fail(f.failed, "again"), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_call_end(f.ended, NULL), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_call_fail(f.ended, "late"), SHL_ESTATE);
    /* release of a pending call */
    EXPECT_UNCHANGED(&f, shl_call_release(f.pend_op), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_call_release(f.pend_j), SHL_ESTATE);
    /* leave with pending calls */
    EXPECT_UNCHANGED(&f, shl_op_leave(f.j, false), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_op_leave(f.op, false), SHL_ESTATE);
    /* complete by a joiner */
    EXPECT_UNCHANGED(&f, shl_op_complete(f.j), SHL_ESTATE);
    assert_string_equal(last_errmsg,
                        "Only the initiator can complete an operation");
    /* join of a missing operation */
    shl_op *o = SENTINEL(shl_op);
    EXPECT_UNCHANGED(
        &f, shl_op_join(f.l2, "20200101T00:00:00.000-cli-00000000", NULL, &o),
        SHL_ENOTFOUND);
    assert_ptr_equal(o, SENTINEL(shl_op));
    /* refused resource paths */
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource(f.op, "rel"), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource(f.op, ""), -EINVAL);
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource_n(f.op, "/a\0b", 4),
                     -EINVAL);
    char lp[SHL_PATH_MAX + 3];
    lp[0] = '/';
    memset(lp + 1, 'l', SHL_PATH_MAX + 1);
    lp[SHL_PATH_MAX + 2] = 0;
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource(f.op, lp),
                     -ENAMETOOLONG);
    EXPECT_UNCHANGED(&f, shl_op_unregister_temp_resource(f.op, "/tmp/none"), 0);
    /* the handles are all still usable */
    assert_true(shl_op_has_pending_calls(f.j));
    assert_false(shl_call_is_completed(f.pend_op));
    fx_close(&f);
}

/* A failed operation refuses everything that would change it. */
static void
test_api_badinput_failed_operation(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *boom = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &boom));
    assert_shl_ok(shl_call_fail(boom, "boom"));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_FAILED);
    /* let both participants' monitors finish their cleanup (it changes
     * the frames' states) before comparing before/after */
    assert_shl_ok(shl_op_wait_failure(f.op, 5000, NULL));
    assert_shl_ok(shl_op_wait_failure(f.j, 5000, NULL));
    /* ... including the initiator's self-cleanup, which deletes the
     * fixture's temp resource after the failure was delivered (and bumps
     * the change count): wait for the resource to go */
    assert_true(SHL_WAIT_FOR(op_resources(&f) == 0, 5000));
    shl_call *c = SENTINEL(shl_call);
    EXPECT_UNCHANGED(&f, shl_call_start(f.op, NULL, &c), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_call_start(f.j, NULL, &c), SHL_ESTATE);
    assert_ptr_equal(c, SENTINEL(shl_call));
    EXPECT_UNCHANGED(&f, shl_op_complete(f.op), SHL_ESTATE);
    EXPECT_UNCHANGED(&f, shl_op_register_temp_resource(f.op, "/tmp/y"),
                     SHL_ESTATE);
    shl_op *o = SENTINEL(shl_op);
    EXPECT_UNCHANGED(&f, shl_op_join(f.l2, f.id, NULL, &o), SHL_ESTATE);
    assert_ptr_equal(o, SENTINEL(shl_op));
    /* wind down: pending calls of a failed operation can still end; the
     * initiator's last leave reclaims the operation */
    assert_shl_ok(shl_call_end(f.pend_j, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_call_end(f.pend_op, NULL));
    assert_shl_ok(shl_op_leave(f.op, false));
    shl_snapshot *s = NULL;
    assert_int_equal(shl_reader_snapshot(shl_ledger_reader(f.l), f.id, &s),
                     SHL_ENOTFOUND);
    assert_segment_clean(shl_ledger_reader(f.l));
    shl_ledger_close(f.l2);
    shl_ledger_close(f.l);
    shl_test_cleanup(f.base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_badinput_operation_ids),
        cmocka_unit_test(test_api_badinput_participant_ids_and_open),
        cmocka_unit_test(test_api_badinput_descriptions_too_long),
        cmocka_unit_test(test_api_badinput_null_ledger_and_reader),
        cmocka_unit_test(test_api_badinput_null_operation),
        cmocka_unit_test(test_api_badinput_null_call),
        cmocka_unit_test(test_api_badinput_state_errors),
        cmocka_unit_test(test_api_badinput_failed_operation),
    };
    return cmocka_run_group_tests_name("api_badinput", tests, NULL, NULL);
}
