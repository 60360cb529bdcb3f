/* lrepl.c — sonde.c.repl: the Lua binding of repl.c (the REPL's input).
 *
 * open{edit=bool, history=path, history_size=n} -> editor | nil, err
 *   editor:watch(token)      queue token once stdin has input
 *   editor:unwatch()
 *   editor:prompt(text)      show a prompt and edit a line
 *   editor:feed()            -> "line", text | "eof" | nil (still editing)
 *   editor:pause()           stop editing, terminal back to normal
 *   editor:editing()         -> true while a prompt is shown
 *   editor:redisplay()       redraw prompt and line after other output
 *   editor:read()            -> bytes | "" at end | nil, err (plain mode)
 *   editor:add_history(line) -> true | nil, err
 *   editor:set_completer(fn) fn(text_before_cursor, word) -> {candidates}
 *   editor:close()
 * reset_interrupts(): the host ends the process on a second SIGINT that
 * nobody handled; the REPL handles each one and starts the count again.
 * take_terminate() -> true once after SIGTERM (the interrupt was not Ctrl-C).
 *
 * Misuse raises; runtime failures return nil, "message". */
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "repl.h"

#define EDITOR_MT "sonde.repl.editor"

typedef struct lrepl {
    sonde_repl *r;         /* NULL once closed */
    lua_State  *L;         /* the thread feeding the editor now (completer runs there) */
    int         completer; /* registry ref of the Lua completer, or LUA_NOREF */
} lrepl;

static lrepl *check_editor(lua_State *L) {
    lrepl *h = luaL_checkudata(L, 1, EDITOR_MT);
    if (!h->r) luaL_error(L, "sonde.c.repl: the editor is closed");
    return h;
}

/* ------------------------------------------------------------ completion */

/* Copies the strings of the array at idx into a NULL-terminated C array. */
static char **strings_of(lua_State *L, int idx) {
    size_t n = lua_objlen(L, idx), k = 0;
    char **out = malloc((n + 1) * sizeof *out);
    if (!out) return NULL;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (s && (out[k] = strdup(s))) k++;
        lua_pop(L, 1);
    }
    out[k] = NULL;
    return out;
}

/* Runs the Lua completer on the feeding thread; its errors only mean that
 * nothing completes (a Tab must never end the session). */
static char **complete_in_lua(const char *line, const char *word, void *ud) {
    lrepl     *h = ud;
    lua_State *L = h->L;
    if (!L || h->completer == LUA_NOREF) return NULL;
    int    top = lua_gettop(L);
    char **out = NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->completer);
    lua_pushstring(L, line);
    lua_pushstring(L, word);
    if (lua_pcall(L, 2, 1, 0) == 0 && lua_istable(L, -1)) out = strings_of(L, -1);
    lua_settop(L, top);
    return out;
}

static int editor_set_completer(lua_State *L) {
    lrepl *h = check_editor(L);
    luaL_unref(L, LUA_REGISTRYINDEX, h->completer);
    h->completer = LUA_NOREF;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_pushvalue(L, 2);
        h->completer = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    sonde_repl_set_completer(h->r, complete_in_lua, h);
    return 0;
}

/* ---------------------------------------------------------------- methods */

static int editor_watch(lua_State *L) {
    lrepl *h = check_editor(L);
    return sonde_binding_done(L, sonde_repl_watch(h->r, (int)luaL_checkinteger(L, 2)));
}

/* A method that calls fn on the editor and returns nothing. */
static int editor_do(lua_State *L, void (*fn)(sonde_repl *r)) {
    fn(check_editor(L)->r);
    return 0;
}

static int editor_unwatch(lua_State *L) { return editor_do(L, sonde_repl_unwatch); }

static int editor_prompt(lua_State *L) {
    lrepl *h = check_editor(L);
    sonde_repl_prompt(h->r, luaL_checkstring(L, 2));
    return 0;
}

