/*
 * resources.h: deleting registered temp resources (resources.c).
 */
#ifndef SHL_CRASH_RESOURCES_H
#define SHL_CRASH_RESOURCES_H

#include "objects.h"

/* Delete a registered temp resource: a file, or a directory with its
 * contents, never following a link. Failures are reported through the
 * ledger's on_log_line; nothing is returned. Call without any lock. */
void shl__delete_temp_path(shl_ledger *l, const char *path);

/* Delete the files of the temp-resource records of operation (op_idx,
 * op_gen) (every operation when op_idx is UINT32_MAX) registered by
 * (slot, slot_gen) or by anyone (any_owner), THEN free those records:
 * lists them under the structure lock, deletes after unlocking, frees
 * under the lock again. A cleaner killed in between leaves the records
 * for the next one (deleting twice is harmless): never a file without a
 * record naming it. Returns 0 or a lock error. */
int shl__res_delete_then_free(shl_ledger *l, uint32_t op_idx, uint64_t op_gen,
                              uint32_t slot, uint64_t slot_gen,
                              bool any_owner);

/* The same, all under the structure lock the caller holds: list, delete,
 * free. For the paths that must free the records before they unlock (an
 * operation record freed with them); the files are normally gone already
 * (shl__res_delete_then_free ran before), so this costs a failed lookup
 * per record. A kill anywhere leaves either the records or no file. */
void shl__res_delete_free_locked(shl_ledger *l, uint32_t op_idx,
                                 uint64_t op_gen, uint32_t slot,
                                 uint64_t slot_gen, bool any_owner);

/* May `norm` (an absolute, lexically normalised path) be a temp resource?
 * Refused: "/", the ledger's base directory and its ancestors (lexically
 * and after resolving the base's links). 0 or -EINVAL with shl_errmsg.
 * Used when registering and again before deleting (the path is read back
 * from shared memory, which anyone of the user could have written). */
int shl__temp_path_check(shl_ledger *l, const char *norm);

#endif /* SHL_CRASH_RESOURCES_H */
