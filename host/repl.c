/* repl.c — the REPL's input: libedit's readline emulation fed from a uv_poll.
 *
 * Why the callback interface rather than a blocking readline(): the loop
 * must keep turning while someone types (a server started on one line keeps
 * answering, background tasks keep running). Stdin readiness becomes a
 * completion token for Lua; Lua calls sonde_repl_feed, which hands libedit
 * the bytes that have arrived. libedit prints the prompt, edits in raw mode
 * and calls on_line with a finished line.
 *
 * Keys typed while a line runs arrive in the terminal's normal (canonical)
 * mode, where Ctrl-D is no byte but an end-of-file mark in the kernel's
 * queue; switching to raw mode turns that mark into a NUL, and the Ctrl-D
 * would be lost. So each prompt first reads, in that mode, what was typed
 * ahead (take_typeahead), a mark as the Ctrl-D key, and libedit reads those
 * keys (read_key) before the terminal's. */
#define _GNU_SOURCE
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <editline/readline.h>

#include "edit_dl.h"
#include "signals.h"

struct sonde_repl {
    sonde_fd_wait        input;        /* stdin readable (when pollable) */
    uv_signal_t          winch;        /* terminal resized (when edit) */
    sonde_loop          *lp;           /* the host's loop */
    int                  pollable;     /* epoll takes stdin (not a regular file) */
    int                  edit;         /* libedit runs the terminal */
    int                  editing;      /* a prompt is shown */
    int                  stdin_flags;  /* restored at close */
    int                  open_handles; /* freed when the last one has closed */
    int                  line_done;    /* on_line ran during this feed */
    char                *line;         /* what on_line received (NULL: EOF) */
    char                *ahead;        /* keys typed ahead, libedit reads them first */
    size_t               ahead_len;    /* bytes in ahead */
    size_t               ahead_pos;    /* bytes of ahead libedit has read */
    unsigned char        eof_char;     /* the terminal's Ctrl-D as libedit knows it */
    int                  learnt;       /* libedit has learnt the terminal's characters */
    char                *last_entry;   /* newest history entry, to skip repeats */
    char                *history_path; /* NULL: no history file */
    char                *locale;       /* LC_CTYPE to restore at close */
    sonde_repl_completer complete;     /* Tab asks it for candidates */
    void                *complete_ud;  /* its argument */
};

/* libedit's readline emulation is process-wide state, so is its owner. */
static sonde_repl *active;

/* The host turns SIGINT and SIGTERM into the same interrupt; the REPL keeps
 * going after Ctrl-C but must end on SIGTERM, so it notes which one came. */
static volatile sig_atomic_t terminate_requested;
static struct sigaction      previous_term;

/* Characters that end the word Tab completes: '.' and ':' are left out so
 * that `http.ge` and `r:js` complete as a whole, against live values. */
static char word_breaks[] = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";

/* ------------------------------------------------------------ completion */

static size_t common_prefix(const char *a, const char *b) {
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    return n;
}

static void free_strings(char **list) {
    for (size_t i = 0; list[i]; i++) free(list[i]);
    free(list);
}

/* Turns candidates into readline's match list: [0] replaces the word (the
 * candidates' common prefix), the candidates follow; a single candidate
 * stands alone. Takes ownership of cands. */
static char **as_matches(char **cands) {
    size_t n = 0;
    while (cands[n]) n++;
    if (n <= 1) {
        if (n == 0) free(cands);
        return n ? cands : NULL;
    }
    char **m = malloc((n + 2) * sizeof *m);
    size_t common = strlen(cands[0]);
    for (size_t i = 1; i < n; i++) {
        size_t c = common_prefix(cands[0], cands[i]);
        if (c < common) common = c;
    }
    if (!m || !(m[0] = strndup(cands[0], common))) {
        free(m);
        free_strings(cands);
        return NULL;
    }
    memcpy(m + 1, cands, (n + 1) * sizeof *m);
    free(cands);
    return m;
}

static char **complete_hook(const char *word, int start, int end) {
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    sonde_repl *r = active;
    if (!r || !r->complete) return NULL;
    char *before = strndup(rl_line_buffer ? rl_line_buffer : "", rl_point > 0 ? (size_t)rl_point : 0);
    if (!before) return NULL;
    char **cands = r->complete(before, word, r->complete_ud);
    free(before);
    return cands ? as_matches(cands) : NULL;
}

void sonde_repl_set_completer(sonde_repl *r, sonde_repl_completer fn, void *ud) {
    r->complete = fn;
    r->complete_ud = ud;
}

