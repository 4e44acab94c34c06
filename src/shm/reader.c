/*
 * reader.c: the read-only API (segment info, participants, operation
 * list, snapshots); the invariant checker is in check.c. Never takes a
 * lock, never writes the segment.
 *
 * Every record is copied under its seqlock and re-validated; every index,
 * count and string read from the segment is bounded, so a garbled segment
 * yields errors or violations, never a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shm/reader.h"

#include "internal.h"
#include "objects.h"
#include "shm/index.h"
#include "shm/segment.h"
#include "shm/table.h"

#define COPY_TRIES 1000

int
shl_reader_open(shl_reader **out, const char *base_path)
{
    shl__clear_err();
    if (!out || !base_path)
        return SHL_SET_ERR(-EINVAL, "shl_reader_open: NULL argument");
    char name[96];
    int rc = shl__seg_name(base_path, name, sizeof(name));
    if (rc < 0)
        return rc;
    shl_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    struct shl__seg_params p = {.timeout_ms = 500};
    rc = shl__seg_open(&r->own, name, false, &p);
    if (rc) {
        free(r);
        return rc;
    }
    r->seg = &r->own;
    r->owns_seg = true;
    r->own_slot = SHL__NO_SLOT;
    *out = r;
    return 0;
}

void
shl_reader_close(shl_reader *r)
{
    if (!r || !r->owns_seg)
        return;
    shl__seg_close(&r->own);
    free(r);
}

static uint32_t
count_allocated(struct shl__seg *s, int t)
{
    uint32_t n = 0, hw = shl__table_hwm(s, t);
    for (uint32_t i = 0; i < hw; i++) {
        struct shl__rec *r = shl__rec_at(s, t, i);
        if (atomic_load_explicit(&r->state, memory_order_relaxed) ==
            SHL__R_ALLOCATED)
            n++;
    }
    return n;
}

static void fill_participant(shl_reader *r, uint32_t slot,
                             shl_participant_info *pi, int64_t now);
#define part_alive shl__reader_part_alive

/* Who holds the snapshotter role: the lock says whether anyone does (a
 * lock held through our own descriptor does not show: then the hint names
 * our own slot), the hint in the header says who. */
static void
snapshotter_holder(shl_reader *r, shl_segment_info *out)
{
    struct shl__seg *s = r->seg;
    uint64_t hint = atomic_load(&s->hdr->snap_holder);
    uint32_t slot = hint ? (uint32_t)((hint - 1) & 0xffffffffu) : UINT32_MAX;
    uint32_t gen = hint ? (uint32_t)((hint - 1) >> 32) : 0;
    bool own = hint && slot == r->own_slot;
    out->snapshotter_slot = UINT32_MAX;
    out->snapshotter_held =
        own || shl__ofd_is_locked(s->fd, SHL__LOCK_SNAPSHOTTER) == 1;
    if (!out->snapshotter_held || slot >= s->hdr->cap[SHL__T_PART])
        return;
    shl_participant_info pi;
    fill_participant(r, slot, &pi, shl__mono_ns());
    if (!pi.alive || (uint32_t)(pi.generation & 0xffffffffu) != gen)
        return; /* a stale hint: the holder is not known */
    out->snapshotter_slot = slot;
    memcpy(out->snapshotter_id, pi.participant_id,
           sizeof(out->snapshotter_id));
    out->snapshotter_pid = pi.pid;
}

/* Records published into the event rings and not yet in the files: a
 * walk of every ring from its tail to its head (the records are not
 * counted anywhere: a count would be one more word per post, and a
 * producer dying between its two stores would leave it wrong for good).
 * Racy by nature (the drainer moves on meanwhile); bounded by each ring's
 * size, and a record that cannot be one ends its ring's walk. */
static uint64_t
events_pending(const struct shl__hdr *h)
{
    uint64_t n = 0;
    uint64_t rb = h->ev_ring_bytes;
    for (uint32_t i = 0; i < h->ev_nrings && i < SHL__EV_RINGS_MAX; i++) {
        struct shl__evring *r =
            (struct shl__evring *)((char *)h + h->ev_off +
                                   (uint64_t)i * h->ev_ring_stride);
        const char *data = (const char *)(r + 1);
        uint64_t pos = atomic_load_explicit(&r->tail, memory_order_acquire);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (head < pos || head - pos > rb)
            continue;
        while (pos < head) {
            uint64_t off = pos & (rb - 1);
            struct shl__evhdr e;
            memcpy(&e, data + off, sizeof(e));
            if (e.size < 8 || e.size % 8 || off + e.size > rb ||
                e.size > head - pos)
                break;
            n += e.kind != 0;
            pos += e.size;
        }
    }
    return n;
}


