-- sonde.load.metrics: the metrics of a load run, as k6 keeps them.
--
-- Four types: a counter sums what is added, a gauge keeps the last value
-- (and min, max), a rate counts the share of non-zero samples, a trend
-- keeps every sample in a histogram (sonde.c.histogram: constant memory,
-- exact count/min/max, percentiles within 1/128). A metric may have
-- sub-metrics, one per tag selector that a threshold names
-- (`http_req_duration{scenario:orders}`), fed by the samples whose tags
-- match. A registry's state dumps to plain tables (JSON) and merges back,
-- which is how `sonde load merge` adds up the segments of one test.
local histogram = require("sonde.c.histogram")

local M = {}

M.TYPES = { counter = true, gauge = true, rate = true, trend = true }

-- ----------------------------------------------------------------- series

local ADD = {
  counter = function(s, v)
    s.sum, s.n = s.sum + v, s.n + 1
  end,
  gauge = function(s, v)
    if s.n == 0 or v < s.min then s.min = v end
    if s.n == 0 or v > s.max then s.max = v end
    s.value, s.n = v, s.n + 1
  end,
  rate = function(s, v)
    s.total = s.total + 1
    if v and v ~= 0 then s.passes = s.passes + 1 end
  end,
  trend = function(s, v) s.hist:record(v) end,
}

-- series(type, contains) -> an empty sink of that type
local function series(type, contains)
  local s = { type = type, contains = contains or "default", add = ADD[type] }
  if type == "counter" then
    s.sum, s.n = 0, 0
  elseif type == "gauge" then
    s.value, s.min, s.max, s.n = 0, 0, 0, 0
  elseif type == "rate" then
    s.passes, s.total = 0, 0
  else
    s.hist = histogram.new()
  end
  return s
end
M.series = series

-- aggregate(s, agg, q, duration) -> the number a threshold or summary
-- reads: agg is avg/min/max/med/count/p (q in 0..1) for a trend,
-- count/rate for a counter, value/min/max for a gauge, rate for a rate.
function M.aggregate(s, agg, q, duration)
  local t = s.type
  if t == "trend" then
    local count, min, max, sum = s.hist:stats()
    if agg == "avg" then return count > 0 and sum / count or 0 end
    if agg == "min" then return min end
    if agg == "max" then return max end
    if agg == "count" then return count end
    if agg == "med" then return s.hist:quantile(0.5) end
    return s.hist:quantile(q)
  elseif t == "counter" then
    if agg == "rate" then return duration > 0 and s.sum / duration or 0 end
    return s.sum
  elseif t == "gauge" then
    return s[agg] or s.value
  end
  if agg == "passes" then return s.passes end
  if agg == "fails" then return s.total - s.passes end
  return s.total > 0 and s.passes / s.total or 0
end

-- AGGREGATIONS[type] -> what a threshold on that type may read
M.AGGREGATIONS = { trend = "avg, min, med, max, count or p(N)", counter = "count or rate", gauge = "value, min or max",
  rate = "rate" }

function M.allows(type, agg)
  if type == "trend" then
    return agg == "avg" or agg == "min" or agg == "med" or agg == "max" or agg == "count" or agg == "p"
  end
  if type == "counter" then return agg == "count" or agg == "rate" end
  if type == "gauge" then return agg == "value" or agg == "min" or agg == "max" end
  return agg == "rate"
end

-- stat_name("p(95)") -> "p", 0.95 | "avg" | nil
function M.parse_stat(name)
  local p = name:match("^p%((%d+%.?%d*)%)$")
  if p then
    local n = tonumber(p)
    if n and n >= 0 and n <= 100 then return "p", n / 100 end
    return nil
  end
  if name == "avg" or name == "min" or name == "med" or name == "max" or name == "count" then return name end
end

-- values(s, duration, trend_stats) -> the numbers a summary shows
function M.values(s, duration, trend_stats)
  local t, agg = s.type, M.aggregate
  if t == "trend" then
    local v = { count = agg(s, "count") }
    for _, stat in ipairs(trend_stats) do
      local a, q = M.parse_stat(stat)
      v[stat] = agg(s, a, q, duration)
    end
    return v
  elseif t == "counter" then
    return { count = s.sum, rate = agg(s, "rate", nil, duration) }
  elseif t == "gauge" then
    return { value = s.value, min = s.min, max = s.max }
  end
  return { rate = agg(s, "rate"), passes = s.passes, fails = s.total - s.passes }
end

-- state(s) -> what merges: the raw sums, or the trend's histogram
function M.state(s)
  if s.type == "trend" then return s.hist:dump() end
  if s.type == "counter" then return { sum = s.sum, n = s.n } end
  if s.type == "gauge" then return { value = s.value, min = s.min, max = s.max, n = s.n } end
  return { passes = s.passes, total = s.total }
