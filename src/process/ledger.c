/*
 * ledger.c: ledgers (participant slots) and the locked mutations on the
 * participant and operation tables.
 */
#include "objects.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lops.h"
#include "shm/index.h"
#include "files/events.h"
#include "internal.h"
#include "shm/lock.h"
#include "crash/reaper.h"
#include "process/monitor.h"
#include "process/ops.h"
#include "files/snapshotter.h"
#include "session/spawn.h"
#include "shm/table.h"

void
shl_ledger_opts_init(shl_ledger_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->max_backups = 20;
    o->heartbeat_interval_ms = 5000;
    o->stale_threshold_ms = 15000;
    o->max_participants = 1024;
    o->max_operations = 1024;
    o->max_frames = 65536;
    o->max_resources = 16384;
    o->mode = 0600;
    o->timeout_ms = 2000;
    o->snapshotter = true;
    o->snapshot_period_ms = 100;
    o->max_events = 16384;
    o->durable = true;
}

/* mkdir -p with mode 0700 for created components. */
static int
mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (shl__strlcpy_checked(buf, sizeof(buf), path) != 0)
        return -ENAMETOOLONG;
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    return 0;
}

/* Claim and publish this ledger's participant slot (structure lock held by
 * the caller? no: takes it). */
static int
take_participant_slot(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    uint32_t hint = 0;
    uint32_t cap = s->hdr->cap[SHL__T_PART];
    for (uint32_t attempt = 0; attempt < cap; attempt++) {
        uint32_t idx;
        rc = shl__rec_find_free(s, SHL__T_PART, hint, &idx);
        if (rc)
            break;
        /* The liveness byte must be free: a slot whose lock is still held
         * belongs to a live process (never reclaim the living). */
        if (shl__ofd_trylock(s->fd, SHL__LOCK_PART_BASE + idx) != 0) {
            hint = idx + 1;
            rc = SHL_SET_ERR(SHL_EFULL, "no free participant slot");
            continue;
        }
        struct shl__part *p = shl__part_at(s, idx);
        uint64_t gen;
        shl__intent_set(s, SHL__I_ALLOC, SHL__T_PART, idx,
                        atomic_load(&p->h.gen) + 1);
        SHL_CRASH_POINT("alloc.intent");
        rc = shl__rec_claim_at(s, SHL__T_PART, idx, idx, 0, &gen);
        if (rc) {
            shl__intent_clear(s);
            shl__ofd_unlock(s->fd, SHL__LOCK_PART_BASE + idx);
            hint = idx + 1;
            continue;
        }
        SHL_CRASH_POINT("alloc.claimed");
        atomic_store_explicit(&p->h.owner_gen, gen, memory_order_relaxed);
        p->pid = l->pid;
        p->recorded_pid = l->recorded_pid;
        p->start_time = shl__proc_start_time(l->pid);
        atomic_store_explicit(&p->fenced, 0, memory_order_relaxed);
        memset(p->id, 0, sizeof(p->id));
        memcpy(p->id, l->id, strlen(l->id));
        atomic_store_explicit(&p->heartbeat_ns, shl__mono_ns(),
                              memory_order_relaxed);
        SHL_CRASH_POINT("alloc.filled");
        shl__rec_publish(&p->h);
        SHL_CRASH_POINT("alloc.published");
        s->hdr->used[SHL__T_PART]++;
        shl__intent_clear(s);
        l->slot = idx;
        l->slot_gen = gen;
        rc = 0;
        break;
    }
    shl__unlock(s);
    return rc;
}

static void
release_participant_slot(shl_ledger *l)
{
    struct shl__seg *s = &l->seg;
    if (l->slot == SHL__NO_SLOT)
        return;
    struct shl__part *p = shl__part_at(s, l->slot);
    if (shl__lock(s, l->opts.timeout_ms) == 0) {
        if (atomic_load(&p->h.gen) == l->slot_gen &&
            atomic_load(&p->h.state) == SHL__R_ALLOCATED) {
            shl__intent_set(s, SHL__I_FREE, SHL__T_PART, l->slot,
                            l->slot_gen);
            SHL_CRASH_POINT("free.intent");
            shl__rec_release(s, SHL__T_PART, &p->h);
            SHL_CRASH_POINT("free.released");
            s->hdr->used[SHL__T_PART]--;
            shl__intent_clear(s);
        }
        shl__unlock(s);
    }
    /* Drop the liveness lock last: until here we are provably alive. */
    shl__ofd_unlock(s->fd, SHL__LOCK_PART_BASE + l->slot);
    l->slot = SHL__NO_SLOT;
}

