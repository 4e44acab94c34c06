/*
 * test_api_resources.c: registerTempResource / unregisterTempResource
 * through the public API (issue 3): normalisation, duplicates, exact-path
 * removal, refused paths, owner and registration time.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shl_test.h"

static size_t
count_path(const shl_snapshot *s, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < s->resource_count; i++)
        if (strcmp(s->resources[i].path, path) == 0)
            n++;
    return n;
}

struct fx {
    char base[512];
    shl_ledger *l, *l2;
    shl_op *op, *j;
};

static void
fx_open(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    shl_test_base(f->base, sizeof(f->base), "api-res");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.participant_pid = 31337;
    assert_shl_ok(shl_ledger_open(&f->l, f->base, "cli", &o));
    assert_shl_ok(shl_ledger_open(&f->l2, f->base, "bridge", NULL));
    assert_shl_ok(shl_op_create(f->l, NULL, NULL, &f->op));
    assert_shl_ok(shl_op_join(f->l2, shl_op_id(f->op), NULL, &f->j));
}

static void
fx_close(struct fx *f)
{
    assert_segment_clean(shl_ledger_reader(f->l));
    assert_shl_ok(shl_op_leave(f->j, false));
    assert_shl_ok(shl_op_complete(f->op));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(f->l), &info));
    assert_int_equal(info.used_resources, 0);
    assert_segment_clean(shl_ledger_reader(f->l));
    shl_ledger_close(f->l2);
    shl_ledger_close(f->l);
    shl_test_cleanup(f->base);
}

static void
test_api_resources_register_unregister(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_snapshot *s0 = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    int64_t before = shl_test_wall_us();
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/res-one"));
    int64_t after = shl_test_wall_us();
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/res-one");
    assert_int_equal(s->resources[0].owner, 31337); /* participantPid */
    assert_in_range(s->resources[0].registered_at_us, before, after);
    assert_true(s->change_count > s0->change_count);
    assert_false(shl_snapshot_is_empty(s));
    shl_snapshot_free(s);
    shl_snapshot_free(s0);

    /* a joiner's resource carries its own pid */
    assert_shl_ok(shl_op_register_temp_resource(f.j, "/tmp/res-two"));
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 2);
    for (size_t i = 0; i < s->resource_count; i++)
        if (strcmp(s->resources[i].path, "/tmp/res-two") == 0)
            assert_int_equal(s->resources[i].owner, getpid());
    uint64_t cc = s->change_count;
    shl_snapshot_free(s);

    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/res-one"), 1);
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/res-two");
    assert_true(s->change_count > cc);
    cc = s->change_count;
    shl_snapshot_free(s);

    /* unregistering a path that is not there: 0, nothing changes */
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/res-one"), 0);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/res-tw"), 0);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/res-two/x"),
                     0);
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 1);
    assert_int_equal(s->change_count, cc);
    shl_snapshot_free(s);

    /* any participant may unregister any entry (as the original) */
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/res-two"), 1);
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 0);
    assert_true(shl_snapshot_is_empty(s));
    shl_snapshot_free(s);
    fx_close(&f);
}

static void
test_api_resources_normalisation(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/tmp//a/./b/../c/", "/tmp/a/c"},
        {"/tmp/a/c", "/tmp/a/c"},
        {"///x///y//", "/x/y"},
        {"/a/b/../../c/d", "/c/d"},
        {"/../../up/x", "/up/x"},
        {"/a/.hidden/..b/...", "/a/.hidden/..b/..."},
    };
    /* what normalises to "/" or to a top-level directory is refused
     * (issue 12 item 8): crash cleanup deletes registered directories
     * recursively */
    static const char *const root[] = {"/..", "/", "/./.", "/a/b/../../c",
                                       "/../../up"};
    for (size_t i = 0; i < sizeof(root) / sizeof(root[0]); i++)
        assert_int_equal(shl_op_register_temp_resource(f.op, root[i]), -EINVAL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_shl_ok(shl_op_register_temp_resource(f.op, cases[i].in));
        shl_snapshot *s =
            shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
        assert_int_equal(s->resource_count, 1);
        if (strcmp(s->resources[0].path, cases[i].out) != 0)
            fail_msg("register(\"%s\") stored \"%s\", expected \"%s\"",
                     cases[i].in, s->resources[0].path, cases[i].out);
        shl_snapshot_free(s);
        /* unregister normalises too: the raw spelling removes it */
        assert_int_equal(shl_op_unregister_temp_resource(f.op, cases[i].in), 1);
    }
    /* different spellings of one path are one path */
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/a/c"));
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp//a/./b/../c/"));
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/a/c/."), 2);
    fx_close(&f);
}

