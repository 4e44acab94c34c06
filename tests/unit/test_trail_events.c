/*
 * test_trail_events.c: every change reaches the operation's trail
 * ({opId}_trail.jsonl, one JSON event per line), in order: calls, abort
 * flag, temp resources, participants joining and leaving.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files/snapshotter.h"
#include "objects.h"
#include "shl_test.h"

#include "shl_text.h"

static void
test_trail_every_change(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "trail");
    shl_ledger *l, *l2;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", NULL));
    shl_op *op, *j;
    assert_shl_ok(shl_op_create(l, "trail", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_shl_ok(shl_op_join(l2, id, NULL, &j));
    shl_call *c;
    assert_shl_ok(shl_call_start(j, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_register_temp_resource(op, "/tmp/trail-x"));
    assert_int_equal(shl_op_unregister_temp_resource(op, "/tmp/trail-x"), 1);
    assert_shl_ok(shl_op_set_abort_flag(op, true));
    assert_shl_ok(shl_op_set_abort_flag(op, false));
    assert_shl_ok(shl_op_leave(j, false));
    assert_shl_ok(shl__snapshotter_flush(l, 5000));

    char path[700];
    snprintf(path, sizeof(path), "%s/%s_trail.jsonl", base, id);
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    const char *want[] = {
        "PARTICIPANT_JOINED",       "CALL_STARTED",   "CALL_ENDED",
        "TEMP_RESOURCE_REGISTERED", "TEMP_RESOURCE_REMOVED",
        "ABORT_FLAG_SET",           "ABORT_FLAG_SET", "PARTICIPANT_LEFT",
    };
    size_t k = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o)
            fail_msg("trail line is not JSON: %s (%s)", line, err.text);
        const char *ev = json_string_value(json_object_get(o, "event"));
        assert_non_null(ev);
        assert_non_null(json_object_get(o, "ts"));
        if (k < sizeof(want) / sizeof(want[0]) && !strcmp(ev, want[k])) {
            if (!strcmp(ev, "TEMP_RESOURCE_REGISTERED"))
                assert_string_equal(
                    json_string_value(json_object_get(o, "path")),
                    "/tmp/trail-x");
            if (!strcmp(ev, "PARTICIPANT_JOINED") ||
                !strcmp(ev, "PARTICIPANT_LEFT")) {
                assert_string_equal(
                    json_string_value(json_object_get(o, "participant")),
                    "bridge");
                /* the text is the printf format's, byte for byte (it is
                 * built without printf) */
                char msg[128];
                snprintf(msg, sizeof(msg), "%s participant=bridge pid=%d",
                         ev, (int)getpid());
                assert_string_equal(
                    json_string_value(json_object_get(o, "message")), msg);
                assert_int_equal(
                    json_integer_value(json_object_get(o, "pid")), getpid());
            }
            if (k == 5)
                assert_string_equal(
                    json_string_value(json_object_get(o, "aborted")),
                    "true");
            k++;
        }
        json_decref(o);
    }
    if (k != sizeof(want) / sizeof(want[0]))
        fail_msg("trail missing %s (saw %zu of %zu in order)", want[k], k,
                 sizeof(want) / sizeof(want[0]));
    free(text);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}


/* A failed call's error text is the caller's: quotes, backslashes, control
 * characters and UTF-8 must come out of the trail as the same string (the
 * call lines are rendered by hand, not by jansson), and the log line must
 * stay one line per event. */
static void
test_trail_call_failed_error_escaped(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "trailesc");
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    const char *error = "bad \"quote\" back\\slash tab\t bell\x07 caf\xc3\xa9";
    shl_call *c;
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.fail_on_crash = false; /* the operation stays running */
    assert_shl_ok(shl_call_start(op, &co, &c));
    char call_id[SHL_CALL_ID_MAX + 1];
    snprintf(call_id, sizeof(call_id), "%s", shl_call_id(c));
    assert_shl_ok(shl_call_fail(c, error));
    assert_shl_ok(shl__snapshotter_flush(l, 5000));

    char path[700];
    snprintf(path, sizeof(path), "%s/%s_trail.jsonl", base, id);
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    int found = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o)
            fail_msg("trail line is not JSON: %s (%s)", line, err.text);
        const char *ev = json_string_value(json_object_get(o, "event"));
        if (ev && !strcmp(ev, "CALL_FAILED")) {
            assert_string_equal(
                json_string_value(json_object_get(o, "callId")), call_id);
            assert_string_equal(
                json_string_value(json_object_get(o, "error")), error);
            assert_string_equal(
                json_string_value(json_object_get(o, "level")), "ERROR");
            assert_true(json_is_integer(json_object_get(o, "durationMs")));
            assert_true(json_is_integer(json_object_get(o, "seq")));
            found++;
        }
        json_decref(o);
    }
    assert_int_equal(found, 1);
    free(text);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trail_every_change),
        cmocka_unit_test(test_trail_call_failed_error_escaped),
    };
    return cmocka_run_group_tests_name("trail_events", tests, NULL, NULL);
}
