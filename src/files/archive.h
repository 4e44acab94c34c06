/*
 * archive.h: backup/{opId}/ folders and their rotation (maxBackups).
 *
 * An operation is archived once, when it reaches completed (shl_op_complete)
 * or failed (call fail, crash cleanup):
 *   backup/{opId}/operation.json      the snapshot, state completed/failed,
 *                                     frames and resources as they were
 *   backup/{opId}/operation.log       moved from {opId}.operation.log
 *   backup/{opId}/operation.debug.log moved from {opId}.operation.debug.log
 *   backup/{opId}/trail.jsonl         moved from {opId}_trail.jsonl
 * then on_backup_created(folder) fires and the oldest folders beyond
 * max_backups are deleted (folder count, names ascending, as the original;
 * never following symlinks). Write errors are reported through on_log_line
 * and the error counter and returned; they never crash the caller.
 */
#ifndef SHL_ARCHIVE_H
#define SHL_ARCHIVE_H

#include "objects.h"

/*
 * Archive operation (op_idx, op_gen) now: snapshot it (lock-free) and write
 * the folder. Call after its state is terminal and before its frames and
 * record are released, so the archive shows them. Does file I/O: never call
 * with the structure lock held. Returns 0 or the first error.
 */
int shl__archive_operation(shl_ledger *l, uint32_t op_idx, uint64_t op_gen);

/*
 * The two halves of shl__archive_operation for complete(), which frees the
 * resource records under the structure lock: capture the snapshot while
 * holding it (memory only), write after unlocking. capture returns NULL on
 * failure (reported); write accepts NULL (nothing to archive), frees snap,
 * and returns 0, or SHL_EIO (with shl_errmsg naming the first failed
 * file) when the archive is not whole on disk.
 */
shl_snapshot *shl__archive_capture(shl_ledger *l, uint32_t op_idx,
                                   uint64_t op_gen);
int shl__archive_write(shl_ledger *l, shl_snapshot *snap);

/* Delete the oldest folders of backup/ beyond l->opts.max_backups. Returns
 * the number deleted, or -errno if backup/ cannot be listed. */
int shl__backup_rotate(shl_ledger *l);

#endif /* SHL_ARCHIVE_H */
