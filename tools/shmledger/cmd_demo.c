/*
 * cmd_demo.c: `shmledger demo`, the embedded default scenario.
 *
 * The demo process creates an operation as its initiator, starts worker
 * processes that join it through `shmledger run` (this same executable),
 * shows the call frames from a snapshot, kills one worker with SIGKILL and
 * reports what the ledger then shows. It adapts to what the library can do:
 * when crash cleanup is present the operation fails with the crashed call
 * id; when it is not, the demo says so and completes the operation itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

static const char demo_help[] =
    "Usage: shmledger [--base DIR] demo [--wait MS] [--timeout MS] "
    "[--cleanup]\n"
    "\n"
    "Run the embedded scenario: this process creates an operation; worker\n"
    "processes join it with 'shmledger run' and take calls; the frames are\n"
    "shown from a snapshot; one worker is killed with SIGKILL; the demo\n"
    "reports what the ledger shows (the dead participant, crash detection,\n"
    "the failed operation with the crashed call id, the archive) and where\n"
    "to look. Without --base (or SHMLEDGER_BASE) it uses a fresh directory\n"
    "under $TMPDIR (or /tmp).\n"
    "\n"
    "  --wait MS      how long to watch for crash cleanup after the kill\n"
    "                 (default 3000)\n"
    "  --timeout MS   how long to wait for a worker's call (default 10000)\n"
    "  --cleanup      remove the segment and the directory at the end, when\n"
    "                 the demo created them (no --base): a directory you\n"
    "                 name is never removed\n"
    "\n"
    "Exit status: 0 the scenario ran, 1 a step failed, 2 usage, 3 segment\n"
    "problem.\n";

struct demo {
    struct cli *c;
    const char *base;
    shl_ledger *l;
    shl_reader *r;
    shl_op *op;
    char op_id[SHL_OPERATION_ID_MAX + 1];
    int64_t timeout_ms;
    /* set by on_backup_created once the archive of op_id is whole on
     * disk (the library calls it after every file was written and moved) */
    _Atomic int archived;
    _Atomic int64_t failed_ns; /* on_failure: CLOCK_MONOTONIC ns, 0 = not */
};

static void
on_backup(const char *path, void *user)
{
    struct demo *d = user;
    const char *slash = strrchr(path, '/');
    if (d->op_id[0] && slash && strcmp(slash + 1, d->op_id) == 0)
        atomic_store(&d->archived, 1);
}

/* Is the archive of op_id finished, written by this process (callback) or
 * by another participant (its files: operation.json in the folder, and the
 * live files moved out of the base directory, which happens last)? */
static bool
archive_done(struct demo *d, const char *archive)
{
    if (atomic_load(&d->archived))
        return true;
    char p[4096 + 128];
    struct stat st;
    snprintf(p, sizeof(p), "%s/operation.json", archive);
    if (stat(p, &st) != 0)
        return false;
    static const char *const live[] = {".operation.json", ".operation.log",
                                       "_trail.jsonl"};
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s%s", d->base, d->op_id, live[i]);
        if (stat(p, &st) == 0)
            return false;
    }
    return true;
}

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The initiator's on_failure (its monitor thread): when it was told. */
static void
demo_on_failure(shl_op *op, const shl_failed_info *info, void *user)
{
    (void)op;
    (void)info;
    struct demo *d = user;
    int64_t zero = 0;
    atomic_compare_exchange_strong(&d->failed_ns, &zero, mono_ns());
}

static pid_t
start_worker(struct demo *d, const char *name, const char *desc,
             const char *script)
{
    char *argv[] = {(char *)d->c->self,
                    "--base",
                    (char *)d->base,
                    "run",
                    "--op",
                    d->op_id,
                    "--participant",
                    (char *)name,
                    "--description",
                    (char *)desc,
                    "--",
                    "sh",
                    "-c",
                    (char *)script,
                    NULL};
    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    int rc = posix_spawn(&pid, d->c->self, NULL, NULL, argv, environ);
    if (rc != 0) {
        cli_err("demo", "cannot start %s: %s", d->c->self, strerror(rc));
        return -1;
    }
    return pid;
}

/* Index of the first frame of `participant`, or -1. */
static long
find_frame(const shl_snapshot *s, const char *participant)
{
    for (size_t i = 0; i < s->frame_count; i++)
        if (strcmp(s->frames[i].participant_id, participant) == 0)
            return (long)i;
    return -1;
}

