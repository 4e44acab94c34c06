/*
 * model.c: the model of `shmledger-top`: one refresh opens (or reopens) the
 * segment read-only, reads its facts, the operation list (filtered and
 * sorted), the selected operation's snapshot and the last lines of its
 * operation log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "top.h"

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
        char d[sizeof(m->err) / 2]; /* room left for the code's name */
        shl_tool_one_line(d, sizeof(d), shl_errmsg());
        snprintf(m->err, sizeof(m->err), "%s%s%s%s", shl_strerror(rc),
                 d[0] ? " (" : "", d, d[0] ? ")" : "");
    }
}

void
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

void
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

void
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

void
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
int
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
    if (rc == -EAGAIN)
        return 0; /* a record in mid-write: keep the last view, look again
                     at the next refresh */
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
    m->refreshed_us = shl_tool_now_us();
    return 0;
}

void
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
