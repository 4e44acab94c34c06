/*
 * test_spawn.c: the original's spawned-call groups: spawnCall with
 * failOnCrash, spawnCall and sync, sync method, waitForCompletion, sync
 * with onCompletion, spawnCall with onCompletion, sync method with active
 * calls, onOperationFailed callback in sync, waitForCompletion with
 * onOperationFailed, spawnCall with onCallCrashed returning null,
 * execFileResultWorker, execStdioWorker, execServerRequest, awaitCall.
 * A Dart exception thrown by the work is a negative return here.
 */
#include "conf.h"

#define WAIT_MS (10000 * shl_test_multiplier())

static intptr_t v42 = 42;

/* work: wait until *gate (if any) opens or `ms` passed, return arg */
struct work_arg {
    _Atomic bool *gate;
    int ms;
    void *value;
    bool fail;
};

static int
work(shl_spawned *call, void *arg, void **result)
{
    (void)call;
    struct work_arg *w = arg;
    if (w->gate)
        (void)SHL_WAIT_FOR(atomic_load(w->gate), 10000);
    if (w->ms)
        conf_work_for(w->ms);
    if (w->fail) {
        shl_spawned_set_error(call, "Work failed");
        return -EIO;
    }
    *result = w->value;
    return 0;
}

static shl_spawned *
spawn(shl_op *op, struct work_arg *w, const char *desc, bool foc,
      shl_spawn_opts *base)
{
    shl_spawn_opts o;
    if (base)
        o = *base;
    else
        shl_spawn_opts_init(&o);
    o.description = desc;
    o.fail_on_crash = foc;
    shl_spawned *s = NULL;
    assert_shl_ok(shl_op_spawn_call(op, work, w, &o, &s));
    return s;
}

/* ---- spawnCall with failOnCrash ---- */

static void
test_spawn_call_with_fail_on_crash__spawn_call_fail_on_crash_defaults_to_true(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spfoc", false, true);
    _Atomic bool gate = false;
    struct work_arg w = {.gate = &gate, .value = &v42};
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    assert_true(o.fail_on_crash);
    shl_spawned *s = spawn(c.op, &w, "spawned call", o.fail_on_crash, &o);
    shl_snapshot *snap = conf_cached(c.op);
    assert_true(snap->frame_count > 0);
    assert_true(snap->frames[0].fail_on_crash);
    shl_snapshot_free(snap);
    atomic_store(&gate, true);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    conf_teardown(&c);
}

static void
test_spawn_call_with_fail_on_crash__spawn_call_fail_on_crash_can_be_set_to_false(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spfoc", false, true);
    _Atomic bool gate = false;
    struct work_arg w = {.gate = &gate, .value = &v42};
    shl_spawned *s = spawn(c.op, &w, "contained spawned", false, NULL);
    shl_snapshot *snap = conf_cached(c.op);
    assert_true(snap->frame_count > 0);
    assert_false(snap->frames[0].fail_on_crash);
    shl_snapshot_free(snap);
    atomic_store(&gate, true);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    conf_teardown(&c);
}

static void
test_spawn_call_with_fail_on_crash__mixed_start_call_and_spawn_call_with_different_fail_on_crash(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spfoc", false, true);
    (void)conf_call(c.op, "normal call", true);
    _Atomic bool gate = false;
    struct work_arg w = {.gate = &gate, .value = &v42};
    shl_spawned *s = spawn(c.op, &w, "contained spawn", false, NULL);
    (void)conf_call(c.op, "explicit normal", true);
    /* the original read its cache after the spawned call ended, when its
     * cache still held the spawned frame; here cachedData is current, so
     * the three frames are checked while all three are pending */
    shl_snapshot *snap = conf_cached(c.op);
    assert_int_equal(snap->frame_count, 3);
    assert_true(snap->frames[0].fail_on_crash);
    assert_string_equal(snap->frames[0].description, "normal call");
    assert_false(snap->frames[1].fail_on_crash);
    assert_string_equal(snap->frames[1].description, "contained spawn");
    assert_true(snap->frames[2].fail_on_crash);
    assert_string_equal(snap->frames[2].description, "explicit normal");
    shl_snapshot_free(snap);
    atomic_store(&gate, true);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    conf_teardown(&c);
}

/* ---- spawnCall and sync ---- */

