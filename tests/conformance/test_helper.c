/*
 * test_helper.c: the original's OperationHelper and pollFiles with
 * deserializer groups (shl_poll_file, shl_poll_files, shl_poll_until). A
 * Dart deserializer is the caller's parsing of the returned text here.
 */
#include "conf.h"

struct later {
    char path[2][700];
    int after_ms[2];
    int n;
};

static void *
write_later(void *arg)
{
    struct later *w = arg;
    int64_t t0 = shl_test_now_ms();
    for (int i = 0; i < w->n; i++) {
        conf_work_for((int)(t0 + w->after_ms[i] - shl_test_now_ms()));
        char tmp[720];
        snprintf(tmp, sizeof(tmp), "%s.tmp", w->path[i]);
        FILE *f = fopen(tmp, "w");
        if (!f)
            return NULL;
        fprintf(f, "content%d", i + 1);
        fclose(f);
        rename(tmp, w->path[i]); /* atomically, as the header asks */
    }
    return NULL;
}

static void
put(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ---- OperationHelper ---- */

static void
test_operation_helper__poll_file_waits_for_file_and_reads_content(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-poll");
    mkdir(base, 0700);
    struct later w = {.n = 1, .after_ms = {50}};
    snprintf(w.path[0], sizeof(w.path[0]), "%s/result.txt", base);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_later, &w), 0);
    char *content = NULL;
    assert_shl_ok(shl_poll_file(w.path[0], false, 20, 10000, &content));
    assert_string_equal(content, "content1");
    free(content);
    pthread_join(t, NULL);
    shl_test_cleanup(base);
}

static void
test_operation_helper__poll_file_deletes_file_when_delete_true(void **state)
{
    (void)state;
    char base[512], p[700];
    shl_test_base(base, sizeof(base), "conf-poll");
    mkdir(base, 0700);
    snprintf(p, sizeof(p), "%s/delete_me.txt", base);
    put(p, "content");
    char *content = NULL;
    assert_shl_ok(shl_poll_file(p, true, 20, 1000, &content));
    assert_string_equal(content, "content");
    free(content);
    assert_false(conf_exists(p));
    shl_test_cleanup(base);
}

static void
test_operation_helper__poll_file_uses_deserializer(void **state)
{
    (void)state;
    char base[512], p[700];
    shl_test_base(base, sizeof(base), "conf-poll");
    mkdir(base, 0700);
    snprintf(p, sizeof(p), "%s/json_file.json", base);
    put(p, "{\"value\": 42}");
    char *content = NULL;
    assert_shl_ok(shl_poll_file(p, false, 20, 1000, &content));
    const char *v = strstr(content, "\"value\":");
    assert_non_null(v);
    assert_int_equal(strtol(v + 8, NULL, 10), 42);
    free(content);
    shl_test_cleanup(base);
}

static void
test_operation_helper__poll_file_times_out(void **state)
{
    (void)state;
    char base[512], p[700];
    shl_test_base(base, sizeof(base), "conf-poll");
    mkdir(base, 0700);
    snprintf(p, sizeof(p), "%s/never_exists.txt", base);
    char *content = NULL;
    assert_int_equal(shl_poll_file(p, false, 20, 100, &content), -ETIMEDOUT);
    shl_test_cleanup(base);
}

static void *
count_to_three(void *user)
{
    int *counter = user;
    return ++*counter >= 3 ? counter : NULL;
}

static void *
never(void *user)
{
    (void)user;
    return NULL;
}

static void
test_operation_helper__poll_until_waits_for_condition(void **state)
{
    (void)state;
    int counter = 0;
    void *res = NULL;
    assert_shl_ok(shl_poll_until(count_to_three, &counter, 20, 10000, &res));
    assert_ptr_equal(res, &counter);
    assert_int_equal(counter, 3);
}

static void
test_operation_helper__poll_until_times_out(void **state)
{
    (void)state;
    void *res = NULL;
    assert_int_equal(shl_poll_until(never, NULL, 20, 100, &res), -ETIMEDOUT);
}