static int
by_participant(const void *a, const void *b)
{
    const shl_call_frame *x = a, *y = b;
    return strcmp(x->participant_id, y->participant_id);
}

/* Poll until every participant in `names` has a frame; returns the last
 * snapshot (caller frees) or NULL on timeout. */
static shl_snapshot *
wait_frames(struct demo *d, const char *const *names, size_t n)
{
    int64_t deadline = shl_tool_mono_ms() + d->timeout_ms;
    while (shl_tool_mono_ms() < deadline) {
        shl_snapshot *s;
        (void)shl_ledger_heartbeat(d->l);
        if (shl_reader_snapshot(d->r, d->op_id, &s) == 0) {
            size_t found = 0;
            for (size_t i = 0; i < n; i++)
                if (find_frame(s, names[i]) >= 0)
                    found++;
            if (found == n) {
                qsort(s->frames, s->frame_count, sizeof(s->frames[0]),
                      by_participant);
                return s;
            }
            shl_snapshot_free(s);
        }
        cli_sleep_ms(20);
    }
    return NULL;
}

static void
print_frames(const shl_snapshot *s)
{
    int64_t now = shl_tool_now_us();
    printf("      %-11s %7s  %-28s %-8s %5s  %s\n", "PARTICIPANT", "PID",
           "CALL", "STATE", "AGE", "DESCRIPTION");
    for (size_t i = 0; i < s->frame_count; i++) {
        const shl_call_frame *f = &s->frames[i];
        char age[32];
        printf(
            "      %-11s %7d  %-28s %-8s %5s  %.40s\n", f->participant_id,
            f->pid, f->call_id, shl_frame_state_name(f->state),
            shl_tool_fmt_age((now - f->start_time_us) / 1000, age, sizeof(age)),
            f->has_description ? f->description : "");
    }
}

static int
reap(pid_t pid, const char *name)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFSIGNALED(st))
        printf("    %s (pid %d) was killed by signal %d\n", name, (int)pid,
               WTERMSIG(st));
    else
        printf("    %s (pid %d) exited with status %d\n", name, (int)pid,
               WEXITSTATUS(st));
    return st;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void
list_dir(const char *dir, const char *indent, int depth)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] != '.') {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            struct stat st;
            bool isdir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
            printf("%s%*s%s%s\n", indent, depth * 2, "", name,
                   isdir ? "/" : "");
            if (isdir && depth < 3)
                list_dir(path, indent, depth + 1);
        }
        free(names[i]);
    }
    free(names);
}

/* Print a text file indented, at most max_lines lines. */
static void
print_file(const char *path, const char *indent, int max_lines)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (n++ == max_lines) {
            printf("%s...\n", indent);
            break;
        }
        printf("%s%s", indent, line);
        if (!strchr(line, '\n'))
            putchar('\n');
    }
    fclose(f);
}

