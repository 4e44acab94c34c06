/*
 * test_join_liveness.c: a participant is watched from its first instant
 * (issue 13). A member killed within a millisecond of joining fails the
 * operation and every other member is told at once (not at the others'
 * next full pass, up to a second later); a SIGSTOPped member is reported
 * to the others as heartbeatStale; joins and leaves across processes stay
 * correct and leave no watches behind.
 *
 * Children are forked before the parent opens a ledger (no library threads
 * yet), and learn the operation id through a pipe.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "objects.h"
#include "shl_inspect.h"
#include "shl_proc.h"
#include "shl_test.h"

/* The generous bound of a detection in a test (the benchmark gives the
 * numbers: milliseconds); scaled by SHL_TEST_TIMEOUT_MULTIPLIER. */
#define TOLD_WITHIN_MS 500

struct shared {
    _Atomic int64_t t_kill;    /* victim: mono ns right before SIGKILL */
    _Atomic int64_t t_watcher; /* watcher: mono ns when told */
    char id[SHL_OPERATION_ID_MAX + 1];
};

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pid_t kids[4];

static int
teardown(void **state)
{
    (void)state;
    shl_test_kill_children(kids, 4);
    return 0;
}

/* Fork a child that waits for the operation id on a pipe, then runs fn.
 * Returns the write end of that pipe. */
static int
fork_child(int slot, void (*fn)(const char *base, struct shared *sh, int rdy),
           const char *base, struct shared *sh, int ready_fd)
{
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(7);
        fn(base, sh, ready_fd);
        _exit(0);
    }
    close(go[0]);
    kids[slot] = pid;
    return go[1];
}

static void
release(int go)
{
    assert_int_equal(write(go, "g", 1), 1);
    close(go);
}

static void
wait_ready(int rdy)
{
    char c;
    assert_true(shl_test_read_by(rdy, &c, 1,
                                 shl_test_now_ms() +
                                     10000 * shl_test_multiplier()));
}

/* joins and waits for the failure; exit 0 when told */
static void
watcher(const char *base, struct shared *sh, int rdy)
{
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, base, "watcher", NULL));
    shl_op *op;
    CHILD_CHECK(shl_op_join(l, sh->id, NULL, &op));
    (void)!write(rdy, "w", 1);
    shl_failed_info info;
    if (shl_op_wait_failure(op, 10000, &info) != 0)
        _exit(3);
    atomic_store(&sh->t_watcher, mono_ns());
    (void)shl_op_leave(op, true);
    shl_ledger_close(l);
    _exit(0);
}

/* joins, starts a failOnCrash call and dies at once */
static void
victim(const char *base, struct shared *sh, int rdy)
{
    (void)rdy;
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, base, "victim", NULL));
    shl_op *op;
    CHILD_CHECK(shl_op_join(l, sh->id, NULL, &op));
    shl_call *c;
    CHILD_CHECK(shl_call_start(op, NULL, &c));
    atomic_store(&sh->t_kill, mono_ns());
    raise(SIGKILL);
    _exit(9);
}

struct told {
    _Atomic int64_t t;
};

static void
on_failure(shl_op *op, const shl_failed_info *info, void *user)
{
    (void)op;
    (void)info;
    struct told *t = user;
    int64_t z = 0;
    atomic_compare_exchange_strong(&t->t, &z, mono_ns());
}

/* A member killed within a millisecond of joining (its call just started):
 * the operation fails and both other members (the initiator here, a
 * watcher in a third process) are told within TOLD_WITHIN_MS of the kill.
 * Before issue 13 this took up to a second. Repeated, so that a kill right
 * before one of the others' periodic passes cannot make it pass by luck. */
