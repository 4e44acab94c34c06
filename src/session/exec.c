/*
 * exec.c: the exec helpers (execFileResultWorker, execStdioWorker), spawned
 * calls whose work runs a child process.
 *
 * Start (libuv src/unix/process.c is the model): the parent prepares
 * everything that allocates (argv, the PATH candidates) before fork(); the
 * child only makes async-signal-safe calls: it resets every signal to its
 * default disposition and unblocks all of them (pool threads run with every
 * signal blocked, and a child must not inherit that), wires stdin to
 * /dev/null and stdout/stderr to pipes, changes directory, tries execve()
 * on each candidate, and on failure writes -errno to an O_CLOEXEC pipe and
 * _exit(127)s. The parent reads that pipe: EOF means exec succeeded, four
 * bytes are the exec error, which becomes the call's error (never
 * swallowed). The original ignored exit codes; here a non-zero exit, a
 * signal or the timeout fail the call.
 *
 * Watch: poll() on the two pipes, the child's pidfd (readable at exit) and
 * the call's cancel eventfd; no periodic wake-ups. Timeout or cancel: SIGTERM,
 * SIGKILL after a grace period, then reap. Exit is detected with
 * waitid(WNOWAIT), so the child stays a zombie (its pid cannot be reused)
 * until it has been detached from the call under the call's lock; only then
 * is it reaped, which makes shl_spawned_kill() race-free. Every child is
 * reaped: no zombies are left.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "session/poll.h"
#include "session/spawn.h"

#define TERM_GRACE_MS 1000         /* SIGTERM -> SIGKILL */
#define LINE_MAX_BYTES (64 * 1024) /* a longer line is passed in pieces */
#define STDOUT_MAX_BYTES (64u * 1024 * 1024)

struct exec_ctx {
    char **argv;  /* argv[0] = executable as given; NULL-terminated */
    char **cands; /* paths to try with execve, NULL-terminated */
    char *exe;
    char *cwd;
    char *result_path;
    bool file_mode;
    bool delete_result;
    int64_t poll_ms;
    int64_t timeout_ms;
    void (*on_stdout)(const char *line, void *user);
    void (*on_stderr)(const char *line, void *user);
    void (*on_exit)(int exit_code, void *user);
    void *user;
    shl_deserialize_fn deserializer; /* NULL: the text is the result */
    void (*result_free)(void *result);
};

static void
free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static void
ctx_free(void *arg)
{
    struct exec_ctx *x = arg;
    if (!x)
        return;
    free_strv(x->argv);
    free_strv(x->cands);
    free(x->exe);
    free(x->cwd);
    free(x->result_path);
    free(x);
}

/* The execve candidates for exe: itself if it has a '/', else every PATH
 * entry (execvp's search, done before fork because it allocates). */
static char **
candidates(const char *exe)
{
    if (strchr(exe, '/')) {
        char **v = calloc(2, sizeof(*v));
        if (v && !(v[0] = strdup(exe))) {
            free(v);
            return NULL;
        }
        return v;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/bin:/usr/bin";
    size_t n = 1;
    for (const char *p = path; *p; p++)
        n += *p == ':';
    char **v = calloc(n + 1, sizeof(*v));
    if (!v)
        return NULL;
    size_t k = 0;
    const char *p = path;
    for (;;) {
        const char *e = strchr(p, ':');
        size_t dl = e ? (size_t)(e - p) : strlen(p);
        const char *dir = dl ? p : ".";
        int dlen = dl ? (int)dl : 1;
        size_t sz = (size_t)dlen + strlen(exe) + 2;
        v[k] = malloc(sz);
        if (!v[k]) {
            free_strv(v);
            return NULL;
        }
        snprintf(v[k], sz, "%.*s/%s", dlen, dir, exe);
        k++;
        if (!e)
            break;
        p = e + 1;
    }
    return v;
}

/* ---- the child (async-signal-safe calls only) ---- */

static int
move_fd(int fd, int target)
{
    if (fd == target) /* keep it across exec */
        return fcntl(fd, F_SETFD, 0) < 0 ? -1 : 0;
    return dup2(fd, target) < 0 ? -1 : 0;
}

static _Noreturn void
child_fail(int ep, int err)
{
    int v = -err;
    ssize_t w;
    do
        w = write(ep, &v, sizeof(v));
    while (w < 0 && errno == EINTR);
    _exit(127);
}

static _Noreturn void
child_main(const struct exec_ctx *x, int devnull, int out, int err, int ep)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL); /* EINVAL for libc-internal */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        child_fail(ep, errno);
    /* all three are >= 3 (the parent made sure), so no move clobbers
     * another */
    if (move_fd(devnull, 0) || move_fd(out, 1) || move_fd(err, 2))
        child_fail(ep, errno);
    if (x->cwd && chdir(x->cwd) != 0)
        child_fail(ep, errno);
    int best = ENOENT;
    for (char *const *c = x->cands; *c; c++) {
        execve(*c, x->argv, environ);
        int e = errno;
        if (e == EACCES)
            best = EACCES; /* as execvp: remember, keep looking */
        else if (e != ENOENT && e != ENOTDIR) {
            best = e;
            break;
        }
    }
    child_fail(ep, best);
}