static void
test_api_resources_duplicates(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/dup"));
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/dup"));
    assert_shl_ok(shl_op_register_temp_resource(f.j, "/tmp/dup"));
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/dup2"));
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/du"));
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/dup/inner"));
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 6);
    assert_int_equal(count_path(s, "/tmp/dup"), 3);
    shl_snapshot_free(s);

    /* every entry with exactly that path goes; the others stay */
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/dup"), 3);
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 3);
    assert_int_equal(count_path(s, "/tmp/dup"), 0);
    assert_int_equal(count_path(s, "/tmp/dup2"), 1);
    assert_int_equal(count_path(s, "/tmp/du"), 1);
    assert_int_equal(count_path(s, "/tmp/dup/inner"), 1);
    shl_snapshot_free(s);

    /* removing only the matching one among several */
    assert_int_equal(shl_op_unregister_temp_resource(f.j, "/tmp/du"), 1);
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 2);
    assert_int_equal(count_path(s, "/tmp/dup2"), 1);
    assert_int_equal(count_path(s, "/tmp/dup/inner"), 1);
    shl_snapshot_free(s);
    fx_close(&f);
}

static void
test_api_resources_only_this_operation(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_op *other = NULL;
    assert_shl_ok(shl_op_create(f.l, NULL, NULL, &other));
    assert_shl_ok(shl_op_register_temp_resource(f.op, "/tmp/shared-name"));
    assert_shl_ok(shl_op_register_temp_resource(other, "/tmp/shared-name"));
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/shared-name"),
                     1);
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(other));
    assert_int_equal(s->resource_count, 1);
    shl_snapshot_free(s);
    assert_int_equal(shl_op_unregister_temp_resource(other, "/tmp/shared-name"),
                     1);
    assert_shl_ok(shl_op_complete(other));
    fx_close(&f);
}

