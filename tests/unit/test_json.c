/* test_json.c: operation JSON (shl_snapshot_to_json / _from_json) and the
 * timestamp parser, against our own output and the original's format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "files/json.h"
#include "shl_test.h"

/* A wall time with a non-zero microsecond part. */
#define T0 1769083200000123ll /* 2026-01-22T12:00:00.000123Z */

static shl_snapshot *
make_snapshot(void)
{
    shl_snapshot *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    strcpy(s->operation_id, "20260122T12:00:00.000-cli-a1b2c3d4");
    strcpy(s->initiator_id, "cli");
    strcpy(s->description, "build the world");
    s->has_description = true;
    s->start_time_us = T0;
    s->state = SHL_OP_FAILED;
    s->aborted = true;
    s->last_heartbeat_us = T0 + 5000000;
    s->detection_timestamp_us = T0 + 6000000;
    s->removal_timestamp_us = 0;
    s->frame_count = 2;
    s->frames = calloc(2, sizeof(shl_call_frame));
    for (int i = 0; i < 2; i++) {
        shl_call_frame *f = &s->frames[i];
        strcpy(f->participant_id, i ? "bridge" : "cli");
        snprintf(f->call_id, sizeof(f->call_id), "call_%s_%d_ab%02d",
                 f->participant_id, i + 1, i);
        f->pid = 1000 + i;
        f->start_time_us = T0 + 1000 * i;
        f->last_heartbeat_us = T0 + 2000000 + i;
        f->state = i ? SHL_FRAME_CLEANING_UP : SHL_FRAME_ACTIVE;
        f->has_description = i == 1;
        if (i == 1)
            strcpy(f->description, "say \"hi\"\n\ttab");
        f->fail_on_crash = i == 0;
        f->heartbeat_age_ms = 42 + i;
        f->session_id = 7 + (uint64_t)i;
    }
    s->resource_count = 1;
    s->resources = calloc(1, sizeof(shl_temp_resource));
    strcpy(s->resources[0].path, "/tmp/x y/z");
    s->resources[0].owner = 1000;
    s->resources[0].registered_at_us = T0 + 3000000;
    s->participant_count = 1;
    s->participants = calloc(1, sizeof(shl_participant_info));
    strcpy(s->participants[0].participant_id, "cli");
    s->participants[0].pid = 1000;
    s->participants[0].recorded_pid = 1000;
    s->participants[0].slot = 3;
    s->participants[0].generation = 9;
    s->participants[0].heartbeat_age_ms = 12;
    s->participants[0].alive = true;
    strcpy(s->failure.operation_id, s->operation_id);
    strcpy(s->failure.reason, "Call call_bridge_2_ab01 failed: boom");
    s->failure.failed_at_us = T0 + 7000000;
    s->failure.crashed_call_count = 1;
    strcpy(s->failure.crashed_call_ids[0], "call_bridge_2_ab01");
    return s;
}

