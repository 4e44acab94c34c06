/*
 * exit.h: the exit statuses both tools use, and the mapping from a library
 * code to one of them. Uses only <shmledger/shmledger.h>.
 */
#ifndef SHL_TOOL_EXIT_H
#define SHL_TOOL_EXIT_H

#define EX_OK 0      /* success */
#define EX_FAIL 1    /* operation-level failure: not found, wrong state... */
#define EX_USAGE 2   /* bad command line: option, argument, malformed id */
#define EX_SEGMENT 3 /* the segment is corrupt, foreign, another version,
                        unsafe (world-writable) */
#define EX_FILES 4   /* files under DIR could not be written (full disk,
                        read-only): the message says which */

/* The exit status for a library return code: 0 -> EX_OK; a segment that
 * cannot be used (version, format, owner, corrupt, not ready, panic) ->
 * EX_SEGMENT, as is an unsafe one; files that could not be written ->
 * EX_FILES; a malformed id -> EX_USAGE; anything else -> EX_FAIL. */
int shl_tool_exit_for(int rc);

#endif /* SHL_TOOL_EXIT_H */
