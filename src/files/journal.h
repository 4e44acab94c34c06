/*
 * journal.h: the drain journal's reading side and the file checks of a
 * drain (journal.c). The drainer (drain.c) records, before it writes a
 * batch, every target file's size in hdr->ev_journal; a successor that
 * finds the batch unfinished dedupes against what was written since.
 * ARCHITECTURE §7.3 has the argument.
 */
#ifndef SHL_FILES_JOURNAL_H
#define SHL_FILES_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "files/render.h"
#include "layout.h"

/* Journal key of file f of operation op_id. */
uint64_t shl__journal_key(const char *op_id, enum shl__file f);

/* The size the journal recorded for key before the batch in flight was
 * written; UINT64_MAX when the journal does not name it (that batch wrote
 * nothing there); 0 when the journal is damaged (the whole file is then
 * the region). */
uint64_t shl__journal_from(const struct shl__hdr *h, uint64_t key);

/* Keep only the lines of b not found in the file open as fd (readable:
 * opened O_RDWR|O_APPEND) from byte `from` on; a torn last line there that
 * begins one of b's lines is completed instead. */
int shl__journal_dedupe(int fd, uint64_t from, struct shl__sbuf *b);

/* Does the file (fd, its stat st) end in a line torn by a writer killed
 * inside write()? Waits 1 ms to tell a live writer's partial tail. */
bool shl__journal_torn_tail(int fd, struct stat *st);

#endif /* SHL_FILES_JOURNAL_H */