static void
assert_same(const shl_snapshot *a, const shl_snapshot *b)
{
    assert_string_equal(a->operation_id, b->operation_id);
    assert_string_equal(a->initiator_id, b->initiator_id);
    assert_int_equal(a->has_description, b->has_description);
    if (a->has_description)
        assert_string_equal(a->description, b->description);
    assert_int_equal(a->start_time_us, b->start_time_us);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->aborted, b->aborted);
    assert_int_equal(a->last_heartbeat_us, b->last_heartbeat_us);
    assert_int_equal(a->detection_timestamp_us, b->detection_timestamp_us);
    assert_int_equal(a->removal_timestamp_us, b->removal_timestamp_us);
    assert_int_equal(a->frame_count, b->frame_count);
    for (size_t i = 0; i < a->frame_count; i++) {
        const shl_call_frame *x = &a->frames[i], *y = &b->frames[i];
        assert_string_equal(x->participant_id, y->participant_id);
        assert_string_equal(x->call_id, y->call_id);
        assert_int_equal(x->pid, y->pid);
        assert_int_equal(x->start_time_us, y->start_time_us);
        assert_int_equal(x->last_heartbeat_us, y->last_heartbeat_us);
        assert_int_equal(x->state, y->state);
        assert_int_equal(x->has_description, y->has_description);
        if (x->has_description)
            assert_string_equal(x->description, y->description);
        assert_int_equal(x->fail_on_crash, y->fail_on_crash);
        assert_int_equal(x->heartbeat_age_ms, y->heartbeat_age_ms);
        assert_int_equal(x->session_id, y->session_id);
    }
    assert_int_equal(a->resource_count, b->resource_count);
    for (size_t i = 0; i < a->resource_count; i++) {
        assert_string_equal(a->resources[i].path, b->resources[i].path);
        assert_int_equal(a->resources[i].owner, b->resources[i].owner);
        assert_int_equal(a->resources[i].registered_at_us,
                         b->resources[i].registered_at_us);
    }
    assert_int_equal(a->participant_count, b->participant_count);
    for (size_t i = 0; i < a->participant_count; i++) {
        const shl_participant_info *x = &a->participants[i],
                                   *y = &b->participants[i];
        assert_string_equal(x->participant_id, y->participant_id);
        assert_int_equal(x->pid, y->pid);
        assert_int_equal(x->recorded_pid, y->recorded_pid);
        assert_int_equal(x->slot, y->slot);
        assert_int_equal(x->generation, y->generation);
        assert_int_equal(x->heartbeat_age_ms, y->heartbeat_age_ms);
        assert_int_equal(x->alive, y->alive);
    }
    assert_string_equal(a->failure.reason, b->failure.reason);
    assert_int_equal(a->failure.failed_at_us, b->failure.failed_at_us);
    assert_int_equal(a->failure.crashed_call_count,
                     b->failure.crashed_call_count);
    for (uint32_t i = 0; i < a->failure.crashed_call_count; i++)
        assert_string_equal(a->failure.crashed_call_ids[i],
                            b->failure.crashed_call_ids[i]);
}

/* Position of "\"key\":" in text at or after `from`; fails if absent. */
static size_t
key_pos(const char *text, const char *key, size_t from)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(text + from, pat);
    if (!p)
        fail_msg("key %s not found after %zu in:\n%s", key, from, text);
    return (size_t)(p - text);
}

static void
test_json_round_trip(void **state)
{
    (void)state;
    shl_snapshot *s = make_snapshot();
    for (int compact = 0; compact < 2; compact++) {
        char *text = NULL;
        assert_shl_ok(
            shl_snapshot_to_json(s, compact ? SHL_JSON_COMPACT : 0, &text));
        assert_int_equal(strchr(text, '\n') != NULL, !compact);
        shl_snapshot *back = NULL;
        assert_shl_ok(shl_snapshot_from_json(text, &back));
        assert_same(s, back);
        /* and the text of the re-serialised copy is identical */
        char *again = NULL;
        assert_shl_ok(shl_snapshot_to_json(
            back, compact ? SHL_JSON_COMPACT : 0, &again));
        assert_string_equal(text, again);
        free(again);
        shl_snapshot_free(back);
        free(text);
    }
    shl_snapshot_free(s);
}

static void
test_json_key_order_and_spelling(void **state)
{
    (void)state;
    shl_snapshot *s = make_snapshot();
    char *text = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &text));
    /* top level, in the original's toJson order, then our extras */
    static const char *top[] = {
        "operationId",  "initiatorId",   "startTime",
        "operationState", "aborted",     "lastHeartbeat",
        "callFrames",   "tempResources", "detectionTimestamp",
        "removalTimestamp", "description", "participants",
        "failure"};
    /* top-level keys are indented by exactly two spaces */
    size_t at = 0;
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        char pat[80];
        snprintf(pat, sizeof(pat), "\n  \"%s\": ", top[i]);
        const char *p = strstr(text + at, pat);
        if (!p)
            fail_msg("top-level key %s missing or out of order:\n%s", top[i],
                     text);
        at = (size_t)(p - text) + 1;
    }
    assert_true(strncmp(text, "{\n  \"operationId\": ", 19) == 0);
    /* frame keys in CallFrame.toJson order, then the extras */
    static const char *fk[] = {"participantId", "callId",      "pid",
                               "startTime",     "lastHeartbeat", "state",
                               "description",   "resources",   "failOnCrash",
                               "heartbeatAgeMs", "sessionId"};
    size_t f0 = key_pos(text, "callFrames", 0);
    at = f0;
    for (size_t i = 0; i < sizeof(fk) / sizeof(fk[0]); i++)
        at = key_pos(text, fk[i], at) + 1;
    /* value spellings */
    assert_non_null(strstr(text, "\"operationState\": \"failed\""));
    assert_non_null(strstr(text, "\"state\": \"active\""));
    assert_non_null(strstr(text, "\"state\": \"cleaningUp\""));
    assert_non_null(strstr(text, "\"description\": null"));
    assert_non_null(strstr(text, "\"resources\": []"));
    assert_non_null(strstr(text, "\"removalTimestamp\": null"));
    assert_non_null(strstr(text, "\"aborted\": true"));
    assert_non_null(strstr(text, "\"failOnCrash\": false"));
    assert_non_null(strstr(text, "\"crashedCallIds\": [\n"));
    /* resource keys */
    at = key_pos(text, "tempResources", 0);
    at = key_pos(text, "path", at);
    at = key_pos(text, "owner", at);
    key_pos(text, "registeredAt", at);
    /* timestamps: local time, 6 fraction digits and an offset */
    char iso[64];
    assert_true(shl__format_iso(T0, iso, sizeof(iso)) > 0);
    char pat[96];
    snprintf(pat, sizeof(pat), "\"startTime\": \"%s\"", iso);
    assert_non_null(strstr(text, pat));
    assert_int_equal(strlen(iso), strlen("2026-01-22T12:00:00.000123+00:00"));
    assert_string_equal(iso + 19, strchr(iso, '.'));
    assert_memory_equal(iso + 19, ".000123", 7);
    free(text);
    /* a snapshot without failure writes "failure": null */
    s->state = SHL_OP_RUNNING;
    memset(&s->failure, 0, sizeof(s->failure));
    s->has_description = false;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &text));
    assert_non_null(strstr(text, "\"failure\": null"));
    assert_non_null(strstr(text, "\n  \"description\": null"));
    free(text);
    shl_snapshot_free(s);
}

