/*
 * test_poll.c: OperationHelper: pollFile (read, delete, timeout, errors),
 * pollFiles (order, delete only on success, timeout naming the missing
 * files), pollUntil (value, timeout), on a monotonic deadline.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shl_test.h"

static void
write_file(const char *path, const char *text)
{
    /* atomically, as a well-behaved writer does: temp file + rename */
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(rename(tmp, path), 0);
}

static bool
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

struct later {
    char path[1024];
    const char *text;
    int delay_ms;
};

static void *
write_later(void *arg)
{
    struct later *w = arg;
    shl_test_pause_ms(w->delay_ms);
    write_file(w->path, w->text);
    return NULL;
}

static void
test_poll_file_reads_and_deletes(void **state)
{
    (void)state;
    char base[512], path[1024];
    shl_test_base(base, sizeof(base), "poll");
    assert_int_equal(mkdir(base, 0700), 0);
    snprintf(path, sizeof(path), "%s/result.json", base);
    write_file(path, "{\"a\":1}");
    char *content = NULL;
    assert_shl_ok(shl_poll_file(path, false, 10, 1000, &content));
    assert_string_equal(content, "{\"a\":1}");
    free(content);
    assert_true(exists(path));
    assert_shl_ok(shl_poll_file(path, true, 10, 1000, &content));
    assert_string_equal(content, "{\"a\":1}");
    free(content);
    assert_false(exists(path));
    /* an empty file is content too */
    write_file(path, "");
    assert_shl_ok(shl_poll_file(path, true, 10, 0, &content));
    assert_string_equal(content, "");
    free(content);
    shl_test_cleanup(base);
}

static void
test_poll_file_waits_for_it(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "poll");
    assert_int_equal(mkdir(base, 0700), 0);
    struct later w = {.text = "late", .delay_ms = 100};
    snprintf(w.path, sizeof(w.path), "%s/late.txt", base);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_later, &w), 0);
    char *content = NULL;
    /* no timeout: waits as long as needed */
    assert_shl_ok(shl_poll_file(w.path, true, 5, -1, &content));
    assert_string_equal(content, "late");
    free(content);
    pthread_join(t, NULL);
    assert_false(exists(w.path));
    shl_test_cleanup(base);
}

static void
test_poll_file_timeout(void **state)
{
    (void)state;
    char base[512], path[1024];
    shl_test_base(base, sizeof(base), "poll");
    assert_int_equal(mkdir(base, 0700), 0);
    snprintf(path, sizeof(path), "%s/never.txt", base);
    char *content = (char *)0x1;
    int64_t t0 = shl_test_now_ms();
    assert_int_equal(shl_poll_file(path, false, 20, 100, &content), -ETIMEDOUT);
    int64_t took = shl_test_now_ms() - t0;
    assert_true(took >= 100);
    assert_true(took < 2000);
    assert_ptr_equal(content, (char *)0x1); /* untouched on failure */
    assert_non_null(strstr(shl_errmsg(), "did not appear within 100 ms"));
    assert_non_null(strstr(shl_errmsg(), path));
    /* timeout 0: one look */
    assert_int_equal(shl_poll_file(path, false, 20, 0, &content), -ETIMEDOUT);
    /* a path that can never be a file is an error at once */
    char bad[1100];
    snprintf(bad, sizeof(bad), "%s/dir", base);
    assert_int_equal(mkdir(bad, 0700), 0);
    assert_int_equal(shl_poll_file(bad, false, 20, 5000, &content), -EISDIR);
    assert_int_equal(shl_poll_file(NULL, false, 20, 0, &content), -EINVAL);
    shl_test_cleanup(base);
}

static void
test_poll_files_order_and_delete(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "poll");
    assert_int_equal(mkdir(base, 0700), 0);
    char p[3][1024];
    const char *paths[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p[i], sizeof(p[i]), "%s/f%d", base, i);
        paths[i] = p[i];
    }
    write_file(p[2], "two");
    write_file(p[0], "zero");
    struct later w = {.text = "one", .delay_ms = 80};
    snprintf(w.path, sizeof(w.path), "%s", p[1]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_later, &w), 0);
    char *got[3] = {0};
    assert_shl_ok(shl_poll_files(paths, 3, true, 5, 5000, got));
    pthread_join(t, NULL);
    assert_string_equal(got[0], "zero");
    assert_string_equal(got[1], "one");
    assert_string_equal(got[2], "two");
    for (int i = 0; i < 3; i++) {
        free(got[i]);
        assert_false(exists(p[i]));
    }
    shl_test_cleanup(base);
}

static void
test_poll_files_timeout_keeps_files(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "poll");
    assert_int_equal(mkdir(base, 0700), 0);
    char p[2][1024];
    const char *paths[2];
    for (int i = 0; i < 2; i++) {
        snprintf(p[i], sizeof(p[i]), "%s/g%d", base, i);
        paths[i] = p[i];
    }
    write_file(p[0], "here");
    char *got[2] = {0};
    assert_int_equal(shl_poll_files(paths, 2, true, 10, 60, got), -ETIMEDOUT);
    assert_null(got[0]);
    assert_null(got[1]);
    /* names the missing one only; nothing was deleted */
    assert_non_null(strstr(shl_errmsg(), p[1]));
    assert_null(strstr(shl_errmsg(), p[0]));
    assert_true(exists(p[0]));
    /* zero files: nothing to wait for */
    assert_shl_ok(shl_poll_files(NULL, 0, true, 10, 0, got));
    shl_test_cleanup(base);
}

struct counter {
    int calls;
    int ready_at;
    int value;
};

static void *
check_counter(void *user)
{
    struct counter *c = user;
    c->calls++;
    return c->calls >= c->ready_at ? &c->value : NULL;
}

static void
test_poll_until(void **state)
{
    (void)state;
    struct counter c = {.ready_at = 3, .value = 11};
    void *res = NULL;
    assert_shl_ok(shl_poll_until(check_counter, &c, 5, 5000, &res));
    assert_ptr_equal(res, &c.value);
    assert_int_equal(c.calls, 3);
    /* never: timeout, checked at least once more at the deadline */
    struct counter never = {.ready_at = 1000000};
    int64_t t0 = shl_test_now_ms();
    assert_int_equal(shl_poll_until(check_counter, &never, 10, 80, &res),
                     -ETIMEDOUT);
    assert_true(shl_test_now_ms() - t0 >= 80);
    assert_true(never.calls >= 2);
    assert_non_null(strstr(shl_errmsg(), "Condition not met within 80 ms"));
    assert_int_equal(shl_poll_until(NULL, NULL, 10, 0, &res), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_file_reads_and_deletes),
        cmocka_unit_test(test_poll_file_waits_for_it),
        cmocka_unit_test(test_poll_file_timeout),
        cmocka_unit_test(test_poll_files_order_and_delete),
        cmocka_unit_test(test_poll_files_timeout_keeps_files),
        cmocka_unit_test(test_poll_until),
    };
    return cmocka_run_group_tests_name("poll", tests, NULL, NULL);
}
