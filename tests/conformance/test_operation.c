/*
 * test_operation.c: the original's Operation groups (createCallFrame,
 * deleteCallFrame, registerTempResource, unregisterTempResource,
 * setAbortFlag, checkAbort, triggerAbort, complete, log), Operation
 * (additional coverage), getOperationState and setOperationState,
 * Operation.startTime, Ledger onLogLine callback, createOperation with
 * generated ID and Backup cleanup with maxBackups. createCallFrame /
 * deleteCallFrame (caller-chosen call ids) are startCall / end here: the
 * call id is always generated. Cases that read a file right after a change
 * run with sync_files.
 */
#include <dirent.h>

#include "conf.h"

/* ---- Operation / createCallFrame ---- */

static void
test_operation_create_call_frame__adds_call_frame_to_operation_file(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-ccf", true, true);
    shl_call *call = conf_call(c.op, NULL, true);
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(call));
    assert_string_equal(s->frames[0].participant_id, "test");
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_operation_create_call_frame__updates_last_heartbeat_timestamp(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-ccf", true, true);
    shl_snapshot *before = conf_json(&c);
    int64_t t = shl_test_wall_us();
    assert_true(SHL_WAIT_FOR(shl_test_wall_us() >= t + 10000, 1000));
    (void)conf_call(c.op, NULL, true);
    shl_snapshot *after = conf_json(&c);
    assert_true(after->last_heartbeat_us > before->last_heartbeat_us);
    shl_snapshot_free(before);
    shl_snapshot_free(after);
    conf_teardown(&c);
}

static void
test_operation_create_call_frame__updates_cached_data(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-ccf", false, true);
    assert_int_equal(conf_cached_frames(c.op), 0);
    (void)conf_call(c.op, NULL, true);
    assert_int_equal(conf_cached_frames(c.op), 1);
    conf_teardown(&c);
}

/* ---- Operation / deleteCallFrame ---- */

static void
test_operation_delete_call_frame__removes_call_frame_from_operation_file(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-dcf", true, true);
    shl_call *call = conf_call(c.op, NULL, true);
    assert_shl_ok(shl_call_end(call, NULL));
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_operation_delete_call_frame__removes_correct_frame_when_multiple_exist(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-dcf", true, true);
    shl_call *c1 = conf_call(c.op, NULL, true);
    shl_call *c2 = conf_call(c.op, NULL, true);
    assert_shl_ok(shl_call_end(c1, NULL));
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(c2));
    shl_snapshot_free(s);
    conf_teardown(&c);
}

/* ---- Operation / registerTempResource, unregisterTempResource ---- */

static void
test_operation_register_temp_resource__adds_temp_resource_to_operation_file(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-tmp", true, true);
    assert_shl_ok(shl_op_register_temp_resource(c.op, "/tmp/test.txt"));
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/test.txt");
    shl_snapshot_free(s);
    assert_int_equal(shl_op_unregister_temp_resource(c.op, "/tmp/test.txt"),
                     1);
    conf_teardown(&c);
}

static void
test_operation_register_temp_resource__can_register_multiple_resources(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-tmp", true, true);
    assert_shl_ok(shl_op_register_temp_resource(c.op, "/tmp/file1.txt"));
    assert_shl_ok(shl_op_register_temp_resource(c.op, "/tmp/file2.txt"));
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->resource_count, 2);
    shl_snapshot_free(s);
    (void)shl_op_unregister_temp_resource(c.op, "/tmp/file1.txt");
    (void)shl_op_unregister_temp_resource(c.op, "/tmp/file2.txt");
    conf_teardown(&c);
}

static void
test_operation_unregister_temp_resource__removes_temp_resource_from_operation_file(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-tmp", true, true);
    assert_shl_ok(shl_op_register_temp_resource(c.op, "/tmp/test.txt"));
    assert_int_equal(shl_op_unregister_temp_resource(c.op, "/tmp/test.txt"),
                     1);
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->resource_count, 0);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_operation_unregister_temp_resource__only_removes_matching_resource(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-tmp", true, true);
    assert_shl_ok(shl_op_register_temp_resource(c.op, "/tmp/file1.txt"));
    assert_shl_ok(shl_op_register_temp_resource(c.op, "/tmp/file2.txt"));
    assert_int_equal(shl_op_unregister_temp_resource(c.op, "/tmp/file1.txt"),
                     1);
    shl_snapshot *s = conf_json(&c);
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/file2.txt");
    shl_snapshot_free(s);
    (void)shl_op_unregister_temp_resource(c.op, "/tmp/file2.txt");
    conf_teardown(&c);
}

