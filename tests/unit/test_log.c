/* test_log.c: log line formats (reference §1.8), the log files, the
 * on_log_line callback, the call/operation event lines and write errors. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/events.h"
#include "files/json.h"
#include "files/snapshotter.h"
#include "shl_test.h"

#include "shl_text.h"

#define ISO_RE                                                                 \
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}"        \
    "[+-][0-9]{2}:[0-9]{2}"

/* on_log_line runs on the caller's thread and on the snapshotter's (a
 * write error it meets): the lines are kept under a mutex. */
struct lines {
    pthread_mutex_t mu;
    int n;
    char *v[256];
};

static void
lines_free(struct lines *ls)
{
    pthread_mutex_lock(&ls->mu);
    for (int i = 0; i < ls->n; i++)
        free(ls->v[i]);
    ls->n = 0;
    pthread_mutex_unlock(&ls->mu);
}

static void
on_line(const char *line, void *user)
{
    struct lines *ls = user;
    pthread_mutex_lock(&ls->mu);
    if (ls->n < 256)
        ls->v[ls->n++] = strdup(line);
    pthread_mutex_unlock(&ls->mu);
}

static int
lines_count(struct lines *ls)
{
    pthread_mutex_lock(&ls->mu);
    int n = ls->n;
    pthread_mutex_unlock(&ls->mu);
    return n;
}

static bool
lines_have(struct lines *ls, const char *needle)
{
    bool found = false;
    pthread_mutex_lock(&ls->mu);
    for (int i = 0; i < ls->n && !found; i++)
        found = strstr(ls->v[i], needle) != NULL;
    pthread_mutex_unlock(&ls->mu);
    return found;
}

static char *
op_file(shl_ledger *l, shl_op *op, const char *suffix)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/%s%s", shl_ledger_base_path(l),
             shl_op_id(op), suffix);
    return path;
}

/* Split text into lines (modifies text). */
static int
split(char *text, char **out, int cap)
{
    int n = 0;
    for (char *p = text; *p && n < cap;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line is terminated */
        *nl = 0;
        out[n++] = p;
        p = nl + 1;
    }
    return n;
}

static void
assert_match(const char *text, const char *re)
{
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&rx, text, 0, NULL, 0);
    regfree(&rx);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", text, re);
}

struct fixture {
    char base[512];
    shl_ledger *l;
    shl_op *op;
    struct lines cb;
};

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    pthread_mutex_init(&fx->cb.mu, NULL);
    shl_test_base(fx->base, sizeof(fx->base), "log");
    shl_ledger_opts o;
    shl_ledger_opts_init(&o);
    o.callbacks.on_log_line = on_line;
    o.callbacks.user = &fx->cb;
    assert_shl_ok(shl_ledger_open(&fx->l, fx->base, "test", &o));
    assert_shl_ok(shl_op_create(fx->l, "log test", NULL, &fx->op));
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;
    if (fx->op)
        (void)shl_op_leave(fx->op, true);
    shl_ledger_close(fx->l);
    lines_free(&fx->cb);
    shl_test_cleanup(fx->base);
    free(fx);
    return 0;
}

static void
test_log_level_names(void **state)
{
    (void)state;
    assert_string_equal(shl_log_level_name(SHL_LOG_DEBUG), "DEBUG");
    assert_string_equal(shl_log_level_name(SHL_LOG_INFO), "INFO");
    assert_string_equal(shl_log_level_name(SHL_LOG_WARNING), "WARNING");
    assert_string_equal(shl_log_level_name(SHL_LOG_ERROR), "ERROR");
    assert_string_equal(shl_log_level_name((shl_log_level)9), "UNKNOWN");
}

