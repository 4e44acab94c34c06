/*
 * test_conform.c: the original's contract where its users lean on it
 * (issue 15): cancelled calls, leave's count, files after the archive,
 * trail pid types, trail backup callbacks, spawned-call errors, frame
 * heartbeats, error names.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shl_test.h"
#include "shl_text.h"

struct fx {
    char base[512];
    shl_ledger *l, *l2;
    shl_op *op, *j;
    char id[SHL_OPERATION_ID_MAX + 1];
};

struct cbrec {
    _Atomic int backups;
    _Atomic int trail_backups;
};

static void
on_backup(const char *path, void *user)
{
    struct cbrec *r = user;
    atomic_fetch_add(&r->backups, 1);
    if (strstr(path, "trail"))
        atomic_fetch_add(&r->trail_backups, 1);
}

static void
fx_open_cb(struct fx *f, struct cbrec *rec)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "conform");
    shl_ledger_opts lo;
    shl_ledger_opts_init(&lo);
    if (rec) {
        lo.callbacks.on_backup_created = on_backup;
        lo.callbacks.user = rec;
    }
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", &lo));
    /* the lines are written by the snapshotter: keep it in l, whose
     * callbacks the tests look at */
    shl_ledger_opts lo2;
    shl_ledger_opts_init(&lo2);
    lo2.snapshotter = rec == NULL;
    assert_shl_ok(shl_ledger_open(&f->l2, f->base, "bridge", &lo2));
    assert_shl_ok(shl_op_create(f->l, "conform", NULL, &f->op));
    snprintf(f->id, sizeof(f->id), "%s", shl_op_id(f->op));
    assert_shl_ok(shl_op_join(f->l2, f->id, NULL, &f->j));
}

static void
fx_open(struct fx *f)
{
    fx_open_cb(f, NULL);
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

static bool
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- work functions ---- */

/* Waits for cancellation, then answers it the natural way. */
static int
work_until_cancelled(shl_spawned *c, void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (!shl_spawned_is_cancelled(c))
        shl_test_pause_ms(1);
    return -ECANCELED;
}

static int
work_boom(shl_spawned *c, void *arg, void **result)
{
    (void)arg;
    (void)result;
    shl_spawned_set_error(c, "boom");
    return -EIO;
}

struct crashed_seen {
    char error[64];
    _Atomic int calls;
};

static void *
crashed_no_fallback(shl_spawned *c, void *user)
{
    struct crashed_seen *s = user;
    const char *e = shl_spawned_error(c);
    snprintf(s->error, sizeof(s->error), "%s", e ? e : "(null)");
    atomic_fetch_add(&s->calls, 1);
    return NULL;
}

/* ---- 1. a cancelled spawned call does not fail the operation ---- */

static void
test_conform_cancelled_spawned_not_failure(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_until_cancelled, NULL, NULL, &c));
    assert_shl_ok(shl_op_leave(f.j, true));
    f.j = NULL;
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(f.op, &fi), 0);
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* A cancel without leave: the outcome is "cancelled", waits say so. */
static void
test_conform_cancelled_spawned_wait(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_spawned *c = NULL;
    assert_shl_ok(
        shl_op_spawn_call(f.op, work_until_cancelled, NULL, NULL, &c));
    shl_spawned_cancel(c);
    assert_int_equal(shl_spawned_wait(c, 5000, NULL), SHL_ECANCELLED);
    assert_true(shl_spawned_is_cancelled(c));
    assert_true(shl_spawned_is_completed(c));
    assert_false(shl_spawned_is_success(c));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 2. leave(false) counts every pending call ---- */

static void
test_conform_leave_counts_all(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *a = NULL, *b = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &a));
    assert_shl_ok(shl_call_start(f.j, NULL, &b));
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.j, work_until_cancelled, NULL, NULL, &c));
    assert_int_equal(shl_op_pending_call_count(f.j), 3);
    assert_int_equal(shl_op_leave(f.j, false), SHL_ESTATE);
    const char *m = shl_errmsg();
    if (!strstr(m, "3 call(s)"))
        fail_msg("leave(false) message: %s", m);
    assert_non_null(strstr(m, shl_call_id(a)));
    assert_non_null(strstr(m, shl_call_id(b)));
    assert_non_null(strstr(m, shl_spawned_id(c)));
    assert_shl_ok(shl_op_leave(f.j, true));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 3. nothing of an archived operation is left beside it ---- */

