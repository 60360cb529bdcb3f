-- sonde.load.summary: the end of a load test. A report holds what the run
-- measured (each metric's series, thresholds, checks, iteration errors);
-- it becomes the k6-like text summary, and the JSON "Summary" line of
-- `--out json=FILE`, which carries the raw state (counts, sums,
-- histogram buckets) so that `sonde load merge` adds segments up exactly.
local histogram = require("sonde.c.histogram")
local task = require("sonde.task")
local metrics = require("sonde.load.metrics")
local thresholds = require("sonde.load.thresholds")

local M = {}

M.VERSION = 1

-- ------------------------------------------------------------------ report

-- from_run(run, script) -> report
function M.from_run(run, script)
  local series = {}
  local watched = {}
  for _, e in ipairs(run.thresholds) do watched[e.key] = true end
  for name, m in pairs(run.registry.metrics) do
    if m.seen or watched[name] then series[name] = m end
    for _, s in ipairs(m.subs or {}) do series[s.key] = s end
  end
  local seg = run.options.scenarios[1] and run.options.scenarios[1].segment
  local report = { script = script, segment = seg and (seg.k .. "/" .. seg.n) or nil,
    duration = (run.ended or task.now()) - run.started, series = series, entries = run.thresholds,
    checks = run.checks.order, errors = { count = run.errors.count, first = run.errors.first },
    interrupted = run.interrupted, aborted = run.aborted, trend_stats = run.options.summary_trend_stats,
    scenarios = {} }
  for _, sc in ipairs(run.options.scenarios) do report.scenarios[#report.scenarios + 1] = sc.name end
  -- what the HTML page draws (not in the JSON summary): the time series
  -- and each scenario's own counts and histograms (sonde.load.run)
  report.seconds, report.groups = run.seconds, {}
  for _, g in ipairs(run.groups) do report.groups[#report.groups + 1] = g end
  thresholds.evaluate(report.entries, report.duration)
  return report
end

-- passed(report) -> whether every threshold held
function M.passed(report)
  for _, e in ipairs(report.entries) do
    for _, th in ipairs(e.list) do
      if not th.ok then return false end
    end
  end
  return true
end

-- ------------------------------------------------------------------- JSON

-- to_data(report) -> the Summary line's data (plain tables)
function M.to_data(r)
  local ms = {}
  for name, s in pairs(r.series) do
    ms[name] = { type = s.type, contains = s.contains, values = metrics.values(s, r.duration, r.trend_stats),
      state = metrics.state(s), submetric_of = s.parent and s.parent.name or nil, tags = s.selector }
  end
  local ths = {}
  for _, e in ipairs(r.entries) do
    local list = {}
    for _, th in ipairs(e.list) do
      list[#list + 1] = { threshold = th.source, ok = th.ok, observed = th.observed, abort_on_fail = th.abort_on_fail,
        delay_abort_eval = th.delay_abort_eval }
    end
    ths[#ths + 1] = { key = e.key, list = list }
  end
  return { version = M.VERSION, layout = histogram.layout(), script = r.script, segment = r.segment,
    duration = r.duration, metrics = ms, thresholds = ths, checks = r.checks, iteration_errors = r.errors,
    interrupted = r.interrupted, aborted = r.aborted, trend_stats = r.trend_stats, scenarios = r.scenarios }
end

-- from_data(data, where) -> report | nil, why
function M.from_data(d, where)
  if type(d) ~= "table" or d.version ~= M.VERSION or type(d.metrics) ~= "table" then
    return nil, where .. ": no sonde load summary of version " .. M.VERSION
  end
  if d.layout ~= histogram.layout() then
    return nil, string.format("%s: histograms of layout %s cannot merge with this sonde's (%s)", where,
      tostring(d.layout), histogram.layout())
  end
  local series = {}
  for name, m in pairs(d.metrics) do
    if not metrics.TYPES[m.type] then return nil, where .. ": metric " .. name .. " has no known type" end
    local ok, s = pcall(metrics.from_state, m.type, m.contains, m.state)
    if not ok then return nil, where .. ": metric " .. name .. ": " .. tostring(s) end
    s.name, s.key, s.selector = name, name, m.tags
    series[name] = s
  end
  local entries = {}
  for _, e in ipairs(d.thresholds or {}) do
    local list = {}
    for _, t in ipairs(e.list) do
      local th = thresholds.parse(t.threshold)
      if th then
        th.abort_on_fail, th.delay_abort_eval = t.abort_on_fail, t.delay_abort_eval
        list[#list + 1] = th
      end
    end
    local s = series[e.key]
    if not s then return nil, where .. ": threshold on " .. e.key .. " has no metric in the summary" end
    entries[#entries + 1] = { key = e.key, series = s, list = list }
  end
  return { script = d.script, segment = d.segment, duration = d.duration or 0, series = series, entries = entries,
    checks = d.checks or {}, errors = d.iteration_errors or { count = 0, first = {} }, interrupted = d.interrupted or 0,
    aborted = d.aborted, trend_stats = d.trend_stats or { "avg", "min", "med", "max", "p(90)", "p(95)" },
    scenarios = d.scenarios or {} }
end

local ADDITIVE = { vus = true, vus_max = true }

local function merge_checks(into, from)
  local by = {}
  for _, c in ipairs(into) do by[c.name] = c end
  for _, c in ipairs(from) do
    local mine = by[c.name]
    if mine then
      mine.passes, mine.fails = mine.passes + c.passes, mine.fails + c.fails
    else
      mine = { name = c.name, passes = c.passes, fails = c.fails }
      into[#into + 1], by[c.name] = mine, mine
    end
  end
end

local function merge_errors(into, from)
  into.count = into.count + from.count
  for _, f in ipairs(from.first) do
    local found = false
    for _, mine in ipairs(into.first) do
      if mine.message == f.message then
        mine.count, found = mine.count + f.count, true
      end
    end
    if not found and #into.first < 10 then into.first[#into.first + 1] = { message = f.message, count = f.count } end
  end
end

-- merge(reports) -> one report of them all: counts, sums and histograms
-- add; the duration is the longest (segments run side by side); the
-- thresholds of the first are evaluated again on the sums.
function M.merge(reports)
  local first = reports[1]
  local out = { script = first.script, duration = 0, series = {}, checks = {}, errors = { count = 0, first = {} },
    interrupted = 0, trend_stats = first.trend_stats, scenarios = first.scenarios, entries = {} }
  local segments = {}
  for _, r in ipairs(reports) do
    out.duration = math.max(out.duration, r.duration)
    for name, s in pairs(r.series) do
      local mine = out.series[name]
      if not mine then
        mine = metrics.series(s.type, s.contains)
        mine.name, mine.key, mine.selector = name, name, s.selector
        out.series[name] = mine
      end
      if mine.type ~= s.type then return nil, "metric " .. name .. " is a " .. mine.type .. " in one summary and a " ..
        s.type .. " in another" end
      metrics.merge(mine, s, ADDITIVE[name])
    end
    merge_checks(out.checks, r.checks)
    merge_errors(out.errors, r.errors)
    out.interrupted = out.interrupted + r.interrupted
    out.aborted = out.aborted or r.aborted
    segments[#segments + 1] = r.segment or "whole"
  end
  out.merged = table.concat(segments, " + ")
  for _, e in ipairs(first.entries) do
    out.entries[#out.entries + 1] = { key = e.key, series = out.series[e.key], list = e.list }
  end
  thresholds.evaluate(out.entries, out.duration)
  return out
end

-- ------------------------------------------------------------- formatting

-- ms(v) -> a duration in milliseconds as k6 shows one: 812.5µs, 1.27ms, 2.5s
function M.ms(v)
  local a = math.abs(v)
  if a == 0 then return "0s" end
  if a < 1 then return string.format("%.2fµs", v * 1000) end
  if a < 1000 then return string.format("%.2fms", v) end
  if a < 60000 then return string.format("%.2fs", v / 1000) end
  local m = math.floor(v / 60000)
  return string.format("%dm%.2fs", m, (v - m * 60000) / 1000)
end

-- bytes(v) -> 1.2 kB, 3.4 MB (decimal units, as k6)
function M.bytes(v)
  local units = { "B", "kB", "MB", "GB", "TB" }
  local i = 1
  while math.abs(v) >= 1000 and i < #units do v, i = v / 1000, i + 1 end
  return i == 1 and string.format("%d B", v) or string.format("%.1f %s", v, units[i])
end

-- number(v) -> a plain number: whole ones as they are, others to 6 digits
function M.number(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
  return string.format("%.6g", v)
end

-- format(v, contains) -> v shown as its metric contains it
function M.format(v, contains)
  if contains == "time" then return M.ms(v) end
  if contains == "data" then return M.bytes(v) end
  return M.number(v)
end

function M.percent(v) return string.format("%.2f%%", v * 100) end

function M.per_second(v, contains)
  if contains == "data" then return M.bytes(v) .. "/s" end
  return string.format("%.2f/s", v)
end

-- metric_text(s, values, trend_stats) -> the text after a metric's dots
-- (the HTML report's metrics table shows the same)
local function metric_text(s, v, trend_stats)
  if s.type == "trend" then
    local parts = {}
    for _, stat in ipairs(trend_stats) do
      parts[#parts + 1] = stat .. "=" .. (stat == "count" and M.number(v[stat]) or M.format(v[stat], s.contains))
    end
    return table.concat(parts, " ")
  elseif s.type == "counter" then
    return string.format("%-10s %s", M.format(v.count, s.contains), M.per_second(v.rate, s.contains))
  elseif s.type == "rate" then
    return string.format("%-7s ✓ %-8s ✗ %s", M.percent(v.rate), M.number(v.passes), M.number(v.fails))
  end
  return string.format("%-10s min=%s max=%s", M.format(v.value, s.contains), M.format(v.min, s.contains),
    M.format(v.max, s.contains))
end

M.metric_text = metric_text

local DOTS = 34

local function dotted(name, width)
  width = width or DOTS
  if #name >= width then return name .. ":" end
  return name .. string.rep(".", width - #name) .. ":"
end

-- marks[key] -> "✓ " or "✗ " for a metric with thresholds
local function marks_of(r)
  local marks = {}
  for _, e in ipairs(r.entries) do
    local ok = true
    for _, th in ipairs(e.list) do ok = ok and th.ok end
    marks[e.key] = ok and "✓ " or "✗ "
  end
  return marks
end

-- observed(th, series) -> what a threshold read ("p(95)"), and its value
-- as the summary shows it
function M.observed(th, s)
  local label, v = thresholds.label(th), th.observed or 0
  if s.type == "rate" then return label, M.percent(v) end
  return label, label == "count" and M.number(v) or M.format(v, s.contains)
end

local function threshold_lines(r, out)
  for i, e in ipairs(r.entries) do
    if i > 1 then out[#out + 1] = "" end
    out[#out + 1] = "    " .. e.key
    for _, th in ipairs(e.list) do
      local label, shown = M.observed(th, e.series)
      out[#out + 1] = string.format("    %s '%s' %s=%s", th.ok and "✓" or "✗", th.source, label, shown)
    end
  end
end

local function check_lines(r, out)
  for _, c in ipairs(r.checks) do
    if c.fails == 0 then
      out[#out + 1] = "    ✓ " .. c.name
    else
      out[#out + 1] = "    ✗ " .. c.name
      out[#out + 1] = string.format("     ↳  %d%% — ✓ %d / ✗ %d", math.floor(100 * c.passes / (c.passes + c.fails)),
        c.passes, c.fails)
    end
  end
end

local function metric_lines(r, out)
  local marks = marks_of(r)
  local names = {}
  for name, s in pairs(r.series) do
    if not s.selector then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local s = r.series[name]
    out[#out + 1] = string.format("  %s%s %s", marks[name] or "  ", dotted(name),
      metric_text(s, metrics.values(s, r.duration, r.trend_stats), r.trend_stats))
    local subs = {}
    for key, sub in pairs(r.series) do
      if sub.selector and key:sub(1, #name + 1) == name .. "{" then subs[#subs + 1] = key end
    end
    table.sort(subs)
    for _, key in ipairs(subs) do
      local sub = r.series[key]
      out[#out + 1] = string.format("  %s  %s %s", marks[key] or "  ", dotted(key:sub(#name + 1), DOTS - 2),
        metric_text(sub, metrics.values(sub, r.duration, r.trend_stats), r.trend_stats))
    end
  end
end

local function error_lines(r, out)
  for _, e in ipairs(r.errors.first) do
    local message = e.message:gsub("\n", "\n          ")
    out[#out + 1] = string.format("    %5d× %s", e.count, message)
  end
end

-- section(out, heading, add_lines, r): "  █ HEADING", a blank line, the
-- lines add_lines(r, out) adds, a blank line.
local function section(out, heading, add_lines, r)
  out[#out + 1] = "  █ " .. heading
  out[#out + 1] = ""
  add_lines(r, out)
  out[#out + 1] = ""
end

-- text(report) -> the end-of-test summary
function M.text(r)
  local out = { "" }
  if #r.entries > 0 then section(out, "THRESHOLDS", threshold_lines, r) end
  if #r.checks > 0 then section(out, "CHECKS", check_lines, r) end
  section(out, "METRICS", metric_lines, r)
  if r.errors.count > 0 then
    section(out, string.format("ITERATION ERRORS: %d (first messages)", r.errors.count), error_lines, r)
  end
  local complete = r.series.iterations and r.series.iterations.sum or 0
  local of = r.merged and ("merged segments " .. r.merged .. ", ") or r.segment and ("segment " .. r.segment .. ", ")
    or ""
  local line = string.format("  %s%.1fs, %s complete and %d interrupted iterations", of, r.duration, M.number(complete),
    r.interrupted)
  if r.aborted then line = line .. "; aborted: " .. r.aborted end
  out[#out + 1] = line
  return table.concat(out, "\n") .. "\n"
end

-- crossed(report) -> "name 'p(95)<200', ..." of every crossed threshold
function M.crossed(r)
  local list = {}
  for _, e in ipairs(r.entries) do
    for _, th in ipairs(e.list) do
      if not th.ok then list[#list + 1] = e.key .. " '" .. th.source .. "'" end
    end
  end
  return table.concat(list, ", ")
end

return M
