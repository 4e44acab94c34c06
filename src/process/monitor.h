/*
 * monitor.h: the monitor threads of a ledger (monitor.c).
 */
#ifndef SHL_PROCESS_MONITOR_H
#define SHL_PROCESS_MONITOR_H

#include "objects.h"

/* Start the threads if not running (a ledger's first session). Returns 0
 * or -errno (message set). */
int shl__monitor_ensure(shl_ledger *l);
/* Stop and join them (ledger close). */
void shl__monitor_stop(shl_ledger *l);
/* Our membership changed in an operation with peers in other processes:
 * have the monitor (if running) re-read the members of its operations and
 * watch the new peers, without a full pass. */
void shl__monitor_members_changed(shl_ledger *l);

/* mon_flags: why the futex thread woke the monitor */
#define SHL__MON_EPOCH 1u   /* the epoch moved: a full pass */
#define SHL__MON_MEMBERS 2u /* our doorbell rang: a membership pass */

#endif /* SHL_PROCESS_MONITOR_H */