/* ---- Operation / setAbortFlag, checkAbort ---- */

static void
test_operation_set_abort_flag__sets_abort_flag_in_operation_file(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-abort", true, true);
    assert_shl_ok(shl_op_set_abort_flag(c.op, true));
    shl_snapshot *s = conf_json(&c);
    assert_true(s->aborted);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_operation_set_abort_flag__can_clear_abort_flag(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-abort", true, true);
    assert_shl_ok(shl_op_set_abort_flag(c.op, true));
    assert_shl_ok(shl_op_set_abort_flag(c.op, false));
    shl_snapshot *s = conf_json(&c);
    assert_false(s->aborted);
    shl_snapshot_free(s);
    conf_teardown(&c);
}

static void
test_operation_check_abort__returns_false_when_not_aborted(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-abort", false, true);
    assert_int_equal(shl_op_check_abort(c.op), 0);
    conf_teardown(&c);
}

static void
test_operation_check_abort__returns_true_when_aborted(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-abort", false, true);
    assert_shl_ok(shl_op_set_abort_flag(c.op, true));
    assert_int_equal(shl_op_check_abort(c.op), 1);
    conf_teardown(&c);
}

/* ---- Operation / triggerAbort ---- */

static void
test_operation_trigger_abort__sets_is_aborted_to_true(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-trig", false, true);
    assert_false(shl_op_is_aborted(c.op));
    shl_op_trigger_abort(c.op);
    assert_true(shl_op_is_aborted(c.op));
    conf_teardown(&c);
}

static void
on_abort_cb(shl_op *op, void *user)
{
    (void)op;
    atomic_store((_Atomic bool *)user, true);
}

static void
test_operation_trigger_abort__completes_on_abort_future(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-trig", false, false);
    _Atomic bool done = false;
    shl_op_callbacks cb = {.on_abort = on_abort_cb, .user = (void *)&done};
    assert_shl_ok(shl_op_create(c.l, NULL, &cb, &c.op));
    snprintf(c.id, sizeof(c.id), "%s", shl_op_id(c.op));
    shl_op_trigger_abort(c.op);
    assert_true(SHL_WAIT_FOR(atomic_load(&done), 1000));
    assert_int_equal(shl_op_wait_abort(c.op, 1000), 0);
    conf_teardown(&c);
}

/* ---- Operation / complete ---- */

static void
test_operation_complete__moves_operation_file_to_backup_folder(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-compl", false, true);
    assert_shl_ok(shl_op_complete(c.op));
    c.op = NULL;
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.json");
    assert_false(conf_exists(p));
    snprintf(p, sizeof(p), "%s/backup", c.base);
    assert_true(conf_exists(p));
    snprintf(p, sizeof(p), "%s/backup/%s", c.base, c.id);
    assert_true(conf_exists(p));
    snprintf(p, sizeof(p), "%s/backup/%s/operation.json", c.base, c.id);
    assert_true(conf_exists(p));
    conf_teardown(&c);
}

static void
test_operation_complete__sets_operation_state_to_completed_in_backup_file(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-compl", false, true);
    assert_shl_ok(shl_op_complete(c.op));
    c.op = NULL;
    char p[1024];
    snprintf(p, sizeof(p), "%s/backup/%s/operation.json", c.base, c.id);
    char *t = shl_test_slurp(p, NULL);
    assert_non_null(t);
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_snapshot_from_json(t, &s));
    assert_int_equal(s->state, SHL_OP_COMPLETED);
    shl_snapshot_free(s);
    free(t);
    conf_teardown(&c);
}

static void
test_operation_complete__unregisters_operation_from_ledger_after_complete(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-compl", false, true);
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.json");
    assert_true(conf_exists(p));
    assert_shl_ok(shl_op_complete(c.op));
    c.op = NULL;
    assert_false(conf_exists(p));
    shl_op *again = NULL;
    assert_int_not_equal(shl_op_join(c.l, c.id, NULL, &again), 0);
    conf_teardown(&c);
}

