/*
 * poll_helper.h: file helpers shared by poll.c and exec.c.
 */
#ifndef SHL_POLL_H
#define SHL_POLL_H

#include <stddef.h>

/* Read a whole file into a malloc'd NUL-terminated buffer (*len without
 * the NUL; len may be NULL). Returns 0 or -errno (-ENOENT when missing). */
int shl__read_file(const char *path, char **content, size_t *len);

#endif /* SHL_POLL_H */
