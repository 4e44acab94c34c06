/*
 * test_ids.c: id validation and the shapes of generated ids and times
 * (reference/original-behaviour.md §1.2, the Dart test's accepted and
 * rejected sets).
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shl_test.h"

#include "internal.h"

static void
assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0)
        fail_msg("bad pattern %s", pattern);
    rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("\"%s\" does not match %s", s, pattern);
}

static void
assert_no_match(const char *s, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    if (rc == 0)
        fail_msg("\"%s\" unexpectedly matches %s", s, pattern);
}

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* ---- operation ids ---- */

static const char *const accepted[] = {
    "20260125T12:30:45.123-cli-abcd1234",
    "simple_test",
    "test-with-dashes",
    "test.with.dots",
    "TEST_123:456",
};

static const char *const rejected[] = {
    "../../../etc/passwd",
    "/absolute/path",
    "",
    "test<script>",
    "a..b",
    "a/b",
    "with space",
    "tab\tid",
    "new\nline",
    "semi;colon",
    "quote\"",
    "back\\slash",
    "caf\xc3\xa9", /* non-ASCII */
};

static void
test_ids_operation_id_validation(void **state)
{
    (void)state;
    for (size_t i = 0; i < SHL__ARRAY_LEN(accepted); i++)
        if (shl_validate_operation_id(accepted[i]) != 0)
            fail_msg("operation id \"%s\" refused", accepted[i]);
    for (size_t i = 0; i < SHL__ARRAY_LEN(rejected); i++) {
        int rc = shl_validate_operation_id(rejected[i]);
        if (rc != SHL_EBADID)
            fail_msg("operation id \"%s\" -> %d, want SHL_EBADID",
                     rejected[i], rc);
        assert_true(strlen(shl_errmsg()) > 0);
    }
    assert_int_equal(shl_validate_operation_id(NULL), SHL_EBADID);

    char *max = repeat('x', SHL_OPERATION_ID_MAX);
    char *over = repeat('x', SHL_OPERATION_ID_MAX + 1);
    assert_int_equal(strlen(over), 128);
    assert_int_equal(shl_validate_operation_id(max), 0);
    assert_int_equal(shl_validate_operation_id(over), SHL_EBADID);
    free(max);
    free(over);
}

static void
test_ids_participant_id_validation(void **state)
{
    (void)state;
    for (size_t i = 0; i < SHL__ARRAY_LEN(accepted); i++)
        assert_int_equal(shl_validate_participant_id(accepted[i]), 0);
    for (size_t i = 0; i < SHL__ARRAY_LEN(rejected); i++)
        if (shl_validate_participant_id(rejected[i]) != SHL_EBADID)
            fail_msg("participant id \"%s\" accepted", rejected[i]);
    assert_int_equal(shl_validate_participant_id(NULL), SHL_EBADID);

    char *ok = repeat('p', SHL_PARTICIPANT_ID_MAX);
    char *over = repeat('p', SHL_PARTICIPANT_ID_MAX + 1);
    assert_int_equal(strlen(ok), 63);
    assert_int_equal(shl_validate_participant_id(ok), 0);
    assert_int_equal(shl_validate_participant_id(over), SHL_EBADID);

    /* the ledger applies the same rule, before creating anything */
    char base[512];
    shl_test_base(base, sizeof(base), "ids-part");
    shl_ledger *l = NULL;
    assert_int_equal(shl_ledger_open(&l, base, over, NULL), SHL_EBADID);
    assert_int_equal(shl_ledger_open(&l, base, "../evil", NULL), SHL_EBADID);
    assert_int_equal(shl_ledger_open(&l, base, "", NULL), SHL_EBADID);
    assert_null(l);
    assert_int_equal(access(base, F_OK), -1);
    assert_shl_ok(shl_ledger_open(&l, base, ok, NULL));
    assert_string_equal(shl_ledger_participant_id(l), ok);
    /* the longest participant id still yields valid operation and call ids */
    shl_op *op = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    assert_int_equal(shl_validate_operation_id(shl_op_id(op)), 0);
    shl_call *c = NULL;
    assert_shl_ok(shl_call_start(op, NULL, &c));
    assert_true(strstr(shl_call_id(c), ok) != NULL);
    assert_shl_ok(shl_call_end(c, NULL));
    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
    free(ok);
    free(over);
}

