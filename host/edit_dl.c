/* edit_dl.c — libedit loaded when a REPL first edits (see edit_dl.h). */
#include <stdio.h>

#include <editline/readline.h>

#include <dlfcn.h>

#define SONDE_EDIT_DL_TABLE
#include "edit_dl.h"

sonde_edit_api sonde_edit;

static int  loaded;
static char load_error[256];

/* the soname the build was made against */
#define SONDE_EDIT_SONAME "libedit.so.2"

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
        void *lib = dlopen(SONDE_EDIT_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!lib) snprintf(load_error, sizeof load_error, "cannot load libedit: %s", dlerror());
        loaded = lib && bind_all(lib) == 0 ? 1 : -1;
    }
    if (loaded < 0) snprintf(err, errlen, "%s", load_error);
    return loaded > 0 ? 0 : -1;
}