/* A file exactly as the original writes it (JsonEncoder.withIndent, local
 * time without zone, 6 and 3 fraction digits). */
static const char original_fixture[] =
    "{\n"
    "  \"operationId\": \"20260122T12:00:00.000-cli-a1b2c3d4\",\n"
    "  \"initiatorId\": \"cli\",\n"
    "  \"startTime\": \"2026-01-22T12:00:00.000123\",\n"
    "  \"operationState\": \"running\",\n"
    "  \"aborted\": false,\n"
    "  \"lastHeartbeat\": \"2026-01-22T12:00:05.250\",\n"
    "  \"callFrames\": [\n"
    "    {\n"
    "      \"participantId\": \"cli\",\n"
    "      \"callId\": \"call_cli_1_0a1f\",\n"
    "      \"pid\": 4242,\n"
    "      \"startTime\": \"2026-01-22T12:00:01.000456\",\n"
    "      \"lastHeartbeat\": \"2026-01-22T12:00:05.250\",\n"
    "      \"state\": \"active\",\n"
    "      \"description\": \"Build step\",\n"
    "      \"resources\": [],\n"
    "      \"failOnCrash\": true\n"
    "    },\n"
    "    {\n"
    "      \"participantId\": \"bridge\",\n"
    "      \"callId\": \"call_bridge_1_ffff\",\n"
    "      \"pid\": 4343,\n"
    "      \"startTime\": \"2026-01-22T12:00:02.5\",\n"
    "      \"lastHeartbeat\": \"2026-01-22T12:00:04.000001\",\n"
    "      \"state\": \"crashed\",\n"
    "      \"description\": null,\n"
    "      \"resources\": [],\n"
    "      \"failOnCrash\": false\n"
    "    }\n"
    "  ],\n"
    "  \"tempResources\": [\n"
    "    {\n"
    "      \"path\": \"/tmp/build-1\",\n"
    "      \"owner\": 4242,\n"
    "      \"registeredAt\": \"2026-01-22T12:00:03.000789\"\n"
    "    }\n"
    "  ],\n"
    "  \"detectionTimestamp\": null,\n"
    "  \"removalTimestamp\": null\n"
    "}";

static int64_t
local_us(int y, int mo, int d, int h, int mi, int s, long us)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000000 + us;
}

