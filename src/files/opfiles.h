/*
 * opfiles.h: an operation's files ({opId}.operation.log, .debug.log,
 * _trail.jsonl, render.h): where a line goes when it is written (beside the
 * operation, or into its archive), appending whole lines, a producer's
 * direct writes, and the reports of file errors. render.h has the lines'
 * text; this module writes them.
 */
#ifndef SHL_FILES_OPFILES_H
#define SHL_FILES_OPFILES_H

#include <stddef.h>

#include "files/render.h"
#include "objects.h"

/* Path of file f of operation op_id under base. Returns length or
 * -ENAMETOOLONG. */
int shl__op_file_path(const char *base, const char *op_id, enum shl__file f,
                      char *buf, size_t cap);

/* Open file f of op_id for appending (O_APPEND, 0600), for a writer of its
 * lines, deciding at write time where the line belongs:
 *   - the file beside the operation ({base}/{opId}...) when it exists;
 *   - else, when the operation was archived (backup/{opId}/ exists), its
 *     counterpart inside the archive folder (operation.log,
 *     operation.debug.log, trail.jsonl): lines posted after the archive
 *     (a member leaving after the failure, a CALL_ENDED racing it) go into
 *     the archive and nothing is recreated beside it;
 *   - else the file beside is created; if the archive folder appeared
 *     meanwhile, that new file is removed again and the archive's is used.
 *     A new trail file is reported through l's on_backup_created (l may be
 *     NULL).
 * Opened read-write: the drainer reads a file's tail (journal.c).
 * Returns the descriptor or -errno. */
int shl__op_file_open_append(shl_ledger *l, const char *base,
                             const char *op_id, enum shl__file f);

/* Append len bytes (whole lines) to file f of op_id: open as
 * shl__op_file_open_append, one write, close. Returns 0 or -errno. */
int shl__op_file_append(const char *base, const char *op_id,
                        enum shl__file f, const char *data, size_t len);
/* The same for ledger l (its on_backup_created hears of a new trail). */
int shl__op_file_append_l(shl_ledger *l, const char *base, const char *op_id,
                          enum shl__file f, const char *data, size_t len);

/* Write the event to its files directly (the producer's own path: no ring,
 * or the ring refused it). Errors are counted and reported through
 * on_log_line. Returns 0 or the first -errno. */
int shl__event_write_direct(shl_ledger *l, const struct shl__event *ev);

/* The same, appending each rendered line through `append` (ctx passed
 * back) instead of opening the file; NULL appends with
 * shl__op_file_append. */
typedef int (*shl__append_fn)(void *ctx, shl_ledger *l, const char *op_id,
                              enum shl__file f, const char *data, size_t len);
int shl__event_write_via(shl_ledger *l, const struct shl__event *ev,
                         shl__append_fn append, void *ctx);

/* Fire on_log_line for the event (if the ledger has the callback and the
 * event is a log line: not DEBUG or TRAIL). Runs on the calling thread. */
void shl__event_notify(shl_ledger *l, const struct shl__event *ev);

/* Count a file write error (the segment's ev_file_errors counter). */
void shl__count_file_error(shl_ledger *l);

/* Report a file error: a line to on_log_line and the write-error counter.
 * `what` names the operation ("append", "archive"...). */
void shl__file_error(shl_ledger *l, const char *what, const char *path,
                     int err);

#endif /* SHL_FILES_OPFILES_H */