static void
test_operation_complete__throws_if_not_initiator(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-compl", false, true);
    shl_ledger *l2 = NULL;
    assert_shl_ok(shl_ledger_open(&l2, c.base, "bridge", NULL));
    shl_op *p = NULL;
    assert_shl_ok(shl_op_join(l2, c.id, NULL, &p));
    assert_int_equal(shl_op_complete(p), SHL_ESTATE);
    assert_shl_ok(shl_op_leave(p, false));
    shl_ledger_close(l2);
    conf_teardown(&c);
}

/* ---- Operation / log ---- */

static void
test_operation_log__creates_log_file_with_entries(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-log", true, true);
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_INFO, "Test log line 1"));
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_INFO, "Test log line 2"));
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.log");
    char *t = shl_test_slurp(p, NULL);
    assert_non_null(t);
    assert_non_null(strstr(t, "Test log line 1"));
    assert_non_null(strstr(t, "Test log line 2"));
    free(t);
    conf_teardown(&c);
}

static void
test_operation_log__appends_to_existing_log_file(void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-log", true, true);
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_INFO, "Line 1"));
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_INFO, "Line 2"));
    assert_shl_ok(shl_op_log(c.op, SHL_LOG_INFO, "Line 3"));
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.log");
    char *t = shl_test_slurp(p, NULL);
    assert_non_null(t);
    size_t lines = 0;
    for (char *q = t; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 3);
    free(t);
    conf_teardown(&c);
}

/* ---- Operation (additional coverage) ---- */

static void
test_operation_additional_coverage__elapsed_formatted_returns_computed_elapsed_time(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-extra", false, true);
    char buf[32];
    assert_true(shl_op_elapsed_formatted(c.op, buf, sizeof(buf)) > 0);
    assert_true(shl_test_rx_match("^[0-9]{3}\\.[0-9]{3}$", buf));
    conf_work_for(10);
    assert_true(shl_op_elapsed_formatted(c.op, buf, sizeof(buf)) > 0);
    assert_true(shl_test_rx_match("^[0-9]{3}\\.[0-9]{3}$", buf));
    conf_teardown(&c);
}

static void
test_operation_additional_coverage__log_message_formats_with_timestamp_and_participant(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-extra", true, true);
    assert_shl_ok(shl_op_log_message(c.op, 1, "Test message"));
    char p[1024];
    conf_path(p, sizeof(p), &c, ".operation.log");
    char *t = shl_test_slurp(p, NULL);
    assert_non_null(t);
    assert_true(shl_test_rx_match("[0-9]{3}\\.[0-9]{3}", t));
    assert_non_null(strstr(t, "[test]"));
    assert_non_null(strstr(t, "Test message"));
    assert_non_null(strstr(t, "    "));
    free(t);
    conf_teardown(&c);
}

static void
test_operation_additional_coverage__stop_heartbeat_can_be_called_when_no_heartbeat_is_running(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-extra", false, true);
    shl_op_stop_heartbeat(c.op);
    shl_op_stop_heartbeat(c.op);
    conf_teardown(&c);
}

static void
test_operation_additional_coverage__last_change_timestamp_is_updated_on_modifications(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-extra", false, true);
    shl_snapshot *a = shl_test_snap(shl_ledger_reader(c.l), c.id);
    int64_t t = shl_test_wall_us();
    assert_true(SHL_WAIT_FOR(shl_test_wall_us() >= t + 10000, 1000));
    (void)conf_call(c.op, "test", true);
    shl_snapshot *b = shl_test_snap(shl_ledger_reader(c.l), c.id);
    assert_true(b->last_heartbeat_us > a->last_heartbeat_us);
    assert_true(b->change_count > a->change_count);
    shl_snapshot_free(a);
    shl_snapshot_free(b);
    conf_teardown(&c);
}

/* ---- getOperationState and setOperationState ---- */

static void
test_get_operation_state_and_set_operation_state__get_operation_state_returns_running_by_default(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-state", false, true);
    assert_int_equal(shl_op_get_state(c.op), SHL_OP_RUNNING);
    conf_teardown(&c);
}

static void
test_get_operation_state_and_set_operation_state__set_operation_state_changes_state(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-state", false, true);
    assert_shl_ok(shl_op_set_state(c.op, SHL_OP_CLEANUP));
    /* cleanup runs the cleanup protocol: the coordinator may have moved
     * it on to failed already */
    int st = shl_op_get_state(c.op);
    assert_true(st == SHL_OP_CLEANUP || st == SHL_OP_FAILED);
    assert_shl_ok(shl_op_set_state(c.op, SHL_OP_FAILED));
    assert_int_equal(shl_op_get_state(c.op), SHL_OP_FAILED);
    conf_leave_failed(&c); /* deliberate: complete after failed refused */
    conf_teardown(&c);
}