static void
assert_nothing_beside(const char *base, const char *id)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s_trail.jsonl", base, id);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/%s.operation.log", base, id);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/%s.operation.debug.log", base, id);
    assert_false(exists(p));
    snprintf(p, sizeof(p), "%s/%s.operation.json", base, id);
    assert_false(exists(p));
}

static bool
archived_contains(const char *base, const char *id, const char *file,
                  const char *needle)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/backup/%s/%s", base, id, file);
    char *t = shl_test_slurp(p, NULL);
    bool ok = t && strstr(t, needle);
    free(t);
    return ok;
}

/* after a plain complete: a member's late log line and call end */
static void
test_conform_no_stray_files_after_complete(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_op_log(f.op, SHL_LOG_INFO, "before"));
    assert_shl_ok(shl_op_complete(f.op));
    /* the operation ended without the call: refused, nothing logged */
    assert_int_equal(shl_call_end(c, NULL), SHL_ESTATE);
    assert_shl_ok(shl_op_log(f.j, SHL_LOG_INFO, "late line"));
    assert_shl_ok(shl_op_debug_log(f.j, "late debug line"));
    assert_shl_ok(shl_op_leave(f.j, true));
    shl_ledger_close(f.l2);
    shl_ledger_close(f.l);
    assert_nothing_beside(f.base, f.id);
    assert_true(archived_contains(f.base, f.id, "operation.log", "before"));
    assert_true(archived_contains(f.base, f.id, "operation.log", "late line"));
    assert_true(archived_contains(f.base, f.id, "operation.debug.log",
                                  "late debug line"));
    shl_test_cleanup(f.base);
}

/* after a failure: members leave after the archive was written */
static void
test_conform_no_stray_files_after_failure(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_call_fail(c, "bad"));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_FAILED);
    assert_shl_ok(shl_op_leave(f.j, true));
    assert_shl_ok(shl_op_leave(f.op, true));
    shl_ledger_close(f.l2);
    shl_ledger_close(f.l);
    assert_nothing_beside(f.base, f.id);
    assert_true(
        archived_contains(f.base, f.id, "trail.jsonl", "PARTICIPANT_LEFT"));
    assert_true(
        archived_contains(f.base, f.id, "operation.log", "CALL_FAILED"));
    shl_test_cleanup(f.base);
}

/* ---- 5. the trail's pid is a number in every event ---- */

static void
test_conform_trail_pid_is_number(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    f.j = NULL;
    assert_shl_ok(shl_op_complete(f.op));
    char p[1024];
    snprintf(p, sizeof(p), "%s/backup/%s/trail.jsonl", f.base, f.id);
    char *t = shl_test_slurp(p, NULL);
    assert_non_null(t);
    assert_non_null(strstr(t, "PARTICIPANT_JOINED"));
    assert_non_null(strstr(t, "PARTICIPANT_LEFT"));
    assert_null(strstr(t, "\"pid\":\""));
    /* and every line has one */
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n"))
        assert_true(shl_test_rx_match("\"pid\":[0-9]+", line));
    free(t);
    fx_close(&f);
}

/* ---- 6. on_backup_created also reports trail files ---- */

static void
test_conform_backup_callback_trail(void **state)
{
    (void)state;
    struct fx f;
    struct cbrec rec = {0};
    fx_open_cb(&f, &rec);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.op, NULL, &c));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    f.j = NULL;
    assert_shl_ok(shl_op_complete(f.op));
    assert_true(atomic_load(&rec.trail_backups) >= 1);
    assert_true(atomic_load(&rec.backups) >= 2);
    fx_close(&f);
}

/* ---- 7. spawned-call errors ---- */

