/*
 * archive.c: write backup/{opId}/ for a finished operation, and rotate.
 *
 * Order (the original's complete(), reference §1.7, with our extras):
 *   1. flush the event ring, so every line posted before this point is in
 *      the files being moved;
 *   2. mkdir backup/{opId} (0700);
 *   3. write operation.json (temp + rename) from the snapshot;
 *   4. rename the logs and the trail into the folder, each only if present;
 *   5. remove the live {opId}.operation.json the snapshotter keeps;
 *   6. on_backup_created(folder);
 *   7. rotate backup/.
 * A failing step is reported (on_log_line, the file-error counter) and the
 * rest still run (a log that cannot be moved must not stop the JSON from
 * being archived); the archive then returns SHL_EIO naming the first
 * failure. With opts.durable every archived file, the folder, backup/ and
 * the base directory are fsync'ed before it returns.
 *
 * Rotation deletes with openat/unlinkat relative to directory descriptors
 * opened O_NOFOLLOW, so a symlink planted in backup/ (to a folder elsewhere)
 * is removed as a link, never followed.
 */
#include "files/archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/opfiles.h"
#include "files/render.h"
#include "files/snapshotter.h"
#include "internal.h"
#include "files/json.h"
#include "files/log.h"
#include "shm/segment.h"
#include "shm/table.h"

/* How long the archive waits for another process's snapshotter to drain. */
#define FLUSH_TIMEOUT_MS 2000

static int
op_id_of(shl_ledger *l, uint32_t op_idx, uint64_t op_gen, char *id)
{
    struct shl__seg *s = &l->seg;
    if (op_idx >= s->hdr->cap[SHL__T_OP])
        return SHL_ESTALE;
    struct shl__op *r = shl__op_at(s, op_idx);
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t seq;
        if (!shl__seq_read_begin(&r->h, &seq))
            continue;
        if (atomic_load_explicit(&r->h.gen, memory_order_acquire) != op_gen)
            return SHL_ESTALE;
        shl__copy_field(id, r->id, SHL_OPERATION_ID_MAX + 1);
        if (shl__seq_read_ok(&r->h, seq))
            return 0;
    }
    return -EAGAIN;
}

/* A capture failure, reported by the next shl__archive_write(NULL) on this
 * thread: capture may run under the structure lock, where no callback may
 * fire. */
static _Thread_local int capture_err;
static _Thread_local char capture_id[SHL_OPERATION_ID_MAX + 1];

shl_snapshot *
shl__archive_capture(shl_ledger *l, uint32_t op_idx, uint64_t op_gen)
{
    char id[SHL_OPERATION_ID_MAX + 1] = "";
    int rc = op_id_of(l, op_idx, op_gen, id);
    shl_snapshot *snap = NULL;
    if (rc == 0)
        rc = shl_reader_snapshot(&l->reader, id, &snap);
    if (rc != 0) {
        capture_err = rc;
        memcpy(capture_id, id, sizeof(id));
        return NULL;
    }
    return snap;
}

