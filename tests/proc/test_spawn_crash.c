/*
 * test_spawn_crash.c: a process with a spawned call in flight is SIGKILLed;
 * the others learn the operation failed with that call's id (the crash
 * protocol works on the call's frame), and a spawned call pending in the
 * observer hears it through on_operation_failed and sync.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

#include "shl_proc.h"

struct shared {
    _Atomic int ready;
    char call_id[SHL_CALL_ID_MAX + 1];
};

static int
work_forever(shl_spawned *c, void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (!shl_spawned_is_cancelled(c))
        pause(); /* pool threads block signals: only the kill ends this */
    return -1;
}

/* Forked before the test opens its ledger (a child of a threaded process
 * may not allocate: ASan's allocator lock); the operation id comes through
 * the pipe. */
static _Noreturn void
victim(const char *base, int rfd, struct shared *sh)
{
    char opid[SHL_OPERATION_ID_MAX + 1];
    size_t got = 0;
    while (got < sizeof(opid)) {
        ssize_t r = read(rfd, opid + got, sizeof(opid) - got);
        if (r <= 0)
            _exit(2);
        got += (size_t)r;
    }
    opid[sizeof(opid) - 1] = 0;
    shl_ledger *l;
    CHILD_CHECK(shl_ledger_open(&l, base, "worker", NULL));
    shl_op *op;
    CHILD_CHECK(shl_op_join(l, opid, NULL, &op));
    shl_spawn_opts o;
    shl_spawn_opts_init(&o);
    o.description = "victim spawned call";
    shl_spawned *c;
    CHILD_CHECK(shl_op_spawn_call(op, work_forever, NULL, &o, &c));
    snprintf(sh->call_id, sizeof(sh->call_id), "%s", shl_spawned_id(c));
    atomic_store(&sh->ready, 1);
    for (;;)
        pause();
}

struct obs {
    _Atomic int op_failed;
    shl_failed_info info;
    _Atomic int released;
};

static void
on_op_failed(shl_call *call, const shl_failed_info *info, void *user)
{
    (void)call;
    struct obs *o = user;
    o->info = *info;
    o->op_failed++;
}

static int
work_until_released(shl_spawned *c, void *arg, void **result)
{
    (void)c;
    (void)result;
    struct obs *o = arg;
    int64_t end = shl_test_now_ms() + 30000;
    while (!o->released && shl_test_now_ms() < end)
        shl_test_pause_ms(1);
    return 0;
}

static void
test_spawn_crash_fails_operation_with_call_id(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "spawn-crash");
    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[1]);
        victim(base, pfd[0], sh);
    }
    close(pfd[0]);

    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "crash", NULL, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    memset(opid, 0, sizeof(opid));
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));

    /* our own spawned call, pending while the other process dies */
    struct obs ob = {0};
    shl_spawn_opts so;
    shl_spawn_opts_init(&so);
    so.fail_on_crash = false;
    so.callbacks.on_operation_failed = on_op_failed;
    so.callbacks.user = &ob;
    shl_spawned *mine;
    assert_shl_ok(shl_op_spawn_call(op, work_until_released, &ob, &so, &mine));

    assert_int_equal(write(pfd[1], opid, sizeof(opid)), (ssize_t)sizeof(opid));
    close(pfd[1]);
    assert_true(SHL_WAIT_FOR(atomic_load(&sh->ready), 10000));
    assert_memory_equal(sh->call_id, "call_worker_", 12);

    /* its frame is there, then the process dies with the work running */
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_reader_snapshot(shl_ledger_reader(l), opid, &s));
    bool found = false;
    for (size_t i = 0; i < s->frame_count; i++)
        found |= strcmp(s->frames[i].call_id, sh->call_id) == 0;
    shl_snapshot_free(s);
    assert_true(found);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_child_signaled(pid, SIGKILL);

    shl_failed_info info;
    assert_shl_ok(
        shl_op_wait_failure(op, 10000 * shl_test_multiplier(), &info));
    bool listed = false;
    for (uint32_t i = 0; i < info.crashed_call_count; i++)
        listed |= strcmp(info.crashed_call_ids[i], sh->call_id) == 0;
    assert_true(listed);

    /* our pending spawned call heard it, and sync reports it */
    assert_true(SHL_WAIT_FOR(ob.op_failed == 1, 5000));
    bool heard = false;
    for (uint32_t i = 0; i < ob.info.crashed_call_count; i++)
        heard |= strcmp(ob.info.crashed_call_ids[i], sh->call_id) == 0;
    assert_true(heard);
    shl_sync_result r;
    assert_shl_ok(shl_op_await_call(op, mine, NULL, &r));
    assert_true(r.operation_failed);
    assert_int_equal(r.unknown_count, 1);
    shl_sync_result_fini(&r);
    ob.released = 1;
    assert_shl_ok(shl_spawned_wait(mine, 10000, NULL));

    assert_shl_ok(shl_op_leave(op, false));
    shl_ledger_close(l);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_crash_fails_operation_with_call_id),
    };
    return cmocka_run_group_tests_name("spawn_crash", tests, NULL, NULL);
}
