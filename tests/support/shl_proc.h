/*
 * shl_proc.h: scaffolding of the tests that fork (link shl_test_support):
 * memory shared with children, bounded reads from a child's pipe, the
 * teardown that kills children a failed test left behind, the thread
 * count a fork needs to be safe, and the member process of the crash
 * tests (fork a participant, arm a crash point, wait for it to die there).
 */
#ifndef SHL_PROC_H
#define SHL_PROC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmledger/shmledger.h"

/* size zeroed bytes of anonymous memory shared with children forked
 * afterwards (MAP_SHARED | MAP_ANONYMOUS). Fails the test if mmap fails.
 * The caller owns the mapping: munmap(p, size) when done. */
void *shl_test_shared_alloc(size_t size);

/* Read exactly n bytes from fd into buf before deadline_ms (a
 * shl_test_now_ms() value; the caller scales it). Polls in steps of at
 * most 1 s and restarts on EINTR. False on timeout, EOF or a read error. */
bool shl_test_read_by(int fd, void *buf, size_t n, int64_t deadline_ms);

/* For a teardown: SIGKILL and reap every pid > 0 of pids[0..n), setting
 * each to 0 (children a failed test left behind). */
void shl_test_kill_children(pid_t *pids, size_t n);

/* Threads of this process (from /proc/self/status), or -1 if unknown.
 * A child forked while it is > 1 may only call async-signal-safe
 * functions. */
int shl_test_thread_count(void);

/* A member process of a crash test, for shl_test_member_fork(). The child:
 *   1. arms `point` first if `arm_before_open` (a point on the open path);
 *   2. opens a ledger `name` on `base` (`opts`; NULL: the defaults);
 *   3. unless `no_session`: creates an operation (`join` NULL) or joins
 *      `join`;
 *   4. runs `setup` (its op is NULL without a session): a result < 0 makes
 *      it print the step and exit 1, like CHILD_CHECK;
 *   5. arms `point` (SIGKILL), unless done in step 1 or `point` is NULL;
 *   6. tells the parent it is ready (with its operation's id);
 *   7. runs `act`, which should reach the point (or kill the child): if
 *      it returns, its result is the child's exit status. Without `act`
 *      the child waits to be killed, by its own threads at the point or
 *      by the test.
 * The ledger and session are the child's; `act` may leave and close
 * them. */
typedef struct shl_test_member {
    const char *base;
    const char *name;            /* participant id */
    const shl_ledger_opts *opts; /* NULL: the defaults */
    const char *join;            /* operation to join; NULL: create one */
    const char *description;     /* of the operation it creates, or NULL */
    bool no_session;             /* open the ledger only */
    const char *point;           /* crash point armed in the child, or NULL */
    bool arm_before_open;        /* arm it before step 2 */
    int (*setup)(shl_ledger *l, shl_op *op, void *arg);
    int (*act)(shl_ledger *l, shl_op *op, void *arg);
    void *arg;
} shl_test_member;

/* Fork the member `m` and wait until it is ready (step 6) or has died
 * before (then its status is for the caller's assert_child_*). id (cap
 * bytes, may be NULL) receives its operation's id ("" without a session
 * or when it died first). Fails the test when fork fails or the child is
 * neither ready nor dead within 10 s (scaled). Returns the child's pid. */
pid_t shl_test_member_fork(const shl_test_member *m, char *id, size_t cap);

/* Ready-made steps for shl_test_member.setup / .act (arg as said):
 *   complete    shl_op_complete(op), its result ignored (the point is on
 *               its path); 0
 *   fail        shl_op_set_state(op, SHL_OP_FAILED), result ignored; 0
 *   register    shl_op_register_temp_resource(op, arg: the path)
 *   start_call  a call (default options: failOnCrash) left pending */
int shl_test_step_complete(shl_ledger *l, shl_op *op, void *arg);
int shl_test_step_fail(shl_ledger *l, shl_op *op, void *arg);
int shl_test_step_register(shl_ledger *l, shl_op *op, void *arg);
int shl_test_step_start_call(shl_ledger *l, shl_op *op, void *arg);

/* Fork the member `m` and assert that it dies by SIGKILL (its crash
 * point, reached in `setup` or `act`, or by its own threads). */
#define shl_test_member_killed(m, id, cap)                                     \
    assert_child_signaled(shl_test_member_fork((m), (id), (cap)), SIGKILL)

#endif /* SHL_PROC_H */
