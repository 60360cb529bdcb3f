-- sonde.livecheck: faust's LiveCheck without Kafka.
--
-- End-to-end checks that follow real (or fake) requests through a running
-- system: a case's run() is executed for each triggered test, waits for the
-- signals the system under test sends back (over HTTP to the app's server,
-- or in-process), and every execution ends in a report. Tests go through an
-- in-process queue, signals arrive at POST /signal, and reports go to a
-- JSON-lines file, a URL or a function. Signals, case state and reports
-- travel on the app's bus (sonde.livecheck.bus): this process alone by
-- default, or Redis Streams shared by N processes (sonde.livecheck.redis).
-- Every timer uses the scheduler's clock, so hours of behaviour run in
-- milliseconds under clock.virtual.
local task = require("sonde.task")
local json = require("sonde.json")
local http = require("sonde.http")
local server = require("sonde.server")
local trace = require("sonde.lib.trace")
local livecheck_bus = require("sonde.livecheck.bus")
local livecheck_state = require("sonde.livecheck.state")
local diff = require("sonde.runner.diff")

local M = {}

M.State = { INIT = "INIT", PASS = "PASS", FAIL = "FAIL", ERROR = "ERROR", TIMEOUT = "TIMEOUT", STALL = "STALL",
  SKIP = "SKIP" }
local OK_STATES = { INIT = true, PASS = true, SKIP = true }

-- ------------------------------------------------------------ helpers

-- Timestamps and ids from sonde.lib.stamp, as events have them: ISO 8601 in UTC with
-- microseconds, and UUIDs from /dev/urandom (math.random is never seeded,
-- so every process would hand out the same sequence).
local stamp = require("sonde.lib.stamp")
local iso8601, uuid4 = stamp.rfc3339, stamp.uuid4
M.iso8601, M.uuid4 = iso8601, uuid4

local median = livecheck_state.median

local function check_fields(what, given, allowed, level)
  for k, v in pairs(given) do
    local want = allowed[k]
    if want == nil then error(what .. ": unknown option '" .. tostring(k) .. "'", level + 1) end
    if want ~= "any" and type(v) ~= want then
      error(string.format("%s: option '%s' must be a %s, got %s", what, k, want, type(v)), level + 1)
    end
  end
end

-- --------------------------------------------------- the current test
-- Which execution a task works for: set for an execution's own task, for
-- maybe_trigger's body and for server handlers that received the headers.

local contexts = setmetatable({}, { __mode = "k" })

function M.current_test()
  local t = task.current()
  return t and contexts[t] or nil
end

local function with_test(execution, fn, ...)
  local t = task.current()
  local previous = contexts[t]
  contexts[t] = execution
  local results = task.pack(pcall(fn, ...))
  contexts[t] = previous
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, results.n)
end

-- The four LiveCheck-Test-* headers for the current test, or nil: sonde.http
-- adds them to every request made inside an execution.
function M.context_headers()
  local x = M.current_test()
  if not x then return nil end
  return { ["LiveCheck-Test-Id"] = x.id, ["LiveCheck-Test-Name"] = x.case_name,
    ["LiveCheck-Test-Timestamp"] = x.timestamp and iso8601(x.timestamp) or x.timestamp_text,
    ["LiveCheck-Test-Expires"] = x.expires and iso8601(x.expires) or x.expires_text }
end

