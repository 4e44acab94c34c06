/*
 * render.c: the lines of one screen of `shmledger-top` (header, operations,
 * frames or details, recent events), written to the ncurses screen or, with
 * --once, to stdout as plain text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curses.h>

#include "top.h"

bool top_colors;

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
        return top_colors ? (int)(COLOR_PAIR(1) | A_BOLD) : A_BOLD;
    case ATTR_WARN:
        return top_colors ? (int)(COLOR_PAIR(2) | A_BOLD) : A_BOLD;
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
    /* every row may carry participant text: never send it raw to the
     * terminal (escape sequences, newlines, invalid UTF-8) */
    char safe[1024];
    shl_tool_term_safe(safe, sizeof(safe), buf);
    memcpy(buf, safe, strlen(safe) + 1);
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
        i->events_dropped || i->file_errors || !i->snapshotter_held ? ATTR_WARN
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
    int64_t now = shl_tool_now_us();
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
            shl_tool_fmt_age((now - r->start_time_us) / 1000, age, sizeof(age)),
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
    int64_t now = shl_tool_now_us();
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
            shl_tool_fmt_age((now - f->start_time_us) / 1000, age, sizeof(age)),
            shl_tool_fmt_age(f->heartbeat_age_ms, hb, sizeof(hb)),
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
            shl_tool_fmt_age(p->heartbeat_age_ms, hb, sizeof(hb)),
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

void
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
