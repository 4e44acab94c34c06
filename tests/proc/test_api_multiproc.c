/*
 * test_api_multiproc.c: several processes in one operation (issue 3).
 *
 * An initiator and 3 forked participants: each participant joins and runs
 * 1,000 start/end calls (releasing the handles), checking through its own
 * reader that every frame appeared before start returned and was gone
 * after end. The parent polls snapshots meanwhile and checks each one.
 * At the end every child reports exactly 1,000 ended calls through a pipe
 * (and exits 0), the frame count is back to 0 and the checker passes.
 *
 * The children are forked before the parent opens its ledger: a ledger
 * runs threads, and a child forked from a threaded process may only call
 * async-signal-safe functions (under ASan a child forked while a monitor
 * thread held an allocator lock deadlocks in malloc). They get the
 * operation id through a pipe. Every wait on a child is bounded, and the
 * teardown kills children left behind by a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

#include "shl_proc.h"

#define NCHILD 3
#define NCALLS 1000

static pid_t live[NCHILD];

/* Teardown: kill and reap children a failed test left behind. */
static int
kill_children(void **state)
{
    (void)state;
    shl_test_kill_children(live, NCHILD);
    return 0;
}

struct child_report {
    int ended;    /* calls ended successfully */
    int appeared; /* frames seen in a snapshot right after start */
    int vanished; /* frames no longer in a snapshot right after end */
    int last_n;   /* counter part of the last call id */
};

static bool
has_frame(shl_reader *r, const char *op_id, const char *call_id, int *err)
{
    shl_snapshot *s = NULL;
    int rc = shl_reader_snapshot(r, op_id, &s);
    if (rc) {
        *err = rc;
        return false;
    }
    bool found = false;
    for (size_t i = 0; i < s->frame_count; i++)
        if (strcmp(s->frames[i].call_id, call_id) == 0)
            found = true;
    shl_snapshot_free(s);
    return found;
}

/* In the child: get the operation id, join, signal ready, wait for go, run
 * the calls, report. */
