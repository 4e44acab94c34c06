/*
 * reader.h: consistent reads of the segment (reader.c). The reader API
 * (shl_reader_*, shl_snapshot_*) is public, in shmledger.h.
 */
#ifndef SHL_SHM_READER_H
#define SHL_SHM_READER_H

#include "objects.h"

/* A deep copy of a snapshot (NULL on allocation failure). */
shl_snapshot *shl__snapshot_dup(const shl_snapshot *s);

#endif /* SHL_SHM_READER_H */
