/*
 * resources.c: deleting temp resources: only what was registered, never
 * following links. A directory is removed with its contents (opened
 * O_NOFOLLOW, walked with *at() calls); a symbolic link inside is removed
 * itself, its target never touched. Failures go to on_log_line.
 *
 * The path itself is resolved without following any symbolic link: its
 * parent directory is opened with openat2(RESOLVE_NO_SYMLINKS) (a walk of
 * openat(O_NOFOLLOW) per component where the kernel lacks openat2), and
 * the entry is removed relative to that descriptor. So a link planted as
 * an intermediate directory (/tmp/x -> /etc, registered /tmp/x/passwd)
 * never leads the deletion out. "/", the base directory and its
 * ancestors are refused at registration and again here.
 */
#include "crash/resources.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "shm/lock.h"
#include "shm/records.h"

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

/* Is `a` equal to `b` or an ancestor of it (both normalised, absolute)? */
static bool
is_self_or_ancestor(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n == 1 && a[0] == '/')
        return true;
    return strncmp(a, b, n) == 0 && (b[n] == 0 || b[n] == '/');
}

/* Lexical normalisation of an absolute path (".", "..", "//"), in place
 * into out. */
static void
lexical(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    out[o++] = '/';
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *st = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - st);
        if (n == 0 || (n == 1 && st[0] == '.'))
            continue;
        if (n == 2 && st[0] == '.' && st[1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            continue;
        }
        if (o + n + 2 >= cap)
            break;
        if (o > 1)
            out[o++] = '/';
        memcpy(out + o, st, n);
        o += n;
    }
    out[o] = 0;
}

/* Number of components of a normalised absolute path ("/a/b" is 2). */
static int
depth_of(const char *norm)
{
    int d = 0;
    for (const char *p = norm; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/')
            d++;
    return d;
}

/* System places that are never a temp resource: crash cleanup deletes
 * directories recursively, with the rights of whoever cleans up (root, for
 * a program run as root). A path under `dir` (or `dir` itself) is refused
 * unless it is at least `min_depth` components deep; 0 refuses all of it.
 * The first rule whose directory contains the path decides (so /dev/shm's
 * entries are allowed though /dev is not). Every top-level directory is
 * refused by itself. */
static const struct {
    const char *dir;
    int min_depth;
} system_dirs[] = {
    {"/dev/shm", 3}, {"/dev", 0},   {"/proc", 0},   {"/sys", 0},
    {"/etc", 0},     {"/usr", 0},   {"/boot", 0},   {"/bin", 0},
    {"/sbin", 0},    {"/lib", 0},   {"/lib32", 0},  {"/lib64", 0},
    {"/libx32", 0},  {"/var/tmp", 3}, {"/var", 0}, {"/home", 3},
    {"/run", 3},
};

static bool
is_system_path(const char *norm)
{
    int d = depth_of(norm);
    if (d <= 1)
        return true;
    for (size_t i = 0; i < SHL__ARRAY_LEN(system_dirs); i++) {
        size_t n = strlen(system_dirs[i].dir);
        if (strncmp(norm, system_dirs[i].dir, n) != 0 ||
            (norm[n] != 0 && norm[n] != '/'))
            continue;
        return system_dirs[i].min_depth == 0 || d < system_dirs[i].min_depth;
    }
    return false;
}

/* Is `b` equal to `a` or inside it (both normalised, absolute)? */
static bool
is_self_or_inside(const char *b, const char *a)
{
    size_t n = strlen(a);
    return strncmp(a, b, n) == 0 && (b[n] == 0 || b[n] == '/');
}

int
shl__temp_path_check(shl_ledger *l, const char *norm)
{
    if (!norm || norm[0] != '/')
        return SHL_SET_ERR(-EINVAL, "temp resource path must be absolute");
    if (norm[1] == 0)
        return SHL_SET_ERR(-EINVAL, "temp resource path is the root "
                                    "directory: refused");
    char base[PATH_MAX];
    if (l->base_path[0] == '/') {
        lexical(l->base_path, base, sizeof(base));
    } else {
        char cwd[PATH_MAX], joined[2 * PATH_MAX + 2];
        if (!getcwd(cwd, sizeof(cwd)))
            cwd[0] = 0;
        snprintf(joined, sizeof(joined), "%s/%s", cwd, l->base_path);
        lexical(joined, base, sizeof(base));
    }
    char real[PATH_MAX];
    bool have_real = realpath(l->base_path, real) != NULL;
    if (is_self_or_ancestor(norm, base) ||
        (have_real && is_self_or_ancestor(norm, real)))
        return SHL_SET_ERR(-EINVAL,
                           "temp resource path %s is the ledger's base "
                           "directory or one of its ancestors: refused",
                           norm);
    /* the archive of every operation */
    char arch[PATH_MAX + 8];
    snprintf(arch, sizeof(arch), "%s/backup", base);
    bool in_arch = is_self_or_inside(norm, arch);
    if (!in_arch && have_real) {
        snprintf(arch, sizeof(arch), "%s/backup", real);
        in_arch = is_self_or_inside(norm, arch);
    }
    if (in_arch)
        return SHL_SET_ERR(-EINVAL,
                           "temp resource path %s is in the ledger's archive "
                           "(backup/): refused",
                           norm);
    if (is_system_path(norm))
        return SHL_SET_ERR(-EINVAL,
                           "temp resource path %s is a top-level or system "
                           "directory (or inside one): refused",
                           norm);
    /* the user's home directory (and so its ancestors) */
    const char *home = getenv("HOME");
    if (home && home[0] == '/') {
        char h[PATH_MAX];
        lexical(home, h, sizeof(h));
        if (is_self_or_ancestor(norm, h))
            return SHL_SET_ERR(-EINVAL,
                               "temp resource path %s is the home directory "
                               "or one of its ancestors: refused",
                               norm);
    }
    return 0;
}

/* Open the directory `dir` (absolute) without following any link. */
static int
open_dir_nofollow(const char *dir)
{
#ifdef SYS_openat2
    struct open_how how = {
        .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));
    if (fd >= 0)
        return (int)fd;
    if (errno != ENOSYS && errno != EPERM)
        return -errno; /* ELOOP: a link on the way */
#endif
    /* no openat2 (or filtered by seccomp): one component at a time */
    int cur = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return -errno;
    const char *p = dir;
    while (*p) {
        while (*p == '/')
            p++;
        const char *st = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - st);
        if (n == 0)
            continue;
        char name[NAME_MAX + 1];
        if (n > NAME_MAX) {
            close(cur);
            return -ENAMETOOLONG;
        }
        memcpy(name, st, n);
        name[n] = 0;
        int next =
            openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(cur);
        if (next < 0)
            return e == ENOTDIR ? -ELOOP : -e;
        cur = next;
    }
    return cur;
}

