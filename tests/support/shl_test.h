/*
 * shl_test.h: helpers shared by the tests (link shl_test_support).
 *
 * - shl_test_base(): a unique base directory per test (under
 *   $SHL_TEST_TMPDIR), so each test has its own segment;
 *   shl_test_cleanup() unlinks the segment and removes the directory.
 * - SHL_WAIT_FOR(cond, ms): poll with a deadline (scaled by
 *   $SHL_TEST_TIMEOUT_MULTIPLIER), never a bare sleep; evaluates to true if
 *   cond became true in time.
 * - fork helpers: assert_child_exited(), assert_child_signaled().
 * - shl_test_snap(): a snapshot that must succeed; shl_test_wall_us().
 * Files and regular expressions: shl_text.h; fork scaffolding: shl_proc.h.
 */
#ifndef SHL_TEST_H
#define SHL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "shmledger/shmledger.h"

/* Fill buf with a fresh, not yet existing base path; returns buf. */
char *shl_test_base(char *buf, size_t cap, const char *tag);
/* Unlink the segment of base and remove the directory tree. */
void shl_test_cleanup(const char *base);
/* Deadline scaling factor from SHL_TEST_TIMEOUT_MULTIPLIER (>= 1). */
int shl_test_multiplier(void);
int64_t shl_test_now_ms(void);
void shl_test_pause_ms(int ms); /* for poll loops only */
/* Wall clock (CLOCK_REALTIME) in microseconds since the epoch, the unit of
 * the library's timestamps (start_time_us...). */
int64_t shl_test_wall_us(void);

#define SHL_WAIT_FOR(cond, ms)                                                 \
    __extension__({                                                            \
        int64_t _dl = shl_test_now_ms() + (int64_t)(ms)*shl_test_multiplier(); \
        bool _ok = false;                                                      \
        for (;;) {                                                             \
            if (cond) {                                                        \
                _ok = true;                                                    \
                break;                                                         \
            }                                                                  \
            if (shl_test_now_ms() > _dl)                                       \
                break;                                                         \
            shl_test_pause_ms(1);                                              \
        }                                                                      \
        _ok;                                                                   \
    })

/* Wait for pid and assert it exited with code / was killed by sig. */
void shl_assert_child_exited(pid_t pid, int code, const char *file, int line);
void shl_assert_child_signaled(pid_t pid, int sig, const char *file,
                               int line);
#define assert_child_exited(pid, code)                                         \
    shl_assert_child_exited((pid), (code), __FILE__, __LINE__)
#define assert_child_signaled(pid, sig)                                        \
    shl_assert_child_signaled((pid), (sig), __FILE__, __LINE__)

/* Assert rc == 0, printing shl_strerror and shl_errmsg otherwise. */
#define assert_shl_ok(expr)                                                    \
    do {                                                                       \
        int _rc = (expr);                                                      \
        if (_rc != 0)                                                          \
            fail_msg("%s -> %d (%s): %s", #expr, _rc, shl_strerror(_rc),       \
                     shl_errmsg());                                            \
    } while (0)

/* Run the invariant checker on the reader and fail with its report. */
void shl_assert_clean(shl_reader *r, const char *file, int line);
#define assert_segment_clean(r) shl_assert_clean((r), __FILE__, __LINE__)

/* Operations listed in l's segment right now (shl_reader_list), or -1
 * when the list failed. */
long shl_test_list_count(shl_ledger *l);

/* Snapshot of operation id through reader r; fails the test at the
 * caller's file:line (with shl_strerror and shl_errmsg) when
 * shl_reader_snapshot returns non-zero. The caller frees the result with
 * shl_snapshot_free(). */
shl_snapshot *shl_test_snap_at(shl_reader *r, const char *id, const char *file,
                               int line);
#define shl_test_snap(r, id) shl_test_snap_at((r), (id), __FILE__, __LINE__)

/* In a forked child: exit 0 if rc == 0 else print and exit 1. */
#define CHILD_CHECK(expr)                                                      \
    do {                                                                       \
        int _rc = (expr);                                                      \
        if (_rc < 0) {                                                         \
            fprintf(stderr, "child %d: %s -> %d (%s): %s\n", (int)getpid(),    \
                    #expr, _rc, shl_strerror(_rc), shl_errmsg());              \
            _exit(1);                                                          \
        }                                                                      \
    } while (0)

#endif /* SHL_TEST_H */
