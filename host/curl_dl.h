/* curl_dl.h — internal: libcurl loaded with dlopen on first use.
 *
 * libcurl's dependencies (GnuTLS, Kerberos, LDAP...) run constructors that
 * cost about 5 ms at every process start: most of `sonde test`'s start-up
 * when no test makes a request. So sonde does not link libcurl: the first
 * HTTP request loads it, and the curl_* names used by http.c and lhttp.c go
 * through this table. Include it after <curl/curl.h>. */
#ifndef SONDE_CURL_DL_H
#define SONDE_CURL_DL_H

#include <curl/curl.h>

#include "dl.h"

/* the sonames tried, in order: libcurl's ABI has been 4 since 2006; Debian
 * and Ubuntu also ship it built with GnuTLS under another name */
#define SONDE_CURL_SONAMES(FIRST, MORE) FIRST("libcurl.so.4") MORE("libcurl-gnutls.so.4")

/* X(name) for each libcurl function sonde uses */
#define SONDE_CURL_NAMES(X)                                                                                            \
    X(curl_global_init)                                                                                                \
    X(curl_easy_init)                                                                                                  \
    X(curl_easy_setopt)                                                                                                \
    X(curl_easy_getinfo)                                                                                               \
    X(curl_easy_cleanup)                                                                                               \
    X(curl_easy_strerror)                                                                                              \
    X(curl_multi_init)                                                                                                 \
    X(curl_multi_setopt)                                                                                               \
    X(curl_multi_cleanup)                                                                                              \
    X(curl_multi_add_handle)                                                                                           \
    X(curl_multi_remove_handle)                                                                                        \
    X(curl_multi_assign)                                                                                               \
    X(curl_multi_socket_action)                                                                                        \
    X(curl_multi_info_read)                                                                                            \
    X(curl_multi_strerror)                                                                                             \
    X(curl_slist_append)                                                                                               \
    X(curl_slist_free_all)                                                                                             \
    X(curl_version)                                                                                                    \
    X(curl_version_info)

typedef struct sonde_curl_api {
    SONDE_CURL_NAMES(SONDE_DL_FIELD)
} sonde_curl_api;

extern sonde_curl_api sonde_curl;

/* Loads libcurl and runs curl_global_init once; returns 0, or -1 with the
 * reason in err. */
int sonde_curl_load(char *err, size_t errlen);

/* the soname libcurl was loaded from; NULL before */
const char *sonde_curl_soname(void);

/* Each name becomes the pointer in the table (curl_dl.c fills the table
 * under the real names). curl's typecheck-gcc.h wraps three of them in
 * checking macros. */
#ifndef SONDE_CURL_DL_TABLE
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_easy_init (*sonde_curl.curl_easy_init)
#define curl_easy_setopt (*sonde_curl.curl_easy_setopt)
#define curl_easy_getinfo (*sonde_curl.curl_easy_getinfo)
#define curl_easy_cleanup (*sonde_curl.curl_easy_cleanup)
#define curl_easy_strerror (*sonde_curl.curl_easy_strerror)
#define curl_multi_init (*sonde_curl.curl_multi_init)
#define curl_multi_setopt (*sonde_curl.curl_multi_setopt)
#define curl_multi_cleanup (*sonde_curl.curl_multi_cleanup)
#define curl_multi_add_handle (*sonde_curl.curl_multi_add_handle)
#define curl_multi_remove_handle (*sonde_curl.curl_multi_remove_handle)
#define curl_multi_assign (*sonde_curl.curl_multi_assign)
#define curl_multi_socket_action (*sonde_curl.curl_multi_socket_action)
#define curl_multi_info_read (*sonde_curl.curl_multi_info_read)
#define curl_multi_strerror (*sonde_curl.curl_multi_strerror)
#define curl_slist_append (*sonde_curl.curl_slist_append)
#define curl_slist_free_all (*sonde_curl.curl_slist_free_all)
#define curl_version (*sonde_curl.curl_version)
#define curl_version_info (*sonde_curl.curl_version_info)
#endif

#endif