int
shl_ledger_open(shl_ledger **out, const char *base_path,
                const char *participant_id, const shl_ledger_opts *opts)
{
    shl__clear_err();
    if (!out || !base_path || !participant_id)
        return SHL_SET_ERR(-EINVAL, "shl_ledger_open: NULL argument");
    if (!*base_path)
        return SHL_SET_ERR(-EINVAL, "shl_ledger_open: empty base path");
    int rc = shl_validate_participant_id(participant_id);
    if (rc)
        return rc;
    shl_ledger_opts o;
    if (opts)
        o = *opts;
    else
        shl_ledger_opts_init(&o);
    if (o.heartbeat_interval_ms <= 0 || o.stale_threshold_ms <= 0 ||
        o.timeout_ms < 0 || o.max_participants == 0 ||
        o.max_participants > SHL__MAX_PARTICIPANTS || o.max_operations == 0 ||
        o.max_operations > (1u << 20) || o.max_frames == 0 ||
        o.max_frames > (1u << 24) || o.max_resources == 0 ||
        o.max_resources > (1u << 24) || o.participant_pid < 0 ||
        (o.mode & ~0777u) != 0 || (o.mode & 0002u) != 0 ||
        o.snapshot_period_ms <= 0 || o.max_events > (1u << 20) ||
        o.ring_full_wait_us < 0 || o.ring_full_wait_us > 1000000)
        return SHL_SET_ERR(-EINVAL, "shl_ledger_open: option out of range");
    if (o.mode == 0)
        o.mode = 0600;

    shl_ledger *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->slot = SHL__NO_SLOT;
    l->seg.fd = -1;
    l->mon_epfd = l->mon_wake_efd = l->mon_epoch_efd = -1;
    l->opts = o;
    pthread_mutex_init(&l->mu, NULL);
    if (shl__strlcpy_checked(l->base_path, sizeof(l->base_path),
                             base_path) != 0) {
        rc = SHL_SET_ERR(-ENAMETOOLONG, "base path too long");
        goto fail;
    }
    memcpy(l->id, participant_id, strlen(participant_id) + 1);
    l->pid = (int32_t)getpid();
    l->recorded_pid = o.participant_pid ? o.participant_pid : l->pid;

    rc = mkdirs(base_path);
    if (rc) {
        rc = SHL_SET_ERR(rc, "cannot create base path %s: %s", base_path,
                         strerror(-rc));
        goto fail;
    }
    char backup[PATH_MAX];
    if (snprintf(backup, sizeof(backup), "%s/backup", base_path) >=
        (int)sizeof(backup)) {
        rc = SHL_SET_ERR(-ENAMETOOLONG, "base path too long");
        goto fail;
    }
    rc = mkdirs(backup);
    if (rc) {
        rc = SHL_SET_ERR(rc, "cannot create %s: %s", backup, strerror(-rc));
        goto fail;
    }
    char name[96];
    rc = shl__seg_name(base_path, name, sizeof(name));
    if (rc < 0)
        goto fail;
    struct shl__seg_params p = {
        .cap = {o.max_participants, o.max_operations, o.max_frames,
                o.max_resources},
        .mode = o.mode,
        .heartbeat_interval_ms = o.heartbeat_interval_ms,
        .stale_threshold_ms = o.stale_threshold_ms,
        .timeout_ms = o.timeout_ms,
        .ev_cap = o.max_events,
    };
    rc = shl__seg_open(&l->seg, name, true, &p);
    if (rc)
        goto fail;
    rc = take_participant_slot(l);
    if (rc)
        goto fail;
    l->reader.seg = &l->seg;
    l->reader.owns_seg = false;
    l->reader.own_slot = l->slot;
    uint32_t per = l->seg.hdr->cap[SHL__T_FRAME] /
                   (l->seg.hdr->cap[SHL__T_PART] ? l->seg.hdr->cap[SHL__T_PART]
                                                 : 1);
    atomic_store(&l->frame_hint, l->slot * per);
    /* leftovers of processes that died while nobody watched */
    (void)shl__reap(l);
    shl__snapshotter_start(l);
    *out = l;
    return 0;

fail:
    if (l->seg.fd >= 0)
        shl__seg_close(&l->seg);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return rc;
}

void
shl_ledger_close(shl_ledger *l)
{
    shl__clear_err();
    if (!l)
        return;
    /* End every session still open. */
    for (;;) {
        pthread_mutex_lock(&l->mu);
        shl_op *op = NULL;
        for (struct shl__lop *lop = l->lops; lop && !op; lop = lop->next)
            op = lop->sessions;
        pthread_mutex_unlock(&l->mu);
        if (!op)
            break;
        shl__session_end(op, true);
    }
    /* workers of left sessions finish (and free them) before the monitor
     * and the mapping go */
    shl__pool_stop(l);
    shl__monitor_stop(l);
    shl__snapshotter_stop(l);
    shl__events_close(l); /* names the rings by our slot: before it goes */
    release_participant_slot(l);
    shl__lops_fini(l);
    shl__seg_close(&l->seg);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

const char *
shl_ledger_participant_id(const shl_ledger *l)
{
    return l ? l->id : NULL;
}

const char *
shl_ledger_base_path(const shl_ledger *l)
{
    return l ? l->base_path : NULL;
}

shl_reader *
shl_ledger_reader(shl_ledger *l)
{
    return l ? &l->reader : NULL;
}