static void
test_conform_spawned_error_in_crashed_cb(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct crashed_seen seen = {0};
    shl_spawn_opts so;
    shl_spawn_opts_init(&so);
    so.fail_on_crash = false;
    so.on_call_crashed = crashed_no_fallback;
    so.callbacks.user = &seen;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_boom, NULL, &so, &c));
    int rc = shl_spawned_wait(c, 5000, NULL);
    assert_int_equal(atomic_load(&seen.calls), 1);
    assert_string_equal(seen.error, "boom");
    /* only the call failed: a call-level code, not "operation failed" */
    assert_int_equal(rc, SHL_ECALLFAILED);
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_string_equal(shl_spawned_error(c), "boom");
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 9. a frame's lastHeartbeat is never before its start ---- */

static void
test_conform_frame_heartbeat_not_before_start(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    /* the participant's heartbeat was stored at open; start later */
    int64_t t0 = shl_test_now_ms();
    while (shl_test_now_ms() - t0 < 30)
        shl_test_pause_ms(5);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(f.l), f.id, &s));
    assert_int_equal(s->frame_count, 1);
    assert_true(s->frames[0].last_heartbeat_us >= s->frames[0].start_time_us);
    char *json = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, 0, &json));
    shl_snapshot *back = NULL;
    assert_shl_ok(shl_snapshot_from_json(json, &back));
    assert_true(back->frames[0].last_heartbeat_us >=
                back->frames[0].start_time_us);
    shl_snapshot_free(back);
    free(json);
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- 10. names of codes ---- */

static void
test_conform_error_names(void **state)
{
    (void)state;
    assert_string_equal(shl_strerror_name(SHL_EFENCED), "SHL_EFENCED");
    assert_string_equal(shl_strerror_name(SHL_ECALLFAILED), "SHL_ECALLFAILED");
    assert_string_equal(shl_strerror_name(SHL_ECANCELLED), "SHL_ECANCELLED");
    assert_string_equal(shl_strerror_name(-ENOENT), "ENOENT");
    assert_string_equal(shl_strerror_name(-ECANCELED), "ECANCELED");
    assert_string_equal(shl_strerror_name(0), "OK");
    assert_string_equal(shl_strerror_name(-999999), "UNKNOWN");
    assert_string_equal(shl_strerror(SHL_ECALLFAILED), "call failed");
    assert_string_equal(shl_strerror(SHL_ECANCELLED), "call cancelled");
}

/* ---- gaps: execServerRequest ---- */

static int
work_slow(shl_spawned *c, void *arg, void **result)
{
    _Atomic int *finished = arg;
    int64_t t0 = shl_test_now_ms();
    while (!shl_spawned_is_cancelled(c) && shl_test_now_ms() - t0 < 5000)
        shl_test_pause_ms(2);
    *result = NULL;
    atomic_store(finished, 1);
    return 0;
}

static int
work_value(shl_spawned *c, void *arg, void **result)
{
    (void)c;
    *result = arg;
    return 0;
}

static int
work_detail(shl_spawned *c, void *arg, void **result)
{
    (void)arg;
    (void)result;
    shl_spawned_set_error_detail(c, "bad input", "frame 1\nframe 2");
    return -EINVAL;
}

static void
test_conform_exec_server_request(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_spawn_opts so;
    shl_spawn_opts_init(&so);
    so.fail_on_crash = false;
    static _Atomic int finished;
    atomic_store(&finished, 0);
    shl_spawned *c = NULL;
    int64_t t0 = shl_test_now_ms();
    assert_shl_ok(shl_op_exec_server_request(f.op, work_slow, (void *)&finished,
                                             100, &so, &c));
    assert_string_equal(shl_spawned_description(c), "Server request");
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    int64_t took = shl_test_now_ms() - t0;
    assert_true(took >= 100);
    assert_true(took < 3000 * shl_test_multiplier());
    assert_non_null(strstr(shl_spawned_error(c), "timed out after 100 ms"));
    /* the work was asked to stop, and does */
    assert_true(SHL_WAIT_FOR(atomic_load(&finished), 5000));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_shl_ok(shl_spawned_release(c));
    /* in time: the work's value */
    static int v = 7;
    void *res = NULL;
    assert_shl_ok(
        shl_op_exec_server_request(f.op, work_value, &v, 5000, NULL, &c));
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_ptr_equal(res, &v);
    assert_shl_ok(shl_spawned_release(c));
    /* no limit */
    assert_shl_ok(
        shl_op_exec_server_request(f.op, work_value, &v, -1, NULL, &c));
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_ptr_equal(res, &v);
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- gaps: deserializers of the poll helpers ---- */

static int
parse_int(const char *text, size_t len, void *user, void **result)
{
    (void)user;
    (void)len;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text)
        return -EBADMSG;
    int *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = (int)v;
    *result = p;
    return 0;
}