static void
test_kill_right_after_join(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        char base[512];
        shl_test_base(base, sizeof(base), "jl-kill");
        struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
        int rdy[2];
        assert_int_equal(pipe(rdy), 0);
        int go_w = fork_child(0, watcher, base, sh, rdy[1]);
        int go_v = fork_child(1, victim, base, sh, rdy[1]);
        close(rdy[1]);

        shl_ledger *l;
        assert_shl_ok(shl_ledger_open(&l, base, "initiator", NULL));
        struct told told = {0};
        shl_op_callbacks cb = {.on_failure = on_failure, .user = &told};
        shl_op *op;
        assert_shl_ok(shl_op_create(l, "kill after join", &cb, &op));
        snprintf(sh->id, sizeof(sh->id), "%s", shl_op_id(op));
        release(go_w);
        wait_ready(rdy[0]);
        /* let the others settle in their sleep: the kill must not ride on
         * a pass that runs anyway */
        shl_test_pause_ms(30 + 37 * round);
        release(go_v);
        assert_child_signaled(kids[1], SIGKILL);
        kids[1] = 0;
        assert_true(SHL_WAIT_FOR(atomic_load(&told.t) != 0, 5000));
        int64_t tk = atomic_load(&sh->t_kill);
        assert_true(tk != 0);
        int64_t ms = (atomic_load(&told.t) - tk) / 1000000;
        if (ms > TOLD_WITHIN_MS * shl_test_multiplier())
            fail_msg("initiator told %lld ms after the kill", (long long)ms);
        assert_child_exited(kids[0], 0);
        kids[0] = 0;
        ms = (atomic_load(&sh->t_watcher) - tk) / 1000000;
        if (ms > TOLD_WITHIN_MS * shl_test_multiplier())
            fail_msg("watcher told %lld ms after the kill", (long long)ms);
        shl_failed_info info;
        assert_shl_ok(shl_op_wait_failure(op, 1000, &info));
        assert_non_null(strstr(info.reason, "victim"));
        assert_shl_ok(shl_op_leave(op, true));
        assert_segment_clean(shl_ledger_reader(l));
        shl_ledger_close(l);
        close(rdy[0]);
        munmap(sh, sizeof(*sh));
        shl_test_cleanup(base);
    }
}

struct hb_seen {
    _Atomic int stale;
    _Atomic int64_t t;
    char msg[256];
};

static void
on_hb_error(shl_op *op, const shl_heartbeat_error *e, void *user)
{
    (void)op;
    struct hb_seen *h = user;
    if (e->type != SHL_HB_HEARTBEAT_STALE)
        return;
    if (atomic_fetch_add(&h->stale, 1) == 0) {
        snprintf(h->msg, sizeof(h->msg), "%s", e->message);
        atomic_store(&h->t, mono_ns());
    }
}

#define STALE_MS 300

static shl_ledger_opts
stale_opts(void)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.stale_threshold_ms = STALE_MS;
    return o;
}

static void
sleeper_body(const char *base, struct shared *sh, int rdy, bool foc)
{
    shl_ledger_opts o = stale_opts();
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, base, "sleeper", &o));
    shl_op *op;
    CHILD_CHECK(shl_op_join(l, sh->id, NULL, &op));
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.fail_on_crash = foc;
    shl_call *c;
    CHILD_CHECK(shl_call_start(op, &co, &c));
    (void)!write(rdy, "s", 1);
    for (;;)
        pause();
}

static void
sleeper_foc(const char *base, struct shared *sh, int rdy)
{
    sleeper_body(base, sh, rdy, true);
}

static void
sleeper_nofoc(const char *base, struct shared *sh, int rdy)
{
    sleeper_body(base, sh, rdy, false);
}

/* A SIGSTOPped member is reported to the others as heartbeatStale through
 * on_heartbeat_error, within the stale threshold plus two checks (the
 * bound of shmledger.h), once; with failOnCrash the operation fails, without
 * it the operation runs on (the frame goes, and is no longer silent). */