static void
child_main(const char *base, int id_fd, const char *name, int ready_fd,
           int go_fd, int report_fd)
{
    char op_id[SHL_OPERATION_ID_MAX + 1];
    if (read(id_fd, op_id, sizeof(op_id)) != (ssize_t)sizeof(op_id))
        _exit(9);
    op_id[SHL_OPERATION_ID_MAX] = 0;
    shl_ledger *l = NULL;
    CHILD_CHECK(shl_ledger_open(&l, base, name, NULL));
    shl_op *op = NULL;
    CHILD_CHECK(shl_op_join(l, op_id, NULL, &op));
    if (shl_op_is_initiator(op) || shl_op_session_id(op) != 1)
        _exit(10);
    if (write(ready_fd, "r", 1) != 1)
        _exit(11);
    char b;
    if (read(go_fd, &b, 1) != 1)
        _exit(12);

    shl_reader *r = shl_ledger_reader(l);
    struct child_report rep = {0};
    char prefix[96];
    int n = snprintf(prefix, sizeof(prefix), "call_%s_", name);
    for (int i = 0; i < NCALLS; i++) {
        shl_call *c = NULL;
        CHILD_CHECK(shl_call_start(op, NULL, &c));
        int err = 0;
        if (has_frame(r, op_id, shl_call_id(c), &err))
            rep.appeared++;
        CHILD_CHECK(err);
        char id[SHL_CALL_ID_MAX + 1];
        snprintf(id, sizeof(id), "%s", shl_call_id(c));
        if (strncmp(id, prefix, (size_t)n) != 0)
            _exit(13);
        rep.last_n = atoi(id + n);
        CHILD_CHECK(shl_call_end(c, NULL));
        rep.ended++;
        CHILD_CHECK(shl_call_release(c));
        if (!has_frame(r, op_id, id, &err))
            rep.vanished++;
        CHILD_CHECK(err);
        if (shl_op_pending_call_count(op) != 0)
            _exit(14);
    }
    CHILD_CHECK(shl_op_leave(op, false));
    shl_ledger_close(l);
    if (write(report_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        _exit(15);
    _exit(0);
}

/* Check one snapshot taken while the children run. */
static void
check_snapshot(const shl_snapshot *s, size_t *max_frames, size_t *seen)
{
    assert_int_equal(s->state, SHL_OP_RUNNING);
    assert_string_equal(s->initiator_id, "init");
    /* every child has at most one call pending at a time */
    assert_true(s->frame_count <= NCHILD);
    for (size_t i = 0; i < s->frame_count; i++) {
        const shl_call_frame *f = &s->frames[i];
        assert_int_equal(f->state, SHL_FRAME_ACTIVE);
        assert_true(strcmp(f->participant_id, "p0") == 0 ||
                    strcmp(f->participant_id, "p1") == 0 ||
                    strcmp(f->participant_id, "p2") == 0);
        assert_int_equal(f->session_id, 1);
        assert_true(f->fail_on_crash);
        for (size_t k = 0; k < i; k++) {
            assert_string_not_equal(f->call_id, s->frames[k].call_id);
            /* one frame per participant */
            assert_string_not_equal(f->participant_id,
                                    s->frames[k].participant_id);
        }
    }
    if (s->frame_count > *max_frames)
        *max_frames = s->frame_count;
    *seen += s->frame_count;
}

static void
test_api_multiproc_three_participants_1000_calls(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-mp");
    int64_t deadline =
        shl_test_now_ms() + (int64_t)60000 * shl_test_multiplier();

    /* fork while single-threaded, before any ledger exists */
    assert_int_equal(shl_test_thread_count(), 1);
    int idp[2], ready[2], go[2];
    assert_int_equal(pipe(idp), 0);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    int report[NCHILD][2];
    pid_t pids[NCHILD];
    fflush(NULL);
    for (int i = 0; i < NCHILD; i++) {
        assert_int_equal(pipe(report[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char name[8];
            snprintf(name, sizeof(name), "p%d", i);
            close(idp[1]);
            close(ready[0]);
            close(go[1]);
            close(report[i][0]);
            child_main(base, idp[0], name, ready[1], go[0], report[i][1]);
        }
        live[i] = pids[i];
        close(report[i][1]);
    }
    close(idp[0]);
    close(ready[1]);
    close(go[0]);

    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "init", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, "multiproc", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1] = {0};
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    for (int i = 0; i < NCHILD; i++)
        assert_int_equal(write(idp[1], id, sizeof(id)), (ssize_t)sizeof(id));
    close(idp[1]);

    /* everyone joined */
    for (int i = 0; i < NCHILD; i++) {
        char b;
        if (!shl_test_read_by(ready[0], &b, 1, deadline))
            fail_msg("only %d of %d children joined; see their stderr", i,
                     NCHILD);
    }
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base)); /* a separate, passive reader */
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(r, id, &s));
    assert_int_equal(s->participant_count, NCHILD + 1);
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);

    /* go: all children start at once */
    for (int i = 0; i < NCHILD; i++)
        assert_int_equal(write(go[1], "g", 1), 1);

    struct child_report reps[NCHILD];
    bool got[NCHILD] = {false};
    int remaining = NCHILD;
    size_t snapshots = 0, max_frames = 0, frames_seen = 0;
    while (remaining > 0) {
        if (shl_test_now_ms() > deadline)
            fail_msg("%d children did not report in time", remaining);
        assert_shl_ok(shl_reader_snapshot(r, id, &s));
        check_snapshot(s, &max_frames, &frames_seen);
        shl_snapshot_free(s);
        snapshots++;
        shl_op_summary *rows = NULL;
        size_t n = 0;
        assert_shl_ok(shl_reader_list(r, &rows, &n));
        assert_int_equal(n, 1);
        assert_true(rows[0].frame_count <= NCHILD);
        free(rows);
        for (int i = 0; i < NCHILD; i++) {
            if (got[i])
                continue;
            struct pollfd pfd = {.fd = report[i][0], .events = POLLIN};
            if (poll(&pfd, 1, 0) == 1) {
                ssize_t k = read(report[i][0], &reps[i], sizeof(reps[i]));
                if (k != (ssize_t)sizeof(reps[i]))
                    fail_msg("child %d: no report (read %zd); see its "
                             "stderr",
                             i, k);
                got[i] = true;
                remaining--;
            }
        }
    }
    int total = 0;
    for (int i = 0; i < NCHILD; i++) {
        assert_child_exited(pids[i], 0);
        live[i] = 0;
        close(report[i][0]);
        assert_int_equal(reps[i].ended, NCALLS);
        assert_int_equal(reps[i].appeared, NCALLS);
        assert_int_equal(reps[i].vanished, NCALLS);
        assert_int_equal(reps[i].last_n, NCALLS); /* ids counted 1..1000 */
        total += reps[i].ended;
    }
    assert_int_equal(total, NCHILD * NCALLS);
    close(ready[0]);
    close(go[1]);
    print_message("%zu snapshots during the run, max %zu frames at once, "
                  "%zu frame sightings\n",
                  snapshots, max_frames, frames_seen);

    /* every frame is gone; the children's slots are free again */
    assert_shl_ok(shl_reader_snapshot(r, id, &s));
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->participant_count, 1);
    assert_int_equal(s->state, SHL_OP_RUNNING);
    shl_snapshot_free(s);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_frames, 0);
    assert_int_equal(info.used_participants, 1);
    assert_int_equal(info.used_operations, 1);
    assert_segment_clean(r);

    assert_shl_ok(shl_op_complete(op));
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_operations, 0);
    assert_segment_clean(r);
    shl_reader_close(r);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_api_multiproc_three_participants_1000_calls, kill_children),
    };
    return cmocka_run_group_tests_name("api_multiproc", tests, NULL, NULL);
}
