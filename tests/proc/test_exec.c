/*
 * test_exec.c: the exec helpers (execStdioWorker, execFileResultWorker) with
 * real child processes: results, stdout/stderr lines, exit codes, exec
 * failures reported as the call's error, timeouts (SIGTERM, then SIGKILL),
 * kill(), cancel, the child's signal state, and that no zombie is left.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

struct fx {
    char base[512];
    shl_ledger *l;
    shl_op *op;
};

static void
fx_open(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "exec");
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", NULL));
    assert_shl_ok(shl_op_create(f->l, "exec", NULL, &f->op));
}

static void
fx_close(struct fx *f)
{
    if (f->op) {
        if (shl_op_get_state(f->op) == SHL_OP_RUNNING)
            assert_shl_ok(shl_op_complete(f->op));
        else
            assert_shl_ok(shl_op_leave(f->op, false));
    }
    shl_ledger_close(f->l);
    shl_test_cleanup(f->base);
}

/* No child of ours is left, running or zombie. */
static void
assert_no_children(void)
{
    int st;
    errno = 0;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

#define MAXL 16
struct lines {
    pthread_mutex_t mu;
    char out[MAXL][128];
    int nout;
    char err[MAXL][128];
    int nerr;
    _Atomic int exit_code;
    _Atomic int exits;
};

static void
on_out(const char *line, void *user)
{
    struct lines *l = user;
    pthread_mutex_lock(&l->mu);
    if (l->nout < MAXL)
        snprintf(l->out[l->nout++], sizeof(l->out[0]), "%s", line);
    pthread_mutex_unlock(&l->mu);
}
static void
on_err(const char *line, void *user)
{
    struct lines *l = user;
    pthread_mutex_lock(&l->mu);
    if (l->nerr < MAXL)
        snprintf(l->err[l->nerr++], sizeof(l->err[0]), "%s", line);
    pthread_mutex_unlock(&l->mu);
}
static void
on_exit_cb(int code, void *user)
{
    struct lines *l = user;
    l->exit_code = code;
    l->exits++;
}

static void
opts_for(shl_exec_opts *o, struct lines *l, const char *exe,
         const char *const *argv)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->exit_code = -1;
    shl_exec_opts_init(o);
    o->executable = exe;
    o->argv = argv;
    o->on_stdout = on_out;
    o->on_stderr = on_err;
    o->on_exit = on_exit_cb;
    o->user = l;
}

