/* ljournal.c — sonde.c.journal: the runner's side of journal.h. */
#include <stdint.h>
#include <string.h>

#include "binding.h"
#include "journal.h"

static sonde_journal_head *head(lua_State *L) {
    sonde_journal_head *h = sonde_journal();
    if (!h) luaL_error(L, "this run has no journal (not a protected serial `sonde test` run)");
    return h;
}

/* active() -> whether this process runs a protected serial run. */
static int lj_active(lua_State *L) {
    lua_pushboolean(L, sonde_journal() != NULL);
    return 1;
}

/* What the runner calls for every step and every passing test, through
 * the FFI (hot_calls): a call of a Lua C function from JIT-compiled code
 * leaves the trace, which cost a 5000-test run 5 ms (8%); an FFI call is
 * compiled in. Each returns 0, or -1 when there is no journal or it cannot
 * grow. */
static int journal_start(double step) {
    sonde_journal_head *h = sonde_journal();
    if (!h) return -1;
    h->step = (uint64_t)step;
    h->in_step = 1;
    return 0;
}

static int journal_pass(double step, double duration, double requests) {
    return sonde_journal_append(SONDE_JOURNAL_PASS, (uint64_t)step, duration, (uint32_t)requests, NULL, 0);
}

/* hot_calls() -> start, pass: journal_start and journal_pass, as light
 * userdata for ffi.cast("int (*)(double)", start) and ffi.cast("int
 * (*)(double, double, double)", pass). */
static int lj_hot_calls(lua_State *L) {
    lua_pushlightuserdata(L, (void *)(uintptr_t)journal_start);
    lua_pushlightuserdata(L, (void *)(uintptr_t)journal_pass);
    return 2;
}

/* done(): no step runs (its results are journaled). */
static int lj_done(lua_State *L) {
    head(L)->in_step = 0;
    return 0;
}

static int appended(lua_State *L, int rc) {
    if (rc != 0) return luaL_error(L, "cannot grow the run's journal (out of memory?)");
    return 0;
}

/* event(step, json): any other event, after that step started. */
static int lj_event(lua_State *L) {
    head(L);
    size_t      len;
    const char *json = luaL_checklstring(L, 2, &len);
    return appended(
        L, sonde_journal_append(SONDE_JOURNAL_EVENT, (uint64_t)luaL_checknumber(L, 1), 0, 0, json, (uint32_t)len));
}

/* resume() -> nil, or the step an earlier image of this process died in
 * and how. */
static int lj_resume(lua_State *L) {
    sonde_journal_head *h = sonde_journal();
    if (!h || h->resume_at == 0) return 0;
    lua_pushnumber(L, (lua_Number)h->resume_at);
    lua_pushlstring(L, h->how, strnlen(h->how, sizeof h->how)); /* in memory a test could write over */
    return 2;
}

/* stops() -> how many SIGINT/SIGTERM asked the run to stop so far (one may
 * have come while sonde restarted). */
static int lj_stops(lua_State *L) {
    sonde_journal_head *h = sonde_journal();
    lua_pushinteger(L, h ? (lua_Integer)h->stops : 0);
    return 1;
}

/* The length of the record at `at`, text and padding included, or 0 when
 * it is no record: the image that wrote the journal died, maybe of a test
 * that wrote over memory, so nothing in it is trusted. */
static size_t record_size(const char *at, const char *end) {
    const sonde_journal_record *r = (const sonde_journal_record *)at;
    if ((size_t)(end - at) < sizeof *r) return 0;
    if (r->kind != SONDE_JOURNAL_PASS && r->kind != SONDE_JOURNAL_EVENT) return 0;
    size_t padded = ((size_t)r->len + 7) & ~(size_t)7;
    if (padded > (size_t)(end - at) - sizeof *r) return 0;
    return sizeof *r + padded;
}

static void push_record(lua_State *L, const sonde_journal_record *r) {
    lua_createtable(L, 3, 0);
    lua_pushnumber(L, (lua_Number)r->step);
    lua_rawseti(L, -2, 1);
    if (r->kind == SONDE_JOURNAL_PASS) {
        lua_pushnumber(L, r->duration);
        lua_rawseti(L, -2, 2);
        lua_pushinteger(L, (lua_Integer)r->requests);
        lua_rawseti(L, -2, 3);
    } else {
        lua_pushlstring(L, (const char *)(r + 1), r->len);
        lua_rawseti(L, -2, 2);
    }
}

/* records() -> list of {step, duration, requests} (a pass) or {step,
 * json} (any other event), in the order they were written; and the bytes
 * left unread after a record that is no record (0: none). The journal is
 * cut there, so that what this image journals follows what it read. */
static int lj_records(lua_State *L) {
    uint64_t    len;
    const char *first = sonde_journal_records(&len), *at = first;
    lua_newtable(L);
    if (!first) return 1;
    const char *end = first + len;
    size_t      size;
    for (int n = 1; at < end && (size = record_size(at, end)) != 0; n++, at += size) {
        push_record(L, (const sonde_journal_record *)at);
        lua_rawseti(L, -2, n);
    }
    lua_pushnumber(L, (lua_Number)(end - at));
    sonde_journal()->length = (uint64_t)(at - first);
    return 2;
}

int luaopen_sonde_c_journal(lua_State *L) {
    static const luaL_Reg funcs[] = {
        SONDE_FN(lj, active),  SONDE_FN(lj, done),  SONDE_FN(lj, event),     SONDE_FN(lj, resume),
        SONDE_FN(lj, records), SONDE_FN(lj, stops), SONDE_FN(lj, hot_calls), {NULL, NULL},
    };
    return sonde_binding_module(L, funcs);
}