static void
test_operation_helper__poll_files_waits_for_multiple_files(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "conf-poll");
    mkdir(base, 0700);
    struct later w = {.n = 2, .after_ms = {30, 60}};
    snprintf(w.path[0], sizeof(w.path[0]), "%s/file1.txt", base);
    snprintf(w.path[1], sizeof(w.path[1]), "%s/file2.txt", base);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_later, &w), 0);
    const char *paths[2] = {w.path[0], w.path[1]};
    char *contents[2] = {NULL, NULL};
    assert_shl_ok(shl_poll_files(paths, 2, false, 20, 10000, contents));
    assert_string_equal(contents[0], "content1");
    assert_string_equal(contents[1], "content2");
    free(contents[0]);
    free(contents[1]);
    pthread_join(t, NULL);
    shl_test_cleanup(base);
}

/* ---- pollFiles with deserializer ---- */

static void
test_poll_files_with_deserializer__poll_files_uses_deserializer_for_each_file(
    void **state)
{
    (void)state;
    char base[512], p1[700], p2[700];
    shl_test_base(base, sizeof(base), "conf-polls");
    mkdir(base, 0700);
    snprintf(p1, sizeof(p1), "%s/f1.txt", base);
    snprintf(p2, sizeof(p2), "%s/f2.txt", base);
    put(p1, "10");
    put(p2, "20");
    const char *paths[2] = {p1, p2};
    char *contents[2] = {NULL, NULL};
    assert_shl_ok(shl_poll_files(paths, 2, false, 20, 1000, contents));
    assert_int_equal(atoi(contents[0]), 10);
    assert_int_equal(atoi(contents[1]), 20);
    free(contents[0]);
    free(contents[1]);
    shl_test_cleanup(base);
}

static void
test_poll_files_with_deserializer__poll_files_times_out_when_file_missing(
    void **state)
{
    (void)state;
    char base[512], p1[700], p2[700];
    shl_test_base(base, sizeof(base), "conf-polls");
    mkdir(base, 0700);
    snprintf(p1, sizeof(p1), "%s/exists.txt", base);
    snprintf(p2, sizeof(p2), "%s/missing.txt", base);
    put(p1, "data");
    const char *paths[2] = {p1, p2};
    char *contents[2] = {NULL, NULL};
    assert_int_equal(shl_poll_files(paths, 2, false, 20, 100, contents),
                     -ETIMEDOUT);
    free(contents[0]);
    free(contents[1]);
    shl_test_cleanup(base);
}

static void
test_poll_files_with_deserializer__poll_files_deletes_files_when_delete_true(
    void **state)
{
    (void)state;
    char base[512], p1[700], p2[700];
    shl_test_base(base, sizeof(base), "conf-polls");
    mkdir(base, 0700);
    snprintf(p1, sizeof(p1), "%s/del1.txt", base);
    snprintf(p2, sizeof(p2), "%s/del2.txt", base);
    put(p1, "a");
    put(p2, "b");
    const char *paths[2] = {p1, p2};
    char *contents[2] = {NULL, NULL};
    assert_shl_ok(shl_poll_files(paths, 2, true, 20, 1000, contents));
    free(contents[0]);
    free(contents[1]);
    assert_false(conf_exists(p1));
    assert_false(conf_exists(p2));
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_operation_helper__poll_file_waits_for_file_and_reads_content),
        cmocka_unit_test(
            test_operation_helper__poll_file_deletes_file_when_delete_true),
        cmocka_unit_test(test_operation_helper__poll_file_uses_deserializer),
        cmocka_unit_test(test_operation_helper__poll_file_times_out),
        cmocka_unit_test(test_operation_helper__poll_until_waits_for_condition),
        cmocka_unit_test(test_operation_helper__poll_until_times_out),
        cmocka_unit_test(
            test_operation_helper__poll_files_waits_for_multiple_files),
        cmocka_unit_test(
            test_poll_files_with_deserializer__poll_files_uses_deserializer_for_each_file),
        cmocka_unit_test(
            test_poll_files_with_deserializer__poll_files_times_out_when_file_missing),
        cmocka_unit_test(
            test_poll_files_with_deserializer__poll_files_deletes_files_when_delete_true),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