/* ---------------------------------------------------------------- editing */

/* libedit calls this with a finished line, or NULL for Ctrl-D. Right after
 * it returns, libedit starts a new edit and prints the prompt again: that
 * prompt is made empty here, and sonde_repl_feed then stops editing. */
static void on_line(char *line) {
    if (!active) {
        free(line);
        return;
    }
    free(active->line);
    active->line = line;
    active->line_done = 1;
    rl_set_prompt("");
}

/* 1 when stdin has bytes, -1 when the terminal hung up (what it still
 * holds is lost with it), 0 otherwise. */
static int stdin_state(void) {
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return -1;
    return (p.revents & POLLIN) ? 1 : 0;
}

/* 1 while keys typed ahead wait for libedit. */
static int ahead_pending(const sonde_repl *r) { return r->ahead_pos < r->ahead_len; }

static void ahead_add(sonde_repl *r, const char *bytes, size_t n) {
    char *grown = realloc(r->ahead, r->ahead_len + n);
    if (!grown) return;
    memcpy(grown + r->ahead_len, bytes, n);
    r->ahead = grown;
    r->ahead_len += n;
}

/* Reads, in canonical mode, what was typed while the terminal was in it: a
 * read gives one line, or what came before a Ctrl-D, or nothing for a
 * Ctrl-D at the start of a line, which becomes the Ctrl-D key again. (Keys
 * libedit had not read when it left raw mode are readable there too, as
 * they were typed.) The rest of a line stays queued in the kernel and
 * becomes raw input when the mode changes. */
static void read_typeahead(sonde_repl *r) {
    char buf[4096];
    for (int i = 0; i < 4096 && stdin_state() > 0; i++) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0)
            ahead_add(r, (const char *)&r->eof_char, 1);
        else
            ahead_add(r, buf, (size_t)n);
    }
}

/* Takes what was typed ahead in canonical mode (the mode a line runs in).
 * A Ctrl-D typed meanwhile must never meet the switch to raw mode as an
 * end-of-file mark, so the terminal's EOF character is switched off before
 * the last read: a Ctrl-D is then an ordinary byte (4), the Ctrl-D key.
 * Returns 1 when the terminal was changed, and *saved holds its settings;
 * 0 when it was left alone (not in canonical mode). */
static int take_typeahead(sonde_repl *r, struct termios *saved) {
    if (tcgetattr(STDIN_FILENO, saved) != 0 || !(saved->c_lflag & ICANON)) return 0;
    read_typeahead(r); /* most of it, while Ctrl-D still marks an end */
    struct termios t = *saved;
    t.c_cc[VEOF] = _POSIX_VDISABLE;
    int changed = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    read_typeahead(r); /* what came before the change */
    return changed;
}

/* Leaves canonical mode with the EOF character back in place. libedit,
 * entering raw mode from there, keeps the normal mode and the characters
 * it has learnt (it learns them only when it leaves canonical mode, and
 * had it seen the EOF character switched off it would have learnt that).
 * Until it has learnt them (see learn_terminal), the terminal goes back to
 * canonical mode for libedit to leave. */
static void leave_canonical(sonde_repl *r, const struct termios *saved) {
    if (!r->learnt) {
        tcsetattr(STDIN_FILENO, TCSANOW, saved);
        r->eof_char = saved->c_cc[VEOF];
        r->learnt = 1;
        return;
    }
    struct termios t = *saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

/* libedit binds Ctrl-D (the terminal's EOF character) to end the input
 * when it enters raw mode from canonical mode, which the prompts do not let
 * it do (leave_canonical): it does so once here, at open. What was typed
 * before would meet the switch, so a Ctrl-D among it is read first. On a
 * terminal not in canonical mode the first prompt that finds it so lets
 * libedit learn instead. */
static void learn_terminal(sonde_repl *r) {
    struct termios t;
    r->eof_char = 4; /* Ctrl-D */
    if (tcgetattr(STDIN_FILENO, &t) != 0 || !(t.c_lflag & ICANON)) return;
    r->eof_char = t.c_cc[VEOF];
    read_typeahead(r);
    rl_prep_terminal(0);
    rl_deprep_terminal();
    r->learnt = 1;
}

/* The next byte of input: typed ahead, else from the terminal (waiting for
 * it: libedit asks for the rest of a key it has begun); -1 at its end. */
static int next_byte(void) {
    sonde_repl *r = active;
    if (r && ahead_pending(r)) {
        unsigned char c = (unsigned char)r->ahead[r->ahead_pos++];
        if (!ahead_pending(r)) r->ahead_pos = r->ahead_len = 0;
        return c;
    }
    for (;;) {
        unsigned char c;
        ssize_t       n = read(STDIN_FILENO, &c, 1);
        if (n == 1) return c;
        if (n == 0) return -1;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd p = {STDIN_FILENO, POLLIN, 0};
            poll(&p, 1, -1); /* someone made the terminal non-blocking */
        } else if (errno != EINTR) {
            return -1;
        }
    }
}