-- sonde.server calls this for every request: a handler whose request
-- carries the headers runs with current_test() set (faust's middleware),
-- one whose request does not with none (a server's worker task runs one
-- request after another). Arguments are not propagated, as in faust.
function M.enter_from_headers(headers)
  local t = task.current()
  if not t then return end
  local id = headers["livecheck-test-id"]
  contexts[t] = id and { id = id, case_name = headers["livecheck-test-name"], remote = true,
    timestamp_text = headers["livecheck-test-timestamp"], expires_text = headers["livecheck-test-expires"] } or nil
end

-- ------------------------------------------------------------ errors

local LiveError = {}
LiveError.__index = LiveError
LiveError.__tostring = function(e) return e.message end

local function live_error(kind, message)
  return setmetatable({ kind = kind, message = message }, LiveError)
end

local function is_failure(err)
  local mt = getmetatable(err)
  if mt and mt.__type == "failure" then return true end
  local dsl = package.loaded["sonde.runner.dsl"]
  if dsl and dsl.is_failure(err) then return true end
  return type(err) == "string" and err:find("assertion failed!", 1, true) ~= nil
end

local function outcome_of(err)
  if getmetatable(err) == LiveError then
    if err.kind == "timeout" then return M.State.TIMEOUT end
    if err.kind == "skip" then return M.State.SKIP end
  end
  if is_failure(err) then return M.State.FAIL end
  return M.State.ERROR
end

-- ------------------------------------------------------------ signals

local Signal = {}
Signal.__index = Signal

local function shown(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end

-- A misused send or wait is one line at the caller's: a dot for the colon,
-- or options that are not a table (a bare key or timeout would be ignored).
local function signal_options(sig, method, opts, shape)
  if getmetatable(sig) ~= Signal then
    error(string.format("signal %s: call it as signal:%s(...), with a colon", method, method), 3)
  end
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("signal %s:%s: expected %s, got %s", sig.name, method, shape, shown(opts)), 3)
  end
  return opts
end

-- send(value[, {key=}]): publishes the signal for key (default: the current
-- test's id) on the app's bus. Without a key and outside a test it does
-- nothing, as faust.
function Signal:send(value, opts)
  local key = signal_options(self, "send", opts, "the options {key=} after the value").key
  if key == nil then
    local x = M.current_test()
    if not x then return false end
    key = x.id
  end
  self.case.app.bus:publish { case = self.case.name, signal = self.name, key = key, value = value }
  return true
end

-- wait{key=, timeout=} -> the value sent. The timeout is exact (faust's
-- shrinks with every poll); raises a TIMEOUT outcome when it passes.
function Signal:wait(opts)
  opts = signal_options(self, "wait", opts, "the options {key=, timeout=}")
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    error(string.format("signal %s:wait: timeout must be a number of seconds >= 0, got %s", self.name, shown(timeout)),
      2)
  end
  local x = M.current_test()
  local key = opts.key or (x and x.id)
  if key == nil then error("signal " .. self.name .. ":wait: no test is executing (give key=)", 2) end
  local app = self.case.app
  local slot = app:signal_slot(self.case.name, self.name, key)
  if not slot.resolved then
    local ok, err = pcall(slot.event.wait, slot.event, timeout)
    if not ok then
      if task.is_timeout(err) then
        error(live_error("timeout", string.format("Timed out waiting for signal %s (%gs)", self.name, timeout)), 2)
      end
      error(err, 0)
    end
  end
  if x and x.signal_latency then x.signal_latency[self.name] = slot.at - x.started end
  return slot.value
end

-- ------------------------------------------------------------ cases

local CASE_OPTIONS = { name = "string", probability = "number", warn_stalled_after = "number",
  frequency = "number", test_expires = "number", max_consecutive_failures = "number",
  state_transition_delay = "number", max_history = "number", signals = "table", url_timeout_total = "number",
  url_timeout_connect = "number", url_error_retries = "number", url_error_delay_min = "number",
  url_error_delay_backoff = "number", url_error_delay_max = "number", active = "boolean" }

local CASE_DEFAULTS = { probability = 0.5, warn_stalled_after = 1800, test_expires = 10800,
  max_consecutive_failures = 30, state_transition_delay = 60, max_history = 100, url_timeout_total = 300,
  url_error_retries = 10, url_error_delay_min = 0.5, url_error_delay_backoff = 1.5, url_error_delay_max = 5,
  active = true }

local Case = {}
Case.__index = Case
Case.__tostring = function(c) return "<livecheck case " .. c.name .. ">" end

local function new_case(app, opts)
  local c = setmetatable(livecheck_state.fresh(), Case)
  c.app, c.signals, c.in_flight, c.slot_queue = app, {}, {}, { first = 1, last = 0 }
  for k, v in pairs(CASE_DEFAULTS) do c[k] = v end
  for k, v in pairs(opts) do
    if k ~= "signals" then c[k] = v end
  end
  for _, name in ipairs(opts.signals or {}) do
    if type(name) ~= "string" then error("case " .. c.name .. ": signal names must be strings", 3) end
    c.signals[name] = setmetatable({ name = name, case = c }, Signal)
  end
  return c
end

local function check_case(app, opts)
  if type(opts) ~= "table" then error("app:case: expected a table of options, got " .. type(opts), 3) end
  check_fields("app:case", opts, CASE_OPTIONS, 3)
  if not opts.name or opts.name == "" then error("app:case: a case needs a name", 3) end
  if app.cases[opts.name] then error("app:case: a case named '" .. opts.name .. "' already exists", 3) end
  local p = opts.probability
  if p and (p < 0 or p > 1) then error("app:case: probability must be within [0, 1], got " .. p, 3) end
  if opts.frequency and opts.frequency <= 0 then
    error("app:case: frequency must be a positive number of seconds, got " .. opts.frequency, 3)
  end
end

function Case:seconds_since_last_fail()
  return self.last_fail and (task.time() - self.last_fail) or nil
end

-- Runs a transition of the case's state (sonde.livecheck.state) where the
-- state lives, through the app's bus, and sends the suite report it asks
-- for. p.now and p.delay are filled in.
function Case:transition(op, p)
  p.now, p.delay = task.time(), self.state_transition_delay
  local bus = self.app.bus
  local report
  if bus.transition then report = bus:transition(self, op, p) else report = livecheck_state.apply(self, op, p) end
  if report then
    self.app:post_report { case_name = self.name, state = report.state, test = json.null, runtime = json.null,
      signal_latency = {}, error = report.error, traceback = json.null, suite = true }
  end
end

-- Tries to go back to PASS: only once state_transition_delay has passed
-- since the last failure (faust's _maybe_recover_from_failed_state).
function Case:maybe_recover() self:transition("recover", {}) end

-- A suite-level failure: reports are held off for state_transition_delay
-- after the last failure; each new failure postpones reports and recovery.
function Case:on_suite_fail(message, new_state)
  self:transition("suite_fail", { message = message, state = new_state or M.State.FAIL })
end

local function execution_view(x)
  return { id = x.id, case_name = x.case_name, timestamp = iso8601(x.timestamp), expires = iso8601(x.expires),
    args = json.array(x.args) }
end

function Case:record_failure(state, message)
  self:transition("failed", { state = state, message = message, max_failures = self.max_consecutive_failures })
end

-- Runs one execution to its report (faust's TestRunner.execute).
function Case:execute(x)
  local now = task.now()
  local skip = not self.active and "case inactive" or (task.time() >= x.expires and "expired") or nil
  if skip then
    self:transition("skipped", {})
    return { case_name = self.name, state = M.State.SKIP, test = execution_view(x), error = "skipped: " .. skip }
  end
  self:transition("started", { frequency = self.frequency, max_history = self.max_history })
  x.started, x.signal_latency = now, {}
  local tb
  contexts[task.current()] = x -- this task works for x until it ends
  local ok, err = xpcall(self.run, function(e)
    tb = debug.traceback("", 2)
    return e
  end, self, unpack(x.args))
  local runtime = task.now() - now
  if ok then
    self:transition("passed", { runtime = runtime, max_history = self.max_history })
    return self.app:post_report { case_name = self.name, state = M.State.PASS, test = execution_view(x),
      runtime = runtime, signal_latency = x.signal_latency, error = json.null, traceback = json.null }
  end
  if task.is_cancelled(err) then return nil end -- the app is stopping: no report, as faust
  local state, message = outcome_of(err), task.describe(err)
  self:record_failure(state, message)
  return self.app:post_report { case_name = self.name, state = state, test = execution_view(x), runtime = runtime,
    signal_latency = x.signal_latency, error = message, traceback = trace.trim(tb) }
end

local Execution = {}
Execution.__index = Execution

-- x:wait([timeout]) -> the execution's report
function Execution:wait(timeout)
  return self.handle:join(timeout)
end

-- trigger([id], ...) -> execution, started now in its own task.
function Case:trigger(id, ...)
  if type(self.run) ~= "function" then
    error("case " .. self.name .. " has no run function (define function case:run(...))", 2)
  end
  local now = task.time()
  local x = setmetatable({ id = id or uuid4(), case_name = self.name, timestamp = now,
    expires = now + self.test_expires, args = { ... } }, Execution)
  x.handle = self.app:spawn(function()
    local report = self:execute(x)
    self.in_flight[x] = nil
    return report
  end)
  self.in_flight[x] = true
  return x
end

-- maybe_trigger([id], fn, ...): with `probability`, triggers and calls
-- fn(execution) with that test current; otherwise calls fn(nil).
function Case:maybe_trigger(id, fn, ...)
  if type(fn) ~= "function" then
    local hint = type(id) == "function" and fn == nil and " (the id comes first: maybe_trigger(nil, fn) for a UUID)"
      or ""
    error("maybe_trigger: expected fn(execution) as the second argument, got " .. type(fn) .. hint, 2)
  end
  if math.random() < self.probability then
    local x = self:trigger(id, ...)
    return with_test(x, fn, x)
  end
  return fn(nil)
end

-- url_request(method, url, opts) -> body, or nil once retries ran out (the
-- suite then fails with ServiceDown). Sleeps 0.5, 0.75, 1.125... capped at
-- url_error_delay_max; the log says the delay it really waits.
function Case:url_request(method, url, opts)
  opts = opts or {}
  local delay = self.url_error_delay_min
  for attempt = 0, self.url_error_retries do
    local ok, r = pcall(http.request, method, url, { timeout = self.url_timeout_total,
      connect_timeout = self.url_timeout_connect, json = opts.json, body = opts.body, headers = opts.headers,
      params = opts.params })
    if not ok and task.is_cancelled(r) then error(r, 0) end -- not a service failure
    if ok and r.status < 400 then
      self:maybe_recover()
      return r.body, r
    end
    local why = ok and ("HTTP " .. r.status) or task.describe(r)
    if attempt >= self.url_error_retries then
      self:on_suite_fail("ServiceDown: Cannot send fake test request: " .. why, M.State.FAIL)
      return nil
    end
    self.app:log(string.format("%s %s failed (%s); will retry in %gs", method, url, why, delay))
    task.sleep(delay)
    delay = math.min(delay * self.url_error_delay_backoff, self.url_error_delay_max)
  end
end

function Case:get_url(url, opts) return self:url_request("GET", url, opts) end
function Case:post_url(url, opts) return self:url_request("POST", url, opts) end

-- The case's timers: stall detection and fake traffic. (faust also samples
-- the medians every 10 s; status_view computes them when asked instead.)
function Case:start_timers()
  local app = self.app
  app:spawn(function()
    task.sleep(self.warn_stalled_after)
    local since = task.time() -- tests received before the checks begin do not count, as in faust
    while true do
      self:transition("stall_check", { since = since, warn = self.warn_stalled_after })
      task.sleep(self.warn_stalled_after)
    end
  end)
  if self.frequency then
    app:spawn(function()
      while true do
        task.sleep(self.frequency)
        if self.make_fake_request then
          local ok, err = pcall(self.make_fake_request, self)
          if not ok and task.is_cancelled(err) then error(err, 0) end -- the app is stopping
          if not ok then app:log("make_fake_request of " .. self.name .. " failed: " .. task.describe(err)) end
        end
      end
    end)
  end
end

function Case:status_view()
  return { state = self.status, consecutive_failures = self.consecutive_failures,
    total_failures = self.total_failures, total_by_state = self.total_by_state,
    seconds_since_last_fail = self:seconds_since_last_fail() or json.null,
    last_failure = self.last_failure or json.null,
    runtime_median = median(self.runtime_history) or json.null,
    latency_median = median(self.latency_history) or json.null,
    frequency_median = median(self.frequency_history) or json.null,
    in_flight = (function() local n = 0 for _ in pairs(self.in_flight) do n = n + 1 end return n end)(),
    active = self.active }
end

-- ------------------------------------------------------------ the app

local APP_OPTIONS = { id = "string", port = "number", host = "string", report = "any", log = "any", bus = "any" }

local App = {}
App.__index = App
M.App = App

function M.app(opts)
  if type(opts) ~= "table" then
    error("livecheck.app: expected a table of options {id=, port=, report=}, got " .. type(opts), 2)
  end
  check_fields("livecheck.app", opts, APP_OPTIONS, 2)
  local r = opts.report
  if r ~= nil and r ~= false and type(r) ~= "string" and type(r) ~= "function" then
    error("livecheck.app: report must be a file path, an http(s) URL, a function or false", 2)
  end
  local app = setmetatable({ id = opts.id or "livecheck", port = opts.port or 9999, host = opts.host or "127.0.0.1",
    report = opts.report, log_sink = opts.log, cases = {}, case_order = {}, resolved = {}, reports = 0,
    recent = {}, scope = nil, tasks = {} }, App)
  app:use_bus(opts.bus, 2)
  return app
end

-- use_bus(spec): what signals, case state and reports travel on: nil for
-- this process alone, a redis:// URL (or {url=, maxlen=, timeout=}) for
-- Redis Streams, or an object with the interface of sonde.livecheck.bus.
-- Chosen before start().
function App:use_bus(spec, level)
  level = (level or 1) + 1
  if self.server then error("livecheck: app " .. self.id .. ": choose the bus before start()", level) end
  self.bus = livecheck_bus.from(spec, self, level)
  self.bus:subscribe(function(ev) self:deliver_signal(ev) end)
end

-- A signal from the bus: one for a case or signal this app does not have
-- (another app's, or an older version's) is logged once and dropped.
function App:deliver_signal(ev)
  local c = self.cases[ev.case]
  if not c or not c.signals[ev.signal] then
    self.unknown_signals = self.unknown_signals or {}
    local what = tostring(ev.case) .. "." .. tostring(ev.signal)
    if not self.unknown_signals[what] then
      self.unknown_signals[what] = true
      self:log("signal " .. what .. " dropped: this app has no such " .. (c and "signal" or "case"))
    end
    return
  end
  self:resolve_signal(ev.case, ev.signal, ev.key, ev.value, ev.at)
end

function App:case(opts)
  check_case(self, opts)
  local c = new_case(self, opts)
  self.cases[c.name] = c
  self.case_order[#self.case_order + 1] = c.name
  return c
end

function App:log(message)
  if type(self.log_sink) == "function" then return self.log_sink(message) end
  if self.log_sink ~= false then io.stderr:write("livecheck: ", message, "\n") end
end

function App:spawn(fn, ...)
  task.check_callable(fn, "app:spawn")
  local t = task.spawn_in(self.scope or task.current_scope(), fn, ...)
  self.tasks[t] = true
  t:add_done_callback(function() self.tasks[t] = nil end)
  return t
end

-- Signals are kept per (case, signal, key) until their test expires. Each
-- case also queues its slots in the order they were made, which is the
-- order they expire in, so pruning looks only at those that have.
function App:signal_slot(case_name, signal_name, key, at)
  local id = case_name .. "\0" .. signal_name .. "\0" .. tostring(key)
  local slot = self.resolved[id]
  if not slot then
    local c = self.cases[case_name]
    slot = { id = id, event = task.event(), expires = (at or task.time()) + c.test_expires }
    self.resolved[id] = slot
    local q = c.slot_queue
    q.last = q.last + 1
    q[q.last] = slot
  end
  return slot
end

-- resolve_signal(case, signal, key, value[, at]): `at` is when it was sent
-- (epoch seconds), when the bus knows; its test expires from then.
function App:resolve_signal(case_name, signal_name, key, value, at)
  if at and at + self.cases[case_name].test_expires <= task.time() then return end -- its test has expired
  local slot = self:signal_slot(case_name, signal_name, key, at)
  slot.value, slot.resolved, slot.at = value, true, task.now()
  slot.event:set()
  self:prune_signals()
end

-- Drops signals whose test has expired (faust keeps them forever): the
-- expired heads of each case's queue. (A test_expires lowered at run time
-- only delays the newer slots until the older ones have gone.)
function App:prune_signals()
  local now = task.time()
  for _, name in ipairs(self.case_order) do
    local q = self.cases[name].slot_queue
    local first, slot = q.first, q[q.first]
    while slot and slot.expires <= now do
      if self.resolved[slot.id] == slot then self.resolved[slot.id] = nil end
      q[first] = nil
      first = first + 1
      slot = q[first]
    end
    q.first = first
  end
end

function App:signal_count()
  local n = 0
  for _ in pairs(self.resolved) do n = n + 1 end
  return n
end

-- ------------------------------------------------------------ reports

local function write_jsonl(path, report)
  local f, err = io.open(path, "a")
  if not f then error("cannot append to " .. path .. ": " .. err, 0) end
  f:write(json.encode(report), "\n")
  f:close()
end

-- post_report(report) -> report: sends it to the report sink; a sink that
-- fails is logged and never stops the checks.
function App:post_report(report)
  self.reports = self.reports + 1
  self.last_report = report
  self.recent[#self.recent + 1] = report
  if #self.recent > 100 then table.remove(self.recent, 1) end
  if self.bus.report then
    local sent, err = pcall(self.bus.report, self.bus, report)
    if not sent then self:log("report not kept on the bus: " .. task.describe(err)) end
  end
  local sink = self.report
  if sink == nil or sink == false then return report end
  local ok, err = pcall(function()
    if type(sink) == "function" then
      sink(report)
    elseif sink:match("^https?://") then
      self.report_client = self.report_client or
        http.client { retries = 3, retry_backoff = { min = 0.2, factor = 2, max = 2 }, timeout = 30 }
      local r = self.report_client:post(sink, { json = report })
      if r.status >= 300 then error("report sink answered " .. r.status, 0) end
    else
      write_jsonl(sink, report)
    end
  end)
  if not ok then self:log("report not delivered: " .. task.describe(err)) end
  return report
end

-- ------------------------------------------------------------ HTTP

local function bad(status, message) return { status = status, json = { error = message } } end

-- What each field of a signal must be: a key that is neither a string nor
-- a number could never be waited for (slots are found by its text).
local SIGNAL_FIELDS = { { "case", { string = true } }, { "signal", { string = true } },
  { "key", { string = true, number = true } } }

-- The answer to POST /signal {case, signal, key, value}: 202 once the
-- signal is published, else 400 or 404 and why, in one line whatever the
-- body holds.
function App:handle_signal(req)
  local ok, body = pcall(json.decode, req.body)
  if not ok then return bad(400, "the body must be JSON: " .. tostring(body):gsub("^json%.decode: ", "")) end
  if type(body) ~= "table" then return bad(400, "the body must be a JSON object {case, signal, key, value}") end
  for _, field in ipairs(SIGNAL_FIELDS) do
    local name, v = field[1], body[field[1]]
    if v == nil or v == json.null then return bad(400, "missing field '" .. name .. "'") end
    if not field[2][type(v)] then
      return bad(400, string.format("field '%s' must be a %s, got %s", name, field[2].number and "string or a number"
        or "string", diff.show(v)))
    end
  end
  local c = self.cases[body.case]
  if not c then return bad(404, "unknown case " .. diff.show(body.case)) end
  if not c.signals[body.signal] then
    return bad(404, "case " .. diff.show(c.name) .. " has no signal " .. diff.show(body.signal))
  end
  local sent, err = pcall(self.bus.publish, self.bus,
    { case = c.name, signal = body.signal, key = body.key, value = body.value })
  if not sent then return bad(503, task.describe(err)) end
  return { status = 202, json = { ok = true } }
end

-- status() -> per-case state, counters and medians; with a shared bus,
-- the whole deployment's (in_flight and signals_kept are this process's).
function App:status()
  local shared = self.bus.refresh and self.bus:refresh(self)
  local cases = {}
  for _, name in ipairs(self.case_order) do cases[name] = self.cases[name]:status_view() end
  return { id = self.id, cases = cases, reports = shared and shared.reports or self.reports,
    signals_kept = self:signal_count(), bus = self.bus.describe and self.bus:describe() or json.null }
end

-- recent_reports([n=100]) -> the last reports, oldest first: every
-- process's when the bus keeps them.
function App:recent_reports(n)
  n = math.min(n or 100, 1000)
  if self.bus.recent_reports then
    local ok, reports = pcall(self.bus.recent_reports, self.bus, n)
    if ok then return reports end
  end
  local out = {}
  for i = math.max(1, #self.recent - n + 1), #self.recent do out[#out + 1] = self.recent[i] end
  return out
end

local function escape_html(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local function fmt(v)
  if v == nil or v == json.null then return "–" end
  if type(v) == "number" then return string.format("%.3f", v) end
  return escape_html(v)
end

function App:status_html()
  local rows = {}
  local status = self:status()
  for _, name in ipairs(self.case_order) do
    local s = status.cases[name]
    local failure = s.last_failure ~= json.null and s.last_failure.error or ""
    rows[#rows + 1] = string.format(
      "<tr class=%q><td>%s</td><td class=state>%s</td><td>%d</td><td>%d</td>"
        .. "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
      s.state:lower(), escape_html(name), s.state, s.consecutive_failures, s.total_failures, fmt(s.runtime_median),
      fmt(s.latency_median), fmt(s.frequency_median), escape_html(failure))
  end
  return ([[<!doctype html>
<html><head><meta charset="utf-8"><title>LiveCheck %s</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.4em .8em;border-bottom:1px solid #ddd;text-align:left}
tr.pass .state,tr.init .state{color:#1a7f37}
tr.fail .state,tr.error .state,tr.timeout .state{color:#cf222e;font-weight:bold}
tr.stall .state{color:#9a6700;font-weight:bold}
</style></head><body>
<h1>LiveCheck: %s</h1>
<p>%d reports sent; %d signals kept. <a href="/status">status as JSON</a></p>
<table><tr><th>case</th><th>state</th><th>consecutive failures</th><th>total failures</th>
<th>runtime median (s)</th><th>latency median (s)</th><th>interval median (s)</th><th>last failure</th></tr>
%s
</table></body></html>
]]):format(escape_html(self.id), escape_html(self.id), status.reports, status.signals_kept, table.concat(rows, "\n"))
end

-- routes(s): the app's routes on server s: POST /signal, GET /status,
-- GET /reports, GET /.
function App:routes(s)
  s:post("/signal", function(req) return self:handle_signal(req) end)
  s:get("/status", function() return { json = self:status() } end)
  s:get("/reports", function(req)
    return { json = json.array(self:recent_reports(tonumber(req.query and req.query.count))) }
  end)
  s:get("/", function()
    return { body = self:status_html(), headers = { ["Content-Type"] = "text/html; charset=utf-8" } }
  end)
end

-- start(): serves the app's routes (app.url), and starts every case's timers.
function App:start()
  if self.server then error("livecheck: app " .. self.id .. " already started", 2) end
  self.scope = task.current_scope()
  if self.bus.start then self.bus:start(self) end
  self.server = server.serve({ host = self.host, port = self.port }, function(s) self:routes(s) end)
  self.url = self.server.url
  for _, name in ipairs(self.case_order) do self.cases[name]:start_timers() end
  return self
end

-- stop([grace=30]): stops the timers, lets in-flight executions finish (up
-- to grace seconds, then cancels them), and closes the server.
function App:stop(grace)
  local deadline = task.now() + (grace or 30)
  for _, name in ipairs(self.case_order) do
    for x in pairs(self.cases[name].in_flight) do
      pcall(x.handle.join, x.handle, math.max(0, deadline - task.now()))
    end
  end
  for t in pairs(self.tasks) do t:cancel("livecheck app stopped") end
  self.tasks = {}
  if self.server then self.server:close(1) end
  self.server = nil
  if self.bus.stop then self.bus:stop() end
end

-- failing() -> names of the cases whose state is not OK
function App:failing()
  local names = {}
  for _, name in ipairs(self.case_order) do
    if not OK_STATES[self.cases[name].status] then names[#names + 1] = name end
  end
  return names
end

return M
