/*
 * cli.h: shared declarations of the `shmledger` command's modules.
 *
 * The command is a client of <shmledger/shmledger.h> only (STYLE.md b1):
 * every subcommand is a function `int cmd_<name>(struct cli *, int argc,
 * char **argv)` that parses its own options (argv[0] is the subcommand's
 * name) and returns the process exit status (EX_*, common/exit.h).
 */
#ifndef SHMLEDGER_CLI_H
#define SHMLEDGER_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <shmledger/shmledger.h>

#include "../common/clock.h" /* shl_tool_now_us, shl_tool_mono_ms */
#include "../common/fmt.h"   /* shl_tool_fmt_age, shl_tool_json_str */

/* Exit statuses (documented in --help and docs/tools.md). */
#include "../common/busy.h" /* shl_tool_snapshot, shl_tool_list */
#include "../common/exit.h" /* EX_OK, EX_FAIL, EX_USAGE, EX_SEGMENT */

struct cli {
    const char *prog; /* "shmledger" */
    const char *base; /* --base, else $SHMLEDGER_BASE, else NULL */
    const char *self; /* path of this executable (for demo workers) */
};

/* Subcommands. */
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_show(struct cli *c, int argc, char **argv);
int cmd_create(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
int cmd_abort(struct cli *c, int argc, char **argv);
int cmd_complete(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_info(struct cli *c, int argc, char **argv);
int cmd_gc(struct cli *c, int argc, char **argv);
int cmd_log(struct cli *c, int argc, char **argv);
int cmd_demo(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);

/* --- util.c --- */

/* Print "shmledger <cmd>: <fmt...>" and a newline to stderr. */
void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print a one-line library error: "shmledger <cmd>: <what>: <strerror>
 * (<errmsg>)" and return the exit status for rc (shl_tool_exit_for). */
int cli_fail(const char *cmd, int rc, const char *what, ...)
    __attribute__((format(printf, 3, 4)));
/* Usage error: message + "try --help" hint; returns EX_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The base path or a usage error (returns NULL after printing). */
const char *cli_base(struct cli *c, const char *cmd);
/* Open a reader on the base path; prints the error, returns 0 or an exit
 * status. A missing segment reads "no ledger at BASE". */
int cli_open_reader(struct cli *c, const char *cmd, shl_reader **out);
/* Validate an operation id argument; prints and returns EX_USAGE if bad. */
int cli_check_op_id(const char *cmd, const char *id);

/* Read an operation that left the segment from its JSON file
 * (DIR/OP.operation.json, else DIR/backup/OP/operation.json); `where`
 * gets the path. 0, SHL_ENOTFOUND (no file), or a parse error (printed). */
int cli_snapshot_from_files(const char *base, const char *op_id,
                            shl_snapshot **out, char *where, size_t cap);

/* Sleep for ms milliseconds (restarts on EINTR unless *stop is set). */
void cli_sleep_ms(int64_t ms);
/* Common option handling: returns true if `opt` was --base (sets c->base). */
bool cli_common_opt(struct cli *c, int opt, const char *arg);

/* Report a getopt_long failure (opt is '?' or ':'); returns EX_USAGE.
 * Optstrings start with ':' so a missing argument is told apart. */
int cli_bad_opt(const char *cmd, int opt, char **argv);
/* Print a subcommand's help text to stdout; returns EX_OK. */
int cli_help(const char *text);

/* getopt_long ids shared by every subcommand. */
#define OPT_BASE 0x100
#define OPT_HELP 'h'

#endif /* SHMLEDGER_CLI_H */
