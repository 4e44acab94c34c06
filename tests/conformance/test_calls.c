/*
 * test_calls.c: the original's call groups: New API - startCall/endCall,
 * New API - log with DLLogLevel, failCall, endCall behavior.
 */
#include "conf.h"

static void
on_cleanup_flag(shl_call *call, void *user)
{
    (void)call;
    atomic_store((_Atomic bool *)user, true);
}

/* ---- New API - startCall/endCall ---- */

static void
test_new_api_start_call_end_call__start_call_adds_call_frame_with_ledger_generated_call_id(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", false, true);
    shl_call *call = conf_call(c.op, "test call", true);
    assert_true(strlen(shl_call_id(call)) > 0);
    shl_snapshot *s = conf_cached(c.op);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(call));
    assert_string_equal(s->frames[0].description, "test call");
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__start_call_call_id_has_correct_format(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", false, true);
    shl_call *call = conf_call(c.op, "test", true);
    assert_true(shl_test_rx_match("^call_test_[0-9]+_[0-9a-f]+$",
                                  shl_call_id(call)));
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__start_call_with_callback_for_cleanup(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", false, true);
    _Atomic bool cleaned = false;
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "call with callback";
    co.callbacks.on_cleanup = on_cleanup_flag;
    co.callbacks.user = (void *)&cleaned;
    shl_call *call = NULL;
    assert_shl_ok(shl_call_start(c.op, &co, &call));
    assert_false(atomic_load(&cleaned)); /* only on failure / crash */
    assert_shl_ok(shl_call_end(call, NULL));
    assert_false(atomic_load(&cleaned));
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__end_call_removes_matching_call_frame(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", false, true);
    shl_call *call = conf_call(c.op, "test", true);
    assert_int_equal(conf_cached_frames(c.op), 1);
    assert_shl_ok(shl_call_end(call, NULL));
    assert_int_equal(conf_cached_frames(c.op), 0);
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__end_call_removes_correct_frame_when_multiple_exist(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", false, true);
    shl_call *c1 = conf_call(c.op, "call 1", true);
    shl_call *c2 = conf_call(c.op, "call 2", true);
    assert_int_equal(conf_cached_frames(c.op), 2);
    assert_shl_ok(shl_call_end(c1, NULL));
    shl_snapshot *s = conf_cached(c.op);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(c2));
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__start_call_fail_on_crash_defaults_to_true(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", false, true);
    shl_call *call = NULL;
    assert_shl_ok(shl_call_start(c.op, NULL, &call));
    shl_snapshot *s = conf_cached(c.op);
    assert_true(s->frames[0].fail_on_crash);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__start_call_fail_on_crash_can_be_set_to_false(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", true, true);
    (void)conf_call(c.op, "contained crash", false);
    shl_snapshot *s = conf_cached(c.op);
    assert_false(s->frames[0].fail_on_crash);
    shl_snapshot_free(s);
    s = conf_json(&c);
    assert_false(s->frames[0].fail_on_crash);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_new_api_start_call_end_call__start_call_fail_on_crash_is_persisted_and_restored(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-call", true, true);
    (void)conf_call(c.op, "contained", false);
    (void)conf_call(c.op, "normal", true);
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->frame_count, 2);
    assert_false(s->frames[0].fail_on_crash);
    assert_string_equal(s->frames[0].description, "contained");
    assert_true(s->frames[1].fail_on_crash);
    assert_string_equal(s->frames[1].description, "normal");
    shl_snapshot_free(s);
    conf_teardown(&c);
}

/* ---- New API - log with DLLogLevel ---- */

static void
test_new_api_log_with_dl_log_level__log_with_different_levels_writes_to_operation_log(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-lvl", true, true);
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_INFO, "Info message"));
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_WARNING, "Warning message"));
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_ERROR, "Error message"));
    char *t = conf_log(&c, "");
    assert_non_null(t);
    assert_non_null(strstr(t, "[INFO] Info message"));
    assert_non_null(strstr(t, "[WARNING] Warning message"));
    assert_non_null(strstr(t, "[ERROR] Error message"));
    free(t);
    conf_teardown(&c);
}