static void
test_spawn_call_and_sync__spawn_call_returns_spawned_call_and_executes_work(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spsync", false, true);
    _Atomic bool gate = false;
    struct work_arg w = {.gate = &gate, .ms = 50, .value = &v42};
    shl_spawned *s = spawn(c.op, &w, "compute value", true, NULL);
    assert_true(strlen(shl_spawned_id(s)) > 0);
    assert_false(shl_spawned_is_completed(s));
    atomic_store(&gate, true);
    void *res = NULL;
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, &res), 0);
    assert_true(shl_spawned_is_completed(s));
    assert_true(shl_spawned_is_success(s));
    assert_int_equal(*(intptr_t *)shl_spawned_result(s), 42);
    conf_teardown(&c);
}

static void *
fallback_value(shl_spawned *call, void *user)
{
    (void)call;
    (void)user;
    return (void *)"fallback_value";
}

static void
test_spawn_call_and_sync__spawn_call_with_on_call_crashed_provides_fallback(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spsync", false, true);
    struct work_arg w = {.fail = true};
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    o.on_call_crashed = fallback_value;
    shl_spawned *s = spawn(c.op, &w, "will fail but recover", false, &o);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    assert_true(shl_spawned_is_success(s));
    assert_string_equal((const char *)shl_spawned_result(s), "fallback_value");
    conf_teardown(&c);
}

static void
test_spawn_call_and_sync__spawn_call_marks_call_as_failed_when_no_fallback(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spsync", false, true);
    struct work_arg w = {.fail = true};
    shl_spawned *s = spawn(c.op, &w, "will fail", false, NULL);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), SHL_ECALLFAILED);
    assert_true(shl_spawned_is_failed(s));
    assert_non_null(shl_spawned_error(s));
    conf_teardown(&c);
}

static void
test_spawn_call_and_sync__sync_waits_for_multiple_calls(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spsync", false, true);
    static intptr_t vals[3] = {1, 2, 3};
    struct work_arg w[3] = {{.value = &vals[0]}, {.value = &vals[1]},
                            {.value = &vals[2]}};
    shl_spawned *calls[3];
    for (int i = 0; i < 3; i++)
        calls[i] = spawn(c.op, &w[i], NULL, true, NULL);
    shl_sync_result r;
    assert_shl_ok(shl_op_sync(c.op, calls, 3, NULL, &r));
    assert_true(r.all_succeeded);
    assert_int_equal(r.successful_count, 3);
    assert_int_equal(r.failed_count, 0);
    shl_sync_result_fini(&r);
    conf_teardown(&c);
}

static void
test_spawn_call_and_sync__sync_reports_failed_calls(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spsync", false, true);
    static intptr_t one = 1;
    struct work_arg ok = {.value = &one}, bad = {.fail = true};
    shl_spawned *calls[2] = {spawn(c.op, &ok, NULL, false, NULL),
                             spawn(c.op, &bad, NULL, false, NULL)};
    shl_sync_result r;
    assert_shl_ok(shl_op_sync(c.op, calls, 2, NULL, &r));
    assert_true(r.has_failed);
    assert_int_equal(r.successful_count, 1);
    assert_int_equal(r.failed_count, 1);
    shl_sync_result_fini(&r);
    conf_teardown(&c);
}

/* ---- sync method, sync with onCompletion, spawnCall with onCompletion ---- */

static void
on_completion_call(shl_call *call, void *result, void *user)
{
    (void)call;
    struct work_arg *w = user;
    w->value = result; /* record what the callback got */
    atomic_store(w->gate, true);
}

static void
test_sync_method__sync_waits_for_spawned_calls_to_complete(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-syncm", false, true);
    _Atomic bool completed = false;
    struct work_arg seen = {.gate = &completed};
    struct work_arg w = {.ms = 20, .value = &v42};
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    o.callbacks.on_completion = on_completion_call;
    o.callbacks.user = &seen;
    shl_spawned *s = spawn(c.op, &w, "spawned", true, &o);
    shl_sync_result r;
    assert_shl_ok(shl_op_sync(c.op, &s, 1, NULL, &r));
    shl_sync_result_fini(&r);
    assert_true(SHL_WAIT_FOR(atomic_load(&completed), 1000));
    assert_true(shl_spawned_is_success(s));
    conf_teardown(&c);
}

static void
on_sync_done(void *user)
{
    atomic_store((_Atomic bool *)user, true);
}

static void
test_sync_with_on_completion__sync_calls_on_completion_callback(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-synccb", false, true);
    struct work_arg w = {.value = &v42};
    shl_spawned *s = spawn(c.op, &w, NULL, true, NULL);
    _Atomic bool called = false;
    shl_sync_opts so;
    shl_sync_opts_init(&so);
    so.on_completion = on_sync_done;
    so.user = (void *)&called;
    shl_sync_result r;
    assert_shl_ok(shl_op_sync(c.op, &s, 1, &so, &r));
    shl_sync_result_fini(&r);
    assert_true(atomic_load(&called));
    conf_teardown(&c);
}

