/*
 * reader.h: consistent reads of the segment (reader.c). The reader API
 * (shl_reader_*, shl_snapshot_*) is public, in shmledger.h.
 */
#ifndef SHL_SHM_READER_H
#define SHL_SHM_READER_H

#include "objects.h"

/* A deep copy of a snapshot (NULL on allocation failure). */
shl_snapshot *shl__snapshot_dup(const shl_snapshot *s);

/* Is participant `slot` alive? The kernel's word (its liveness lock);
 * the reader's own ledger's slot always is. Lock-free. */
bool shl__reader_part_alive(shl_reader *r, uint32_t slot);

#endif /* SHL_SHM_READER_H */