int
shl_reader_info(shl_reader *r, shl_segment_info *out)
{
    shl__clear_err();
    if (!r || !out)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    {
        int src = shl__seg_check_size(r->seg);
        if (src)
            return src;
    }
    struct shl__seg *s = r->seg;
    struct shl__hdr *h = s->hdr;
    memset(out, 0, sizeof(*out));
    shl__copy_field(out->shm_name, s->name, sizeof(out->shm_name));
    out->format_major = SHL__VERSION_MAJOR(atomic_load(&h->version));
    out->format_signature = h->format_sig;
    out->owner_uid = h->owner_uid;
    shl__copy_field(out->boot_id, h->boot_id, sizeof(out->boot_id));
    out->created_at_us = h->created_wall_us;
    out->cap_participants = h->cap[SHL__T_PART];
    out->cap_operations = h->cap[SHL__T_OP];
    out->cap_frames = h->cap[SHL__T_FRAME];
    out->cap_resources = h->cap[SHL__T_RES];
    out->used_participants = count_allocated(s, SHL__T_PART);
    out->used_operations = count_allocated(s, SHL__T_OP);
    out->used_frames = count_allocated(s, SHL__T_FRAME);
    out->used_resources = count_allocated(s, SHL__T_RES);
    out->lock_recoveries = atomic_load(&h->lock_recoveries);
    out->crashes_detected = atomic_load(&h->crashes_detected);
    out->epoch = atomic_load(&h->epoch);
    out->cap_events = h->ev_cap;
    out->events_pending = events_pending(h);
    out->events_fallback = atomic_load(&h->ev_fallback);
    out->events_skipped = atomic_load(&h->ev_skipped);
    out->events_dropped = atomic_load(&h->ev_dropped);
    out->file_errors = atomic_load(&h->ev_file_errors);
    out->poisoned = atomic_load(&h->poisoned) != 0;
    snapshotter_holder(r, out);
    return 0;
}

/* Liveness of a participant slot as this reader can prove it. */
bool
shl__reader_part_alive(shl_reader *r, uint32_t slot)
{
    if (slot == r->own_slot)
        return true;
    return shl__ofd_is_locked(r->seg->fd, SHL__LOCK_PART_BASE + slot) == 1;
}

/* A record whose sequence stays odd through COPY_TRIES attempts has a
 * writer in the middle of it. While that writer may still finish (the
 * structure lock has a live holder, or, for a frame, which its owner
 * writes without the lock, the owner is alive), the record is "busy",
 * never "gone": the caller waits, sleeping 20 us at a time, until the
 * deadline its call set (shl__reader_busy_ns after the first busy
 * record), then reports -EAGAIN. A writer that cannot finish (dead: the
 * next locker or reaper closes its sequence) is not waited for: one more
 * copy, then -EAGAIN at once. */

/* After a busy copy of record `h` (a frame when `frame`): true to try
 * again, false when the call's patience is spent. */
static bool
busy_wait(shl_reader *r, struct shl__rec *h, bool frame,
          struct shl__patience *p)
{
    struct shl__seg *s = r->seg;
    uint32_t owner = atomic_load_explicit(&h->owner, memory_order_relaxed);
    return shl__patience_wait(
        p, shl__lock_has_live_holder(s) ||
               (frame && owner < s->hdr->cap[SHL__T_PART] &&
                part_alive(r, owner)));
}

enum copy_res { COPY_GONE = 0, COPY_OK = 1, COPY_BUSY = -1 };

/* Consistent copy of the allocated record `src` of `size` bytes into dst
 * (an operation record through shl__op_copy): COPY_OK, COPY_GONE (not
 * allocated) or COPY_BUSY (patience spent). */
static enum copy_res
copy_rec(shl_reader *r, struct shl__rec *src, void *dst, size_t size,
         bool frame, bool op, struct shl__patience *pt)
{
    for (;;) {
        if (atomic_load_explicit(&src->state, memory_order_acquire) !=
            SHL__R_ALLOCATED)
            return COPY_GONE;
        int rc = op ? shl__op_copy(dst, (const struct shl__op *)src,
                                   COPY_TRIES)
                    : shl__rec_copy(dst, src, size, COPY_TRIES);
        if (rc == 0)
            break;
        if (!busy_wait(r, src, frame, pt))
            return COPY_BUSY;
    }
    return atomic_load(&((struct shl__rec *)dst)->state) == SHL__R_ALLOCATED
               ? COPY_OK
               : COPY_GONE;
}

