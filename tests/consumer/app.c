/* app.c: an outside program built against an installed libshmledger
 * (tools/dev/consumer-test.sh): open a ledger in the directory argv[1],
 * create an operation, start and end a call, complete the operation, close
 * the ledger and remove its segment. Prints "<how> ok" on success. */
#include <shmledger/shmledger.h>

#include <stdio.h>
#include <string.h>

static int
check(int rc, const char *what)
{
    if (rc < 0)
        fprintf(stderr, "app: %s: %s (%s)\n", what, shl_strerror(rc),
                shl_errmsg());
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: app BASE-DIR LABEL\n");
        return 2;
    }
    const char *base = argv[1];

    shl_ledger *ledger = NULL;
    if (check(shl_ledger_open(&ledger, base, "consumer", NULL), "open") < 0)
        return 1;

    shl_op *op = NULL;
    shl_call *call = NULL;
    shl_call_opts opts;
    shl_call_opts_init(&opts);
    opts.description = "consumer call";

    int rc = check(shl_op_create(ledger, "consumer test", NULL, &op),
                   "create operation");
    if (rc == 0)
        rc = check(shl_call_start(op, &opts, &call), "start call");
    if (rc == 0)
        rc = check(shl_call_end(call, NULL), "end call");
    if (rc == 0)
        rc = check(shl_op_complete(op), "complete operation");
    shl_ledger_close(ledger);
    if (check(shl_segment_unlink(base), "unlink segment") < 0)
        rc = -1;

    if (rc != 0)
        return 1;
    printf("%s ok (libshmledger %s)\n", argv[2], shl_version_string());
    return 0;
}
