/*
 * test_liveness.c: heartbeats (results, classification, callbacks), the
 * pollable fd, lockFailed, ledgerNotFound and the global heartbeat error,
 * and pid-reuse safety of the proof of death.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "objects.h"
#include "shm/lock.h"
#include "shl_inspect.h"
#include "shl_test.h"

struct hb_rec {
    _Atomic int success;
    _Atomic int errors[5];
    _Atomic int global_errors;
    char first_msg[5][256]; /* per type, written before its count */
    _Atomic int last_type;
};

static void
on_success(shl_op *op, const shl_heartbeat_result *r, void *user)
{
    (void)op;
    (void)r;
    struct hb_rec *h = user;
    atomic_fetch_add(&h->success, 1);
}

static void
on_error(shl_op *op, const shl_heartbeat_error *e, void *user)
{
    (void)op;
    struct hb_rec *h = user;
    /* the message first, then the count the test polls (it used to be
     * the other way round: the test could read the message before it was
     * written, a flake seen under ASan) */
    if ((int)e->type >= 0 && e->type < 5) {
        if (atomic_load(&h->errors[e->type]) == 0)
            snprintf(h->first_msg[e->type], sizeof(h->first_msg[e->type]),
                     "%s", e->message);
        atomic_fetch_add(&h->errors[e->type], 1);
    }
    atomic_store(&h->last_type, (int)e->type);
}

static void
on_global(shl_op *op, const shl_heartbeat_error *e, void *user)
{
    (void)op;
    (void)e;
    struct hb_rec *h = user;
    atomic_fetch_add(&h->global_errors, 1);
}

static shl_ledger_opts
opts_fast(void)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.heartbeat_interval_ms = 50;
    return o;
}

