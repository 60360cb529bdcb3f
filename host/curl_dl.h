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

/* ------------------------------------------------- typed option setters
 *
 * curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic:
 * a value of the wrong type (an int where curl reads a long, a long where it
 * reads a pointer) is read as garbage. curl numbers every option by the type
 * it takes (CURLOPTTYPE_* ranges, the CURLINFO_* type bits), so sonde calls
 * them through one prototype per type, and these macros pick the prototype
 * from the option at compile time: a value of another type is a compile
 * error (-Werror), and so is an option whose type has no setter here (add
 * one). curl's own checking macros (typecheck-gcc.h) stay defined: they call
 * the real names, which sonde does not link, so a direct curl_easy_setopt()
 * fails the link instead of bypassing these. */
#define sonde_easy_setopt(easy, option, value)                                                                         \
    __builtin_choose_expr(                                                                                             \
        (option) < CURLOPTTYPE_OBJECTPOINT, sonde_easy_setopt_long,                                                    \
        __builtin_choose_expr(                                                                                         \
            (option) < CURLOPTTYPE_FUNCTIONPOINT, sonde_easy_setopt_ptr,                                               \
            __builtin_choose_expr((option) == CURLOPT_WRITEFUNCTION || (option) == CURLOPT_HEADERFUNCTION,             \
                                  sonde_easy_setopt_write_cb,                                                          \
                                  __builtin_choose_expr((option) >= CURLOPTTYPE_OFF_T && (option) < CURLOPTTYPE_BLOB,  \
                                                        sonde_easy_setopt_off, sonde_curl_no_setter_for_this_type))))( \
        easy, option, value)

#define sonde_easy_getinfo(easy, info, out)                                                                            \
    __builtin_choose_expr(((info)&CURLINFO_TYPEMASK) == CURLINFO_STRING, sonde_easy_getinfo_string,                    \
                          __builtin_choose_expr(((info)&CURLINFO_TYPEMASK) == CURLINFO_LONG, sonde_easy_getinfo_long,  \
                                                __builtin_choose_expr(((info)&CURLINFO_TYPEMASK) == CURLINFO_OFF_T,    \
                                                                      sonde_easy_getinfo_off,                          \
                                                                      sonde_curl_no_setter_for_this_type)))(easy,      \
                                                                                                            info, out)

#define sonde_multi_setopt(multi, option, value)                                                                       \
    __builtin_choose_expr(                                                                                             \
        (option) < CURLOPTTYPE_OBJECTPOINT, sonde_multi_setopt_long,                                                   \
        __builtin_choose_expr((option) < CURLOPTTYPE_FUNCTIONPOINT, sonde_multi_setopt_ptr,                            \
                              __builtin_choose_expr((option) == CURLMOPT_SOCKETFUNCTION, sonde_multi_setopt_socket_cb, \
                                                    __builtin_choose_expr((option) == CURLMOPT_TIMERFUNCTION,          \
                                                                          sonde_multi_setopt_timer_cb,                 \
                                                                          sonde_curl_no_setter_for_this_type))))(      \
        multi, option, value)

/* not a function: calling it is the compile error the macros above make */
extern const struct sonde_curl_no_setter sonde_curl_no_setter_for_this_type;

static inline CURLcode sonde_easy_setopt_long(CURL *e, CURLoption o, long v) {
    return (sonde_curl.curl_easy_setopt)(e, o, v);
}
static inline CURLcode sonde_easy_setopt_ptr(CURL *e, CURLoption o, const void *v) {
    return (sonde_curl.curl_easy_setopt)(e, o, v);
}
static inline CURLcode sonde_easy_setopt_off(CURL *e, CURLoption o, curl_off_t v) {
    return (sonde_curl.curl_easy_setopt)(e, o, v);
}
static inline CURLcode sonde_easy_setopt_write_cb(CURL *e, CURLoption o, curl_write_callback v) {
    return (sonde_curl.curl_easy_setopt)(e, o, v);
}
static inline CURLcode sonde_easy_getinfo_string(CURL *e, CURLINFO i, char **out) {
    return (sonde_curl.curl_easy_getinfo)(e, i, out);
}
static inline CURLcode sonde_easy_getinfo_long(CURL *e, CURLINFO i, long *out) {
    return (sonde_curl.curl_easy_getinfo)(e, i, out);
}
static inline CURLcode sonde_easy_getinfo_off(CURL *e, CURLINFO i, curl_off_t *out) {
    return (sonde_curl.curl_easy_getinfo)(e, i, out);
}
static inline CURLMcode sonde_multi_setopt_long(CURLM *m, CURLMoption o, long v) {
    return (sonde_curl.curl_multi_setopt)(m, o, v);
}
static inline CURLMcode sonde_multi_setopt_ptr(CURLM *m, CURLMoption o, const void *v) {
    return (sonde_curl.curl_multi_setopt)(m, o, v);
}
static inline CURLMcode sonde_multi_setopt_socket_cb(CURLM *m, CURLMoption o, curl_socket_callback v) {
    return (sonde_curl.curl_multi_setopt)(m, o, v);
}
static inline CURLMcode sonde_multi_setopt_timer_cb(CURLM *m, CURLMoption o, curl_multi_timer_callback v) {
    return (sonde_curl.curl_multi_setopt)(m, o, v);
}

/* The other names become the pointers in the table (curl_dl.c fills the
 * table under the real names). */
#ifndef SONDE_CURL_DL_TABLE
#define curl_easy_init (*sonde_curl.curl_easy_init)
#define curl_easy_cleanup (*sonde_curl.curl_easy_cleanup)
#define curl_easy_strerror (*sonde_curl.curl_easy_strerror)
#define curl_multi_init (*sonde_curl.curl_multi_init)
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
