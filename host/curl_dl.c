/* curl_dl.c — libcurl loaded on first use (see curl_dl.h for why). */
#include "curl_dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

sonde_curl_api sonde_curl;

static int  loaded;
static char load_error[256];

#define BIND(field, name)                                                                                              \
    do {                                                                                                               \
        *(void **)&sonde_curl.field = dlsym(lib, name);                                                                \
        if (!sonde_curl.field) {                                                                                       \
            snprintf(load_error, sizeof load_error, "libcurl has no %s: %s", name, dlerror());                         \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)

static int bind_all(void *lib) {
    BIND(global_init, "curl_global_init");
    BIND(easy_init, "curl_easy_init");
    BIND(easy_setopt, "curl_easy_setopt");
    BIND(easy_getinfo, "curl_easy_getinfo");
    BIND(easy_cleanup, "curl_easy_cleanup");
    BIND(easy_strerror, "curl_easy_strerror");
    BIND(multi_init, "curl_multi_init");
    BIND(multi_setopt, "curl_multi_setopt");
    BIND(multi_cleanup, "curl_multi_cleanup");
    BIND(multi_add_handle, "curl_multi_add_handle");
    BIND(multi_remove_handle, "curl_multi_remove_handle");
    BIND(multi_assign, "curl_multi_assign");
    BIND(multi_socket_action, "curl_multi_socket_action");
    BIND(multi_info_read, "curl_multi_info_read");
    BIND(multi_strerror, "curl_multi_strerror");
    BIND(slist_append, "curl_slist_append");
    BIND(slist_free_all, "curl_slist_free_all");
    BIND(version, "curl_version");
    return 0;
}

int sonde_curl_load(char *err, size_t errlen) {
    if (loaded == 0) {
        /* the soname the build was made against (libcurl's ABI is stable) */
        void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!lib) snprintf(load_error, sizeof load_error, "cannot load libcurl: %s", dlerror());
        loaded = lib && bind_all(lib) == 0 && sonde_curl.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
        if (loaded < 0 && !load_error[0]) snprintf(load_error, sizeof load_error, "curl_global_init failed");
    }
    if (loaded < 0) snprintf(err, errlen, "%s", load_error);
    return loaded > 0 ? 0 : -1;
}
