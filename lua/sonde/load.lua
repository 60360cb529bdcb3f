-- sonde.load: what a load script uses (`sonde load script.lua`).
--
--   load.check(value, { ["status is 200"] = function(r) return r.status == 200 end }[, tags]) -> all passed
--   load.sleep(seconds)                      think time (task.sleep)
--   load.Trend(name[, is_time]), load.Counter(name), load.Rate(name), load.Gauge(name) -> metric
--   metric:add(value[, tags])
--   load.vu() -> {id=, iteration=, scenario=} of the running VU, or nil
--
-- Outside a load run (the same scenario run by `sonde test` or `sonde
-- run`) checks are evaluated and return their result, and metrics take
-- samples that nobody reports.
local task = require("sonde.task")
local metrics = require("sonde.load.metrics")

local M = {}

-- The run in progress and its registry; sonde.load.run binds them.
local state = { run = nil, registry = metrics.registry() }

function M._bind(run, registry)
  state.run, state.registry = run, registry or metrics.registry()
end

-- The VU whose iteration is running (or that spawned the running task).
local function current_vu()
  local t = task.current()
  return t and t.scope.load_vu
end

-- ---------------------------------------------------------------- checks

local function sorted_names(checks)
  local names = {}
  for name, fn in pairs(checks) do
    if type(name) ~= "string" then error("load.check: check names must be strings, got a " .. type(name), 3) end
    if type(fn) ~= "function" and (getmetatable(fn) or {}).__call == nil then
      error("load.check: check '" .. name .. "' must be a function of the value, got " .. type(fn), 3)
    end
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

-- check(value, checks[, tags]) -> true when every check passed. Each
-- check is a function of value; a truthy result passes. Checks run in the
-- order of their names. One that raises is an error of the iteration.
function M.check(value, checks, tags)
  if type(checks) ~= "table" then
    error("load.check: expected a table of named checks { [\"status is 200\"] = function(r) ... end }, got " ..
      type(checks), 2)
  end
  if tags ~= nil and type(tags) ~= "table" then error("load.check: tags must be a table, got " .. type(tags), 2) end
  local all = true
  for _, name in ipairs(sorted_names(checks)) do
    local ok = checks[name](value) and true or false
    all = all and ok
    if state.run then state.run:check(name, ok, current_vu(), tags) end
  end
  return all
end

function M.sleep(seconds) return task.sleep(seconds) end

-- vu() -> {id=, iteration= (0-based, in this VU), scenario=} or nil
function M.vu()
  local vu = current_vu()
  if not vu then return nil end
  return { id = vu.id, iteration = vu.iteration, scenario = vu.scenario.name }
end

-- --------------------------------------------------------------- metrics

local Metric = {}
Metric.__index = Metric

-- add(value[, tags]): one sample, tagged with the VU's tags and these
function Metric:add(value, tags)
  local m = self.series
  if m.type == "rate" then
    if type(value) ~= "boolean" and type(value) ~= "number" then
      error("metric " .. m.name .. ":add: a rate takes true/false or a number, got " .. type(value), 2)
    end
  elseif type(value) ~= "number" or value ~= value or value == math.huge or value == -math.huge then
    error("metric " .. m.name .. ":add: expected a finite number, got " .. tostring(value), 2)
  end
  if tags ~= nil and type(tags) ~= "table" then error("metric " .. m.name .. ":add: tags must be a table", 2) end
  if state.run then
    state.run:add_custom(m, value, current_vu(), tags)
  else
    m.add(m, value)
  end
end

local function make(kind)
  return function(name, is_time)
    if type(name) ~= "string" then error("load." .. kind .. ": expected a metric name, got " .. type(name), 2) end
    local t = kind:lower()
    local contains = (t == "trend" and is_time) and "time" or "default"
    local series = state.registry:define(name, t, contains, false, 3)
    if series.builtin then error("load." .. kind .. ": '" .. name .. "' is a built-in metric", 2) end
    return setmetatable({ series = series, name = name }, Metric)
  end
end

M.Trend = make("Trend")
M.Counter = make("Counter")
M.Rate = make("Rate")
M.Gauge = make("Gauge")

return M
