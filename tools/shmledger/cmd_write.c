/*
 * cmd_write.c: the subcommands that take part in the ledger: create, abort,
 * complete and run. Each opens its own ledger (a participant slot) for the
 * duration of the command and closes it before exiting.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* Reports of files the library could not write ("[Ledger] ... failed:
 * ..."), printed to stderr as they come (any thread) and counted: a command
 * that met one exits EX_FILES instead of pretending success. */
static _Atomic unsigned file_errors;
static const char *log_cmd = "";

static void
on_library_line(const char *line, void *user)
{
    (void)user;
    if (strncmp(line, "[Ledger] ", 9) != 0 || !strstr(line, " failed"))
        return;
    atomic_fetch_add(&file_errors, 1);
    char safe[1024];
    shl_tool_term_safe(safe, sizeof(safe), line + 9);
    cli_err(log_cmd, "%s", safe);
}

/* After the ledger is closed (its last drain reported too): EX_FILES if a
 * file could not be written, else ex. */
static int
files_status(const char *cmd, int ex)
{
    unsigned n = atomic_load(&file_errors);
    if (n == 0)
        return ex;
    cli_err(cmd,
            "%u file write(s) failed under the base directory: the "
            "operation's files are incomplete",
            n);
    return ex == EX_OK ? EX_FILES : ex;
}

static int
open_ledger(struct cli *c, const char *cmd, const char *participant,
            shl_ledger **out)
{
    const char *base = cli_base(c, cmd);
    if (!base)
        return EX_USAGE;
    if (shl_validate_participant_id(participant) != 0)
        return cli_usage_err(cmd,
                             "malformed participant id '%s' (1..%d of "
                             "[A-Za-z0-9_:.-])",
                             participant, SHL_PARTICIPANT_ID_MAX);
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.callbacks.on_log_line = on_library_line;
    log_cmd = cmd;
    int rc = shl_ledger_open(out, base, participant, &o);
    if (rc)
        return cli_fail(cmd, rc, "cannot open the ledger of %s", base);
    return EX_OK;
}

/* Join OP; prints a readable error for the usual failures. */
static int
join_op(shl_ledger *l, const char *cmd, const char *op_id, shl_op **out)
{
    int rc = shl_op_join(l, op_id, NULL, out);
    if (rc == 0)
        return EX_OK;
    if (rc == SHL_ENOTFOUND) {
        cli_err(cmd, "no operation %s in the ledger", op_id);
        return EX_FAIL;
    }
    if (rc == SHL_ESTATE) {
        cli_err(cmd, "operation %s has already completed or failed", op_id);
        return EX_FAIL;
    }
    return cli_fail(cmd, rc, "cannot join operation %s", op_id);
}

/* ------------------------------------------------------------------------ */
/* create                                                                    */
/* ------------------------------------------------------------------------ */

static const char create_help[] =
    "Usage: shmledger [--base DIR] create [--description D] "
    "[--participant ID]\n"
    "\n"
    "Create an operation and print its id\n"
    "(YYYYMMDDTHH:MM:SS.mmm-<participant>-<8 hex>). The ledger of DIR and\n"
    "its segment are created if they do not exist.\n"
    "\n"
    "  -d, --description D   stored with the operation\n"
    "  -p, --participant ID  initiator's participant id (default: cli)\n"
    "\n"
    "The command's ledger closes when it exits: that ends its session, but\n"
    "the operation stays, running, for others to join (shmledger run).\n"
    "'shmledger complete OP' completes it later (it joins as the initiator,\n"
    "which gives the role back once this session is gone).\n"
    "\n"
    "Exit status: 0 ok, 1 failure (e.g. a table is full), 2 usage, 3 segment\n"
    "problem.\n";

