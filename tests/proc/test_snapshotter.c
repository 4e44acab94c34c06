/* test_snapshotter.c: the snapshotter role: live JSON files, takeover when
 * the holder dies, per-ledger disable, recovery on open, skipping records
 * of dead producers, and write errors (disk full through the write seam). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files/events.h"
#include "files/json.h"
#include "files/snapshotter.h"
#include "internal.h"
#include "shl_proc.h"
#include "shl_test.h"

#include "shl_text.h"

/* Frames in the live JSON file, or -1 if unreadable. */
static int
json_frames(const char *base, const char *id, char *first_call, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.json", base, id);
    char *text = shl_test_slurp(path, NULL);
    if (!text)
        return -1;
    shl_snapshot *s = NULL;
    int rc = shl_snapshot_from_json(text, &s);
    free(text);
    if (rc)
        return -1;
    int n = (int)s->frame_count;
    if (first_call && n > 0)
        snprintf(first_call, cap, "%s", s->frames[0].call_id);
    shl_snapshot_free(s);
    return n;
}

static int
count_in_file(const char *path, const char *needle)
{
    char *text = shl_test_slurp(path, NULL);
    if (!text)
        return 0;
    int n = 0;
    for (char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(text);
    return n;
}

static shl_ledger *
open_l(const char *base, const char *id, bool snap)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshotter = snap;
    o.snapshot_period_ms = 20;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, id, &o));
    return l;
}

static void
test_snapshotter_live_json(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "snapj");
    shl_ledger *l = open_l(base, "cli", true);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "live", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    /* written by create itself */
    assert_int_equal(json_frames(base, id, NULL, 0), 0);
    assert_true(SHL_WAIT_FOR(shl__snapshotter_held(l), 2000));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    char first[SHL_CALL_ID_MAX + 1] = "";
    assert_true(SHL_WAIT_FOR(
        json_frames(base, id, first, sizeof(first)) == 1, 2000));
    assert_string_equal(first, shl_call_id(c));
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.json", base, id);
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(strstr(text, "\"operationState\": \"running\""));
    assert_non_null(strstr(text, "\"state\": \"active\""));
    assert_non_null(strstr(text, "\"description\": \"live\""));
    assert_non_null(strstr(text, "\"participantId\": \"cli\""));
    free(text);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_true(SHL_WAIT_FOR(json_frames(base, id, NULL, 0) == 0, 2000));
    /* the trail shows start then end */
    assert_shl_ok(shl__snapshotter_flush(l, 2000));
    snprintf(path, sizeof(path), "%s/%s_trail.jsonl", base, id);
    text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    char *s = strstr(text, "\"event\":\"CALL_STARTED\"");
    char *e = strstr(text, "\"event\":\"CALL_ENDED\"");
    assert_true(s && e && s < e);
    free(text);
    assert_shl_ok(shl_op_complete(op));
    /* archived: the live file is gone */
    assert_int_equal(json_frames(base, id, NULL, 0), -1);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* The holder's setup: wait until it holds the snapshotter role. */
static int
hold_role(shl_ledger *l, shl_op *op, void *arg)
{
    (void)op;
    (void)arg;
    while (!shl__snapshotter_held(l))
        usleep(1000);
    return 0;
}

static void
test_snapshotter_takeover(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "snapt");
    shl_ledger *l = open_l(base, "cli", false);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_ledger_opts ho;
    shl_ledger_opts_init(&ho);
    ho.snapshot_period_ms = 20;
    shl_test_member hm = {.base = base,
                          .name = "holder",
                          .opts = &ho,
                          .no_session = true,
                          .setup = hold_role};
    pid_t holder = shl_test_member_fork(&hm, NULL, 0);
    shl_ledger *standby = open_l(base, "standby", true);
    shl_test_pause_ms(100);
    assert_false(shl__snapshotter_held(standby)); /* one holder */
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "while the holder lives"));
    kill(holder, SIGKILL);
    assert_child_signaled(holder, SIGKILL);
    assert_true(SHL_WAIT_FOR(shl__snapshotter_held(standby), 3000));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "after the takeover"));
    assert_shl_ok(shl__snapshotter_flush(l, 3000));
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, shl_op_id(op));
    assert_int_equal(count_in_file(path, "while the holder lives\n"), 1);
    assert_int_equal(count_in_file(path, "after the takeover\n"), 1);
    assert_false(shl__snapshotter_held(l)); /* disabled: never keeps it */
    shl_ledger_close(standby);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A dying child's steps: a line before its point is armed, one after,
 * then it dies (if the point did not kill it first). */
