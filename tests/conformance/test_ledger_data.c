/*
 * test_ledger_data.c: the original's data-structure groups (LedgerData,
 * CallFrame, TempResource, LedgerData edge cases, StackFrame heartbeat age,
 * HeartbeatError, DLLogLevel extension) ported to the snapshot's JSON
 * (shl_snapshot_to_json / shl_snapshot_from_json), which is the C form of
 * LedgerData.toJson / fromJson.
 */
#include "conf.h"

static shl_snapshot *
new_snap(const char *opid, const char *initiator)
{
    shl_snapshot *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    snprintf(s->operation_id, sizeof(s->operation_id), "%s", opid);
    snprintf(s->initiator_id, sizeof(s->initiator_id), "%s", initiator);
    s->start_time_us = shl_test_wall_us();
    s->last_heartbeat_us = s->start_time_us;
    return s;
}

static shl_call_frame *
add_frame(shl_snapshot *s, const char *pid, const char *call, int32_t p)
{
    s->frames = realloc(s->frames, (s->frame_count + 1) * sizeof(*s->frames));
    assert_non_null(s->frames);
    shl_call_frame *f = &s->frames[s->frame_count++];
    memset(f, 0, sizeof(*f));
    snprintf(f->participant_id, sizeof(f->participant_id), "%s", pid);
    snprintf(f->call_id, sizeof(f->call_id), "%s", call);
    f->pid = p;
    f->start_time_us = shl_test_wall_us();
    f->last_heartbeat_us = f->start_time_us;
    f->fail_on_crash = true;
    return f;
}

static shl_snapshot *
round_trip(const shl_snapshot *s)
{
    char *text = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &text));
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &r));
    free(text);
    return r;
}

/* local wall time for (y, m, d, H, M, S), in microseconds */
static int64_t
local_us(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s, .tm_isdst = -1};
    return (int64_t)mktime(&tm) * 1000000;
}

static void
iso_local_ago(char *buf, size_t cap, int seconds_ago)
{
    time_t t = time(NULL) - seconds_ago;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%S.000", &tm);
}

/* ---- LedgerData ---- */

static void
test_ledger_data__can_be_serialized_to_json_and_back(void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("test_op_1", "cli");
    s->last_heartbeat_us = local_us(2026, 1, 20, 12, 0, 0);
    s->aborted = false;
    shl_snapshot *r = round_trip(s);
    assert_string_equal(r->operation_id, "test_op_1");
    assert_string_equal(r->initiator_id, "cli");
    assert_false(r->aborted);
    time_t t = (time_t)(r->last_heartbeat_us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    assert_int_equal(tm.tm_year + 1900, 2026);
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

static void
test_ledger_data__handles_call_frames_correctly(void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("test_op_1", "cli");
    add_frame(s, "cli", "call-1", 1234);
    add_frame(s, "bridge", "call-2", 5678);
    shl_snapshot *r = round_trip(s);
    assert_int_equal(r->frame_count, 2);
    assert_string_equal(r->frames[0].participant_id, "cli");
    assert_string_equal(r->frames[1].participant_id, "bridge");
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

static void
test_ledger_data__handles_temp_resources_correctly(void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("test_op_1", "cli");
    s->resources = calloc(1, sizeof(*s->resources));
    assert_non_null(s->resources);
    s->resource_count = 1;
    snprintf(s->resources[0].path, sizeof(s->resources[0].path),
             "/tmp/file1.txt");
    s->resources[0].owner = 1234;
    s->resources[0].registered_at_us = shl_test_wall_us();
    shl_snapshot *r = round_trip(s);
    assert_int_equal(r->resource_count, 1);
    assert_string_equal(r->resources[0].path, "/tmp/file1.txt");
    assert_int_equal(r->resources[0].owner, 1234);
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

static void
test_ledger_data__is_empty_returns_true_when_call_frames_and_temp_resources_are_empty(
    void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("test", "cli");
    assert_true(shl_snapshot_is_empty(s));
    add_frame(s, "test", "test", 123);
    assert_false(shl_snapshot_is_empty(s));
    shl_snapshot_free(s);
}

/* ---- CallFrame ---- */

static void
test_call_frame__can_be_serialized_to_json_and_back(void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("op", "cli");
    shl_call_frame *f = add_frame(s, "test_participant", "test_call", 12345);
    f->start_time_us = local_us(2026, 1, 20, 12, 0, 0);
    shl_snapshot *r = round_trip(s);
    assert_string_equal(r->frames[0].participant_id, "test_participant");
    assert_string_equal(r->frames[0].call_id, "test_call");
    assert_int_equal(r->frames[0].pid, 12345);
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

static void
test_call_frame__fail_on_crash_defaults_to_true_and_is_serialized(void **state)
{
    (void)state;
    shl_call_opts co;
    shl_call_opts_init(&co);
    assert_true(co.fail_on_crash); /* the default */
    shl_snapshot *s = new_snap("op", "cli");
    add_frame(s, "test", "call", 100);
    char *text = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, SHL_JSON_COMPACT, &text));
    assert_non_null(strstr(text, "\"failOnCrash\":true"));
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &r));
    assert_true(r->frames[0].fail_on_crash);
    free(text);
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

static void
test_call_frame__fail_on_crash_can_be_set_to_false_and_is_preserved(
    void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("op", "cli");
    add_frame(s, "test", "call", 100)->fail_on_crash = false;
    char *text = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, SHL_JSON_COMPACT, &text));
    assert_non_null(strstr(text, "\"failOnCrash\":false"));
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &r));
    assert_false(r->frames[0].fail_on_crash);
    free(text);
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

