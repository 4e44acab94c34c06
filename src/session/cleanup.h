/*
 * cleanup.h: self-cleanup of a failing operation (cleanup.c).
 */
#ifndef SHL_SESSION_CLEANUP_H
#define SHL_SESSION_CLEANUP_H

#include <stddef.h>

#include "objects.h"

/* Run this ledger's self-cleanup for operation lop: on_cleanup of every
 * pending call of the given sessions that belong to lop (once per
 * session), frames cleanedUp, our temp resources deleted (once per lop). */
void shl__session_self_cleanup(shl_ledger *l, struct shl__lop *lop,
                               shl_op **sessions, size_t nsessions);

#endif /* SHL_SESSION_CLEANUP_H */
