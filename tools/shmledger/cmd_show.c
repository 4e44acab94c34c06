/*
 * cmd_show.c: `shmledger show OP`, one operation as JSON.
 *
 * A live operation is read from the segment (lock-free snapshot); one that
 * has left the segment is read back from its JSON file ({base}/{OP}
 * .operation.json, else the archive backup/{OP}/operation.json), so `show`
 * also answers for finished operations.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char show_help[] =
    "Usage: shmledger [--base DIR] show [--compact] OP\n"
    "\n"
    "Print operation OP as JSON, in the original's operation-file schema\n"
    "(operationId, initiatorId, startTime, operationState, aborted,\n"
    "lastHeartbeat, callFrames, tempResources, detectionTimestamp,\n"
    "removalTimestamp) plus description, participants and failure.\n"
    "A live operation comes from the segment; one that is no longer there\n"
    "from DIR/OP.operation.json or DIR/backup/OP/operation.json (a note on\n"
    "stderr says so).\n"
    "\n"
    "  -c, --compact   one line instead of indented JSON\n"
    "\n"
    "Exit status: 0 ok, 1 no such operation (or no ledger), 2 usage, 3\n"
    "segment problem.\n";

/* Read a whole file; NULL if it cannot be read. */
static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

int
cli_snapshot_from_files(const char *base, const char *op_id, shl_snapshot **out,
                        char *where, size_t cap)
{
    char path[2][4096];
    snprintf(path[0], sizeof(path[0]), "%s/%s.operation.json", base, op_id);
    snprintf(path[1], sizeof(path[1]), "%s/backup/%s/operation.json", base,
             op_id);
    int rc = SHL_ENOTFOUND;
    for (int i = 0; i < 2; i++) {
        char *text = slurp(path[i]);
        if (!text)
            continue;
        rc = shl_snapshot_from_json(text, out);
        free(text);
        if (rc == 0) {
            snprintf(where, cap, "%s", path[i]);
            return 0;
        }
        cli_fail("show", rc, "cannot parse %s", path[i]);
    }
    return rc;
}

int
cmd_show(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"help", no_argument, NULL, 'h'},
        {"compact", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    unsigned flags = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":hc", opts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == 'h')
            return cli_help(show_help);
        if (opt == 'c') {
            flags |= SHL_JSON_COMPACT;
            continue;
        }
        return cli_bad_opt("show", opt, argv);
    }
    if (optind + 1 != argc)
        return cli_usage_err("show", optind >= argc ? "missing operation id"
                                                    : "too many arguments");
    const char *op_id = argv[optind];
    int ex = cli_check_op_id("show", op_id);
    if (ex)
        return ex;
    const char *base = cli_base(c, "show");
    if (!base)
        return EX_USAGE;
    shl_reader *r = NULL;
    shl_snapshot *s = NULL;
    char where[4096] = "";
    int rc = shl_reader_open(&r, base);
    if (rc == 0) {
        rc = shl_tool_snapshot(r, op_id, &s);
        shl_reader_close(r);
    }
    if (rc == SHL_ENOTFOUND || rc == -ENOENT) {
        int frc =
            cli_snapshot_from_files(base, op_id, &s, where, sizeof(where));
        if (frc == 0)
            rc = 0;
        else if (frc != SHL_ENOTFOUND)
            return shl_tool_exit_for(frc);
    }
    if (rc == SHL_ENOTFOUND || rc == -ENOENT) {
        cli_err("show",
                "no operation %s in the ledger of %s (nor a JSON "
                "file of it)",
                op_id, base);
        return EX_FAIL;
    }
    if (rc)
        return cli_fail("show", rc, "cannot read operation %s", op_id);
    char *json = NULL;
    rc = shl_snapshot_to_json(s, flags, &json);
    shl_snapshot_free(s);
    if (rc)
        return cli_fail("show", rc, "cannot serialise operation %s", op_id);
    if (where[0])
        cli_err("show", "%s is not in the segment; read from %s", op_id, where);
    fputs(json, stdout);
    if (!*json || json[strlen(json) - 1] != '\n')
        fputc('\n', stdout);
    free(json);
    return EX_OK;
}
