/* edit_dl.c — libedit loaded when a REPL first edits (see edit_dl.h). */
#include <stdio.h>

#include <editline/readline.h>

#define SONDE_EDIT_DL_TABLE
#include "dl.h"
#include "edit_dl.h"

sonde_edit_api sonde_edit;

static const char *const sonames[] = {SONDE_EDIT_SONAMES(SONDE_DL_SONAME, SONDE_DL_SONAME) NULL};
SONDE_DL_NOTE(dlopen_note, "repl-editing", "line editing and history in sonde's REPL (libedit)", "required",
              SONDE_EDIT_SONAMES);
static const char *const names[] = {SONDE_EDIT_NAMES(SONDE_DL_NAME) NULL};
#define SLOT(name) (void **)&sonde_edit.name,
static void **const slots[] = {SONDE_EDIT_NAMES(SLOT) NULL};

static sonde_dl libedit = {"libedit", sonames, names, slots, NULL, 0, "", NULL};

int sonde_edit_load(char *err, size_t errlen) { return sonde_dl_load(&libedit, err, errlen); }

const char *sonde_edit_soname(void) { return libedit.soname; }
