-- sonde.load.run: one load test: the VUs of every scenario, their
-- iterations and the metrics they make, thresholds watched while it runs.
--
-- A VU is a task in a scope of its own, which carries the VU (scope.load_vu)
-- so that every request made by the iteration, or by a task it spawned, is
-- tagged with its scenario. An iteration is one call of the scenario's
-- function; an error in it is counted (iteration_errors, the first
-- messages kept) and the VU goes on. HTTP metrics come from sonde.http's
-- per-request timings (libcurl's), in milliseconds as k6's.
--
-- For the HTML report a run also keeps, apart from the registry, what a
-- page draws: each scenario's iterations, requests, failures and two
-- histograms (request and iteration durations), and a time series of
-- one row per second of the run (requests, failures, VUs, request
-- duration percentiles from a histogram reset every second). That costs
-- two histogram records (O(1)) and a few increments per request, one
-- record per iteration, and per second three quantiles, a reset and a row
-- of eight numbers (an hour is 3600 rows).
local histogram = require("sonde.c.histogram")
local task = require("sonde.task")
local http = require("sonde.http")
local load = require("sonde.load")
local executors = require("sonde.load.executors")
local thresholds = require("sonde.load.thresholds")

local M = {}

local now = task.now

local Run = {}
Run.__index = Run
M.Run = Run

local Group = {}
Group.__index = Group

-- new{env=, options=, registry=, thresholds=} -> a run, not started
function M.new(spec)
  local reg = spec.registry
  local m = {}
  for name, series in pairs(reg.metrics) do m[name] = series end
  local base = {}
  for k, v in pairs(spec.options.tags) do base[k] = v end
  return setmetatable({ env = spec.env, options = spec.options, registry = reg, m = m, tags = base,
    thresholds = spec.thresholds, next_vu = 0, allocated = 0, active = 0, interrupted = 0,
    checks = { order = {}, by = {} }, errors = { count = 0, first = {}, by = {} }, groups = {}, seconds = {},
    window = histogram.new(), window_reqs = 0, window_failed = 0, window_vus = 0 }, Run)
end

-- ------------------------------------------------------------------- VUs

-- group(sc) -> the VUs of one scenario: they are counted so that the
-- scenario can wait for them to end, and stopped together.
function Run:group(sc)
  local tags = { scenario = sc.name }
  for k, v in pairs(self.tags) do tags[k] = v end
  for k, v in pairs(sc.tags) do tags[k] = v end
  local g = setmetatable({ run = self, sc = sc, tags = tags, vus = {}, live = 0, allocated = 0, done = task.event(),
    iterations = 0, requests = 0, failed = 0, req_hist = histogram.new(), iter_hist = histogram.new() }, Group)
  g.done:set()
  self.groups[#self.groups + 1] = g
  return g
end

-- finish(deadline): waits for the VUs until deadline, then cancels those
-- still running (their iterations count as interrupted).
function Group:finish(deadline)
  local left = deadline - now()
  if self.live > 0 and left > 0 then
    local ok, err = pcall(self.done.wait, self.done, left)
    if not ok and not task.is_timeout(err) then error(err, 0) end
  end
  self:stop("graceful stop ended")
end

-- stop(why): cancels every VU still running and waits for them to unwind.
function Group:stop(why)
  if self.live == 0 then return end
  for _, vu in ipairs(self.vus) do
    if not vu.done then vu.task:cancel(why) end
  end
  self.done:wait()
end

function Run:activate(vu, on)
  if vu.active == on then return end
  vu.active = on
  self.active = self.active + (on and 1 or -1)
  if self.active > self.window_vus then self.window_vus = self.active end
end

local function vu_body(run, vu, main)
  local ok, err = pcall(main, vu)
  run:activate(vu, false)
  for _, lost in ipairs(task.close_scope(vu.scope, "its VU ended")) do run:iteration_error(lost.err, vu.tags) end
  vu.done = true
  local g = vu.group
  g.live = g.live - 1
  if g.live == 0 then g.done:set() end
  if not ok and not task.is_cancelled(err) then
    run.fatal = run.fatal or err
    error(err, 0)
  end
end

-- spawn_vu(group, main, active) -> a new VU running main(vu) as a task;
-- `active` counts it among the running VUs at once (closed model).
function Run:spawn_vu(group, main, active)
  self.next_vu, self.allocated, group.allocated = self.next_vu + 1, self.allocated + 1, group.allocated + 1
  local sc = group.sc
  local vu = { id = self.next_vu, scenario = sc, fn = self.env[sc.exec], group = group, tags = group.tags,
    iteration = 0, started = 0, lag = 0, active = false }
  vu.scope = task.scope("vu " .. vu.id)
  vu.scope.load_vu = vu
  group.live = group.live + 1
  group.done:clear()
  group.vus[#group.vus + 1] = vu
  if active then self:activate(vu, true) end
  vu.task = task.spawn_in(vu.scope, vu_body, self, vu, main)
  return vu
end

-- idle(vu): waits until wake(vu). A ramp-down that cancels the VU just
-- as its iteration ended is not the end of the VU.
function Run:idle(vu)
  vu.waiting = true
  local ok, err = pcall(task.wait, vu, nil, "idle VU")
  vu.waiting = false
  if not ok then
    if task.is_cancelled(err) and vu.ramped_down then
      vu.ramped_down = nil
      return
    end
    error(err, 0)
  end
end

function Run:wake(vu)
  if vu.waiting then
    vu.waiting = false
    task.wake(vu.task)
  end
end

-- ------------------------------------------------------------ iterations

-- iterate(vu[, intended]): one iteration. Under an arrival rate `intended`
-- is when it should have started: its durations count from there.
function Run:iterate(vu, intended)
  local t0 = now()
  vu.lag = intended and t0 > intended and t0 - intended or 0
  vu.started = vu.started + 1
  vu.busy = true
  local ok, err = pcall(vu.fn, self.data)
  vu.busy = false
  if not ok and task.is_cancelled(err) then
    self.interrupted = self.interrupted + 1
    if vu.ramped_down then
      vu.ramped_down = nil
      return
    end
    error(err, 0)
  end
  vu.iteration = vu.iteration + 1
  local reg, m, tags = self.registry, self.m, vu.tags
  reg:add(m.iterations, 1, tags)
  local from = intended and intended < t0 and intended or t0 -- an early start (timer rounding) is no credit
  local d = (now() - from) * 1000
  reg:add(m.iteration_duration, d, tags)
  local g = vu.group
  g.iterations = g.iterations + 1
  g.iter_hist:record(d)
  if not ok then self:iteration_error(err, tags) end
end

local FIRST_ERRORS = 10

function Run:iteration_error(err, tags)
  self.registry:add(self.m.iteration_errors, 1, tags)
  local e, message = self.errors, task.describe(err)
  e.count = e.count + 1
  local entry = e.by[message]
  if entry then
    entry.count = entry.count + 1
  elseif #e.first < FIRST_ERRORS then
    entry = { message = message, count = 1 }
    e.first[#e.first + 1], e.by[message] = entry, entry
  end
end

function Run:dropped(n, group)
  if n > 0 then self.registry:add(self.m.dropped_iterations, n, group.tags) end
end

-- sample_vus(): the vus and vus_max gauges, now
function Run:sample_vus()
  self.registry:add(self.m.vus, self.active, self.tags)
  self.registry:add(self.m.vus_max, self.allocated, self.tags)
end

-- second(): a row of the time series for the time since the last one:
-- {at (seconds into the run), span, reqs, failed, vus (the most active
-- at once), p50, p95, p99} (percentiles in ms, nil without requests); the
-- window starts again.
-- The run's last fraction of a second, if under half of one, joins the
-- row before (its counts; the percentiles stay that row's), so that a few
-- requests in a sliver of time do not draw as a spike of requests/s.
function Run:second(final)
  local rows, at = self.seconds, self:elapsed()
  local last = rows[#rows]
  local span = at - (last and last.at or 0)
  if span <= 0 then return end
  local w = self.window
  if final and last and span < 0.5 then
    last.at, last.span = at, last.span + span
    last.reqs, last.failed = last.reqs + self.window_reqs, last.failed + self.window_failed
    last.vus = math.max(last.vus, self.window_vus)
    w:reset()
    self.window_reqs, self.window_failed, self.window_vus = 0, 0, self.active
    return
  end
  local row = { at = at, span = span, reqs = self.window_reqs, failed = self.window_failed, vus = self.window_vus }
  if row.reqs > 0 then
    row.p50, row.p95, row.p99 = w:quantile(0.5), w:quantile(0.95), w:quantile(0.99)
  end
  rows[#rows + 1] = row
  w:reset()
  self.window_reqs, self.window_failed, self.window_vus = 0, 0, self.active
end

-- count_request(vu, expected, ms): a request in the scenario's stats and
-- the current second's
function Run:count_request(vu, expected, d)
  self.window_reqs = self.window_reqs + 1
  if not expected then self.window_failed = self.window_failed + 1 end
  self.window:record(d)
  local g = vu and vu.group
  if g then
    g.requests = g.requests + 1
    if not expected then g.failed = g.failed + 1 end
    g.req_hist:record(d)
  end
end

-- ------------------------------------------------------------------ tags

-- Request tags fall back to their VU's (scenario, options.tags, the
-- scenario's tags) through a metatable, made once per VU group.
local fallback = setmetatable({}, { __mode = "k" })

local function over(tags, base)
  local mt = fallback[base]
  if not mt then
    mt = { __index = base }
    fallback[base] = mt
  end
  return setmetatable(tags, mt)
end

-- ---------------------------------------------------- checks and custom

function Run:check(name, ok, vu, tags)
  local base = vu and vu.tags or self.tags
  local t = { check = name }
  for k, v in pairs(tags or {}) do t[k] = v end
  self.registry:add(self.m.checks, ok, over(t, base))
  local c = self.checks.by[name]
  if not c then
    c = { name = name, passes = 0, fails = 0 }
    self.checks.by[name] = c
    self.checks.order[#self.checks.order + 1] = c
  end
  if ok then c.passes = c.passes + 1 else c.fails = c.fails + 1 end
end

function Run:add_custom(series, value, vu, tags)
  local base = vu and vu.tags or self.tags
  local t = {}
  for k, v in pairs(tags or {}) do t[k] = v end
  self.registry:add(series, value, over(t, base))
end

-- ------------------------------------------------------------------ HTTP

local function pos(x) return x > 0 and x or 0 end

-- The metrics of a request: whether one has a sub-metric decides whether
-- a request's own tags are made at all.
local HTTP_METRICS = { "http_reqs", "http_req_failed", "http_req_duration", "http_req_connecting",
    "http_req_tls_handshaking",
  "http_req_waiting", "http_req_receiving", "data_sent", "data_received" }

-- on_http(spec, response | nil, err, started): sonde.http's observer.
function Run:on_http(spec, r, _, started)
  local t = task.current()
  local vu = t and t.scope.load_vu
  local status = r and r.status or 0
  local expected = status >= 200 and status < 400
  local tags = vu and vu.tags or self.tags
  if self.tagged then -- a sub-metric or --out reads them: the request's own
    local user = spec.tags
    tags = over({ name = user and user.name or spec.url, method = spec.method, status = status,
      expected_response = expected }, tags)
    if user then
      for k, v in pairs(user) do tags[k] = v end
    end
  end
  local lag = vu and vu.lag or 0
  local reg, m = self.registry, self.m
  reg:add(m.http_reqs, 1, tags)
  reg:add(m.http_req_failed, not expected, tags)
  if not r then
    local d = (now() - started + lag) * 1000
    reg:add(m.http_req_duration, d, tags)
    if self.started and not self.ended then self:count_request(vu, expected, d) end
    return
  end
  -- libcurl's times count from the transfer's start; the request goes out
  -- once the connection is ready (a reused one is ready at once)
  local tm = r.timings
  local dns, connect, tls = tm.dns, tm.connect, tm.tls
  local ready = tls > connect and tls or (connect > dns and connect or dns)
  local d = (pos(tm.total - ready) + lag) * 1000
  reg:add(m.http_req_duration, d, tags)
  if self.started and not self.ended then self:count_request(vu, expected, d) end
  reg:add(m.http_req_connecting, (connect > 0 and pos(connect - dns) or 0) * 1000, tags)
  reg:add(m.http_req_tls_handshaking, (tls > 0 and pos(tls - connect) or 0) * 1000, tags)
  reg:add(m.http_req_waiting, pos(tm.first_byte - ready) * 1000, tags)
  reg:add(m.http_req_receiving, pos(tm.total - tm.first_byte) * 1000, tags)
  reg:add(m.data_sent, r.bytes_sent, tags)
  reg:add(m.data_received, r.bytes_received, tags)
end

-- ------------------------------------------------------------- the run

-- abort(reason): stops every scenario now (no graceful stop).
function Run:abort(reason)
  if self.aborted then return end
  self.aborted = reason
  for _, t in ipairs(self.scenario_tasks or {}) do t:cancel(reason) end
end

function Run:elapsed() return now() - self.started end

-- The run's clock: every second the vus gauges are sampled, abort_on_fail
-- thresholds are checked, and the progress line (if any) is drawn.
function Run:tick()
  while true do
    task.sleep(1)
    local elapsed = self:elapsed()
    if elapsed < self.planned then self:sample_vus() end -- not the VUs' wind-down
    self:second()
    if self.watch_abort then
      local _, crossed = thresholds.evaluate(self.thresholds, elapsed, true, elapsed)
      if crossed then
        self.crossed = crossed
        self:abort(string.format("threshold '%s' on %s crossed (abort_on_fail)", crossed.threshold.source, crossed.key))
        return
      end
    end
    if self.progress then self.progress(self, elapsed) end
  end
end

local function run_scenario(run, sc)
  local group = run:group(sc)
  local ok, err = pcall(function()
    local start = run.started + sc.start_time
    if start > now() then task.sleep(start - now()) end
    executors.run[sc.executor](run, sc, group, start)
  end)
  if not ok then
    group:stop(run.aborted or "the run stopped")
    error(err, 0)
  end
end

-- join_all(tasks): waits for every task; an interrupt of the waiting task
-- (Ctrl-C) aborts the run and waits on.
local function join_all(run, tasks)
  for _, t in ipairs(tasks) do
    while not t:done() do
      local ok, err = pcall(t.join, t)
      if not ok and not t:done() then run:abort(task.is_cancelled(err) and "interrupted" or task.describe(err)) end
    end
    t:observe()
  end
end

-- execute(data): runs every scenario with `data` (setup's result) and
-- returns when they have all ended.
function Run:execute(data)
  self.data = data
  for _, e in ipairs(self.thresholds) do
    for _, th in ipairs(e.list) do
      if th.abort_on_fail then self.watch_abort = true end
    end
  end
  self:attach()
  self.started = now()
  self.planned = 0 -- when the last scenario ends, graceful stops aside
  for _, sc in ipairs(self.options.scenarios) do
    self.planned = math.max(self.planned, executors.max_duration(sc) - sc.graceful_stop)
  end
  self.scenario_tasks = {}
  for _, sc in ipairs(self.options.scenarios) do
    self.scenario_tasks[#self.scenario_tasks + 1] = task.spawn(run_scenario, self, sc)
  end
  local ticker = task.spawn(self.tick, self)
  join_all(self, self.scenario_tasks)
  self.ended = now()
  self:second(true)
  ticker:cancel("the run ended")
  pcall(ticker.join, ticker)
end

-- detach(): requests and checks after the run (teardown's) are not the
-- run's VUs' any more, but still counted.
function Run:detach()
  http._observe(nil)
  load._bind(nil, nil)
end

-- attach(): setup and teardown's requests count too (k6 counts them).
function Run:attach()
  self.tagged = self.registry.out ~= nil
  for _, name in ipairs(HTTP_METRICS) do
    if self.m[name].subs then self.tagged = true end
  end
  load._bind(self, self.registry)
  http._observe(function(spec, r, err, started) self:on_http(spec, r, err, started) end)
end

M.max_duration = executors.max_duration
M.max_vus = executors.max_vus

return M