/* A frame: as copy_rec, and COPY_GONE also when its word says gone. */
static enum copy_res
copy_frame(shl_reader *r, uint32_t i, struct shl__frame *f, uint32_t *fstate,
           struct shl__patience *pt)
{
    enum copy_res cr = copy_rec(r, &shl__frame_at(r->seg, i)->h, f,
                                sizeof(*f), true, false, pt);
    if (cr != COPY_OK)
        return cr;
    uint64_t w = atomic_load(&f->fword);
    uint64_t g = atomic_load(&f->h.gen);
    if (!SHL__FWORD_GEN_OK(w, g) || SHL__FWORD_STATE(w) == SHL__F_GONE)
        return COPY_GONE;
    *fstate = SHL__FWORD_STATE(w);
    return COPY_OK;
}

static enum copy_res
copy_op(shl_reader *r, uint32_t i, struct shl__op *o, struct shl__patience *pt)
{
    return copy_rec(r, &shl__op_at(r->seg, i)->h, o, sizeof(*o), false, true,
                    pt);
}

static enum copy_res
copy_res(shl_reader *r, uint32_t i, struct shl__res *x,
         struct shl__patience *pt)
{
    return copy_rec(r, &shl__res_at(r->seg, i)->h, x, sizeof(*x), false,
                    false, pt);
}

static int
busy_err(const char *what)
{
    return SHL_SET_ERR(-EAGAIN,
                       "%s: a record is in mid-write (its writer preempted "
                       "or dead); try again",
                       what);
}

int
shl_reader_list(shl_reader *r, shl_op_summary **out, size_t *count)
{
    shl__clear_err();
    if (!r || !out || !count)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    {
        int src = shl__seg_check_size(r->seg);
        if (src)
            return src;
    }
    struct shl__seg *s = r->seg;
    uint32_t cap = s->hdr->cap[SHL__T_OP];
    uint32_t hw = shl__table_hwm(s, SHL__T_OP);
    /* per-op frame counts in one pass over the frames */
    uint32_t *frames = calloc(cap, sizeof(uint32_t));
    uint64_t *gens = calloc(cap, sizeof(uint64_t));
    shl_op_summary *rows = calloc(hw ? hw : 1, sizeof(*rows));
    struct shl__op *o = malloc(sizeof(*o));
    struct shl__frame *f = malloc(sizeof(*f));
    int rc = 0;
    if (!frames || !gens || !rows || !o || !f) {
        rc = -ENOMEM;
        goto out;
    }
    size_t n = 0;
    uint32_t *rowidx = calloc(hw ? hw : 1, sizeof(uint32_t));
    if (!rowidx) {
        rc = -ENOMEM;
        goto out;
    }
    struct shl__patience pt = {0};
    for (uint32_t i = 0; i < hw; i++) {
        enum copy_res cr = copy_op(r, i, o, &pt);
        if (cr == COPY_BUSY) {
            free(rowidx);
            rc = busy_err("list");
            goto out;
        }
        if (cr == COPY_GONE)
            continue;
        shl_op_summary *row = &rows[n];
        shl__copy_field(row->operation_id, o->id, sizeof(o->id));
        shl__copy_field(row->initiator_id, o->initiator, sizeof(o->initiator));
        shl__copy_field(row->description, o->description,
                        sizeof(o->description));
        uint32_t st = atomic_load(&o->op_state);
        row->state = st <= SHL_OP_COMPLETED ? (shl_op_state)st : SHL_OP_FAILED;
        row->aborted = atomic_load(&o->aborted) != 0;
        row->start_time_us = o->start_wall_us;
        uint32_t pc = 0;
        for (size_t w = 0; w < SHL__ARRAY_LEN(o->members); w++)
            pc += (uint32_t)__builtin_popcountll(atomic_load(&o->members[w]));
        row->participant_count = pc;
        gens[i] = atomic_load(&o->h.gen);
        rowidx[n] = i;
        n++;
    }
    uint32_t fhw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < fhw; i++) {
        uint32_t fs;
        enum copy_res cr = copy_frame(r, i, f, &fs, &pt);
        if (cr == COPY_BUSY) {
            free(rowidx);
            rc = busy_err("list");
            goto out;
        }
        if (cr == COPY_GONE)
            continue;
        if (f->op_idx < cap && gens[f->op_idx] == f->op_gen)
            frames[f->op_idx]++;
    }
    for (size_t k = 0; k < n; k++)
        rows[k].frame_count = frames[rowidx[k]];
    free(rowidx);
    *out = rows;
    *count = n;
    rows = NULL;
