-- sonde.runner.reporters.html: one self-contained HTML page, written when the run
-- ends (-o html=report.html). Inline CSS, JS and SVG only: it opens from
-- disk and loads nothing.
--
-- Tabs: the tests (every file, describe and test with status and
-- duration, collapsible, failures open with message, diff, traceback as
-- file links, captured output, last HTTP exchange and each attempt of a
-- retried test; a filter by status, tag and text), the slowest tests, a
-- timeline of the run (one lane per --jobs worker), HTTP (per host and per
-- test: requests and a latency histogram from curl's phase timings) and,
-- with --coverage, the coverage of each file. The page works without JS
-- too: every tab is shown, one after the other. The filter can be given in
-- the address: report.html?status=fail,error&tag=api&q=users.
--
-- It asks the runner for detailed results (wants_detail): the names of a
-- test's blocks, when it started and finished, and its requests. Results
-- arrive redacted (sonde.lib.redact).
local loop = require("sonde.c.loop")
local util = require("sonde.lib.report_util")
local read_file = require("sonde.lib.file").read

local M = {}
M.__index = M
M.wants_detail = true

local esc = util.xml
local fmt, concat = string.format, table.concat

M.SLOWEST = 20 -- tests in the slowest table
M.HTTP_TESTS = 200 -- tests in the per-test HTTP table (most requests first)
M.SOURCE_LIMIT = 2 * 1024 * 1024 -- bytes of covered source shown in the coverage tab

function M.new(out, opts)
  return setmetatable({ out = out, opts = opts, results = {}, files = {}, by_file = {} }, M)
end

-- ---------------------------------------------------------------- events

function M:suite_start(info)
  self.started_at = info.started_at or loop.real_now()
  self.workers = info.workers or 1
end

function M:file_of(name)
  local f = self.by_file[name]
  if not f then
    f = { name = name, results = {} }
    self.by_file[name] = f
    self.files[#self.files + 1] = f
  end
  return f
end

function M:file_start(f) self:file_of(f.name) end

function M:test_end(r)
  self.results[#self.results + 1] = r
  local f = self:file_of(r.file or r.name)
  f.results[#f.results + 1] = r
end

M.load_error = M.test_end

-- ---------------------------------------------------------------- helpers

local function ms(seconds)
  seconds = tonumber(seconds) or 0
  if seconds >= 1 then return fmt("%.2f s", seconds) end
  local m = seconds * 1000
  if m >= 10 then return fmt("%.0f ms", m) end
  if m >= 0.1 or m == 0 then return fmt("%.1f ms", m) end
  return fmt("%.0f µs", m * 1000)
end

local WORD = { pass = "pass", fail = "fail", error = "error", pending = "pending", skip = "skip", flaky = "flaky" }

local function badge(status)
  return '<span class="b ' .. status .. '">' .. (WORD[status] or esc(status)) .. "</span>"
end

-- Absolute paths of files that exist, for links (nil for the others, such
-- as sonde's embedded modules).
local cwd
local exists = {}
local function file_url(path)
  local known = exists[path]
  if known == nil then
    known = false
    if loop.stat(path) == "file" then
      cwd = cwd or loop.cwd() or "."
      local abs = path:sub(1, 1) == "/" and path or (cwd .. "/" .. path:gsub("^%./", ""))
      known = "file://" .. abs:gsub("[^%w/%._~%-]", function(c) return fmt("%%%02X", c:byte()) end)
    end
    exists[path] = known
  end
  return known or nil
end

-- linked(text) -> escaped text whose path.lua:line references are links to
-- the file.
local function linked(text)
  text = tostring(text)
  local out, pos = {}, 1
  for s, path, line, e in text:gmatch("()([%w_%./%-]+%.lua):(%d+)()") do
    local url = file_url(path)
    if url then
      out[#out + 1] = esc(text:sub(pos, s - 1))
      out[#out + 1] = fmt('<a href="%s" title="line %s">%s:%s</a>', url, line, esc(path), line)
      pos = e
    end
  end
  out[#out + 1] = esc(text:sub(pos))
  return concat(out)
end

-- A message, with the lines of a structural diff ($.path: ...) marked.
local function message_html(text)
  local lines = {}
  for line in (tostring(text) .. "\n"):gmatch("([^\n]*)\n") do
    if line:find("^%s*%$[%.%[%s:]") or line:find("^%s*%$$") then
      lines[#lines + 1] = '<span class="diff">' .. esc(line) .. "</span>"
    else
      lines[#lines + 1] = linked(line)
    end
  end
  return concat(lines, "\n")
end

-- The short commit and branch of the git checkout around the working
-- directory, read from .git itself (no process), or nil.
function M.git_commit(dir)
  dir = dir or loop.cwd()
  while dir and dir ~= "" do
    local git = dir .. "/.git"
    local kind = loop.stat(git)
    if kind == "file" then -- a worktree: "gitdir: <path>"
      local to = (read_file(git) or ""):match("gitdir:%s*(%S+)")
      git = to and (to:sub(1, 1) == "/" and to or dir .. "/" .. to)
      kind = git and loop.stat(git)
    end
    if kind == "dir" then
      local head = (read_file(git .. "/HEAD") or ""):gsub("%s+$", "")
      local ref = head:match("^ref:%s*(%S+)")
      if not ref then return head ~= "" and head:sub(1, 12) or nil end
      local common = (read_file(git .. "/commondir") or ""):gsub("%s+$", "")
      common = common ~= "" and (common:sub(1, 1) == "/" and common or git .. "/" .. common) or git
      local sha = read_file(git .. "/" .. ref) or read_file(common .. "/" .. ref)
      if not sha then
        local packed = read_file(common .. "/packed-refs") or ""
        sha = packed:match("(%x+) " .. ref:gsub("%p", "%%%0") .. "\n")
      end
      sha = sha and sha:match("%x+")
      return sha and (sha:sub(1, 12) .. " (" .. ref:gsub("^refs/heads/", "") .. ")") or nil
    end
    dir = dir:match("^(.*)/[^/]*$")
  end
  return nil
end

-- ---------------------------------------------------------------- the tree

-- Files hold blocks and tests in the order they ran: a node is
-- {name, kids = {}, by_name = {}, counts, duration, failed}.
local function new_node(name)
  return { name = name, kids = {}, by_name = {}, counts = {}, duration = 0, failed = false }
end

local function add_to(node, r, failed)
  node.counts[r.status] = (node.counts[r.status] or 0) + 1
  node.duration = node.duration + (tonumber(r.duration) or 0)
  if failed then node.failed = true end
end

function M:tree_of(file)
  local root = new_node(file.name)
  for _, r in ipairs(file.results) do
    local failed = util.is_failed(r.status, self.opts)
    add_to(root, r, failed)
    local node, path = root, r.path
    if type(path) == "table" then
      for i = 1, #path - 1 do
        local kid = node.by_name[path[i]]
        if not kid then
          kid = new_node(path[i])
          node.by_name[path[i]] = kid
          node.kids[#node.kids + 1] = kid
        end
        add_to(kid, r, failed)
        node = kid
      end
    end
    node.kids[#node.kids + 1] = { result = r, failed = failed }
  end
  return root
end

local COUNT_ORDER = { "pass", "flaky", "fail", "error", "pending", "skip" }

local function counts_html(counts)
  local parts = {}
  for _, s in ipairs(COUNT_ORDER) do
    if counts[s] then parts[#parts + 1] = fmt('<span class="c %s">%d %s</span>', s, counts[s], WORD[s]) end
  end
  return concat(parts, " ")
end

local function leaf_name(r)
  local path = r.path
  local name = type(path) == "table" and path[#path] or r.name
  if r.iteration then name = fmt("%s [%d]", tostring(name), r.iteration) end
  return tostring(name)
end

-- The part of a test that opens: message, traceback, attempts, output,
-- requests.
function M:test_body(r, buf)
  local msg = util.failure_message(r)
  if r.status == "pending" or r.status == "skip" then
    if msg and msg ~= "" and msg ~= leaf_name(r) then buf[#buf + 1] = '<p class="why">' .. esc(msg) .. "</p>" end
  elseif msg and r.status ~= "flaky" then
    buf[#buf + 1] = '<pre class="msg">' .. message_html(msg) .. "</pre>"
  end
  if r.traceback and r.traceback ~= "" and r.status ~= "flaky" then
    buf[#buf + 1] = '<pre class="tb">' .. linked(r.traceback) .. "</pre>"
  end
  if r.attempts then
    buf[#buf + 1] = '<ol class="attempts">'
    for _, a in ipairs(r.attempts) do
      buf[#buf + 1] = fmt("<li>%s %s <code>%s</code></li>", badge(a.status or "fail"), ms(a.duration),
        linked(util.first_line(a.message)))
    end
    buf[#buf + 1] = fmt("<li>%s %s</li></ol>", badge(r.status == "flaky" and "pass" or r.status), ms(r.duration))
  end
  if r.last_exchange and r.status ~= "flaky" then
    buf[#buf + 1] = '<div class="lbl">last HTTP exchange</div><pre class="http">' .. esc(r.last_exchange) .. "</pre>"
  end
  if r.output and r.output ~= "" then
    buf[#buf + 1] = '<div class="lbl">captured output</div><pre class="out">' .. esc(r.output) .. "</pre>"
  end
  if r.http and #r.http > 0 then
    buf[#buf + 1] = '<table class="reqs"><tr><th>request</th><th>status</th><th>total</th></tr>'
    for _, q in ipairs(r.http) do
      buf[#buf + 1] = fmt("<tr><td>%s</td><td>%s</td><td>%s</td></tr>", esc(q.target),
        q.status and tostring(q.status) or esc(tostring(q.error) .. " error"), q.timings and ms(q.timings.total) or "")
    end
    buf[#buf + 1] = "</table>"
  end
end

local function has_body(r)
  return r.status ~= "pass" or (r.output and r.output ~= "") or (r.http and #r.http > 0) or r.attempts ~= nil
end

-- A test: one line, or a <details> when there is more to show. The
-- class says the status; tags and the full name (for the filter) are
-- attributes; the location links to the file.
function M:test_html(kid, buf)
  local r = kid.result
  local url = file_url(r.file or "")
  local line = fmt('%s<span class="n">%s</span><span class="m">%s%s <a%s>:%d</a></span>', badge(r.status),
    esc(leaf_name(r)), (tonumber(r.requests) or 0) > 0 and fmt('<span class="rq">%d req</span> ', r.requests) or "",
    ms(r.duration), url and fmt(' href="%s"', url) or "", tonumber(r.line) or 0)
  local attrs = fmt('class="t %s"%s data-x="%s"', r.status,
    r.tags and #r.tags > 0 and fmt(' data-tags="%s"', esc(concat(r.tags, " "))) or "", esc((r.name or ""):lower()))
  if not has_body(r) then
    buf[#buf + 1] = "<div " .. attrs .. ">" .. line .. "</div>"
    return
  end
  buf[#buf + 1] = "<details " .. attrs .. ((kid.failed or r.status == "flaky") and " open" or "") .. "><summary>"
      .. line
    .. '</summary><div class="body">'
  self:test_body(r, buf)
  buf[#buf + 1] = "</div></details>"
end

function M:node_html(node, buf, is_file)
  buf[#buf + 1] = fmt('<details class="blk%s"%s><summary><span class="n">%s</span><span class="m">%s ' ..
      '%s</span></summary>',
    is_file and " file" or "", (node.failed or is_file) and " open" or "", esc(node.name), counts_html(node.counts),
    ms(node.duration))
  for _, kid in ipairs(node.kids) do
    if kid.result then self:test_html(kid, buf) else self:node_html(kid, buf, false) end
  end
  buf[#buf + 1] = "</details>"
end

-- ---------------------------------------------------------------- sections

function M:summary_html(s, buf)
  local parts = {
    fmt('<span class="c pass">%d passed</span>', s.passed),
    fmt('<span class="c %s">%d failed</span>', s.failed > 0 and "fail" or "none", s.failed),
  }
  if s.failed > 0 then parts[#parts] = parts[#parts] .. fmt(" (%s, %s)", util.plural(s.failures, "failure"),
    util.plural(s.errors, "error")) end
  if s.skipped > 0 then parts[#parts + 1] = fmt('<span class="c pending">%d skipped</span>', s.skipped) end
  if s.flaky > 0 then parts[#parts + 1] = fmt('<span class="c flaky">%d flaky</span>', s.flaky) end
  buf[#buf + 1] = '<div class="counts">' .. concat(parts, " ") .. "</div>"
  local facts = { { "duration", ms(s.duration) }, { "tests", tostring(s.total) } }
  if s.seed then facts[#facts + 1] = { "seed", tostring(s.seed) } end
  local shard = self.opts.shard
  if type(shard) == "table" then facts[#facts + 1] = { "shard", fmt("%d/%d", shard.k, shard.n) } end
  if (self.opts.jobs or 1) > 1 then facts[#facts + 1] = { "jobs", tostring(self.opts.jobs) } end
  if s.interrupted then facts[#facts + 1] = { "interrupted", "yes" } end
  facts[#facts + 1] = { "sonde", loop.version }
  local commit = M.git_commit()
  if commit then facts[#facts + 1] = { "commit", commit } end
  facts[#facts + 1] = { "finished", os.date("%Y-%m-%d %H:%M:%S") }
  M.facts_html(facts, buf)
end

function M:tests_html(buf)
  local tags, seen = {}, {}
  for _, r in ipairs(self.results) do
    for _, t in ipairs(r.tags or {}) do
      if not seen[t] then seen[t], tags[#tags + 1] = true, t end
    end
  end
  table.sort(tags)
  buf[#buf + 1] = '<div class="filters"><input id="q" type="search" placeholder="filter by name" aria-label="filter ' ..
      'by name">'
  for _, s in ipairs({ "pass", "fail", "error", "pending", "flaky" }) do
    buf[#buf + 1] = fmt('<label class="c %s"><input type="checkbox" value="%s" checked> %s</label>', s, s, s)
  end
  buf[#buf + 1] = '<select id="tag" aria-label="tag"><option value="">any tag</option>'
  for _, t in ipairs(tags) do buf[#buf + 1] = fmt('<option value="%s">#%s</option>', esc(t), esc(t)) end
  buf[#buf + 1] = '</select><span id="shown"></span></div><div id="tree">'
  for _, file in ipairs(self.files) do
    if #file.results > 0 then self:node_html(self:tree_of(file), buf, true) end
  end
  buf[#buf + 1] = "</div>"
end

function M:slowest_html(buf)
  local list = {}
  for _, r in ipairs(self.results) do
    if r.status ~= "pending" and r.status ~= "skip" then list[#list + 1] = r end
  end
  table.sort(list, function(a, b) return (a.duration or 0) > (b.duration or 0) end)
  buf[#buf + 1] = '<table class="grid"><tr><th>#</th><th>test</th><th>where</th><th>status</th><th ' ..
      'class="r">duration</th></tr>'
  for i = 1, math.min(M.SLOWEST, #list) do
    local r = list[i]
    buf[#buf + 1] = fmt('<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td class="r">%s</td></tr>', i, esc(r.name),
      linked(fmt("%s:%d", r.file or "?", tonumber(r.line) or 0)), badge(r.status), ms(r.duration))
  end
  buf[#buf + 1] = "</table>"
end

-- One lane per worker: a bar per test from its start to its end.
function M:timeline_html(buf, s)
  local lanes, t0, t1 = {}, self.started_at, self.started_at + math.max(s.duration or 0, 1e-6)
  local any = false
  for _, r in ipairs(self.results) do
    if r.started then
      any = true
      local lane = tonumber(r.worker) or 1
      lanes[lane] = true
      if r.finished and r.finished > t1 then t1 = r.finished end
    end
  end
  if not any then
    buf[#buf + 1] = "<p>No test ran.</p>"
    return
  end
  local count = 0
  for lane in pairs(lanes) do count = math.max(count, lane) end
  local W, LANE, TOP = 1000, 22, 18
  local span = t1 - t0
  local h = TOP + count * LANE + 4
  buf[#buf + 1] = fmt('<svg class="timeline" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="timeline of %d '
    .. 'lane%s">', W + 70, h, count, count == 1 and "" or "s")
  for i = 0, 4 do
    local x = 70 + W * i / 4
    buf[#buf + 1] = fmt('<line class="tick" x1="%.1f" y1="12" x2="%.1f" y2="%d"/><text class="ax%s" x="%.1f" ' ..
        'y="10">%s</text>',
      x, x, h, i == 4 and " end" or "", x, ms(span * i / 4))
  end
  for lane = 1, count do
    buf[#buf + 1] = fmt('<text class="ax" x="0" y="%d">worker %d</text>', TOP + (lane - 1) * LANE + 14, lane)
  end
  -- A test narrower than a pixel shares its pixel with its neighbours: one
  -- bar, the colour of the worst status among them, their count in its title.
  local RANK = { pass = 1, pending = 2, skip = 2, flaky = 3, fail = 4, error = 5 }
  local open = {}
  local function flush(lane)
    local o = open[lane]
    if not o then return end
    open[lane] = nil
    local title = o.n == 1 and fmt("%s (%s)", esc(o.name), ms(o.dur)) or fmt("%d tests, %s in all", o.n, ms(o.dur))
    buf[#buf + 1] = fmt('<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>', o.status,
      o.x, TOP + (lane - 1) * LANE, math.max(0.6, o.x2 - o.x), LANE - 4, title)
  end
  for _, r in ipairs(self.results) do
    if r.started then
      local lane = tonumber(r.worker) or 1
      local x = 70 + (r.started - t0) / span * W
      local x2 = 70 + ((r.finished or r.started) - t0) / span * W
      local o = open[lane]
      if o and x2 - o.x < 1 then -- still within the open bar's pixel
        o.n, o.x2, o.dur = o.n + 1, math.max(o.x2, x2), o.dur + (r.duration or 0)
        if (RANK[r.status] or 0) > (RANK[o.status] or 0) then o.status = r.status end
      else
        flush(lane)
        open[lane] = { x = x, x2 = x2, n = 1, status = r.status, name = r.name, dur = r.duration or 0 }
      end
    end
  end
  for lane = 1, count do flush(lane) end
  buf[#buf + 1] = '</svg><p class="legend">'
  for _, st in ipairs({ "pass", "fail", "error", "pending", "flaky" }) do
    buf[#buf + 1] = fmt('<span class="c %s"><i class="sw %s"></i>%s</span> ', st, st, st)
  end
  buf[#buf + 1] = "&#8212; a bar per test from its start to its end; tests shorter than a pixel share one bar, "
    .. "the colour of the worst of them</p>"
end

-- ------------------------------------------------------------------- HTTP

-- Latency buckets of the histograms (upper bounds in seconds).
local BUCKETS = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, math.huge }
local BUCKET_NAMES = { "1ms", "2ms", "5ms", "10", "20", "50", "100", "200", "500", "1s", "2s", "5s", "more" }

local function bucket_of(seconds)
  for i, top in ipairs(BUCKETS) do
    if seconds <= top then return i end
  end
  return #BUCKETS
end

local function histogram_svg(totals, wide)
  local counts, most = {}, 0
  for i = 1, #BUCKETS do counts[i] = 0 end
  for _, t in ipairs(totals) do
    local b = bucket_of(t)
    counts[b] = counts[b] + 1
    if counts[b] > most then most = counts[b] end
  end
  local bw, bh = wide and 34 or 8, wide and 80 or 16
  local label = wide and 14 or 0
  local parts = { fmt('<svg class="hist" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="latency '
    .. 'histogram">', #BUCKETS * bw, bh + label, #BUCKETS * bw, bh + label) }
  for i, c in ipairs(counts) do
    local hgt = most > 0 and math.max(c > 0 and 1 or 0, c / most * (bh - (wide and 12 or 0))) or 0
    parts[#parts + 1] = fmt('<rect x="%d" y="%.1f" width="%d" height="%.1f"><title>&#8804; %s: %d</title></rect>',
      (i - 1) * bw + 1, bh - hgt, bw - 2, hgt, BUCKET_NAMES[i], c)
    if wide then
      if c > 0 then
        parts[#parts + 1] = fmt('<text x="%.1f" y="%.1f" class="v">%d</text>', (i - 0.5) * bw, bh - hgt - 2, c)
      end
      parts[#parts + 1] = fmt('<text x="%.1f" y="%d" class="ax">%s</text>', (i - 0.5) * bw, bh + label - 2,
          BUCKET_NAMES[i])
    end
  end
  parts[#parts + 1] = "</svg>"
  return concat(parts)
end

local PHASES = { "dns", "connect", "tls", "first_byte", "total" }

local function quantile(sorted, q)
  if #sorted == 0 then return nil end
  return sorted[math.max(1, math.ceil(q * #sorted))]
end

function M:http_html(buf)
  local hosts, order, tests = {}, {}, {}
  for _, r in ipairs(self.results) do
    if r.http and #r.http > 0 then
      local totals = {}
      for _, q in ipairs(r.http) do
        local h = hosts[q.origin]
        if not h then
          h = { origin = q.origin, count = 0, errors = 0, statuses = {}, phases = {} }
          for _, p in ipairs(PHASES) do h.phases[p] = {} end
          hosts[q.origin] = h
          order[#order + 1] = h
        end
        h.count = h.count + 1
        if q.error then h.errors = h.errors + 1 end
        if q.status then
          local class = math.floor(q.status / 100) .. "xx"
          h.statuses[class] = (h.statuses[class] or 0) + 1
        end
        if q.timings then
          for _, p in ipairs(PHASES) do
            local v = tonumber(q.timings[p])
            if v and (v > 0 or p == "total") then table.insert(h.phases[p], v) end
          end
          totals[#totals + 1] = tonumber(q.timings.total) or 0
        end
      end
      tests[#tests + 1] = { r = r, totals = totals }
    end
  end
  if #order == 0 then
    buf[#buf + 1] = "<p>No test made an HTTP request through sonde.http.</p>"
    return
  end
  buf[#buf + 1] = "<h3>Per host</h3>"
  for _, h in ipairs(order) do
    local st = {}
    for class, n in pairs(h.statuses) do st[#st + 1] = class .. ": " .. n end
    table.sort(st)
    if h.errors > 0 then st[#st + 1] = "transport errors: " .. h.errors end
    buf[#buf + 1] = fmt('<div class="host"><h4>%s <span class="m">%s, %s</span></h4><div class="hostrow">',
        esc(h.origin),
      util.plural(h.count, "request"), esc(concat(st, ", ")))
    buf[#buf + 1] = histogram_svg(h.phases.total, true)
    buf[#buf + 1] = '<table class="grid phases"><tr><th>phase (from start)</th><th class="r">median</th><th ' ..
        'class="r">p95</th>'
      .. '<th class="r">max</th></tr>'
    for _, p in ipairs(PHASES) do
      local v = h.phases[p]
      table.sort(v)
      if #v > 0 then
        buf[#buf + 1] = fmt('<tr><td>%s</td><td class="r">%s</td><td class="r">%s</td><td class="r">%s</td></tr>',
          p:gsub("_", " "), ms(quantile(v, 0.5)), ms(quantile(v, 0.95)), ms(v[#v]))
      end
    end
    buf[#buf + 1] = "</table></div></div>"
  end
  table.sort(tests, function(a, b)
    if #a.r.http ~= #b.r.http then return #a.r.http > #b.r.http end
    return (a.r.duration or 0) > (b.r.duration or 0)
  end)
  buf[#buf + 1] = '<h3>Per test</h3><table class="grid"><tr><th>test</th><th class="r">requests</th><th ' ..
      'class="r">median</th>'
    .. '<th class="r">max</th><th>latency</th></tr>'
  for i = 1, math.min(#tests, M.HTTP_TESTS) do
    local t = tests[i]
    table.sort(t.totals)
    buf[#buf + 1] = fmt('<tr><td>%s</td><td class="r">%d</td><td class="r">%s</td><td ' ..
        'class="r">%s</td><td>%s</td></tr>',
      esc(t.r.name), tonumber(t.r.requests) or #t.r.http, t.totals[1] and ms(quantile(t.totals, 0.5)) or "",
      t.totals[1] and ms(t.totals[#t.totals]) or "", histogram_svg(t.totals, false))
  end
  buf[#buf + 1] = "</table>"
  if #tests > M.HTTP_TESTS then
    buf[#buf + 1] = fmt("<p>%d more tests made requests.</p>", #tests - M.HTTP_TESTS)
  end
end

-- --------------------------------------------------------------- coverage

local function pct(hit, found)
  if found == 0 then return 100 end
  return hit / found * 100
end

function M:coverage_html(buf, cov)
  buf[#buf + 1] = fmt('<p>%s of %s lines hit (%.1f%%) in %s; written to <code>%s</code>.</p>', cov.hit, cov.found,
    pct(cov.hit, cov.found), util.plural(#cov.files, "file"), esc(cov.path or ""))
  buf[#buf + 1] = '<table class="grid cov"><tr><th>file</th><th class="r">lines</th><th class="r">hit</th>'
    .. '<th class="r">%</th><th></th></tr>'
  for _, f in ipairs(cov.files) do
    local p = pct(f.hit, f.found)
    buf[#buf + 1] = fmt('<tr><td><a href="#cov-%s">%s</a></td><td class="r">%d</td><td class="r">%d</td><td ' ..
        'class="r">%.1f</td>'
      .. '<td><span class="bar"><span style="width:%.1f%%"></span></span></td></tr>', esc(f.path:gsub("[^%w]", "-")),
      esc(f.path), f.found, f.hit, p, p)
  end
  buf[#buf + 1] = "</table>"
  local budget = M.SOURCE_LIMIT
  for _, f in ipairs(cov.files) do
    local src = budget > 0 and read_file(f.path)
    if src then
      budget = budget - #src
      buf[#buf + 1] = fmt('<details class="src" id="cov-%s"><summary>%s <span class="m">%d/%d</span></summary><pre>',
        esc(f.path:gsub("[^%w]", "-")), esc(f.path), f.hit, f.found)
      local n = 0
      for line in (src .. (src:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
        n = n + 1
        local count = f.lines[n]
        local class = count == nil and "" or (count > 0 and ' class="hit"' or ' class="miss"')
        buf[#buf + 1] = fmt('<span%s><i>%d</i><b>%s</b>%s</span>', class, n, count and tostring(count) or "",
          esc(line))
      end
      buf[#buf + 1] = "</pre></details>"
    end
  end
end

-- ---------------------------------------------------------------- the page

M.CSS = [==[
:root{--fg:#1f2328;--mute:#656d76;--bg:#fff;--panel:#f6f8fa;--line:#d0d7de;--pass:#1a7f37;--fail:#cf222e;
--error:#bc4c00;--pending:#9a6700;--flaky:#8250df;--link:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--mute:#8d96a0;--bg:#0d1117;--panel:#161b22;--line:#30363d;
--pass:#3fb950;--fail:#f85149;--error:#db6d28;--pending:#d29922;--flaky:#a371f7;--link:#4493f8}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg)}header{padding:16px 24px 8px;border-bottom:1px solid var(--line);background:var(--panel)}
h1{font-size:20px;margin:0 0 6px}h3{margin:18px 0 8px}h4{margin:10px 0 6px;font-size:14px}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
.counts{font-size:16px;font-weight:600}.c{white-space:nowrap}.c.pass{color:var(--pass)}.c.fail,.c.error{color:var(--fail)}
.c.pending,.c.skip{color:var(--pending)}.c.flaky{color:var(--flaky)}.c.none{color:var(--mute)}
.facts{display:flex;flex-wrap:wrap;gap:4px 20px;margin:8px 0 0}.facts div{display:flex;gap:6px}
.facts dt{color:var(--mute)}.facts dd{margin:0;font-family:ui-monospace,monospace}
nav{display:flex;gap:4px;padding:0 24px;border-bottom:1px solid var(--line);background:var(--panel)}
nav a{padding:8px 12px;border-bottom:2px solid transparent;color:var(--fg)}nav a.on{border-color:var(--flaky);font-weight:600}
main{padding:12px 24px 40px}section{margin-bottom:28px}section>h2{font-size:16px;margin:8px 0}
.js section.tab{display:none}.js section.tab.on{display:block}.js section>h2{display:none}
.blk:not(.file){content-visibility:auto;contain-intrinsic-size:auto 200px}
.filters{display:flex;flex-wrap:wrap;align-items:center;gap:10px;margin:4px 0 12px}
#q{flex:0 1 320px;padding:5px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
#tag{padding:4px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}#shown{color:var(--mute)}
details{margin:0}summary{cursor:pointer;list-style:none}summary::-webkit-details-marker{display:none}
summary::before{content:"\25B8";color:var(--mute);width:10px;flex:none}details[open]>summary::before{content:"\25BE"}
.blk{border-left:1px solid var(--line);margin:2px 0 2px 6px;padding-left:10px}.blk.file{border:1px solid var(--line);
border-radius:6px;margin:8px 0;padding:4px 10px;background:var(--bg)}.blk.file>summary{font-weight:600}
.blk>summary,.t>summary,div.t{display:flex;gap:6px;align-items:baseline;padding:2px 0}
.blk>summary .n,.t .n{flex:1;min-width:0;overflow-wrap:anywhere}.m{color:var(--mute);font-size:12px;white-space:nowrap}
div.t{padding-left:14px}.t .m a{color:var(--mute)}.rq{color:var(--link)}
.b{display:inline-block;min-width:52px;text-align:center;font-size:11px;font-weight:600;border-radius:10px;
padding:0 6px;color:#fff;text-transform:uppercase}.b.pass{background:var(--pass)}.b.fail{background:var(--fail)}
.b.error{background:var(--error)}.b.pending,.b.skip{background:var(--pending)}.b.flaky{background:var(--flaky)}
.body{margin:4px 0 8px 16px;padding:8px 12px;border-left:3px solid var(--line);background:var(--panel);border-radius:4px}
.t.fail>.body{border-color:var(--fail)}.t.error>.body{border-color:var(--error)}.t.flaky>.body{border-color:var(--flaky)}
pre{margin:4px 0;padding:6px 8px;background:var(--bg);border:1px solid var(--line);border-radius:4px;overflow:auto;
font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
pre.msg{color:var(--fail);font-weight:600}.diff{color:var(--error);font-weight:400}.lbl{color:var(--mute);font-size:12px;margin-top:6px}
.why{margin:2px 0;color:var(--pending)}.attempts{margin:4px 0;padding-left:20px}.attempts code{font-size:12px}
table{border-collapse:collapse}.grid td,.grid th{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;
vertical-align:middle}.grid th{color:var(--mute);font-weight:600}.r{text-align:right!important}
.reqs{font-size:12px;margin:6px 0}.reqs td,.reqs th{padding:1px 12px 1px 0;text-align:left}
svg text{fill:var(--mute);font:10px system-ui,sans-serif}svg .ax{text-anchor:start}svg .ax.end{text-anchor:end}.hist text{text-anchor:middle}
.hist rect{fill:var(--link)}.hist text.v{fill:var(--fg)}.timeline .tick{stroke:var(--line)}
.timeline rect.pass{fill:var(--pass)}.timeline rect.fail{fill:var(--fail)}.timeline rect.error{fill:var(--error)}
.timeline rect.flaky{fill:var(--flaky)}.timeline rect.pending,.timeline rect.skip{fill:var(--pending)}
.host{border:1px solid var(--line);border-radius:6px;padding:4px 12px 10px;margin:8px 0}.hostrow{display:flex;flex-wrap:wrap;
gap:24px;align-items:flex-end}.bar{display:inline-block;width:120px;height:8px;background:var(--fail);border-radius:4px;
overflow:hidden;vertical-align:middle}.bar span{display:block;height:100%;background:var(--pass)}
.src>summary{display:flex;gap:6px;align-items:baseline;padding:2px 0}.src pre{white-space:pre}.src span{display:block}.src i{display:inline-block;width:44px;color:var(--mute);font-style:normal;
text-align:right;padding-right:8px}.src b{display:inline-block;width:48px;font-weight:400;color:var(--mute);text-align:right;
padding-right:8px}.src .hit{background:rgba(26,127,55,.12)}.src .miss{background:rgba(207,34,46,.16)}
.legend{color:var(--mute);font-size:12px}.sw{display:inline-block;width:10px;height:10px;margin:0 4px 0 8px;
border-radius:2px;vertical-align:-1px}.sw.pass{background:var(--pass)}.sw.fail{background:var(--fail)}
.sw.error{background:var(--error)}.sw.pending{background:var(--pending)}.sw.flaky{background:var(--flaky)}
.chart{display:block;max-width:1000px}.chart .tick{stroke:var(--line)}.chart polyline{fill:none;stroke-width:1.5}
.chart .s1{stroke:var(--link)}.chart .s2{stroke:var(--pending)}.chart .s3{stroke:var(--fail)}.chart circle{fill:transparent}
.sw.s1{background:var(--link)}.sw.s2{background:var(--pending)}.sw.s3{background:var(--fail)}
[hidden]{display:none!important}
]==]

-- page_head(title, heading, scripted) -> the page up to its header's
-- <h1>: the inline CSS and, when the page has a script (tabs), the class
-- that says it runs. The load report (sonde.load.html) starts with it too.
function M.page_head(title, heading, scripted)
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    .. '<meta name="viewport" content="width=device-width,initial-scale=1"><title>' .. esc(title) .. "</title>"
    .. (scripted and "<script>document.documentElement.className='js'</script>" or "") .. "<style>" .. M.CSS
    .. "</style></head><body><header><h1>"
    .. esc(heading) .. "</h1>"
end

-- facts_html(facts, buf): the header's list of {name, value}
function M.facts_html(facts, buf)
  buf[#buf + 1] = '<dl class="facts">'
  for _, f in ipairs(facts) do buf[#buf + 1] = fmt("<div><dt>%s</dt><dd>%s</dd></div>", f[1], esc(f[2])) end
  buf[#buf + 1] = "</dl>"
end

M.JS = [==[
(function(){
var d=document;
var tabs=[].slice.call(d.querySelectorAll('nav a'));
function show(){var id=(location.hash||'#tests').slice(1),el=d.getElementById(id);
if(el&&/^cov-/.test(id)){el.open=true;id='coverage'}
if(!el||!/^(tests|slowest|timeline|http|coverage)$/.test(id))id='tests';
tabs.forEach(function(a){a.classList.toggle('on',a.getAttribute('href')=='#'+id)});
[].forEach.call(d.querySelectorAll('section.tab'),function(s){s.classList.toggle('on',s.id==id)})}
addEventListener('hashchange',show);show();
var tests=d.querySelectorAll('#tree .t'),blocks=null;
var q=d.getElementById('q'),tag=d.getElementById('tag'),boxes=[].slice.call(d.querySelectorAll('.filters input[type=checkbox]'));
var shown=d.getElementById('shown');
function apply(){var text=q.value.toLowerCase(),t=tag.value,on={},n=0;boxes.forEach(function(b){on[b.value]=b.checked});
on.skip=on.pending;blocks=blocks||[].slice.call(d.querySelectorAll('#tree .blk')).reverse();
[].forEach.call(tests,function(e){var ok=on[e.classList[1]]!==false&&(!t||(' '+(e.dataset.tags||'')+' ').indexOf(' '+t+' ')>=0)&&
(!text||e.dataset.x.indexOf(text)>=0);e.hidden=!ok;if(ok)n++});
blocks.forEach(function(b){b.hidden=!b.querySelector('.t:not([hidden])')});
count(n)}
function count(n){shown.textContent=n+' of '+tests.length+' tests shown'}
q.addEventListener('input',apply);tag.addEventListener('change',apply);boxes.forEach(function(b){b.addEventListener('change',apply)});
var u=new URLSearchParams(location.search);
if(u.has('q')||u.has('status')||u.has('tag')){q.value=u.get('q')||'';tag.value=u.get('tag')||'';
var want=(u.get('status')||'pass,fail,error,pending,flaky').split(',');boxes.forEach(function(b){b.checked=want.indexOf(b.value)>=0});apply()}
else count(tests.length);
})();
]==]

function M:suite_end(s)
  local buf = {}
  local title = fmt("sonde test: %d passed, %d failed", s.passed, s.failed)
  buf[#buf + 1] = M.page_head(title, "sonde test report", true)
  self:summary_html(s, buf)
  buf[#buf + 1] = '</header><nav><a href="#tests">Tests</a><a href="#slowest">Slowest</a><a ' ..
      'href="#timeline">Timeline</a>'
    .. '<a href="#http">HTTP</a>' .. (s.coverage and '<a href="#coverage">Coverage</a>' or "") .. "</nav><main>"
  buf[#buf + 1] = '<section class="tab on" id="tests"><h2>Tests</h2>'
  self:tests_html(buf)
  buf[#buf + 1] = fmt('</section><section class="tab" id="slowest"><h2>Slowest %d tests</h2>', M.SLOWEST)
  self:slowest_html(buf)
  buf[#buf + 1] = '</section><section class="tab" id="timeline"><h2>Timeline</h2>'
  self:timeline_html(buf, s)
  buf[#buf + 1] = '</section><section class="tab" id="http"><h2>HTTP</h2>'
  self:http_html(buf)
  buf[#buf + 1] = "</section>"
  if s.coverage then
    buf[#buf + 1] = '<section class="tab" id="coverage"><h2>Coverage</h2>'
    self:coverage_html(buf, s.coverage)
    buf[#buf + 1] = "</section>"
  end
  buf[#buf + 1] = "</main><script>" .. M.JS .. "</script></body></html>\n"
  local ok, err = self.out:write(concat(buf))
  if ok then ok, err = self.out:flush() end
  if not ok then error(string.format("cannot write %s: %s", self.file or "the report", tostring(err)), 0) end
end

return M
