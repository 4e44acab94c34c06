/* shl_test.c: see shl_test.h. */
#include "shl_test.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int counter;

char *
shl_test_base(char *buf, size_t cap, const char *tag)
{
    const char *root = getenv("SHL_TEST_TMPDIR");
    if (!root || !*root)
        root = "/tmp";
    mkdir(root, 0700);
    snprintf(buf, cap, "%s/%s-%d-%d-%lld", root, tag, (int)getpid(),
             ++counter, (long long)(shl_test_now_ms() % 100000000));
    return buf;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
shl_test_cleanup(const char *base)
{
    struct stat st;
    if (stat(base, &st) != 0)
        return;
    (void)shl_segment_unlink(base);
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
shl_test_multiplier(void)
{
    const char *m = getenv("SHL_TEST_TIMEOUT_MULTIPLIER");
    int v = m ? atoi(m) : 1;
    return v >= 1 ? v : 1;
}

int64_t
shl_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
shl_test_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int64_t
shl_test_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
wait_status(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return st;
}

void
shl_assert_child_exited(pid_t pid, int code, const char *file, int line)
{
    int st = wait_status(pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != code) {
        print_error("%s:%d: child %d: status 0x%x, expected exit %d\n", file,
                    line, (int)pid, st, code);
        _fail(file, line);
    }
}

void
shl_assert_child_signaled(pid_t pid, int sig, const char *file, int line)
{
    int st = wait_status(pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sig) {
        print_error("%s:%d: child %d: status 0x%x, expected signal %d\n",
                    file, line, (int)pid, st, sig);
        _fail(file, line);
    }
}

void
shl_assert_clean(shl_reader *r, const char *file, int line)
{
    shl_check_report rep;
    int v = shl_reader_check(r, &rep);
    if (v != 0) {
        print_error("%s:%d: invariant checker: %d violation(s):\n%s", file,
                    line, v, rep.text);
        _fail(file, line);
    }
}

long
shl_test_list_count(shl_ledger *l)
{
    shl_op_summary *rows = NULL;
    size_t n = 0;
    if (shl_reader_list(shl_ledger_reader(l), &rows, &n) != 0)
        return -1;
    free(rows);
    return (long)n;
}

shl_snapshot *
shl_test_snap_at(shl_reader *r, const char *id, const char *file, int line)
{
    shl_snapshot *s = NULL;
    int rc = shl_reader_snapshot(r, id, &s);
    if (rc != 0) {
        print_error("%s:%d: shl_reader_snapshot(%s) -> %d (%s): %s\n", file,
                    line, id, rc, shl_strerror(rc), shl_errmsg());
        _fail(file, line);
    }
    return s;
}
