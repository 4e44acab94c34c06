/*
 * log.h: the producers of events (log.c): the library's own lines and
 * trail events, posted to the event ring. The public log API
 * (shl_op_log...) is declared in shmledger.h.
 */
#ifndef SHL_FILES_LOG_H
#define SHL_FILES_LOG_H

#include <stdint.h>

#include "objects.h"

/* A trail-only event "NAME k=v ..." (abort flag, resources, participants). */
void shl__optrail(shl_ledger *l, const char *op_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* PARTICIPANT_JOINED (joined) or PARTICIPANT_LEFT of this ledger: the same
 * event as shl__optrail(l, op_id, "PARTICIPANT_%s participant=%s pid=%d",
 * ..., l->id, l->recorded_pid), built without printf (a join and a leave
 * post one each; vsnprintf was a fifth of their instructions). */
void shl__optrail_participant(shl_ledger *l, const char *op_id, bool joined);
/* A library event line in the op log (and the trail): used by the monitor
 * and the operation code. level is a shl_log_level. */
void shl__oplog(shl_ledger *l, const char *op_id, int level, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* The hot-path events of a call, posted without formatting on the caller's
 * thread (the renderer formats them). */
void shl__log_call_started(shl_ledger *l, const char *op_id,
                           const char *call_id);
void shl__log_call_ended(shl_ledger *l, const char *op_id,
                         const char *call_id, int64_t duration_ms);
void shl__log_call_failed(shl_ledger *l, const char *op_id,
                          const char *call_id, int64_t duration_ms,
                          const char *error);

#endif /* SHL_FILES_LOG_H */
