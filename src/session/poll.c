/*
 * poll.c: OperationHelper (pollFile, pollFiles, pollUntil).
 *
 * Deadlines are CLOCK_MONOTONIC (a wall-clock step never shortens or
 * stretches a wait); between checks the caller's thread sleeps the poll
 * interval, cut short at the deadline. Files are read whole with one
 * open(); a file that exists but cannot be opened (EACCES...) is an error at
 * once, not something to wait out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "session/poll.h"

#define POLL_DEFAULT_MS 100

static void
sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Sleep one interval, or until the deadline (deadline_ns < 0: none).
 * Returns false when the deadline has passed (no sleep then). */
static bool
pause_or_expire(int64_t interval_ms, int64_t deadline_ns)
{
    int64_t step = (interval_ms > 0 ? interval_ms : POLL_DEFAULT_MS) * 1000000;
    if (deadline_ns >= 0) {
        int64_t left = deadline_ns - shl__mono_ns();
        if (left <= 0)
            return false;
        if (step > left)
            step = left;
    }
    sleep_ns(step);
    return true;
}

static int64_t
deadline_of(int64_t timeout_ms)
{
    return timeout_ms < 0 ? -1 : shl__mono_ns() + timeout_ms * 1000000;
}

int
shl__read_file(const char *path, char **content, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    size_t cap = 4096;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    size_t n = 0;
    int rc = 0;
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
out:
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *content = buf;
    if (len)
        *len = n;
    return 0;
}

int
shl_poll_file(const char *path, bool delete_after, int64_t poll_interval_ms,
              int64_t timeout_ms, char **content)
{
    shl__clear_err();
    if (!path || !content)
        return SHL_SET_ERR(-EINVAL, "shl_poll_file: NULL argument");
    int64_t dl = deadline_of(timeout_ms);
    for (;;) {
        char *buf = NULL;
        int rc = shl__read_file(path, &buf, NULL);
        if (rc == 0) {
            if (delete_after && unlink(path) != 0 && errno != ENOENT) {
                rc = -errno;
                free(buf);
                return SHL_SET_ERR(rc, "delete %s: %s", path, shl_strerror(rc));
            }
            *content = buf;
            return 0;
        }
        if (rc != -ENOENT)
            return SHL_SET_ERR(rc, "read %s: %s", path, shl_strerror(rc));
        if (!pause_or_expire(poll_interval_ms, dl))
            return SHL_SET_ERR(-ETIMEDOUT,
                               "File %s did not appear within %lld ms", path,
                               (long long)timeout_ms);
    }
}