/* heartbeat(): every field filled; success callbacks on ticks */
static void
test_liveness_heartbeat_result(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "hb");
    struct hb_rec h = {0};
    shl_ledger_opts o = opts_fast();
    shl_ledger *l, *l2;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", &o));
    shl_op_callbacks cb = {.on_heartbeat_success = on_success,
                           .on_heartbeat_error = on_error,
                           .user = &h};
    shl_op *op, *j;
    assert_shl_ok(shl_op_create(l, "hb", &cb, &op));
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &j));
    /* cachedData: read on first use (no frames yet), then read again
     * whenever the operation changed (issue 18: the original's cache shows
     * its own changes at once) */
    shl_snapshot *cached = NULL;
    assert_int_equal(shl_op_cached_data(op, &cached), 1);
    assert_non_null(cached);
    assert_int_equal(cached->frame_count, 0);
    assert_string_equal(cached->operation_id, shl_op_id(op));
    shl_snapshot_free(cached);
    assert_int_equal(shl_op_cached_data(j, &cached), 1);
    shl_snapshot_free(cached);

    shl_call *c1, *c2;
    assert_shl_ok(shl_call_start(op, NULL, &c1));
    assert_shl_ok(shl_call_start(j, NULL, &c2));
    assert_shl_ok(shl_op_register_temp_resource(op, "/tmp/hb-res"));
    assert_int_equal(shl_op_cached_data(op, &cached), 1);
    assert_int_equal(cached->frame_count, 2); /* changed: read again */
    assert_int_equal(cached->resource_count, 1);
    shl_snapshot_free(cached);

    shl_heartbeat_result *r = NULL;
    assert_shl_ok(shl_op_heartbeat(op, &r));
    assert_int_equal(shl_op_cached_data(op, &cached), 1);
    assert_int_equal(cached->frame_count, 2);
    assert_int_equal(cached->resource_count, 1);
    shl_snapshot_free(cached);
    assert_false(r->abort_flag);
    assert_true(r->ledger_exists);
    assert_true(r->heartbeat_updated);
    assert_int_equal(r->call_frame_count, 2);
    assert_int_equal(r->temp_resource_count, 1);
    assert_true(r->heartbeat_age_ms >= 0);
    assert_false(r->is_stale);
    assert_int_equal(r->participant_count, 2);
    assert_int_equal(r->age_count, 2);
    assert_int_equal(r->stale_count, 0);
    assert_false(r->has_stale_children);
    assert_non_null(r->data_before);
    assert_non_null(r->data_after);
    assert_int_equal(r->data_after->frame_count, 2);
    bool saw_cli = false, saw_bridge = false;
    for (size_t i = 0; i < r->participant_count; i++) {
        saw_cli |= !strcmp(r->participants[i], "cli");
        saw_bridge |= !strcmp(r->participants[i], "bridge");
    }
    assert_true(saw_cli && saw_bridge);
    shl_heartbeat_result_free(r);

    /* ticks fire the success callback (50 ms interval) */
    assert_true(SHL_WAIT_FOR(atomic_load(&h.success) >= 2, 5000));
    for (int t = 0; t < 5; t++)
        assert_int_equal(atomic_load(&h.errors[t]), 0);
    /* stop: no more ticks; restart with new settings: ticks again */
    shl_op_stop_heartbeat(op);
    int after_stop = atomic_load(&h.success);
    struct hb_rec h2 = {0};
    shl_heartbeat_opts ho;
    shl_heartbeat_opts_init(&ho);
    assert_int_equal(ho.interval_ms, 4500);
    assert_int_equal(ho.jitter_ms, 500);
    ho.interval_ms = 20;
    ho.jitter_ms = 5;
    ho.on_success = on_success;
    ho.user = &h2;
    assert_shl_ok(shl_op_start_heartbeat(op, &ho));
    assert_true(SHL_WAIT_FOR(atomic_load(&h2.success) >= 3, 5000));
    assert_true(atomic_load(&h.success) >= after_stop);
    ho.interval_ms = 0;
    assert_int_equal(shl_op_start_heartbeat(op, &ho), -EINVAL);

    assert_shl_ok(shl_call_end(c2, NULL));
    assert_shl_ok(shl_call_end(c1, NULL));
    assert_shl_ok(shl_op_leave(j, false));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* shl_op_wait_abort sees the operation's shared flag itself: it returns
 * even while the futex thread that would deliver the abort to it is busy
 * (here: stuck in another session's on_abort, delivered first). */
struct blocking_abort {
    _Atomic int entered;
    _Atomic int release;
};

static void
on_abort_blocking(shl_op *op, void *user)
{
    (void)op;
    struct blocking_abort *b = user;
    atomic_store(&b->entered, 1);
    (void)SHL_WAIT_FOR(atomic_load(&b->release), 10000);
}

static void
test_liveness_wait_abort_sees_the_flag(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "hb-abort-direct");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o); /* 5 s heartbeat: no pass delivers meanwhile */
    shl_ledger *l, *l2;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", &o));
    shl_op *op, *waiter, *blocker;
    assert_shl_ok(shl_op_create(l, "abort", NULL, &op));
    /* sessions are delivered newest first: the blocker's callback runs
     * before the waiter is told */
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), NULL, &waiter));
    struct blocking_abort b = {0};
    shl_op_callbacks cb = {.on_abort = on_abort_blocking, .user = &b};
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), &cb, &blocker));
    assert_int_equal(shl_op_wait_abort(waiter, 0), -ETIMEDOUT);
    assert_false(shl_op_is_aborted(waiter));
    assert_shl_ok(shl_op_set_abort_flag(op, true));
    assert_true(SHL_WAIT_FOR(atomic_load(&b.entered), 5000));
    /* the futex thread of l2 is inside the blocker's on_abort */
    assert_int_equal(shl_op_wait_abort(waiter, 0), 0);
    assert_true(shl_op_is_aborted(waiter));
    assert_shl_ok(shl_op_wait_abort(waiter, 1000));
    atomic_store(&b.release, 1);
    assert_shl_ok(shl_op_wait_abort(blocker, 5000));
    assert_shl_ok(shl_op_leave(blocker, false));
    assert_shl_ok(shl_op_leave(waiter, false));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* abortFlagSet: callback, on_abort, wait, and the event fd */
