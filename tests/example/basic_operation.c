/* basic_operation.c: create an operation, run one call in it, complete it. */
#include <shmledger/shmledger.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Runs when the call fails: release what the work had acquired. */
static void
on_cleanup(shl_call *call, void *user)
{
    (void)user;
    printf("Cleaning up after %s\n", shl_call_id(call));
}

/* The work the call stands for: NULL on success, else an error text. */
static const char *
do_some_work(void)
{
    return NULL;
}

/* Print a failed library call; pass the return code through. */
static int
check(int rc, const char *what)
{
    if (rc < 0)
        fprintf(stderr, "%s: %s (%s)\n", what, shl_strerror(rc), shl_errmsg());
    return rc;
}

int
main(int argc, char **argv)
{
    char tmp[] = "/tmp/shmledger-example-XXXXXX";
    const char *base = argc > 1 ? argv[1] : mkdtemp(tmp);
    if (base == NULL) {
        perror("mkdtemp");
        return 1;
    }

    /* Ledger of `base` with participant id "main", default options. */
    shl_ledger *ledger = NULL;
    if (check(shl_ledger_open(&ledger, base, "main", NULL), "open") < 0)
        return 1;

    shl_op *op = NULL;
    shl_call *call = NULL;
    shl_call_opts opts;
    shl_call_opts_init(&opts); /* no description, fail_on_crash = true */
    opts.callbacks.on_cleanup = on_cleanup;

    /* Create the operation (we are its initiator) and start a call. */
    int rc = check(shl_op_create(ledger, "basic example", NULL, &op),
                   "create operation");
    if (rc == 0)
        rc = check(shl_call_start(op, &opts, &call), "start call");
    if (rc == 0) {
        printf("Operation %s, call %s\n", shl_op_id(op), shl_call_id(call));
        const char *error = do_some_work();
        if (error == NULL) {
            rc = check(shl_call_end(call, NULL), "end call");
        } else {
            /* Removes the frame, runs on_cleanup, fails the operation. */
            check(shl_call_fail(call, error), "fail call");
            fprintf(stderr, "work failed: %s\n", error);
            rc = -1;
        }
    }
    /* Complete (initiator only): frames and resources are released and the
     * operation is gone. On error, closing the ledger leaves it instead. */
    if (rc == 0)
        rc = check(shl_op_complete(op), "complete operation");

    shl_ledger_close(ledger);
    if (argc <= 1) { /* remove what this program created: its segment (it
                      * refuses while anyone uses it) and directories */
        if (check(shl_segment_unlink(base), "unlink segment") < 0)
            rc = -1;
        char backup[sizeof(tmp) + 8];
        snprintf(backup, sizeof(backup), "%s/backup", base);
        rmdir(backup);
        rmdir(base);
    }
    printf("%s\n", rc == 0 ? "done" : "failed");
    return rc == 0 ? 0 : 1;
}