static int
log_before(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    char msg[64];
    snprintf(msg, sizeof(msg), "child %d before", *(const int *)arg);
    return shl_op_log(op, SHL_LOG_INFO, msg);
}

static int
log_dying(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    char msg[64];
    snprintf(msg, sizeof(msg), "child %d dying", *(const int *)arg);
    CHILD_CHECK(shl_op_log(op, SHL_LOG_INFO, msg));
    kill(getpid(), SIGKILL);
    return 0; /* not reached */
}

/* A child posts and dies without closing; nobody holds the role; the next
 * open drains what it left. Also: a record its producer died filling was
 * never published: nothing waits on it, nothing is skipped, and the ring
 * (taken over by the next child) goes on after the last published one. */
static void
test_snapshotter_recovery_and_dead_producers(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "snapr");
    shl_ledger *l = open_l(base, "cli", false);
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    strcpy(id, shl_op_id(op));
    static const char *const points[] = {NULL, "event.filled",
                                         "event.filled"};
    shl_ledger_opts co;
    shl_ledger_opts_init(&co);
    co.snapshotter = false;
    for (int k = 0; k < 3; k++) {
        shl_test_member m = {.base = base,
                             .name = "child",
                             .opts = &co,
                             .join = id,
                             .point = points[k],
                             .setup = log_before,
                             .act = log_dying,
                             .arg = &k};
        shl_test_member_killed(&m, NULL, 0);
    }
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    /* each child's open drained its predecessors' (recovery on open);
     * the last child's published record is still there */
    assert_true(info.events_pending >= 1);
    /* a line after the dead producers' records */
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "parent after"));
    /* recovery on open: a new ledger (snapshotter disabled) drains */
    shl_ledger *l2 = open_l(base, "late", false);
    assert_shl_ok(shl__snapshotter_flush(l2, 5000));
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.events_pending, 0);
    assert_int_equal(info.events_skipped, 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, id);
    for (int k = 0; k < 3; k++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "child %d before\n", k);
        assert_int_equal(count_in_file(path, msg), 1);
    }
    assert_int_equal(count_in_file(path, "child 0 dying\n"), 1);
    assert_int_equal(count_in_file(path, "child 1 dying\n"), 0);
    assert_int_equal(count_in_file(path, "child 2 dying\n"), 0);
    assert_int_equal(count_in_file(path, "parent after\n"), 1);
    shl_ledger_close(l2);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static _Atomic int disk_full;

static ssize_t
seam_write(int fd, const void *buf, size_t len)
{
    if (atomic_load(&disk_full)) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, len);
}

struct errs {
    _Atomic int enospc;
};

static void
on_line(const char *line, void *user)
{
    struct errs *e = user;
    if (strstr(line, "No space left on device"))
        atomic_fetch_add(&e->enospc, 1);
}

static void
test_snapshotter_disk_full_catches_up(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "snapf");
    struct errs e = {0};
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshot_period_ms = 10;
    o.callbacks.on_log_line = on_line;
    o.callbacks.user = &e;
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_true(SHL_WAIT_FOR(shl__snapshotter_held(l), 2000));
    shl__sys_write = seam_write;
    atomic_store(&disk_full, 1);
    /* participants keep working: logs and calls succeed */
    for (int i = 0; i < 100; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "full %03d", i);
        assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, msg));
        shl_call *c = NULL;
        assert_shl_ok(shl_call_start(op, NULL, &c));
        assert_shl_ok(shl_call_end(c, NULL));
        assert_shl_ok(shl_call_release(c));
    }
    /* the error is reported and counted */
    assert_true(SHL_WAIT_FOR(atomic_load(&e.enospc) > 0, 2000));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_true(info.file_errors > 0);
    assert_true(info.events_pending > 0);
    /* space returns: the files catch up, every line once */
    atomic_store(&disk_full, 0);
    assert_shl_ok(shl__snapshotter_flush(l, 5000));
    shl__sys_write = write;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.operation.log", base, shl_op_id(op));
    for (int i = 0; i < 100; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "full %03d\n", i);
        assert_int_equal(count_in_file(path, msg), 1);
    }
    assert_int_equal(count_in_file(path, "CALL_STARTED"), 100);
    assert_int_equal(count_in_file(path, "CALL_ENDED"), 100);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshotter_live_json),
        cmocka_unit_test(test_snapshotter_takeover),
        cmocka_unit_test(test_snapshotter_recovery_and_dead_producers),
        cmocka_unit_test(test_snapshotter_disk_full_catches_up),
    };
    return cmocka_run_group_tests_name("snapshotter", tests, NULL, NULL);
}
