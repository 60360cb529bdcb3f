-- sonde.load.options: a load script's `options` (and the command line's
-- --vus/--duration/--iterations) checked and turned into scenarios, as k6
-- reads its options: every scenario gets its executor's defaults, the
-- shortcuts (vus, duration, iterations, stages) make a scenario "default",
-- and --segment K/N takes this machine's share of VUs, iterations and
-- arrivals.
--
-- Every mistake raises an OptionError: one line of message plus the texts
-- (`needles`) to look for in the script's source, so that the line that
-- wrote the mistake can be named (a Lua table keeps no line numbers).
local M = {}

-- ---------------------------------------------------------------- errors

local OptionError = {}
OptionError.__index = OptionError
OptionError.__tostring = function(e) return e.message end
M.OptionError = OptionError

local function fail(message, ...)
  error(setmetatable({ message = message, needles = { ... } }, OptionError), 0)
end

function M.is_error(e) return getmetatable(e) == OptionError end

-- The needles a string value is written as in Lua source.
local function quoted(s) return '"' .. s .. '"', "'" .. s .. "'", "[[" .. s .. "]]" end

-- The needle of a key written as `key =` (or ["key"] =).
local function key_of(k) return { key = tostring(k) } end

-- find_key(source, k, from) -> where `k =` (or ["k"] =) is written at or
-- after position from, or nil.
local function find_key(source, k, from)
  local e = k:gsub("%p", "%%%0")
  local a = source:find("%f[%w_]" .. e .. "%s*=", from)
  local b = source:find("%[%s*[\"']" .. e .. "[\"']%s*%]%s*=", from)
  if a and b then return math.min(a, b) end
  return a or b
end

-- item_pos(source, at, i) -> where the i-th table of the list written
-- after position `at` (`key = { {...}, {...} }`) opens, or nil.
local function item_pos(source, at, i)
  local open = source:find("{", at, true)
  if not open then return nil end
  local depth, n = 0, 0
  for p = open, #source do
    local c = source:sub(p, p)
    if c == "{" then
      depth = depth + 1
      if depth == 2 then
        n = n + 1
        if n == i then return p end
      end
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return nil end
    end
  end
end

-- position(source, needle) -> where a needle is: plain text, or {key=,
-- within=, item=}: `key =` (after `within =` when given), or the item-th
-- table of the list written there.
local function position(source, needle)
  if type(needle) == "string" then return source:find(needle, 1, true) end
  local from = 1
  if needle.within then from = find_key(source, needle.within, 1) or 1 end
  local at = find_key(source, needle.key, from)
  if at and needle.item then return item_pos(source, at, needle.item) or at end
  return at
end

-- locate(source, needles) -> the line of source holding the first needle
-- found, or nil.
function M.locate(source, needles)
  if not source then return nil end
  for _, needle in ipairs(needles or {}) do
    local at = position(source, needle)
    if at then
      local _, newlines = source:sub(1, at):gsub("\n", "")
      return newlines + 1
    end
  end
end

-- ------------------------------------------------------------- durations

local UNITS = { ns = 1e-9, us = 1e-6, ["µs"] = 1e-6, ms = 1e-3, s = 1, m = 60, h = 3600 }

-- seconds("1m30s") -> 90 | nil: Go's (and k6's) durations; a number is
-- seconds already.
function M.seconds(v)
  if type(v) == "number" then return v == v and v >= 0 and v < math.huge and v or nil end
  if type(v) ~= "string" or v == "" then return nil end
  local total, rest = 0, v
  while rest ~= "" do
    local num, unit, after = rest:match("^(%d+%.?%d*)(%a+)(.*)$")
    if not num then num, unit, after = rest:match("^(%d+%.?%d*)(µs)(.*)$") end
    if not num or not UNITS[unit] then return nil end
    total, rest = total + tonumber(num) * UNITS[unit], after
  end
  return total
end

-- format_duration(90) -> "1m30s", for the scenario lines.
function M.format_duration(s)
  if s >= 3600 and s % 60 == 0 then return string.format("%dh%dm", s / 3600, (s % 3600) / 60) end
  if s >= 60 then
    local m, rest = math.floor(s / 60), s % 60
    return rest == 0 and (m .. "m") or string.format("%dm%gs", m, rest)
  end
  if s < 1 and s > 0 then return string.format("%gms", s * 1000) end
  return string.format("%gs", s)
end

-- ----------------------------------------------------------- the schema

-- Kinds: count (whole >= 0), positive (number > 0), duration, string,
-- table, stages, function (a name of one in the script).
local COMMON = { executor = "string", start_time = "duration", graceful_stop = "duration", exec = "string",
  tags = "table" }

local EXECUTORS = {
  ["shared-iterations"] = { vus = "count", iterations = "count", max_duration = "duration" },
  ["per-vu-iterations"] = { vus = "count", iterations = "count", max_duration = "duration" },
  ["constant-vus"] = { vus = "count", duration = "duration" },
  ["ramping-vus"] = { start_vus = "count", stages = "stages", graceful_ramp_down = "duration" },
  ["constant-arrival-rate"] = { rate = "positive", time_unit = "duration", duration = "duration",
    pre_allocated_vus = "count", max_vus = "count" },
  ["ramping-arrival-rate"] = { start_rate = "count", time_unit = "duration", stages = "stages",
    pre_allocated_vus = "count", max_vus = "count" },
}
M.EXECUTORS = EXECUTORS

