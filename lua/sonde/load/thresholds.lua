-- sonde.load.thresholds: k6's thresholds. A threshold is "AGG OP NUMBER"
-- ("p(95)<200", "rate<0.01", "avg<=100", "count>10") on a metric or on a
-- sub-metric ("http_req_duration{scenario:orders}"); given as a table,
-- {threshold=, abort_on_fail=true, delay_abort_eval="10s"} stops the run
-- when it is crossed. Parsing raises an OptionError (sonde.load.options) so
-- the CLI names the script's line.
local metrics = require("sonde.load.metrics")
local options = require("sonde.load.options")

local M = {}

local function fail(message, ...)
  error(setmetatable({ message = message, needles = { ... } }, options.OptionError), 0)
end

local OPS = {
  ["<"] = function(a, b) return a < b end,
  ["<="] = function(a, b) return a <= b end,
  [">"] = function(a, b) return a > b end,
  [">="] = function(a, b) return a >= b end,
  ["=="] = function(a, b) return a == b end,
  ["==="] = function(a, b) return a == b end,
  ["!="] = function(a, b) return a ~= b end,
}

-- parse_key("name{k:v,k2:v2}") -> name, selector (nil for none), key
function M.parse_key(key)
  local name, tags = key:match("^([^{]+){(.*)}$")
  if not name then return key, nil, key end
  local selector, parts = {}, {}
  for item in (tags .. ","):gmatch("([^,]*),") do
    local k, v = item:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
    if not k or v == "" then return nil end
    selector[k] = v
    parts[#parts + 1] = k .. ":" .. v
  end
  if #parts == 0 then return nil end
  return name, selector, name .. "{" .. table.concat(parts, ",") .. "}"
end

-- parse(text) -> {agg, q, op, value, source} | nil
function M.parse(text)
  local stat, op, num = text:match("^%s*([%a]+%(?[%d%.]*%)?)%s*([<>=!]=?=?)%s*(%S+)%s*$")
  if not stat or not OPS[op] then return nil end
  local value = tonumber(num)
  if not value or value ~= value then return nil end
  local agg, q = metrics.parse_stat(stat)
  if not agg and (stat == "rate" or stat == "value") then agg = stat end
  if not agg then return nil end
  return { agg = agg, q = q, op = op, value = value, source = text }
end

local SHAPE = "expected AGGREGATION OPERATOR NUMBER such as 'p(95)<200', 'rate<0.01' or 'avg<=100'"

-- one(key, item) -> a threshold; item is a string or a table
local function one(key, item)
  local text, abort, delay = item, false, 0
  if type(item) == "table" then
    for k in pairs(item) do
      if k ~= "threshold" and k ~= "abort_on_fail" and k ~= "delay_abort_eval" then
        fail(string.format("threshold on %s: unknown key '%s' (expected threshold, abort_on_fail, delay_abort_eval)",
          key, tostring(k)), { key = tostring(k) })
      end
    end
    text, abort = item.threshold, item.abort_on_fail and true or false
    delay = options.seconds(item.delay_abort_eval or 0)
    if not delay then
      fail(string.format("threshold on %s: delay_abort_eval must be a duration such as \"10s\", got %s", key,
        tostring(item.delay_abort_eval)), { key = "delay_abort_eval" })
    end
  end
  if type(text) ~= "string" then
    fail(string.format("threshold on %s must be a string such as 'p(95)<200' or {threshold=, abort_on_fail=}, got %s",
      key, type(text)), { key = key }, '"' .. key .. '"')
  end
  local th = M.parse(text)
  if not th then
    fail(string.format("threshold '%s' on %s does not parse: %s", text, key, SHAPE), '"' .. text .. '"',
      "'" .. text .. "'")
  end
  th.abort_on_fail, th.delay_abort_eval = abort, delay
  return th
end

-- build(raw, registry) -> list of {key, series, list of thresholds}: every
-- threshold of options.thresholds checked against the registry's metrics
-- (their sub-metrics are made here, so they receive samples from now on).
function M.build(raw, registry)
  local keys = {}
  for k in pairs(raw) do
    if type(k) ~= "string" then fail("options.thresholds: keys must be metric names, got a " .. type(k)) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local out = {}
  for _, key in ipairs(keys) do
    local name, selector, canonical = M.parse_key(key)
    if not name then
      fail(string.format("threshold key '%s' does not parse: expected METRIC or METRIC{tag:value,...}", key),
        '"' .. key .. '"', { key = key })
    end
    local m = registry.metrics[name]
    if not m then
      fail(string.format("threshold on '%s': no metric of that name (built in: %s; or define it with load.Trend, " ..
        "load.Counter, load.Rate or load.Gauge)", name, table.concat(registry:builtin_names(), ", ")),
        '"' .. key .. '"', { key = key })
    end
    local list = raw[key]
    if type(list) == "string" or (type(list) == "table" and list.threshold) then list = { list } end
    if type(list) ~= "table" then
      fail(string.format("thresholds of %s must be a list of strings such as { \"p(95)<200\" }", key), { key = key })
    end
    local entry = { key = canonical, series = selector and registry:submetric(m, selector, canonical) or m, list = {} }
    for _, item in ipairs(list) do
      local th = one(key, item)
      if not metrics.allows(m.type, th.agg) then
        fail(string.format("threshold '%s' on %s: a %s takes %s", th.source, key, m.type, metrics.AGGREGATIONS[m.type]),
          '"' .. th.source .. '"', "'" .. th.source .. "'")
      end
      entry.list[#entry.list + 1] = th
    end
    out[#out + 1] = entry
  end
  return out
end

-- stat_label(th) -> how a summary names what it read: "p(95)", "rate"
function M.label(th)
  return th.source:match("^%s*([%a]+%(?[%d%.]*%)?)")
end

-- check(th, series, duration) -> passed, the observed value
function M.check(th, s, duration)
  local v = metrics.aggregate(s, th.agg, th.q, duration)
  return OPS[th.op](v, th.value), v
end

-- evaluate(entries, duration[, only_abort, elapsed]) -> all passed, and
-- the first crossed abort_on_fail threshold when only_abort. Each
-- threshold keeps its last result in .ok and .observed.
function M.evaluate(entries, duration, only_abort, elapsed)
  local all, crossed = true, nil
  for _, e in ipairs(entries) do
    for _, th in ipairs(e.list) do
      if not only_abort or (th.abort_on_fail and elapsed >= th.delay_abort_eval) then
        th.ok, th.observed = M.check(th, e.series, duration)
        if not th.ok then
          all = false
          if th.abort_on_fail and not crossed then crossed = { key = e.key, threshold = th } end
        end
      end
    end
  end
  return all, crossed
end

return M