static void
test_liveness_abort_channels(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "hb-abort");
    struct hb_rec h = {0};
    shl_ledger_opts o = opts_fast();
    shl_ledger *l, *l2;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", &o));
    shl_op *op, *j;
    assert_shl_ok(shl_op_create(l, "abort", NULL, &op));
    shl_op_callbacks cb = {.on_heartbeat_error = on_error, .user = &h};
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), &cb, &j));
    int fd = shl_op_event_fd(j);
    assert_true(fd >= 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(shl_op_wait_abort(j, 10), -ETIMEDOUT);
    assert_shl_ok(shl_op_set_abort_flag(op, true));
    assert_int_equal(poll(&pfd, 1, 5000 * shl_test_multiplier()), 1);
    assert_shl_ok(shl_op_wait_abort(j, 5000));
    assert_true(shl_op_is_aborted(j));
    assert_true(SHL_WAIT_FOR(
        atomic_load(&h.errors[SHL_HB_ABORT_FLAG_SET]) >= 1, 5000));
    assert_string_equal(shl_heartbeat_error_type_name(SHL_HB_ABORT_FLAG_SET),
                        "abortFlagSet");
    assert_shl_ok(shl_op_leave(j, false));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ledgerNotFound after the initiator completes; the global callback too */
static void
test_liveness_ledger_not_found(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "hb-gone");
    struct hb_rec h = {0};
    shl_ledger_opts o = opts_fast();
    shl_ledger *l, *l2;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_ledger_opts o2 = o;
    o2.callbacks.on_global_heartbeat_error = on_global;
    o2.callbacks.user = &h;
    assert_shl_ok(shl_ledger_open(&l2, base, "bridge", &o2));
    shl_op *op, *j;
    assert_shl_ok(shl_op_create(l, "gone", NULL, &op));
    shl_op_callbacks cb = {.on_heartbeat_error = on_error, .user = &h};
    assert_shl_ok(shl_op_join(l2, shl_op_id(op), &cb, &j));
    assert_shl_ok(shl_op_complete(op));
    assert_true(SHL_WAIT_FOR(
        atomic_load(&h.errors[SHL_HB_LEDGER_NOT_FOUND]) >= 1, 5000));
    assert_true(SHL_WAIT_FOR(atomic_load(&h.global_errors) >= 1, 5000));
    shl_heartbeat_result *r = (shl_heartbeat_result *)(uintptr_t)1;
    assert_int_equal(shl_op_heartbeat(j, &r), SHL_ENOTFOUND);
    assert_ptr_equal(r, (shl_heartbeat_result *)(uintptr_t)1);
    assert_shl_ok(shl_op_leave(j, false));
    shl_ledger_close(l2);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* heartbeatStale: a stopped participant's frame is older than the frame
 * staleness threshold (but the ledger stale threshold is long: no crash) */
static void
test_liveness_heartbeat_stale(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "hb-stale");
    struct hb_rec h = {0};
    shl_ledger_opts o = opts_fast();
    o.stale_threshold_ms = 60000;
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op_callbacks cb = {.on_heartbeat_error = on_error, .user = &h};
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "stale", &cb, &op));
    assert_shl_ok(shl_op_set_staleness_threshold_ms(op, 150));
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t kid = fork();
    if (kid == 0) {
        shl_ledger *kl;
        CHILD_CHECK(shl_ledger_open(&kl, base, "stale_participant", &o));
        shl_op *kop;
        CHILD_CHECK(shl_op_join(kl, shl_op_id(op), NULL, &kop));
        shl_call *c;
        CHILD_CHECK(shl_call_start(kop, NULL, &c));
        (void)!write(ready[1], "x", 1);
        for (;;)
            pause();
    }
    char x;
    assert_int_equal(read(ready[0], &x, 1), 1);
    kill(kid, SIGSTOP);
    assert_true(SHL_WAIT_FOR(
        atomic_load(&h.errors[SHL_HB_HEARTBEAT_STALE]) >= 1, 5000));
    assert_non_null(
        strstr(h.first_msg[SHL_HB_HEARTBEAT_STALE], "stale_participant"));
    /* not a crash: the operation runs on */
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    /* now it is dead: the crash protocol runs */
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    close(ready[0]);
    close(ready[1]);
    shl_test_cleanup(base);
}

/* lockFailed: a process holds the structure lock while a death must be
 * handled; the observer reports lockFailed, then recovers. */