/* libedit's reader of keys (rl_getc_function): one character, decoded as
 * libedit's own reader does (a byte that starts no character is dropped);
 * -1 at the end of input. */
static int read_key(FILE *in) {
    (void)in;
    char   buf[MB_LEN_MAX];
    size_t n = 0;
    int    have = 0; /* buf holds an undecoded byte already */
    for (;;) {
        if (!have) {
            int c = next_byte();
            if (c < 0) return -1;
            buf[n++] = (char)c;
        }
        have = 0;
        mbstate_t state;
        wchar_t   wc;
        memset(&state, 0, sizeof state);
        size_t k = mbrtowc(&wc, buf, n, &state);
        if (k == (size_t)-2 && n < sizeof buf) continue; /* more bytes to come */
        if (k == (size_t)-1 && n > 1) {
            buf[0] = buf[n - 1]; /* an invalid sequence: its last byte may start one */
            n = 1;
            have = 1;
        } else if (k == (size_t)-1 || k == (size_t)-2) {
            n = 0;
        } else {
            return (int)wc;
        }
    }
}

void sonde_repl_prompt(sonde_repl *r, const char *prompt) {
    if (!r->edit) return;
    sonde_repl_pause(r);
    fflush(stdout);
    struct termios saved;
    if (take_typeahead(r, &saved)) leave_canonical(r, &saved);
    r->editing = 1;
    rl_callback_handler_install(prompt, on_line);
}

void sonde_repl_pause(sonde_repl *r) {
    if (!r->editing) return;
    r->editing = 0;
    rl_callback_handler_remove(); /* back to the terminal's normal mode */
}

int sonde_repl_editing(sonde_repl *r) { return r->editing; }

void sonde_repl_redisplay(sonde_repl *r) {
    if (r->editing) rl_forced_update_display();
}

int sonde_repl_feed(sonde_repl *r, char **line) {
    *line = NULL;
    if (!r->editing) return SONDE_REPL_MORE;
    r->line_done = 0;
    /* one character per call in libedit's unbuffered mode, and only while
     * bytes are there, typed ahead or on stdin (a read would block the
     * loop); the bound keeps a descriptor that stays readable without
     * giving bytes from spinning */
    for (int i = 0; i < 65536 && !r->line_done; i++) {
        if (!ahead_pending(r)) {
            int state = stdin_state();
            if (state < 0) {
                sonde_repl_pause(r);
                return SONDE_REPL_EOF;
            }
            if (state == 0) break;
        }
        rl_callback_read_char();
    }
    if (!r->line_done) return SONDE_REPL_MORE;
    sonde_repl_pause(r);
    *line = r->line;
    r->line = NULL;
    return *line ? SONDE_REPL_LINE : SONDE_REPL_EOF;
}

/* ---------------------------------------------------------------- history */

int sonde_repl_add_history(sonde_repl *r, const char *line) {
    if (!r->edit || !*line || (r->last_entry && strcmp(r->last_entry, line) == 0)) return 0;
    free(r->last_entry);
    r->last_entry = strdup(line);
    add_history(line);
    if (!r->history_path) return 0;
    /* write_history's errno is not reliable across libedit versions */
    return write_history(r->history_path) == 0 ? 0 : UV_EIO;
}

/* History may hold tokens typed at the prompt: the file is private. */
static void history_open(sonde_repl *r, const char *path, int size) {
    stifle_history(size > 0 ? size : 1000);
    if (!path || !*path || !(r->history_path = strdup(path))) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    read_history(path);
}

/* ------------------------------------------------------------------ input */

int sonde_repl_watch(sonde_repl *r, int token) {
    if (!r->pollable || ahead_pending(r)) return sonde_loop_complete(r->lp, token, 0, 0) == 0 ? 0 : UV_ENOMEM;
    return sonde_fd_wait_start(&r->input, UV_READABLE | UV_DISCONNECT, token);
}

void sonde_repl_unwatch(sonde_repl *r) {
    if (r->pollable) uv_poll_stop(&r->input.poll);
}