out:
    free(frames);
    free(gens);
    free(rows);
    free(o);
    free(f);
    return rc;
}

void
shl_snapshot_free(shl_snapshot *s)
{
    if (!s)
        return;
    free(s->frames);
    free(s->resources);
    free(s->participants);
    free(s->crashed_call_ids);
    free(s);
}

shl_snapshot *
shl__snapshot_dup(const shl_snapshot *s)
{
    shl_snapshot *d = malloc(sizeof(*d));
    if (!d)
        return NULL;
    *d = *s;
    d->frames = NULL;
    d->resources = NULL;
    d->participants = NULL;
    d->crashed_call_ids = NULL;
    if (s->crashed_call_id_count &&
        !(d->crashed_call_ids = malloc(s->crashed_call_id_count *
                                       sizeof(*s->crashed_call_ids))))
        goto fail;
    if (s->crashed_call_id_count)
        memcpy(d->crashed_call_ids, s->crashed_call_ids,
               s->crashed_call_id_count * sizeof(*s->crashed_call_ids));
    if (s->frame_count &&
        !(d->frames = malloc(s->frame_count * sizeof(*s->frames))))
        goto fail;
    if (s->resource_count &&
        !(d->resources = malloc(s->resource_count * sizeof(*s->resources))))
        goto fail;
    if (s->participant_count &&
        !(d->participants =
              malloc(s->participant_count * sizeof(*s->participants))))
        goto fail;
    if (s->frame_count)
        memcpy(d->frames, s->frames, s->frame_count * sizeof(*s->frames));
    if (s->resource_count)
        memcpy(d->resources, s->resources,
               s->resource_count * sizeof(*s->resources));
    if (s->participant_count)
        memcpy(d->participants, s->participants,
               s->participant_count * sizeof(*s->participants));
    return d;
fail:
    shl_snapshot_free(d);
    return NULL;
}

size_t
shl_call_frame_resources(const shl_snapshot *s, const shl_call_frame *f,
                         const char **paths, size_t cap)
{
    if (!s || !f || !f->call_id[0])
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < s->resource_count; i++)
        if (!strcmp(s->resources[i].call_id, f->call_id)) {
            if (paths && n < cap)
                paths[n] = s->resources[i].path;
            n++;
        }
    return n;
}

bool
shl_snapshot_is_empty(const shl_snapshot *s)
{
    return !s || (s->frame_count == 0 && s->resource_count == 0);
}

static int
grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

static void
fill_participant(shl_reader *r, uint32_t slot, shl_participant_info *pi,
                 int64_t now)
{
    struct shl__seg *s = r->seg;
    struct shl__part p;
    memset(pi, 0, sizeof(*pi));
    pi->slot = slot;
    /* in mid-write: wait for it (bounded), as for the other records; a
     * row left empty is skipped by the callers */
    struct shl__patience pt = {0};
    while (shl__rec_copy(&p, shl__part_at(s, slot), sizeof(p), COPY_TRIES) !=
           0)
        if (!busy_wait(r, &shl__part_at(s, slot)->h, false, &pt))
            return;
    pi->generation = atomic_load(&p.h.gen);
    shl__copy_field(pi->participant_id, p.id, sizeof(p.id));
    pi->pid = p.pid;
    pi->recorded_pid = p.recorded_pid;
    int64_t hb = atomic_load(&p.heartbeat_ns);
    pi->heartbeat_age_ms = hb ? (now - hb) / 1000000 : -1;
    pi->alive = atomic_load(&p.h.state) == SHL__R_ALLOCATED &&
                part_alive(r, slot);
}