end

-- from_state(type, contains, state) -> a series holding that state
function M.from_state(type, contains, st)
  local s = series(type, contains)
  if type == "trend" then
    s.hist = histogram.load(st)
  else
    for k, v in pairs(st) do s[k] = v end
  end
  return s
end

-- merge(into, from, additive): adds from's samples to into. Gauges keep
-- the later value, unless additive (vus, vus_max: segments run at once,
-- so their VUs add up).
function M.merge(into, from, additive)
  local t = into.type
  if t == "trend" then
    into.hist:merge(from.hist)
  elseif t == "counter" then
    into.sum, into.n = into.sum + from.sum, into.n + from.n
  elseif t == "rate" then
    into.passes, into.total = into.passes + from.passes, into.total + from.total
  elseif additive then
    if from.n > 0 then
      into.value, into.min, into.max, into.n = into.value + from.value, into.min + from.min, into.max + from.max,
        into.n + from.n
    end
  elseif from.n > 0 then
    if into.n == 0 or from.min < into.min then into.min = from.min end
    if into.n == 0 or from.max > into.max then into.max = from.max end
    into.value, into.n = from.value, into.n + from.n
  end
end

-- --------------------------------------------------------------- registry

local Registry = {}
Registry.__index = Registry
M.Registry = Registry

-- k6's built-in metrics: name, type, contains
M.BUILTIN = {
  { "checks", "rate" },
  { "data_received", "counter", "data" },
  { "data_sent", "counter", "data" },
  { "dropped_iterations", "counter" },
  { "http_req_connecting", "trend", "time" },
  { "http_req_duration", "trend", "time" },
  { "http_req_failed", "rate" },
  { "http_req_receiving", "trend", "time" },
  { "http_req_tls_handshaking", "trend", "time" },
  { "http_req_waiting", "trend", "time" },
  { "http_reqs", "counter" },
  { "iteration_duration", "trend", "time" },
  { "iteration_errors", "counter" },
  { "iterations", "counter" },
  { "vus", "gauge" },
  { "vus_max", "gauge" },
}

-- registry() -> an empty registry with the built-in metrics
function M.registry()
  local r = setmetatable({ metrics = {}, out = nil }, Registry)
  for _, b in ipairs(M.BUILTIN) do r:define(b[1], b[2], b[3], true) end
  return r
end

local NAME = "^[%a_][%w_]*$"

-- define(name, type, contains) -> the metric; the same name again gives
-- the same metric, with another type an error (raised at `level`).
function Registry:define(name, type, contains, builtin, level)
  local m = self.metrics[name]
  if m then
    if m.type ~= type then
      error(string.format("metric '%s' is a %s already, cannot make it a %s", name, m.type, type), level or 2)
    end
    return m
  end
  if #name > 128 or not name:find(NAME) then
    error("metric name '" .. name .. "' must be letters, digits and _ (at most 128, not starting with a digit)",
      level or 2)
  end
  m = series(type, contains)
  m.name, m.builtin = name, builtin or false
  self.metrics[name] = m
  return m
end

-- matches(selector, tags) -> whether every tag of the selector is there
local function matches(selector, tags)
  for k, v in pairs(selector) do
    local got = tags[k]
    if got == nil or tostring(got) ~= v then return false end
  end
  return true
end
M.matches = matches

-- submetric(metric, selector, key) -> the sub-metric for that selector
function Registry:submetric(m, selector, key)
  m.subs = m.subs or {}
  for _, s in ipairs(m.subs) do
    if s.key == key then return s end
  end
  local s = series(m.type, m.contains)
  s.name, s.key, s.selector, s.parent = key, key, selector, m
  m.subs[#m.subs + 1] = s
  return s
end

-- add(metric, value, tags[, no_point]): one sample. Sub-metrics whose
-- selector matches tags get it too; the --out writer gets a point unless
-- no_point.
function Registry:add(m, v, tags, no_point)
  m.add(m, v)
  m.seen = true
  local subs = m.subs
  if subs then
    for i = 1, #subs do
      local s = subs[i]
      if matches(s.selector, tags) then
        s.add(s, v)
        s.seen = true
      end
    end
  end
  local out = self.out
  if out and not no_point then out(m, v, tags) end
end

-- builtin_names() -> k6's metric names this registry has, sorted
function Registry:builtin_names()
  local list = {}
  for _, b in ipairs(M.BUILTIN) do list[#list + 1] = b[1] end
  return list
end

-- names() -> the metric names, sorted
function Registry:names()
  local list = {}
  for name in pairs(self.metrics) do list[#list + 1] = name end
  table.sort(list)
  return list
end

return M