int
shl_poll_files(const char *const *paths, size_t n, bool delete_after,
               int64_t poll_interval_ms, int64_t timeout_ms, char **contents)
{
    shl__clear_err();
    if ((n && !paths) || !contents)
        return SHL_SET_ERR(-EINVAL, "shl_poll_files: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!paths[i])
            return SHL_SET_ERR(-EINVAL, "shl_poll_files: path %zu is NULL", i);
    char **got = n ? calloc(n, sizeof(*got)) : NULL;
    if (n && !got)
        return SHL_SET_ERR(-ENOMEM, "shl_poll_files: no memory");
    int64_t dl = deadline_of(timeout_ms);
    int rc = 0;
    for (;;) {
        size_t missing = 0;
        for (size_t i = 0; i < n; i++) {
            if (got[i])
                continue;
            int r = shl__read_file(paths[i], &got[i], NULL);
            if (r == -ENOENT) {
                got[i] = NULL;
                missing++;
            } else if (r) {
                rc = SHL_SET_ERR(r, "read %s: %s", paths[i], shl_strerror(r));
                goto fail;
            }
        }
        if (missing == 0)
            break;
        if (!pause_or_expire(poll_interval_ms, dl)) {
            char list[1024];
            size_t used = 0;
            list[0] = 0;
            for (size_t i = 0; i < n && used < sizeof(list) - 1; i++)
                if (!got[i]) {
                    int w = snprintf(list + used, sizeof(list) - used, "%s%s",
                                     used ? ", " : "", paths[i]);
                    if (w < 0)
                        break;
                    used += (size_t)w;
                }
            rc = SHL_SET_ERR(-ETIMEDOUT,
                             "Files did not appear within %lld ms: [%s]",
                             (long long)timeout_ms, list);
            goto fail;
        }
    }
    /* delete only once every file was read: a timeout loses nothing (the
     * original deleted each file as it appeared) */
    if (delete_after)
        for (size_t i = 0; i < n; i++)
            if (unlink(paths[i]) != 0 && errno != ENOENT) {
                rc = SHL_SET_ERR(-errno, "delete %s: %s", paths[i],
                                 strerror(errno));
                goto fail;
            }
    for (size_t i = 0; i < n; i++)
        contents[i] = got[i];
    free(got);
    return 0;

fail:
    for (size_t i = 0; i < n; i++)
        free(got[i]);
    free(got);
    return rc;
}

int
shl_poll_until(void *(*check)(void *user), void *user, int64_t poll_interval_ms,
               int64_t timeout_ms, void **result)
{
    shl__clear_err();
    if (!check || !result)
        return SHL_SET_ERR(-EINVAL, "shl_poll_until: NULL argument");
    int64_t dl = deadline_of(timeout_ms);
    for (;;) {
        void *v = check(user);
        if (v) {
            *result = v;
            return 0;
        }
        if (!pause_or_expire(poll_interval_ms, dl))
            return SHL_SET_ERR(-ETIMEDOUT, "Condition not met within %lld ms",
                               (long long)timeout_ms);
    }
}

/* ---- with a deserializer (pollFile<T> / pollFiles<T>) ---- */

int
shl_poll_file_parse(const char *path, bool delete_after,
                    int64_t poll_interval_ms, int64_t timeout_ms,
                    shl_deserialize_fn deserializer, void *user,
                    void **result)
{
    if (!deserializer || !result)
        return SHL_SET_ERR(-EINVAL, "shl_poll_file_parse: NULL argument");
    char *text = NULL;
    int rc = shl_poll_file(path, delete_after, poll_interval_ms, timeout_ms,
                           &text);
    if (rc)
        return rc;
    void *v = NULL;
    rc = deserializer(text, strlen(text), user, &v);
    free(text);
    if (rc < 0)
        return SHL_SET_ERR(rc, "deserializer of %s failed: %s", path,
                           shl_strerror(rc));
    *result = v;
    return 0;
}

int
shl_poll_files_parse(const char *const *paths, size_t n, bool delete_after,
                     int64_t poll_interval_ms, int64_t timeout_ms,
                     shl_deserialize_fn deserializer, void *user,
                     void (*result_free)(void *result), void **results)
{
    if (!deserializer || (n && !results))
        return SHL_SET_ERR(-EINVAL, "shl_poll_files_parse: NULL argument");
    char **texts = n ? calloc(n, sizeof(*texts)) : NULL;
    if (n && !texts)
        return SHL_SET_ERR(-ENOMEM, "shl_poll_files_parse: no memory");
    void **vals = n ? calloc(n, sizeof(*vals)) : NULL;
    if (n && !vals) {
        free(texts);
        return SHL_SET_ERR(-ENOMEM, "shl_poll_files_parse: no memory");
    }
    int rc = shl_poll_files(paths, n, delete_after, poll_interval_ms,
                            timeout_ms, texts);
    size_t i = 0;
    for (; rc == 0 && i < n; i++) {
        int prc = deserializer(texts[i], strlen(texts[i]), user, &vals[i]);
        if (prc < 0)
            rc = SHL_SET_ERR(prc, "deserializer of %s failed: %s", paths[i],
                             shl_strerror(prc));
    }
    for (size_t k = 0; k < n && texts; k++)
        free(texts[k]);
    free(texts);
    if (rc) {
        /* nothing is returned: free what was parsed */
        for (size_t k = 0; k < i && k < n; k++)
            if (vals[k] && result_free)
                result_free(vals[k]);
        free(vals);
        return rc;
    }
    for (size_t k = 0; k < n; k++)
        results[k] = vals[k];
    free(vals);
    return 0;
}
