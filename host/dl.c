/* dl.c — a shared library opened at first use (see dl.h). */
#include "dl.h"

#include <dlfcn.h>
#include <stdio.h>

static int bind_all(sonde_dl *d) {
    void       *lib = NULL;
    const char *why = NULL;
    size_t      i;
    for (i = 0; !lib && d->sonames[i]; i++) {
        if ((lib = dlopen(d->sonames[i], RTLD_NOW | RTLD_LOCAL))) d->soname = d->sonames[i];
        if (!lib) why = dlerror();
    }
    if (!lib) {
        int n = snprintf(d->error, sizeof d->error, "cannot load %s (tried", d->what);
        for (i = 0; d->sonames[i] && n > 0 && (size_t)n < sizeof d->error; i++)
            n += snprintf(d->error + n, sizeof d->error - n, "%s %s", i ? "," : "", d->sonames[i]);
        if (n > 0 && (size_t)n < sizeof d->error)
            snprintf(d->error + n, sizeof d->error - n, "): %s", why ? why : "not found");
        return -1;
    }
    for (size_t i = 0; d->names[i]; i++) {
        if (!(*d->slots[i] = dlsym(lib, d->names[i]))) {
            snprintf(d->error, sizeof d->error, "%s has no %s: %s", d->what, d->names[i], dlerror());
            return -1;
        }
    }
    return d->init ? d->init(d->error, sizeof d->error) : 0;
}

int sonde_dl_load(sonde_dl *d, char *err, size_t errlen) {
    if (d->loaded == 0) d->loaded = bind_all(d) == 0 ? 1 : -1;
    if (d->loaded < 0) snprintf(err, errlen, "%s", d->error);
    return d->loaded > 0 ? 0 : -1;
}
