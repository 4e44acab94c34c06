/*
 * json.h: the operation JSON (the original's {opId}.operation.json) and the
 * small file primitives every file writer of the library shares.
 *
 * Serialisation goes through jansson (shl_snapshot_to_json and
 * shl_snapshot_from_json are public; see shmledger.h). The helpers below are
 * internal: timestamp parsing, and an atomic whole-file write (temp file in
 * the same directory, rename over the target, fsync on request).
 */
#ifndef SHL_JSON_H
#define SHL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmledger/shmledger.h"

/*
 * Parse an ISO 8601 timestamp as Dart's DateTime.parse accepts what the
 * original writes: "YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}][Z|+HH:MM|+HHMM|+HH]".
 * Without a zone the time is local (as Dart reads its own output); with one
 * it is converted from that offset. Fraction digits beyond microseconds are
 * dropped. Returns 0 and *out_us (wall microseconds since the epoch), or
 * -EINVAL.
 */
int shl__parse_iso(const char *text, int64_t *out_us);

/*
 * Write `len` bytes to `path` atomically: write "<path>.tmp.<pid>.<n>" in
 * the same directory with mode 0600, then rename() it over `path`. On any
 * failure the temp file is removed and the target is untouched.
 * Returns 0 or -errno. Context: any thread.
 */
int shl__write_file_atomic(const char *path, const char *data, size_t len);

/* The same, with durable: fsync the temp file before the rename (the
 * caller fsyncs the directory once it has renamed everything). */
int shl__write_file_atomic_ex(const char *path, const char *data, size_t len,
                              bool durable);

/* fsync(fd) through the seam below, retrying on EINTR. 0 or -errno. */
int shl__fsync_fd(int fd);
/* Open `path` (a directory if dir; never following a final symlink) and
 * fsync it. 0 or -errno. */
int shl__fsync_path(const char *path, bool dir);

/* The fsync(2) of the library's durable writes (test seam, as below). */
extern int (*_Atomic shl__sys_fsync)(int fd);

/*
 * Write all of `len` bytes to `fd` with one write() where the kernel
 * allows (O_APPEND files get whole lines), retrying on EINTR and short
 * writes. Returns 0 or -errno.
 */
int shl__write_all(int fd, const char *data, size_t len);

/* The write(2) every file writer of the library calls (test seam: a test
 * may point it at a function that fails with ENOSPC, then restore it). */
extern ssize_t (*_Atomic shl__sys_write)(int fd, const void *buf, size_t len);

#endif /* SHL_JSON_H */