static void
test_exec_stdio_echo(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"hello", "world", NULL};
    opts_for(&o, &l, "echo", argv); /* PATH search */
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_string_equal(shl_spawned_description(c), "Stdio worker");
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_string_equal((char *)res, "hello world\n");
    assert_int_equal(l.nout, 1);
    assert_string_equal(l.out[0], "hello world");
    assert_int_equal(l.exits, 1);
    assert_int_equal(l.exit_code, 0);
    assert_int_equal(shl_op_pending_call_count(f.op), 0);
    assert_shl_ok(shl_spawned_release(c)); /* frees the result */
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_stdio_lines_and_stderr(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    /* a line written in two pieces arrives whole; blank lines are skipped;
     * the last line needs no newline */
    const char *argv[] = {"-c",
                          "printf 'a'; sleep 0.05; printf 'b\\n\\nc'; "
                          "echo e1 >&2; echo e2 >&2",
                          NULL};
    opts_for(&o, &l, "/bin/sh", argv);
    o.description = "lines";
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_string_equal(shl_spawned_description(c), "lines");
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_string_equal((char *)res, "ab\n\nc");
    assert_int_equal(l.nout, 2);
    assert_string_equal(l.out[0], "ab");
    assert_string_equal(l.out[1], "c");
    assert_int_equal(l.nerr, 2);
    assert_string_equal(l.err[0], "e1");
    assert_string_equal(l.err[1], "e2");
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_file_result(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    char path[1024];
    snprintf(path, sizeof(path), "%s/result.txt", f.base);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"-c", "echo 42 > \"$1\"; echo done", "sh", path,
                          NULL};
    opts_for(&o, &l, "sh", argv);
    o.result_file_path = path;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_file_result_worker(f.op, &o, &c));
    assert_string_equal(shl_spawned_description(c), "File result worker");
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    assert_string_equal((char *)res, "42\n");
    assert_int_equal(l.exit_code, 0);
    assert_int_equal(l.nout, 1);
    assert_string_equal(l.out[0], "done");
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* deleted */
    /* keep the file when asked */
    o.delete_result_file = false;
    shl_spawned *k = NULL;
    assert_shl_ok(shl_op_exec_file_result_worker(f.op, &o, &k));
    assert_shl_ok(shl_spawned_wait(k, 10000, &res));
    assert_string_equal((char *)res, "42\n");
    assert_int_equal(stat(path, &st), 0);
    unlink(path);
    /* a file written after the exit (by a detached writer) is waited for,
     * within the timeout; the writer renames it into place as the header
     * asks (a plain `>` would let the poll read it between its creation
     * and its write) */
    const char *argv2[] = {"-c",
                           "(sleep 0.2; echo late > \"$1.part\"; "
                           "mv \"$1.part\" \"$1\") >/dev/null 2>&1 &",
                           "sh", path, NULL};
    o.argv = argv2;
    o.timeout_ms = 5000;
    o.poll_interval_ms = 10;
    shl_spawned *lt = NULL;
    assert_shl_ok(shl_op_exec_file_result_worker(f.op, &o, &lt));
    assert_shl_ok(shl_spawned_wait(lt, 10000, &res));
    assert_string_equal((char *)res, "late\n");
    unlink(path);
    /* exit 0 without the file and no timeout: fails at once (the original
     * polled forever) */
    const char *argv3[] = {"-c", "true", NULL};
    o.argv = argv3;
    o.timeout_ms = -1;
    o.fail_on_crash = false;
    shl_spawned *m = NULL;
    assert_shl_ok(shl_op_exec_file_result_worker(f.op, &o, &m));
    assert_int_equal(shl_spawned_wait(m, 10000, NULL), SHL_ECALLFAILED);
    assert_non_null(strstr(shl_spawned_error(m), "is missing"));
    /* the detached writer was sh's child, adopted by init: not ours */
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_exit_code_fails(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"-c", "echo partial; exit 3", NULL};
    opts_for(&o, &l, "sh", argv);
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    assert_true(shl_spawned_is_failed(c));
    assert_string_equal(shl_spawned_error(c), "Process sh exited with code 3");
    assert_int_equal(l.exit_code, 3);
    /* fail_on_crash (default): the operation failed with this call */
    shl_failed_info info;
    assert_int_equal(shl_op_failure_info(f.op, &info), 1);
    assert_string_equal(info.crashed_call_ids[0], shl_spawned_id(c));
    assert_non_null(strstr(info.reason, "exited with code 3"));
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_missing_program(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    const char *names[] = {"/nonexistent/shl-no-such-program",
                           "shl-no-such-program-in-path"};
    for (int i = 0; i < 2; i++) {
        opts_for(&o, &l, names[i], NULL);
        o.fail_on_crash = false;
        shl_spawned *c = NULL;
        assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
        assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
        const char *e = shl_spawned_error(c);
        assert_non_null(e);
        assert_non_null(strstr(e, shl_strerror(-ENOENT)));
        assert_non_null(strstr(e, "ENOENT"));
        assert_non_null(strstr(e, names[i]));
        assert_int_equal(l.exits, 0); /* it never ran */
    }
    /* a bad working directory is an exec failure too */
    const char *argv[] = {"-c", "true", NULL};
    opts_for(&o, &l, "sh", argv);
    o.fail_on_crash = false;
    o.working_directory = "/nonexistent-dir-shl";
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    assert_non_null(strstr(shl_spawned_error(c), "ENOENT"));
    assert_int_equal(shl_op_get_state(f.op), SHL_OP_RUNNING);
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_working_directory(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"-P", NULL};
    opts_for(&o, &l, "pwd", argv);
    o.working_directory = f.base;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    char real[PATH_MAX], want[PATH_MAX + 2];
    assert_non_null(realpath(f.base, real));
    snprintf(want, sizeof(want), "%s\n", real);
    assert_string_equal((char *)res, want);
    fx_close(&f);
}