/* ---- generated ids ---- */

static void
test_ids_generated_shapes(void **state)
{
    (void)state;
    char base[512], pat[256];
    shl_test_base(base, sizeof(base), "ids-gen");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "cli-7.x:y", NULL));
    shl_op *op = NULL;
    time_t before = time(NULL);
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op));
    time_t after = time(NULL);
    const char *id = shl_op_id(op);
    /* ^\d{8}T\d{2}:\d{2}:\d{2}\.\d{3}-<participant>-[0-9a-f]{8}$ */
    assert_matches(id, "^[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}-"
                       "cli-7\\.x:y-[0-9a-f]{8}$");
    assert_int_equal(shl_validate_operation_id(id), 0);
    /* the date part is today's local date (either side of the create) */
    char d0[16], d1[16];
    struct tm tm;
    localtime_r(&before, &tm);
    strftime(d0, sizeof(d0), "%Y%m%d", &tm);
    localtime_r(&after, &tm);
    strftime(d1, sizeof(d1), "%Y%m%d", &tm);
    if (strncmp(id, d0, 8) != 0 && strncmp(id, d1, 8) != 0)
        fail_msg("operation id %s does not start with today (%s)", id, d0);

    /* call ids: call_<participant>_<n>_<4 hex>, n counting from 1 */
    snprintf(pat, sizeof(pat), "^call_cli-7\\.x:y_[0-9]+_[0-9a-f]{4}$");
    shl_call *c[3];
    for (int i = 0; i < 3; i++) {
        assert_shl_ok(shl_call_start(op, NULL, &c[i]));
        assert_matches(shl_call_id(c[i]), pat);
        char want[64];
        snprintf(want, sizeof(want), "call_cli-7.x:y_%d_", i + 1);
        assert_true(strncmp(shl_call_id(c[i]), want, strlen(want)) == 0);
        assert_int_equal(shl_validate_operation_id(shl_call_id(c[i])), 0);
    }
    assert_string_not_equal(shl_call_id(c[0]), shl_call_id(c[1]));
    for (int i = 0; i < 3; i++)
        assert_shl_ok(shl_call_end(c[i], NULL));

    /* ids are unique across operations created in the same millisecond */
    shl_op *op2 = NULL;
    assert_shl_ok(shl_op_create(l, NULL, NULL, &op2));
    assert_string_not_equal(shl_op_id(op), shl_op_id(op2));
    assert_shl_ok(shl_op_complete(op2));

    /* elapsedFormatted: SSS.mmm */
    char buf[64];
    int n = shl_op_elapsed_formatted(op, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(buf));
    assert_matches(buf, "^[0-9]{3}\\.[0-9]{3}$");
    assert_int_equal(shl_op_elapsed_formatted(op, buf, 4), -ENOSPC);

    /* startTimeIso: microseconds and a +-HH:MM offset */
    n = shl_op_start_time_iso(op, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(buf));
    assert_matches(buf, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                        "[0-9]{2}\\.[0-9]{6}[+-][0-9]{2}:[0-9]{2}$");
    assert_int_equal(shl_op_start_time_iso(op, buf, 10), -ENOSPC);
    assert_int_equal(shl_op_start_time_ms(op), shl_op_start_time_us(op) / 1000);

    assert_shl_ok(shl_op_complete(op));
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