static void
test_spawn_call_with_on_completion__spawn_call_calls_on_completion_with_result(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-spcb", false, true);
    _Atomic bool done = false;
    struct work_arg seen = {.gate = &done};
    struct work_arg w = {.value = &v42};
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    o.callbacks.on_completion = on_completion_call;
    o.callbacks.user = &seen;
    shl_spawned *s = spawn(c.op, &w, NULL, true, &o);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    assert_true(SHL_WAIT_FOR(atomic_load(&done), 1000));
    assert_int_equal(*(intptr_t *)seen.value, 42);
    conf_teardown(&c);
}

/* ---- sync method with active calls ---- */

static void
test_sync_method_with_active_calls__sync_waits_for_active_call_completers(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-syncact", false, true);
    struct work_arg w = {.ms = 50, .value = &v42};
    shl_spawned *s = spawn(c.op, &w, "will complete", true, NULL);
    shl_sync_result r;
    assert_shl_ok(shl_op_sync(c.op, &s, 1, NULL, &r));
    shl_sync_result_fini(&r);
    assert_true(shl_spawned_is_success(s));
    assert_int_equal(*(intptr_t *)shl_spawned_result(s), 42);
    conf_teardown(&c);
}

static void
test_sync_method_with_active_calls__sync_returns_immediately_for_empty_list(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-syncact", false, true);
    int64_t t0 = shl_test_now_ms();
    shl_sync_result r;
    assert_shl_ok(shl_op_sync(c.op, NULL, 0, NULL, &r));
    shl_sync_result_fini(&r);
    assert_true(shl_test_now_ms() - t0 < 50 * shl_test_multiplier());
    conf_teardown(&c);
}

/* ---- onOperationFailed callback in sync ---- */

static void
on_op_failed(const shl_failed_info *info, void *user)
{
    (void)info;
    atomic_store((_Atomic bool *)user, true);
}

static void
test_on_operation_failed_callback_in_sync__sync_calls_on_operation_failed_when_call_crashes(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-syncfail", false, true);
    struct work_arg w = {.ms = 20, .fail = true};
    shl_spawned *s = spawn(c.op, &w, NULL, true, NULL);
    _Atomic bool called = false;
    shl_sync_opts so;
    shl_sync_opts_init(&so);
    so.on_operation_failed = on_op_failed;
    so.user = (void *)&called;
    shl_sync_result r;
    (void)shl_op_sync(c.op, &s, 1, &so, &r);
    shl_sync_result_fini(&r);
    assert_true(shl_spawned_is_failed(s));
    /* the original allowed either; the failure reaches sync here */
    conf_leave_failed(&c);
    conf_teardown(&c);
}

/* ---- waitForCompletion, waitForCompletion with onOperationFailed ---- */

static int
set_flag_work(shl_spawned *call, void *arg, void **result)
{
    (void)call;
    (void)result;
    struct work_arg *w = arg;
    if (w->ms)
        conf_work_for(w->ms);
    atomic_store(w->gate, true);
    return 0;
}

static void
test_wait_for_completion__wait_for_completion_executes_work(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-wfc", false, true);
    _Atomic bool done = false;
    struct work_arg w = {.gate = &done};
    void *res = NULL;
    assert_shl_ok(shl_op_wait_for_completion(c.op, set_flag_work, &w, NULL,
                                             NULL, NULL, &res, NULL));
    assert_true(atomic_load(&done));
    conf_teardown(&c);
}

static void
test_wait_for_completion__wait_for_completion_with_async_delay(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-wfc", false, true);
    _Atomic bool done = false;
    struct work_arg w = {.gate = &done, .ms = 50};
    int64_t t0 = shl_test_now_ms();
    void *res = NULL;
    assert_shl_ok(shl_op_wait_for_completion(c.op, set_flag_work, &w, NULL,
                                             NULL, NULL, &res, NULL));
    assert_true(shl_test_now_ms() - t0 >= 40);
    conf_teardown(&c);
}

static void
test_wait_for_completion_with_on_operation_failed__wait_for_completion_completes_normally_when_work_succeeds(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-wfcf", false, true);
    _Atomic bool done = false, failed = false;
    struct work_arg w = {.gate = &done, .ms = 20};
    void *res = NULL;
    shl_failed_info fi;
    assert_shl_ok(shl_op_wait_for_completion(c.op, set_flag_work, &w,
                                             on_op_failed, NULL,
                                             (void *)&failed, &res, &fi));
    assert_true(atomic_load(&done));
    assert_false(atomic_load(&failed));
    conf_teardown(&c);
}

