/*
 * test_api_lifecycle.c: the original's concurrency and lifecycle cases
 * with real processes (issue 3):
 *  - "full lifecycle CLI -> Bridge -> VSCode": the CLI creates the
 *    operation and starts a call, a Bridge process joins and starts a call,
 *    a VSCode process joins and starts a call; 3 frames; they unwind in
 *    reverse order to 0 frames; the CLI completes; the operation is gone.
 *  - "two participants each create frames -> 2 frames".
 * The processes are sequenced with pipes, never with sleeps.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

#include "shl_proc.h"

/* A participant process: parent -> child commands, child -> parent acks.
 * Peers are forked before the parent opens its ledger (a ledger runs
 * threads; a child of a threaded process may only call async-signal-safe
 * functions, and under ASan it can deadlock in malloc), then told the
 * operation id. Every wait is bounded; the teardown kills leftovers. */
struct peer {
    pid_t pid;
    int cmd; /* parent writes */
    int ack; /* parent reads */
    char name[16];
    char call_id[SHL_CALL_ID_MAX + 1];
};

#define MAX_PEERS 4
static pid_t live[MAX_PEERS];

static int
kill_peers(void **state)
{
    (void)state;
    shl_test_kill_children(live, MAX_PEERS);
    return 0;
}

static void
forget_peer(pid_t pid)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (live[i] == pid)
            live[i] = 0;
}

/* Read exactly n bytes within `ms` (scaled); false on timeout or EOF. */
static bool
read_within(int fd, void *buf, size_t n, int ms)
{
    return shl_test_read_by(
        fd, buf, n, shl_test_now_ms() + (int64_t)ms * shl_test_multiplier());
}

/* Child: wait for the operation id, open as `name`, join, start one call
 * (description "<name> work"), send the call id, wait for 'E', end the
 * call, leave, close, ack 'D'. */
static void
peer_main(const char *base, const char *name, int cmd, int ack)
{
    char op_id[SHL_OPERATION_ID_MAX + 1];
    if (read(cmd, op_id, sizeof(op_id)) != (ssize_t)sizeof(op_id))
        _exit(9);
    op_id[SHL_OPERATION_ID_MAX] = 0;
    shl_ledger *l = NULL;
    CHILD_CHECK(shl_ledger_open(&l, base, name, NULL));
    shl_op *op = NULL;
    CHILD_CHECK(shl_op_join(l, op_id, NULL, &op));
    if (shl_op_is_initiator(op))
        _exit(10);
    char desc[64];
    snprintf(desc, sizeof(desc), "%s work", name);
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.description = desc;
    shl_call *c = NULL;
    CHILD_CHECK(shl_call_start(op, &o, &c));
    char id[SHL_CALL_ID_MAX + 1] = {0};
    snprintf(id, sizeof(id), "%s", shl_call_id(c));
    if (write(ack, id, sizeof(id)) != (ssize_t)sizeof(id))
        _exit(11);
    char b = 0;
    if (read(cmd, &b, 1) != 1 || b != 'E')
        _exit(12);
    CHILD_CHECK(shl_call_end(c, NULL));
    CHILD_CHECK(shl_op_leave(op, false));
    shl_ledger_close(l);
    if (write(ack, "D", 1) != 1)
        _exit(13);
    _exit(0);
}

/* Fork an idle peer (the caller must still be single-threaded). */
static void
peer_fork(struct peer *p, const char *base, const char *name)
{
    assert_int_equal(shl_test_thread_count(), 1);
    int cmd[2], ack[2];
    assert_int_equal(pipe(cmd), 0);
    assert_int_equal(pipe(ack), 0);
    snprintf(p->name, sizeof(p->name), "%s", name);
    fflush(NULL);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        close(cmd[1]);
        close(ack[0]);
        peer_main(base, name, cmd[0], ack[1]);
    }
    for (int i = 0; i < MAX_PEERS; i++)
        if (live[i] == 0) {
            live[i] = p->pid;
            break;
        }
    close(cmd[0]);
    close(ack[1]);
    p->cmd = cmd[1];
    p->ack = ack[0];
}

/* Send the operation id; wait until the peer's call is started. */
static void
peer_join(struct peer *p, const char *op_id)
{
    char id[SHL_OPERATION_ID_MAX + 1] = {0};
    snprintf(id, sizeof(id), "%s", op_id);
    assert_int_equal(write(p->cmd, id, sizeof(id)), (ssize_t)sizeof(id));
    if (!read_within(p->ack, p->call_id, sizeof(p->call_id), 10000))
        fail_msg("%s did not start its call; see its stderr", p->name);
}

/* Tell the peer to end its call and leave; wait until it has, and for its
 * exit status. */
static void
peer_finish(struct peer *p)
{
    assert_int_equal(write(p->cmd, "E", 1), 1);
    char b = 0;
    if (!read_within(p->ack, &b, 1, 10000))
        fail_msg("%s did not finish; see its stderr", p->name);
    assert_int_equal(b, 'D');
    assert_child_exited(p->pid, 0);
    forget_peer(p->pid);
    close(p->cmd);
    close(p->ack);
}

static bool
has_participant(const shl_snapshot *s, const char *who)
{
    for (size_t i = 0; i < s->participant_count; i++)
        if (strcmp(s->participants[i].participant_id, who) == 0)
            return true;
    return false;
}

