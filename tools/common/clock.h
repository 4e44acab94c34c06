/*
 * clock.h: the clocks the tools (`shmledger` and `shmledger-top`) read.
 * Uses only libc.
 */
#ifndef SHL_TOOL_CLOCK_H
#define SHL_TOOL_CLOCK_H

#include <stdint.h>

/* Wall clock (CLOCK_REALTIME) in microseconds since the epoch, the unit of
 * the library's timestamps (start_time_us...). */
int64_t shl_tool_now_us(void);
/* Monotonic clock (CLOCK_MONOTONIC) in milliseconds, for periods and
 * deadlines. */
int64_t shl_tool_mono_ms(void);

#endif /* SHL_TOOL_CLOCK_H */
