/* shmledger version macros. */
#ifndef SHMLEDGER_VERSION_H
#define SHMLEDGER_VERSION_H

#define SHL_VERSION_MAJOR 0
#define SHL_VERSION_MINOR 1
#define SHL_VERSION_PATCH 0

/* Major version of the shared-memory segment format. A segment created by a
 * library with another major format version is refused (SHL_EVERSION). */
#define SHL_SEGMENT_MAJOR 1

#endif /* SHMLEDGER_VERSION_H */