static void
test_json_original_fixture(void **state)
{
    (void)state;
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_snapshot_from_json(original_fixture, &s));
    assert_string_equal(s->operation_id, "20260122T12:00:00.000-cli-a1b2c3d4");
    assert_string_equal(s->initiator_id, "cli");
    assert_int_equal(s->state, SHL_OP_RUNNING);
    assert_false(s->aborted);
    assert_int_equal(s->start_time_us, local_us(2026, 1, 22, 12, 0, 0, 123));
    assert_int_equal(s->last_heartbeat_us,
                     local_us(2026, 1, 22, 12, 0, 5, 250000));
    assert_int_equal(s->frame_count, 2);
    assert_string_equal(s->frames[0].call_id, "call_cli_1_0a1f");
    assert_int_equal(s->frames[0].pid, 4242);
    assert_int_equal(s->frames[0].start_time_us,
                     local_us(2026, 1, 22, 12, 0, 1, 456));
    assert_true(s->frames[0].has_description);
    assert_string_equal(s->frames[0].description, "Build step");
    assert_true(s->frames[0].fail_on_crash);
    assert_int_equal(s->frames[1].state, SHL_FRAME_CRASHED);
    assert_false(s->frames[1].has_description);
    assert_false(s->frames[1].fail_on_crash);
    assert_int_equal(s->frames[1].start_time_us,
                     local_us(2026, 1, 22, 12, 0, 2, 500000));
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/build-1");
    assert_int_equal(s->resources[0].owner, 4242);
    assert_int_equal(s->detection_timestamp_us, 0);
    assert_int_equal(s->removal_timestamp_us, 0);
    assert_false(s->has_description);
    assert_int_equal(s->participant_count, 0);

    /* written back: the original's keys keep their values (timestamps now
     * carry an offset, which DateTime.parse also reads) */
    char *text = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &text));
    shl_snapshot *back = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &back));
    assert_same(s, back);
    shl_snapshot_free(back);
    free(text);
    shl_snapshot_free(s);
}

static void
test_json_original_defaults(void **state)
{
    (void)state;
    shl_snapshot *s = NULL;
    int64_t before = shl__wall_us();
    /* the legacy "stack" key, a null operationState, missing fields */
    assert_shl_ok(shl_snapshot_from_json(
        "{\"operationId\": \"old\", \"operationState\": null, \"stack\": "
        "[{\"participantId\": \"p\", \"callId\": \"c\", \"pid\": 1, "
        "\"startTime\": \"2026-01-22T12:00:00.000\"}]}",
        &s));
    int64_t after = shl__wall_us();
    assert_string_equal(s->initiator_id, "unknown");
    assert_int_equal(s->state, SHL_OP_RUNNING);
    assert_false(s->aborted);
    assert_in_range(s->start_time_us, before, after);
    assert_in_range(s->last_heartbeat_us, before, after);
    assert_int_equal(s->frame_count, 1);
    assert_int_equal(s->frames[0].state, SHL_FRAME_ACTIVE);
    assert_true(s->frames[0].fail_on_crash);
    assert_false(s->frames[0].has_description);
    assert_in_range(s->frames[0].last_heartbeat_us, before, after);
    assert_int_equal(s->resource_count, 0);
    shl_snapshot_free(s);

    /* "callFrames" wins over "stack" */
    assert_shl_ok(shl_snapshot_from_json(
        "{\"operationId\": \"x\", \"callFrames\": [], \"stack\": "
        "[{\"participantId\": \"p\", \"callId\": \"c\", \"pid\": 1, "
        "\"startTime\": \"2026-01-22T12:00:00.000\"}]}",
        &s));
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);
}

static void
test_json_rejects(void **state)
{
    (void)state;
    shl_snapshot *s = NULL;
    assert_int_equal(shl_snapshot_from_json("{not json", &s), SHL_ECORRUPT);
    assert_int_equal(shl_snapshot_from_json("[]", &s), SHL_ECORRUPT);
    assert_int_equal(shl_snapshot_from_json("{}", &s), SHL_ECORRUPT);
    assert_non_null(strstr(shl_errmsg(), "operationId"));
    assert_int_equal(
        shl_snapshot_from_json("{\"operationId\": \"x\", \"callFrames\": "
                               "[{\"participantId\": \"p\", \"pid\": 1, "
                               "\"startTime\": \"2026-01-22T12:00:00\"}]}",
                               &s),
        SHL_ECORRUPT);
    assert_non_null(strstr(shl_errmsg(), "callId"));
    assert_int_equal(
        shl_snapshot_from_json(
            "{\"operationId\": \"x\", \"operationState\": \"weird\"}", &s),
        SHL_ECORRUPT);
    assert_int_equal(
        shl_snapshot_from_json(
            "{\"operationId\": \"x\", \"startTime\": \"yesterday\"}", &s),
        SHL_ECORRUPT);
    assert_int_equal(
        shl_snapshot_from_json("{\"operationId\": \"x\", \"aborted\": 1}", &s),
        SHL_ECORRUPT);
    assert_null(s);
    assert_int_equal(shl_snapshot_from_json(NULL, &s), -EINVAL);
    assert_int_equal(shl_snapshot_to_json(NULL, 0, NULL), -EINVAL);
}

