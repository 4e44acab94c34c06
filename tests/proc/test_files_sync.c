/*
 * test_files_sync.c: issue 18's fixes outside the ported suite:
 * shl_op_flush as a barrier in the default (asynchronous) mode, from a
 * process that holds the snapshotter role and from one that does not;
 * the JSON's lastHeartbeat moving with heartbeats in the default mode;
 * shl_op_set_state's transitions; a stopped participant without frames
 * in a successful heartbeat's result.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_proc.h"
#include "shl_test.h"
#include "shl_text.h"

static shl_snapshot *
read_json(const char *base, const char *id)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s.operation.json", base, id);
    char *t = shl_test_slurp(p, NULL);
    if (!t)
        return NULL;
    shl_snapshot *s = NULL;
    if (shl_snapshot_from_json(t, &s) != 0)
        s = NULL;
    free(t);
    return s;
}

/* The live log, or the archived one (a failed operation is archived as
 * soon as it fails, which may be right after the change). */
static bool
log_has(const char *base, const char *id, const char *needle)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s.operation.log", base, id);
    char *t = shl_test_slurp(p, NULL);
    if (!t) {
        snprintf(p, sizeof(p), "%s/backup/%s/operation.log", base, id);
        t = shl_test_slurp(p, NULL);
    }
    bool h = t && strstr(t, needle);
    free(t);
    return h;
}

/* a ledger whose snapshotter would not rewrite the JSON for 10 s */
static shl_ledger_opts
slow_opts(bool snapshotter)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshotter = snapshotter;
    o.snapshot_period_ms = 10000;
    return o;
}

static void
check_flushed(const char *base, shl_op *op, shl_call *call)
{
    shl_snapshot *s = read_json(base, shl_op_id(op));
    assert_non_null(s);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].call_id, shl_call_id(call));
    shl_snapshot_free(s);
    assert_true(log_has(base, shl_op_id(op), "flushed line"));
    assert_true(log_has(base, shl_op_id(op), "CALL_STARTED"));
}

static void
test_flush_barrier_holder(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "flush");
    shl_ledger_opts o = slow_opts(true);
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_call *c;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "flushed line"));
    assert_shl_ok(shl_op_flush(op, 5000));
    check_flushed(base, op, c);
    assert_int_equal(shl_op_flush(NULL, 10), -EINVAL);
    assert_int_equal(shl_op_flush(op, -1), -EINVAL);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* Another process holds the snapshotter role (and sleeps for its 10 s
 * period): the flush wakes it for the ring and writes the JSON itself. */
static void
test_flush_barrier_other_holder(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "flush2");
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        close(ready[0]);
        shl_ledger_opts o = slow_opts(true);
        shl_ledger *l;
        CHILD_CHECK(shl_ledger_open(&l, base, "holder", &o));
        char b = 'k';
        /* wait until we hold the role, then say so */
        int64_t dl = shl_test_now_ms() + 10000;
        shl_segment_info si;
        while (shl_test_now_ms() < dl) {
            if (shl_reader_info(shl_ledger_reader(l), &si) == 0 &&
                si.snapshotter_held)
                break;
            shl_test_pause_ms(5);
        }
        if (write(ready[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(3);
        shl_ledger_close(l);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    char b;
    assert_true(shl_test_read_by(ready[0], &b, 1,
                                 shl_test_now_ms() +
                                     10000 * shl_test_multiplier()));
    shl_ledger_opts o = slow_opts(false);
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_call *c;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_op_log(op, SHL_LOG_INFO, "flushed line"));
    int64_t t0 = shl_test_now_ms();
    assert_shl_ok(shl_op_flush(op, 5000));
    assert_true(shl_test_now_ms() - t0 < 2000 * shl_test_multiplier());
    check_flushed(base, op, c);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    assert_int_equal(write(go[1], "q", 1), 1);
    assert_child_exited(pid, 0);
    close(go[1]);
    close(ready[0]);
    shl_test_cleanup(base);
}

/* Default mode: the JSON's lastHeartbeat follows heartbeats, at most a
 * snapshotter period behind. */
static void
test_last_heartbeat_moves_default_mode(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "lasthb");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.snapshot_period_ms = 20;
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    shl_snapshot *s = read_json(base, shl_op_id(op));
    assert_non_null(s);
    int64_t before = s->last_heartbeat_us;
    shl_snapshot_free(s);
    int64_t t = shl_test_wall_us();
    assert_true(SHL_WAIT_FOR(shl_test_wall_us() > t + 5000, 1000));
    shl_heartbeat_result *r = NULL;
    assert_shl_ok(shl_op_heartbeat(op, &r));
    shl_heartbeat_result_free(r);
    int64_t after = before;
    assert_true(SHL_WAIT_FOR(({
                                 shl_snapshot *x =
                                     read_json(base, shl_op_id(op));
                                 if (x)
                                     after = x->last_heartbeat_us;
                                 shl_snapshot_free(x);
                                 after > before;
                             }),
                             2000));
    /* and with a call start */
    before = after;
    t = shl_test_wall_us();
    assert_true(SHL_WAIT_FOR(shl_test_wall_us() > t + 5000, 1000));
    shl_call *c;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_true(SHL_WAIT_FOR(({
                                 shl_snapshot *x =
                                     read_json(base, shl_op_id(op));
                                 if (x)
                                     after = x->last_heartbeat_us;
                                 shl_snapshot_free(x);
                                 after > before;
                             }),
                             2000));
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_set_state_transitions(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "setstate");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.sync_files = true;
    o.heartbeat_interval_ms = 100;
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_int_equal(shl_op_set_state(NULL, SHL_OP_FAILED), -EINVAL);
    assert_int_equal(shl_op_set_state(op, (shl_op_state)42), -EINVAL);
    assert_shl_ok(shl_op_set_state(op, SHL_OP_RUNNING)); /* no-op */
    assert_int_equal(shl_op_set_state(op, SHL_OP_COMPLETED), SHL_ESTATE);
    /* a pending call: cleanup runs its onCleanup and the failure arrives */
    shl_call *c;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_op_set_state(op, SHL_OP_CLEANUP));
    /* between the live log and the archive for a moment: poll briefly */
    assert_true(SHL_WAIT_FOR(
        log_has(base, id, "OPERATION_STATE_CHANGED state=cleanup"), 2000));
    shl_failed_info info;
    assert_int_equal(shl_op_wait_failure(op, 5000, &info), 0);
    assert_non_null(strstr(info.reason, "cleanup"));
    /* the coordinator moves it to failed (two heartbeat intervals at most
     * while our call is still active) */
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_int_equal(shl_op_set_state(op, SHL_OP_RUNNING), SHL_ESTATE);
    assert_int_equal(shl_op_set_state(op, SHL_OP_CLEANUP), SHL_ESTATE);
    assert_shl_ok(shl_op_set_state(op, SHL_OP_FAILED)); /* already */
    (void)shl_call_end(c, NULL);
    assert_int_equal(shl_op_complete(op), SHL_ESTATE);
    assert_shl_ok(shl_op_leave(op, true));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* A member without frames, stopped: in the success result of a heartbeat
 * (is_stale, stale_participants, has_stale_children), and gone again when
 * it resumes. */