/* ---- spawnCall with onCallCrashed returning null ---- */

static void *
no_fallback(shl_spawned *call, void *user)
{
    (void)call;
    (void)user;
    return NULL;
}

static void *
failing_fallback(shl_spawned *call, void *user)
{
    (void)user;
    /* the recovery itself fails ("throws"): no value */
    shl_spawned_set_error(call, "Recovery also failed");
    return NULL;
}

static void
test_spawn_call_with_on_call_crashed_returning_null__call_fails_when_on_call_crashed_returns_null(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-crnull", false, true);
    struct work_arg w = {.fail = true};
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    o.on_call_crashed = no_fallback;
    shl_spawned *s = spawn(c.op, &w, NULL, false, &o);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), SHL_ECALLFAILED);
    assert_true(shl_spawned_is_failed(s));
    assert_non_null(shl_spawned_error(s));
    conf_teardown(&c);
}

static void
test_spawn_call_with_on_call_crashed_returning_null__call_fails_when_on_call_crashed_throws(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-crnull", false, true);
    struct work_arg w = {.fail = true};
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    o.on_call_crashed = failing_fallback;
    shl_spawned *s = spawn(c.op, &w, NULL, false, &o);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), SHL_ECALLFAILED);
    assert_true(shl_spawned_is_failed(s));
    conf_teardown(&c);
}

/* ---- execFileResultWorker, execStdioWorker ---- */

static void
write_text(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_exec_file_result_worker__exec_file_result_worker_returns_spawned_call_with_correct_structure(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-exec", false, true);
    char rp[700];
    snprintf(rp, sizeof(rp), "%s/result.json", c.base);
    write_text(rp, "{\"success\": true, \"value\": 42}");
    const char *argv[] = {"test", NULL};
    shl_exec_opts eo;
    shl_exec_opts_init(&eo);
    eo.executable = "echo";
    eo.argv = argv;
    eo.result_file_path = rp;
    eo.delete_result_file = false;
    shl_spawned *s = NULL;
    assert_shl_ok(shl_op_exec_file_result_worker(c.op, &eo, &s));
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    assert_true(strlen(shl_spawned_id(s)) > 0);
    assert_true(shl_spawned_is_success(s));
    const char *res = shl_spawned_result(s);
    assert_non_null(strstr(res, "\"success\": true"));
    assert_non_null(strstr(res, "\"value\": 42"));
    conf_teardown(&c);
}

static void
test_exec_file_result_worker__exec_file_result_worker_deletes_file_when_delete_result_file_true(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-exec", false, true);
    char rp[700];
    snprintf(rp, sizeof(rp), "%s/result_delete.json", c.base);
    write_text(rp, "{\"deleted\": true}");
    const char *argv[] = {"test", NULL};
    shl_exec_opts eo;
    shl_exec_opts_init(&eo);
    eo.executable = "echo";
    eo.argv = argv;
    eo.result_file_path = rp;
    eo.delete_result_file = true;
    shl_spawned *s = NULL;
    assert_shl_ok(shl_op_exec_file_result_worker(c.op, &eo, &s));
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    assert_true(shl_spawned_is_success(s));
    assert_false(conf_exists(rp));
    conf_teardown(&c);
}

static void
test_exec_stdio_worker__exec_stdio_worker_captures_stdout_and_deserializes(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-stdio", false, true);
    const char *argv[] = {"hello world", NULL};
    shl_exec_opts eo;
    shl_exec_opts_init(&eo);
    eo.executable = "echo";
    eo.argv = argv;
    shl_spawned *s = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(c.op, &eo, &s));
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    assert_true(shl_spawned_is_success(s));
    assert_string_equal((const char *)shl_spawned_result(s), "hello world\n");
    conf_teardown(&c);
}

static void
test_exec_stdio_worker__exec_stdio_worker_returns_spawned_call_with_call_id(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-stdio", false, true);
    const char *argv[] = {"test", NULL};
    shl_exec_opts eo;
    shl_exec_opts_init(&eo);
    eo.executable = "echo";
    eo.argv = argv;
    shl_spawned *s = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(c.op, &eo, &s));
    assert_true(strlen(shl_spawned_id(s)) > 0); /* before it finished */
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    conf_teardown(&c);
}

/* ---- execServerRequest (a spawned call, see shl_op_spawn_call) ---- */

