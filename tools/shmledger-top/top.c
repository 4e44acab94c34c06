/*
 * top.c: `shmledger-top`, the live viewer of a shared-memory ledger.
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
 */
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curses.h>

#include <shmledger/shmledger.h>

#define EX_OK 0
#define EX_FAIL 1
#define EX_USAGE 2
#define EX_SEGMENT 3

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
/* Model: what one refresh read from the segment                            */
/* ------------------------------------------------------------------------ */

#define EV_MAX 8

struct model {
    const char *base;
    int64_t stale_ms;
    char shm_name[128];
    ino_t ino;
    bool have_ino;
    shl_reader *r;
    int err_rc;    /* last error (0: none) */
    char err[512]; /* its text */
    bool have_info;
    shl_segment_info info;
    shl_op_summary *all; /* every row of the list */
    size_t nall;
    shl_op_summary **rows; /* filtered and sorted view of `all` */
    size_t nrows;
    size_t sel;
    char sel_id[SHL_OPERATION_ID_MAX + 1];
    shl_snapshot *snap; /* snapshot of the selected operation, or NULL */
    char filter[128];
    bool details;
    int64_t refreshed_us;
    bool interactive;         /* errors say "retrying" */
    char events[EV_MAX][256]; /* last lines of the selected op's log */
    int nevents;
};

