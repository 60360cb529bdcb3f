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

typedef struct sonde_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *e, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *e);
    const char *(*easy_strerror)(CURLcode rc);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption option, ...);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    const char *(*multi_strerror)(CURLMcode rc);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    char *(*version)(void);
} sonde_curl_api;

extern sonde_curl_api sonde_curl;

/* Loads libcurl and runs curl_global_init once; returns 0, or -1 with the
 * reason in err. */
int sonde_curl_load(char *err, size_t errlen);

/* curl's typecheck-gcc.h wraps these three in checking macros */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

#define curl_easy_init sonde_curl.easy_init
#define curl_easy_setopt sonde_curl.easy_setopt
#define curl_easy_getinfo sonde_curl.easy_getinfo
#define curl_easy_cleanup sonde_curl.easy_cleanup
#define curl_easy_strerror sonde_curl.easy_strerror
#define curl_multi_init sonde_curl.multi_init
#define curl_multi_setopt sonde_curl.multi_setopt
#define curl_multi_cleanup sonde_curl.multi_cleanup
#define curl_multi_add_handle sonde_curl.multi_add_handle
#define curl_multi_remove_handle sonde_curl.multi_remove_handle
#define curl_multi_assign sonde_curl.multi_assign
#define curl_multi_socket_action sonde_curl.multi_socket_action
#define curl_multi_info_read sonde_curl.multi_info_read
#define curl_multi_strerror sonde_curl.multi_strerror
#define curl_slist_append sonde_curl.slist_append
#define curl_slist_free_all sonde_curl.slist_free_all

#endif