/* ---- the parent ---- */

/* Move fd to >= 3 (keeping O_CLOEXEC) so the child's dup2 to 0..2 cannot
 * clobber it. Returns the fd or -errno. */
static int
high_fd(int fd)
{
    if (fd < 0 || fd >= 3)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    return n < 0 ? -e : n;
}

struct linebuf {
    char *p;
    size_t len, cap;
    void (*cb)(const char *line, void *user);
    void *user;
};

static void
line_emit(struct linebuf *b, char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (n == 0) /* as the original: empty pieces are not passed on */
        return;
    char keep = s[n];
    s[n] = 0;
    b->cb(s, b->user);
    s[n] = keep;
}

/* Feed a chunk; whole lines go to the callback (a line split across reads
 * is joined first, unlike the original). */
static void
line_feed(struct linebuf *b, const char *data, size_t n)
{
    if (!b->cb)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return; /* lines are diagnostics: drop under memory pressure */
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->p[i] == '\n') {
            line_emit(b, b->p + start, i - start);
            start = i + 1;
        }
    if (b->len - start >= LINE_MAX_BYTES) {
        line_emit(b, b->p + start, b->len - start);
        start = b->len;
    }
    memmove(b->p, b->p + start, b->len - start);
    b->len -= start;
}

static void
line_flush(struct linebuf *b)
{
    if (b->cb && b->len)
        line_emit(b, b->p, b->len);
    b->len = 0;
    free(b->p);
    b->p = NULL;
}

struct collect {
    char *p;
    size_t len, cap;
    bool on;
    bool overflow;
};

static void
collect_add(struct collect *c, const char *data, size_t n)
{
    if (!c || !c->on || c->overflow)
        return;
    if (c->len + n + 1 > STDOUT_MAX_BYTES) {
        c->overflow = true;
        return;
    }
    if (c->len + n + 1 > c->cap) {
        size_t nc = c->cap ? c->cap : 4096;
        while (nc < c->len + n + 1)
            nc *= 2;
        char *np = realloc(c->p, nc);
        if (!np) {
            c->overflow = true;
            return;
        }
        c->p = np;
        c->cap = nc;
    }
    memcpy(c->p + c->len, data, n);
    c->len += n;
}

/* Read what is there (non-blocking fd). Returns false at EOF/error. */
static bool
drain(int fd, struct linebuf *lb, struct collect *col)
{
    char buf[16384];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0) {
            line_feed(lb, buf, (size_t)r);
            collect_add(col, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return true;
        return false; /* EOF or a read error */
    }
}

