/* curl_dl.c — libcurl loaded on first use (see curl_dl.h for why). */
#include <stdio.h>

#define SONDE_CURL_DL_TABLE
#include "curl_dl.h"

sonde_curl_api sonde_curl;

static const char *const sonames[] = {SONDE_CURL_SONAMES(SONDE_DL_SONAME, SONDE_DL_SONAME) NULL};
SONDE_DL_NOTE(dlopen_note, "http", "sonde.http's transfers (libcurl)", "required", SONDE_CURL_SONAMES);
static const char *const names[] = {SONDE_CURL_NAMES(SONDE_DL_NAME) NULL};
#define SLOT(name) (void **)&sonde_curl.name,
static void **const slots[] = {SONDE_CURL_NAMES(SLOT) NULL};

static int global_init(char *err, size_t errlen) {
    if (sonde_curl.curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) return 0;
    snprintf(err, errlen, "curl_global_init failed");
    return -1;
}

static sonde_dl libcurl = {"libcurl", sonames, names, slots, global_init, 0, "", NULL};

int sonde_curl_load(char *err, size_t errlen) { return sonde_dl_load(&libcurl, err, errlen); }

const char *sonde_curl_soname(void) { return libcurl.soname; }
