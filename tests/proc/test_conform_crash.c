/*
 * test_conform_crash.c: the original's contract across real processes
 * (issue 15): every crashed call id is carried (not 16), and the one rule
 * for calls of a participant declared crashed (fenced) and of survivors.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_proc.h"
#include "shl_test.h"
#include "shl_text.h"

#define NCALLS 20

struct shared {
    _Atomic int ready;
    _Atomic int op_ready; /* opid below is set */
    char opid[SHL_OPERATION_ID_MAX + 1];
    char call_id[NCALLS][SHL_CALL_ID_MAX + 1];
};

static shl_ledger_opts
fast_opts(void)
{
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.heartbeat_interval_ms = 100;
    o.stale_threshold_ms = 60000;
    return o;
}

static bool
file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- 4. a member killed with 20 calls pending: all 20 are carried ---- */

static void
test_conform_crashed_ids_all(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "crashed20");
    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    shl_ledger_opts o = fast_opts();
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "crash20", NULL, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));
    pid_t kid = fork();
    if (kid == 0) {
        shl_ledger *kl;
        CHILD_CHECK(shl_ledger_open(&kl, base, "victim", &o));
        shl_op *kop;
        CHILD_CHECK(shl_op_join(kl, opid, NULL, &kop));
        for (int i = 0; i < NCALLS; i++) {
            shl_call *c;
            CHILD_CHECK(shl_call_start(kop, NULL, &c));
            snprintf(sh->call_id[i], sizeof(sh->call_id[i]), "%s",
                     shl_call_id(c));
        }
        atomic_store(&sh->ready, 1);
        for (;;)
            pause();
    }
    assert_true(SHL_WAIT_FOR(atomic_load(&sh->ready), 5000));
    kill(kid, SIGKILL);
    assert_child_signaled(kid, SIGKILL);
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));

    shl_failed_info fi;
    assert_int_equal(shl_op_failure_info(op, &fi), 1);
    assert_int_equal(fi.crashed_call_count, SHL_CRASHED_IDS_MAX);
    assert_int_equal(fi.crashed_call_total, NCALLS);
    char ids[NCALLS + 4][SHL_CALL_ID_MAX + 1];
    assert_int_equal(shl_op_crashed_call_ids(op, ids, NCALLS + 4), NCALLS);
    assert_int_equal(shl_op_crashed_call_ids(op, ids, 3), NCALLS);
    assert_int_equal(shl_op_crashed_call_ids(op, ids, NCALLS + 4), NCALLS);
    for (int i = 0; i < NCALLS; i++) {
        bool found = false;
        for (int k = 0; k < NCALLS && !found; k++)
            found = strcmp(ids[k], sh->call_id[i]) == 0;
        if (!found)
            fail_msg("crashed call %s not listed", sh->call_id[i]);
    }

    /* the archive and the JSON reader carry all of them */
    char path[1024];
    snprintf(path, sizeof(path), "%s/backup/%s/operation.json", base, opid);
    assert_true(SHL_WAIT_FOR(file_exists(path), 5000));
    char *json = shl_test_slurp(path, NULL);
    assert_non_null(json);
    shl_snapshot *s = NULL;
    assert_shl_ok(shl_snapshot_from_json(json, &s));
    assert_int_equal(s->crashed_call_id_count, NCALLS);
    assert_int_equal(s->failure.crashed_call_total, NCALLS);
    assert_int_equal(s->failure.crashed_call_count, SHL_CRASHED_IDS_MAX);
    /* and write them back out whole */
    char *again = NULL;
    assert_shl_ok(shl_snapshot_to_json(s, SHL_JSON_COMPACT, &again));
    for (int i = 0; i < NCALLS; i++)
        assert_non_null(strstr(again, sh->call_id[i]));
    free(again);
    shl_snapshot_free(s);
    free(json);

    assert_shl_ok(shl_op_leave(op, true));
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

/* ---- 8. a participant declared crashed, after it resumes ---- */

static void
test_conform_fenced_codes(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "fenced");
    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    shl_ledger_opts o = fast_opts();
    o.stale_threshold_ms = 400;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    /* forked before this process starts the ledger's threads: a fork while
     * they start up can leave the child an allocator lock held under
     * gcc 12's ASan (its monitor then never ran its pass) */
    pid_t v = fork();
    if (v == 0) {
        close(pfd[0]);
        if (!SHL_WAIT_FOR(atomic_load(&sh->op_ready), 10000))
            _exit(90);
        shl_ledger *vl;
        CHILD_CHECK(shl_ledger_open(&vl, base, "sleeper", &o));
        shl_op *vop;
        CHILD_CHECK(shl_op_join(vl, sh->opid, NULL, &vop));
        shl_call *c;
        CHILD_CHECK(shl_call_start(vop, NULL, &c));
        snprintf(sh->call_id[0], sizeof(sh->call_id[0]), "%s", shl_call_id(c));
        atomic_store(&sh->ready, 1);
        /* stopped here; after SIGCONT it learns it was fenced */
        shl_failed_info info;
        int rc = shl_op_wait_failure(
            vop, 20000 * (int64_t)shl_test_multiplier(), &info);
        int end_rc = shl_call_end(c, NULL);
        shl_call *c2;
        int start_rc = shl_call_start(vop, NULL, &c2);
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "%d %d %d\n", rc, end_rc, start_rc);
        (void)!write(pfd[1], msg, (size_t)n);
        _exit(0);
    }
    close(pfd[1]);
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "fenced", NULL, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));
    snprintf(sh->opid, sizeof(sh->opid), "%s", opid);
    atomic_store(&sh->op_ready, 1);
    assert_true(SHL_WAIT_FOR(atomic_load(&sh->ready), 5000));
    kill(v, SIGSTOP);
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 10000));
    kill(v, SIGCONT);
    char buf[64] = {0};
    assert_true(shl_test_read_by(
        pfd[0], buf, 1, shl_test_now_ms() + 20000 * shl_test_multiplier()));
    ssize_t more = read(pfd[0], buf + 1, sizeof(buf) - 2);
    assert_true(more > 0);
    int rc = 1, end_rc = 0, start_rc = 0;
    assert_int_equal(sscanf(buf, "%d %d %d", &rc, &end_rc, &start_rc), 3);
    assert_int_equal(rc, 0);
    assert_int_equal(end_rc, SHL_EFAILED); /* its old call: declared crashed */
    assert_int_equal(start_rc, SHL_EFENCED); /* new calls: fenced */
    assert_child_exited(v, 0);
    close(pfd[0]);
    assert_shl_ok(shl_op_leave(op, true));
    shl_ledger_close(l);
    /* a fenced participant's end is not logged as CALL_ENDED */
    char path[1024], needle[256];
    snprintf(path, sizeof(path), "%s/backup/%s/operation.log", base, opid);
    char *log = shl_test_slurp(path, NULL);
    assert_non_null(log);
    snprintf(needle, sizeof(needle), "CALL_ENDED callId=%s", sh->call_id[0]);
    assert_null(strstr(log, needle));
    free(log);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

