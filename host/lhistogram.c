/* lhistogram.c — sonde.c.histogram: the Lua binding of histogram.h.
 *
 * new() -> h; h:record(v[, n]) is the hot call (one per sample of a
 * trend). h:dump() and load(t) carry a histogram through JSON (`sonde load
 * --out json` and `sonde load merge`). Misuse raises. */
#include <math.h>

#include "binding.h"
#include "histogram.h"

#define HIST_MT "sonde.c.histogram"

static sonde_hist *check_hist(lua_State *L, int i) {
    sonde_hist *h = *(sonde_hist **)luaL_checkudata(L, i, HIST_MT);
    if (!h) luaL_error(L, "histogram already closed");
    return h;
}

static int out_of_memory(lua_State *L) { return luaL_error(L, "histogram: out of memory"); }

static sonde_hist **push_new(lua_State *L) {
    sonde_hist **box = (sonde_hist **)sonde_box_new(L, HIST_MT);
    if (!(*box = sonde_hist_new())) out_of_memory(L);
    return box;
}

/* new() -> an empty histogram */
static int hist_new(lua_State *L) {
    push_new(L);
    return 1;
}

static double check_finite(lua_State *L, int i) {
    double v = luaL_checknumber(L, i);
    if (!isfinite(v)) luaL_error(L, "histogram: cannot record %f (expected a finite number)", v);
    return v;
}

/* record(v[, n=1]): v, n times */
static int hist_record(lua_State *L) {
    sonde_hist *h = check_hist(L, 1);
    double      v = check_finite(L, 2), n = luaL_optnumber(L, 3, 1);
    if (!(n >= 0) || n != floor(n)) return luaL_error(L, "histogram: a count must be a whole number >= 0");
    if (sonde_hist_record(h, v, (uint64_t)n) != 0) return out_of_memory(L);
    return 0;
}

/* merge(other): adds other's values */
static int hist_merge(lua_State *L) {
    if (sonde_hist_merge(check_hist(L, 1), check_hist(L, 2)) != 0) return out_of_memory(L);
    return 0;
}

/* quantile(q) -> the q-quantile, 0 <= q <= 1, k6's interpolation */
static int hist_quantile(lua_State *L) {
    sonde_hist *h = check_hist(L, 1);
    double      q = luaL_checknumber(L, 2);
    if (!(q >= 0 && q <= 1)) return luaL_error(L, "histogram: a quantile must be from 0 to 1, got %f", q);
    lua_pushnumber(L, sonde_hist_quantile(h, q));
    return 1;
}

/* stats() -> count, min, max, sum */
static int hist_stats(lua_State *L) {
    sonde_hist *h = check_hist(L, 1);
    lua_pushnumber(L, (lua_Number)h->count);
    lua_pushnumber(L, h->min);
    lua_pushnumber(L, h->max);
    lua_pushnumber(L, h->sum);
    return 4;
}

static int hist_reset(lua_State *L) {
    sonde_hist_reset(check_hist(L, 1));
    return 0;
}

static void set_number(lua_State *L, const char *key, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

/* dump() -> {count=, min=, max=, sum=, buckets={index, count, ...}} */
static int hist_dump(lua_State *L) {
    sonde_hist *h = check_hist(L, 1);
    lua_createtable(L, 0, 5);
    set_number(L, "count", (double)h->count);
    set_number(L, "min", h->min);
    set_number(L, "max", h->max);
    set_number(L, "sum", h->sum);
    lua_newtable(L);
    int      index = -SONDE_HIST_BUCKETS - 1, n = 0;
    uint64_t count;
    while (sonde_hist_next(h, &index, &count)) {
        lua_pushinteger(L, index);
        lua_rawseti(L, -2, ++n);
        lua_pushnumber(L, (lua_Number)count);
        lua_rawseti(L, -2, ++n);
    }
    lua_setfield(L, -2, "buckets");
    return 1;
}

static double field_number(lua_State *L, int t, const char *key) {
    lua_getfield(L, t, key);
    if (!lua_isnumber(L, -1)) luaL_error(L, "histogram.load: field '%s' must be a number", key);
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Adds the (index, count) pairs of t.buckets to h; returns their total. */
static double load_buckets(lua_State *L, sonde_hist *h) {
    lua_getfield(L, 1, "buckets");
    luaL_argcheck(L, lua_istable(L, -1), 1, "histogram.load: field 'buckets' must be a list");
    int    len = (int)lua_objlen(L, -1);
    double total = 0;
    if (len % 2) luaL_error(L, "histogram.load: 'buckets' must hold index, count pairs");
    for (int i = 1; i <= len; i += 2) {
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -2, i + 1);
        double index = lua_tonumber(L, -2), n = lua_tonumber(L, -1);
        lua_pop(L, 2);
        if (index != floor(index) || !(n >= 0) || n != floor(n) ||
            sonde_hist_add_bucket(h, (int)index, (uint64_t)n) != 0)
            luaL_error(L, "histogram.load: bucket pair %d (%f, %f) is no index and count", i / 2 + 1, index, n);
        total += n;
    }
    lua_pop(L, 1);
    return total;
}

/* load(t) -> the histogram h:dump() returned as t */
static int hist_load(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    sonde_hist *h = *push_new(L);
    double      count = field_number(L, 1, "count");
    h->min = field_number(L, 1, "min");
    h->max = field_number(L, 1, "max");
    h->sum = field_number(L, 1, "sum");
    if (load_buckets(L, h) != count) return luaL_error(L, "histogram.load: the buckets do not add up to its count");
    h->count = (uint64_t)count;
    return 1;
}

/* bucket_value(v) -> what a percentile falling on v reads (its bucket's
 * middle) */
static int hist_bucket_value(lua_State *L) {
    lua_pushnumber(L, sonde_hist_bucket_value(sonde_hist_index(check_finite(L, 1))));
    return 1;
}

/* layout() -> a name for the bucket layout: histograms merge only when
 * theirs are the same */
static int hist_layout(lua_State *L) {
    lua_pushfstring(L, "log-linear/%d/%d..%d", SONDE_HIST_SUB, SONDE_HIST_MIN_EXP, SONDE_HIST_MAX_EXP);
    return 1;
}

static int hist_close(lua_State *L) {
    sonde_hist_free(sonde_box_take(L, HIST_MT));
    return 0;
}

int luaopen_sonde_c_histogram(lua_State *L) {
    static const luaL_Reg methods[] = {SONDE_FN(hist, record), SONDE_FN(hist, merge), SONDE_FN(hist, quantile),
                                       SONDE_FN(hist, stats),  SONDE_FN(hist, reset), SONDE_FN(hist, dump),
                                       SONDE_FN(hist, close),  {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        SONDE_FN(hist, new), SONDE_FN(hist, load), SONDE_FN(hist, bucket_value), SONDE_FN(hist, layout), {NULL, NULL}};
    return sonde_binding_family(L, HIST_MT, methods, hist_close, funcs);
}
