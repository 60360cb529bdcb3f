/* repl.h — internal: the REPL's input, libedit fed from the loop.
 *
 * The terminal is watched by a uv_poll on stdin. Its readiness is queued as a
 * completion for Lua (nothing here calls into Lua from a libuv callback); the
 * waiting task then feeds the editor (libedit's readline emulation in callback
 * mode) with what has arrived, so the loop keeps turning while someone types.
 * A prompt puts the terminal in raw mode; pausing (while a line runs) gives it
 * back its normal mode, where Ctrl-C is SIGINT and cancels the running line.
 *
 * libedit's readline emulation is one per process, so at most one sonde_repl
 * is open at a time. Without a terminal (`edit` 0) the same watch serves plain
 * reads of piped stdin. */
#ifndef SONDE_REPL_H
#define SONDE_REPL_H

#include <stddef.h>
#include <sys/types.h>

#include "loop.h"

typedef struct sonde_repl sonde_repl;

/* Completion candidates for `word`, the text being completed; `line` is the
 * text before the cursor. Returns a malloc'd NULL-terminated array of
 * malloc'd strings, each a whole replacement for word, or NULL for none. */
typedef char **(*sonde_repl_completer)(const char *line, const char *word, void *ud);

typedef struct sonde_repl_opts {
    int         edit;         /* 1: line editing on the terminal; 0: plain reads */
    const char *history_path; /* loaded at open, saved after each entry; NULL: none */
    int         history_size; /* entries kept; <= 0: 1000 */
} sonde_repl_opts;

/* What sonde_repl_feed found. */
enum { SONDE_REPL_MORE = 0, SONDE_REPL_LINE = 1, SONDE_REPL_EOF = 2 };

/* Opens stdin for the REPL. Returns NULL and sets *err (a libuv error code,
 * UV_EBUSY when a REPL is already open) on failure. */
sonde_repl *sonde_repl_open(sonde_loop *lp, const sonde_repl_opts *opts, int *err);

/* Stops watching, restores the terminal and stdin's flags, and frees r once
 * libuv has closed its handles. */
void sonde_repl_close(sonde_repl *r);

/* Sets who completes on Tab (NULL: nothing completes). */
void sonde_repl_set_completer(sonde_repl *r, sonde_repl_completer fn, void *ud);

/* Queues `token` once stdin has input (or at once when stdin cannot be
 * polled, as a regular file). Returns 0 or a libuv error code. */
int  sonde_repl_watch(sonde_repl *r, int token);
void sonde_repl_unwatch(sonde_repl *r);

/* Shows `prompt` and starts editing a line (raw mode). Keys typed while the
 * terminal was in its normal mode (while a line ran) are edited first, a
 * Ctrl-D among them too. */
void sonde_repl_prompt(sonde_repl *r, const char *prompt);

/* Reads the input that has arrived into the editor. On SONDE_REPL_LINE,
 * *line is the finished line (malloc'd; the caller frees it) and editing has
 * stopped; on SONDE_REPL_EOF (Ctrl-D on an empty line) too. */
int sonde_repl_feed(sonde_repl *r, char **line);

/* Stops editing and gives the terminal its normal mode back. */
void sonde_repl_pause(sonde_repl *r);

/* Redraws the prompt and the line being edited (after other output). */
void sonde_repl_redisplay(sonde_repl *r);

/* 1 while a prompt is shown and a line is being edited. */
int sonde_repl_editing(sonde_repl *r);

/* Plain mode: reads what stdin has into buf; returns the byte count, 0 at
 * end of input, or a negative libuv error code. */
ssize_t sonde_repl_read(sonde_repl *r, char *buf, size_t size);

/* Adds an entry to the history (not a repeat of the newest) and saves the
 * history file. Returns 0, or UV_EIO when the file could not be written. */
int sonde_repl_add_history(sonde_repl *r, const char *line);

/* 1 once if SIGTERM arrived since the last call while a REPL was open (the
 * host's interrupt does not say which signal it was). */
int sonde_repl_take_terminate(void);

#endif