local DEFAULTS = {
  ["shared-iterations"] = { vus = 1, iterations = 1, max_duration = 600 },
  ["per-vu-iterations"] = { vus = 1, iterations = 1, max_duration = 600 },
  ["constant-vus"] = { vus = 1 },
  ["ramping-vus"] = { start_vus = 1, graceful_ramp_down = 30 },
  ["constant-arrival-rate"] = { time_unit = 1 },
  ["ramping-arrival-rate"] = { start_rate = 0, time_unit = 1 },
}

local REQUIRED = {
  ["constant-vus"] = { "duration" },
  ["ramping-vus"] = { "stages" },
  ["constant-arrival-rate"] = { "rate", "duration", "pre_allocated_vus" },
  ["ramping-arrival-rate"] = { "stages", "pre_allocated_vus" },
}

local TOP = { scenarios = "table", thresholds = "table", vus = "count", duration = "duration",
  iterations = "count", stages = "stages", setup_timeout = "duration", teardown_timeout = "duration",
  summary_trend_stats = "table", tags = "table" }

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

local function names(t) return table.concat(sorted_keys(t), ", ") end

local KIND_TEXT = { count = "a whole number >= 0", positive = "a number > 0", table = "a table",
  string = "a string", duration = "a duration such as \"30s\", \"1m30s\" or \"500ms\" (or seconds)",
  stages = "a list of {duration=, target=} stages" }

local function check_stages(what, stages, within)
  if #stages == 0 then
    fail(what .. ": stages must be a non-empty list of {duration=, target=}", { key = "stages", within = within })
  end
  local out = {}
  for i, st in ipairs(stages) do
    local where = string.format("%s: stage %d", what, i)
    local here = { key = "stages", within = within, item = i }
    if type(st) ~= "table" then fail(where .. " must be a table {duration=, target=}", here) end
    for k in pairs(st) do
      if k ~= "duration" and k ~= "target" then
        fail(string.format("%s: unknown key '%s' (expected duration and target)", where, tostring(k)), here)
      end
    end
    if st.duration == nil then fail(where .. " has no duration (expected {duration=\"30s\", target=N})", here) end
    local d = M.seconds(st.duration)
    if not d then
      fail(string.format("%s: duration must be %s, got %s", where, KIND_TEXT.duration, tostring(st.duration)), here)
    end
    local target = st.target
    if type(target) ~= "number" or target < 0 or target % 1 ~= 0 then
      fail(string.format("%s: target must be a whole number >= 0, got %s", where, tostring(target)), here)
    end
    out[i] = { duration = d, target = target }
  end
  return out
end

-- check_value(what, key, v, kind) -> v in its normal form (seconds for a
-- duration), or fails naming it.
local function check_value(what, key, v, kind, within)
  if kind == "stages" then
    if type(v) ~= "table" then fail(what .. ": stages must be " .. KIND_TEXT.stages, { key = key, within = within }) end
    return check_stages(what, v, within)
  end
  local ok
  if kind == "duration" then
    local s = M.seconds(v)
    if s then return s end
  elseif kind == "count" then
    ok = type(v) == "number" and v >= 0 and v % 1 == 0 and v < math.huge
  elseif kind == "positive" then
    ok = type(v) == "number" and v > 0 and v < math.huge
  else
    ok = type(v) == kind
  end
  if ok then return v end
  local shown = type(v) == "string" and ("'" .. v .. "'") or tostring(v)
  fail(string.format("%s: %s must be %s, got %s", what, key, KIND_TEXT[kind], shown), { key = key, within = within })
end

-- -------------------------------------------------------------- scenarios