static void
test_get_operation_state_and_set_operation_state__set_operation_state_logs_state_change(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-state", true, true);
    assert_shl_ok(shl_op_set_state(c.op, SHL_OP_CLEANUP));
    assert_true(conf_log_has(&c, "", "OPERATION_STATE_CHANGED", 2000));
    assert_true(conf_log_has(&c, "", "cleanup", 2000));
    assert_true(SHL_WAIT_FOR(shl_op_get_state(c.op) == SHL_OP_FAILED, 5000));
    conf_leave_failed(&c);
    conf_teardown(&c);
}

/* ---- Ledger onLogLine callback ---- */

struct lines {
    pthread_mutex_t mu;
    int n;
    char text[8][256];
};

static void
on_line(const char *line, void *user)
{
    struct lines *ls = user;
    pthread_mutex_lock(&ls->mu);
    if (ls->n < 8)
        snprintf(ls->text[ls->n], sizeof(ls->text[0]), "%s", line);
    ls->n++;
    pthread_mutex_unlock(&ls->mu);
}

static void
test_ledger_on_log_line_callback__on_log_line_is_called_for_each_log_entry(
    void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-logline");
    struct lines ls = {.mu = PTHREAD_MUTEX_INITIALIZER};
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.callbacks.on_log_line = on_line;
    o.callbacks.user = &ls;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "First message"));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "Second message"));
    pthread_mutex_lock(&ls.mu);
    assert_int_equal(ls.n, 2);
    assert_non_null(strstr(ls.text[0], "First message"));
    assert_non_null(strstr(ls.text[1], "Second message"));
    pthread_mutex_unlock(&ls.mu);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- Operation.startTime ---- */

static void
test_operation_start_time__start_time_is_set_when_operation_is_created(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, false);
    int64_t before = shl_test_wall_us();
    assert_true(SHL_WAIT_FOR(shl_test_wall_us() >= before + 10000, 1000));
    assert_shl_ok(shl_op_create(c.l, NULL, NULL, &c.op));
    int64_t t = shl_test_wall_us();
    assert_true(SHL_WAIT_FOR(shl_test_wall_us() >= t + 10000, 1000));
    int64_t after = shl_test_wall_us();
    assert_true(shl_op_start_time_us(c.op) > before);
    assert_true(shl_op_start_time_us(c.op) < after);
    conf_teardown(&c);
}

static void
test_operation_start_time__elapsed_duration_returns_correct_duration(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    conf_work_for(50);
    int64_t ms = shl_op_elapsed_ns(c.op) / 1000000;
    assert_true(ms >= 50);
    assert_true(ms < 200 * shl_test_multiplier());
    conf_teardown(&c);
}

static void
test_operation_start_time__start_time_iso_returns_valid_iso_8601_string(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    char iso[64];
    assert_true(shl_op_start_time_iso(c.op, iso, sizeof(iso)) > 0);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    tm.tm_isdst = -1;
    int64_t parsed_s = (int64_t)mktime(&tm);
    int64_t start_s = shl_op_start_time_us(c.op) / 1000000;
    assert_true(llabs((long long)(parsed_s - start_s)) <= 1);
    conf_teardown(&c);
}

static void
test_operation_start_time__start_time_ms_returns_milliseconds_since_epoch(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    assert_int_equal(shl_op_start_time_ms(c.op),
                     shl_op_start_time_us(c.op) / 1000);
    conf_teardown(&c);
}

static void
test_operation_start_time__start_time_ms_can_be_used_to_reconstruct_start_time(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-start", false, true);
    int64_t ms = shl_op_start_time_ms(c.op);
    int64_t us = ms * 1000;
    assert_true(llabs((long long)(us - shl_op_start_time_us(c.op))) < 1000);
    conf_teardown(&c);
}

/* ---- New API - createOperation with generated ID ---- */

static void
test_new_api_create_operation_with_generated_id__create_operation_generates_operation_id(
    void **state)
{
    (void)state;
    struct conf c;
    conf_setup(&c, "conf-genid", false, true);
    assert_true(shl_test_rx_match(
        "^[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}-test-[A-Za-z0-9_]+$",
        c.id));
    conf_teardown(&c);
}

