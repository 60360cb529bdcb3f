/* edit_dl.h — internal: libedit loaded with dlopen when a REPL opens.
 *
 * libedit and what it pulls in (libtinfo, libbsd, libmd) are four shared
 * libraries for the dynamic linker to map and relocate at every process
 * start, 0.3-0.7 ms, though only the REPL edits lines. So sonde does not
 * link libedit: opening a REPL with line editing loads it, and the names
 * repl.c uses go through this table. Include it after
 * <editline/readline.h>: each name becomes the pointer the table holds
 * (the declarations give the types; nothing here is linked against). */
#ifndef SONDE_EDIT_DL_H
#define SONDE_EDIT_DL_H

#include "dl.h"

/* the sonames tried, in order: Debian's and Ubuntu's, then Fedora's, Arch's
 * and Alpine's */
#define SONDE_EDIT_SONAMES(FIRST, MORE) FIRST("libedit.so.2") MORE("libedit.so.0")

/* X(name) for each function and variable repl.c uses */
#define SONDE_EDIT_NAMES(X)                                                                                            \
    X(rl_initialize)                                                                                                   \
    X(rl_callback_handler_install)                                                                                     \
    X(rl_callback_handler_remove)                                                                                      \
    X(rl_callback_read_char)                                                                                           \
    X(rl_forced_update_display)                                                                                        \
    X(rl_set_prompt)                                                                                                   \
    X(rl_prep_terminal)                                                                                                \
    X(rl_deprep_terminal)                                                                                              \
    X(rl_resize_terminal)                                                                                              \
    X(add_history)                                                                                                     \
    X(read_history)                                                                                                    \
    X(write_history)                                                                                                   \
    X(stifle_history)                                                                                                  \
    X(rl_readline_name)                                                                                                \
    X(rl_line_buffer)                                                                                                  \
    X(rl_point)                                                                                                        \
    X(rl_catch_signals)                                                                                                \
    X(rl_getc_function)                                                                                                \
    X(rl_attempted_completion_function)                                                                                \
    X(rl_attempted_completion_over)                                                                                    \
    X(rl_basic_word_break_characters)                                                                                  \
    X(rl_completer_word_break_characters)                                                                              \
    X(rl_completion_append_character)

/* sonde_edit (the table), sonde_edit_load and sonde_edit_soname */
SONDE_DL_DECLARE(sonde_edit, SONDE_EDIT_NAMES);

#ifndef SONDE_EDIT_DL_TABLE /* edit_dl.c fills the table under the real names */
#define rl_initialize (*sonde_edit.rl_initialize)
#define rl_callback_handler_install (*sonde_edit.rl_callback_handler_install)
#define rl_callback_handler_remove (*sonde_edit.rl_callback_handler_remove)
#define rl_callback_read_char (*sonde_edit.rl_callback_read_char)
#define rl_forced_update_display (*sonde_edit.rl_forced_update_display)
#define rl_set_prompt (*sonde_edit.rl_set_prompt)
#define rl_prep_terminal (*sonde_edit.rl_prep_terminal)
#define rl_deprep_terminal (*sonde_edit.rl_deprep_terminal)
#define rl_resize_terminal (*sonde_edit.rl_resize_terminal)
#define add_history (*sonde_edit.add_history)
#define read_history (*sonde_edit.read_history)
#define write_history (*sonde_edit.write_history)
#define stifle_history (*sonde_edit.stifle_history)
#define rl_readline_name (*sonde_edit.rl_readline_name)
#define rl_line_buffer (*sonde_edit.rl_line_buffer)
#define rl_point (*sonde_edit.rl_point)
#define rl_catch_signals (*sonde_edit.rl_catch_signals)
#define rl_getc_function (*sonde_edit.rl_getc_function)
#define rl_attempted_completion_function (*sonde_edit.rl_attempted_completion_function)
#define rl_attempted_completion_over (*sonde_edit.rl_attempted_completion_over)
#define rl_basic_word_break_characters (*sonde_edit.rl_basic_word_break_characters)
#define rl_completer_word_break_characters (*sonde_edit.rl_completer_word_break_characters)
#define rl_completion_append_character (*sonde_edit.rl_completion_append_character)
#endif

#endif