static void
test_api_resources_refused_paths(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    shl_snapshot *s0 = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));

    assert_int_equal(shl_op_register_temp_resource(f.op, "relative/x"),
                     -EINVAL);
    assert_int_equal(shl_op_register_temp_resource(f.op, "./x"), -EINVAL);
    assert_int_equal(shl_op_register_temp_resource(f.op, "~/x"), -EINVAL);
    assert_int_equal(shl_op_register_temp_resource(f.op, ""), -EINVAL);
    assert_int_equal(shl_op_register_temp_resource_n(f.op, "/tmp/x", 0),
                     -EINVAL);
    static const char with_nul[] = "/tmp/a\0b";
    assert_int_equal(
        shl_op_register_temp_resource_n(f.op, with_nul, sizeof(with_nul) - 1),
        -EINVAL);
    static const char trailing_nul[] = "/tmp/a\0";
    assert_int_equal(shl_op_register_temp_resource_n(f.op, trailing_nul,
                                                     sizeof(trailing_nul) - 1),
                     -EINVAL);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "relative"),
                     -EINVAL);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, ""), -EINVAL);

    /* the length form takes exactly len bytes */
    assert_shl_ok(shl_op_register_temp_resource_n(f.op, "/tmp/abcdef", 6));
    shl_snapshot *s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, "/tmp/a");
    shl_snapshot_free(s);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/a"), 1);

    /* SHL_PATH_MAX bytes fit; one more does not */
    char path[SHL_PATH_MAX + 2];
    path[0] = '/';
    memset(path + 1, 'p', SHL_PATH_MAX - 1);
    path[2] = '/'; /* "/p/ppp...": a top-level directory is refused */
    path[SHL_PATH_MAX] = 0;
    assert_int_equal(strlen(path), SHL_PATH_MAX);
    assert_shl_ok(shl_op_register_temp_resource(f.op, path));
    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, 1);
    assert_string_equal(s->resources[0].path, path);
    shl_snapshot_free(s);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, path), 1);
    path[SHL_PATH_MAX] = 'p';
    path[SHL_PATH_MAX + 1] = 0;
    assert_int_equal(shl_op_register_temp_resource(f.op, path), -ENAMETOOLONG);
    assert_int_equal(shl_op_unregister_temp_resource(f.op, path),
                     -ENAMETOOLONG);
    /* many short components that end up too long */
    char deep[1200];
    size_t o = 0;
    while (o + 3 < sizeof(deep) - 1) {
        deep[o++] = '/';
        deep[o++] = 'd';
    }
    deep[o] = 0;
    assert_int_equal(shl_op_register_temp_resource(f.op, deep), -ENAMETOOLONG);
    /* a long spelling that normalises to a short path is fine */
    char dots[1200] = "/tmp";
    while (strlen(dots) + 3 < sizeof(dots) - 8)
        strcat(dots, "/./");
    strcat(dots, "ok");
    assert_true(strlen(dots) > SHL_PATH_MAX);
    assert_shl_ok(shl_op_register_temp_resource(f.op, dots));
    assert_int_equal(shl_op_unregister_temp_resource(f.op, "/tmp/ok"), 1);

    s = shl_test_snap(shl_ledger_reader(f.l), shl_op_id(f.op));
    assert_int_equal(s->resource_count, s0->resource_count);
    shl_snapshot_free(s);
    shl_snapshot_free(s0);
    fx_close(&f);
}

static void
test_api_resources_released_when_failed_then_reclaimed(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "api-res");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli", NULL));
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    char pa[600], pb[600];
    snprintf(pa, sizeof(pa), "%s/keep-a", base);
    snprintf(pb, sizeof(pb), "%s/keep-b", base);
    FILE *fa = fopen(pa, "w"), *fb = fopen(pb, "w");
    assert_non_null(fa);
    assert_non_null(fb);
    fclose(fa);
    fclose(fb);
    assert_shl_ok(shl_op_register_temp_resource(op, pa));
    assert_shl_ok(shl_op_register_temp_resource(op, pb));
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_shl_ok(shl_call_fail(c, "x"));
    /* failed: no new resources */
    assert_int_equal(shl_op_register_temp_resource(op, "/tmp/new"), SHL_ESTATE);
    /* everyone cleans up: this participant's monitor deletes the files it
     * registered and their records */
    struct stat st;
    assert_true(SHL_WAIT_FOR(stat(pa, &st) != 0 && stat(pb, &st) != 0, 5000));
    shl_snapshot *s = NULL;
    assert_true(
        SHL_WAIT_FOR((s = shl_test_snap(shl_ledger_reader(l), shl_op_id(op)))
                                 ->resource_count == 0 ||
                         (shl_snapshot_free(s), s = NULL, false),
                     5000));
    shl_snapshot_free(s);
    /* unregistering still works (nothing left to remove) */
    assert_int_equal(shl_op_unregister_temp_resource(op, pa), 0);
    /* the initiator's last leave reclaims the failed operation and its
     * resource records */
    assert_shl_ok(shl_op_leave(op, false));
    shl_segment_info info;
    assert_shl_ok(shl_reader_info(shl_ledger_reader(l), &info));
    assert_int_equal(info.used_resources, 0);
    assert_int_equal(info.used_operations, 0);
    assert_segment_clean(shl_ledger_reader(l));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_resources_register_unregister),
        cmocka_unit_test(test_api_resources_normalisation),
        cmocka_unit_test(test_api_resources_duplicates),
        cmocka_unit_test(test_api_resources_only_this_operation),
        cmocka_unit_test(test_api_resources_refused_paths),
        cmocka_unit_test(
            test_api_resources_released_when_failed_then_reclaimed),
    };
    return cmocka_run_group_tests_name("api_resources", tests, NULL, NULL);
}
