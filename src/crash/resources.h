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

#endif /* SHL_CRASH_RESOURCES_H */
