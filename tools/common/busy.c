/*
 * busy.c: reader calls retried while the library says -EAGAIN (busy.h).
 */
#include "busy.h"

#include <errno.h>
#include <time.h>

#define RETRY_NS (50l * 1000 * 1000)
#define RETRIES 40 /* 2 s */

static void
pause_retry(void)
{
    struct timespec ts = {0, RETRY_NS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int
shl_tool_snapshot(shl_reader *r, const char *op_id, shl_snapshot **out)
{
    int rc = shl_reader_snapshot(r, op_id, out);
    for (int i = 0; rc == -EAGAIN && i < RETRIES; i++) {
        pause_retry();
        rc = shl_reader_snapshot(r, op_id, out);
    }
    return rc;
}

int
shl_tool_list(shl_reader *r, shl_op_summary **out, size_t *count)
{
    int rc = shl_reader_list(r, out, count);
    for (int i = 0; rc == -EAGAIN && i < RETRIES; i++) {
        pause_retry();
        rc = shl_reader_list(r, out, count);
    }
    return rc;
}