static int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
fmt_age(int64_t ms, char *buf, size_t cap)
{
    if (ms < 0)
        snprintf(buf, cap, "-");
    else if (ms < 1000)
        snprintf(buf, cap, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(buf, cap, "%lld.%llds", (long long)(ms / 1000),
                 (long long)(ms % 1000 / 100));
    else if (ms < 3600000)
        snprintf(buf, cap, "%lldm%02llds", (long long)(ms / 60000),
                 (long long)(ms / 1000 % 60));
    else
        snprintf(buf, cap, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
    return buf;
}

static void
model_set_err(struct model *m, int rc)
{
    m->err_rc = rc;
    if (rc == -ENOENT)
        snprintf(m->err, sizeof(m->err),
                 "no ledger at %s (no segment yet; retrying)", m->base);
    else if (rc == SHL_ENOTREADY)
        snprintf(m->err, sizeof(m->err), "segment is being created (retrying)");
    else {
        const char *d = shl_errmsg();
        snprintf(m->err, sizeof(m->err), "%s%s%s%s", shl_strerror(rc),
                 d && *d ? " (" : "", d && *d ? d : "", d && *d ? ")" : "");
        for (char *p = m->err; *p; p++)
            if (*p == '\n')
                *p = ' ';
    }
}

static void
model_drop_data(struct model *m)
{
    free(m->all);
    free(m->rows);
    m->all = NULL;
    m->rows = NULL;
    m->nall = m->nrows = 0;
    shl_snapshot_free(m->snap);
    m->snap = NULL;
    m->have_info = false;
}

static void
model_close(struct model *m)
{
    shl_reader_close(m->r);
    m->r = NULL;
    m->have_ino = false;
}

/* The segment was removed, or removed and created again, since we opened
 * it: our mapping shows a dead segment. */
static bool
segment_replaced(struct model *m)
{
    if (!m->have_ino)
        return false;
    char path[256];
    snprintf(path, sizeof(path), "/dev/shm%s", m->shm_name);
    struct stat st;
    return stat(path, &st) != 0 || st.st_ino != m->ino;
}

static int
cmp_rows(const void *a, const void *b)
{
    const shl_op_summary *x = *(shl_op_summary *const *)a;
    const shl_op_summary *y = *(shl_op_summary *const *)b;
    if (x->start_time_us != y->start_time_us)
        return x->start_time_us < y->start_time_us ? -1 : 1;
    return strcmp(x->operation_id, y->operation_id);
}

static void
model_apply_filter(struct model *m)
{
    free(m->rows);
    m->rows = calloc(m->nall ? m->nall : 1, sizeof(*m->rows));
    m->nrows = 0;
    if (!m->rows)
        return;
    for (size_t i = 0; i < m->nall; i++)
        if (!m->filter[0] || strstr(m->all[i].operation_id, m->filter) ||
            strstr(m->all[i].description, m->filter))
            m->rows[m->nrows++] = &m->all[i];
    qsort(m->rows, m->nrows, sizeof(*m->rows), cmp_rows);
    /* Keep the selection on the same operation when it is still there. */
    size_t sel = m->sel < m->nrows ? m->sel : (m->nrows ? m->nrows - 1 : 0);
    for (size_t i = 0; i < m->nrows; i++)
        if (strcmp(m->rows[i]->operation_id, m->sel_id) == 0)
            sel = i;
    m->sel = sel;
    if (m->nrows)
        snprintf(m->sel_id, sizeof(m->sel_id), "%s",
                 m->rows[m->sel]->operation_id);
}

/* "2026-11-30T11:37:40.354037+00:00 [INFO] MSG" -> "11:37:40.354 INFO MSG" */
static void
shorten_log_line(const char *in, char *out, size_t cap)
{
    const char *t = strchr(in, 'T');
    const char *sp = strchr(in, ' ');
    if (!t || !sp || t > sp || sp - t < 13) {
        snprintf(out, cap, "%s", in);
        return;
    }
    const char *rest = sp + 1;
    if (*rest == '[') {
        const char *close = strchr(rest, ']');
        if (close) {
            snprintf(out, cap, "%.12s %-7.*s %s", t + 1,
                     (int)(close - rest - 1), rest + 1,
                     close[1] == ' ' ? close + 2 : close + 1);
            return;
        }
    }
    snprintf(out, cap, "%.12s %s", t + 1, rest);
}

/* The last lines of the selected operation's log (the library writes the
 * calls, crashes and state changes there): the viewer's recent events. */
static void
model_load_events(struct model *m)
{
    m->nevents = 0;
    if (!m->nrows)
        return;
    const char *id = m->rows[m->sel]->operation_id;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.operation.log", m->base, id);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(path, sizeof(path), "%s/backup/%s/operation.log", m->base, id);
        f = fopen(path, "re");
    }
    if (!f)
        return;
    char buf[16384];
    long start = 0;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        start = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    }
    size_t n = 0;
    if (fseek(f, start, SEEK_SET) == 0)
        n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = buf;
    if (start > 0) { /* drop the partial first line */
        char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + n;
    }
    char *lines[256];
    int count = 0;
    for (char *save = NULL, *l = strtok_r(p, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        if (count == 256) {
            memmove(lines, lines + 1, sizeof(lines[0]) * 255);
            count--;
        }
        lines[count++] = l;
    }
    int first = count > EV_MAX ? count - EV_MAX : 0;
    for (int i = first; i < count; i++)
        shorten_log_line(lines[i], m->events[m->nevents++],
                         sizeof(m->events[0]));
}

static void
model_snapshot_selected(struct model *m)
{
    shl_snapshot_free(m->snap);
    m->snap = NULL;
    model_load_events(m);
    if (!m->r || !m->nrows)
        return;
    (void)shl_reader_snapshot(m->r, m->rows[m->sel]->operation_id, &m->snap);
}

/* One refresh: (re)open the segment if needed and read everything. */
static int
model_refresh(struct model *m)
{
    if (m->r && segment_replaced(m))
        model_close(m);
    if (!m->r) {
        int rc = shl_reader_open(&m->r, m->base);
        if (rc) {
            m->r = NULL;
            model_drop_data(m);
            model_set_err(m, rc);
            return rc;
        }
        char path[256];
        struct stat st;
        if (shl_segment_name(m->base, m->shm_name, sizeof(m->shm_name)) > 0 &&
            snprintf(path, sizeof(path), "/dev/shm%s", m->shm_name) > 0 &&
            stat(path, &st) == 0) {
            m->ino = st.st_ino;
            m->have_ino = true;
        }
    }
    int rc = shl_reader_info(m->r, &m->info);
    shl_op_summary *rows = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = shl_reader_list(m->r, &rows, &n);
    if (rc) {
        model_drop_data(m);
        model_set_err(m, rc);
        model_close(m);
        return rc;
    }
    m->err_rc = 0;
    m->err[0] = 0;
    m->have_info = true;
    free(m->all);
    m->all = rows;
    m->nall = n;
    model_apply_filter(m);
    model_snapshot_selected(m);
    m->refreshed_us = now_us();
    return 0;
}

static void
model_move(struct model *m, int delta)
{
    if (!m->nrows)
        return;
    long s = (long)m->sel + delta;
    if (s < 0)
        s = 0;
    if (s >= (long)m->nrows)
        s = (long)m->nrows - 1;
    m->sel = (size_t)s;
    snprintf(m->sel_id, sizeof(m->sel_id), "%s", m->rows[m->sel]->operation_id);
    model_snapshot_selected(m);
}

/* ------------------------------------------------------------------------ */
/* Rendering: the same lines go to the screen or, with --once, to stdout    */
/* ------------------------------------------------------------------------ */

enum { ATTR_NONE, ATTR_TITLE, ATTR_HEAD, ATTR_SEL, ATTR_STALE, ATTR_WARN };

struct out {
    bool curses;
    int row, rows, cols;
};

static bool colors;

static int
curses_attr(int a)
{
    switch (a) {
    case ATTR_TITLE:
        return A_BOLD;
    case ATTR_HEAD:
        return A_UNDERLINE;
    case ATTR_SEL:
        return A_REVERSE;
    case ATTR_STALE:
        return colors ? (int)(COLOR_PAIR(1) | A_BOLD) : A_BOLD;
    case ATTR_WARN:
        return colors ? (int)(COLOR_PAIR(2) | A_BOLD) : A_BOLD;
    default:
        return A_NORMAL;
    }
}

static void put(struct out *o, int attr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
put(struct out *o, int attr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (!o->curses) {
        /* trailing blanks are noise in text output */
        size_t n = strlen(buf);
        while (n && buf[n - 1] == ' ')
            buf[--n] = 0;
        puts(buf);
        o->row++;
        return;
    }
    if (o->row >= o->rows)
        return;
    int a = curses_attr(attr);
    attron(a);
    mvaddnstr(o->row, 0, buf, o->cols);
    if (attr == ATTR_SEL || attr == ATTR_TITLE) {
        /* a full-width bar */
        int len = (int)strlen(buf);
        for (int x = len; x < o->cols; x++)
            mvaddch(o->row, x, ' ');
    }
    attroff(a);
    o->row++;
}

static void
render_header(struct model *m, struct out *o)
{
    char clock[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    put(o, ATTR_TITLE, "shmledger-top %s  %s  %s", shl_version_string(),
        m->base, clock);
    if (!m->have_info) {
        put(o, ATTR_WARN, "segment: %s", m->err[0] ? m->err : "(not read)");
        put(o, ATTR_NONE, " ");
        return;
    }
    const shl_segment_info *i = &m->info;
    put(o, ATTR_NONE,
        "segment %s  epoch %llu  lock_recoveries %llu  crashes_detected "
        "%llu%s",
        i->shm_name, (unsigned long long)i->epoch,
        (unsigned long long)i->lock_recoveries,
        (unsigned long long)i->crashes_detected,
        i->poisoned ? "  POISONED" : "");
    put(o, ATTR_NONE,
        "participants %u/%u  operations %u/%u  frames %u/%u  resources "
        "%u/%u",
        i->used_participants, i->cap_participants, i->used_operations,
        i->cap_operations, i->used_frames, i->cap_frames, i->used_resources,
        i->cap_resources);
    char who[96];
    if (!i->snapshotter_held)
        snprintf(who, sizeof(who), "none");
    else if (i->snapshotter_slot == UINT32_MAX)
        snprintf(who, sizeof(who), "(taking over)");
    else
        snprintf(who, sizeof(who), "%s (pid %d)", i->snapshotter_id,
                 (int)i->snapshotter_pid);
    put(o,
        i->events_dropped || i->file_errors || !i->snapshotter_held
            ? ATTR_WARN
            : ATTR_NONE,
        "snapshotter %s  events pending %llu/%u  fallback %llu  skipped "
        "%llu  dropped %llu  file_errors %llu",
        who, (unsigned long long)i->events_pending, i->cap_events,
        (unsigned long long)i->events_fallback,
        (unsigned long long)i->events_skipped,
        (unsigned long long)i->events_dropped,
        (unsigned long long)i->file_errors);
}

static void
render_ops(struct model *m, struct out *o, int max_rows)
{
    put(o, ATTR_NONE, " ");
    put(o, ATTR_HEAD, "  %-36s %-9s %7s %6s %5s %-5s  %s", "OPERATION", "STATE",
        "AGE", "FRAMES", "PARTS", "ABORT", "DESCRIPTION");
    if (!m->nrows) {
        put(o, ATTR_NONE, "  (no operations%s%s%s)",
            m->filter[0] ? " matching '" : "", m->filter,
            m->filter[0] ? "'" : "");
        return;
    }
    /* scroll so the selection is visible */
    size_t first = 0;
    if (max_rows > 0 && m->sel >= (size_t)max_rows)
        first = m->sel - (size_t)max_rows + 1;
    int64_t now = now_us();
    for (size_t i = first; i < m->nrows; i++) {
        if (max_rows > 0 && i - first >= (size_t)max_rows)
            break;
        const shl_op_summary *r = m->rows[i];
        char age[32];
        int attr = i == m->sel && o->curses ? ATTR_SEL
                   : r->aborted || r->state == SHL_OP_FAILED ||
                           r->state == SHL_OP_CLEANUP
                       ? ATTR_WARN
                       : ATTR_NONE;
        put(o, attr, "%c %-36s %-9s %7s %6u %5u %-5s  %.60s",
            i == m->sel ? '>' : ' ', r->operation_id,
            shl_op_state_name(r->state),
            fmt_age((now - r->start_time_us) / 1000, age, sizeof(age)),
            r->frame_count, r->participant_count, r->aborted ? "yes" : "no",
            r->description);
    }
}

static const shl_participant_info *
find_participant(const shl_snapshot *s, uint32_t slot)
{
    for (size_t i = 0; i < s->participant_count; i++)
        if (s->participants[i].slot == slot)
            return &s->participants[i];
    return NULL;
}

static void
render_frames(struct model *m, struct out *o)
{
    const shl_snapshot *s = m->snap;
    put(o, ATTR_NONE, " ");
    if (!s) {
        put(o, ATTR_HEAD, "Frames");
        put(o, ATTR_NONE, "  (no operation selected)");
        return;
    }
    put(o, ATTR_HEAD, "Frames of %s (%s%s), stale after %lld ms",
        s->operation_id, shl_op_state_name(s->state),
        s->aborted ? ", aborted" : "", (long long)m->stale_ms);
    put(o, ATTR_HEAD, "  %-14s %7s  %-30s %-10s %7s %7s %-5s  %s",
        "PARTICIPANT", "PID", "CALL ID", "STATE", "AGE", "HB AGE", "FLAGS",
        "DESCRIPTION");
    if (!s->frame_count)
        put(o, ATTR_NONE, "  (no call frames)");
    int64_t now = now_us();
    for (size_t i = 0; i < s->frame_count; i++) {
        const shl_call_frame *f = &s->frames[i];
        const shl_participant_info *p =
            find_participant(s, f->participant_slot);
        bool dead = p && !p->alive;
        bool stale = f->heartbeat_age_ms > m->stale_ms;
        char age[32], hb[32];
        put(o, dead || stale ? ATTR_STALE : ATTR_NONE,
            "  %-14s %7d  %-30s %-10s %7s %7s %-5s  %.50s", f->participant_id,
            f->pid, f->call_id, shl_frame_state_name(f->state),
            fmt_age((now - f->start_time_us) / 1000, age, sizeof(age)),
            fmt_age(f->heartbeat_age_ms, hb, sizeof(hb)),
            dead    ? "DEAD"
            : stale ? "STALE"
                    : "",
            f->has_description ? f->description : "");
    }
}

static void
render_details(struct model *m, struct out *o)
{
    const shl_snapshot *s = m->snap;
    put(o, ATTR_NONE, " ");
    if (!s) {
        put(o, ATTR_NONE, "  (no operation selected)");
        return;
    }
    put(o, ATTR_HEAD, "Details of %s", s->operation_id);
    put(o, ATTR_NONE, "  initiator %s  state %s  aborted %s  changes %llu",
        s->initiator_id, shl_op_state_name(s->state), s->aborted ? "yes" : "no",
        (unsigned long long)s->change_count);
    if (s->state == SHL_OP_FAILED || s->state == SHL_OP_CLEANUP) {
        put(o, ATTR_WARN, "  failure: %s",
            s->failure.reason[0] ? s->failure.reason : "(no reason)");
        for (uint32_t i = 0;
             i < s->failure.crashed_call_count && i < SHL_CRASHED_IDS_MAX; i++)
            put(o, ATTR_WARN, "    crashed call %s",
                s->failure.crashed_call_ids[i]);
    }
    put(o, ATTR_HEAD, "  %-14s %7s %5s %-6s %7s", "PARTICIPANT", "PID", "SLOT",
        "ALIVE", "HB AGE");
    for (size_t i = 0; i < s->participant_count; i++) {
        const shl_participant_info *p = &s->participants[i];
        char hb[32];
        bool stale = p->heartbeat_age_ms > m->stale_ms;
        put(o, !p->alive || stale ? ATTR_STALE : ATTR_NONE,
            "  %-14s %7d %5u %-6s %7s%s", p->participant_id, p->pid, p->slot,
            p->alive ? "yes" : "DEAD",
            fmt_age(p->heartbeat_age_ms, hb, sizeof(hb)),
            stale ? "  STALE" : "");
    }
    put(o, ATTR_HEAD, "  temp resources: %zu", s->resource_count);
    for (size_t i = 0; i < s->resource_count; i++)
        put(o, ATTR_NONE, "    %s (owner pid %d)", s->resources[i].path,
            s->resources[i].owner);
}

static void
render_events(struct model *m, struct out *o)
{
    if (!m->nevents)
        return;
    int n = m->nevents;
    if (o->curses) {
        /* what fits above the status bar, after a blank and a title */
        int room = o->rows - 1 - o->row - 2;
        if (room < 1)
            return;
        if (n > room)
            n = room;
    }
    put(o, ATTR_NONE, " ");
    put(o, ATTR_HEAD, "Recent events (operation log)");
    for (int i = m->nevents - n; i < m->nevents; i++)
        put(o, strstr(m->events[i], " ERROR ") ? ATTR_STALE : ATTR_NONE, "  %s",
            m->events[i]);
}

static void
render(struct model *m, struct out *o, const char *status)
{
    render_header(m, o);
    int ops_rows = 0;
    if (o->curses) {
        /* a third of the screen for the operations, at least 3 rows */
        ops_rows = (o->rows - 6) / 3;
        if (ops_rows < 3)
            ops_rows = 3;
    }
    render_ops(m, o, ops_rows);
    if (m->details)
        render_details(m, o);
    else
        render_frames(m, o);
    render_events(m, o);
    if (o->curses) {
        o->row = o->rows - 1;
        put(o, ATTR_SEL, "%s", status);
    }
}

/* ------------------------------------------------------------------------ */
/* The abort action (the viewer's only write, on the user's request)        */
/* ------------------------------------------------------------------------ */

static int
do_abort(const char *base, const char *op_id, char *msg, size_t cap)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "top-%d", (int)getpid());
    shl_ledger *l;
    shl_op *op;
    int rc = shl_ledger_open(&l, base, pid, NULL);
    if (rc) {
        snprintf(msg, cap, "abort failed: cannot open the ledger: %s",
                 shl_strerror(rc));
        return rc;
    }
    rc = shl_op_join(l, op_id, NULL, &op);
    if (rc == 0) {
        rc = shl_op_set_abort_flag(op, true);
        shl_op_leave(op, true);
    }
    shl_ledger_close(l);
    if (rc)
        snprintf(msg, cap, "abort of %s failed: %s", op_id, shl_strerror(rc));
    else
        snprintf(msg, cap, "abort flag set on %s", op_id);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Modes                                                                     */
/* ------------------------------------------------------------------------ */

static int
exit_for(int rc)
{
    switch (rc) {
    case 0:
        return EX_OK;
    case SHL_EVERSION:
    case SHL_EFORMAT:
    case SHL_EOWNER:
    case SHL_ECORRUPT:
    case SHL_ENOTREADY:
    case SHL_EPANIC:
        return EX_SEGMENT;
    default:
        return EX_FAIL;
    }
}

static int
run_once(struct model *m)
{
    int rc = model_refresh(m);
    struct out o = {.curses = false};
    render(m, &o, "");
    if (rc)
        fprintf(stderr, "shmledger-top: %s\n", m->err);
    return exit_for(rc);
}

static void
json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static int
run_json(struct model *m)
{
    int rc = model_refresh(m);
    if (rc) {
        fprintf(stderr, "shmledger-top: %s\n", m->err);
        return exit_for(rc);
    }
    const shl_segment_info *i = &m->info;
    printf("{\"segment\":{\"name\":");
    json_str(i->shm_name);
    printf(",\"formatMajor\":%u,\"ownerUid\":%u,\"bootId\":", i->format_major,
           i->owner_uid);
    json_str(i->boot_id);
    printf(",\"createdAtUs\":%lld,\"epoch\":%llu,\"lockRecoveries\":%llu,"
           "\"crashesDetected\":%llu,\"poisoned\":%s,"
           "\"participants\":{\"used\":%u,\"cap\":%u},"
           "\"operations\":{\"used\":%u,\"cap\":%u},"
           "\"frames\":{\"used\":%u,\"cap\":%u},"
           "\"resources\":{\"used\":%u,\"cap\":%u},",
           (long long)i->created_at_us, (unsigned long long)i->epoch,
           (unsigned long long)i->lock_recoveries,
           (unsigned long long)i->crashes_detected,
           i->poisoned ? "true" : "false", i->used_participants,
           i->cap_participants, i->used_operations, i->cap_operations,
           i->used_frames, i->cap_frames, i->used_resources, i->cap_resources);
    printf("\"snapshotter\":{\"held\":%s",
           i->snapshotter_held ? "true" : "false");
    if (i->snapshotter_held && i->snapshotter_slot != UINT32_MAX) {
        printf(",\"participantId\":");
        json_str(i->snapshotter_id);
        printf(",\"pid\":%d,\"slot\":%u", (int)i->snapshotter_pid,
               i->snapshotter_slot);
    }
    printf("},\"events\":{\"cap\":%u,\"pending\":%llu,\"fallback\":%llu,"
           "\"skipped\":%llu,\"dropped\":%llu,\"fileErrors\":%llu}},"
           "\n\"operations\":[",
           i->cap_events, (unsigned long long)i->events_pending,
           (unsigned long long)i->events_fallback,
           (unsigned long long)i->events_skipped,
           (unsigned long long)i->events_dropped,
           (unsigned long long)i->file_errors);
    const char *sep = "\n";
    for (size_t k = 0; k < m->nrows; k++) {
        shl_snapshot *s;
        if (shl_reader_snapshot(m->r, m->rows[k]->operation_id, &s) != 0)
            continue; /* it ended between the list and the snapshot */
        char *json = NULL;
        rc = shl_snapshot_to_json(s, SHL_JSON_COMPACT, &json);
        shl_snapshot_free(s);
        if (rc) {
            fprintf(stderr, "shmledger-top: cannot serialise %s: %s\n",
                    m->rows[k]->operation_id, shl_strerror(rc));
            return EX_FAIL;
        }
        printf("%s%s", sep, json);
        free(json);
        sep = ",\n";
    }
    printf("\n]}\n");
    return EX_OK;
}

static volatile sig_atomic_t quit_flag;

static void
on_quit(int sig)
{
    (void)sig;
    quit_flag = 1;
}

/* Read a line in the status bar; false when cancelled with Esc. */
static bool
prompt_line(const char *label, char *buf, size_t cap)
{
    size_t n = strlen(buf);
    timeout(-1);
    curs_set(1);
    for (;;) {
        int rows = getmaxy(stdscr), cols = getmaxx(stdscr);
        attron(A_REVERSE);
        mvprintw(rows - 1, 0, "%s%s", label, buf);
        for (int x = (int)(strlen(label) + n); x < cols; x++)
            mvaddch(rows - 1, x, ' ');
        attroff(A_REVERSE);
        move(rows - 1, (int)(strlen(label) + n));
        refresh();
        int ch = getch();
        if (ch == '\n' || ch == KEY_ENTER || ch == '\r')
            break;
        if (ch == 27) {
            curs_set(0);
            return false;
        }
        if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
            buf[--n] = 0;
        else if (ch >= 32 && ch < 127 && n + 1 < cap) {
            buf[n++] = (char)ch;
            buf[n] = 0;
        }
    }
    curs_set(0);
    return true;
}

static int
run_interactive(struct model *m, int64_t interval_ms)
{
    m->interactive = true;
    signal(SIGINT, on_quit);
    signal(SIGTERM, on_quit);
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        fprintf(stderr,
                "shmledger-top: cannot use the terminal (TERM=%s); "
                "try --once\n",
                getenv("TERM") ? getenv("TERM") : "");
        return EX_FAIL;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_RED, -1);
        init_pair(2, COLOR_YELLOW, -1);
        colors = true;
    }
    char status[256] = "";
    int64_t next = 0;
    while (!quit_flag) {
        int64_t now = mono_ms();
        if (now >= next) {
            model_refresh(m);
            next = now + interval_ms;
        }
        erase();
        struct out o = {.curses = true, .rows = LINES, .cols = COLS};
        char bar[512];
        snprintf(bar, sizeof(bar),
                 " q quit  j/k select  Enter %s  a abort  / filter%s%s%s  "
                 "%s",
                 m->details ? "frames" : "details", m->filter[0] ? " [" : "",
                 m->filter, m->filter[0] ? "]" : "", status);
        render(m, &o, bar);
        refresh();
        int64_t wait = next - mono_ms();
        timeout(wait > 0 ? (int)wait : 0);
        int ch = getch();
        if (ch == ERR)
            continue;
        status[0] = 0;
        switch (ch) {
        case 'q':
        case 'Q':
            quit_flag = 1;
            break;
        case KEY_UP:
        case 'k':
            model_move(m, -1);
            break;
        case KEY_DOWN:
        case 'j':
            model_move(m, 1);
            break;
        case KEY_PPAGE:
            model_move(m, -10);
            break;
        case KEY_NPAGE:
            model_move(m, 10);
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            m->details = !m->details;
            break;
        case KEY_RESIZE:
            clear();
            break;
        case '/': {
            char f[sizeof(m->filter)];
            snprintf(f, sizeof(f), "%s", m->filter);
            if (prompt_line("filter: ", f, sizeof(f))) {
                snprintf(m->filter, sizeof(m->filter), "%s", f);
                model_apply_filter(m);
                model_snapshot_selected(m);
            }
            break;
        }
        case 'a': {
            if (!m->nrows) {
                snprintf(status, sizeof(status), "no operation to abort");
                break;
            }
            char id[SHL_OPERATION_ID_MAX + 1];
            snprintf(id, sizeof(id), "%s", m->rows[m->sel]->operation_id);
            int rows = getmaxy(stdscr), cols = getmaxx(stdscr);
            attron(A_REVERSE | A_BOLD);
            mvprintw(rows - 1, 0, " Abort operation %s? (y/n) ", id);
            for (int x = getcurx(stdscr); x < cols; x++)
                addch(' ');
            attroff(A_REVERSE | A_BOLD);
            refresh();
            timeout(-1);
            int yn = getch();
            if (yn == 'y' || yn == 'Y') {
                do_abort(m->base, id, status, sizeof(status));
                next = 0; /* show the flag at once */
            } else {
                snprintf(status, sizeof(status), "abort cancelled");
            }
            break;
        }
        default:
            break;
        }
    }
    endwin();
    delscreen(scr);
    return EX_OK;
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