/* ---- 8. a survivor that was never stale ends its call normally ---- */

static void
test_conform_survivor_end(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "survivor");
    struct shared *sh = shl_test_shared_alloc(sizeof(*sh));
    shl_ledger_opts o = fast_opts();
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", &o));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "survivor", NULL, &op));
    char opid[SHL_OPERATION_ID_MAX + 1];
    snprintf(opid, sizeof(opid), "%s", shl_op_id(op));
    shl_call *mine;
    assert_shl_ok(shl_call_start(op, NULL, &mine));
    char mine_id[SHL_CALL_ID_MAX + 1];
    snprintf(mine_id, sizeof(mine_id), "%s", shl_call_id(mine));
    pid_t kid = fork();
    if (kid == 0) {
        shl_ledger *kl;
        CHILD_CHECK(shl_ledger_open(&kl, base, "victim", &o));
        shl_op *kop;
        CHILD_CHECK(shl_op_join(kl, opid, NULL, &kop));
        shl_call *c;
        CHILD_CHECK(shl_call_start(kop, NULL, &c));
        atomic_store(&sh->ready, 1);
        for (;;)
            pause();
    }
    assert_true(SHL_WAIT_FOR(atomic_load(&sh->ready), 5000));
    kill(kid, SIGKILL);
    assert_child_signaled(kid, SIGKILL);
    /* the cleanup releases every frame, ours too */
    assert_true(SHL_WAIT_FOR(shl_op_get_state(op) == SHL_OP_FAILED, 5000));
    assert_int_equal(shl_call_end(mine, NULL), 0);
    assert_int_equal(shl_call_end(mine, NULL), SHL_ESTATE); /* only once */
    assert_shl_ok(shl_op_leave(op, false));
    shl_ledger_close(l);
    char path[1024], needle[256];
    snprintf(path, sizeof(path), "%s/backup/%s/operation.log", base, opid);
    char *log = shl_test_slurp(path, NULL);
    assert_non_null(log);
    snprintf(needle, sizeof(needle), "CALL_ENDED callId=%s", mine_id);
    assert_non_null(strstr(log, needle));
    free(log);
    munmap(sh, sizeof(*sh));
    shl_test_cleanup(base);
}

/* ---- gaps: deserializers of the exec helpers ---- */

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
test_conform_exec_deserializer(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "execparse");
    shl_ledger *l;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op;
    assert_shl_ok(shl_op_create(l, "parse", NULL, &op));
    /* stdout parsed */
    shl_exec_opts o;
    shl_exec_opts_init(&o);
    o.executable = "echo";
    const char *argv[] = {"41", NULL};
    o.argv = argv;
    o.deserializer = parse_int;
    o.result_free = free;
    shl_spawned *c = NULL;
    void *res = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(op, &o, &c));
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_int_equal(*(int *)res, 41);
    assert_shl_ok(shl_spawned_release(c)); /* frees it with result_free */
    /* a result file parsed */
    char rpath[700];
    snprintf(rpath, sizeof(rpath), "%s/result.txt", base);
    char script[900];
    snprintf(script, sizeof(script), "echo 99 > %s", rpath);
    const char *argv2[] = {"-c", script, NULL};
    o.executable = "sh";
    o.argv = argv2;
    o.result_file_path = rpath;
    assert_shl_ok(shl_op_exec_file_result_worker(op, &o, &c));
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_int_equal(*(int *)res, 99);
    assert_shl_ok(shl_spawned_release(c));
    /* a parse failure fails the call (and, fail_on_crash, the operation) */
    const char *argv3[] = {"not a number", NULL};
    o.executable = "echo";
    o.argv = argv3;
    o.result_file_path = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(op, &o, &c));
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    assert_non_null(strstr(shl_spawned_error(c), "deserializer failed"));
    assert_int_equal(shl_op_get_state(op), SHL_OP_FAILED);
    assert_shl_ok(shl_spawned_release(c));
    assert_shl_ok(shl_op_leave(op, false));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conform_crashed_ids_all),
        cmocka_unit_test(test_conform_fenced_codes),
        cmocka_unit_test(test_conform_survivor_end),
        cmocka_unit_test(test_conform_exec_deserializer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