static void
write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void
test_conform_poll_deserializers(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "pollparse");
    assert_int_equal(mkdir(base, 0700), 0);
    char a[700], bpath[700];
    snprintf(a, sizeof(a), "%s/a.txt", base);
    snprintf(bpath, sizeof(bpath), "%s/b.txt", base);
    write_text(a, "42\n");
    void *r = NULL;
    assert_shl_ok(shl_poll_file_parse(a, false, 10, 1000, parse_int, NULL, &r));
    assert_int_equal(*(int *)r, 42);
    free(r);
    write_text(bpath, "x");
    r = NULL;
    assert_int_equal(
        shl_poll_file_parse(bpath, false, 10, 1000, parse_int, NULL, &r),
        -EBADMSG);
    assert_null(r);
    const char *paths[2] = {a, bpath};
    void *rs[2] = {NULL, NULL};
    assert_int_equal(shl_poll_files_parse(paths, 2, false, 10, 1000, parse_int,
                                          NULL, free, rs),
                     -EBADMSG);
    assert_null(rs[0]);
    write_text(bpath, "-3");
    assert_shl_ok(shl_poll_files_parse(paths, 2, true, 10, 1000, parse_int,
                                       NULL, free, rs));
    assert_int_equal(*(int *)rs[0], 42);
    assert_int_equal(*(int *)rs[1], -3);
    free(rs[0]);
    free(rs[1]);
    assert_false(exists(a));
    shl_test_cleanup(base);
}

/* ---- gaps: fail with a stack trace ---- */

static void
test_conform_fail_detail(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.fail_on_crash = false;
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.op, &co, &c));
    assert_shl_ok(shl_call_fail_detail(c, "oops", "at a()\nat b()"));
    shl_spawn_opts so;
    shl_spawn_opts_init(&so);
    so.fail_on_crash = false;
    shl_spawned *sp = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_detail, NULL, &so, &sp));
    assert_int_equal(shl_spawned_wait(sp, 5000, NULL), SHL_ECALLFAILED);
    assert_string_equal(shl_spawned_error(sp), "bad input");
    assert_string_equal(shl_spawned_stack_trace(sp), "frame 1\nframe 2");
    char sid[SHL_CALL_ID_MAX + 1];
    snprintf(sid, sizeof(sid), "%s", shl_spawned_id(sp));
    char cid[SHL_CALL_ID_MAX + 1];
    snprintf(cid, sizeof(cid), "%s", shl_call_id(c));
    assert_shl_ok(shl_spawned_release(sp));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    char needle[400];
    snprintf(needle, sizeof(needle),
             "CALL_STACK_TRACE callId=%s message=at a() | at b()", cid);
    assert_true(archived_contains(f.base, f.id, "operation.log", needle));
    snprintf(needle, sizeof(needle),
             "CALL_STACK_TRACE callId=%s message=frame 1 | frame 2", sid);
    assert_true(archived_contains(f.base, f.id, "operation.log", needle));
    fx_close(&f);
}

/* ---- gaps: toString equivalents, CallFrame.isStale ---- */