static void
test_log_create_makes_empty_files(void **state)
{
    struct fixture *fx = *state;
    struct stat st;
    assert_int_equal(stat(op_file(fx->l, fx->op, ".operation.log"), &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(
        stat(op_file(fx->l, fx->op, ".operation.debug.log"), &st), 0);
    assert_int_equal(st.st_size, 0);
    /* no trail yet (created lazily, as the original's) */
    assert_int_not_equal(stat(op_file(fx->l, fx->op, "_trail.jsonl"), &st),
                         0);
}

/* The original's test: the log appends three lines. */
static void
test_log_three_levels(void **state)
{
    struct fixture *fx = *state;
    assert_shl_ok(shl_op_log(fx->op, SHL_LOG_INFO, "Info message"));
    assert_shl_ok(shl_op_log(fx->op, SHL_LOG_WARNING, "Warning message"));
    assert_shl_ok(shl_op_log(fx->op, SHL_LOG_ERROR, "Error message"));
    assert_shl_ok(shl__snapshotter_flush(fx->l, 5000));
    char *text = shl_test_slurp(op_file(fx->l, fx->op, ".operation.log"), NULL);
    assert_non_null(text);
    char *ln[16];
    int n = split(text, ln, 16);
    assert_int_equal(n, 3);
    assert_match(ln[0], "^" ISO_RE " \\[INFO\\] Info message$");
    assert_match(ln[1], "^" ISO_RE " \\[WARNING\\] Warning message$");
    assert_match(ln[2], "^" ISO_RE " \\[ERROR\\] Error message$");
    /* the callback saw exactly the file's lines */
    assert_int_equal(lines_count(&fx->cb), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(fx->cb.v[i], ln[i]);
    free(text);
    assert_int_equal(shl_op_log(fx->op, (shl_log_level)7, "x"), -EINVAL);
    assert_int_equal(shl_op_log(fx->op, SHL_LOG_INFO, NULL), -EINVAL);
    assert_int_equal(shl_op_log(NULL, SHL_LOG_INFO, "x"), -EINVAL);
}

static void
test_log_debug_not_mirrored(void **state)
{
    struct fixture *fx = *state;
    assert_shl_ok(shl_op_debug_log(fx->op, "debug details"));
    assert_shl_ok(shl__snapshotter_flush(fx->l, 5000));
    char *dbg =
        shl_test_slurp(op_file(fx->l, fx->op, ".operation.debug.log"), NULL);
    assert_non_null(dbg);
    char *ln[4];
    assert_int_equal(split(dbg, ln, 4), 1);
    assert_match(ln[0], "^" ISO_RE " debug details$");
    free(dbg);
    char *log = shl_test_slurp(op_file(fx->l, fx->op, ".operation.log"), NULL);
    assert_string_equal(log, "");
    free(log);
    assert_int_equal(lines_count(&fx->cb), 0);
}

static void
test_log_message_depth(void **state)
{
    struct fixture *fx = *state;
    assert_shl_ok(shl_op_log_message(fx->op, 0, "top"));
    assert_shl_ok(shl_op_log_message(fx->op, 1, "nested text"));
    assert_int_equal(shl_op_log_message(fx->op, -1, "x"), -EINVAL);
    assert_shl_ok(shl__snapshotter_flush(fx->l, 5000));
    char *text = shl_test_slurp(op_file(fx->l, fx->op, ".operation.log"), NULL);
    char *ln[4];
    assert_int_equal(split(text, ln, 4), 2);
    assert_match(ln[0], "^" ISO_RE " \\[INFO\\] [0-9]{3}\\.[0-9]{3} \\| "
                        "\\[test\\] top$");
    assert_match(ln[1], "^" ISO_RE " \\[INFO\\] [0-9]{3}\\.[0-9]{3} \\| "
                        "    \\[test\\] nested text$");
    free(text);
}

static void
test_log_call_events(void **state)
{
    struct fixture *fx = *state;
    shl_call *a = NULL, *b = NULL;
    assert_shl_ok(shl_call_start(fx->op, NULL, &a));
    assert_shl_ok(shl_call_end(a, NULL));
    shl_call_opts co;
    shl_call_opts_init(&co);
    assert_shl_ok(shl_call_start(fx->op, &co, &b));
    assert_shl_ok(shl_call_fail(b, "boom: it broke"));
    assert_shl_ok(shl__snapshotter_flush(fx->l, 5000));
    /* the failed operation was archived: its log moved to backup/ */
    char path[1024];
    snprintf(path, sizeof(path), "%s/backup/%s/operation.log", fx->base,
             shl_op_id(fx->op));
    char *text = shl_test_slurp(path, NULL);
    assert_non_null(text);
    char *ln[16];
    int n = split(text, ln, 16);
    assert_int_equal(n, 5);
    char re[512];
    snprintf(re, sizeof(re),
             "^" ISO_RE " \\[INFO\\] CALL_STARTED callId=%s participant=test$",
             shl_call_id(a));
    assert_match(ln[0], re);
    snprintf(re, sizeof(re),
             "^" ISO_RE " \\[INFO\\] CALL_ENDED callId=%s duration=[0-9]+ms$",
             shl_call_id(a));
    assert_match(ln[1], re);
    snprintf(re, sizeof(re),
             "^" ISO_RE " \\[INFO\\] CALL_STARTED callId=%s participant=test$",
             shl_call_id(b));
    assert_match(ln[2], re);
    snprintf(re, sizeof(re),
             "^" ISO_RE " \\[ERROR\\] CALL_FAILED callId=%s "
             "duration=[0-9]+ms error=boom: it broke$",
             shl_call_id(b));
    assert_match(ln[3], re);
    assert_match(ln[4],
                 "^" ISO_RE " \\[INFO\\] OPERATION_STATE_CHANGED state=failed$");
    free(text);
    assert_int_equal(lines_count(&fx->cb), 5);
}

static _Atomic int fail_writes;

static ssize_t
enospc_write(int fd, const void *buf, size_t len)
{
    if (atomic_load(&fail_writes)) {
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, len);
}

static void
test_log_write_error_reported(void **state)
{
    struct fixture *fx = *state;
    atomic_store(&fail_writes, 1);
    shl__sys_write = enospc_write;
    int rc = shl_op_log(fx->op, SHL_LOG_INFO, "lost?");
    /* direct writes report -ENOSPC; with the ring the line is queued */
    assert_true(rc == 0 || rc == -ENOSPC);
    (void)shl__snapshotter_flush(fx->l, 200);
    bool reported = lines_have(&fx->cb, "No space left on device");
    if (rc == -ENOSPC)
        assert_true(reported);
    atomic_store(&fail_writes, 0);
    shl__sys_write = write;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_level_names),
        cmocka_unit_test_setup_teardown(test_log_create_makes_empty_files,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_three_levels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_debug_not_mirrored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_message_depth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_call_events, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_write_error_reported, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
