/*
 * temp.c: registering temp resources (registerTempResource): paths are
 * normalised lexically, stored in a resource record of the operation, and
 * deleted by crash/resources.c when the operation fails or the
 * participant dies.
 */
#include <errno.h>
#include <string.h>

#include "crash/resources.h"
#include "files/log.h"
#include "internal.h"
#include "session/opstate.h"
#include "session/sync.h"
#include "session/temp.h"
#include "shm/lock.h"
#include "shm/records.h"
#include "shm/table.h"

/* Normalise an absolute path lexically into out. */
static int
normalise_path(const char *in, size_t len, char *out, size_t cap)
{
    if (len == 0)
        return SHL_SET_ERR(-EINVAL, "empty temp resource path");
    if (memchr(in, 0, len))
        return SHL_SET_ERR(-EINVAL, "temp resource path contains NUL");
    if (in[0] != '/')
        return SHL_SET_ERR(-EINVAL, "temp resource path must be absolute: %.*s",
                           (int)(len > 200 ? 200 : len), in);
    size_t o = 0;
    size_t i = 0;
    out[o++] = '/';
    while (i < len) {
        while (i < len && in[i] == '/')
            i++;
        size_t st = i;
        while (i < len && in[i] != '/')
            i++;
        size_t n = i - st;
        if (n == 0 || (n == 1 && in[st] == '.'))
            continue;
        if (n == 2 && in[st] == '.' && in[st + 1] == '.') {
            /* drop the last component and its leading '/' */
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            continue;
        }
        if (o > 1) {
            if (o + 1 >= cap)
                return SHL_SET_ERR(-ENAMETOOLONG, "temp resource path too "
                                                  "long");
            out[o++] = '/';
        }
        if (o + n >= cap)
            return SHL_SET_ERR(-ENAMETOOLONG, "temp resource path too long");
        memcpy(out + o, in + st, n);
        o += n;
    }
    if (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = 0;
    return 0;
}

static int register_impl(shl_op *op, const char *path, size_t len,
                         struct shl_call *call);

int
shl_op_register_temp_resource_n(shl_op *op, const char *path, size_t len)
{
    shl__clear_err();
    if (!op || !path)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    return register_impl(op, path, len, NULL);
}

int
shl_call_register_temp_resource(shl_call *call, const char *path)
{
    shl__clear_err();
    if (!call || !path)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    if (atomic_load(&call->done) != 0)
        return SHL_SET_ERR(SHL_ESTATE, "call %s is not pending", call->id);
    return register_impl(call->op, path, strlen(path), call);
}

static int
register_impl(shl_op *op, const char *path, size_t len, struct shl_call *call)
{
    char norm[SHL_PATH_MAX + 1];
    int rc = normalise_path(path, len, norm, sizeof(norm));
    if (rc)
        return rc;
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    /* "/", the base directory and its ancestors are never temp resources:
     * crash cleanup deletes directories recursively */
    rc = shl__temp_path_check(l, norm);
    if (rc)
        return rc;
    struct shl__seg *s = &l->seg;
    rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__lop_record(lop);
    if (!r) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    }
    uint32_t st = atomic_load(&r->op_state);
    if (st != SHL_OP_RUNNING) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTATE, "operation %s is %s", lop->id,
                           shl_op_state_name((shl_op_state)st));
    }
    uint32_t idx;
    rc = shl__rec_find_free(s, SHL__T_RES, 0, &idx);
    if (rc) {
        shl__unlock(s);
        return rc;
    }
    struct shl__res *x = shl__res_at(s, idx);
    uint64_t gen;
    shl__intent_set(s, SHL__I_ALLOC, SHL__T_RES, idx,
                    atomic_load(&x->h.gen) + 1);
    SHL_CRASH_POINT("alloc.intent");
    rc = shl__rec_claim_at(s, SHL__T_RES, idx, l->slot, l->slot_gen, &gen);
    if (rc) {
        shl__intent_clear(s);
        shl__unlock(s);
        return rc;
    }
    SHL_CRASH_POINT("alloc.claimed");
    x->op_idx = lop->op_idx;
    x->op_gen = lop->op_gen;
    x->part_slot = l->slot;
    x->part_gen = l->slot_gen;
    x->registered_at_us = shl__wall_us();
    x->owner_pid = l->recorded_pid;
    x->frame_ref = call ? call->frame_idx + 1 : 0;
    x->frame_gen = call ? call->frame_gen : 0;
    memset(x->path, 0, sizeof(x->path));
    memcpy(x->path, norm, strlen(norm));
    SHL_CRASH_POINT("alloc.filled");
    shl__rec_publish(&x->h);
    SHL_CRASH_POINT("alloc.published");
    s->hdr->used[SHL__T_RES]++;
    shl__intent_clear(s);
    shl__op_touch(r);
    shl__unlock(s);
    shl__optrail(l, lop->id, "TEMP_RESOURCE_REGISTERED owner=%d path=%s",
                 (int)l->recorded_pid, norm);
    shl__op_sync(op);
    return 0;
}

int
shl_op_register_temp_resource(shl_op *op, const char *path)
{
    shl__clear_err();
    if (!path)
        return SHL_SET_ERR(-EINVAL, "NULL path");
    return shl_op_register_temp_resource_n(op, path, strlen(path));
}

int
shl_op_unregister_temp_resource(shl_op *op, const char *path)
{
    shl__clear_err();
    if (!op || !path)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    char norm[SHL_PATH_MAX + 1];
    int rc = normalise_path(path, strlen(path), norm, sizeof(norm));
    if (rc)
        return rc;
    struct shl__lop *lop = op->lop;
    shl_ledger *l = lop->l;
    struct shl__seg *s = &l->seg;
    rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__op *r = shl__lop_record(lop);
    if (!r) {
        shl__unlock(s);
        return SHL_SET_ERR(SHL_ESTALE, "operation %s is gone", lop->id);
    }
    int removed = 0;
    uint32_t hw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__res *x = shl__res_at(s, i);
        if (atomic_load(&x->h.state) != SHL__R_ALLOCATED ||
            x->op_idx != lop->op_idx || x->op_gen != lop->op_gen ||
            strncmp(x->path, norm, sizeof(x->path)) != 0)
            continue;
        shl__intent_set(s, SHL__I_FREE, SHL__T_RES, i, atomic_load(&x->h.gen));
        SHL_CRASH_POINT("free.intent");
        shl__rec_release(s, SHL__T_RES, &x->h);
        SHL_CRASH_POINT("free.released");
        s->hdr->used[SHL__T_RES]--;
        shl__intent_clear(s);
        removed++;
    }
    if (removed)
        shl__op_touch(r);
    shl__unlock(s);
    if (removed)
        shl__optrail(l, lop->id, "TEMP_RESOURCE_REMOVED count=%d path=%s",
                     removed, norm);
    shl__op_sync(op);
    return removed;
}

/* Fuzz entry seam (tests/fuzz/fuzz_ids.c): normalise_path itself. */
int
shl__temp_normalise_path(const char *in, size_t len, char *out, size_t cap)
{
    return normalise_path(in, len, out, cap);
}