static void
test_stale_member_in_success_result(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "stalemem");
    int idp[2], ready[2];
    assert_int_equal(pipe(idp), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(idp[1]);
        close(ready[0]);
        char id[SHL_OPERATION_ID_MAX + 1];
        if (read(idp[0], id, sizeof(id)) != (ssize_t)sizeof(id))
            _exit(2);
        shl_ledger_opts o;
        shl_ledger_opts_init(&o);
        o.heartbeat_interval_ms = 50;
        shl_ledger *l;
        CHILD_CHECK(shl_ledger_open(&l, base, "peer", &o));
        shl_op *op;
        CHILD_CHECK(shl_op_join(l, id, NULL, &op));
        char b = 'k';
        if (write(ready[1], &b, 1) != 1 || read(idp[0], &b, 1) != 1)
            _exit(3);
        (void)shl_op_leave(op, true);
        shl_ledger_close(l);
        _exit(0);
    }
    close(idp[0]);
    close(ready[1]);
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.stale_threshold_ms = 60000; /* no fencing during the test */
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_shl_ok(shl_op_set_staleness_threshold_ms(op, 500));
    char id[SHL_OPERATION_ID_MAX + 1] = {0};
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    assert_int_equal(write(idp[1], id, sizeof(id)), (ssize_t)sizeof(id));
    char b;
    assert_true(shl_test_read_by(ready[0], &b, 1,
                                 shl_test_now_ms() +
                                     10000 * shl_test_multiplier()));
    shl_heartbeat_result *r = NULL;
    assert_shl_ok(shl_op_heartbeat(op, &r));
    assert_false(r->is_stale);
    shl_heartbeat_result_free(r);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    bool stale = SHL_WAIT_FOR(({
                                  r = NULL;
                                  bool s = shl_op_heartbeat(op, &r) == 0 &&
                                           r->is_stale;
                                  if (!s)
                                      shl_heartbeat_result_free(r);
                                  s;
                              }),
                              5000);
    assert_true(stale);
    assert_true(r->has_stale_children);
    assert_int_equal(r->stale_count, 1);
    assert_string_equal(r->stale_participants[0], "peer");
    assert_int_equal(r->call_frame_count, 0);
    bool aged = false;
    for (size_t i = 0; i < r->age_count; i++)
        aged |= !strcmp(r->ages[i].participant_id, "peer") &&
                r->ages[i].age_ms > 500;
    assert_true(aged);
    shl_heartbeat_result_free(r);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_true(SHL_WAIT_FOR(({
                                 r = NULL;
                                 bool s = shl_op_heartbeat(op, &r) == 0 &&
                                          !r->is_stale;
                                 shl_heartbeat_result_free(r);
                                 s;
                             }),
                             5000));
    assert_int_equal(write(idp[1], "q", 1), 1);
    assert_child_exited(pid, 0);
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    close(idp[1]);
    close(ready[0]);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_barrier_holder),
        cmocka_unit_test(test_flush_barrier_other_holder),
        cmocka_unit_test(test_last_heartbeat_moves_default_mode),
        cmocka_unit_test(test_set_state_transitions),
        cmocka_unit_test(test_stale_member_in_success_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
