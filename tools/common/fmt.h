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
 * escaped, \n \r \t as such, other control bytes as \u00XX; valid UTF-8
 * passes through, every invalid byte is written as \ufffd (so the output
 * is always valid JSON). NULL is written as "". Write errors
 * are left to the stream's error flag. */
void shl_tool_json_str(FILE *f, const char *s);

/* Length of the valid UTF-8 sequence at s (1..4; n bytes available), or
 * 0 when s does not start one (stray, overlong, surrogate, cut short). */
size_t shl_tool_utf8_seq(const unsigned char *s, size_t n);

/* Terminal-safe copy of participant text (descriptions, reasons, ids,
 * events): every control byte (< 0x20, 0x7f, and the C1 controls
 * U+0080..U+009F, which include CSI) and every invalid UTF-8 byte becomes
 * '?', so nothing a participant wrote can move the cursor, clear the
 * screen or change the terminal's title. dst gets at most cap bytes,
 * always terminated when cap > 0 (a sequence that does not fit is cut
 * whole); NULL src gives "". Returns dst. */
char *shl_tool_term_safe(char *dst, size_t cap, const char *src);

/* Copy src into dst (cap bytes, always terminated when cap > 0) with every
 * '\n' and '\r' replaced by a blank, so a library diagnostic
 * (shl_errmsg()) fits on one line of an error message. NULL src gives "". */
void shl_tool_one_line(char *dst, size_t cap, const char *src);

#endif /* SHL_TOOL_FMT_H */