static void
test_api_lifecycle_cli_bridge_vscode(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-life");
    struct peer bridge, vscode;
    peer_fork(&bridge, base, "bridge");
    peer_fork(&vscode, base, "vscode");
    shl_ledger *cli = NULL;
    assert_shl_ok(shl_ledger_open(&cli, base, "cli", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(cli, "full lifecycle", NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    shl_call_opts o;
    shl_call_opts_init(&o);
    o.description = "cli work";
    shl_call *cc = NULL;
    assert_shl_ok(shl_call_start(op, &o, &cc));
    shl_reader *r = NULL;
    assert_shl_ok(shl_reader_open(&r, base));

    peer_join(&bridge, id);
    shl_snapshot *s = shl_test_snap(r, id);
    assert_int_equal(s->frame_count, 2);
    shl_snapshot_free(s);
    peer_join(&vscode, id);

    /* 3 frames, in start order: cli, bridge, vscode */
    s = shl_test_snap(r, id);
    assert_int_equal(s->frame_count, 3);
    const char *who[3] = {"cli", "bridge", "vscode"};
    const char *ids[3] = {shl_call_id(cc), bridge.call_id, vscode.call_id};
    pid_t pids[3] = {getpid(), bridge.pid, vscode.pid};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(s->frames[i].participant_id, who[i]);
        assert_string_equal(s->frames[i].call_id, ids[i]);
        assert_int_equal(s->frames[i].pid, pids[i]);
        assert_true(s->frames[i].has_description);
        char desc[64];
        snprintf(desc, sizeof(desc), "%s work", who[i]);
        assert_string_equal(s->frames[i].description, desc);
        assert_int_equal(s->frames[i].state, SHL_FRAME_ACTIVE);
        if (i > 0)
            assert_true(s->frames[i].start_time_us >=
                        s->frames[i - 1].start_time_us);
    }
    assert_int_equal(s->participant_count, 3);
    for (int i = 0; i < 3; i++)
        assert_true(has_participant(s, who[i]));
    for (size_t i = 0; i < s->participant_count; i++)
        assert_true(s->participants[i].alive);
    assert_string_equal(s->initiator_id, "cli");
    shl_snapshot_free(s);
    assert_segment_clean(r);

    /* unwind in reverse order */
    peer_finish(&vscode);
    s = shl_test_snap(r, id);
    assert_int_equal(s->frame_count, 2);
    assert_string_equal(s->frames[0].participant_id, "cli");
    assert_string_equal(s->frames[1].participant_id, "bridge");
    assert_false(has_participant(s, "vscode"));
    shl_snapshot_free(s);
    peer_finish(&bridge);
    s = shl_test_snap(r, id);
    assert_int_equal(s->frame_count, 1);
    assert_string_equal(s->frames[0].participant_id, "cli");
    assert_int_equal(s->participant_count, 1);
    shl_snapshot_free(s);
    assert_shl_ok(shl_call_end(cc, NULL));
    s = shl_test_snap(r, id);
    assert_int_equal(s->frame_count, 0);
    assert_int_equal(s->state, SHL_OP_RUNNING);
    shl_snapshot_free(s);
    assert_segment_clean(r);

    /* the CLI completes: the operation is gone */
    assert_shl_ok(shl_op_complete(op));
    assert_int_equal(shl_reader_snapshot(r, id, &s), SHL_ENOTFOUND);
    shl_op_summary *rows = NULL;
    size_t n = 99;
    assert_shl_ok(shl_reader_list(r, &rows, &n));
    assert_int_equal(n, 0);
    free(rows);
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(r, &info));
    assert_int_equal(info.used_operations, 0);
    assert_int_equal(info.used_frames, 0);
    assert_int_equal(info.used_participants, 1);
    assert_segment_clean(r);
    shl_ledger *late = NULL;
    assert_shl_ok(shl_ledger_open(&late, base, "late", NULL));
    shl_op *lj = NULL;
    assert_int_equal(shl_op_join(late, id, NULL, &lj), SHL_ENOTFOUND);
    shl_ledger_close(late);
    shl_reader_close(r);
    shl_ledger_close(cli);
    shl_test_cleanup(base);
}

static void
test_api_lifecycle_two_participants_two_frames(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-life");
    struct peer beta;
    peer_fork(&beta, base, "beta");
    shl_ledger *a = NULL;
    assert_shl_ok(shl_ledger_open(&a, base, "alpha", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(a, NULL, NULL, &op));
    char id[SHL_OPERATION_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", shl_op_id(op));
    shl_call *ca = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &ca));

    peer_join(&beta, id);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(a), id);
    assert_int_equal(s->frame_count, 2);
    bool seen_a = false, seen_b = false;
    for (size_t i = 0; i < s->frame_count; i++) {
        if (strcmp(s->frames[i].participant_id, "alpha") == 0) {
            seen_a = true;
            assert_string_equal(s->frames[i].call_id, shl_call_id(ca));
        } else if (strcmp(s->frames[i].participant_id, "beta") == 0) {
            seen_b = true;
            assert_string_equal(s->frames[i].call_id, beta.call_id);
            assert_int_equal(s->frames[i].pid, beta.pid);
        }
    }
    assert_true(seen_a && seen_b);
    shl_snapshot_free(s);
    /* the list agrees */
    shl_op_summary *rows = NULL;
    size_t n = 0;
    assert_shl_ok(shl_reader_list(shl_ledger_reader(a), &rows, &n));
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].frame_count, 2);
    assert_int_equal(rows[0].participant_count, 2);
    free(rows);

    peer_finish(&beta);
    assert_shl_ok(shl_call_end(ca, NULL));
    s = shl_test_snap(shl_ledger_reader(a), id);
    assert_int_equal(s->frame_count, 0);
    shl_snapshot_free(s);
    assert_shl_ok(shl_op_complete(op));
    assert_segment_clean(shl_ledger_reader(a));
    shl_ledger_close(a);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_api_lifecycle_cli_bridge_vscode,
                                  kill_peers),
        cmocka_unit_test_teardown(
            test_api_lifecycle_two_participants_two_frames, kill_peers),
    };
    return cmocka_run_group_tests_name("api_lifecycle", tests, NULL, NULL);
}