static void
test_new_api_log_with_dl_log_level__debug_log_writes_to_debug_log_only(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-lvl", true, true);
    assert_shl_ok(shl_op_debug_log(c.op, "Debug message"));
    char *t = conf_log(&c, ".debug");
    assert_non_null(t);
    assert_non_null(strstr(t, "Debug message"));
    free(t);
    t = conf_log(&c, "");
    assert_non_null(t);
    assert_null(strstr(t, "Debug message"));
    free(t);
    conf_teardown(&c);
}

/* ---- failCall ---- */

static void
test_fail_call__fail_call_removes_call_frame_and_logs_error(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-fail", true, true);
    _Atomic bool cleaned = false;
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "will fail";
    co.callbacks.on_cleanup = on_cleanup_flag;
    co.callbacks.user = (void *)&cleaned;
    shl_call *call = NULL;
    assert_shl_ok(shl_call_start(c.op, &co, &call));
    assert_int_equal(conf_cached_frames(c.op), 1);
    assert_shl_ok(shl_call_fail(call, "Test error"));
    assert_int_equal(conf_cached_frames(c.op), 0);
    assert_true(atomic_load(&cleaned));
    /* the failOnCrash call failed the operation, which is archived at
     * once: the log is read where it is (live or archived) */
    assert_true(conf_log_has(&c, "", "CALL_FAILED", 2000));
    assert_true(conf_log_has(&c, "", "Test error", 2000));
    conf_leave_failed(&c);
    conf_teardown(&c);
}

static void
test_fail_call__fail_call_signals_operation_failure_when_fail_on_crash_is_true(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-fail", false, true);
    shl_call *call = conf_call(c.op, "will crash", true);
    assert_shl_ok(shl_call_fail(call, "Crash reason"));
    shl_failed_info info;
    assert_int_equal(shl_op_wait_failure(c.op, 2000, &info), 0);
    bool found = false;
    for (uint32_t i = 0; i < info.crashed_call_count; i++)
        found |= !strcmp(info.crashed_call_ids[i], shl_call_id(call));
    assert_true(found);
    assert_non_null(strstr(info.reason, "Crash reason"));
    conf_leave_failed(&c);
    conf_teardown(&c);
}

/* ---- endCall behavior ---- */

static void
test_end_call_behavior__end_call_removes_call_frame_and_logs_duration(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-endc", true, true);
    shl_call *call = conf_call(c.op, "will end normally", true);
    assert_int_equal(conf_cached_frames(c.op), 1);
    conf_work_for(10);
    assert_shl_ok(shl_call_end(call, NULL));
    assert_int_equal(conf_cached_frames(c.op), 0);
    assert_true(conf_log_has(&c, "", "CALL_ENDED", 100));
    conf_teardown(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_new_api_start_call_end_call__start_call_adds_call_frame_with_ledger_generated_call_id),
        cmocka_unit_test(
            test_new_api_start_call_end_call__start_call_call_id_has_correct_format),
        cmocka_unit_test(
            test_new_api_start_call_end_call__start_call_with_callback_for_cleanup),
        cmocka_unit_test(
            test_new_api_start_call_end_call__end_call_removes_matching_call_frame),
        cmocka_unit_test(
            test_new_api_start_call_end_call__end_call_removes_correct_frame_when_multiple_exist),
        cmocka_unit_test(
            test_new_api_start_call_end_call__start_call_fail_on_crash_defaults_to_true),
        cmocka_unit_test(
            test_new_api_start_call_end_call__start_call_fail_on_crash_can_be_set_to_false),
        cmocka_unit_test(
            test_new_api_start_call_end_call__start_call_fail_on_crash_is_persisted_and_restored),
        cmocka_unit_test(
            test_new_api_log_with_dl_log_level__log_with_different_levels_writes_to_operation_log),
        cmocka_unit_test(
            test_new_api_log_with_dl_log_level__debug_log_writes_to_debug_log_only),
        cmocka_unit_test(
            test_fail_call__fail_call_removes_call_frame_and_logs_error),
        cmocka_unit_test(
            test_fail_call__fail_call_signals_operation_failure_when_fail_on_crash_is_true),
        cmocka_unit_test(
            test_end_call_behavior__end_call_removes_call_frame_and_logs_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
