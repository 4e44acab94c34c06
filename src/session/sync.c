/*
 * sync.c: read-your-writes files. The files are a view the snapshotter
 * writes asynchronously (files/snapshotter.c); the original wrote them in
 * the caller before returning. shl_op_flush is the barrier on demand;
 * with the ledger option sync_files, every changing API function ends
 * with shl__op_sync, which is the same barrier.
 */
#include "session/sync.h"

#include <errno.h>
#include <stdio.h>

#include "files/opfiles.h"
#include "files/render.h"
#include "files/snapshotter.h"
#include "internal.h"

int
shl_op_flush(shl_op *op, int64_t timeout_ms)
{
    shl__clear_err();
    if (!op)
        return SHL_SET_ERR(-EINVAL, "NULL session");
    if (timeout_ms < 0)
        return SHL_SET_ERR(-EINVAL, "timeout_ms < 0");
    return shl__snapshotter_sync(op->lop->l, op->lop->id, timeout_ms);
}

void
shl__op_sync(shl_op *op)
{
    shl_ledger *l = op->lop->l;
    if (!l->opts.sync_files)
        return;
    int rc = shl__snapshotter_sync(l, op->lop->id, l->opts.timeout_ms);
    if (rc && rc != -ETIMEDOUT)
        return; /* a write error was reported where it happened */
    if (rc)
        shl__file_error(l, "sync", op->lop->id, rc);
}
