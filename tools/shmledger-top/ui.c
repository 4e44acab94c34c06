/*
 * ui.c: the interactive ncurses viewer of `shmledger-top`: the refresh
 * loop, the keys, the filter prompt and the abort action (the viewer's only
 * write, on the user's request).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curses.h>

#include "top.h"

/* ------------------------------------------------------------------------ */
/* The abort action (the viewer's only write, on the user's request)        */
/* ------------------------------------------------------------------------ */

static int
do_abort(const char *base, const char *op_id, char *msg, size_t cap)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "top-%d", (int)getpid());
    shl_ledger *l;
    shl_op *op;
    int rc = shl_ledger_open(&l, base, pid, NULL);
    if (rc) {
        snprintf(msg, cap, "abort failed: cannot open the ledger: %s",
                 shl_strerror(rc));
        return rc;
    }
    rc = shl_op_join(l, op_id, NULL, &op);
    if (rc == 0) {
        rc = shl_op_set_abort_flag(op, true);
        shl_op_leave(op, true);
    }
    shl_ledger_close(l);
    if (rc)
        snprintf(msg, cap, "abort of %s failed: %s", op_id, shl_strerror(rc));
    else
        snprintf(msg, cap, "abort flag set on %s", op_id);
    return rc;
}

static volatile sig_atomic_t quit_flag;

static void
on_quit(int sig)
{
    (void)sig;
    quit_flag = 1;
}

/* Read a line in the status bar; false when cancelled with Esc. */
static bool
prompt_line(const char *label, char *buf, size_t cap)
{
    size_t n = strlen(buf);
    timeout(-1);
    curs_set(1);
    for (;;) {
        int rows = getmaxy(stdscr), cols = getmaxx(stdscr);
        attron(A_REVERSE);
        mvprintw(rows - 1, 0, "%s%s", label, buf);
        for (int x = (int)(strlen(label) + n); x < cols; x++)
            mvaddch(rows - 1, x, ' ');
        attroff(A_REVERSE);
        move(rows - 1, (int)(strlen(label) + n));
        refresh();
        int ch = getch();
        if (ch == '\n' || ch == KEY_ENTER || ch == '\r')
            break;
        if (ch == 27) {
            curs_set(0);
            return false;
        }
        if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
            buf[--n] = 0;
        else if (ch >= 32 && ch < 127 && n + 1 < cap) {
            buf[n++] = (char)ch;
            buf[n] = 0;
        }
    }
    curs_set(0);
    return true;
}

int
run_interactive(struct model *m, int64_t interval_ms)
{
    m->interactive = true;
    signal(SIGINT, on_quit);
    signal(SIGTERM, on_quit);
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        fprintf(stderr,
                "shmledger-top: cannot use the terminal (TERM=%s); "
                "try --once\n",
                getenv("TERM") ? getenv("TERM") : "");
        return EX_FAIL;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(1, COLOR_RED, -1);
        init_pair(2, COLOR_YELLOW, -1);
        top_colors = true;
    }
    char status[256] = "";
    int64_t next = 0;
    while (!quit_flag) {
        int64_t now = shl_tool_mono_ms();
        if (now >= next) {
            model_refresh(m);
            next = now + interval_ms;
        }
        erase();
        struct out o = {.curses = true, .rows = LINES, .cols = COLS};
        char bar[512];
        snprintf(bar, sizeof(bar),
                 " q quit  j/k select  Enter %s  a abort  / filter%s%s%s  "
                 "%s",
                 m->details ? "frames" : "details", m->filter[0] ? " [" : "",
                 m->filter, m->filter[0] ? "]" : "", status);
        render(m, &o, bar);
        refresh();
        int64_t wait = next - shl_tool_mono_ms();
        timeout(wait > 0 ? (int)wait : 0);
        int ch = getch();
        if (ch == ERR)
            continue;
        status[0] = 0;
        switch (ch) {
        case 'q':
        case 'Q':
            quit_flag = 1;
            break;
        case KEY_UP:
        case 'k':
            model_move(m, -1);
            break;
        case KEY_DOWN:
        case 'j':
            model_move(m, 1);
            break;
        case KEY_PPAGE:
            model_move(m, -10);
            break;
        case KEY_NPAGE:
            model_move(m, 10);
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            m->details = !m->details;
            break;
        case KEY_RESIZE:
            clear();
            break;
        case '/': {
            char f[sizeof(m->filter)];
            snprintf(f, sizeof(f), "%s", m->filter);
            if (prompt_line("filter: ", f, sizeof(f))) {
                snprintf(m->filter, sizeof(m->filter), "%s", f);
                model_apply_filter(m);
                model_snapshot_selected(m);
            }
            break;
        }
        case 'a': {
            if (!m->nrows) {
                snprintf(status, sizeof(status), "no operation to abort");
                break;
            }
            char id[SHL_OPERATION_ID_MAX + 1];
            snprintf(id, sizeof(id), "%s", m->rows[m->sel]->operation_id);
            int rows = getmaxy(stdscr), cols = getmaxx(stdscr);
            attron(A_REVERSE | A_BOLD);
            mvprintw(rows - 1, 0, " Abort operation %s? (y/n) ", id);
            for (int x = getcurx(stdscr); x < cols; x++)
                addch(' ');
            attroff(A_REVERSE | A_BOLD);
            refresh();
            timeout(-1);
            int yn = getch();
            if (yn == 'y' || yn == 'Y') {
                do_abort(m->base, id, status, sizeof(status));
                next = 0; /* show the flag at once */
            } else {
                snprintf(status, sizeof(status), "abort cancelled");
            }
            break;
        }
        default:
            break;
        }
    }
    endwin();
    delscreen(scr);
    return EX_OK;
}
