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

#endif /* SHL_PROCESS_MONITOR_H */
