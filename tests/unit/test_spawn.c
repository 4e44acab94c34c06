/*
 * test_spawn.c: spawned calls (spawnCall, SpawnedCall), sync / awaitCall,
 * waitForCompletion, and how spawned calls take part in the session
 * (pending counts, leave).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shl_test.h"

/* ---- fixture: "cli" creates, "bridge" (second ledger) joins ---- */

struct fx {
    char base[512];
    shl_ledger *l, *l2;
    shl_op *op, *j;
    char id[SHL_OPERATION_ID_MAX + 1];
};

static void
fx_open_opts(struct fx *f, const shl_ledger_opts *lo)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "spawn");
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", lo));
    assert_shl_ok(shl_ledger_open(&f->l2, f->base, "bridge", lo));
    assert_shl_ok(shl_op_create(f->l, "spawn", NULL, &f->op));
    snprintf(f->id, sizeof(f->id), "%s", shl_op_id(f->op));
    assert_shl_ok(shl_op_join(f->l2, f->id, NULL, &f->j));
}

static void
fx_open(struct fx *f)
{
    fx_open_opts(f, NULL);
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

static size_t
frame_count(struct fx *f)
{
    shl_snapshot *s = NULL;
    if (shl_reader_snapshot(shl_ledger_reader(f->l), f->id, &s) != 0)
        return 0;
    size_t n = s->frame_count;
    shl_snapshot_free(s);
    return n;
}

static bool
file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* ---- work functions and callbacks ---- */

struct rec {
    _Atomic int completion;
    _Atomic int cleanup;
    _Atomic int op_failed;
    _Atomic int crashed;
    _Atomic int sync_completion;
    _Atomic int sync_failed;
    void *completion_result;
    shl_failed_info info;
    char completion_call_id[SHL_CALL_ID_MAX + 1];
};

/* several workers complete at once in test_spawn_many_calls */
static pthread_mutex_t completion_mu = PTHREAD_MUTEX_INITIALIZER;

static void
cb_completion(shl_call *call, void *result, void *user)
{
    struct rec *r = user;
    pthread_mutex_lock(&completion_mu);
    r->completion_result = result;
    snprintf(r->completion_call_id, sizeof(r->completion_call_id), "%s",
             shl_call_id(call));
    pthread_mutex_unlock(&completion_mu);
    r->completion++;
}
static void
cb_cleanup(shl_call *call, void *user)
{
    (void)call;
    struct rec *r = user;
    r->cleanup++;
}
static void
cb_op_failed(shl_call *call, const shl_failed_info *info, void *user)
{
    (void)call;
    (void)info;
    struct rec *r = user;
    r->op_failed++;
}
static void
sync_completion(void *user)
{
    struct rec *r = user;
    r->sync_completion++;
}
static void
sync_failed(const shl_failed_info *info, void *user)
{
    struct rec *r = user;
    r->info = *info;
    r->sync_failed++;
}

static void
fill_opts(shl_spawn_opts *o, struct rec *r)
{
    shl_spawn_opts_init(o);
    o->result_free = free;
    o->callbacks.on_completion = cb_completion;
    o->callbacks.on_cleanup = cb_cleanup;
    o->callbacks.on_operation_failed = cb_op_failed;
    o->callbacks.user = r;
}

static int *
boxed(int v)
{
    int *p = malloc(sizeof(*p));
    assert_non_null(p);
    *p = v;
    return p;
}

static int
work_value(shl_spawned *c, void *arg, void **result)
{
    (void)c;
    *result = boxed((int)(intptr_t)arg);
    return 0;
}

static int
work_fail(shl_spawned *c, void *arg, void **result)
{
    (void)result;
    shl_spawned_set_error(c, arg ? (const char *)arg : NULL);
    return -EIO;
}

/* Blocks until released (gate) or cancelled; bounded so a broken test
 * cannot hang. Returns 0 with 7, or -ECANCELED. */
struct gate {
    _Atomic int open;
    _Atomic int started;
    _Atomic int finished;
    _Atomic int saw_cancel;
    bool ignore_cancel;
};

static int
work_gate(shl_spawned *c, void *arg, void **result)
{
    struct gate *g = arg;
    g->started = 1;
    int64_t end = shl_test_now_ms() + 10000 * shl_test_multiplier();
    int rc = 0;
    while (!g->open && shl_test_now_ms() < end) {
        if (shl_spawned_is_cancelled(c) && !g->ignore_cancel) {
            g->saw_cancel = 1;
            rc = -ECANCELED;
            break;
        }
        shl_test_pause_ms(1);
    }
    if (rc == 0)
        *result = boxed(7);
    g->finished = 1;
    return rc;
}

static void *
fallback_value(shl_spawned *c, void *user)
{
    (void)c;
    struct rec *r = user;
    r->crashed++;
    return boxed(99);
}

static void *
fallback_null(shl_spawned *c, void *user)
{
    (void)c;
    struct rec *r = user;
    r->crashed++;
    return NULL;
}

/* ---- tests ---- */

static void
test_spawn_success(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.description = "compute";
    shl_spawned *c = NULL;
    assert_shl_ok(
        shl_op_spawn_call(f.op, work_value, (void *)(intptr_t)42, &o, &c));
    /* id available at once, call_<participant>_<n>_<hex> */
    assert_memory_equal(shl_spawned_id(c), "call_cli_", 9);
    assert_string_equal(shl_spawned_description(c), "compute");
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 5000, &res));
    assert_non_null(res);
    assert_int_equal(*(int *)res, 42);
    assert_true(shl_spawned_is_completed(c));
    assert_true(shl_spawned_is_success(c));
    assert_false(shl_spawned_is_failed(c));
    assert_false(shl_spawned_is_cancelled(c));
    assert_ptr_equal(shl_spawned_result(c), res);
    assert_ptr_equal(shl_spawned_result_or(c, NULL), res);
    assert_null(shl_spawned_error(c));
    /* on_completion ran before the waiters woke, with the result */
    assert_int_equal(r.completion, 1);
    assert_ptr_equal(r.completion_result, res);
    assert_string_equal(r.completion_call_id, shl_spawned_id(c));
    assert_int_equal(r.cleanup, 0);
    /* frame gone, nothing pending, operation running */
    assert_int_equal(frame_count(&f), 0);
    assert_int_equal(shl_op_pending_call_count(f.op), 0);
    assert_false(shl_op_has_pending_calls(f.op));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    /* CALL_COMPLETED in the operation log */
    char path[1024], needle[256];
    snprintf(path, sizeof(path), "%s/%s.operation.log", f.base, f.id);
    snprintf(needle, sizeof(needle), "CALL_COMPLETED callId=%s",
             shl_spawned_id(c));
    assert_true(SHL_WAIT_FOR(file_contains(path, needle), 5000));
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_fallback(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.on_call_crashed = fallback_value;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_fail, "boom", &o, &c));
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 5000, &res));
    assert_int_equal(*(int *)res, 99);
    assert_true(shl_spawned_is_success(c));
    assert_int_equal(r.crashed, 1);
    assert_int_equal(r.completion, 1); /* success path, with the fallback */
    assert_int_equal(r.cleanup, 0);
    /* no operation failure */
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_int_equal(frame_count(&f), 0);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_null_fallback_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.on_call_crashed = fallback_null;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_fail, "boom", &o, &c));
    assert_int_equal(shl_spawned_wait(c, 5000, NULL), SHL_ECALLFAILED);
    assert_true(shl_spawned_is_failed(c));
    assert_false(shl_spawned_is_success(c));
    assert_null(shl_spawned_result(c));
    assert_int_equal((intptr_t)shl_spawned_result_or(c, (void *)5), 5);
    assert_string_equal(shl_spawned_error(c), "boom");
    assert_int_equal(r.crashed, 1);
    assert_int_equal(r.completion, 0);
    /* the original forgot on_cleanup for spawned calls; we run it */
    assert_int_equal(r.cleanup, 1);
    /* fail_on_crash: the operation failed with this call id */
    shl_failed_info info;
    assert_int_equal(shl_op_failure_info(f.op, &info), 1);
    assert_int_equal(info.crashed_call_count, 1);
    assert_string_equal(info.crashed_call_ids[0], shl_spawned_id(c));
    char want[300];
    snprintf(want, sizeof(want), "Call %s failed: boom", shl_spawned_id(c));
    assert_string_equal(info.reason, want);
    assert_shl_ok(shl_op_wait_failure(f.op, 5000, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_leave(f.op, false));
    fx_close(&f);
}