int
shl_reader_participants(shl_reader *r, shl_participant_info **out,
                        size_t *count)
{
    shl__clear_err();
    if (!r || !out || !count)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    {
        int src = shl__seg_check_size(r->seg);
        if (src)
            return src;
    }
    *out = NULL;
    *count = 0;
    struct shl__seg *s = r->seg;
    uint32_t hw = shl__table_hwm(s, SHL__T_PART);
    shl_participant_info *rows = NULL;
    size_t n = 0, cap = 0;
    int64_t now = shl__mono_ns();
    for (uint32_t i = 0; i < hw; i++) {
        if (atomic_load_explicit(&shl__part_at(s, i)->h.state,
                                 memory_order_acquire) != SHL__R_ALLOCATED)
            continue;
        if (grow((void **)&rows, &cap, n + 1, sizeof(*rows))) {
            free(rows);
            return -ENOMEM;
        }
        fill_participant(r, i, &rows[n], now);
        if (rows[n].participant_id[0] == 0)
            continue; /* freed or torn meanwhile */
        n++;
    }
    if (n == 0) {
        free(rows);
        rows = NULL;
    }
    *out = rows;
    *count = n;
    return 0;
}

static int
frame_order(const void *a, const void *b)
{
    const shl_call_frame *x = a, *y = b;
    if (x->start_time_us != y->start_time_us)
        return x->start_time_us < y->start_time_us ? -1 : 1;
    return strcmp(x->call_id, y->call_id);
}