static void
test_exec_server_request__exec_server_request_executes_work_function_and_returns_result(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-server", false, true);
    struct work_arg w = {.value = (void *)"server_result"};
    shl_spawned *s = spawn(c.op, &w, "server request", true, NULL);
    assert_true(strlen(shl_spawned_id(s)) > 0);
    assert_int_equal(shl_spawned_wait(s, WAIT_MS, NULL), 0);
    assert_true(shl_spawned_is_success(s));
    assert_string_equal((const char *)shl_spawned_result(s), "server_result");
    conf_teardown(&c);
}

/* ---- awaitCall ---- */

static void
test_await_call__await_call_waits_for_single_spawned_call(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-await", false, true);
    struct work_arg w = {.ms = 50, .value = &v42};
    shl_spawned *s = spawn(c.op, &w, NULL, true, NULL);
    shl_sync_result r;
    assert_shl_ok(shl_op_await_call(c.op, s, NULL, &r));
    assert_true(r.all_succeeded);
    assert_int_equal(r.successful_count, 1);
    shl_sync_result_fini(&r);
    assert_true(shl_spawned_is_success(s));
    assert_int_equal(*(intptr_t *)shl_spawned_result(s), 42);
    conf_teardown(&c);
}

static void
test_await_call__await_call_handles_failed_call_correctly(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-await", false, true);
    struct work_arg w = {.fail = true};
    shl_spawned *s = spawn(c.op, &w, NULL, false, NULL);
    shl_sync_result r;
    assert_shl_ok(shl_op_await_call(c.op, s, NULL, &r));
    assert_false(r.all_succeeded);
    assert_int_equal(r.failed_count, 1);
    shl_sync_result_fini(&r);
    assert_true(shl_spawned_is_failed(s));
    assert_non_null(shl_spawned_error(s));
    conf_teardown(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_spawn_call_with_fail_on_crash__spawn_call_fail_on_crash_defaults_to_true),
        cmocka_unit_test(
            test_spawn_call_with_fail_on_crash__spawn_call_fail_on_crash_can_be_set_to_false),
        cmocka_unit_test(
            test_spawn_call_with_fail_on_crash__mixed_start_call_and_spawn_call_with_different_fail_on_crash),
        cmocka_unit_test(
            test_spawn_call_and_sync__spawn_call_returns_spawned_call_and_executes_work),
        cmocka_unit_test(
            test_spawn_call_and_sync__spawn_call_with_on_call_crashed_provides_fallback),
        cmocka_unit_test(
            test_spawn_call_and_sync__spawn_call_marks_call_as_failed_when_no_fallback),
        cmocka_unit_test(test_spawn_call_and_sync__sync_waits_for_multiple_calls),
        cmocka_unit_test(test_spawn_call_and_sync__sync_reports_failed_calls),
        cmocka_unit_test(
            test_sync_method__sync_waits_for_spawned_calls_to_complete),
        cmocka_unit_test(
            test_sync_with_on_completion__sync_calls_on_completion_callback),
        cmocka_unit_test(
            test_spawn_call_with_on_completion__spawn_call_calls_on_completion_with_result),
        cmocka_unit_test(
            test_sync_method_with_active_calls__sync_waits_for_active_call_completers),
        cmocka_unit_test(
            test_sync_method_with_active_calls__sync_returns_immediately_for_empty_list),
        cmocka_unit_test(
            test_on_operation_failed_callback_in_sync__sync_calls_on_operation_failed_when_call_crashes),
        cmocka_unit_test(test_wait_for_completion__wait_for_completion_executes_work),
        cmocka_unit_test(
            test_wait_for_completion__wait_for_completion_with_async_delay),
        cmocka_unit_test(
            test_wait_for_completion_with_on_operation_failed__wait_for_completion_completes_normally_when_work_succeeds),
        cmocka_unit_test(
            test_spawn_call_with_on_call_crashed_returning_null__call_fails_when_on_call_crashed_returns_null),
        cmocka_unit_test(
            test_spawn_call_with_on_call_crashed_returning_null__call_fails_when_on_call_crashed_throws),
        cmocka_unit_test(
            test_exec_file_result_worker__exec_file_result_worker_returns_spawned_call_with_correct_structure),
        cmocka_unit_test(
            test_exec_file_result_worker__exec_file_result_worker_deletes_file_when_delete_result_file_true),
        cmocka_unit_test(
            test_exec_stdio_worker__exec_stdio_worker_captures_stdout_and_deserializes),
        cmocka_unit_test(
            test_exec_stdio_worker__exec_stdio_worker_returns_spawned_call_with_call_id),
        cmocka_unit_test(
            test_exec_server_request__exec_server_request_executes_work_function_and_returns_result),
        cmocka_unit_test(test_await_call__await_call_waits_for_single_spawned_call),
        cmocka_unit_test(test_await_call__await_call_handles_failed_call_correctly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
