-- sonde.load.html: the page of `sonde load SCRIPT -o html=FILE`, one
-- self-contained file as the test report's (sonde.runner.reporters.html: its
-- head, CSS and facts list): requests/s, VUs and p50/p95/p99 request
-- duration per second as inline SVG, a row per scenario, each threshold
-- ✓/✗ with the value it read, checks and the summary's metrics table.
-- No script: it reads the same with or without JS.
local loop = require("sonde.c.loop")
local page = require("sonde.runner.reporters.html")
local util = require("sonde.lib.report_util")
local metrics = require("sonde.load.metrics")
local summary = require("sonde.load.summary")

local M = {}

local esc = util.xml
local fmt, concat = string.format, table.concat

-- ------------------------------------------------------------ charts

-- nice(v) -> the smallest 1, 2 or 5 times a power of ten at least v
local function nice(v)
  if v <= 0 then return 1 end
  local p = 10 ^ math.floor(math.log10(v))
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * p >= v then return m * p end
  end
end

local W, H, LEFT, TOP = 900, 140, 64, 8

-- chart(spec) -> an SVG line chart of rows over the run's seconds.
-- spec = {label=, rows=, lines={{key|value=fn, name=}, ...}, y=fn(v) -> text}:
-- one polyline per line, broken where a row has no value; a point per row
-- (at most 300) titled with every line's value.
local function chart(spec)
  local rows, lines = spec.rows, spec.lines
  local t1, top = rows[#rows].at, 0
  local function value(line, row) return line.value and line.value(row) or row[line.key] end
  for _, row in ipairs(rows) do
    for _, line in ipairs(lines) do top = math.max(top, value(line, row) or 0) end
  end
  top = nice(top)
  local function x(t) return LEFT + t / t1 * W end
  local function y(v) return TOP + H - v / top * H end
  local out = { fmt('<svg class="chart" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s">', LEFT + W + 10,
    TOP + H + 18, esc(spec.label)) }
  for i = 0, 2 do
    local v = top * i / 2
    out[#out + 1] = fmt('<line class="tick" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/><text class="ax end" x="%d" y="%.1f">'
      .. "%s</text>", LEFT, y(v), LEFT + W, y(v), LEFT - 6, y(v) + 3, esc(spec.y(v)))
  end
  for i = 0, 4 do
    out[#out + 1] = fmt('<text class="ax%s" x="%.1f" y="%d">%gs</text>', i == 4 and " end" or "", x(t1 * i / 4),
      TOP + H + 14, math.floor(t1 * i / 4 * 10 + 0.5) / 10)
  end
  for n, line in ipairs(lines) do
    local pts = {}
    local function flush()
      if #pts > 0 then out[#out + 1] = fmt('<polyline class="s%d" points="%s"/>', n, concat(pts, " ")) end
      pts = {}
    end
    for _, row in ipairs(rows) do
      local v = value(line, row)
      if v then pts[#pts + 1] = fmt("%.1f,%.1f", x(row.at), y(v)) else flush() end
    end
    flush()
  end
  if #rows <= 300 then
    for _, row in ipairs(rows) do
      local parts = {}
      for _, line in ipairs(lines) do
        local v = value(line, row)
        parts[#parts + 1] = line.name .. " " .. (v and spec.y(v) or "-")
      end
      out[#out + 1] = fmt('<circle cx="%.1f" cy="%d" r="4"><title>%.1fs: %s</title></circle>', x(row.at), TOP + H,
        row.at, esc(concat(parts, ", ")))
    end
  end
  out[#out + 1] = '</svg><p class="legend">'
  for n, line in ipairs(lines) do out[#out + 1] = fmt('<i class="sw s%d"></i>%s ', n, esc(line.name)) end
  out[#out + 1] = "</p>"
  return concat(out)
end

local function per_second(n) return fmt("%.1f/s", n) end

function M.charts_html(r, buf)
  local rows = r.seconds
  if not rows or #rows == 0 then
    buf[#buf + 1] = "<p>No per-second series: merged summaries and runs shorter than a tick do not have one.</p>"
    return
  end
  local reqs, failed, vus = 0, 0, 0
  for _, row in ipairs(rows) do
    reqs, failed, vus = reqs + row.reqs, failed + row.failed, math.max(vus, row.vus)
  end
  buf[#buf + 1] = "<h3>Requests per second</h3>"
  buf[#buf + 1] = chart { label = fmt("requests per second over %.1fs: %d requests, %d failed", rows[#rows].at, reqs,
    failed), rows = rows, y = per_second, lines = {
      { name = "requests", value = function(row) return row.reqs / row.span end },
      { name = "failed", value = function(row) return row.failed / row.span end } } }
  buf[#buf + 1] = "<h3>Active VUs (the most at once in each second)</h3>"
  buf[#buf + 1] = chart { label = fmt("active VUs per second: at most %d", vus), rows = rows, y = summary.number,
    lines = { { name = "VUs", key = "vus" } } }
  buf[#buf + 1] = "<h3>Request duration</h3>"
  buf[#buf + 1] = chart { label = "request duration p50, p95 and p99 per second", rows = rows, y = summary.ms,
    lines = { { name = "p50", key = "p50" }, { name = "p95", key = "p95" }, { name = "p99", key = "p99" } } }
end

-- ------------------------------------------------------------ tables

function M.thresholds_html(r, buf)
  if #r.entries == 0 then
    buf[#buf + 1] = "<p>The script sets no thresholds.</p>"
    return
  end
  buf[#buf + 1] = '<table class="grid th"><tr><th></th><th>metric</th><th>threshold</th>'
    .. '<th class="r">observed</th></tr>'
  for _, e in ipairs(r.entries) do
    for _, th in ipairs(e.list) do
      local label, shown = summary.observed(th, e.series)
      buf[#buf + 1] = fmt('<tr class="%s"><td class="c %s">%s</td><td>%s</td><td><code>%s</code></td>'
        .. '<td class="r">%s=%s</td></tr>', th.ok and "ok" or "crossed", th.ok and "pass" or "fail",
        th.ok and "✓" or "✗", esc(e.key), esc(th.source), esc(label), esc(shown))
    end
  end
  buf[#buf + 1] = "</table>"
end

local QS = { 0.5, 0.95, 0.99 }

local function quantiles(h, count)
  local cells = {}
  for _, q in ipairs(QS) do
    cells[#cells + 1] = fmt('<td class="r">%s</td>', count > 0 and summary.ms(h:quantile(q)) or "-")
  end
  return concat(cells)
end

function M.scenarios_html(r, buf)
  if not r.groups or #r.groups == 0 then
    buf[#buf + 1] = "<p>No scenario rows: merged summaries do not keep them.</p>"
    return
  end
  buf[#buf + 1] = '<table class="grid sc"><tr><th>scenario</th><th>executor</th><th class="r">iterations</th>'
    .. '<th class="r">requests</th><th class="r">failed</th><th class="r">request p50</th><th class="r">p95</th>'
    .. '<th class="r">p99</th><th class="r">iteration p50</th><th class="r">p95</th><th class="r">p99</th></tr>'
  for _, g in ipairs(r.groups) do
    buf[#buf + 1] = fmt('<tr data-scenario="%s"><td>%s</td><td>%s</td><td class="r">%d</td><td class="r">%d</td>'
      .. '<td class="r">%d</td>%s%s</tr>', esc(g.sc.name), esc(g.sc.name), esc(g.sc.executor), g.iterations,
      g.requests, g.failed, quantiles(g.req_hist, g.requests), quantiles(g.iter_hist, g.iterations))
  end
  buf[#buf + 1] = "</table><p class=\"legend\">Requests of setup and teardown belong to no scenario; durations in "
    .. "milliseconds as in the summary, iterations' from their intended start under an arrival rate.</p>"
end

function M.checks_html(r, buf)
  buf[#buf + 1] = '<h3>Checks</h3><table class="grid"><tr><th></th><th>check</th><th class="r">passed</th>'
    .. '<th class="r">failed</th></tr>'
  for _, c in ipairs(r.checks) do
    buf[#buf + 1] = fmt('<tr><td class="c %s">%s</td><td>%s</td><td class="r">%d</td><td class="r">%d</td></tr>',
      c.fails == 0 and "pass" or "fail", c.fails == 0 and "✓" or "✗", esc(c.name), c.passes, c.fails)
  end
  buf[#buf + 1] = "</table>"
end

-- metrics_html: the text summary's METRICS, a row per metric and sub-metric
function M.metrics_html(r, buf)
  local marks = {}
  for _, e in ipairs(r.entries) do
    local ok = true
    for _, th in ipairs(e.list) do ok = ok and th.ok end
    marks[e.key] = ok
  end
  local names = {}
  for name in pairs(r.series) do names[#names + 1] = name end
  table.sort(names) -- a sub-metric "name{...}" sorts right after its metric
  buf[#buf + 1] = '<table class="grid metrics"><tr><th></th><th>metric</th><th>type</th><th>values</th></tr>'
  for _, name in ipairs(names) do
    local s = r.series[name]
    local mark = marks[name]
    buf[#buf + 1] = fmt('<tr><td class="c %s">%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>',
      mark == nil and "none" or (mark and "pass" or "fail"), mark == nil and "" or (mark and "✓" or "✗"),
      s.selector and ("&#8195;" .. esc(name)) or esc(name), s.type,
      esc(summary.metric_text(s, metrics.values(s, r.duration, r.trend_stats), r.trend_stats)))
  end
  buf[#buf + 1] = "</table>"
end

function M.errors_html(r, buf)
  buf[#buf + 1] = fmt("<h3>Iteration errors: %d (first messages)</h3><table class=\"grid\">", r.errors.count)
  for _, e in ipairs(r.errors.first) do
    buf[#buf + 1] = fmt('<tr><td class="r">%d&#215;</td><td><pre>%s</pre></td></tr>', e.count, esc(e.message))
  end
  buf[#buf + 1] = "</table>"
end

-- ------------------------------------------------------------ the page

-- render(report) -> the page
function M.render(r)
  local crossed, total = 0, 0
  for _, e in ipairs(r.entries) do
    for _, th in ipairs(e.list) do
      total = total + 1
      if not th.ok then crossed = crossed + 1 end
    end
  end
  local verdict = total == 0 and "no thresholds" or crossed == 0 and fmt("%d thresholds passed", total)
    or fmt("%d of %d thresholds crossed", crossed, total)
  local buf = { page.page_head("sonde load: " .. verdict, "sonde load report") }
  buf[#buf + 1] = fmt('<div class="counts"><span class="c %s">%s</span></div>', crossed > 0 and "fail" or "pass",
    verdict)
  local it = r.series.iterations
  local reqs = r.series.http_reqs
  local facts = { { "script", r.script or "" }, { "duration", fmt("%.1f s", r.duration) },
    { "iterations", fmt("%s complete, %d interrupted", summary.number(it and it.sum or 0), r.interrupted) },
    { "requests", summary.number(reqs and reqs.sum or 0) } }
  if r.segment then facts[#facts + 1] = { "segment", r.segment } end
  if r.merged then facts[#facts + 1] = { "merged", r.merged } end
  if r.aborted then facts[#facts + 1] = { "aborted", r.aborted } end
  facts[#facts + 1] = { "sonde", loop.version }
  local commit = page.git_commit()
  if commit then facts[#facts + 1] = { "commit", commit } end
  facts[#facts + 1] = { "finished", os.date("%Y-%m-%d %H:%M:%S") }
  page.facts_html(facts, buf)
  buf[#buf + 1] = '</header><nav><a href="#time">Over time</a><a href="#thresholds">Thresholds</a>'
    .. '<a href="#scenarios">Scenarios</a><a href="#summary">Summary</a></nav><main>'
  buf[#buf + 1] = '<section id="time"><h2>Over time</h2>'
  M.charts_html(r, buf)
  buf[#buf + 1] = '</section><section id="thresholds"><h2>Thresholds</h2>'
  M.thresholds_html(r, buf)
  buf[#buf + 1] = '</section><section id="scenarios"><h2>Scenarios</h2>'
  M.scenarios_html(r, buf)
  buf[#buf + 1] = '</section><section id="summary"><h2>Summary</h2>'
  if #r.checks > 0 then M.checks_html(r, buf) end
  buf[#buf + 1] = "<h3>Metrics</h3>"
  M.metrics_html(r, buf)
  if r.errors.count > 0 then M.errors_html(r, buf) end
  buf[#buf + 1] = "</section></main></body></html>\n"
  return concat(buf)
end

-- open(path) -> file | nil, message: opened before the run, so that a
-- path that cannot be written is one line and nothing starts
function M.open(path)
  local f, err = io.open(path, "w")
  if not f then return nil, "cannot write the html report: " .. tostring(err) end
  return f
end

-- write(file, path, report) -> true | nil, message
function M.write(f, path, r)
  local ok, err = f:write(M.render(r))
  if ok then ok, err = f:flush() end
  f:close()
  if not ok then return nil, "cannot write " .. path .. ": " .. tostring(err) end
  return true
end

return M
