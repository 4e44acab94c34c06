/*
 * test_api_calls.c: the Call class through the public API (issue 3):
 * startCall (id, description, failOnCrash, frame), end, fail, their
 * callbacks and state errors, and shl_call_release.
 */
#include <errno.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shl_test.h"

#include "shl_text.h"

static const shl_call_frame *
find_frame(const shl_snapshot *s, const char *call_id)
{
    for (size_t i = 0; i < s->frame_count; i++)
        if (strcmp(s->frames[i].call_id, call_id) == 0)
            return &s->frames[i];
    return NULL;
}

struct rec {
    _Atomic int cleanup; /* callbacks may run on the monitor thread */
    _Atomic int completion;
    _Atomic int failure;
    shl_call *call;
    void *result;
    shl_op *op;
    shl_failed_info info; /* written once, by the first on_failure */
    _Atomic int claimed;
    _Atomic int info_ready;
};

static void
on_cleanup(shl_call *call, void *user)
{
    struct rec *r = user;
    r->cleanup++;
    r->call = call;
}

static void
on_completion(shl_call *call, void *result, void *user)
{
    struct rec *r = user;
    r->completion++;
    r->call = call;
    r->result = result;
}

static void
on_failure(shl_op *op, const shl_failed_info *info, void *user)
{
    struct rec *r = user;
    /* several threads may report (the failing thread and other sessions'
     * monitors): the first one records the info */
    int expect = 0;
    if (atomic_compare_exchange_strong(&r->claimed, &expect, 1)) {
        r->op = op;
        r->info = *info;
        atomic_store(&r->info_ready, 1);
    }
    r->failure++;
}

/* one ledger "cli" with one operation; a second ledger "bridge" joined */
struct fx {
    char base[512];
    shl_ledger *l, *l2;
    shl_op *op, *j;
    char id[SHL_OPERATION_ID_MAX + 1];
};

static void
fx_open(struct fx *f, const shl_op_callbacks *cb)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "api-calls");
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&f->l2, f->base, "bridge", NULL));
    assert_shl_ok(shl_op_create(f->l, "calls", cb, &f->op));
    snprintf(f->id, sizeof(f->id), "%s", shl_op_id(f->op));
    assert_shl_ok(shl_op_join(f->l2, f->id, cb, &f->j));
}

static void
fx_close(struct fx *f)
{
    assert_segment_clean(shl_ledger_reader(f->l));
    shl_ledger_close(f->l2);
    shl_ledger_close(f->l);
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, f->base));
    assert_segment_clean(r);
    shl_reader_close(r);
    shl_test_cleanup(f->base);
}