static void
test_ids_join_validates(void **state)
{
    (void)state;
    char base[512];
    shl_test_base(base, sizeof(base), "ids-join");
    shl_ledger *l = NULL;
    assert_shl_ok(shl_ledger_open(&l, base, "joiner", NULL));
    shl_op *op = NULL;
    for (size_t i = 0; i < SHL__ARRAY_LEN(rejected); i++) {
        assert_int_equal(shl_op_join(l, rejected[i], NULL, &op), SHL_EBADID);
        assert_null(op);
    }
    char *over = repeat('x', SHL_OPERATION_ID_MAX + 1);
    assert_int_equal(shl_op_join(l, over, NULL, &op), SHL_EBADID);
    free(over);
    assert_int_equal(shl_op_join(l, NULL, NULL, &op), -EINVAL);
    for (size_t i = 0; i < SHL__ARRAY_LEN(accepted); i++) {
        assert_int_equal(shl_op_join(l, accepted[i], NULL, &op),
                         SHL_ENOTFOUND);
        assert_null(op);
    }
    /* a snapshot request is validated the same way */
    shl_snapshot *sn = NULL;
    assert_int_equal(
        shl_reader_snapshot(shl_ledger_reader(l), "../x", &sn), SHL_EBADID);
    assert_int_equal(
        shl_reader_snapshot(shl_ledger_reader(l), "simple_test", &sn),
        SHL_ENOTFOUND);
    assert_null(sn);
    shl_ledger_close(l);
    shl_test_cleanup(base);
}

/* ---- time formats, with offsets that are not whole hours ---- */

static void
test_ids_time_formats(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(shl__format_elapsed(0, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "000.000");
    shl__format_elapsed(1234567890, buf, sizeof(buf));
    assert_string_equal(buf, "001.234");
    shl__format_elapsed(1234567890123ll, buf, sizeof(buf));
    assert_string_equal(buf, "1234.567");
    assert_matches(buf, "^[0-9]{3,}\\.[0-9]{3}$");
    shl__format_elapsed(-5, buf, sizeof(buf));
    assert_string_equal(buf, "000.000");

    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    static const struct {
        const char *tz;
        const char *suffix;
    } zones[] = {
        {"UTC0", "+00:00"},
        {"IST-5:30", "+05:30"},   /* POSIX sign is inverted */
        {"NST+3:30", "-03:30"},
        {"XYZ+11", "-11:00"},
    };
    /* 2026-01-25 12:30:45.000123 UTC */
    const int64_t t = 1769344245ll * 1000000 + 123;
    for (size_t i = 0; i < SHL__ARRAY_LEN(zones); i++) {
        setenv("TZ", zones[i].tz, 1);
        tzset();
        int n = shl__format_iso(t, buf, sizeof(buf));
        assert_int_equal(n, 32);
        assert_matches(buf, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                            "[0-9]{2}\\.[0-9]{6}[+-][0-9]{2}:[0-9]{2}$");
        if (strcmp(buf + n - 6, zones[i].suffix) != 0)
            fail_msg("TZ=%s: %s, want offset %s", zones[i].tz, buf,
                     zones[i].suffix);
    }
    setenv("TZ", "UTC0", 1);
    tzset();
    shl__format_iso(t, buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-25T12:30:45.000123+00:00");
    setenv("TZ", "IST-5:30", 1);
    tzset();
    shl__format_iso(t, buf, sizeof(buf));
    assert_string_equal(buf, "2026-01-25T18:00:45.000123+05:30");
    /* before the epoch: microseconds stay positive */
    setenv("TZ", "UTC0", 1);
    tzset();
    shl__format_iso(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999999+00:00");
    assert_no_match(buf, "-0000");

    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_operation_id_validation),
        cmocka_unit_test(test_ids_participant_id_validation),
        cmocka_unit_test(test_ids_generated_shapes),
        cmocka_unit_test(test_ids_join_validates),
        cmocka_unit_test(test_ids_time_formats),
    };
    return cmocka_run_group_tests_name("ids", tests, NULL, NULL);
}