static void
stale_case(bool foc)
{
    char base[512];
    shl_test_base(base, sizeof(base), "jl-stale");
    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    int rdy[2];
    assert_int_equal(pipe(rdy), 0);
    int go = fork_child(0, foc ? sleeper_foc : sleeper_nofoc, base, sh,
                        rdy[1]);
    close(rdy[1]);
    shl_ledger_opts o = stale_opts();
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "initiator", &o));
    struct hb_seen h = {0};
    shl_op_callbacks cb = {.on_heartbeat_error = on_hb_error, .user = &h};
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "stale", &cb, &op));
    snprintf(sh->id, sizeof(sh->id), "%s", shl_op_id(op));
    release(go);
    wait_ready(rdy[0]);
    int64_t t0 = mono_ns();
    kill(kids[0], SIGSTOP);
    assert_true(SHL_WAIT_FOR(atomic_load(&h.stale) >= 1, 5000));
    int64_t ms = (atomic_load(&h.t) - t0) / 1000000;
    /* bound: threshold + 2 * min(1 s, threshold / 4), plus slack */
    if (ms > (STALE_MS + 2 * STALE_MS / 4 + 500) * shl_test_multiplier())
        fail_msg("heartbeatStale %lld ms after SIGSTOP", (long long)ms);
    assert_non_null(strstr(h.msg, "sleeper"));
    if (foc) {
        assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED ||
                                     shl_op_get_state(op) == SHL_OP_CLEANUP,
                                 5000));
    } else {
        assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    }
    /* reported once per stale member, not at every pass */
    shl_test_pause_ms(3 * STALE_MS / 4);
    assert_int_equal(atomic_load(&h.stale), 1);
    kill(kids[0], SIGKILL);
    assert_child_signaled(kids[0], SIGKILL);
    kids[0] = 0;
    if (foc)
        assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    close(rdy[0]);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

static void
test_sigstop_reported_stale(void **state)
{
    (void)state;
    stale_case(true);
}

static void
test_sigstop_reported_stale_no_fail(void **state)
{
    (void)state;
    stale_case(false);
}

/* joins and leaves 200 times, then joins once more and waits to be killed */
static void
churner(const char *base, struct shared *sh, int rdy)
{
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, base, "churner", NULL));
    for (int i = 0; i < 200; i++) {
        shl_op *op;
        CHILD_CHECK(shl_op_join(l, sh->id, NULL, &op));
        CHILD_CHECK(shl_op_leave(op, false));
    }
    shl_op *op;
    CHILD_CHECK(shl_op_join(l, sh->id, NULL, &op));
    shl_call *c;
    CHILD_CHECK(shl_call_start(op, NULL, &c));
    (void)!write(rdy, "c", 1);
    for (;;)
        pause();
}

static int
members_of(shl_ledger *l, const char *id)
{
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(l), id);
    int n = (int)s->participant_count;
    shl_snapshot_free(s);
    return n;
}

static int
watched_count(shl_ledger *l)
{
    int n = 0;
    for (size_t w = 0; w < SHL__ARRAY_LEN(l->watched); w++)
        n += __builtin_popcountll(atomic_load(&l->watched[w]));
    return n;
}

/* Joins and leaves across processes: the membership stays exact, the
 * initiator's monitor keeps one watch for the one peer (no pidfd left
 * behind per join), and a kill after the churn is still told at once. */
static void
test_join_leave_churn(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "jl-churn");
    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    int rdy[2];
    assert_int_equal(pipe(rdy), 0);
    int go = fork_child(0, churner, base, sh, rdy[1]);
    close(rdy[1]);
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "initiator", NULL));
    struct told told = {0};
    shl_op_callbacks cb = {.on_failure = on_failure, .user = &told};
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "churn", &cb, &op));
    snprintf(sh->id, sizeof(sh->id), "%s", shl_op_id(op));
    release(go);
    wait_ready(rdy[0]);
    assert_int_equal(members_of(l, sh->id), 2);
    assert_int_equal(shl_op_get_state(op), SHL_OP_RUNNING);
    /* the watch of the one peer, and no more */
    assert_true(SHL_WAIT_FOR(watched_count(l) == 1, 2000));
    int64_t tk = mono_ns();
    kill(kids[0], SIGKILL);
    assert_child_signaled(kids[0], SIGKILL);
    kids[0] = 0;
    assert_true(SHL_WAIT_FOR(atomic_load(&told.t) != 0, 5000));
    int64_t ms = (atomic_load(&told.t) - tk) / 1000000;
    if (ms > TOLD_WITHIN_MS * shl_test_multiplier())
        fail_msg("initiator told %lld ms after the kill", (long long)ms);
    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    close(rdy[0]);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill_right_after_join, teardown),
        cmocka_unit_test_teardown(test_sigstop_reported_stale, teardown),
        cmocka_unit_test_teardown(test_sigstop_reported_stale_no_fail,
                                  teardown),
        cmocka_unit_test_teardown(test_join_leave_churn, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