static void
test_liveness_lock_failed(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "hb-lock");
    struct hb_rec h = {0};
    shl_ledger_opts o = opts_fast();
    o.timeout_ms = 100;
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op_callbacks cb = {.on_heartbeat_error = on_error, .user = &h};
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "lock", &cb, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));
    int p1[2], p2[2], go[2];
    assert_int_equal(pipe(p1), 0);
    assert_int_equal(pipe(p2), 0);
    assert_int_equal(pipe(go), 0);
    char x;
    pid_t victim = fork();
    if (victim == 0) {
        shl_ledger *vl;
        CHILD_CHECK(shl_ledger_open(&vl, base, "victim", &o));
        shl_op *vop;
        CHILD_CHECK(shl_op_join(vl, opid, NULL, &vop));
        shl_call *c;
        CHILD_CHECK(shl_call_start(vop, NULL, &c));
        (void)!write(p2[1], "x", 1);
        for (;;)
            pause();
    }
    assert_int_equal(read(p2[0], &x, 1), 1);
    pid_t holder = fork();
    if (holder == 0) {
        shl_ledger *hl;
        CHILD_CHECK(shl_ledger_open(&hl, base, "holder", &o));
        CHILD_CHECK(shl__lock(&hl->seg, 1000));
        (void)!write(p1[1], "x", 1);
        char c;
        (void)!read(go[0], &c, 1); /* hold until told */
        shl__unlock(&hl->seg);
        shl_ledger_close(hl);
        _exit(0);
    }
    assert_int_equal(read(p1[0], &x, 1), 1);
    kill(victim, SIGKILL);
    assert_child_signaled(victim, SIGKILL);
    /* the death is proven, but handling it needs the lock: lockFailed */
    assert_true(SHL_WAIT_FOR(
        atomic_load(&h.errors[SHL_HB_LOCK_FAILED]) >= 1, 5000));
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    /* the holder lets go: the crash protocol completes */
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_child_exited(holder, 0);
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    for (int i = 0; i < 2; i++) {
        close(p1[i]);
        close(p2[i]);
        close(go[i]);
    }
    shl_test_cleanup(base);
}

/* PID reuse: a slot whose recorded start time does not match its pid is
 * never watched through that pid, yet stays alive (its lock is held) and its
 * death is still proven by the lock. */
static void
test_liveness_pid_reuse(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "pidreuse");
    shl_ledger_opts o = opts_fast();
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "reuse", NULL, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t kid = fork();
    if (kid == 0) {
        shl_ledger *kl;
        CHILD_CHECK(shl_ledger_open(&kl, base, "kid", &o));
        /* pretend the pid was reused: wrong start time in our slot */
        shl__part_at(&kl->seg, kl->slot)->start_time += 12345;
        shl_op *kop;
        CHILD_CHECK(shl_op_join(kl, opid, NULL, &kop));
        shl_call *c;
        CHILD_CHECK(shl_call_start(kop, NULL, &c));
        (void)!write(p[1], "x", 1);
        for (;;)
            pause();
    }
    char x;
    assert_int_equal(read(p[0], &x, 1), 1);
    /* alive for everybody (the kernel lock says so), over several passes */
    shl_snapshot *s = NULL;
    for (int i = 0; i < 5; i++) {
        assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(l), opid, &s));
        for (size_t k = 0; k < s->participant_count; k++)
            assert_true(s->participants[k].alive);
        shl_snapshot_free(s);
        assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
        shl_test_pause_ms(60);
    }
    kill(kid, SIGKILL);
    assert_child_signaled(kid, SIGKILL);
    /* no pidfd for it, yet its death is proven by the lock */
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    close(p[0]);
    close(p[1]);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_liveness_heartbeat_result),
        cmocka_unit_test(test_liveness_abort_channels),
        cmocka_unit_test(test_liveness_wait_abort_sees_the_flag),
        cmocka_unit_test(test_liveness_ledger_not_found),
        cmocka_unit_test(test_liveness_heartbeat_stale),
        cmocka_unit_test(test_liveness_lock_failed),
        cmocka_unit_test(test_liveness_pid_reuse),
    };
    return cmocka_run_group_tests_name("liveness", tests, NULL, NULL);
}