static int
path_join(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
    int n = snprintf(buf, cap, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

/* The first failure of an archive: kept to report it as SHL_EIO. */
struct arch_err {
    int rc;
    char what[64];
    char path[PATH_MAX];
};

static void
arch_fail(shl_ledger *l, struct arch_err *e, const char *what, const char *path,
          int rc)
{
    shl__file_error(l, what, path, rc);
    if (e->rc == 0) {
        e->rc = rc;
        snprintf(e->what, sizeof(e->what), "%s", what);
        snprintf(e->path, sizeof(e->path), "%s", path);
    }
}

/* Move {base}/{opId}{suffix} to folder/name if it exists; fsync it there
 * when durable. */
static void
move_in(shl_ledger *l, struct arch_err *e, const char *op_id, enum shl__file f,
        const char *folder, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];
    int rc = shl__op_file_path(l->base_path, op_id, f, from, sizeof(from));
    if (rc < 0) {
        arch_fail(l, e, "move of", op_id, rc);
        return;
    }
    if (snprintf(to, sizeof(to), "%s/%s", folder, name) >= (int)sizeof(to)) {
        arch_fail(l, e, "move of", from, -ENAMETOOLONG);
        return;
    }
    if (rename(from, to) != 0) {
        if (errno != ENOENT)
            arch_fail(l, e, "move of", from, -errno);
        return;
    }
    if (l->opts.durable && (rc = shl__fsync_path(to, false)) != 0)
        arch_fail(l, e, "fsync of", to, rc);
}

static void
sync_dir(shl_ledger *l, struct arch_err *e, const char *dir)
{
    int rc = shl__fsync_path(dir, true);
    if (rc != 0)
        arch_fail(l, e, "fsync of", dir, rc);
}

int
shl__archive_write(shl_ledger *l, shl_snapshot *snap)
{
    if (!snap) {
        int rc = capture_err;
        capture_err = 0;
        if (rc)
            shl__file_error(l, "snapshot for the archive of",
                            capture_id[0] ? capture_id : "?", rc);
        return rc ? SHL_SET_ERR(SHL_EIO,
                                "archive of %s not written: "
                                "snapshot failed: %s",
                                capture_id[0] ? capture_id : "?",
                                shl_strerror(rc))
                  : 0;
    }
    struct arch_err e = {0};
    const char *id = snap->operation_id;
    char id_copy[SHL_OPERATION_ID_MAX + 1];
    snprintf(id_copy, sizeof(id_copy), "%s", id);
    int rc = shl__snapshotter_flush(l, FLUSH_TIMEOUT_MS);
    if (rc != 0)
        arch_fail(l, &e, "flush of the event ring before archiving", id, rc);
    char folder[PATH_MAX], path[PATH_MAX], dir[PATH_MAX];
    rc = path_join(folder, sizeof(folder), l->base_path, "backup", id);
    if (rc != 0) {
        shl__file_error(l, "archive of", id, rc);
        shl_snapshot_free(snap);
        return SHL_SET_ERR(SHL_EIO, "archive of %s: %s", id_copy,
                           shl_strerror(rc));
    }
    if (mkdir(folder, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        shl__file_error(l, "mkdir", folder, rc);
        shl_snapshot_free(snap);
        return SHL_SET_ERR(SHL_EIO,
                           "archive of %s not written: mkdir %s: "
                           "%s",
                           id_copy, folder, shl_strerror(rc));
    }
    char *text = NULL;
    rc = shl_snapshot_to_json(snap, 0, &text);
    if (rc == 0) {
        if (snprintf(path, sizeof(path), "%s/operation.json", folder) >=
            (int)sizeof(path))
            path[0] = 0;
        size_t len = strlen(text);
        text[len] = 0;
        /* end the file with a newline, as editors and jq expect */
        char *t2 = realloc(text, len + 2);
        if (t2) {
            text = t2;
            text[len++] = '\n';
            text[len] = 0;
        }
        rc = path[0]
                 ? shl__write_file_atomic_ex(path, text, len, l->opts.durable)
                 : -ENAMETOOLONG;
        if (rc != 0)
            arch_fail(l, &e, "write", path[0] ? path : folder, rc);
        free(text);
    } else {
        arch_fail(l, &e, "JSON of", id, rc);
    }
    /* a half-written archive: operation.json there, the logs not moved */
    SHL_CRASH_POINT("archive.json");
    move_in(l, &e, id, SHL__FILE_LOG, folder, "operation.log");
    move_in(l, &e, id, SHL__FILE_DEBUG, folder, "operation.debug.log");
    move_in(l, &e, id, SHL__FILE_TRAIL, folder, "trail.jsonl");
    /* the live file is superseded by the archived one */
    if (snprintf(path, sizeof(path), "%s/%s.operation.json", l->base_path, id) <
            (int)sizeof(path) &&
        unlink(path) != 0 && errno != ENOENT)
        arch_fail(l, &e, "unlink", path, -errno);
    shl_snapshot_free(snap);
    snap = NULL;
    if (l->opts.durable) {
        /* the folder's entries, the folder's entry in backup/, and the
         * renames out of the base directory */
        sync_dir(l, &e, folder);
        if (snprintf(dir, sizeof(dir), "%s/backup", l->base_path) <
            (int)sizeof(dir))
            sync_dir(l, &e, dir);
        sync_dir(l, &e, l->base_path);
    }
    if (l->opts.callbacks.on_backup_created)
        l->opts.callbacks.on_backup_created(folder, l->opts.callbacks.user);
    rc = shl__backup_rotate(l);
    (void)rc; /* rotation failures are reported; the archive is whole */
    if (e.rc != 0)
        return SHL_SET_ERR(SHL_EIO, "archive of %s incomplete: %s %s: %s",
                           id_copy, e.what, e.path, shl_strerror(e.rc));
    return 0;
}

int
shl__archive_operation(shl_ledger *l, uint32_t op_idx, uint64_t op_gen)
{
    if (!l)
        return -EINVAL;
    shl_snapshot *snap = shl__archive_capture(l, op_idx, op_gen);
    if (!snap)
        return SHL_ESTALE;
    return shl__archive_write(l, snap);
}

/* ---- rotation ---- */

/* Remove everything inside directory dfd (consumed), never following
 * symlinks. Returns 0 or the first -errno. */
static int
rm_contents(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int rc = -errno;
        close(dfd);
        return rc;
    }
    int first = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                is_dir = S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            int sub = openat(dirfd(d), e->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                int rc = rm_contents(sub);
                if (rc && !first)
                    first = rc;
            }
            if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0 &&
                errno != ENOENT && !first)
                first = -errno;
        } else if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT &&
                   !first) {
            first = -errno;
        }
    }
    closedir(d);
    return first;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
shl__backup_rotate(shl_ledger *l)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/backup", l->base_path) >=
        (int)sizeof(dir))
        return -ENAMETOOLONG;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int rc = -errno;
        shl__file_error(l, "open", dir, rc);
        return rc;
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        int rc = -errno;
        close(dfd);
        return rc;
    }
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
                         0 &&
                     S_ISDIR(st.st_mode);
        }
        if (!is_dir)
            continue; /* files and symlinks are not backups */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **p = realloc(names, nc * sizeof(*names));
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            names = p;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    int deleted = 0;
    if (rc == 0 && n > l->opts.max_backups) {
        qsort(names, n, sizeof(*names), cmp_names);
        size_t drop = n - l->opts.max_backups;
        for (size_t i = 0; i < drop; i++) {
            int sub = openat(dirfd(d), names[i],
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                if (errno != ENOENT) /* a concurrent rotation got it */
                    shl__file_error(l, "rotate (open)", names[i], -errno);
                continue;
            }
            int r2 = rm_contents(sub);
            if (unlinkat(dirfd(d), names[i], AT_REMOVEDIR) != 0 &&
                errno != ENOENT && r2 == 0)
                r2 = -errno;
            if (r2 != 0)
                shl__file_error(l, "rotate (delete)", names[i], r2);
            else
                deleted++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc ? rc : deleted;
}