ssize_t sonde_repl_read(sonde_repl *r, char *buf, size_t size) {
    (void)r;
    ssize_t n;
    do n = read(STDIN_FILENO, buf, size);
    while (n < 0 && errno == EINTR);
    return n < 0 ? uv_translate_sys_error(errno) : n;
}

static void on_winch(uv_signal_t *s, int signum) {
    (void)signum;
    sonde_repl *r = s->data;
    if (r->editing) rl_resize_terminal();
}

/* ------------------------------------------------------------- SIGTERM */

/* Notes the request, then does what was done before: the host's handler
 * (which wakes the loop), or the default action. */
static void on_term(int sig, siginfo_t *info, void *ctx) {
    terminate_requested = 1;
    if (previous_term.sa_flags & SA_SIGINFO) {
        previous_term.sa_sigaction(sig, info, ctx);
    } else if (previous_term.sa_handler != SIG_DFL && previous_term.sa_handler != SIG_IGN) {
        previous_term.sa_handler(sig);
    } else if (previous_term.sa_handler == SIG_DFL) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

static void watch_term(void) {
    terminate_requested = 0;
    sonde_signal_catch(SIGTERM, on_term, &previous_term);
}

int sonde_repl_take_terminate(void) {
    int was = terminate_requested;
    terminate_requested = 0;
    return was;
}

/* ------------------------------------------------------------- life cycle */

static void editor_open(sonde_repl *r, const sonde_repl_opts *o) {
    const char *before = setlocale(LC_CTYPE, NULL);
    r->locale = before ? strdup(before) : NULL;
    setlocale(LC_CTYPE, ""); /* UTF-8 shows as characters, not escapes */
    rl_readline_name = "sonde";
    rl_catch_signals = 0;        /* the host owns SIGINT: Ctrl-C reaches Lua */
    rl_getc_function = read_key; /* keys typed ahead come first */
    rl_initialize();
    rl_attempted_completion_function = complete_hook;
    rl_basic_word_break_characters = word_breaks;
    rl_completer_word_break_characters = word_breaks;
    rl_completion_append_character = '\0';
    history_open(r, o->history_path, o->history_size);
    learn_terminal(r);
    uv_signal_init(&r->lp->uv, &r->winch);
    r->winch.data = r;
    uv_signal_start(&r->winch, on_winch, SIGWINCH);
    uv_unref((uv_handle_t *)&r->winch); /* never keeps the loop alive */
    r->open_handles++;
}

sonde_repl *sonde_repl_open(sonde_loop *lp, const sonde_repl_opts *o, int *err) {
    if (active) {
        *err = UV_EBUSY;
        return NULL;
    }
    sonde_repl *r = calloc(1, sizeof *r);
    if (!r) {
        *err = UV_ENOMEM;
        return NULL;
    }
    r->lp = lp;
    r->edit = o->edit;
    r->stdin_flags = fcntl(STDIN_FILENO, F_GETFL);
    /* epoll refuses regular files and /dev/null: those are read at once */
    if (uv_poll_init(&lp->uv, &r->input.poll, STDIN_FILENO) == 0) {
        r->pollable = 1;
        r->input.poll.data = r;
        r->open_handles++;
        /* uv_poll_init made stdin non-blocking, which the shell would inherit */
        if (r->stdin_flags >= 0) fcntl(STDIN_FILENO, F_SETFL, r->stdin_flags);
    }
    char why[300];
    if (r->edit && sonde_edit_load(why, sizeof why) != 0) {
        fprintf(stderr, "sonde: line editing is off: %s\n", why); /* the REPL still reads lines */
        r->edit = 0;
    }
    if (r->edit) editor_open(r, o);
    watch_term();
    active = r;
    return r;
}

static void free_repl(sonde_repl *r) {
    free(r->locale);
    free(r->line);
    free(r->ahead);
    free(r->last_entry);
    free(r->history_path);
    free(r);
}

static void on_closed(uv_handle_t *h) {
    sonde_repl *r = h->data;
    if (--r->open_handles == 0) free_repl(r);
}

void sonde_repl_close(sonde_repl *r) {
    sonde_repl_pause(r);
    if (r->stdin_flags >= 0) fcntl(STDIN_FILENO, F_SETFL, r->stdin_flags);
    if (active == r) {
        sigaction(SIGTERM, &previous_term, NULL);
        active = NULL;
    }
    if (r->locale) setlocale(LC_CTYPE, r->locale);
    if (r->open_handles == 0) {
        free_repl(r);
        return;
    }
    if (r->pollable) uv_close((uv_handle_t *)&r->input.poll, on_closed);
    if (r->edit) uv_close((uv_handle_t *)&r->winch, on_closed);
}
