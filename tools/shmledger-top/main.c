/*
 * main.c: `shmledger-top`, the live viewer of a shared-memory ledger.
 *
 * Modelled on Aeron's aeron_stat.c: getopt options, a refresh period, a
 * one-shot mode, a SIGINT flag, and only the public read-only API
 * (shl_reader_*): the viewer never joins, never locks, never writes the
 * segment. The single exception is the explicit user action `a` (abort,
 * after a y/n confirmation), which opens a ledger, joins the operation,
 * sets its abort flag and leaves.
 *
 * It survives a missing segment, one being created and a garbled one: the
 * header says what is wrong and the viewer keeps retrying every period. A
 * segment that is removed and created again (same name, new inode under
 * /dev/shm) is noticed and reopened.
 *
 * This file: the options, --help, the one-shot text mode and the exit
 * statuses; see top.h for the other modules.
 */
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include "top.h"

static const char usage_text[] =
    "Usage: shmledger-top [--base DIR] [OPTIONS]\n"
    "\n"
    "Live, read-only view of the ledger of DIR (default: $SHMLEDGER_BASE):\n"
    "segment capacities and counters, the operations (state, age, frames,\n"
    "participants, abort flag) and the selected operation's call frames\n"
    "(participant, pid, call id, description, age, heartbeat age) and its\n"
    "recent events (the last lines of its operation log). Frames\n"
    "whose heartbeat is older than the stale threshold are highlighted\n"
    "(STALE); frames of a participant proven dead are marked DEAD.\n"
    "The viewer never takes a lock and never writes the segment, except when\n"
    "you abort an operation with 'a' (confirmed with y).\n"
    "\n"
    "Options:\n"
    "  --base DIR        the ledger's base directory\n"
    "  -i, --interval MS refresh period (default 1000)\n"
    "  -s, --stale MS    stale threshold for heartbeat ages (default 15000)\n"
    "  -o, --op OP       select operation OP at start\n"
    "  -1, --once        print one screen as plain text and exit\n"
    "  -j, --json        print the segment facts and every operation as JSON\n"
    "                    and exit\n"
    "  -h, --help        this help\n"
    "\n"
    "Keys: Up/Down or k/j select an operation, Enter toggles frames and\n"
    "details (participants, failure, resources), a aborts the selected\n"
    "operation (asks y/n), / sets a filter on id and description (empty\n"
    "clears), q quits.\n"
    "\n"
    "Exit status: 0 ok, 1 no ledger at DIR (--once/--json), 2 usage, 3\n"
    "segment problem (--once/--json).\n";

/* ------------------------------------------------------------------------ */
/* Modes                                                                     */
/* ------------------------------------------------------------------------ */

static int
run_once(struct model *m)
{
    int rc = model_refresh(m);
    struct out o = {.curses = false};
    render(m, &o, "");
    if (rc)
        fprintf(stderr, "shmledger-top: %s\n", m->err);
    return shl_tool_exit_for(rc);
}
int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    enum { OPT_BASE = 0x100 };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"interval", required_argument, NULL, 'i'},
        {"stale", required_argument, NULL, 's'},
        {"op", required_argument, NULL, 'o'},
        {"once", no_argument, NULL, '1'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct model m = {.base = getenv("SHMLEDGER_BASE"), .stale_ms = 15000};
    int64_t interval = 1000;
    bool once = false, json = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":i:s:o:1jh", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_BASE:
            m.base = optarg;
            break;
        case 'i':
        case 's': {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v <= 0) {
                fprintf(stderr,
                        "shmledger-top: bad duration '%s' (milliseconds > "
                        "0)\n",
                        optarg);
                return EX_USAGE;
            }
            if (opt == 'i')
                interval = v;
            else
                m.stale_ms = v;
            break;
        }
        case 'o':
            snprintf(m.sel_id, sizeof(m.sel_id), "%s", optarg);
            break;
        case '1':
            once = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return EX_OK;
        case ':':
            fprintf(stderr,
                    "shmledger-top: option '%s' needs an argument (try "
                    "--help)\n",
                    argv[optind - 1]);
            return EX_USAGE;
        default:
            fprintf(stderr, "shmledger-top: unknown option '%s' (try --help)\n",
                    argv[optind - 1]);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "shmledger-top: unexpected argument '%s' (try --help)\n",
                argv[optind]);
        return EX_USAGE;
    }
    if (!m.base || !*m.base) {
        fprintf(stderr, "shmledger-top: no base path: give --base DIR or set "
                        "SHMLEDGER_BASE\n");
        return EX_USAGE;
    }
    int ex;
    if (json)
        ex = run_json(&m);
    else if (once)
        ex = run_once(&m);
    else
        ex = run_interactive(&m, interval);
    model_drop_data(&m);
    model_close(&m);
    return ex;
}
