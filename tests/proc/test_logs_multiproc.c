/* test_logs_multiproc.c: log lines from several processes through a tiny
 * event ring (most take the fallback path): every line exactly once, none
 * torn; and a snapshotter killed mid-drain: the next one finishes its batch
 * with no line or trail event lost or duplicated. */
#include <errno.h>
#include <jansson.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/events.h"
#include "internal.h"
#include "shl_test.h"
#include "files/snapshotter.h"

#include "shl_text.h"

#define ISO_RE                                                                 \
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}"        \
    "[+-][0-9]{2}:[0-9]{2}"

#define PROCS 4
#define LINES 10000

/* wait_us: the children's ring_full_wait_us (0: never wait; > 0: the
 * opt-in back-pressure, whose wait must lose and duplicate nothing either) */
static void
four_procs_tiny_ring(int64_t wait_us)
{
    char base[512];
    shl_test_base(base, sizeof(base), "logmp");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.max_events = 8; /* tiny: forces the fallback path */
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));

    pid_t kids[PROCS];
    for (int k = 0; k < PROCS; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char pid_id[32];
            snprintf(pid_id, sizeof(pid_id), "w%d", k);
            shl_ledger *cl = NULL;
            shl_ledger_opts co;
            shl_ledger_opts_init(&co);
            co.ring_full_wait_us = wait_us;
            CHILD_CHECK(shl_ledger_open(&cl, base, pid_id, &co));
            shl_op *cop = NULL;
            CHILD_CHECK(shl_op_join(cl, id, NULL, &cop));
            char msg[96];
            for (int i = 0; i < LINES; i++) {
                snprintf(msg, sizeof(msg), "proc %d line %05d payload-%d", k,
                         i, i * 7 + k);
                CHILD_CHECK(shl_op_log(cop, SHL_LOG_INFO, msg));
            }
            CHILD_CHECK(shl_op_leave(cop, false));
            shl_ledger_close(cl);
            _exit(0);
        }
    }
    for (int k = 0; k < PROCS; k++)
        assert_child_exited(kids[k], 0);
    assert_shl_ok(shl__snapshotter_flush(l, 10000));

    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.cap_events, 8);
    if (wait_us == 0) /* the fallback path was used */
        assert_true(info.events_fallback > 0);
    assert_int_equal(info.file_errors, 0);
    assert_int_equal(info.events_pending, 0);

    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, id);
    size_t len;
    char *text = shl_test_slurp(path, &len);
    assert_non_null(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    unsigned char *seen = calloc(PROCS * LINES, 1);
    regex_t rx;
    assert_int_equal(regcomp(&rx,
                             "^" ISO_RE " \\[INFO\\] proc ([0-9]) line "
                             "([0-9]{5}) payload-([0-9]+)$",
                             REG_EXTENDED),
                     0);
    int total = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        regmatch_t m[4];
        if (regexec(&rx, p, 4, m, 0) != 0)
            fail_msg("torn or foreign line %d: \"%s\"", total, p);
        int k = atoi(p + m[1].rm_so), i = atoi(p + m[2].rm_so),
            pay = atoi(p + m[3].rm_so);
        assert_true(k < PROCS && i < LINES);
        assert_int_equal(pay, i * 7 + k);
        if (seen[k * LINES + i]++)
            fail_msg("line proc %d #%d written twice", k, i);
        total++;
        p = nl + 1;
    }
    regfree(&rx);
    assert_int_equal(total, PROCS * LINES);
    free(seen);
    free(text);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_logs_four_procs_tiny_ring(void **state)
{
    (void)state;
    four_procs_tiny_ring(0);
}

static void
test_logs_four_procs_tiny_ring_backpressure(void **state)
{
    (void)state;
    four_procs_tiny_ring(1000);
}

/* Events posted with no snapshotter anywhere; a snapshotter process is
 * killed after writing part of its batch (crash point drain.wrote); the
 * next one takes over. */
static void
test_logs_snapshotter_killed_mid_drain(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "logkill");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshotter = false;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    enum { N = 1000, CALLS = 100 };
    char msg[64];
    for (int i = 0; i < N; i++) {
        snprintf(msg, sizeof(msg), "line %04d", i);
        assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, msg));
        if (i % 10 == 0) {
            shl_call *c = NULL;
            assert_shl_ok(shl_call_start(op, NULL, &c));
            assert_shl_ok(shl_call_end(c, NULL));
            assert_shl_ok(shl_call_release(c));
        }
    }
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_pending, N + 2 * CALLS);

    /* snapshotter 1: dies after its first file write of the batch */
    pid_t a = fork();
    assert_true(a >= 0);
    if (a == 0) {
        shl__crash_arm("drain.wrote", SHL__CRASH_SIGKILL);
        shl_ledger *cl = NULL;
        CHILD_CHECK(shl_ledger_open(&cl, base, "snap1", NULL));
        for (;;)
            pause();
    }
    assert_child_signaled(a, SIGKILL);
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_pending, N + 2 * CALLS); /* not advanced */

    /* snapshotter 2 takes over and finishes */
    pid_t b = fork();
    assert_true(b >= 0);
    if (b == 0) {
        shl_ledger *cl = NULL;
        CHILD_CHECK(shl_ledger_open(&cl, base, "snap2", NULL));
        CHILD_CHECK(shl__snapshotter_flush(cl, 10000));
        shl_ledger_close(cl);
        _exit(0);
    }
    assert_child_exited(b, 0);
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_pending, 0);

    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, id);
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    int lines = 0, calls = 0;
    int count[N] = {0};
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = 0;
        char *m = strstr(p, "[INFO] line ");
        if (m)
            count[atoi(m + 12)]++, lines++;
        else if (strstr(p, "CALL_"))
            calls++;
        else
            fail_msg("unexpected line: %s", p);
        p = nl + 1;
    }
    for (int i = 0; i < N; i++)
        if (count[i] != 1)
            fail_msg("line %d appears %d times", i, count[i]);
    assert_int_equal(lines, N);
    assert_int_equal(calls, 2 * CALLS);
    free(text);

    /* the trail: every event once, in ring order, starts before ends */
    snprintf(path, sizeof(path), "%s/%s_trail.jsonl", base, id);
    text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    long long last_seq = 0;
    int events = 0, open_calls = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        *nl = 0;
        json_t *ev = json_loads(p, 0, NULL);
        assert_non_null(ev);
        long long seq = json_integer_value(json_object_get(ev, "seq"));
        assert_true(seq > last_seq); /* no duplicate, in order */
        last_seq = seq;
        const char *name = json_string_value(json_object_get(ev, "event"));
        if (!strcmp(name, "CALL_STARTED"))
            open_calls++;
        else if (!strcmp(name, "CALL_ENDED"))
            assert_true(--open_calls >= 0);
        events++;
        json_decref(ev);
        p = nl + 1;
    }
    assert_int_equal(events, 2 * CALLS);
    assert_int_equal(open_calls, 0);
    free(text);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logs_four_procs_tiny_ring),
        cmocka_unit_test(test_logs_four_procs_tiny_ring_backpressure),
        cmocka_unit_test(test_logs_snapshotter_killed_mid_drain),
    };
    return cmocka_run_group_tests_name("logs_multiproc", tests, NULL, NULL);
}