static int editor_feed(lua_State *L) {
    lrepl *h = check_editor(L);
    char  *line;
    h->L = L;
    int status = sonde_repl_feed(h->r, &line);
    h->L = NULL;
    if (status == SONDE_REPL_MORE) return 0;
    if (status == SONDE_REPL_EOF) {
        lua_pushliteral(L, "eof");
        return 1;
    }
    lua_pushliteral(L, "line");
    lua_pushstring(L, line);
    free(line);
    return 2;
}

static int editor_pause(lua_State *L) { return editor_do(L, sonde_repl_pause); }

static int editor_editing(lua_State *L) {
    lrepl *h = luaL_checkudata(L, 1, EDITOR_MT);
    lua_pushboolean(L, h->r && sonde_repl_editing(h->r));
    return 1;
}

static int editor_redisplay(lua_State *L) { return editor_do(L, sonde_repl_redisplay); }

static int editor_read(lua_State *L) {
    lrepl  *h = check_editor(L);
    char    buf[16384];
    ssize_t n = sonde_repl_read(h->r, buf, sizeof buf);
    if (n < 0) {
        lua_pushnil(L);
        lua_pushstring(L, uv_strerror((int)n));
        lua_pushstring(L, uv_err_name((int)n));
        return 3;
    }
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

static int editor_add_history(lua_State *L) {
    lrepl *h = check_editor(L);
    if (sonde_repl_add_history(h->r, luaL_checkstring(L, 2)) != 0)
        return sonde_binding_error(L, "cannot write the history file");
    lua_pushboolean(L, 1);
    return 1;
}

static int editor_close(lua_State *L) {
    lrepl *h = luaL_checkudata(L, 1, EDITOR_MT);
    if (h->r) sonde_repl_close(h->r);
    h->r = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, h->completer);
    h->completer = LUA_NOREF;
    return 0;
}

/* ------------------------------------------------------------------ module */

/* A string field of the options table, or NULL. */
static const char *opt_string(lua_State *L, const char *key) {
    lua_getfield(L, 1, key);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "sonde.c.repl.open: %s must be a string", key);
    const char *s = lua_tostring(L, -1); /* stays valid: the options table holds it */
    lua_pop(L, 1);
    return s;
}

static int repl_open(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_repl_opts o;
    lua_getfield(L, 1, "edit");
    o.edit = lua_toboolean(L, -1);
    lua_pop(L, 1);
    o.history_path = opt_string(L, "history");
    o.history_size = (int)sonde_binding_optnumber(L, "history_size", 0);
    lrepl *h = lua_newuserdata(L, sizeof *h);
    h->r = NULL;
    h->L = NULL;
    h->completer = LUA_NOREF;
    luaL_getmetatable(L, EDITOR_MT);
    lua_setmetatable(L, -2);
    int err = 0;
    h->r = sonde_repl_open(sonde_binding_loop(L), &o, &err);
    if (!h->r)
        return sonde_binding_error(L, err == UV_EBUSY ? "a REPL is already open in this process" : uv_strerror(err));
    return 1;
}

static int repl_reset_interrupts(lua_State *L) {
    sonde_binding_loop(L)->interrupts = 0;
    return 0;
}

static int repl_take_terminate(lua_State *L) {
    lua_pushboolean(L, sonde_repl_take_terminate());
    return 1;
}

int luaopen_sonde_c_repl(lua_State *L) {
    static const luaL_Reg methods[] = {
        SONDE_FN(editor, watch),         SONDE_FN(editor, unwatch), SONDE_FN(editor, prompt),
        SONDE_FN(editor, feed),          SONDE_FN(editor, pause),   SONDE_FN(editor, editing),
        SONDE_FN(editor, redisplay),     SONDE_FN(editor, read),    SONDE_FN(editor, add_history),
        SONDE_FN(editor, set_completer), SONDE_FN(editor, close),   {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        SONDE_FN(repl, open), SONDE_FN(repl, reset_interrupts), SONDE_FN(repl, take_terminate), {NULL, NULL}};
    return sonde_binding_family(L, EDITOR_MT, methods, editor_close, funcs);
}
