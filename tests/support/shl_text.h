/*
 * shl_text.h: files and text in the tests (link shl_test_support): read a
 * whole file, match a regular expression.
 */
#ifndef SHL_TEXT_H
#define SHL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Read the whole file at path (to its end at the time of reading) into a
 * NUL-terminated malloc'd buffer; the caller frees it. When len_out is not
 * NULL it gets the length in bytes (the file may contain NUL bytes).
 * Returns NULL, with errno set, when the file cannot be opened or read or
 * memory runs out (a missing file is not a test failure here: the caller
 * decides). */
char *shl_test_slurp(const char *path, size_t *len_out);

/* Does s match the POSIX extended regular expression re (REG_NOSUB)?
 * A pattern that does not compile fails the test ("bad regex"). */
bool shl_test_rx_match(const char *re, const char *s);

#endif /* SHL_TEXT_H */