static bool
has_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int r;
    do
        r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (r < 0 && errno == EINTR);
    return r < 0 || si.si_pid == pid; /* ECHILD: gone already */
}

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int fail_with(shl_spawned *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
fail_with(shl_spawned *s, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    shl_spawned_set_error(s, msg);
    return rc;
}

static int
exec_run(shl_spawned *s, void *arg, void **result)
{
    struct exec_ctx *x = arg;
    int64_t dl =
        x->timeout_ms < 0 ? -1 : shl__mono_ns() + x->timeout_ms * 1000000;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, ep[2] = {-1, -1};
    int devnull = -1, pidfd = -1;
    int rc = 0;
    struct linebuf lout = {.cb = x->on_stdout, .user = x->user};
    struct linebuf lerr = {.cb = x->on_stderr, .user = x->user};
    struct collect col = {.on = !x->file_mode};

    if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) ||
        pipe2(ep, O_CLOEXEC)) {
        rc = fail_with(s, -errno, "pipe: %s", strerror(errno));
        goto out;
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) {
        rc = fail_with(s, -errno, "open /dev/null: %s", strerror(errno));
        goto out;
    }
    int *fds[] = {&outp[0], &outp[1], &errp[0], &errp[1],
                  &ep[0],   &ep[1],   &devnull};
    for (size_t i = 0; i < SHL__ARRAY_LEN(fds); i++) {
        *fds[i] = high_fd(*fds[i]);
        if (*fds[i] < 0) {
            rc = fail_with(s, *fds[i], "fcntl: %s", strerror(-*fds[i]));
            *fds[i] = -1;
            goto out;
        }
    }

    pid_t pid = fork();
    if (pid == 0)
        child_main(x, devnull, outp[1], errp[1], ep[1]);
    if (pid < 0) {
        rc = fail_with(s, -errno, "fork: %s", strerror(errno));
        goto out;
    }
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    close_fd(&ep[1]);
    close_fd(&devnull);

    /* EOF: exec succeeded (the pipe closed on exec); 4 bytes: -errno */
    int cerr = 0;
    ssize_t n;
    do
        n = read(ep[0], &cerr, sizeof(cerr));
    while (n < 0 && errno == EINTR);
    close_fd(&ep[0]);
    if (n == (ssize_t)sizeof(cerr)) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        const char *name = strerrorname_np(-cerr);
        rc = fail_with(s, cerr, "exec %s: %s (%s)", x->exe, shl_strerror(cerr),
                       name ? name : "?");
        goto out;
    }

    shl_spawned_attach_pid(s, pid);