static void
test_spawn_failure_without_fail_on_crash(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.fail_on_crash = false;
    shl_spawned *c = NULL;
    /* no fallback at all, no error text: the code's name is the error */
    assert_shl_ok(shl_op_spawn_call(f.op, work_fail, NULL, &o, &c));
    assert_int_equal(shl_spawned_wait(c, 5000, NULL), SHL_ECALLFAILED);
    assert_string_equal(shl_spawned_error(c), shl_strerror(-EIO));
    assert_int_equal(r.cleanup, 1);
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_int_equal(frame_count(&f), 0);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_sync_success(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    shl_spawned *c[3];
    for (int i = 0; i < 3; i++)
        assert_shl_ok(shl_op_spawn_call(f.op, work_value,
                                        (void *)(intptr_t)(i + 1), &o, &c[i]));
    shl_sync_opts so;
    shl_sync_opts_init(&so);
    so.on_completion = sync_completion;
    so.on_operation_failed = sync_failed;
    so.user = &r;
    shl_sync_result res;
    assert_shl_ok(shl_op_sync(f.op, c, 3, &so, &res));
    assert_int_equal(res.successful_count, 3);
    assert_int_equal(res.failed_count, 0);
    assert_int_equal(res.unknown_count, 0);
    assert_true(res.all_succeeded);
    assert_true(res.all_resolved);
    assert_false(res.has_failed);
    assert_false(res.operation_failed);
    assert_int_equal(r.sync_completion, 1);
    assert_int_equal(r.sync_failed, 0);
    assert_int_equal(r.completion, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(*(int *)shl_spawned_result(c[i]), i + 1);
    shl_sync_result_fini(&res);
    /* empty list: at once, no callbacks */
    assert_shl_ok(shl_op_sync(f.op, NULL, 0, &so, &res));
    assert_true(res.all_succeeded);
    assert_int_equal(r.sync_completion, 1);
    shl_sync_result_fini(&res);
    /* a call of another session is refused */
    shl_spawned *other = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_value, NULL, &o, &other));
    assert_int_equal(shl_op_sync(f.op, &other, 1, &so, &res), -EINVAL);
    assert_shl_ok(shl_spawned_wait(other, 5000, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_sync_failure(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0}, rb = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    struct gate g = {0};
    shl_spawn_opts ob;
    fill_opts(&ob, &rb);
    shl_spawned *c[3];
    assert_shl_ok(shl_op_spawn_call(f.op, work_value, NULL, &o, &c[0]));
    assert_shl_ok(shl_spawned_wait(c[0], 5000, NULL));
    assert_shl_ok(shl_op_spawn_call(f.op, work_gate, &g, &ob, &c[1]));
    assert_true(SHL_WAIT_FOR(g.started, 5000));
    assert_shl_ok(shl_op_spawn_call(f.op, work_fail, "bad", &o, &c[2]));
    shl_sync_opts so;
    shl_sync_opts_init(&so);
    so.on_completion = sync_completion;
    so.on_operation_failed = sync_failed;
    so.user = &r;
    shl_sync_result res;
    assert_shl_ok(shl_op_sync(f.op, c, 3, &so, &res));
    assert_true(res.operation_failed);
    assert_int_equal(res.successful_count, 1);
    assert_ptr_equal(res.successful[0], c[0]);
    /* the call that failed the operation is failed, never unknown */
    assert_int_equal(res.failed_count, 1);
    assert_ptr_equal(res.failed[0], c[2]);
    assert_int_equal(res.unknown_count, 1);
    assert_ptr_equal(res.unknown[0], c[1]);
    assert_false(res.all_succeeded);
    assert_false(res.all_resolved);
    assert_true(res.has_failed);
    assert_string_equal(res.failure.crashed_call_ids[0], shl_spawned_id(c[2]));
    assert_int_equal(r.sync_failed, 1);
    assert_int_equal(r.sync_completion, 0);
    assert_string_equal(r.info.crashed_call_ids[0], shl_spawned_id(c[2]));
    shl_sync_result_fini(&res);
    /* the pending spawned call heard of the failure */
    assert_true(SHL_WAIT_FOR(rb.op_failed == 1, 5000));
    assert_int_equal(r.op_failed, 0); /* c[0] done, c[2] is the cause */
    /* sync after the failure returns at once, the gate call unknown */
    assert_shl_ok(shl_op_await_call(f.op, c[1], &so, &res));
    assert_true(res.operation_failed);
    assert_int_equal(res.unknown_count, 1);
    shl_sync_result_fini(&res);
    /* let it finish */
    g.open = 1;
    assert_shl_ok(shl_spawned_wait(c[1], 5000, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_leave(f.op, false));
    fx_close(&f);
}

static void
test_spawn_await_call_and_timeout(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    struct gate g = {0};
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_gate, &g, &o, &c));
    shl_sync_opts so;
    shl_sync_opts_init(&so);
    so.on_completion = sync_completion;
    so.user = &r;
    so.timeout_ms = 50;
    shl_sync_result res;
    assert_shl_ok(shl_op_await_call(f.op, c, &so, &res));
    assert_int_equal(res.unknown_count, 1);
    assert_false(res.operation_failed);
    assert_false(res.all_resolved);
    assert_int_equal(r.sync_completion, 0);
    shl_sync_result_fini(&res);
    assert_int_equal(shl_spawned_wait(c, 10, NULL), -ETIMEDOUT);
    assert_int_equal(shl_spawned_release(c), SHL_ESTATE);
    g.open = 1;
    so.timeout_ms = -1;
    assert_shl_ok(shl_op_await_call(f.op, c, &so, &res));
    assert_int_equal(res.successful_count, 1);
    assert_true(res.all_succeeded);
    assert_int_equal(r.sync_completion, 1);
    shl_sync_result_fini(&res);
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_pending_and_leave(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    struct gate g = {0};
    shl_spawned *c = NULL;
    shl_call *plain = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_gate, &g, &o, &c));
    assert_shl_ok(shl_call_start(f.j, NULL, &plain));
    /* both count; getPendingCalls lists only the regular one,
     * getPendingSpawnedCalls only the spawned one */
    assert_int_equal(shl_op_pending_call_count(f.j), 2);
    assert_true(shl_op_has_pending_calls(f.j));
    shl_call *pc[4];
    assert_int_equal(shl_op_pending_calls(f.j, pc, 4), 1);
    assert_ptr_equal(pc[0], plain);
    shl_spawned *ps[4];
    assert_int_equal(shl_op_pending_spawned_calls(f.j, ps, 4), 1);
    assert_ptr_equal(ps[0], c);
    assert_shl_ok(shl_call_end(plain, NULL));
    /* leave refuses while the spawned call runs, naming it */
    assert_int_equal(shl_op_leave(f.j, false), SHL_ESTATE);
    assert_non_null(strstr(shl_errmsg(), "1 call(s) still active (1 spawned)"));
    assert_non_null(strstr(shl_errmsg(), shl_spawned_id(c)));
    /* cancel / isCancelled: cooperative */
    shl_spawned_cancel(c);
    assert_true(shl_spawned_is_cancelled(c));
    assert_int_equal(shl_spawned_wait(c, 5000, NULL), SHL_ECANCELLED);
    assert_true(g.saw_cancel);
    assert_int_equal(shl_spawned_kill(c, SIGTERM), 0); /* no process */
    assert_int_equal(shl_op_pending_call_count(f.j), 0);
    assert_int_equal(shl_op_pending_spawned_calls(f.j, ps, 4), 0);
    assert_shl_ok(shl_op_leave(f.j, false));
    /* cancelled is its own outcome: even with fail_on_crash and no
     * fallback it does not fail the operation */
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_leave_cancels(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.fail_on_crash = false;
    struct gate g = {0};
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_gate, &g, &o, &c));
    assert_true(SHL_WAIT_FOR(g.started, 5000));
    /* leave(true): cancel, wait for the worker, then leave */
    assert_shl_ok(shl_op_leave(f.j, true));
    assert_true(g.saw_cancel);
    assert_true(g.finished);
    assert_int_equal(r.cleanup, 1);
    assert_int_equal(frame_count(&f), 0);
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_leave_cancel_bounded(void **state)
{
    (void)state;
    struct fx f;
    shl_ledger_opts lo;
    shl_ledger_opts_init(&lo);
    lo.timeout_ms = 100; /* leave waits this long for spawned calls */
    fx_open_opts(&f, &lo);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.fail_on_crash = false;
    struct gate g = {.ignore_cancel = true};
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_gate, &g, &o, &c));
    assert_true(SHL_WAIT_FOR(g.started, 5000));
    int64_t t0 = shl_test_now_ms();
    assert_shl_ok(shl_op_leave(f.j, true));
    assert_true(shl_test_now_ms() - t0 < 2000);
    /* the work still runs; its frame is gone, its cleanup ran */
    assert_false(g.finished);
    assert_int_equal(r.cleanup, 1);
    assert_int_equal(frame_count(&f), 0);
    /* the worker finishes later and frees the left session (ASan) */
    g.open = 1;
    assert_true(SHL_WAIT_FOR(g.finished, 5000));
    assert_int_equal(r.completion, 0); /* the call was over: no result */
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_close_with_running_call(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    o.fail_on_crash = false;
    struct gate g = {0};
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_gate, &g, &o, &c));
    assert_true(SHL_WAIT_FOR(g.started, 5000));
    /* close cancels, waits for the worker, stops the pool */
    shl_ledger_close(f.l2);
    f.l2 = NULL;
    assert_true(g.finished);
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_many_calls(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct rec r = {0};
    shl_spawn_opts o;
    fill_opts(&o, &r);
    enum { N = 40 }; /* more than the pool's threads: queued tasks */
    shl_spawned *c[N];
    for (int i = 0; i < N; i++)
        assert_shl_ok(shl_op_spawn_call(f.op, work_value, (void *)(intptr_t)i,
                                        &o, &c[i]));
    shl_sync_result res;
    assert_shl_ok(shl_op_sync(f.op, c, N, NULL, &res));
    assert_int_equal(res.successful_count, N);
    shl_sync_result_fini(&res);
    for (int i = 0; i < N; i++) {
        assert_int_equal(*(int *)shl_spawned_result(c[i]), i);
        assert_shl_ok(shl_spawned_release(c[i]));
    }
    assert_int_equal(r.completion, N);
    assert_int_equal(frame_count(&f), 0);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- waitForCompletion ---- */

struct wfc {
    struct fx *f;
    _Atomic int op_failed;
    _Atomic int finished;
    _Atomic int saw_cancel;
    shl_failed_info info;
    int on_error_err;
    char on_error_text[64];
};

static int
wfc_value(shl_spawned *c, void *arg, void **result)
{
    (void)c;
    (void)arg;
    *result = boxed(5);
    return 0;
}

static void
wfc_failed(const shl_failed_info *info, void *user)
{
    struct wfc *w = user;
    w->info = *info;
    w->op_failed++;
}

static void *
wfc_on_error(int err, const char *error, void *user)
{
    struct wfc *w = user;
    w->on_error_err = err;
    snprintf(w->on_error_text, sizeof(w->on_error_text), "%s", error);
    return boxed(-1);
}

/* Another participant (bridge) fails the operation while this runs; then
 * wait for the cancellation waitForCompletion requests. */
static int
wfc_other_fails(shl_spawned *c, void *arg, void **result)
{
    (void)result;
    struct wfc *w = arg;
    shl_call *b = NULL;
    if (shl_call_start(w->f->j, NULL, &b) == 0)
        (void)shl_call_fail(b, "bridge broke");
    int64_t end = shl_test_now_ms() + 10000;
    while (!shl_spawned_is_cancelled(c) && shl_test_now_ms() < end)
        shl_test_pause_ms(1);
    w->saw_cancel = shl_spawned_is_cancelled(c);
    w->finished = 1;
    return -ECANCELED;
}

static void
test_spawn_wait_for_completion(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct wfc w = {.f = &f};
    void *res = NULL;
    shl_failed_info fi;
    assert_shl_ok(shl_op_wait_for_completion(f.op, wfc_value, NULL, wfc_failed,
                                             NULL, &w, &res, &fi));
    assert_int_equal(*(int *)res, 5);
    free(res);
    assert_int_equal(w.op_failed, 0);
    /* a failing work with on_error: its value is the result */
    res = NULL;
    assert_shl_ok(shl_op_wait_for_completion(
        f.op, work_fail, "kaput", wfc_failed, wfc_on_error, &w, &res, &fi));
    assert_int_equal(*(int *)res, -1);
    free(res);
    assert_int_equal(w.on_error_err, -EIO);
    assert_string_equal(w.on_error_text, "kaput");
    /* without on_error: the work's error */
    assert_int_equal(shl_op_wait_for_completion(f.op, work_fail, "kaput",
                                                wfc_failed, NULL, &w, &res,
                                                &fi),
                     -EIO);
    assert_non_null(strstr(shl_errmsg(), "kaput"));
    assert_int_equal(w.op_failed, 0);
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

static void
test_spawn_wait_for_completion_operation_fails_first(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct wfc w = {.f = &f};
    void *res = NULL;
    shl_failed_info fi;
    memset(&fi, 0, sizeof(fi));
    assert_int_equal(shl_op_wait_for_completion(f.op, wfc_other_fails, &w,
                                                wfc_failed, wfc_on_error, &w,
                                                &res, &fi),
                     SHL_EFAILED);
    assert_int_equal(w.op_failed, 1);
    assert_string_equal(fi.operation_id, f.id);
    assert_int_equal(fi.crashed_call_count, 1);
    assert_memory_equal(fi.crashed_call_ids[0], "call_bridge_", 12);
    assert_non_null(strstr(fi.reason, "bridge broke"));
    assert_string_equal(w.info.crashed_call_ids[0], fi.crashed_call_ids[0]);
    /* the work is asked to stop, and does */
    assert_true(SHL_WAIT_FOR(w.finished, 5000));
    assert_true(w.saw_cancel);
    /* already failed: at once, without running the work */
    assert_int_equal(shl_op_wait_for_completion(f.op, wfc_value, NULL,
                                                wfc_failed, NULL, &w, &res,
                                                NULL),
                     SHL_EFAILED);
    assert_int_equal(w.op_failed, 2);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_leave(f.op, false));
    fx_close(&f);
}

static void
test_spawn_bad_input(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_spawned *c = NULL;
    assert_int_equal(shl_op_spawn_call(NULL, work_value, NULL, NULL, &c),
                     -EINVAL);
    assert_int_equal(shl_op_spawn_call(f.op, NULL, NULL, NULL, &c), -EINVAL);
    assert_int_equal(shl_op_spawn_call(f.op, work_value, NULL, NULL, NULL),
                     -EINVAL);
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    char longest[SHL_DESCRIPTION_MAX + 2];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = 0;
    o.description = longest;
    assert_int_equal(shl_op_spawn_call(f.op, work_value, NULL, &o, &c),
                     -ENAMETOOLONG);
    assert_int_equal(frame_count(&f), 0);
    assert_int_equal(shl_spawned_wait(NULL, 0, NULL), -EINVAL);
    assert_int_equal(shl_spawned_release(NULL), -EINVAL);
    assert_int_equal(shl_spawned_kill(NULL, SIGTERM), -EINVAL);
    assert_null(shl_spawned_id(NULL));
    assert_false(shl_spawned_is_completed(NULL));
    shl_spawned_cancel(NULL);
    shl_sync_result res;
    assert_int_equal(shl_op_sync(NULL, NULL, 0, NULL, &res), -EINVAL);
    assert_int_equal(shl_op_await_call(f.op, NULL, NULL, &res), -EINVAL);
    assert_int_equal(shl_op_wait_for_completion(f.op, NULL, NULL, NULL, NULL,
                                                NULL, NULL, NULL),
                     -EINVAL);
    shl_sync_result_fini(NULL);
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_success),
        cmocka_unit_test(test_spawn_fallback),
        cmocka_unit_test(test_spawn_null_fallback_fails),
        cmocka_unit_test(test_spawn_failure_without_fail_on_crash),
        cmocka_unit_test(test_spawn_sync_success),
        cmocka_unit_test(test_spawn_sync_failure),
        cmocka_unit_test(test_spawn_await_call_and_timeout),
        cmocka_unit_test(test_spawn_pending_and_leave),
        cmocka_unit_test(test_spawn_leave_cancels),
        cmocka_unit_test(test_spawn_leave_cancel_bounded),
        cmocka_unit_test(test_spawn_close_with_running_call),
        cmocka_unit_test(test_spawn_many_calls),
        cmocka_unit_test(test_spawn_wait_for_completion),
        cmocka_unit_test(test_spawn_wait_for_completion_operation_fails_first),
        cmocka_unit_test(test_spawn_bad_input),
    };
    return cmocka_run_group_tests_name("spawn", tests, NULL, NULL);
}
