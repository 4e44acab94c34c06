/*
 * opfiles.c: an operation's files (see opfiles.h): paths, where a line
 * goes, appends, direct writes, file-error reports. Nothing here takes a
 * ledger lock. Appends are one write() of whole lines on an O_APPEND
 * descriptor opened for that append (so a file moved away by an archive is
 * never written through a stale descriptor).
 */
#include "files/opfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/json.h"
#include "internal.h"

/* ---- files ---- */

int
shl__op_file_path(const char *base, const char *op_id, enum shl__file f,
                  char *buf, size_t cap)
{
    static const char *const suffix[SHL__NFILES] = {
        ".operation.log", ".operation.debug.log", "_trail.jsonl"};
    if ((unsigned)f >= SHL__NFILES)
        return -EINVAL;
    int n = snprintf(buf, cap, "%s/%s%s", base, op_id, suffix[f]);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return n;
}

/* Path of file f's counterpart in the archive folder backup/{opId}/, and
 * of the folder itself. */
static int
archived_path(const char *base, const char *op_id, enum shl__file f,
              char *folder, size_t fcap, char *buf, size_t cap)
{
    static const char *const name[SHL__NFILES] = {
        "operation.log", "operation.debug.log", "trail.jsonl"};
    int n = snprintf(folder, fcap, "%s/backup/%s", base, op_id);
    if (n < 0 || (size_t)n >= fcap)
        return -ENAMETOOLONG;
    n = snprintf(buf, cap, "%s/%s", folder, name[f]);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static bool
is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
shl__op_file_open_append(shl_ledger *l, const char *base, const char *op_id,
                         enum shl__file f)
{
    char path[PATH_MAX], folder[PATH_MAX], apath[PATH_MAX];
    int rc = shl__op_file_path(base, op_id, f, path, sizeof(path));
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return -errno;
    rc = archived_path(base, op_id, f, folder, sizeof(folder), apath,
                       sizeof(apath));
    if (rc < 0)
        return rc;
    /* archived: the line goes into the archive, never beside it */
    if (is_dir(folder)) {
        fd = open(apath, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        return fd >= 0 ? fd : -errno;
    }
    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    else if (fd >= 0) {
        /* created it: the archive may have run between the look and the
         * create. Then this (empty) file is a stray: remove it (unless
         * the archive already moved it in) and write into the archive. */
        if (is_dir(folder)) {
            close(fd);
            (void)unlink(path);
            fd = open(apath, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
            return fd >= 0 ? fd : -errno;
        }
        /* a new trail file: the original reported every trail snapshot */
        if (f == SHL__FILE_TRAIL && l && l->opts.callbacks.on_backup_created)
            l->opts.callbacks.on_backup_created(path,
                                                l->opts.callbacks.user);
    }
    return fd >= 0 ? fd : -errno;
}

int
shl__op_file_append(const char *base, const char *op_id, enum shl__file f,
                    const char *data, size_t len)
{
    return shl__op_file_append_l(NULL, base, op_id, f, data, len);
}

int
shl__op_file_append_l(shl_ledger *l, const char *base, const char *op_id,
                      enum shl__file f, const char *data, size_t len)
{
    int fd = shl__op_file_open_append(l, base, op_id, f);
    if (fd < 0)
        return fd;
    int rc;
    rc = shl__write_all(fd, data, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

void
shl__count_file_error(shl_ledger *l)
{
    if (l && l->seg.hdr)
        atomic_fetch_add_explicit(&l->seg.hdr->ev_file_errors, 1,
                                  memory_order_relaxed);
}

void
shl__file_error(shl_ledger *l, const char *what, const char *path, int err)
{
    shl__count_file_error(l);
    if (!l->opts.callbacks.on_log_line)
        return;
    char line[PATH_MAX + 160];
    snprintf(line, sizeof(line), "[Ledger] %s %s failed: %s", what, path,
             shl_strerror(err));
    l->opts.callbacks.on_log_line(line, l->opts.callbacks.user);
}

int
shl__event_write_direct(shl_ledger *l, const struct shl__event *ev)
{
    return shl__event_write_via(l, ev, NULL, NULL);
}

int
shl__event_write_via(shl_ledger *l, const struct shl__event *ev,
                     shl__append_fn append, void *ctx)
{
    struct shl__sbuf b;
    shl__sbuf_init(&b);
    int first = 0;
    for (int f = 0; f < SHL__NFILES; f++) {
        if (!shl__event_targets(ev, (enum shl__file)f))
            continue;
        shl__sbuf_reset(&b);
        int rc = shl__event_render(ev, (enum shl__file)f, &b);
        if (rc == 0)
            rc = append ? append(ctx, l, ev->op_id, (enum shl__file)f, b.p,
                                 b.len)
                        : shl__op_file_append_l(l, l->base_path, ev->op_id,
                                                (enum shl__file)f, b.p,
                                                b.len);
        if (rc != 0) {
            char path[PATH_MAX];
            if (shl__op_file_path(l->base_path, ev->op_id, (enum shl__file)f,
                                  path, sizeof(path)) < 0)
                snprintf(path, sizeof(path), "%s", ev->op_id);
            shl__file_error(l, "append to", path, rc);
            if (!first)
                first = rc;
        }
    }
    shl__sbuf_fini(&b);
    return first;
}

void
shl__event_notify(shl_ledger *l, const struct shl__event *ev)
{
    if (!l->opts.callbacks.on_log_line || !shl__event_targets(ev, SHL__FILE_LOG))
        return;
    struct shl__sbuf b;
    shl__sbuf_init(&b);
    if (shl__event_render(ev, SHL__FILE_LOG, &b) == 0) {
        if (b.len && b.p[b.len - 1] == '\n')
            b.p[--b.len] = 0;
        l->opts.callbacks.on_log_line(b.p, l->opts.callbacks.user);
    }
    shl__sbuf_fini(&b);
}