static void
test_call_frame__fail_on_crash_defaults_to_true_when_missing_from_json(
    void **state)
{
    (void)state;
    char iso[64], json[512];
    iso_local_ago(iso, sizeof(iso), 0);
    snprintf(json, sizeof(json),
             "{\"operationId\":\"op\",\"initiatorId\":\"cli\","
             "\"callFrames\":[{\"participantId\":\"test\",\"callId\":"
             "\"call\",\"pid\":100,\"startTime\":\"%s\"}]}",
             iso);
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(json, &r));
    assert_int_equal(r->frame_count, 1);
    assert_true(r->frames[0].fail_on_crash);
    shl_snapshot_free(r);
}

/* ---- TempResource ---- */

static void
test_temp_resource__can_be_serialized_to_json_and_back(void **state)
{
    (void)state;
    shl_snapshot *s = new_snap("op", "cli");
    s->resources = calloc(1, sizeof(*s->resources));
    assert_non_null(s->resources);
    s->resource_count = 1;
    snprintf(s->resources[0].path, sizeof(s->resources[0].path),
             "/tmp/test.txt");
    s->resources[0].owner = 9999;
    s->resources[0].registered_at_us = local_us(2026, 1, 20, 12, 0, 0);
    shl_snapshot *r = round_trip(s);
    assert_string_equal(r->resources[0].path, "/tmp/test.txt");
    assert_int_equal(r->resources[0].owner, 9999);
    shl_snapshot_free(r);
    shl_snapshot_free(s);
}

/* ---- LedgerData edge cases ---- */

static void
test_ledger_data_edge_cases__from_json_with_null_operation_state(void **state)
{
    (void)state;
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(
        "{\"operationId\":\"test\",\"initiatorId\":\"cli\"}", &r));
    assert_int_equal(r->state, SHL_OP_RUNNING);
    shl_snapshot_free(r);
}

static void
test_ledger_data_edge_cases__from_json_with_missing_fields(void **state)
{
    (void)state;
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(
        "{\"operationId\":\"test\",\"stack\":[],\"tempResources\":[]}", &r));
    assert_string_equal(r->initiator_id, "unknown");
    shl_snapshot_free(r);
}

/* ---- StackFrame heartbeat age ---- */

static void
test_stack_frame_heartbeat_age__heartbeat_age_ms_calculates_correctly(
    void **state)
{
    (void)state;
    char iso[64], json[640];
    iso_local_ago(iso, sizeof(iso), 5);
    snprintf(json, sizeof(json),
             "{\"operationId\":\"op\",\"initiatorId\":\"cli\","
             "\"callFrames\":[{\"participantId\":\"test\",\"callId\":"
             "\"call\",\"pid\":100,\"startTime\":\"%s\","
             "\"lastHeartbeat\":\"%s\"}]}",
             iso, iso);
    shl_snapshot *r = NULL;
    assert_shl_ok(shl_snapshot_from_json(json, &r));
    assert_true(r->frames[0].heartbeat_age_ms >= 5000);
    shl_snapshot_free(r);
}

/* ---- HeartbeatError ---- */

static void
test_heartbeat_error__all_error_types_can_be_created(void **state)
{
    (void)state;
    assert_string_equal(shl_heartbeat_error_type_name(SHL_HB_LEDGER_NOT_FOUND),
                        "ledgerNotFound");
    assert_string_equal(shl_heartbeat_error_type_name(SHL_HB_ABORT_FLAG_SET),
                        "abortFlagSet");
    assert_string_equal(shl_heartbeat_error_type_name(SHL_HB_HEARTBEAT_STALE),
                        "heartbeatStale");
    assert_string_equal(shl_heartbeat_error_type_name(SHL_HB_IO_ERROR),
                        "ioError");
}

/* ---- DLLogLevel extension ---- */

static void
test_dl_log_level_extension__all_log_levels_have_correct_name(void **state)
{
    (void)state;
    assert_string_equal(shl_log_level_name(SHL_LOG_DEBUG), "DEBUG");
    assert_string_equal(shl_log_level_name(SHL_LOG_INFO), "INFO");
    assert_string_equal(shl_log_level_name(SHL_LOG_WARNING), "WARNING");
    assert_string_equal(shl_log_level_name(SHL_LOG_ERROR), "ERROR");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ledger_data__can_be_serialized_to_json_and_back),
        cmocka_unit_test(test_ledger_data__handles_call_frames_correctly),
        cmocka_unit_test(test_ledger_data__handles_temp_resources_correctly),
        cmocka_unit_test(
            test_ledger_data__is_empty_returns_true_when_call_frames_and_temp_resources_are_empty),
        cmocka_unit_test(test_call_frame__can_be_serialized_to_json_and_back),
        cmocka_unit_test(
            test_call_frame__fail_on_crash_defaults_to_true_and_is_serialized),
        cmocka_unit_test(
            test_call_frame__fail_on_crash_can_be_set_to_false_and_is_preserved),
        cmocka_unit_test(
            test_call_frame__fail_on_crash_defaults_to_true_when_missing_from_json),
        cmocka_unit_test(
            test_temp_resource__can_be_serialized_to_json_and_back),
        cmocka_unit_test(
            test_ledger_data_edge_cases__from_json_with_null_operation_state),
        cmocka_unit_test(
            test_ledger_data_edge_cases__from_json_with_missing_fields),
        cmocka_unit_test(
            test_stack_frame_heartbeat_age__heartbeat_age_ms_calculates_correctly),
        cmocka_unit_test(test_heartbeat_error__all_error_types_can_be_created),
        cmocka_unit_test(
            test_dl_log_level_extension__all_log_levels_have_correct_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
