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

/* sonde_curl (the table), sonde_curl_load (which runs curl_global_init
 * too) and sonde_curl_soname */
SONDE_DL_DECLARE(sonde_curl, SONDE_CURL_NAMES);

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

/* sonde_<call>_<kind>(handle, option, value): curl_<call> with a value of
 * one type only, the prototypes the macros above pick from */
#define SONDE_CURL_TYPED(call, kind, code_t, handle_t, option_t, value_t)                                              \
    static inline code_t sonde_##call##_##kind(handle_t *h, option_t o, value_t v) {                                   \
        return (sonde_curl.curl_##call)(h, o, v);                                                                      \
    }
SONDE_CURL_TYPED(easy_setopt, long, CURLcode, CURL, CURLoption, long)
SONDE_CURL_TYPED(easy_setopt, ptr, CURLcode, CURL, CURLoption, const void *)
SONDE_CURL_TYPED(easy_setopt, off, CURLcode, CURL, CURLoption, curl_off_t)
SONDE_CURL_TYPED(easy_setopt, write_cb, CURLcode, CURL, CURLoption, curl_write_callback)
SONDE_CURL_TYPED(easy_getinfo, string, CURLcode, CURL, CURLINFO, char **)
SONDE_CURL_TYPED(easy_getinfo, long, CURLcode, CURL, CURLINFO, long *)
SONDE_CURL_TYPED(easy_getinfo, off, CURLcode, CURL, CURLINFO, curl_off_t *)
SONDE_CURL_TYPED(multi_setopt, long, CURLMcode, CURLM, CURLMoption, long)
SONDE_CURL_TYPED(multi_setopt, ptr, CURLMcode, CURLM, CURLMoption, const void *)
SONDE_CURL_TYPED(multi_setopt, socket_cb, CURLMcode, CURLM, CURLMoption, curl_socket_callback)
SONDE_CURL_TYPED(multi_setopt, timer_cb, CURLMcode, CURLM, CURLMoption, curl_multi_timer_callback)

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