static void
rm_tree(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        while ((e = readdir(dp)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(path);
            else
                unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

/* Phase 1: two workers take calls at the same time and end them. */
static int
phase_two_workers(struct demo *d)
{
    printf("\n[2] Two worker processes join with 'shmledger run' and each "
           "takes a call:\n"
           "      shmledger --base %s run --op %s \\\n"
           "          --participant worker-N -- sh -c '...; work until told'\n",
           d->base, d->op_id);
    /* The workers work until the demo has shown both calls (a file it
     * creates says so; 60 s at most), not for a fixed time: on a loaded
     * machine the second could start after the first had ended. */
    const char *tmp = getenv("TMPDIR");
    char go[4096];
    snprintf(go, sizeof(go), "%s/shmledger-demo-go-%ld",
             tmp && *tmp ? tmp : "/tmp", (long)getpid());
    (void)unlink(go);
    if (setenv("SHMLEDGER_DEMO_GO", go, 1) != 0) {
        cli_err("demo", "setenv: %s", strerror(errno));
        return EX_FAIL;
    }
    const char *names[2] = {"worker-1", "worker-2"};
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        char script[512];
        snprintf(script, sizeof(script),
                 "echo \"    [%s] running as call $SHMLEDGER_CALL\"; i=0; "
                 "while [ ! -e \"$SHMLEDGER_DEMO_GO\" ] && [ $i -lt 600 ]; "
                 "do sleep 0.1; i=$((i+1)); done",
                 names[i]);
        pids[i] = start_worker(d, names[i], "work until told", script);
        if (pids[i] < 0) {
            if (i == 1) {
                kill(pids[0], SIGTERM);
                reap(pids[0], names[0]);
            }
            return EX_FAIL;
        }
    }
    shl_snapshot *s = wait_frames(d, names, 2);
    int fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    if (!s || fd < 0) {
        if (!s)
            cli_err("demo", "the workers' calls did not show up in time");
        else
            cli_err("demo", "cannot create %s: %s", go, strerror(errno));
        for (int i = 0; i < 2; i++) {
            kill(pids[i], SIGTERM);
            reap(pids[i], names[i]);
        }
        shl_snapshot_free(s);
        (void)unlink(go);
        return EX_FAIL;
    }
    printf("    The ledger's frames while both work (a lock-free "
           "snapshot):\n");
    print_frames(s);
    shl_snapshot_free(s);
    for (int i = 0; i < 2; i++)
        reap(pids[i], names[i]);
    (void)unlink(go);
    if (shl_reader_snapshot(d->r, d->op_id, &s) == 0) {
        printf("    Both calls ended (exit status 0): %zu frame(s) left, "
               "operation %s.\n",
               s->frame_count, shl_op_state_name(s->state));
        shl_snapshot_free(s);
    }
    return EX_OK;
}

/* Phase 2: a worker is killed with SIGKILL in the middle of its call. */
static int
phase_kill(struct demo *d, int64_t wait_ms, bool *failed)
{
    const char *name = "worker-3";
    printf("\n[3] A third worker takes a call and is killed with SIGKILL "
           "while it works:\n");
    pid_t pid = start_worker(
        d, name, "work for 60 s (to be killed)",
        "echo \"    [worker-3] running as call $SHMLEDGER_CALL\"; exec sleep 60");
    if (pid < 0)
        return EX_FAIL;
    const char *names[1] = {name};
    shl_snapshot *s = wait_frames(d, names, 1);
    if (!s) {
        cli_err("demo", "worker-3's call did not show up in time");
        kill(pid, SIGKILL);
        reap(pid, name);
        return EX_FAIL;
    }
    print_frames(s);
    char call_id[SHL_CALL_ID_MAX + 1];
    snprintf(call_id, sizeof(call_id), "%s",
             s->frames[find_frame(s, name)].call_id);
    shl_snapshot_free(s);
    printf("    kill -9 %d\n", (int)pid);
    int64_t kill_ns = mono_ns();
    kill(pid, SIGKILL);
    reap(pid, name);

    /* Watch the ledger: death is proven by the kernel dropping the
     * participant's liveness lock; crash cleanup (when the library has it)
     * marks the frame and fails the operation. */
    int64_t t0 = shl_tool_mono_ms();
    int64_t dead_at = -1, changed_at = -1;
    shl_snapshot *last = NULL;
    while (shl_tool_mono_ms() - t0 < wait_ms) {
        (void)shl_ledger_heartbeat(d->l);
        shl_snapshot *x;
        int rc = shl_reader_snapshot(d->r, d->op_id, &x);
        if (rc == 0) {
            shl_snapshot_free(last);
            last = x;
            for (size_t i = 0; i < x->participant_count; i++)
                if (strcmp(x->participants[i].participant_id, name) == 0 &&
                    !x->participants[i].alive && dead_at < 0)
                    dead_at = shl_tool_mono_ms() - t0;
            long fi = find_frame(x, name);
            if (x->state != SHL_OP_RUNNING ||
                (fi >= 0 && x->frames[fi].state != SHL_FRAME_ACTIVE)) {
                changed_at = shl_tool_mono_ms() - t0;
                if (x->state == SHL_OP_FAILED)
                    break;
            }
        } else if (rc == SHL_ENOTFOUND && !d->op) {
            changed_at = shl_tool_mono_ms() - t0;
            break;
        }
        /* while this process is a member the operation cannot leave the
         * ledger: a miss then is a reader's transient one, look again */
        cli_sleep_ms(10);
    }
    printf("\n[4] What the ledger shows after the kill:\n");
    if (changed_at < 0) {
        if (dead_at >= 0)
            printf("    - worker-3 is dead: the kernel released its "
                   "liveness lock (seen after %lld ms).\n",
                   (long long)dead_at);
        printf("    - Its frame %s is still 'active' and the operation "
               "still 'running'\n"
               "      after %lld ms: this build of the library has no crash "
               "cleanup yet\n"
               "      (detection, frames marked crashed, failure with the "
               "crashed call ids).\n",
               call_id, (long long)wait_ms);
        if (last)
            print_frames(last);
        *failed = false;
    } else if (last) {
        printf("    - worker-3 died: the kernel released its liveness lock "
               "at once (no\n"
               "      heartbeat timeout involved), and a live participant's "
               "monitor ran the\n"
               "      crash cleanup; the operation is now '%s' (the ledger "
               "seen from a\n"
               "      snapshot every 10 ms: changed within %lld ms of the "
               "kill).\n",
               shl_op_state_name(last->state), (long long)changed_at);
        for (size_t i = 0; i < last->frame_count; i++)
            printf("      frame %s of %s: %s\n", last->frames[i].call_id,
                   last->frames[i].participant_id,
                   shl_frame_state_name(last->frames[i].state));
        if (last->state == SHL_OP_FAILED || last->state == SHL_OP_CLEANUP) {
            printf("    - Failure: %s\n", last->failure.reason[0]
                                              ? last->failure.reason
                                              : "(no reason)");
            for (uint32_t i = 0; i < last->failure.crashed_call_count &&
                                 i < SHL_CRASHED_IDS_MAX;
                 i++)
                printf("      crashed call: %s\n",
                       last->failure.crashed_call_ids[i]);
        }
        int64_t told_ns = atomic_load(&d->failed_ns);
        if (told_ns)
            printf("    - This process (a participant) was told through "
                   "on_failure %.2f ms after\n"
                   "      the kill: the detection time, measured.\n",
                   (double)(told_ns - kill_ns) / 1e6);
        *failed = last->state != SHL_OP_RUNNING;
    } else {
        printf("    - The operation left the ledger after %lld ms.\n",
               (long long)changed_at);
        *failed = true;
    }
    shl_snapshot_free(last);
    return EX_OK;
}

int
cmd_demo(struct cli *c, int argc, char **argv)
{
    enum { OPT_WAIT = 0x300, OPT_TIMEOUT, OPT_CLEANUP };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"cleanup", no_argument, NULL, OPT_CLEANUP},
        {NULL, 0, NULL, 0},
    };
    int64_t wait_ms = 3000, timeout_ms = 10000;
    bool cleanup = false;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        switch (opt) {
        case 'h':
            return cli_help(demo_help);
        case OPT_WAIT:
        case OPT_TIMEOUT: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 0)
                return cli_usage_err("demo", "bad duration '%s'", optarg);
            *(opt == OPT_WAIT ? &wait_ms : &timeout_ms) = v;
            break;
        }
        case OPT_CLEANUP:
            cleanup = true;
            break;
        default:
            return cli_bad_opt("demo", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_err("demo", "unexpected argument '%s'", argv[optind]);

    char tmp[4096], seg[128] = "?";
    struct demo d = {.c = c, .timeout_ms = timeout_ms};
    bool own_dir = false; /* created here: --cleanup may remove it */
    if (c->base && *c->base) {
        d.base = c->base;
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof(tmp), "%s/shmledger-demo.XXXXXX",
                 t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) {
            cli_err("demo", "cannot create a directory %s: %s", tmp,
                    strerror(errno));
            return EX_FAIL;
        }
        d.base = tmp;
        own_dir = true;
        c->base = tmp; /* the workers get it with --base */
    }

    printf("shmledger demo: one operation, worker processes joined through "
           "'shmledger run',\none of them killed. Library %s.\n\n",
           shl_version_string());
    printf("[1] This process (pid %d) opens the ledger of %s\n"
           "    as participant 'demo' and creates an operation as its "
           "initiator:\n",
           (int)getpid(), d.base);
    shl_ledger_opts lo;
    shl_ledger_opts_init(&lo);
    lo.callbacks.on_backup_created = on_backup;
    lo.callbacks.user = &d;
    int rc = shl_ledger_open(&d.l, d.base, "demo", &lo);
    if (rc)
        return cli_fail("demo", rc, "cannot open the ledger of %s", d.base);
    int ex = EX_OK;
    shl_op_callbacks cb;
    memset(&cb, 0, sizeof(cb));
    cb.on_failure = demo_on_failure;
    cb.user = &d;
    rc = shl_op_create(d.l, "shmledger demo", &cb, &d.op);
    if (rc) {
        ex = cli_fail("demo", rc, "cannot create the operation");
        goto out;
    }
    snprintf(d.op_id, sizeof(d.op_id), "%s", shl_op_id(d.op));
    printf("      %s\n", d.op_id);
    d.r = shl_ledger_reader(d.l);

    ex = phase_two_workers(&d);
    if (ex)
        goto out;
    bool failed = false;
    ex = phase_kill(&d, wait_ms, &failed);
    if (ex)
        goto out;

    printf("\n[5] The end of the operation:\n");
    if (!failed) {
        rc = shl_op_complete(d.op);
        if (rc == 0) {
            d.op = NULL;
            printf("    The initiator completed it: its frames were "
                   "released and it left the ledger.\n");
        } else {
            cli_fail("demo", rc, "cannot complete %s", d.op_id);
        }
    } else {
        shl_failed_info fi;
        if (shl_op_failure_info(d.op, &fi) == 1)
            printf("    This process (the initiator) received the "
                   "failure: %s\n",
                   fi.reason);
        shl_op_leave(d.op, true);
        d.op = NULL;
        printf("    The initiator left; the failed operation was "
               "reclaimed.\n");
    }
    char archive[4096];
    snprintf(archive, sizeof(archive), "%s/backup/%s", d.base, d.op_id);
    /* The archive of a failed operation is written by the monitor that
     * ran the crash cleanup (in the background, after the state became
     * 'failed'): wait until it is whole (on_backup_created, or its files
     * for another writer), never print paths whose files are still being
     * written. */
    struct stat st;
    int64_t until = shl_tool_mono_ms() + d.timeout_ms;
    while (!archive_done(&d, archive) && shl_tool_mono_ms() < until)
        cli_sleep_ms(10);
    char logpath[4096 + 64];
    if (archive_done(&d, archive)) {
        printf("    Archived in %s\n", archive);
        snprintf(logpath, sizeof(logpath), "%s/operation.log", archive);
    } else {
        printf("    No complete archive %s within %lld ms.\n", archive,
               (long long)d.timeout_ms);
        ex = EX_FAIL;
        snprintf(logpath, sizeof(logpath), "%s/%s.operation.log", d.base,
                 d.op_id);
    }
    if (stat(logpath, &st) == 0 && st.st_size > 0) {
        printf("    The operation log (%s):\n", logpath);
        print_file(logpath, "      ", 30);
    }

    (void)shl_segment_name(d.base, seg, sizeof(seg));
    printf("\n[6] Where to look:\n"
           "    base directory  %s\n"
           "    segment         /dev/shm%s\n"
           "    files:\n",
           d.base, seg);
    list_dir(d.base, "      ", 0);
    if (!cleanup)
        printf("    try:\n"
               "      shmledger --base %s list\n"
               "      shmledger --base %s check\n"
               "      shmledger-top --base %s\n"
               "    clean up:\n"
               "      shmledger --base %s gc --unlink && rm -r %s\n",
               d.base, d.base, d.base, d.base, d.base);

out:
    if (d.op)
        shl_op_leave(d.op, true);
    shl_ledger_close(d.l);
    if (cleanup && !own_dir) {
        /* the user's directory (--base or SHMLEDGER_BASE): other
         * operations and other processes may live in it */
        printf("    --cleanup: %s is yours, not the demo's: left in place\n"
               "    (to remove its segment once nobody uses it: shmledger "
               "--base %s gc --unlink)\n",
               d.base, d.base);
    } else if (cleanup) {
        /* The killed worker's slot stays until a reaper frees it; the
         * segment of the demo's own directory is ours alone now. */
        rc = shl_segment_unlink(d.base);
        if (rc == 0 || rc == -ENOENT)
            printf("    removed segment %s\n", seg);
        rm_tree(d.base);
        printf("    removed %s\n", d.base);
    }
    return ex;
}