/* ---- Backup cleanup with maxBackups ---- */

static void
test_backup_cleanup_with_max_backups__max_backups_limits_number_of_backup_files(
    void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-maxb");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_backups = 3;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "test", &o));
    for (int i = 0; i < 5; i++) {
        shl_op *op = NULL;
        assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
        assert_shl_ok(shl_op_complete(op));
    }
    char p[700];
    snprintf(p, sizeof(p), "%s/backup", base);
    DIR *d = opendir(p);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    assert_true(n <= 3);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_operation_create_call_frame__adds_call_frame_to_operation_file),
        cmocka_unit_test(
            test_operation_create_call_frame__updates_last_heartbeat_timestamp),
        cmocka_unit_test(test_operation_create_call_frame__updates_cached_data),
        cmocka_unit_test(
            test_operation_delete_call_frame__removes_call_frame_from_operation_file),
        cmocka_unit_test(
            test_operation_delete_call_frame__removes_correct_frame_when_multiple_exist),
        cmocka_unit_test(
            test_operation_register_temp_resource__adds_temp_resource_to_operation_file),
        cmocka_unit_test(
            test_operation_register_temp_resource__can_register_multiple_resources),
        cmocka_unit_test(
            test_operation_unregister_temp_resource__removes_temp_resource_from_operation_file),
        cmocka_unit_test(
            test_operation_unregister_temp_resource__only_removes_matching_resource),
        cmocka_unit_test(
            test_operation_set_abort_flag__sets_abort_flag_in_operation_file),
        cmocka_unit_test(test_operation_set_abort_flag__can_clear_abort_flag),
        cmocka_unit_test(
            test_operation_check_abort__returns_false_when_not_aborted),
        cmocka_unit_test(test_operation_check_abort__returns_true_when_aborted),
        cmocka_unit_test(
            test_operation_trigger_abort__sets_is_aborted_to_true),
        cmocka_unit_test(
            test_operation_trigger_abort__completes_on_abort_future),
        cmocka_unit_test(
            test_operation_complete__moves_operation_file_to_backup_folder),
        cmocka_unit_test(
            test_operation_complete__sets_operation_state_to_completed_in_backup_file),
        cmocka_unit_test(
            test_operation_complete__unregisters_operation_from_ledger_after_complete),
        cmocka_unit_test(test_operation_complete__throws_if_not_initiator),
        cmocka_unit_test(test_operation_log__creates_log_file_with_entries),
        cmocka_unit_test(test_operation_log__appends_to_existing_log_file),
        cmocka_unit_test(
            test_operation_additional_coverage__elapsed_formatted_returns_computed_elapsed_time),
        cmocka_unit_test(
            test_operation_additional_coverage__log_message_formats_with_timestamp_and_participant),
        cmocka_unit_test(
            test_operation_additional_coverage__stop_heartbeat_can_be_called_when_no_heartbeat_is_running),
        cmocka_unit_test(
            test_operation_additional_coverage__last_change_timestamp_is_updated_on_modifications),
        cmocka_unit_test(
            test_get_operation_state_and_set_operation_state__get_operation_state_returns_running_by_default),
        cmocka_unit_test(
            test_get_operation_state_and_set_operation_state__set_operation_state_changes_state),
        cmocka_unit_test(
            test_get_operation_state_and_set_operation_state__set_operation_state_logs_state_change),
        cmocka_unit_test(
            test_ledger_on_log_line_callback__on_log_line_is_called_for_each_log_entry),
        cmocka_unit_test(
            test_operation_start_time__start_time_is_set_when_operation_is_created),
        cmocka_unit_test(
            test_operation_start_time__elapsed_duration_returns_correct_duration),
        cmocka_unit_test(
            test_operation_start_time__start_time_iso_returns_valid_iso_8601_string),
        cmocka_unit_test(
            test_operation_start_time__start_time_ms_returns_milliseconds_since_epoch),
        cmocka_unit_test(
            test_operation_start_time__start_time_ms_can_be_used_to_reconstruct_start_time),
        cmocka_unit_test(
            test_new_api_create_operation_with_generated_id__create_operation_generates_operation_id),
        cmocka_unit_test(
            test_backup_cleanup_with_max_backups__max_backups_limits_number_of_backup_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
