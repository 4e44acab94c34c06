/*
 * top.h: what the modules of `shmledger-top` share (private to the tool).
 *
 *   main.c    options, --help, the one-shot text mode, exit statuses
 *   model.c   the model: what one refresh reads from the segment
 *   render.c  the lines of a screen, to the terminal or (--once) stdout
 *   json.c    --json output
 *   ui.c      the interactive ncurses loop and the abort action
 *
 * Only the public header <shmledger/shmledger.h> is used.
 */
#ifndef SHMLEDGER_TOP_H
#define SHMLEDGER_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmledger/shmledger.h>

#include "../common/clock.h" /* shl_tool_now_us, shl_tool_mono_ms */
#include "../common/fmt.h"   /* shl_tool_fmt_age, shl_tool_json_str */

#include "../common/busy.h" /* shl_tool_snapshot, shl_tool_list */
#include "../common/exit.h" /* EX_* and shl_tool_exit_for */

#define EV_MAX 8

struct model {
    const char *base;
    int64_t stale_ms;
    char shm_name[128];
    ino_t ino;
    bool have_ino;
    shl_reader *r;
    int err_rc;    /* last error (0: none) */
    char err[512]; /* its text */
    bool have_info;
    shl_segment_info info;
    shl_op_summary *all; /* every row of the list */
    size_t nall;
    shl_op_summary **rows; /* filtered and sorted view of `all` */
    size_t nrows;
    size_t sel;
    char sel_id[SHL_OPERATION_ID_MAX + 1];
    shl_snapshot *snap; /* snapshot of the selected operation, or NULL */
    char filter[128];
    bool details;
    int64_t refreshed_us;
    bool interactive;         /* errors say "retrying" */
    char events[EV_MAX][256]; /* last lines of the selected op's log */
    int nevents;
};

/* --- model.c --- */

/* Free what the last refresh read (the reader stays open). */
void model_drop_data(struct model *m);
/* Close the reader. */
void model_close(struct model *m);
/* Rebuild the filtered, sorted rows; keep the selection on its operation. */
void model_apply_filter(struct model *m);
/* Snapshot the selected operation and load its recent events. */
void model_snapshot_selected(struct model *m);
/* One refresh: (re)open the segment if needed and read everything; 0 or
 * the library error (also in m->err). */
int model_refresh(struct model *m);
/* Move the selection by delta rows (clamped). */
void model_move(struct model *m, int delta);

/* --- render.c --- */

enum { ATTR_NONE, ATTR_TITLE, ATTR_HEAD, ATTR_SEL, ATTR_STALE, ATTR_WARN };

struct out {
    bool curses;
    int row, rows, cols;
};

/* Colours are in use (set by the interactive mode). */
extern bool top_colors;
/* Render one screen; `status` is the curses status bar. */
void render(struct model *m, struct out *o, const char *status);

/* --- main.c --- */


/* --- json.c --- */

/* --json: refresh, print the segment facts and every operation. */
int run_json(struct model *m);

/* --- ui.c --- */

/* The interactive viewer until q or a signal. */
int run_interactive(struct model *m, int64_t interval_ms);

#endif /* SHMLEDGER_TOP_H */