static void
test_api_calls_id_format(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    shl_call *c[3];
    for (int i = 0; i < 3; i++) {
        assert_shl_ok(shl_call_start(f.op, NULL, &c[i]));
        const char *id = shl_call_id(c[i]);
        assert_true(shl_test_rx_match("^call_cli_[0-9]+_[0-9a-f]{4}$", id));
        /* n counts per operation from 1 */
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "call_cli_%d_", i + 1);
        assert_memory_equal(id, prefix, strlen(prefix));
    }
    shl_call *b = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &b));
    assert_true(
        shl_test_rx_match("^call_bridge_1_[0-9a-f]{4}$", shl_call_id(b)));
    assert_string_not_equal(shl_call_id(c[0]), shl_call_id(c[1]));

    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_int_equal(s->frame_count, 4);
    for (int i = 0; i < 3; i++) {
        const shl_call_frame *fr = find_frame(s, shl_call_id(c[i]));
        assert_non_null(fr);
        assert_string_equal(fr->participant_id, "cli");
        assert_int_equal(fr->state, SHL_FRAME_ACTIVE);
        assert_int_equal(fr->session_id, 1);
    }
    shl_snapshot_free(s);
    for (int i = 0; i < 3; i++)
        assert_shl_ok(shl_call_end(c[i], NULL));
    assert_shl_ok(shl_call_end(b, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_description(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    char desc[64];
    snprintf(desc, sizeof(desc), "%s", "compile module A");
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.description = desc;
    shl_call *d = NULL, *none = NULL, *empty = NULL, *max = NULL;
    assert_shl_ok(shl_call_start(f.op, &o, &d));
    /* the description is copied */
    desc[0] = 'X';
    assert_string_equal(shl_call_description(d), "compile module A");
    assert_shl_ok(shl_call_start(f.op, NULL, &none));
    assert_null(shl_call_description(none));
    o.description = "";
    assert_shl_ok(shl_call_start(f.op, &o, &empty));
    char longest[SHL_DESCRIPTION_MAX + 1];
    memset(longest, 'd', SHL_DESCRIPTION_MAX);
    longest[SHL_DESCRIPTION_MAX] = 0;
    o.description = longest;
    assert_shl_ok(shl_call_start(f.op, &o, &max));

    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    const shl_call_frame *fr = find_frame(s, shl_call_id(d));
    assert_non_null(fr);
    assert_true(fr->has_description);
    assert_string_equal(fr->description, "compile module A");
    fr = find_frame(s, shl_call_id(none));
    assert_non_null(fr);
    assert_false(fr->has_description);
    assert_string_equal(fr->description, "");
    fr = find_frame(s, shl_call_id(max));
    assert_non_null(fr);
    assert_true(fr->has_description);
    assert_string_equal(fr->description, longest);
    /* an empty description is a description (String? "" is not null), as
     * for shl_op_create */
    fr = find_frame(s, shl_call_id(empty));
    assert_non_null(fr);
    assert_true(fr->has_description);
    assert_string_equal(fr->description, "");
    shl_snapshot_free(s);
    assert_non_null(shl_call_description(empty));
    assert_string_equal(shl_call_description(empty), "");

    /* one byte too long: refused, nothing added */
    char too_long[SHL_DESCRIPTION_MAX + 2];
    memset(too_long, 'd', SHL_DESCRIPTION_MAX + 1);
    too_long[SHL_DESCRIPTION_MAX + 1] = 0;
    o.description = too_long;
    shl_call *bad = (shl_call *)(uintptr_t)0x1;
    assert_int_equal(shl_call_start(f.op, &o, &bad), -ENAMETOOLONG);
    assert_ptr_equal(bad, (shl_call *)(uintptr_t)0x1);
    assert_int_equal(shl_op_pending_call_count(f.op), 4);
    s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_int_equal(s->frame_count, 4);
    shl_snapshot_free(s);

    assert_shl_ok(shl_call_end(d, NULL));
    assert_shl_ok(shl_call_end(none, NULL));
    assert_shl_ok(shl_call_end(empty, NULL));
    assert_shl_ok(shl_call_end(max, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_fail_on_crash_and_started_at(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    shl_call_opts o;
    memset(&o, 0xff, sizeof(o));
    shl_call_opts_init(&o);
    assert_true(o.fail_on_crash);
    assert_null(o.description);
    assert_null(o.callbacks.on_cleanup);
    assert_null(o.callbacks.on_completion);
    assert_null(o.callbacks.user);

    int64_t before = shl_test_wall_us();
    shl_call *dflt = NULL, *viaopts = NULL, *off = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &dflt));
    assert_shl_ok(shl_call_start(f.op, &o, &viaopts));
    o.fail_on_crash = false;
    assert_shl_ok(shl_call_start(f.op, &o, &off));
    int64_t after = shl_test_wall_us();
    assert_true(shl_call_fail_on_crash(dflt));
    assert_true(shl_call_fail_on_crash(viaopts));
    assert_false(shl_call_fail_on_crash(off));
    assert_in_range(shl_call_started_at_us(dflt), before, after);
    assert_true(shl_call_started_at_us(off) >= shl_call_started_at_us(dflt));
    assert_false(shl_call_is_completed(dflt));

    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    const shl_call_frame *fr = find_frame(s, shl_call_id(dflt));
    assert_non_null(fr);
    assert_true(fr->fail_on_crash);
    assert_int_equal(fr->start_time_us, shl_call_started_at_us(dflt));
    assert_int_equal(fr->pid, getpid());
    fr = find_frame(s, shl_call_id(viaopts));
    assert_non_null(fr);
    assert_true(fr->fail_on_crash);
    fr = find_frame(s, shl_call_id(off));
    assert_non_null(fr);
    assert_false(fr->fail_on_crash);
    shl_snapshot_free(s);

    assert_shl_ok(shl_call_end(dflt, NULL));
    assert_true(shl_call_is_completed(dflt));
    assert_shl_ok(shl_call_end(viaopts, NULL));
    assert_shl_ok(shl_call_end(off, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_end_removes_exactly_that_frame(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    shl_call *c[5];
    char ids[5][SHL_CALL_ID_MAX + 1];
    for (int i = 0; i < 5; i++) {
        assert_shl_ok(shl_call_start(i % 2 ? f.j : f.op, NULL, &c[i]));
        snprintf(ids[i], sizeof(ids[i]), "%s", shl_call_id(c[i]));
    }
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    uint64_t cc = s->change_count;
    assert_int_equal(s->frame_count, 5);
    shl_snapshot_free(s);

    int order[5] = {2, 0, 4, 1, 3};
    for (int k = 0; k < 5; k++) {
        assert_shl_ok(shl_call_end(c[order[k]], NULL));
        s = shl_test_snap(shl_ledger_reader(f.l), f.id);
        assert_int_equal(s->frame_count, 4 - k);
        assert_true(s->change_count > cc);
        cc = s->change_count;
        for (int i = 0; i < 5; i++) {
            bool ended = false;
            for (int m = 0; m <= k; m++)
                ended = ended || order[m] == i;
            assert_int_equal(find_frame(s, ids[i]) != NULL, !ended);
        }
        shl_snapshot_free(s);
    }
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_end_and_fail_only_once(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct rec r = {0};
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.fail_on_crash = false; /* keep the operation running for the test */
    o.callbacks.on_cleanup = on_cleanup;
    o.callbacks.on_completion = on_completion;
    o.callbacks.user = &r;
    int result = 42;
    char msg[256];

    /* end twice */
    shl_call *a = NULL;
    assert_shl_ok(shl_call_start(f.op, &o, &a));
    assert_shl_ok(shl_call_end(a, &result));
    assert_int_equal(r.completion, 1);
    assert_int_equal(shl_call_end(a, &result), SHL_ESTATE);
    snprintf(msg, sizeof(msg), "Call %s has already been completed",
             shl_call_id(a));
    assert_string_equal(shl_errmsg(), msg);
    assert_int_equal(r.completion, 1);
    /* fail after end */
    assert_int_equal(shl_call_fail(a, "late"), SHL_ESTATE);
    assert_string_equal(shl_errmsg(), msg);
    assert_int_equal(r.cleanup, 0);

    /* end after fail, fail twice */
    shl_call *b = NULL;
    assert_shl_ok(shl_call_start(f.op, &o, &b));
    assert_shl_ok(shl_call_fail(b, "first"));
    assert_int_equal(r.cleanup, 1);
    assert_int_equal(shl_call_end(b, &result), SHL_ESTATE);
    assert_int_equal(shl_call_fail(b, "second"), SHL_ESTATE);
    assert_int_equal(r.cleanup, 1);
    assert_int_equal(r.completion, 1);
    assert_true(shl_call_is_completed(b));

    /* nothing else changed: no frames, operation running */
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->state, SHL_OP_RUNNING);
    shl_snapshot_free(s);
    assert_int_equal(shl_op_pending_call_count(f.op), 0);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_on_completion_only_with_result(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct rec r = {0};
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.callbacks.on_cleanup = on_cleanup;
    o.callbacks.on_completion = on_completion;
    o.callbacks.user = &r;
    shl_call *a = NULL, *b = NULL;
    assert_shl_ok(shl_call_start(f.op, &o, &a));
    assert_shl_ok(shl_call_start(f.j, &o, &b));
    assert_shl_ok(shl_call_end(a, NULL));
    assert_int_equal(r.completion, 0);
    int value = 7;
    assert_shl_ok(shl_call_end(b, &value));
    assert_int_equal(r.completion, 1);
    assert_ptr_equal(r.call, b);
    assert_ptr_equal(r.result, &value);
    /* end never runs the cleanup */
    assert_int_equal(r.cleanup, 0);
    /* no callbacks at all: end with a result is fine */
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &c));
    assert_shl_ok(shl_call_end(c, &value));
    assert_int_equal(r.completion, 1);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_fail_fails_the_operation(void **state)
{
    (void)state;
    struct rec fl = {0};
    shl_op_callbacks ocb = {.on_failure = on_failure, .user = &fl};
    struct fx f;
    fx_open(&f, &ocb);
    struct rec r = {0}, r2 = {0};
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.callbacks.on_cleanup = on_cleanup;
    o.callbacks.on_completion = on_completion;
    o.callbacks.user = &r;
    shl_call_opts o2 = o;
    o2.callbacks.user = &r2;
    shl_call *victim = NULL, *bystander = NULL, *second = NULL;
    assert_shl_ok(shl_call_start(f.j, &o, &victim));
    assert_shl_ok(shl_call_start(f.op, NULL, &bystander));
    assert_shl_ok(shl_call_start(f.j, &o2, &second));
    char vid[SHL_CALL_ID_MAX + 1];
    snprintf(vid, sizeof(vid), "%s", shl_call_id(victim));

    int64_t before = shl_test_wall_us();
    assert_shl_ok(shl_call_fail(victim, "disk full"));
    int64_t after = shl_test_wall_us();
    assert_int_equal(r.cleanup, 1);
    assert_ptr_equal(r.call, victim);
    assert_int_equal(r.completion, 0);
    assert_true(shl_call_is_completed(victim));

    char reason[300];
    snprintf(reason, sizeof(reason), "Call %s failed: disk full", vid);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_null(find_frame(s, vid));
    assert_non_null(find_frame(s, shl_call_id(bystander)));
    assert_int_equal(s->frame_count, 2);
    assert_int_equal(s->state, SHL_OP_FAILED);
    assert_string_equal(s->failure.reason, reason);
    assert_int_equal(s->failure.crashed_call_count, 1);
    assert_string_equal(s->failure.crashed_call_ids[0], vid);
    shl_snapshot_free(s);

    assert_int_equal(shl_op_get_state(f.op), SHL_OP_FAILED);
    assert_int_equal(shl_op_get_state(f.j), SHL_OP_FAILED);
    shl_failed_info fi;
    memset(&fi, 0, sizeof(fi));
    assert_int_equal(shl_op_failure_info(f.op, &fi), 1);
    assert_string_equal(fi.operation_id, f.id);
    assert_string_equal(fi.reason, reason);
    assert_int_equal(fi.crashed_call_count, 1);
    assert_string_equal(fi.crashed_call_ids[0], vid);
    assert_in_range(fi.failed_at_us, before, after);

    /* on_failure fired with the info: at once in the failing session,
     * and (monitor thread) once in every other session */
    assert_true(fl.failure >= 1);
    assert_true(SHL_WAIT_FOR(atomic_load(&fl.info_ready), 5000));
    assert_string_equal(fl.info.reason, reason);
    assert_string_equal(fl.info.crashed_call_ids[0], vid);
    assert_true(SHL_WAIT_FOR(fl.failure == 2, 5000));

    /* everyone cleans up: the monitor ran the other pending call's
     * on_cleanup (its frame is cleanedUp) */
    assert_true(SHL_WAIT_FOR(r2.cleanup == 1, 5000));
    assert_int_equal(r.cleanup, 1);

    /* a second failing call of the same session: its frame goes, its
     * cleanup does not run twice, the operation is already failed: no new
     * reason, no further on_failure */
    assert_shl_ok(shl_call_fail(second, "again"));
    assert_int_equal(r2.cleanup, 1);
    assert_int_equal(fl.failure, 2);
    assert_int_equal(shl_op_failure_info(f.j, &fi), 1);
    assert_string_equal(fi.reason, reason);

    /* no new calls in a failed operation; resources neither */
    shl_call *late = (shl_call *)(uintptr_t)0x1;
    assert_int_equal(shl_call_start(f.op, NULL, &late), SHL_ESTATE);
    assert_int_equal(shl_call_start(f.j, NULL, &late), SHL_ESTATE);
    assert_ptr_equal(late, (shl_call *)(uintptr_t)0x1);
    assert_int_equal(shl_op_register_temp_resource(f.op, "/tmp/late"),
                     SHL_ESTATE);

    /* pending calls in a failed operation can still be ended */
    assert_shl_ok(shl_call_end(bystander, NULL));
    s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_leave(f.op, false));
    fx_close(&f);
}

static void
test_api_calls_fail_null_error_is_unknown(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &c));
    char reason[300];
    snprintf(reason, sizeof(reason), "Call %s failed: unknown", shl_call_id(c));
    assert_shl_ok(shl_call_fail(c, NULL));
    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(f.j, &fi), 1);
    assert_string_equal(fi.reason, reason);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_leave(f.op, false));
    fx_close(&f);
}

static void
test_api_calls_fail_without_fail_on_crash(void **state)
{
    (void)state;
    struct rec fl = {0};
    shl_op_callbacks ocb = {.on_failure = on_failure, .user = &fl};
    struct fx f;
    fx_open(&f, &ocb);
    struct rec r = {0};
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.fail_on_crash = false;
    o.callbacks.on_cleanup = on_cleanup;
    o.callbacks.user = &r;
    shl_call *c = NULL, *other = NULL;
    assert_shl_ok(shl_call_start(f.j, &o, &c));
    assert_shl_ok(shl_call_start(f.op, NULL, &other));
    assert_shl_ok(shl_call_fail(c, "tolerated"));
    assert_int_equal(r.cleanup, 1);
    assert_int_equal(fl.failure, 0);
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(f.op, &fi), 0);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_int_equal(s->state, SHL_OP_RUNNING);
    assert_int_equal(s->frame_count, 1);
    assert_non_null(find_frame(s, shl_call_id(other)));
    assert_int_equal(s->failure.crashed_call_count, 0);
    shl_snapshot_free(s);
    /* the operation goes on */
    shl_call *next = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &next));
    assert_shl_ok(shl_call_end(next, NULL));
    assert_shl_ok(shl_call_end(other, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_api_calls_start_on_completed_operation(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    shl_op *self = NULL;
    assert_shl_ok(shl_op_join(f.l, f.id, NULL, &self));
    assert_shl_ok(shl_op_complete(f.op));
    /* complete reclaims the record at once, so the surviving sessions see
     * it gone (SHL_ESTALE), both the joiner's and the initiator's second */
    shl_call *c = (shl_call *)(uintptr_t)0x1;
    assert_int_equal(shl_call_start(f.j, NULL, &c), SHL_ESTALE);
    assert_int_equal(shl_call_start(self, NULL, &c), SHL_ESTALE);
    assert_ptr_equal(c, (shl_call *)(uintptr_t)0x1);
    assert_int_equal(shl_op_complete(self), SHL_ESTALE);
    assert_shl_ok(shl_op_leave(self, false));
    assert_shl_ok(shl_op_leave(f.j, false));
    fx_close(&f);
}

static void
test_api_calls_release(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.fail_on_crash = false;
    shl_call *a = NULL, *b = NULL, *c = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &a));
    assert_shl_ok(shl_call_start(f.op, &o, &b));
    assert_shl_ok(shl_call_start(f.op, NULL, &c));
    assert_int_equal(shl_call_release(a), SHL_ESTATE);
    /* nothing changed: still pending, frame still there */
    assert_int_equal(shl_op_pending_call_count(f.op), 3);
    shl_call *list[4] = {0};
    assert_int_equal(shl_op_pending_calls(f.op, list, 4), 3);
    assert_ptr_equal(list[0], a);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    assert_int_equal(s->frame_count, 3);
    shl_snapshot_free(s);

    assert_shl_ok(shl_call_end(a, NULL));
    assert_shl_ok(shl_call_release(a));
    assert_shl_ok(shl_call_fail(b, "released after fail"));
    assert_shl_ok(shl_call_release(b));
    memset(list, 0, sizeof(list));
    assert_int_equal(shl_op_pending_calls(f.op, list, 4), 1);
    assert_ptr_equal(list[0], c);
    assert_int_equal(shl_op_pending_call_count(f.op), 1);
    /* the middle of the list can go too */
    shl_call *d = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &d));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_call_release(c));
    memset(list, 0, sizeof(list));
    assert_int_equal(shl_op_pending_calls(f.op, list, 4), 1);
    assert_ptr_equal(list[0], d);
    assert_shl_ok(shl_call_end(d, NULL));
    /* d is not released: the session frees it when it ends */
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* A released call's object is the session's next call (no allocation on
 * the call path): nothing of the old call shows through the new one. */