int
cmd_create(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"description", required_argument, NULL, 'd'},
        {"participant", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *desc = NULL, *participant = "cli";
    int opt;
    while ((opt = getopt_long(argc, argv, ":hd:p:", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        switch (opt) {
        case 'h':
            return cli_help(create_help);
        case 'd':
            desc = optarg;
            break;
        case 'p':
            participant = optarg;
            break;
        default:
            return cli_bad_opt("create", opt, argv);
        }
    }
    if (optind < argc)
        return cli_usage_err("create", "unexpected argument '%s'",
                             argv[optind]);
    if (desc && strlen(desc) > SHL_DESCRIPTION_MAX)
        return cli_usage_err("create", "description longer than %d bytes",
                             SHL_DESCRIPTION_MAX);
    shl_ledger *l;
    int ex = open_ledger(c, "create", participant, &l);
    if (ex)
        return ex;
    shl_op *op;
    int rc = shl_op_create(l, desc, NULL, &op);
    if (rc) {
        ex = cli_fail("create", rc, "cannot create an operation");
        shl_ledger_close(l);
        return ex;
    }
    printf("%s\n", shl_op_id(op));
    shl_ledger_close(l); /* ends the session; the operation stays */
    return files_status("create", EX_OK);
}

/* ------------------------------------------------------------------------ */
/* abort                                                                     */
/* ------------------------------------------------------------------------ */

static const char abort_help[] =
    "Usage: shmledger [--base DIR] abort [--clear] [--participant ID] OP\n"
    "\n"
    "Set the shared abort flag of operation OP (joining it briefly as a\n"
    "participant). Every participant sees the flag; 'shmledger run' sends its\n"
    "command SIGTERM (see 'shmledger run --help').\n"
    "\n"
    "  --clear               clear the flag instead\n"
    "  -p, --participant ID  participant id used to join (default:\n"
    "                        abort-<pid>)\n"
    "\n"
    "Exit status: 0 ok, 1 no such operation (or it has completed or\n"
    "failed), 2 usage, 3 segment problem.\n";

int
cmd_abort(struct cli *c, int argc, char **argv)
{
    enum { OPT_CLEAR = 0x300 };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"clear", no_argument, NULL, OPT_CLEAR},
        {"participant", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *participant = NULL;
    char pbuf[32];
    bool clear = false;
    int opt;
    while ((opt = getopt_long(argc, argv, ":hp:", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        switch (opt) {
        case 'h':
            return cli_help(abort_help);
        case OPT_CLEAR:
            clear = true;
            break;
        case 'p':
            participant = optarg;
            break;
        default:
            return cli_bad_opt("abort", opt, argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_err("abort", optind >= argc ? "missing operation id"
                                                     : "too many arguments");
    const char *op_id = argv[optind];
    int ex = cli_check_op_id("abort", op_id);
    if (ex)
        return ex;
    if (!participant) {
        /* not "cli": that would take back the role of an initiator made by
         * `shmledger create` */
        snprintf(pbuf, sizeof(pbuf), "abort-%d", (int)getpid());
        participant = pbuf;
    }
    /* Do not create a ledger as a side effect of a typo in --base. */
    shl_reader *r;
    ex = cli_open_reader(c, "abort", &r);
    if (ex)
        return ex;
    shl_reader_close(r);
    shl_ledger *l;
    ex = open_ledger(c, "abort", participant, &l);
    if (ex)
        return ex;
    shl_op *op;
    ex = join_op(l, "abort", op_id, &op);
    if (ex) {
        shl_ledger_close(l);
        return ex;
    }
    int rc = shl_op_set_abort_flag(op, !clear);
    if (rc)
        ex = cli_fail("abort", rc, "cannot set the abort flag of %s", op_id);
    else
        printf("%s %s\n", clear ? "cleared abort flag of" : "aborted", op_id);
    shl_op_leave(op, true);
    shl_ledger_close(l);
    return ex;
}

/* ------------------------------------------------------------------------ */
/* complete                                                                  */
/* ------------------------------------------------------------------------ */

static const char complete_help[] =
    "Usage: shmledger [--base DIR] complete [--participant ID] OP\n"
    "\n"
    "Complete operation OP as its initiator: join under the operation's\n"
    "initiatorId (or ID), which gives the initiator role back when the\n"
    "initiator's own session is gone (e.g. after 'shmledger create'), then\n"
    "shl_op_complete(): the operation becomes 'completed', its frames and\n"
    "temp-resource records are released and it is archived in\n"
    "DIR/backup/OP/. Calls still in flight lose their frames.\n"
    "\n"
    "It is refused while the initiator is still connected (only one session\n"
    "holds the role: the creating process completes it itself), and when\n"
    "the operation is no longer running.\n"
    "\n"
    "  -p, --participant ID  join as ID instead of the initiatorId\n"
    "\n"
    "Exit status: 0 completed, 1 refused (initiator connected, not running)\n"
    "or no such operation, 2 usage, 3 segment problem.\n";

int
cmd_complete(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"participant", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *participant = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, ":hp:", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(complete_help);
        if (opt == 'p') {
            participant = optarg;
            continue;
        }
        return cli_bad_opt("complete", opt, argv);
    }
    if (optind + 1 != argc)
        return cli_usage_err("complete", optind >= argc ? "missing operation id"
                                                        : "too many arguments");
    const char *op_id = argv[optind];
    int ex = cli_check_op_id("complete", op_id);
    if (ex)
        return ex;
    shl_reader *r;
    ex = cli_open_reader(c, "complete", &r);
    if (ex)
        return ex;
    shl_snapshot *s;
    int rc = shl_tool_snapshot(r, op_id, &s);
    shl_reader_close(r);
    if (rc == SHL_ENOTFOUND) {
        cli_err("complete", "no operation %s in the ledger", op_id);
        return EX_FAIL;
    }
    if (rc)
        return cli_fail("complete", rc, "cannot read operation %s", op_id);
    char initiator[SHL_PARTICIPANT_ID_MAX + 1];
    snprintf(initiator, sizeof(initiator), "%s", s->initiator_id);
    shl_snapshot_free(s);
    if (!participant)
        participant = initiator;

    shl_ledger *l;
    ex = open_ledger(c, "complete", participant, &l);
    if (ex)
        return ex;
    shl_op *op;
    ex = join_op(l, "complete", op_id, &op);
    if (ex) {
        shl_ledger_close(l);
        return ex;
    }
    if (!shl_op_is_initiator(op)) {
        cli_err("complete",
                "cannot complete %s: its initiator '%s' is still connected "
                "(only the initiator's session may complete it)",
                op_id, initiator);
        shl_op_leave(op, true);
        shl_ledger_close(l);
        return EX_FAIL;
    }
    rc = shl_op_complete(op);
    if (rc == SHL_EIO) {
        /* completed, but its archive is not whole: op is freed */
        ex = cli_fail("complete", rc,
                      "completed %s, but its archive is "
                      "incomplete",
                      op_id);
        shl_ledger_close(l);
        return ex;
    }
    if (rc) {
        ex = cli_fail("complete", rc, "cannot complete %s", op_id);
        shl_op_leave(op, true);
        shl_ledger_close(l);
        return ex;
    }
    shl_ledger_close(l);
    printf("completed %s\n", op_id);
    return files_status("complete", EX_OK);
}

/* ------------------------------------------------------------------------ */
/* run                                                                       */
/* ------------------------------------------------------------------------ */

static const char run_help[] =
    "Usage: shmledger [--base DIR] run --op OP [OPTIONS] -- CMD [ARGS...]\n"
    "\n"
    "Take part in operation OP with a command: join OP, start a call, run\n"
    "CMD as a child process, then end the call if CMD exits 0, or fail it\n"
    "with \"exit status N\" or \"killed by signal N\", leave, and exit with\n"
    "CMD's status (128+N when it was killed by signal N).\n"
    "\n"
    "CMD's environment has SHMLEDGER_BASE, SHMLEDGER_OP and SHMLEDGER_CALL\n"
    "(the call id). SIGINT, SIGTERM and SIGHUP sent to this process are\n"
    "forwarded to CMD (a terminal's Ctrl-C already reaches both). If this\n"
    "process dies, CMD gets SIGTERM. While CMD runs this process keeps the\n"
    "participant's heartbeat and watches the operation: when it is aborted\n"
    "or fails, CMD gets the --abort-signal.\n"
    "\n"
    "  -o, --op OP            the operation to join (required)\n"
    "  -p, --participant ID   participant id (default: run-<pid>)\n"
    "  -d, --description D    the call's description (default: CMD ARGS)\n"
    "  --no-fail-on-crash     a failure of this call does not fail the\n"
    "                         operation (failOnCrash false)\n"
    "  --abort-signal N       signal sent to CMD when the operation is\n"
    "                         aborted or fails (default 15; 0: none)\n"
    "  -v, --verbose          report the call's start and end on stderr\n"
    "\n"
    "Exit status: CMD's status; 126/127 when CMD cannot be executed; before\n"
    "CMD starts: 1 (no such operation, not running), 2 usage, 3 segment\n"
    "problem.\n";

static volatile sig_atomic_t run_child; /* pid of CMD once spawned */
static volatile sig_atomic_t run_got_sig;

static void
run_on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    /* A signal the kernel generated for the terminal's process group
     * (si_code > 0, e.g. Ctrl-C) has reached CMD already. */
    if (si && si->si_code > 0)
        return;
    pid_t p = run_child;
    if (p > 0)
        kill(p, sig);
    else
        run_got_sig = sig;
}

static void
install_forwarding(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = run_on_signal;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: waits see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* environ plus the three SHMLEDGER_* variables (replacing old values). */
static char **
build_env(const char *base, const char *op_id, const char *call_id)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 4, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SHMLEDGER_BASE=", 15) != 0 &&
            strncmp(environ[i], "SHMLEDGER_OP=", 13) != 0 &&
            strncmp(environ[i], "SHMLEDGER_CALL=", 15) != 0)
            env[k++] = environ[i];
    const char *names[3] = {
        "SHMLEDGER_BASE=", "SHMLEDGER_OP=", "SHMLEDGER_CALL="};
    const char *vals[3] = {base, op_id, call_id};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(names[i]) + strlen(vals[i]) + 1;
        char *v = malloc(len);
        if (!v) {
            for (int j = 0; j < i; j++)
                free(env[k - (size_t)i + (size_t)j]);
            free(env);
            return NULL;
        }
        snprintf(v, len, "%s%s", names[i], vals[i]);
        env[k++] = v;
    }
    env[k] = NULL;
    return env;
}

static void
free_env(char **env)
{
    if (!env)
        return;
    size_t n = 0;
    while (env[n])
        n++;
    for (size_t i = n - 3; i < n; i++)
        free(env[i]);
    free(env);
}

/* Spawn CMD: fork, then in the child only async-signal-safe calls (the
 * library may have threads). An exec failure travels back as errno over a
 * CLOEXEC pipe (libuv's uv__write_errno). Returns the pid or -errno. */
static pid_t
spawn_cmd(char **cmd, char **env)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -e;
    }
    if (pid == 0) {
        close(pfd[0]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* The call is CMD's work: if we die, CMD should stop too. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        execvpe(cmd[0], cmd, env);
        int e = errno;
        (void)!write(pfd[1], &e, sizeof(e));
        _exit(127);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t n;
    do
        n = read(pfd[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == (ssize_t)sizeof(e)) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        return -(e ? e : ENOEXEC);
    }
    return pid;
}

/* Wait for CMD, keeping the heartbeat and watching the abort flag. */
static int
wait_cmd(pid_t pid, shl_ledger *l, shl_op *op, int abort_sig, bool verbose)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    bool abort_sent = false, fenced_said = false;
    int64_t next_beat = 0;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            st = 0;
            break;
        }
        int64_t now = shl_tool_mono_ms();
        if (now >= next_beat) {
            if (shl_ledger_heartbeat(l) == SHL_EFENCED && !fenced_said) {
                cli_err("run", "this participant was declared crashed; "
                               "the call's outcome will not be recorded");
                fenced_said = true;
            }
            next_beat = now + 1000;
        }
        if (!abort_sent) {
            int state = shl_op_get_state(op);
            const char *why = shl_op_check_abort(op) == 1 ? "aborted"
                              : state == SHL_OP_CLEANUP   ? "failing"
                              : state == SHL_OP_FAILED    ? "failed"
                                                          : NULL;
            if (why) {
                abort_sent = true;
                if (abort_sig > 0) {
                    if (verbose)
                        cli_err("run",
                                "operation %s: sending signal %d to "
                                "pid %d",
                                why, abort_sig, (int)pid);
                    kill(pid, abort_sig);
                }
            }
        }
        if (pidfd >= 0) {
            struct pollfd p = {.fd = pidfd, .events = POLLIN};
            (void)poll(&p, 1, 200);
        } else {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return st;
}

int
cmd_run(struct cli *c, int argc, char **argv)
{
    enum { OPT_NOFAIL = 0x300, OPT_ABORTSIG };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"op", required_argument, NULL, 'o'},
        {"participant", required_argument, NULL, 'p'},
        {"description", required_argument, NULL, 'd'},
        {"no-fail-on-crash", no_argument, NULL, OPT_NOFAIL},
        {"abort-signal", required_argument, NULL, OPT_ABORTSIG},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *op_id = NULL, *participant = NULL, *desc = NULL;
    bool fail_on_crash = true, verbose = false;
    int abort_sig = SIGTERM;
    int opt;
    /* '+': stop at CMD, so its own options are not ours. */
    while ((opt = getopt_long(argc, argv, "+:ho:p:d:v", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        switch (opt) {
        case 'h':
            return cli_help(run_help);
        case 'o':
            op_id = optarg;
            break;
        case 'p':
            participant = optarg;
            break;
        case 'd':
            desc = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case OPT_NOFAIL:
            fail_on_crash = false;
            break;
        case OPT_ABORTSIG: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || v < 0 || v >= NSIG)
                return cli_usage_err("run", "bad signal number '%s'", optarg);
            abort_sig = (int)v;
            break;
        }
        default:
            return cli_bad_opt("run", opt, argv);
        }
    }
    if (!op_id)
        return cli_usage_err("run", "missing --op OP");
    if (optind >= argc)
        return cli_usage_err("run", "missing command (after --)");
    int ex = cli_check_op_id("run", op_id);
    if (ex)
        return ex;
    char **cmd = argv + optind;
    char pbuf[32];
    if (!participant) {
        snprintf(pbuf, sizeof(pbuf), "run-%d", (int)getpid());
        participant = pbuf;
    }
    char dbuf[SHL_DESCRIPTION_MAX + 1];
    if (!desc) {
        size_t n = 0;
        dbuf[0] = 0;
        for (char **a = cmd; *a && n < sizeof(dbuf) - 1; a++) {
            int w = snprintf(dbuf + n, sizeof(dbuf) - n, "%s%s",
                             a == cmd ? "" : " ", *a);
            if (w < 0)
                break;
            n += (size_t)w;
        }
        if (n >= sizeof(dbuf) - 1) /* truncated: mark it */
            memcpy(dbuf + sizeof(dbuf) - 4, "...", 4);
        desc = dbuf;
    } else if (strlen(desc) > SHL_DESCRIPTION_MAX) {
        return cli_usage_err("run", "description longer than %d bytes",
                             SHL_DESCRIPTION_MAX);
    }

    install_forwarding();
    shl_reader *r;
    ex = cli_open_reader(c, "run", &r);
    if (ex)
        return ex;
    shl_reader_close(r);
    shl_ledger *l;
    ex = open_ledger(c, "run", participant, &l);
    if (ex)
        return ex;
    shl_op *op;
    ex = join_op(l, "run", op_id, &op);
    if (ex) {
        shl_ledger_close(l);
        return ex;
    }
    shl_call_opts co;
    shl_call_opts_init(&co);
    co.description = desc;
    co.fail_on_crash = fail_on_crash;
    shl_call *call;
    int rc = shl_call_start(op, &co, &call);
    if (rc) {
        ex = cli_fail("run", rc, "cannot start a call in %s", op_id);
        shl_op_leave(op, true);
        shl_ledger_close(l);
        return ex;
    }
    if (verbose)
        cli_err("run", "call %s started in %s", shl_call_id(call), op_id);

    char **env = build_env(c->base, op_id, shl_call_id(call));
    int status = 0;
    char reason[64] = "";
    pid_t pid = -ENOMEM;
    if (run_got_sig) {
        pid = -EINTR;
        snprintf(reason, sizeof(reason), "killed by signal %d",
                 (int)run_got_sig);
        status = 128 + run_got_sig;
    } else if (env) {
        pid = spawn_cmd(cmd, env);
    }
    if (pid > 0) {
        run_child = pid;
        /* A signal that came between the check and run_child: forward. */
        if (run_got_sig)
            kill(pid, run_got_sig);
        int st = wait_cmd(pid, l, op, abort_sig, verbose);
        run_child = 0;
        if (WIFSIGNALED(st)) {
            status = 128 + WTERMSIG(st);
            snprintf(reason, sizeof(reason), "killed by signal %d",
                     WTERMSIG(st));
        } else {
            status = WEXITSTATUS(st);
            if (status)
                snprintf(reason, sizeof(reason), "exit status %d", status);
        }
    } else if (pid != -EINTR) {
        cli_err("run", "cannot execute %s: %s", cmd[0], strerror((int)-pid));
        status = (pid == -ENOENT) ? 127 : 126;
        snprintf(reason, sizeof(reason), "cannot execute: %s",
                 strerror((int)-pid));
    }
    free_env(env);

    if (reason[0])
        rc = shl_call_fail(call, reason);
    else
        rc = shl_call_end(call, NULL);
    /* SHL_ESTATE: the operation ended without the call (its frame was
     * released by complete) */
    if ((rc == SHL_EFENCED || rc == SHL_ESTALE || rc == SHL_ESTATE) &&
        shl_op_get_state(op) == SHL_ESTALE)
        cli_err("run",
                "operation %s was completed or removed before the "
                "command ended; call %s was not recorded",
                op_id, shl_call_id(call));
    else if (rc == SHL_EFAILED || rc == SHL_EABORTED)
        cli_err("run",
                "operation %s had %s before the command ended; call "
                "%s was not recorded",
                op_id, rc == SHL_EFAILED ? "failed" : "been aborted",
                shl_call_id(call));
    else if (rc)
        cli_fail("run", rc, "cannot record the end of call %s",
                 shl_call_id(call));
    else if (verbose)
        cli_err("run", "call %s %s%s", shl_call_id(call),
                reason[0] ? "failed: " : "ended", reason);
    shl_op_leave(op, true);
    shl_ledger_close(l);
    return files_status("run", status);
}
