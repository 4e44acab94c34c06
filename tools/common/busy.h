/*
 * busy.h: the reader calls the tools make, retried while the library says
 * -EAGAIN (a record in mid-write whose writer is slow, or died and awaits
 * its repair by the next locker, which a live participant's monitor does
 * within milliseconds). Uses only <shmledger/shmledger.h>.
 */
#ifndef SHL_TOOL_BUSY_H
#define SHL_TOOL_BUSY_H

#include <stddef.h>

#include <shmledger/shmledger.h>

/* shl_reader_snapshot / shl_reader_list, tried again on -EAGAIN every
 * 50 ms for up to 2 s; any other result is returned at once. Same
 * ownership, errors and thread context as the library calls. */
int shl_tool_snapshot(shl_reader *r, const char *op_id, shl_snapshot **out);
int shl_tool_list(shl_reader *r, shl_op_summary **out, size_t *count);

#endif /* SHL_TOOL_BUSY_H */
