/* edit_dl.c — libedit loaded when a REPL first edits (see edit_dl.h). */
#include <stdio.h>

#include <editline/readline.h>

#define SONDE_EDIT_DL_TABLE
#include "dl.h"
#include "edit_dl.h"

sonde_edit_api sonde_edit;

/* libedit's sonames: Debian's, then Fedora's and others', then any */
static const char *const sonames[] = {"libedit.so.2", "libedit.so.0", "libedit.so", NULL};
static const char *const names[] = {SONDE_EDIT_NAMES(SONDE_DL_NAME) NULL};
#define SLOT(name) (void **)&sonde_edit.name,
static void **const slots[] = {SONDE_EDIT_NAMES(SLOT) NULL};

static sonde_dl libedit = {"libedit", sonames, names, slots, NULL, 0, ""};

int sonde_edit_load(char *err, size_t errlen) { return sonde_dl_load(&libedit, err, errlen); }
