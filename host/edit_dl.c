/* edit_dl.c — libedit loaded when a REPL first edits (see edit_dl.h). */
#include <stdio.h>

#include <editline/readline.h>

#include <dlfcn.h>

#define SONDE_EDIT_DL_TABLE
#include "edit_dl.h"

sonde_edit_api sonde_edit;

static int  loaded;
static char load_error[256];

/* libedit's sonames: Debian's, then Fedora's and others', then any */
static const char *const sonames[] = {"libedit.so.2", "libedit.so.0", "libedit.so"};

static int bind_all(void *lib) {
#define SONDE_EDIT_BIND(name)                                                                                          \
    if (!(*(void **)&sonde_edit.name = dlsym(lib, #name))) {                                                           \
        snprintf(load_error, sizeof load_error, "libedit has no %s: %s", #name, dlerror());                            \
        return -1;                                                                                                     \
    }
    SONDE_EDIT_NAMES(SONDE_EDIT_BIND)
#undef SONDE_EDIT_BIND
    return 0;
}

int sonde_edit_load(char *err, size_t errlen) {
    if (loaded == 0) {
        void *lib = NULL;
        for (size_t i = 0; !lib && i < sizeof sonames / sizeof *sonames; i++)
            lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) snprintf(load_error, sizeof load_error, "cannot load libedit: %s", dlerror());
        loaded = lib && bind_all(lib) == 0 ? 1 : -1;
    }
    if (loaded < 0) snprintf(err, errlen, "%s", load_error);
    return loaded > 0 ? 0 : -1;
}