static void
test_json_parse_iso(void **state)
{
    (void)state;
    int64_t us;
    assert_int_equal(shl__parse_iso("2026-01-22T12:00:00.000123Z", &us), 0);
    assert_int_equal(us, T0);
    assert_int_equal(shl__parse_iso("2026-01-22T13:00:00.000123+01:00", &us),
                     0);
    assert_int_equal(us, T0);
    assert_int_equal(shl__parse_iso("2026-01-22T06:30:00.000123-0530", &us),
                     0);
    assert_int_equal(us, T0);
    assert_int_equal(shl__parse_iso("2026-01-22T12:00:00.123Z", &us), 0);
    assert_int_equal(us, T0 - 123 + 123000);
    assert_int_equal(shl__parse_iso("2026-01-22 12:00:00Z", &us), 0);
    assert_int_equal(us, T0 - 123);
    assert_int_equal(shl__parse_iso("2026-01-22T12:00:00.123456789Z", &us),
                     0);
    assert_int_equal(us, T0 - 123 + 123456);
    assert_int_equal(shl__parse_iso("2026-01-22T12:00:00.000123", &us), 0);
    assert_int_equal(us, local_us(2026, 1, 22, 12, 0, 0, 123));
    /* our own output parses back to the same instant, DST or not */
    int64_t t[] = {T0, 1751371200654321ll /* July */, 0 + 1};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char buf[64];
        assert_true(shl__format_iso(t[i], buf, sizeof(buf)) > 0);
        assert_int_equal(shl__parse_iso(buf, &us), 0);
        assert_int_equal(us, t[i]);
    }
    static const char *badv[] = {"", "2026", "2026-01-22", "2026-01-22T12:00",
                                 "2026-13-01T00:00:00", "2026-01-22T12:00:00.",
                                 "2026-01-22T12:00:00Zjunk",
                                 "2026-01-22T12:00:00+1"};
    for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++)
        assert_int_equal(shl__parse_iso(badv[i], &us), -EINVAL);
}

/* A live operation: the reader's snapshot serialises and parses back. */
static void
test_json_live_snapshot(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "json");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "json test", NULL, &op));
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "step one";
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, &co, &c));
    assert_shl_ok(shl_op_register_temp_resource(op, "/tmp/json-res"));
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(l), shl_op_id(op), &s));
    char *text = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &text));
    shl_snapshot *back = NULL;
    assert_shl_ok(shl_snapshot_from_json(text, &back));
    assert_same(s, back);
    assert_int_equal(back->frame_count, 1);
    assert_string_equal(back->frames[0].call_id, shl_call_id(c));
    assert_string_equal(back->frames[0].description, "step one");
    assert_string_equal(back->description, "json test");
    assert_int_equal(back->participant_count, 1);
    assert_string_equal(back->participants[0].participant_id, "cli");
    assert_int_equal(back->participants[0].pid, getpid());
    assert_non_null(strstr(text, "\"failure\": null"));
    shl_snapshot_free(back);
    shl_snapshot_free(s);
    free(text);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_json_atomic_write(void **state)
{
    (void)state;
    char base[512], path[600];
    shl_test_base(base, sizeof(base), "jsonw");
    shl_ledger *l = NULL; /* creates the directory */
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    snprintf(path, sizeof(path), "%s/x.json", base);
    assert_int_equal(shl__write_file_atomic(path, "abc", 3), 0);
    assert_int_equal(shl__write_file_atomic(path, "hello", 5), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[16] = {0};
    assert_int_equal(fread(buf, 1, sizeof(buf), f), 5);
    fclose(f);
    assert_string_equal(buf, "hello");
    snprintf(path, sizeof(path), "%s/no/such/dir/x.json", base);
    assert_int_equal(shl__write_file_atomic(path, "abc", 3), -ENOENT);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_key_order_and_spelling),
        cmocka_unit_test(test_json_original_fixture),
        cmocka_unit_test(test_json_original_defaults),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_json_parse_iso),
        cmocka_unit_test(test_json_live_snapshot),
        cmocka_unit_test(test_json_atomic_write),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