static void
test_conform_format(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    char buf[2048];
    int n = shl_op_format(f.op, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n == strlen(buf));
    assert_true(shl_test_rx_match("^Operation\\(operationId: [^,]+, "
                                  "participantId: cli, sessionId: 1, pid: "
                                  "[0-9]+, isInitiator: true, startTime: "
                                  "[0-9T:.+-]+, pendingCallCount: 0, "
                                  "isAborted: false\\)$",
                                  buf));
    /* measuring, and cutting */
    assert_int_equal(shl_op_format(f.op, NULL, 0), n);
    char small[8];
    assert_int_equal(shl_op_format(f.op, small, sizeof(small)), n);
    assert_string_equal(small, "Operati");
    assert_int_equal(shl_op_format(NULL, buf, sizeof(buf)), -EINVAL);

    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = "work";
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(f.op, &co, &c));
    assert_true(shl_call_format(c, buf, sizeof(buf)) > 0);
    assert_true(
        shl_test_rx_match("^Call\\(callId: call_cli_[0-9]+_[0-9a-f]{4}, "
                          "description: work, startedAt: [^,]+, "
                          "isCompleted: false\\)$",
                          buf));
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(f.l), f.id, &s));
    assert_int_equal(s->frame_count, 1);
    assert_true(shl_call_frame_format(&s->frames[0], buf, sizeof(buf)) > 0);
    assert_true(shl_test_rx_match("^CallFrame\\(participantId: cli, callId: "
                                  "call_cli_.*, state: active, "
                                  "heartbeatAgeMs: [0-9]+\\)$",
                                  buf));
    assert_false(shl_call_frame_is_stale(&s->frames[0], 0));
    shl_call_frame fr = s->frames[0];
    fr.heartbeat_age_ms = 15000;
    assert_true(shl_call_frame_is_stale(&fr, 0));
    assert_false(shl_call_frame_is_stale(&fr, 20000));
    fr.heartbeat_age_ms = 10000;
    assert_false(shl_call_frame_is_stale(&fr, 0)); /* strictly greater */
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(c, NULL));

    shl_spawned *sp = NULL;
    assert_shl_ok(shl_op_spawn_call(f.op, work_value, NULL, NULL, &sp));
    assert_shl_ok(shl_spawned_wait(sp, 5000, NULL));
    assert_true(shl_spawned_format(sp, buf, sizeof(buf)) > 0);
    assert_true(shl_test_rx_match("^SpawnedCall\\(callId: call_cli_[^,]+, "
                                  "completed: true, success: true, "
                                  "cancelled: false\\)$",
                                  buf));
    shl_sync_result sr;
    assert_shl_ok(shl_op_await_call(f.op, sp, NULL, &sr));
    assert_true(shl_sync_result_format(&sr, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "SyncResult(success: 1, failed: 0, unknown: 0, "
                             "operationFailed: false)");
    shl_sync_result_fini(&sr);
    assert_shl_ok(shl_spawned_release(sp));

    shl_heartbeat_result *hr = NULL;
    assert_shl_ok(shl_op_heartbeat(f.op, &hr));
    assert_true(shl_heartbeat_result_format(hr, buf, sizeof(buf)) > 0);
    assert_true(shl_test_rx_match("^HeartbeatResult\\(abortFlag: false, "
                                  "ledgerExists: true, heartbeatUpdated: "
                                  "true, callFrameCount: 0, "
                                  "tempResourceCount: 0, heartbeatAgeMs: "
                                  "-?[0-9]+, isStale: false, participants: "
                                  "\\[.*\\], participantHeartbeatAges: "
                                  "\\{.*\\}, staleParticipants: \\[\\], "
                                  "hasStaleChildren: false\\)$",
                                  buf));
    shl_heartbeat_result_free(hr);

    shl_failed_info fi;
    memset(&fi, 0, sizeof(fi));
    snprintf(fi.operation_id, sizeof(fi.operation_id), "op1");
    snprintf(fi.reason, sizeof(fi.reason), "it broke");
    fi.crashed_call_count = 2;
    fi.crashed_call_total = 3;
    snprintf(fi.crashed_call_ids[0], sizeof(fi.crashed_call_ids[0]), "c1");
    snprintf(fi.crashed_call_ids[1], sizeof(fi.crashed_call_ids[1]), "c2");
    assert_true(shl_failed_info_format(&fi, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "OperationFailedInfo(operationId: op1, "
                             "crashedCallIds: [c1, c2, ... 1 more], reason: "
                             "it broke)");
    shl_temp_resource tr;
    memset(&tr, 0, sizeof(tr));
    snprintf(tr.path, sizeof(tr.path), "/tmp/x");
    tr.owner = 12;
    assert_true(shl_temp_resource_format(&tr, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "TempResource(path: /tmp/x, owner: 12)");

    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

/* ---- gaps: CallFrame.resources ---- */

static void
test_conform_frame_resources(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_call *c = NULL, *other = NULL;
    assert_shl_ok(shl_call_start(f.j, NULL, &c));
    assert_shl_ok(shl_call_start(f.j, NULL, &other));
    assert_shl_ok(shl_call_register_temp_resource(c, "/tmp/conform-a"));
    assert_shl_ok(shl_call_register_temp_resource(c, "/tmp//conform-b/."));
    assert_shl_ok(shl_op_register_temp_resource(f.j, "/tmp/conform-op"));
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(f.l), f.id, &s));
    assert_int_equal(s->frame_count, 2);
    const shl_call_frame *fc = NULL, *fo = NULL;
    for (size_t i = 0; i < s->frame_count; i++) {
        if (!strcmp(s->frames[i].call_id, shl_call_id(c)))
            fc = &s->frames[i];
        else
            fo = &s->frames[i];
    }
    assert_non_null(fc);
    assert_non_null(fo);
    assert_int_equal(fc->resource_count, 2);
    assert_int_equal(fo->resource_count, 0);
    const char *paths[4];
    assert_int_equal(shl_call_frame_resources(s, fc, paths, 4), 2);
    assert_string_equal(paths[0], "/tmp/conform-a");
    assert_string_equal(paths[1], "/tmp/conform-b");
    assert_int_equal(shl_call_frame_resources(s, fo, paths, 4), 0);
    /* JSON: the frame lists them, and reads back */
    char *json = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, SHL_JSON_COMPACT, &json));
    assert_true(shl_test_rx_match(
        "\"resources\":\\[\"/tmp/conform-a\",\"/tmp/conform-b\"\\]", json));
    shl_snapshot *back = NULL;
    assert_shl_ok(shl_snapshot_from_json(json, &back));
    for (size_t i = 0; i < back->frame_count; i++)
        if (!strcmp(back->frames[i].call_id, shl_call_id(c)))
            assert_int_equal(
                shl_call_frame_resources(back, &back->frames[i], NULL, 0), 2);
    shl_snapshot_free(back);
    free(json);
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_int_equal(shl_call_register_temp_resource(c, "/tmp/x"), SHL_ESTATE);
    assert_int_equal(shl_op_unregister_temp_resource(f.j, "/tmp/conform-a"), 1);
    assert_int_equal(shl_op_unregister_temp_resource(f.j, "/tmp/conform-b"), 1);
    assert_int_equal(shl_op_unregister_temp_resource(f.j, "/tmp/conform-op"),
                     1);
    assert_shl_ok(shl_call_end(other, NULL));
    assert_shl_ok(shl_op_leave(f.j, false));
    assert_shl_ok(shl_op_complete(f.op));
    fx_close(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conform_cancelled_spawned_not_failure),
        cmocka_unit_test(test_conform_cancelled_spawned_wait),
        cmocka_unit_test(test_conform_leave_counts_all),
        cmocka_unit_test(test_conform_no_stray_files_after_complete),
        cmocka_unit_test(test_conform_no_stray_files_after_failure),
        cmocka_unit_test(test_conform_trail_pid_is_number),
        cmocka_unit_test(test_conform_backup_callback_trail),
        cmocka_unit_test(test_conform_spawned_error_in_crashed_cb),
        cmocka_unit_test(test_conform_frame_heartbeat_not_before_start),
        cmocka_unit_test(test_conform_error_names),
        cmocka_unit_test(test_conform_exec_server_request),
        cmocka_unit_test(test_conform_poll_deserializers),
        cmocka_unit_test(test_conform_fail_detail),
        cmocka_unit_test(test_conform_format),
        cmocka_unit_test(test_conform_frame_resources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