void
shl__delete_temp_path(shl_ledger *l, const char *path)
{
    if (shl__temp_path_check(l, path) != 0) {
        report(l, path, "refused (root, base directory or an ancestor)", EPERM);
        return;
    }
    /* split into the parent directory and the last name */
    char dir[PATH_MAX];
    size_t n = strnlen(path, sizeof(dir));
    if (n >= sizeof(dir)) {
        report(l, path, "cannot inspect", ENAMETOOLONG);
        return;
    }
    memcpy(dir, path, n + 1);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = 0;
    char *slash = strrchr(dir, '/');
    const char *name = slash + 1;
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
        report(l, path, "refused (not a plain name)", EINVAL);
        return;
    }
    char parent[PATH_MAX];
    if (slash == dir)
        strcpy(parent, "/");
    else {
        memcpy(parent, dir, (size_t)(slash - dir));
        parent[slash - dir] = 0;
    }
    int pfd = open_dir_nofollow(parent);
    if (pfd < 0) {
        if (pfd != -ENOENT)
            report(l, path,
                   pfd == -ELOOP || pfd == -EXDEV
                       ? "not deleted: its directory is reached through a "
                         "symbolic link"
                       : "cannot open its directory",
                   -pfd);
        return;
    }
    struct stat st;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            report(l, path, "cannot inspect", errno);
        close(pfd);
        return;
    }
    if (S_ISREG(st.st_mode)) {
        if (unlinkat(pfd, name, 0) != 0)
            report(l, path, "cannot delete", errno);
    } else if (S_ISDIR(st.st_mode)) {
        int fd =
            openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        errno = 0;
        if (fd < 0 || rm_tree_at(l, fd, path) != 0 ||
            unlinkat(pfd, name, AT_REMOVEDIR) != 0)
            report(l, path, "directory not fully deleted", errno ? errno : EIO);
    } else {
        report(l, path, "left: not a regular file or directory", EPERM);
    }
    close(pfd);
}

int
shl__res_delete_then_free(shl_ledger *l, uint32_t op_idx, uint64_t op_gen,
                          uint32_t slot, uint64_t slot_gen, bool any_owner)
{
    struct shl__seg *s = &l->seg;
    int rc = shl__lock(s, l->opts.timeout_ms);
    if (rc)
        return rc;
    struct shl__res_ref *refs = NULL;
    size_t n = 0;
    shl__path *paths = shl__res_list_locked(s, op_idx, op_gen, slot,
                                            slot_gen, any_owner, &refs, &n);
    shl__unlock(s);
    SHL_CRASH_POINT("res.listed");
    for (size_t i = 0; i < n; i++)
        shl__delete_temp_path(l, paths[i]);
    SHL_CRASH_POINT("res.deleted");
    if (n && (rc = shl__lock(s, l->opts.timeout_ms)) == 0) {
        shl__res_free_refs_locked(s, refs, n);
        shl__unlock(s);
    }
    free(paths);
    free(refs);
    return rc;
}

void
shl__res_delete_free_locked(shl_ledger *l, uint32_t op_idx, uint64_t op_gen,
                            uint32_t slot, uint64_t slot_gen, bool any_owner)
{
    struct shl__seg *s = &l->seg;
    struct shl__res_ref *refs = NULL;
    size_t n = 0;
    shl__path *paths = shl__res_list_locked(s, op_idx, op_gen, slot,
                                            slot_gen, any_owner, &refs, &n);
    for (size_t i = 0; i < n; i++)
        shl__delete_temp_path(l, paths[i]);
    SHL_CRASH_POINT("res.deleted_locked");
    shl__res_free_refs_locked(s, refs, n);
    free(paths);
    free(refs);
}
