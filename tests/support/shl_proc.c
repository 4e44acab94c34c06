/* shl_proc.c: see shl_proc.h. */
#include "shl_proc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"

void *
shl_test_shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    memset(p, 0, size);
    return p;
}

bool
shl_test_read_by(int fd, void *buf, size_t n, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline_ms - shl_test_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0)
            return false;
        got += (size_t)k;
    }
    return true;
}

void
shl_test_kill_children(pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
}

int
shl_test_thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

int
shl_test_step_complete(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    (void)arg;
    (void)shl_op_complete(op);
    return 0;
}

int
shl_test_step_fail(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    (void)arg;
    (void)shl_op_set_state(op, SHL_OP_FAILED);
    return 0;
}

int
shl_test_step_register(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    return shl_op_register_temp_resource(op, arg);
}

int
shl_test_step_start_call(shl_ledger *l, shl_op *op, void *arg)
{
    (void)l;
    (void)arg;
    shl_call *c = NULL;
    return shl_call_start(op, NULL, &c);
}

/* The child of shl_test_member_fork: never returns. */
static void
member_child(const shl_test_member *m, int wfd)
{
    if (m->point && m->arm_before_open)
        shl__crash_arm(m->point, SHL__CRASH_SIGKILL);
    shl_ledger *l = NULL;
    shl_op *op = NULL;
    CHILD_CHECK(shl_ledger_open(&l, m->base, m->name, m->opts));
    if (!m->no_session) {
        if (m->join)
            CHILD_CHECK(shl_op_join(l, m->join, NULL, &op));
        else
            CHILD_CHECK(shl_op_create(l, m->description, NULL, &op));
    }
    if (m->setup)
        CHILD_CHECK(m->setup(l, op, m->arg));
    if (m->point && !m->arm_before_open)
        shl__crash_arm(m->point, SHL__CRASH_SIGKILL);
    char id[SHL_OPERATION_ID_MAX + 1] = "";
    if (op)
        snprintf(id, sizeof(id), "%s", shl_op_id(op));
    if (write(wfd, id, sizeof(id)) != (ssize_t)sizeof(id))
        _exit(2);
    close(wfd);
    if (m->act)
        _exit(m->act(l, op, m->arg) & 0xff);
    for (;;)
        pause();
}

pid_t
shl_test_member_fork(const shl_test_member *m, char *id, size_t cap)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        member_child(m, pfd[1]);
    }
    close(pfd[1]);
    char got[SHL_OPERATION_ID_MAX + 1] = "";
    int64_t dl = shl_test_now_ms() + 10000 * (int64_t)shl_test_multiplier();
    bool ready = shl_test_read_by(pfd[0], got, sizeof(got), dl);
    close(pfd[0]);
    if (!ready && shl_test_now_ms() > dl) {
        shl_test_kill_children(&pid, 1);
        fail_msg("member %s: neither ready nor dead after 10 s", m->name);
    }
    if (!ready)
        got[0] = 0; /* died before it was ready */
    got[sizeof(got) - 1] = 0;
    if (id && cap)
        snprintf(id, cap, "%s", got);
    return pid;
}
