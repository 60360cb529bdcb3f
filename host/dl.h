/* dl.h — internal: a shared library opened with dlopen at first use, the
 * names sonde uses from it bound into a table of pointers. libcurl
 * (curl_dl.h) and libedit (edit_dl.h) are loaded so, not linked: each
 * header says why. */
#ifndef SONDE_DL_H
#define SONDE_DL_H

#include <stddef.h>

typedef struct sonde_dl {
    const char        *what;               /* "libcurl", in messages */
    const char *const *sonames;            /* tried in order; NULL ends them */
    const char *const *names;              /* the names to bind; NULL ends them */
    void **const      *slots;              /* slots[i]: where names[i]'s address goes */
    int (*init)(char *err, size_t errlen); /* optional: run once, after binding */
    int  loaded;                           /* 0: not yet; 1: bound; -1: failed */
    char error[256];
} sonde_dl;

/* Opens and binds d once (and runs its init); returns 0, or -1 with the
 * reason in err, the same reason every time after a failure. */
int sonde_dl_load(sonde_dl *d, char *err, size_t errlen);

/* X(name) lists of a table's names become these initializers */
#define SONDE_DL_NAME(name) #name,
#define SONDE_DL_FIELD(name) __typeof__(name) *name;

#endif
