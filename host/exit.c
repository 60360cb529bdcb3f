/* exit.c — exit() and _exit() as the sonde binary defines them.
 *
 * Exported from the executable (CMakeLists.txt), these come before libc's
 * for every caller: sonde's own code, C modules, and the FFI's ffi.C.exit.
 * In a step of a protected serial run, a call is that step's death, and
 * sonde restarts to go on with the run (protect.c); anywhere else it is
 * libc's. Only in the sonde binary: a program embedding libsonde keeps
 * its own exit. (_Exit and a raw exit_group are not caught.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "protect.h"

typedef void (*exit_fn)(int) __attribute__((noreturn));

void exit(int code) {
    sonde_protect_exit_called("exit", code);
    exit_fn real = (exit_fn)dlsym(RTLD_NEXT, "exit");
    if (real) real(code);
    _Exit(code); /* no libc exit to find: leave without its handlers */
}

/* Async-signal-safe, as libc's: _Exit is libc's _exit under another name. */
void _exit(int code) {
    sonde_protect_exit_called("_exit", code);
    _Exit(code);
}
