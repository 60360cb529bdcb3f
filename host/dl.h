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
    int         loaded;                    /* 0: not yet; 1: bound; -1: failed */
    char        error[256];
    const char *soname; /* the one opened, once bound */
} sonde_dl;

/* Opens and binds d once (and runs its init); returns 0, or -1 with the
 * reason in err, the same reason every time after a failure. */
int sonde_dl_load(sonde_dl *d, char *err, size_t errlen);

/* X(name) lists of a table's names become these initializers */
#define SONDE_DL_NAME(name) #name,
#define SONDE_DL_FIELD(name) __typeof__(name) *name;

/* What the header of a library loaded so declares, for a prefix sonde_x and
 * its list of NAMES: the table sonde_x (of type sonde_x_api), a pointer of
 * each name's type under the name (the library's own header gives the
 * types); sonde_x_load(err, errlen), which loads and binds the library once
 * and returns 0, or -1 with the reason in err; sonde_x_soname(), the soname
 * it was loaded from (NULL before). */
#define SONDE_DL_DECLARE(prefix, NAMES)                                                                                \
    typedef struct prefix##_api {                                                                                      \
        NAMES(SONDE_DL_FIELD)                                                                                          \
    } prefix##_api;                                                                                                    \
    extern prefix##_api prefix;                                                                                        \
    int                 prefix##_load(char *err, size_t errlen);                                                       \
    const char         *prefix##_soname(void)

/* A library's sonames are a list SONAMES(FIRST, MORE) of string literals,
 * FIRST("libx.so.1") MORE("libx-other.so.1"): the array dlopen tries ... */
#define SONDE_DL_SONAME(soname) soname,
/* ... and the JSON array of its ELF note */
#define SONDE_DL_JSON_FIRST(soname) "\"" soname "\""
#define SONDE_DL_JSON_MORE(soname) ",\"" soname "\""

/* SONDE_DL_NOTE(var, "feature", "what it is for", "required", SONAMES) puts
 * in the ELF file a note saying which libraries it dlopens, as systemd
 * specifies (https://systemd.io/ELF_DLOPEN_METADATA/): section .note.dlopen,
 * owner "FDO", type 0x407c0c0a, a JSON array of {feature, description,
 * priority, soname}. Packaging reads it (scripts/deb-depends): the dynamic
 * linker cannot see these dependencies. */
#define SONDE_DL_NOTE_OWNER "FDO"
#define SONDE_DL_NOTE_TYPE 0x407c0c0au
#define SONDE_DL_NOTE(var, feature, description, priority, SONAMES)                                                    \
    SONDE_DL_NOTE_JSON(var,                                                                                            \
                       "[{\"feature\":\"" feature "\",\"description\":\"" description "\",\"priority\":\"" priority    \
                       "\",\"soname\":[" SONAMES(SONDE_DL_JSON_FIRST, SONDE_DL_JSON_MORE) "]}]")
#define SONDE_DL_NOTE_JSON(var, json)                                                                                  \
    __attribute__((used, section(".note.dlopen"))) _Alignas(4) static const struct {                                   \
        struct {                                                                                                       \
            unsigned int namesz, descsz, type;                                                                         \
        } header;                                                                                                      \
        char owner[sizeof SONDE_DL_NOTE_OWNER];                                                                        \
        _Alignas(4) char desc[sizeof json];                                                                            \
    } var = {{sizeof SONDE_DL_NOTE_OWNER, sizeof json, SONDE_DL_NOTE_TYPE}, SONDE_DL_NOTE_OWNER, json}

#endif