static int
snapshot_once(shl_reader *r, const char *operation_id, shl_snapshot **out)
{
    int rc;
    struct shl__seg *s = r->seg;
    uint32_t idx;
    uint64_t gen;
    int lrc = shl__index_lookup(s, operation_id, &idx, &gen);
    if (lrc == -EAGAIN)
        return busy_err(operation_id);
    if (lrc != 0)
        return SHL_SET_ERR(SHL_ENOTFOUND, "no operation %s", operation_id);
    shl_snapshot *snap = calloc(1, sizeof(*snap));
    struct shl__op *o = malloc(sizeof(*o));
    struct shl__frame *f = malloc(sizeof(*f));
    struct shl__res *x = malloc(sizeof(*x));
    size_t fcap = 0, rcap = 0, pcap = 0;
    if (!snap || !o || !f || !x) {
        rc = -ENOMEM;
        goto fail;
    }
    struct shl__patience pt = {0};
    enum copy_res cr = copy_op(r, idx, o, &pt);
    if (cr == COPY_BUSY) {
        rc = busy_err(operation_id);
        goto fail;
    }
    if (cr == COPY_GONE || atomic_load(&o->h.gen) != gen) {
        rc = SHL_SET_ERR(SHL_ENOTFOUND, "operation %s is gone", operation_id);
        goto fail;
    }
    int64_t now = shl__mono_ns();
    shl__copy_field(snap->operation_id, o->id, sizeof(o->id));
    shl__copy_field(snap->initiator_id, o->initiator, sizeof(o->initiator));
    shl__copy_field(snap->description, o->description,
                    sizeof(o->description));
    snap->has_description = o->has_description != 0;
    snap->start_time_us = o->start_wall_us;
    uint32_t st = atomic_load(&o->op_state);
    snap->state = st <= SHL_OP_COMPLETED ? (shl_op_state)st : SHL_OP_FAILED;
    snap->aborted = atomic_load(&o->aborted) != 0;
    snap->last_heartbeat_us =
        shl__mono_to_wall_us(s, atomic_load(&o->last_heartbeat_ns));
    snap->detection_timestamp_us = o->detection_us;
    snap->removal_timestamp_us = o->removal_us;
    snap->change_count = atomic_load(&o->change_count);
    shl__copy_field(snap->failure.operation_id, o->id, sizeof(o->id));
    snap->failure.failed_at_us = o->failed_at_us;
    shl__copy_field(snap->failure.reason, o->reason, sizeof(o->reason));
    {
        /* every stored crashed id in the snapshot, the first ones also in
         * the fixed failure info */
        uint32_t off = 0, k = 0;
        const char *cid;
        size_t ccap = 0;
        while ((cid = shl__op_crashed_next(o, &off, &k)) != NULL) {
            if (grow((void **)&snap->crashed_call_ids, &ccap,
                     snap->crashed_call_id_count + 1,
                     sizeof(*snap->crashed_call_ids))) {
                rc = -ENOMEM;
                goto fail;
            }
            shl__copy_field(snap->crashed_call_ids[snap->crashed_call_id_count++],
                            cid, SHL_CALL_ID_MAX + 1);
            if (snap->failure.crashed_call_count < SHL_CRASHED_IDS_MAX)
                shl__copy_field(
                    snap->failure
                        .crashed_call_ids[snap->failure.crashed_call_count++],
                    cid, SHL_CALL_ID_MAX + 1);
        }
        snap->failure.crashed_call_total =
            o->crashed_total > snap->crashed_call_id_count
                ? o->crashed_total
                : (uint32_t)snap->crashed_call_id_count;
    }

    /* participants: members and frame owners */
    uint32_t pcapn = s->hdr->cap[SHL__T_PART];
    uint8_t *seen = calloc(pcapn, 1);
    if (!seen) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t w = 0; w < SHL__ARRAY_LEN(o->members); w++) {
        uint64_t bits = atomic_load(&o->members[w]);
        while (bits) {
            uint32_t b = (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            uint32_t slot = w * 64 + b;
            if (slot < pcapn)
                seen[slot] = 1;
        }
    }
    uint32_t fhw = shl__table_hwm(s, SHL__T_FRAME);
    for (uint32_t i = 0; i < fhw; i++) {
        uint32_t fs;
        /* pre-filter on the live record (re-checked on the copy): most
         * frames of a big table belong to other operations */
        if (__atomic_load_n(&shl__frame_at(s, i)->op_idx, __ATOMIC_RELAXED) !=
            idx)
            continue;
        cr = copy_frame(r, i, f, &fs, &pt);
        if (cr == COPY_BUSY) {
            free(seen);
            rc = busy_err(operation_id);
            goto fail;
        }
        if (cr == COPY_GONE)
            continue;
        if (f->op_idx != idx || f->op_gen != gen)
            continue;
        if (grow((void **)&snap->frames, &fcap, snap->frame_count + 1,
                 sizeof(shl_call_frame))) {
            free(seen);
            rc = -ENOMEM;
            goto fail;
        }
        shl_call_frame *cf = &snap->frames[snap->frame_count++];
        memset(cf, 0, sizeof(*cf));
        shl__copy_field(cf->participant_id, f->participant_id,
                        sizeof(f->participant_id));
        shl__copy_field(cf->call_id, f->call_id, sizeof(f->call_id));
        cf->pid = f->pid;
        cf->start_time_us = f->start_wall_us;
        cf->state = fs <= SHL_FRAME_CLEANED_UP ? (shl_frame_state)fs
                                               : SHL_FRAME_CRASHED;
        cf->has_description = f->has_description != 0;
        shl__copy_field(cf->description, f->description,
                        sizeof(f->description));
        cf->fail_on_crash = f->fail_on_crash != 0;
        cf->session_id = f->session_id;
        cf->participant_slot = f->part_slot;
        cf->last_heartbeat_us = cf->start_time_us;
        cf->heartbeat_age_ms = -1;
        if (f->part_slot < pcapn) {
            seen[f->part_slot] = 1;
            struct shl__part *p = shl__part_at(s, f->part_slot);
            int64_t hb = atomic_load(&p->heartbeat_ns);
            if (atomic_load(&p->h.gen) == f->part_gen && hb) {
                /* the frame's own lastHeartbeat, as the original's
                 * readers take it: never before the frame started */
                int64_t hb_us = shl__mono_to_wall_us(s, hb);
                int64_t age_ms = (now - hb) / 1000000;
                if (hb_us < cf->start_time_us) {
                    age_ms -= (cf->start_time_us - hb_us) / 1000;
                    hb_us = cf->start_time_us;
                    if (age_ms < 0)
                        age_ms = 0;
                }
                cf->last_heartbeat_us = hb_us;
                cf->heartbeat_age_ms = age_ms;
            }
        }
    }
    /* frames in start order (ties by call id). The table order is the
     * claim order of free slots, not the start order: an insertion sort
     * here was quadratic (130 ms for 10,000 frames). */
    if (snap->frame_count > 1)
        qsort(snap->frames, snap->frame_count, sizeof(shl_call_frame),
              frame_order);
    uint32_t rhw = shl__table_hwm(s, SHL__T_RES);
    for (uint32_t i = 0; i < rhw; i++) {
        cr = copy_res(r, i, x, &pt);
        if (cr == COPY_BUSY) {
            free(seen);
            rc = busy_err(operation_id);
            goto fail;
        }
        if (cr == COPY_GONE)
            continue;
        if (x->op_idx != idx || x->op_gen != gen)
            continue;
        if (grow((void **)&snap->resources, &rcap, snap->resource_count + 1,
                 sizeof(shl_temp_resource))) {
            free(seen);
            rc = -ENOMEM;
            goto fail;
        }
        shl_temp_resource *tr = &snap->resources[snap->resource_count++];
        memset(tr, 0, sizeof(*tr));
        shl__copy_field(tr->path, x->path, sizeof(x->path));
        tr->owner = x->owner_pid;
        tr->registered_at_us = x->registered_at_us;
        /* CallFrame.resources: the call's frame, if it is still that one */
        uint32_t fs;
        if (x->frame_ref && x->frame_ref - 1 < s->hdr->cap[SHL__T_FRAME] &&
            copy_frame(r, x->frame_ref - 1, f, &fs, &pt) == COPY_OK &&
            atomic_load(&f->h.gen) == x->frame_gen && f->op_idx == idx &&
            f->op_gen == gen) {
            shl__copy_field(tr->call_id, f->call_id, sizeof(f->call_id));
            for (size_t k = 0; k < snap->frame_count; k++)
                if (!strcmp(snap->frames[k].call_id, tr->call_id)) {
                    snap->frames[k].resource_count++;
                    break;
                }
        }
    }
    for (uint32_t slot = 0; slot < pcapn; slot++) {
        if (!seen[slot])
            continue;
        if (grow((void **)&snap->participants, &pcap,
                 snap->participant_count + 1, sizeof(shl_participant_info))) {
            free(seen);
            rc = -ENOMEM;
            goto fail;
        }
        fill_participant(r, slot,
                         &snap->participants[snap->participant_count++], now);
    }
    free(seen);
    free(o);
    free(f);
    free(x);
    *out = snap;
    return 0;
fail:
    shl_snapshot_free(snap);
    free(o);
    free(f);
    free(x);
    return rc;
}

