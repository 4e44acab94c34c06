/*
 * main.c: `shmledger`, the command-line tool of the shared-memory ledger.
 *
 * Global options come before the subcommand; each subcommand parses its own
 * options with getopt_long (and accepts --base too). Only the public header
 * is used (STYLE.md b1): the command is the API's first client.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
    "Usage: shmledger [--base DIR] COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Inspect and take part in the operations of a shared-memory ledger.\n"
    "\n"
    "Commands:\n"
    "  list                 table of the live operations\n"
    "  show OP              one operation as JSON\n"
    "  create               create an operation, print its id\n"
    "  run --op OP -- CMD   run CMD as a call of operation OP\n"
    "  abort OP             set the operation's abort flag\n"
    "  complete OP          complete an operation as its initiator\n"
    "  log OP [-f]          print (or follow) the operation log\n"
    "  check                verify every invariant of the segment\n"
    "  info                 segment facts, snapshotter, participants\n"
    "  gc [--unlink]        report participants; remove an unused segment\n"
    "  export --trace OP    Chrome trace-event JSON of the operation\n"
    "  demo                 run the embedded demo scenario\n"
    "  help [COMMAND]       this text, or a command's help\n"
    "\n"
    "Options:\n"
    "  --base DIR   the ledger's base directory (default: $SHMLEDGER_BASE)\n"
    "  -h, --help   this help; 'shmledger COMMAND --help' for a command\n"
    "  --version    print the library version\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  operation-level failure (no such operation, wrong state, no "
    "ledger)\n"
    "  2  usage error (unknown command or option, malformed id)\n"
    "  3  segment problem (corrupt, foreign owner or build, other version)\n"
    "  run exits with its command's status (128+N when killed by signal N).\n";

struct subcmd {
    const char *name;
    int (*fn)(struct cli *, int, char **);
};

static const struct subcmd subcmds[] = {
    {"list", cmd_list},     {"show", cmd_show},   {"create", cmd_create},
    {"run", cmd_run},       {"abort", cmd_abort}, {"complete", cmd_complete},
    {"log", cmd_log},       {"check", cmd_check}, {"gc", cmd_gc},
    {"export", cmd_export}, {"demo", cmd_demo},   {"info", cmd_info},
};

static const struct subcmd *
find_subcmd(const char *name)
{
    for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
        if (strcmp(subcmds[i].name, name) == 0)
            return &subcmds[i];
    return NULL;
}

int
main(int argc, char **argv)
{
    static char self[PATH_MAX];
    struct cli c = {.prog = "shmledger", .base = getenv("SHMLEDGER_BASE")};
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        c.self = self;
    } else {
        c.self = argv[0];
    }
    /* Unbuffered-enough: tests and pipes see lines in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    enum { OPT_VERSION = 0x200 };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_BASE:
            c.base = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EX_OK;
        case OPT_VERSION:
            printf("shmledger %s\n", shl_version_string());
            return EX_OK;
        case ':':
            return cli_usage_err(NULL, "option '%s' needs an argument",
                                 argv[optind - 1]);
        default:
            return cli_usage_err(NULL, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return EX_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        if (optind + 1 >= argc || strcmp(argv[optind + 1], "--help") == 0 ||
            strcmp(argv[optind + 1], "-h") == 0) {
            fputs(usage_text, stdout);
            return EX_OK;
        }
        const struct subcmd *s = find_subcmd(argv[optind + 1]);
        if (!s)
            return cli_usage_err(NULL, "unknown command '%s'",
                                 argv[optind + 1]);
        char *hargv[] = {(char *)s->name, "--help", NULL};
        optind = 0;
        return s->fn(&c, 2, hargv);
    }
    const struct subcmd *s = find_subcmd(name);
    if (!s)
        return cli_usage_err(NULL, "unknown command '%s'", name);
    int sargc = argc - optind;
    char **sargv = argv + optind;
    optind = 0; /* full getopt reset (glibc) for the subcommand */
    return s->fn(&c, sargc, sargv);
}
