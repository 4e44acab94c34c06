/*
 * util.c: error reporting, exit-status mapping, clocks and formatting shared
 * by the subcommands of `shmledger`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void
cli_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "shmledger%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
cli_exit_for(int rc)
{
    switch (rc) {
    case 0:
        return EX_OK;
    case SHL_EVERSION:
    case SHL_EFORMAT:
    case SHL_EOWNER:
    case SHL_ECORRUPT:
    case SHL_ENOTREADY:
    case SHL_EPANIC:
    case SHL_EUNSAFE:
        return EX_SEGMENT;
    case SHL_EIO:
        return EX_FILES;
    case SHL_EBADID:
        return EX_USAGE;
    default:
        return EX_FAIL;
    }
}

int
cli_fail(const char *cmd, int rc, const char *what, ...)
{
    char msg[512], diag[512];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof(msg), what, ap);
    va_end(ap);
    shl_tool_one_line(diag, sizeof(diag), shl_errmsg());
    const char *name = shl_strerror(rc);
    /* The diagnostic often repeats the code's name; print it only when it
     * adds something. */
    if (diag[0] && strstr(diag, name) == NULL)
        cli_err(cmd, "%s: %s (%s)", msg, name, diag);
    else
        cli_err(cmd, "%s: %s", msg, name);
    return cli_exit_for(rc);
}

int
cli_usage_err(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cmd)
        cli_err(cmd, "%s (try 'shmledger %s --help')", msg, cmd);
    else
        cli_err(NULL, "%s (try 'shmledger --help')", msg);
    return EX_USAGE;
}

int
cli_bad_opt(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (opt == ':')
        return cli_usage_err(cmd, "option '%s' needs an argument", arg);
    if (optopt && arg[0] == '-' && arg[1] != '-')
        return cli_usage_err(cmd, "unknown option '-%c'", optopt);
    return cli_usage_err(cmd, "unknown option '%s'", arg);
}

int
cli_help(const char *text)
{
    fputs(text, stdout);
    return EX_OK;
}

bool
cli_common_opt(struct cli *c, int opt, const char *arg)
{
    if (opt != OPT_BASE)
        return false;
    c->base = arg;
    return true;
}

const char *
cli_base(struct cli *c, const char *cmd)
{
    if (c->base && *c->base)
        return c->base;
    cli_usage_err(cmd, "no base path: give --base DIR or set SHMLEDGER_BASE");
    return NULL;
}

int
cli_open_reader(struct cli *c, const char *cmd, shl_reader **out)
{
    const char *base = cli_base(c, cmd);
    if (!base)
        return EX_USAGE;
    int rc = shl_reader_open(out, base);
    if (rc == 0)
        return EX_OK;
    if (rc == -ENOENT) {
        cli_err(cmd, "no ledger at %s (no such directory or segment)", base);
        return EX_FAIL;
    }
    return cli_fail(cmd, rc, "cannot read the ledger of %s", base);
}

int
cli_check_op_id(const char *cmd, const char *id)
{
    if (shl_validate_operation_id(id) == 0)
        return EX_OK;
    return cli_usage_err(cmd, "malformed operation id '%s'", id);
}

void
cli_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