-- scenario(name, raw, env) -> a checked scenario with its defaults.
local function scenario(name, raw, env)
  local what = "scenario '" .. name .. "'"
  if type(raw) ~= "table" then fail(what .. " must be a table with an executor", key_of(name)) end
  local executor = raw.executor
  if executor == nil then
    fail(what .. " has no executor (expected one of: " .. names(EXECUTORS) .. ")", key_of(name))
  end
  local fields = EXECUTORS[executor]
  if not fields then
    fail(string.format("%s: unknown executor '%s' (expected one of: %s)", what, tostring(executor), names(EXECUTORS)),
      quoted(tostring(executor)))
  end
  local sc = { name = name, executor = executor, start_time = 0, graceful_stop = 30, exec = "default", tags = {} }
  for k, v in pairs(DEFAULTS[executor]) do sc[k] = v end
  for k, v in pairs(raw) do
    local kind = COMMON[k] or fields[k]
    if not kind then
      local allowed = {}
      for f in pairs(COMMON) do allowed[f] = true end
      for f in pairs(fields) do allowed[f] = true end
      fail(string.format("%s (%s): unknown option '%s' (expected one of: %s)", what, executor, tostring(k),
        names(allowed)), { key = tostring(k), within = name })
    end
    sc[k] = check_value(what, k, v, kind, name)
  end
  for _, k in ipairs(REQUIRED[executor] or {}) do
    if raw[k] == nil then fail(string.format("%s (%s) needs %s", what, executor, k), key_of(name)) end
  end
  if (executor == "constant-vus" or executor == "constant-arrival-rate") and sc.duration <= 0 then
    fail(what .. ": duration must be more than 0", { key = "duration", within = name })
  end
  if sc.time_unit and sc.time_unit <= 0 then
    fail(what .. ": time_unit must be more than 0", { key = "time_unit", within = name })
  end
  if sc.pre_allocated_vus then
    sc.max_vus = sc.max_vus or sc.pre_allocated_vus
    if sc.max_vus < sc.pre_allocated_vus then
      fail(string.format("%s: max_vus (%d) is less than pre_allocated_vus (%d)", what, sc.max_vus,
        sc.pre_allocated_vus), { key = "max_vus", within = name })
    end
  end
  if type(env[sc.exec]) ~= "function" then
    if raw.exec ~= nil then
      fail(string.format("%s: exec names '%s', which is no function of the script", what, sc.exec), quoted(sc.exec))
    end
    fail(string.format("the script defines no function default (scenario '%s' runs it; or give it exec=)", name))
  end
  return sc
end

-- The k6 shortcuts: vus/duration/iterations/stages make one scenario.
local function shortcut(o)
  if o.stages then
    return { executor = "ramping-vus", start_vus = o.vus or 1, stages = o.stages }
  elseif o.iterations then
    return { executor = "shared-iterations", vus = o.vus or 1, iterations = o.iterations,
      max_duration = o.duration }
  elseif o.duration then
    return { executor = "constant-vus", vus = o.vus or 1, duration = o.duration }
  end
  return { executor = "shared-iterations", vus = o.vus or 1, iterations = o.vus or 1 }
end

-- --------------------------------------------------------------- segments

-- share(v, seg) -> this segment's part of a whole number v; the parts of
-- all N segments add up to v exactly.
function M.share(v, seg)
  if not seg then return v end
  return math.floor(v * seg.k / seg.n) - math.floor(v * (seg.k - 1) / seg.n)
end

local function apply_segment(sc, seg)
  if not seg then return end
  local share = M.share
  local e = sc.executor
  sc.segment = seg
  if e == "shared-iterations" then
    sc.iterations = share(sc.iterations, seg)
    sc.vus = math.min(math.max(share(sc.vus, seg), 1), sc.iterations)
  elseif e == "per-vu-iterations" or e == "constant-vus" then
    sc.vus = share(sc.vus, seg)
  elseif e == "ramping-vus" then
    sc.start_vus = share(sc.start_vus, seg)
    for _, st in ipairs(sc.stages) do st.target = share(st.target, seg) end
  else -- arrival rates: the executor takes every N-th arrival (striping)
    sc.pre_allocated_vus = math.max(share(sc.pre_allocated_vus, seg), 1)
    sc.max_vus = math.max(share(sc.max_vus, seg), sc.pre_allocated_vus)
  end
end

-- ----------------------------------------------------------------- whole

-- normalize(options, env, cli) -> {scenarios = list by name, thresholds =
-- raw table, setup_timeout, teardown_timeout, summary_trend_stats, tags};
-- raises an OptionError. cli: {vus, duration, iterations, segment}.
function M.normalize(options, env, cli)
  cli = cli or {}
  if options == nil then options = {} end
  if type(options) ~= "table" then fail("options must be a table, got " .. type(options), key_of("options")) end
  local o = {}
  for k, v in pairs(options) do
    local kind = TOP[k]
    if not kind then
      fail(string.format("options: unknown option '%s' (expected one of: %s)", tostring(k), names(TOP)), key_of(k))
    end
    o[k] = check_value("options", k, v, kind)
  end
  local raw
  if cli.vus or cli.duration or cli.iterations then -- the command line's shortcut replaces the script's
    raw = { default = shortcut({ vus = cli.vus or o.vus, duration = cli.duration, iterations = cli.iterations }) }
  elseif o.scenarios then
    for _, k in ipairs({ "vus", "duration", "iterations", "stages" }) do
      if o[k] ~= nil then
        fail("options: " .. k .. " is a shortcut for one scenario and cannot go with scenarios (put it in a scenario)",
          key_of(k))
      end
    end
    raw = o.scenarios
  else
    raw = { default = shortcut(o) }
  end
  local list = {}
  for _, name in ipairs(sorted_keys(raw)) do
    local sc = scenario(name, raw[name], env)
    apply_segment(sc, cli.segment)
    list[#list + 1] = sc
  end
  if #list == 0 then fail("options: scenarios is empty (expected at least one scenario)", key_of("scenarios")) end
  local stats = o.summary_trend_stats or { "avg", "min", "med", "max", "p(90)", "p(95)" }
  return { scenarios = list, thresholds = o.thresholds or {}, setup_timeout = o.setup_timeout or 60,
    teardown_timeout = o.teardown_timeout or 60, summary_trend_stats = stats, tags = o.tags or {} }
end

return M
