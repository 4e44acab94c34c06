/*
 * resources.c: deleting temp resources: only what was registered, never
 * following links. A directory is removed with its contents (opened
 * O_NOFOLLOW, walked with *at() calls); a symbolic link inside is removed
 * itself, its target never touched. Failures go to on_log_line.
 */
#include "crash/resources.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void
report(shl_ledger *l, const char *path, const char *what, int err)
{
    char line[768];
    snprintf(line, sizeof(line), "[Ledger] temp resource %s: %s (%s)", path,
             what, strerror(err));
    if (l->opts.callbacks.on_log_line)
        l->opts.callbacks.on_log_line(line, l->opts.callbacks.user);
}

/* Remove the contents of directory fd (not following symlinks). Returns 0
 * if everything was removed. */
static int
rm_tree_at(shl_ledger *l, int dfd, const char *path)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || rm_tree_at(l, sub, path) != 0 ||
                unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
                rc = -1;
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            /* a symlink is removed itself; its target is never touched */
            if (unlinkat(dirfd(d), e->d_name, 0) != 0)
                rc = -1;
        } else {
            report(l, path,
                   "left an entry that is not a file, directory or link",
                   EPERM);
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

void
shl__delete_temp_path(shl_ledger *l, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            report(l, path, "cannot inspect", errno);
        return;
    }
    if (S_ISREG(st.st_mode)) {
        if (unlink(path) != 0)
            report(l, path, "cannot delete", errno);
    } else if (S_ISDIR(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || rm_tree_at(l, fd, path) != 0 || rmdir(path) != 0)
            report(l, path, "directory not fully deleted", errno ? errno : EIO);
    } else {
        report(l, path, "left: not a regular file or directory", EPERM);
    }
}