/* Each record is copied consistently under its seqlock. Across records,
 * a protocol change (crash, cleanup, failure, abort) bumps the
 * segment's epoch before it touches frames, so a snapshot taken while the
 * epoch did not move shows no half-done transition; we retry a bounded
 * number of times. Calls starting and ending meanwhile are per-frame
 * atomic and do not force a retry. */
int
shl_reader_snapshot(shl_reader *r, const char *operation_id,
                    shl_snapshot **out)
{
    shl__clear_err();
    if (!r || !operation_id || !out)
        return SHL_SET_ERR(-EINVAL, "NULL argument");
    {
        int src = shl__seg_check_size(r->seg);
        if (src)
            return src;
    }
    int rc = shl_validate_operation_id(operation_id);
    if (rc)
        return rc;
    for (int t = 0;; t++) {
        uint32_t e1 = atomic_load_explicit(&r->seg->hdr->epoch,
                                           memory_order_acquire);
        shl_snapshot *snap = NULL;
        rc = snapshot_once(r, operation_id, &snap);
        if (rc)
            return rc;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&r->seg->hdr->epoch, memory_order_relaxed) ==
                e1 ||
            t >= 15) {
            *out = snap;
            return 0;
        }
        shl_snapshot_free(snap);
    }
}

int
shl_segment_unlink(const char *base_path)
{
    shl__clear_err();
    if (!base_path)
        return SHL_SET_ERR(-EINVAL, "NULL base path");
    shl_reader *r = NULL;
    int rc = shl_reader_open(&r, base_path);
    if (rc == -ENOENT)
        return SHL_SET_ERR(-ENOENT, "no segment for %s", base_path);
    if (rc)
        return SHL_APPEND_ERR(rc, "cannot tell whether the segment of %s is "
                                  "in use (shl_segment_unlink_force removes "
                                  "it anyway)",
                              base_path);
    shl_participant_info *parts = NULL;
    size_t n = 0;
    rc = shl_reader_participants(r, &parts, &n);
    shl_reader_close(r);
    if (rc)
        return rc;
    uint32_t alive = 0;
    int32_t pid = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].alive && alive++ == 0)
            pid = parts[i].pid;
    free(parts);
    if (alive)
        return SHL_SET_ERR(-EBUSY,
                           "the segment of %s is in use: %u participant(s) "
                           "alive (pid %d%s); removing it would split the "
                           "ledger in two",
                           base_path, alive, (int)pid, alive > 1 ? ", ..." : "");
    return shl_segment_unlink_force(base_path);
}