static void
test_exec_timeout_kills_child(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"30", NULL};
    opts_for(&o, &l, "sleep", argv);
    o.timeout_ms = 150;
    o.fail_on_crash = false;
    shl_spawned *c = NULL;
    int64_t t0 = shl_test_now_ms();
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    int64_t took = shl_test_now_ms() - t0;
    assert_true(took >= 150);
    assert_true(took < 5000);
    assert_non_null(strstr(shl_spawned_error(c), "timed out after 150 ms"));
    assert_int_equal(l.exit_code, 128 + SIGTERM);
    assert_no_children();

    /* one that ignores SIGTERM gets SIGKILL after the grace period */
    const char *argv2[] = {"-c", "trap '' TERM; exec sleep 30", NULL};
    opts_for(&o, &l, "sh", argv2);
    o.timeout_ms = 100;
    o.fail_on_crash = false;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    assert_int_equal(l.exit_code, 128 + SIGKILL);
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_kill_and_cancel(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"30", NULL};
    opts_for(&o, &l, "sleep", argv);
    o.fail_on_crash = false;
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    /* signal 0 answers once the child is attached */
    assert_true(SHL_WAIT_FOR(shl_spawned_kill(c, 0) == 1, 5000));
    assert_int_equal(shl_spawned_kill(c, SIGUSR1), 1);
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECALLFAILED);
    assert_non_null(strstr(shl_spawned_error(c), "killed by signal"));
    assert_non_null(strstr(shl_spawned_error(c), "SIGUSR1"));
    assert_int_equal(l.exit_code, 128 + SIGUSR1);
    /* finished: nothing attached any more */
    assert_int_equal(shl_spawned_kill(c, SIGTERM), 0);
    assert_no_children();

    /* cancel stops the process */
    opts_for(&o, &l, "sleep", argv);
    o.fail_on_crash = false;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    assert_true(SHL_WAIT_FOR(shl_spawned_kill(c, 0) == 1, 5000));
    /* exec calls are visible to the session (the original hid them) */
    assert_int_equal(shl_op_pending_call_count(f.op), 1);
    assert_int_equal(shl_op_leave(f.op, false), SHL_ESTATE);
    shl_spawned_cancel(c);
    assert_int_equal(shl_spawned_wait(c, 10000, NULL), SHL_ECANCELLED);
    assert_non_null(strstr(shl_spawned_error(c), "cancelled"));
    assert_no_children();
    fx_close(&f);
}

static void
test_exec_child_signal_state(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    /* the application ignores a signal and the pool blocks them all; the
     * child must start with defaults and an empty mask */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGUSR2, &ign, &old);
    struct lines l;
    shl_exec_opts o;
    const char *argv[] = {"-E", "^Sig(Blk|Ign):", "/proc/self/status", NULL};
    opts_for(&o, &l, "grep", argv);
    shl_spawned *c = NULL;
    assert_shl_ok(shl_op_exec_stdio_worker(f.op, &o, &c));
    void *res = NULL;
    assert_shl_ok(shl_spawned_wait(c, 10000, &res));
    sigaction(SIGUSR2, &old, NULL);
    assert_non_null(strstr((char *)res, "SigBlk:\t0000000000000000"));
    assert_non_null(strstr((char *)res, "SigIgn:\t0000000000000000"));
    fx_close(&f);
}

static void
test_exec_bad_input(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_exec_opts o;
    shl_exec_opts_init(&o);
    assert_true(o.delete_result_file);
    assert_true(o.fail_on_crash);
    assert_int_equal(o.poll_interval_ms, 100);
    assert_true(o.timeout_ms < 0);
    shl_spawned *c = NULL;
    assert_int_equal(shl_op_exec_stdio_worker(f.op, &o, &c), -EINVAL);
    o.executable = "true";
    assert_int_equal(shl_op_exec_file_result_worker(f.op, &o, &c), -EINVAL);
    assert_int_equal(shl_op_exec_stdio_worker(NULL, &o, &c), -EINVAL);
    assert_int_equal(shl_op_exec_stdio_worker(f.op, NULL, &c), -EINVAL);
    assert_int_equal(shl_op_pending_call_count(f.op), 0);
    fx_close(&f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_stdio_echo),
        cmocka_unit_test(test_exec_stdio_lines_and_stderr),
        cmocka_unit_test(test_exec_file_result),
        cmocka_unit_test(test_exec_exit_code_fails),
        cmocka_unit_test(test_exec_missing_program),
        cmocka_unit_test(test_exec_working_directory),
        cmocka_unit_test(test_exec_timeout_kills_child),
        cmocka_unit_test(test_exec_kill_and_cancel),
        cmocka_unit_test(test_exec_child_signal_state),
        cmocka_unit_test(test_exec_bad_input),
    };
    return cmocka_run_group_tests_name("exec", tests, NULL, NULL);
}