static void
test_api_calls_release_reuses_cleanly(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct rec r = {0};
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.fail_on_crash = false;
    o.description = "the first";
    o.callbacks.on_cleanup = on_cleanup;
    o.callbacks.on_completion = on_completion;
    o.callbacks.user = &r;
    shl_call *a = NULL, *b = NULL;
    assert_shl_ok(shl_call_start(f.op, &o, &a));
    char first_id[SHL_CALL_ID_MAX + 1];
    snprintf(first_id, sizeof(first_id), "%s", shl_call_id(a));
    assert_shl_ok(shl_call_fail(a, "first fails"));
    assert_int_equal(r.cleanup, 1);
    assert_shl_ok(shl_call_release(a));

    assert_shl_ok(shl_call_start(f.op, NULL, &b));
    assert_ptr_equal(b, a); /* the spare, not a new allocation */
    assert_string_not_equal(shl_call_id(b), first_id);
    assert_null(shl_call_description(b));
    assert_false(shl_call_is_completed(b));
    assert_true(shl_call_fail_on_crash(b));
    assert_int_equal(shl_op_pending_call_count(f.op), 1);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), f.id);
    const shl_call_frame *fr = find_frame(s, shl_call_id(b));
    assert_non_null(fr);
    assert_false(fr->has_description);
    shl_snapshot_free(s);
    /* its own callbacks (none): the first call's stay quiet */
    int result = 7;
    assert_shl_ok(shl_call_end(b, &result));
    assert_int_equal(r.completion, 0);
    assert_int_equal(r.cleanup, 1);
    assert_true(shl_call_is_completed(b));
    assert_int_equal(shl_call_end(b, NULL), SHL_ESTATE);
    assert_shl_ok(shl_call_release(b));

    /* more released calls than the session keeps: the rest are freed, and
     * the kept ones go with the session (the leak checker's part) */
    shl_call *many[40];
    for (int i = 0; i < 40; i++)
        assert_shl_ok(shl_call_start(f.op, &o, &many[i]));
    for (int i = 0; i < 40; i++) {
        assert_string_equal(shl_call_description(many[i]), "the first");
        assert_shl_ok(shl_call_end(many[i], &result));
        assert_shl_ok(shl_call_release(many[i]));
    }
    assert_int_equal(r.completion, 40);
    assert_int_equal(shl_op_pending_call_count(f.op), 0);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_calls_id_format),
        cmocka_unit_test(test_api_calls_description),
        cmocka_unit_test(test_api_calls_fail_on_crash_and_started_at),
        cmocka_unit_test(test_api_calls_end_removes_exactly_that_frame),
        cmocka_unit_test(test_api_calls_end_and_fail_only_once),
        cmocka_unit_test(test_api_calls_on_completion_only_with_result),
        cmocka_unit_test(test_api_calls_fail_fails_the_operation),
        cmocka_unit_test(test_api_calls_fail_null_error_is_unknown),
        cmocka_unit_test(test_api_calls_fail_without_fail_on_crash),
        cmocka_unit_test(test_api_calls_start_on_completed_operation),
        cmocka_unit_test(test_api_calls_release),
        cmocka_unit_test(test_api_calls_release_reuses_cleanly),
    };
    return cmocka_run_group_tests_name("api_calls", tests, NULL, NULL);
}