#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* O_CLOEXEC implied */
#endif
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    int cfd = shl__spawned_cancel_fd(s);

    int reason = 0; /* ETIMEDOUT / ECANCELED once we stop it */
    bool killed = false;
    int64_t kill_at = 0;
    for (;;) {
        if (has_exited(pid))
            break;
        int64_t now = shl__mono_ns();
        if (!reason) {
            if (shl_spawned_is_cancelled(s))
                reason = ECANCELED;
            else if (dl >= 0 && now >= dl)
                reason = ETIMEDOUT;
            if (reason) {
                kill(pid, SIGTERM);
                kill_at = now + (int64_t)TERM_GRACE_MS * 1000000;
            }
        } else if (!killed && now >= kill_at) {
            kill(pid, SIGKILL);
            killed = true;
        }
        int64_t wake = -1;
        if (!reason)
            wake = dl;
        else if (!killed)
            wake = kill_at;
        int ms = -1;
        if (wake >= 0)
            ms = wake <= now ? 0 : (int)((wake - now + 999999) / 1000000);
        if (pidfd < 0 && (ms < 0 || ms > 20))
            ms = 20; /* no pidfd (old kernel): look again soon */
        struct pollfd pf[4];
        int np = 0, iout = -1, ierr = -1, icfd = -1;
        if (outp[0] >= 0) {
            iout = np;
            pf[np++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
        }
        if (errp[0] >= 0) {
            ierr = np;
            pf[np++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
        }
        if (pidfd >= 0)
            pf[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (cfd >= 0 && !reason) {
            icfd = np;
            pf[np++] = (struct pollfd){.fd = cfd, .events = POLLIN};
        }
        int pr = poll(pf, (nfds_t)np, ms);
        if (pr < 0 && errno != EINTR)
            break; /* cannot watch: fall through to the blocking reap */
        if (pr <= 0)
            continue;
        if (iout >= 0 && pf[iout].revents && !drain(outp[0], &lout, &col))
            close_fd(&outp[0]);
        if (ierr >= 0 && pf[ierr].revents && !drain(errp[0], &lerr, NULL))
            close_fd(&errp[0]);
        if (icfd >= 0 && pf[icfd].revents) {
            uint64_t v;
            ssize_t r = read(cfd, &v, sizeof(v));
            (void)r; /* the flag is what counts; this only woke us */
        }
    }
    /* what the child wrote before it exited is in the pipes; a grandchild
     * that keeps them open does not hold us */
    if (outp[0] >= 0)
        (void)drain(outp[0], &lout, &col);
    if (errp[0] >= 0)
        (void)drain(errp[0], &lerr, NULL);
    close_fd(&outp[0]);
    close_fd(&errp[0]);
    close_fd(&pidfd);

    /* detach under the call's lock, then reap: kill() never reaches a
     * reused pid */
    shl_spawned_attach_pid(s, 0);
    int status = 0;
    pid_t w;
    do
        w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    int code = w < 0                 ? 255
               : WIFEXITED(status)   ? WEXITSTATUS(status)
               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                     : 255;
    line_flush(&lout);
    line_flush(&lerr);
    if (x->on_exit)
        x->on_exit(code, x->user);

    if (reason == ETIMEDOUT) {
        rc = fail_with(s, -ETIMEDOUT,
                       "Process %s timed out after %lld ms (terminated, exit "
                       "code %d)",
                       x->exe, (long long)x->timeout_ms, code);
        goto out;
    }
    if (reason == ECANCELED) {
        rc = fail_with(s, -ECANCELED,
                       "cancelled (process %s terminated, "
                       "exit code %d)",
                       x->exe, code);
        goto out;
    }
    if (w > 0 && WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *sn = sigabbrev_np(sig);
        rc = fail_with(s, SHL_ECALLFAILED,
                       "Process %s killed by signal %d (SIG%s), exit code %d",
                       x->exe, sig, sn ? sn : "?", code);
        goto out;
    }
    if (code != 0) {
        rc = fail_with(s, SHL_ECALLFAILED, "Process %s exited with code %d",
                       x->exe, code);
        goto out;
    }
    if (!x->file_mode) {
        if (col.overflow) {
            rc = fail_with(s, -EFBIG,
                           "Process %s: stdout longer than %u "
                           "bytes",
                           x->exe, STDOUT_MAX_BYTES);
            goto out;
        }
        if (!col.p && !(col.p = malloc(1))) {
            rc = fail_with(s, -ENOMEM, "no memory for stdout");
            goto out;
        }
        col.p[col.len] = 0;
        *result = col.p;
        col.p = NULL;
        goto out;
    }
    /* file result: it may still be on its way (a detached writer), so poll
     * for what is left of the timeout; without one, look once */
    int64_t left = 0;
    if (dl >= 0) {
        left = (dl - shl__mono_ns()) / 1000000;
        if (left < 0)
            left = 0;
    }
    char *content = NULL;
    int prc = shl_poll_file(x->result_path, x->delete_result, x->poll_ms, left,
                            &content);
    if (prc == -ETIMEDOUT) {
        rc = dl >= 0
                 ? fail_with(s, -ETIMEDOUT,
                             "Process %s exited 0 but result file %s did "
                             "not appear within %lld ms",
                             x->exe, x->result_path, (long long)x->timeout_ms)
                 : fail_with(s, -ENOENT,
                             "Process %s exited 0 but result file %s is "
                             "missing",
                             x->exe, x->result_path);
        goto out;
    }
    if (prc) {
        rc = fail_with(s, prc, "result file %s: %s", x->result_path,
                       shl_errmsg());
        goto out;
    }
    *result = content;

out:
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&ep[0]);
    close_fd(&ep[1]);
    close_fd(&devnull);
    close_fd(&pidfd);
    free(lout.p);
    free(lerr.p);
    free(col.p);
    return rc;
}

/* The process's text, then the deserializer (if any): its failure fails
 * the call. */
static int
exec_work(shl_spawned *s, void *arg, void **result)
{
    struct exec_ctx *x = arg;
    char *text = NULL;
    int rc = exec_run(s, arg, (void **)&text);
    if (rc < 0 || !x->deserializer) {
        if (rc >= 0)
            *result = text;
        else
            free(text);
        return rc;
    }
    void *val = NULL;
    int prc = x->deserializer(text ? text : "", text ? strlen(text) : 0,
                              x->user, &val);
    free(text);
    if (prc < 0) {
        if (val && x->result_free)
            x->result_free(val);
        return fail_with(s, prc, "Process %s: deserializer failed: %s",
                         x->exe, shl_strerror(prc));
    }
    *result = val;
    return 0;
}

/* ---- public ---- */

void
shl_exec_opts_init(shl_exec_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->delete_result_file = true;
    o->poll_interval_ms = 100;
    o->timeout_ms = -1;
    o->fail_on_crash = true;
}

static int
exec_start(shl_op *op, const shl_exec_opts *o, bool file_mode,
           shl_spawned **out)
{
    shl__clear_err();
    if (!op || !o || !out || !o->executable || !*o->executable)
        return SHL_SET_ERR(-EINVAL, "exec helper: NULL argument or empty "
                                    "executable");
    if (file_mode && (!o->result_file_path || !*o->result_file_path))
        return SHL_SET_ERR(-EINVAL, "execFileResultWorker: no result file "
                                    "path");
    struct exec_ctx *x = calloc(1, sizeof(*x));
    if (!x)
        return SHL_SET_ERR(-ENOMEM, "exec helper: no memory");
    size_t argc = 0;
    if (o->argv)
        while (o->argv[argc])
            argc++;
    x->argv = calloc(argc + 2, sizeof(*x->argv));
    x->exe = strdup(o->executable);
    x->cands = candidates(o->executable);
    bool ok = x->argv && x->exe && x->cands;
    if (ok && !(x->argv[0] = strdup(o->executable)))
        ok = false;
    for (size_t i = 0; ok && i < argc; i++)
        if (!(x->argv[i + 1] = strdup(o->argv[i])))
            ok = false;
    if (ok && o->working_directory && !(x->cwd = strdup(o->working_directory)))
        ok = false;
    if (ok && file_mode && !(x->result_path = strdup(o->result_file_path)))
        ok = false;
    if (!ok) {
        ctx_free(x);
        return SHL_SET_ERR(-ENOMEM, "exec helper: no memory");
    }
    x->file_mode = file_mode;
    x->delete_result = o->delete_result_file;
    x->poll_ms = o->poll_interval_ms > 0 ? o->poll_interval_ms : 100;
    x->timeout_ms = o->timeout_ms;
    x->on_stdout = o->on_stdout;
    x->on_stderr = o->on_stderr;
    x->on_exit = o->on_exit;
    x->user = o->user;
    x->deserializer = o->deserializer;
    x->result_free = o->result_free;

    shl_spawn_opts so;
    shl_spawn_opts_init(&so);
    so.description = o->description ? o->description
                     : file_mode    ? "File result worker"
                                    : "Stdio worker";
    so.fail_on_crash = o->fail_on_crash;
    so.result_free = o->deserializer ? o->result_free : free;
    so.callbacks = o->callbacks;
    return shl__spawn(op, exec_work, x, ctx_free, true, &so, out);
}

int
shl_op_exec_file_result_worker(shl_op *op, const shl_exec_opts *o,
                               shl_spawned **out)
{
    shl__clear_err();
    return exec_start(op, o, true, out);
}

int
shl_op_exec_stdio_worker(shl_op *op, const shl_exec_opts *o, shl_spawned **out)
{
    shl__clear_err();
    return exec_start(op, o, false, out);
}
