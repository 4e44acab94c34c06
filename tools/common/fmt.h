/*
 * fmt.h: text formatting shared by the tools (`shmledger` and
 * `shmledger-top`), so both print an age, a JSON string or a library
 * diagnostic the same way. Uses only <shmledger/shmledger.h> and libc.
 */
#ifndef SHL_TOOL_FMT_H
#define SHL_TOOL_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Room for any shl_tool_fmt_age() result (INT64_MAX ms is
 * "106751991167d07h"). */
#define SHL_TOOL_AGE_MAX 24

/* Format an age in milliseconds, compactly: "850ms", "12.3s", "5m02s",
 * "3h07m", "2d04h" (days have no upper unit, so a huge age stays exact to
 * the hour); "-" for a negative age (a clock step, or no value). Writes at
 * most cap bytes into buf (truncated when cap < SHL_TOOL_AGE_MAX) and
 * returns buf; the caller owns buf. */
const char *shl_tool_fmt_age(int64_t ms, char *buf, size_t cap);

/* Write s as a JSON string literal, with its quotes, to f: '"' and '\\'
 * escaped, \n \r \t as such, other control bytes as \u00XX; bytes >= 0x80
 * are copied (UTF-8 passes through). NULL is written as "". Write errors
 * are left to the stream's error flag. */
void shl_tool_json_str(FILE *f, const char *s);

/* Copy src into dst (cap bytes, always terminated when cap > 0) with every
 * '\n' and '\r' replaced by a blank, so a library diagnostic
 * (shl_errmsg()) fits on one line of an error message. NULL src gives "". */
void shl_tool_one_line(char *dst, size_t cap, const char *src);

#endif /* SHL_TOOL_FMT_H */
