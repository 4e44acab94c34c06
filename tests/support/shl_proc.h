/*
 * shl_proc.h: scaffolding of the tests that fork (link shl_test_support):
 * memory shared with children, bounded reads from a child's pipe, the
 * teardown that kills children a failed test left behind, and the thread
 * count a fork needs to be safe.
 */
#ifndef SHL_PROC_H
#define SHL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* size zeroed bytes of anonymous memory shared with children forked
 * afterwards (MAP_SHARED | MAP_ANONYMOUS). Fails the test if mmap fails.
 * The caller owns the mapping: munmap(p, size) when done. */
void *shl_test_shared_alloc(size_t size);

/* Read exactly n bytes from fd into buf before deadline_ms (a
 * shl_test_now_ms() value; the caller scales it). Polls in steps of at
 * most 1 s and restarts on EINTR. False on timeout, EOF or a read error. */
bool shl_test_read_by(int fd, void *buf, size_t n, int64_t deadline_ms);

/* For a teardown: SIGKILL and reap every pid > 0 of pids[0..n), setting
 * each to 0 (children a failed test left behind). */
void shl_test_kill_children(pid_t *pids, size_t n);

/* Threads of this process (from /proc/self/status), or -1 if unknown.
 * A child forked while it is > 1 may only call async-signal-safe
 * functions. */
int shl_test_thread_count(void);

#endif /* SHL_PROC_H */
