-- sonde.clock: virtual time for tests.
--
-- One mechanism, several faces. While a mocked clock is open the loop runs
-- on virtual time (host/loop.c): every timer started meanwhile (task.sleep,
-- wait timeouts, task.timeout) waits on virtual time, which moves only when
-- this module moves it; real I/O stays real. Virtual timers fire one at a
-- time, in (deadline, creation) order, and the tasks each one wakes run to
-- their next wait before the next fires. With autojump, when no task can run
-- and nothing real is in flight (transfers, process waits, connections, real
-- sleeps: loop.real_pending), time jumps exactly to the next deadline; it
-- never guesses from real time how long to wait.
--
-- Also here: assert_sleeps_for (Prefect's mock_anyio_sleep), dominos
-- (machinery's future_dominos) and pending(), a view of waiting timers.
local task = require("sonde.task")
local loop = require("sonde.c.loop")
-- sonde's own words, not a test's output: to stderr as it was before any capture
local terminal = require("sonde.c.capture").terminal

local M = {}

-- Timer firings by autojump, without any real operation in flight or
-- completing meanwhile, after which a clock decides it is spinning.
M.RUNAWAY_LIMIT = 100000

local next_deadline, pop_due, real_pending, loop_now = loop.next_deadline, loop.pop_due, loop.real_pending, loop.now
local poll_now, dispatch, ready_count, pack = task.poll_now, task.dispatch, task.ready_count, task.pack
local floor, ceil, max, huge = math.floor, math.ceil, math.max, math.huge

local active = nil -- the open mocked clock (there is one loop clock)

-- "file:line" of the caller `level` frames up from the function calling this.
local function where(level)
  local info = debug.getinfo(level + 1, "Sl")
  if not info then return "?" end
  return info.short_src .. ":" .. (info.currentline or 0)
end

local function callable(v)
  return type(v) == "function" or (type(v) == "table" and (getmetatable(v) or {}).__call ~= nil)
end

local function finite(v) return type(v) == "number" and v == v and v > -huge and v < huge end

local fail = require("sonde.lib.test_hooks").fail -- a spec failure inside the runner

-- ------------------------------------------------------------- the steps

-- A clock with a precision moves in steps on the grid start + k*precision
-- (machinery's mocked_call_later): a timer fires at the first step at or
-- after its deadline. Steps are counted as integers and times computed from
-- them, so no error accumulates; the tolerance keeps float noise (0.1 + 0.2
-- is 0.30000000000000004) from pushing a deadline onto the next step. The
-- exact clock (clock.virtual) has no grid: a step is a time.
local function tolerance(x) return 1e-9 * max(1, x < 0 and -x or x) end

-- Round half up, not half to even: 2.5 steps are 3, even when the division
-- says 2.4999999999999996.
local function round_half_up(x) return floor(x + 0.5 + tolerance(x)) end

-- The shortest decimal that reads back as the same float, near enough: 0.3
-- rather than 0.30000000000000004.
local function tidy(v) return tonumber(string.format("%.15g", v)) end

local Mocked = {}
Mocked.__index = Mocked

function Mocked:step_now()
  if self.precision then return self.step end
  return loop_now()
end

-- The step at which a timer due at `deadline` fires.
function Mocked:step_of(deadline)
  if not self.precision then return deadline end
  local x = (deadline - self.start_time) / self.precision
  return ceil(x - tolerance(x))
end

function Mocked:time_of(step)
  if not self.precision then return step end
  return tidy(self.start_time + step * self.precision)
end

-- Fires the earliest virtual timer (due at `deadline`) at step k: moves time
-- there, records it, and wakes what waits on the timer.
local function fire(m, k, deadline)
  local at = m:time_of(k)
  local token = pop_due(max(at, deadline), at)
  if m.precision then m.step = k end
  local called = m.called_times
  if called then
    local n = m.called_count + 1
    m.called_count, called[n] = n, at
  end
  dispatch(token, 0, 0)
end

-- Fires the earliest virtual timer if it falls due by step `limit`.
local function fire_next(m, limit)
  local deadline = next_deadline()
  if deadline == nil then return false end
  local k = m:step_of(deadline)
  local now = m:step_now()
  if k < now then k = now end
  if k > limit then return false end
  fire(m, k, deadline)
  return true
end

-- ------------------------------------------------------------- runaway

local function runaway_error(m)
  return task.new_error("runaway", string.format(
    "clock: %d timers fired on virtual time with nothing real in flight (the clock opened at %s); a task " ..
    "probably sleeps in a loop that never ends (raise the limit with runaway_limit=)", m.runaway_limit, m.opened_at))
end

-- Stops a spinning clock: the error goes to the task that opened the clock
-- (clock.virtual then restores real time), else to the task the timer about
-- to fire (`token`, when popped already) would wake; with neither, real time
-- comes back and stderr says why.
local function stop_runaway(m, token)
  m.quiet = 0
  local err = runaway_error(m)
  local waker = token and task.waker_of(token)
  local target = m.owner
  if not (target and target.state == "suspended") then
    target = type(waker) == "table" and waker.state == "suspended" and waker or nil
  end
  if token and target and waker == target then -- it gets the error instead of the wake
    task.timer_popped(token)
  elseif token then
    dispatch(token, 0, 0)
  end
  if target then
    task.raise_in(target, err)
    return true
  end
  terminal(2):write("sonde: ", err.message, "; back to real time\n")
  m:close()
  return true
end

-- ------------------------------------------------------------ idle hook

-- A firing by the idle hook: counted for the runaway guard.
local function counted(m)
  m.quiet = m.quiet + 1
  return m.quiet <= m.runaway_limit
end

-- Idle on a clock with steps: a timer due at the current step fires, else
-- time jumps to the step of the next deadline.
local function idle_steps(m, may_block)
  local deadline = next_deadline()
  if deadline == nil then return false end
  local k, now = m:step_of(deadline), m.step
  if k > now then
    if not (may_block and m.autojump) then return false end
    if real_pending() > 0 then
      m.quiet = 0
      return false
    end
  else
    k = now
  end
  if not counted(m) then return stop_runaway(m) end
  fire(m, k, deadline)
  return true
end

-- The scheduler calls this when no task is ready (see task.set_idle_hook).
-- Real events go first; then a virtual timer already due fires; then, with
-- autojump and only if nothing real is in flight, time jumps to the next.
-- The exact clock takes the short way: one pop, up to now or to anywhere.
local function on_idle(may_block)
  local m = active
  if poll_now() > 0 then
    m.quiet = 0
    return true
  end
  if m.precision then return idle_steps(m, may_block) end
  local token
  if may_block and m.autojump then
    if real_pending() > 0 then
      m.quiet = 0
      token = pop_due()
    else
      token = pop_due(huge)
    end
  else
    token = pop_due()
  end
  if token == nil then return false end
  if not counted(m) then
    return stop_runaway(m, token)
  end
  local called = m.called_times
  if called then
    local n = m.called_count + 1
    m.called_count, called[n] = n, loop_now()
  end
  dispatch(token, 0, 0)
  return true
end

-- ---------------------------------------------------------------- mocked

local OPTIONS = { start_time = "number", precision = "number", autojump = "boolean", runaway_limit = "number" }

local function check_options(what, opts, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(what .. ": expected a table of options, got " .. type(opts), level + 1) end
  for k, v in pairs(opts) do
    if OPTIONS[k] == nil then
      error(string.format("%s: unknown option '%s' (expected start_time, precision, autojump, runaway_limit)", what,
        tostring(k)), level + 1)
    end
    if type(v) ~= OPTIONS[k] or (OPTIONS[k] == "number" and not finite(v)) then
      error(string.format("%s: %s must be a %s, got %s", what, k, OPTIONS[k] == "number" and "finite number" or
        OPTIONS[k], tostring(v)), level + 1)
    end
  end
  if opts.precision ~= nil and opts.precision <= 0 then
    error(what .. ": precision must be greater than 0, got " .. opts.precision, level + 1)
  end
  if opts.runaway_limit ~= nil and (opts.runaway_limit < 1 or opts.runaway_limit % 1 ~= 0) then
    error(what .. ": runaway_limit must be a whole number >= 1, got " .. opts.runaway_limit, level + 1)
  end
  return opts
end

local function open(opts, opened_at)
  local m = setmetatable({ start_time = opts.start_time or 0, precision = opts.precision,
    autojump = opts.autojump ~= false, runaway_limit = opts.runaway_limit or M.RUNAWAY_LIMIT, called_times = {},
    called_count = 0, step = 0, quiet = 0, owner = task.current(), opened_at = opened_at, closed = false }, Mocked)
  -- clock.virtual keeps no called_times: a long run would hold a number per
  -- firing (and the collector would walk them all, again and again)
  if opts.record == false then m.called_times = nil end
  -- real loop seconds = loop.real_now() - real_offset (for pending())
  m.real_offset = loop.real_now() - loop_now()
  loop.set_virtual(true, m.start_time, opts.epoch)
  active = m
  task.set_idle_hook(on_idle)
  return m
end

local function refuse_nested(what, level)
  if active then
    error(string.format("%s: a mocked clock is already active (opened at %s); there is one clock, so %s",
      what, active.opened_at, what == "clock.virtual" and "clock.virtual cannot be nested" or "close it first"),
      level + 1)
  end
end

-- mocked{start_time=0, precision=0.1, autojump=true, runaway_limit=} -> m:
-- virtual time from start_time in steps of precision. task.time() reads
-- start_time too, as machinery's time.time() does.
function M.mocked(opts)
  opts = check_options("clock.mocked", opts, 2)
  refuse_nested("clock.mocked", 2)
  return open({ start_time = opts.start_time, precision = opts.precision or 0.1, autojump = opts.autojump,
    runaway_limit = opts.runaway_limit, epoch = opts.start_time or 0 }, where(2))
end

-- m:now() -> the clock's time (frozen once closed).
function Mocked:now()
  if self.closed then return self.closed_at end
  return loop_now()
end

-- Lets every task that is ready run until it waits again (and what those
-- wake, and so on), so a timer's effects settle before the next fires.
local function settle()
  repeat task.sleep(0) until ready_count() == 0
end

-- m:add(seconds): moves time forward round(seconds/precision) steps (half
-- up; exactly `seconds` on the exact clock), firing every timer that falls
-- due on the way, including those started by the tasks it wakes.
function Mocked:add(seconds)
  if not finite(seconds) or seconds < 0 then
    local got = type(seconds) == "number" and tostring(seconds) or type(seconds)
    error("clock: add expects a number of seconds >= 0, got " .. got, 2)
  end
  if self.closed then error("clock: add on a mocked clock that is closed (opened at " .. self.opened_at .. ")", 2) end
  task.need_task("clock add")
  local target
  if self.precision then
    target = self.step + round_half_up(seconds / self.precision)
  else
    target = loop_now() + seconds
  end
  settle()
  while not self.closed and fire_next(self, target) do settle() end
  if self.closed then return end
  if self.precision then self.step = target end
  loop.advance(self:time_of(target))
  self.quiet = 0
end

-- m:close(): back to real time; timers still pending keep their distance
-- from now on the real clock. Closing twice does nothing.
function Mocked:close()
  if self.closed then return end
  self.closed_at = loop_now()
  self.closed = true
  if active == self then
    active = nil
    task.set_idle_hook(nil)
    loop.set_virtual(false)
  end
end

-- current() -> the open mocked clock, or nil.
function M.current() return active end

-- ---------------------------------------------------------------- virtual

local function run_virtual(opts, opened_at, fn, ...)
  local m = open({ start_time = opts.start_time, precision = opts.precision, autojump = opts.autojump,
    runaway_limit = opts.runaway_limit, record = false, epoch = opts.start_time }, opened_at)
  local r = pack(pcall(fn, ...))
  m:close()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- virtual([opts,] fn, ...) -> fn's results: runs fn(...) under a fresh
-- autojumping clock with no steps (time jumps to each deadline exactly) and
-- restores real time after, whatever happens. opts: start_time=0,
-- precision (steps, as clock.mocked), runaway_limit. task.time() goes on
-- from the real epoch (trio patches no wall clock) unless start_time is
-- given: then it starts there, as under clock.mocked.
function M.virtual(first, ...)
  local opts, fn = {}, first
  if type(first) == "table" and not callable(first) then
    opts, fn = check_options("clock.virtual", first, 2), ...
  end
  if not callable(fn) then error("clock.virtual: expected a function, got " .. type(fn), 2) end
  refuse_nested("clock.virtual", 2)
  if fn == first then return run_virtual(opts, where(2), first, ...) end
  return run_virtual(opts, where(2), ...)
end

-- ---------------------------------------------------------- sleeps_for

local skip_depth = 0

-- Prefect's message, with a number written the way it reads best.
local function num(v, digits) return (string.format("%." .. (digits or 15) .. "g", v)) end

-- assert_sleeps_for(seconds, fn[, {extra_tolerance=0}]) -> fn's results:
-- runs fn with sleeps that do not wait (each still yields; task.now() moves
-- by what they skip) and checks the seconds they add up to, with Prefect's
-- rule: slept - extra <= seconds <= slept + runtime + extra, runtime being
-- fn's real duration, rounded to floor(runtime) + 1 when seconds is whole.
function M.assert_sleeps_for(seconds, fn, opts)
  if not finite(seconds) or seconds < 0 then
    error("clock.assert_sleeps_for: expected a number of seconds >= 0, got " .. tostring(seconds), 2)
  end
  if not callable(fn) then
    error("clock.assert_sleeps_for: expected a function as the second argument, got " .. type(fn), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("clock.assert_sleeps_for: expected {extra_tolerance=} as the third argument, got " .. type(opts), 2)
  end
  local extra = opts and opts.extra_tolerance or 0
  if not finite(extra) or extra < 0 then
    error("clock.assert_sleeps_for: extra_tolerance must be a number >= 0, got " .. tostring(extra), 2)
  end
  skip_depth = skip_depth + 1
  local before = task.skip_sleeps(true)
  local started = loop.real_now()
  local r = pack(pcall(fn))
  local runtime = loop.real_now() - started
  skip_depth = skip_depth - 1
  local slept = task.skip_sleeps(skip_depth > 0) - before
  if not r[1] then error(r[2], 0) end
  if seconds % 1 == 0 then runtime = floor(runtime) + 1 end
  if not (slept - extra <= seconds and seconds <= slept + runtime + extra) then
    fail(string.format("slept for %s; expected %s with tolerance of +%s, -%s", num(slept), num(seconds),
      num(runtime + extra, 6), num(extra, 6)), 2)
  end
  return unpack(r, 2, r.n)
end

-- ---------------------------------------------------------------- dominos

-- Dominos keep their state apart from the object users index with numbers.
local Dominos = {}
local state_of = setmetatable({}, { __mode = "k" })
local open_dominos = {}

local function retrieve(futs, i, level)
  local d = state_of[futs]
  if type(i) ~= "number" or i % 1 ~= 0 or i < 1 or i > d.expected then
    error(string.format("clock.dominos: there is no domino %s (they are numbered 1..%d)", tostring(i), d.expected),
      level + 1)
  end
  if not d.retrieved[i] then
    d.retrieved[i] = true
    d.retrieval:set()
  end
  return d.futures[i]
end

Dominos.__index = function(futs, k)
  if type(k) == "number" then
    local domino = retrieve(futs, k, 2) -- not a tail call: level 2 is the indexing line
    return domino
  end
  return Dominos[k] or state_of[futs].fields[k]
end
Dominos.__newindex = function() error("clock.dominos: dominos cannot be assigned; retrieve them with futs[i]", 2) end
Dominos.__tostring = function(futs) return string.format("dominos<%d>", state_of[futs].expected) end

-- The knocker: after begin(), domino i falls once 1..i-1 have fallen and i
-- has been retrieved, and only after everything woken by i-1 has settled.
local function knock(d)
  d.fields.started:wait()
  for i = 1, d.expected do
    while not d.retrieved[i] do
      d.retrieval:clear()
      d.retrieval:wait()
    end
    local f = d.futures[i]
    if not f:done() then f:set_result(nil) end -- one set or cancelled by hand has fallen already
    settle()
  end
  d.fields.finished:set()
end

-- dominos{expected=N}[, fn] -> futs: N futures that fall in order. With fn,
-- runs fn(futs) and closes them after (checks included), and returns fn's
-- results.
function M.dominos(opts, fn)
  if type(opts) ~= "table" then error("clock.dominos: expected {expected=N}, got " .. type(opts), 2) end
  local n = opts.expected
  if type(n) ~= "number" or n % 1 ~= 0 or n < 1 then
    error("clock.dominos: expected must be a whole number >= 1, got " .. tostring(n), 2)
  end
  if fn ~= nil and not callable(fn) then error("clock.dominos: expected a function, got " .. type(fn), 2) end
  task.need_task("clock.dominos")
  local d = { expected = n, futures = {}, retrieved = {}, retrieval = task.event(), closed = false,
    fields = { started = task.event(), finished = task.event(), expected = n }, created_at = where(2) }
  for i = 1, n do
    d.futures[i] = task.future()
    d.futures[i].domino = i
  end
  local futs = setmetatable({}, Dominos)
  state_of[futs] = d
  d.knocker = task.spawn(knock, d)
  open_dominos[futs] = true
  if fn == nil then return futs end
  local r = pack(pcall(fn, futs))
  if not r[1] then
    futs:close(true)
    error(r[2], 0)
  end
  futs:close()
  return unpack(r, 2, r.n)
end

-- futs:begin(): the dominos may start falling.
function Dominos:begin()
  local d = state_of[self]
  if d.begun_at then error("clock.dominos: begin was already called (at " .. d.begun_at .. ")", 2) end
  if d.closed then error("clock.dominos: begin after close", 2) end
  d.begun_at = where(2)
  d.fields.started:set()
end

local function missing(d, pred)
  local list = {}
  for i = 1, d.expected do
    if pred(i) then list[#list + 1] = tostring(i) end
  end
  return table.concat(list, ", ")
end

-- futs:close([quiet]): stops the knocker, sets finished, and fails when a
-- domino was never retrieved or never fell (unless quiet). Once only.
function Dominos:close(quiet)
  local d = state_of[self]
  if d.closed then return end
  d.closed = true
  open_dominos[self] = nil
  d.knocker:cancel("the dominos were closed")
  d.fields.finished:set()
  if quiet then return end
  local unretrieved = missing(d, function(i) return not d.retrieved[i] end)
  if unretrieved ~= "" then fail("not all dominos were retrieved: " .. unretrieved, 2) end
  local standing = missing(d, function(i) return not d.futures[i]:done() end)
  if standing ~= "" then fail("not all dominos fell: " .. standing, 2) end
end

-- ---------------------------------------------------------------- pending

-- The first frame of a suspended task outside the scheduler: where it waits.
local function waiting_at(co)
  if type(co) ~= "thread" then return nil end
  for level = 0, 30 do
    local info = debug.getinfo(co, level, "Sl")
    if not info then return nil end
    local src = info.short_src
    if info.what ~= "C" and not src:find("sonde/task%.lua$") and not src:find("sonde/clock%.lua$") then
      return src .. ":" .. (info.currentline or 0)
    end
  end
end

local Pending = {}
Pending.__index = Pending
Pending.__tostring = function(list)
  if #list == 0 then return "no pending timers" end
  local lines = {}
  for _, p in ipairs(list) do
    lines[#lines + 1] = string.format("%10.3fs  %-7s %-7s %s%s", p.remaining, p.clock, p.kind,
      p.task and tostring(p.task) or "(callback)", p.at and (" at " .. p.at) or "")
  end
  return table.concat(lines, "\n")
end

-- pending() -> every pending timer, soonest first: {deadline=, remaining=,
-- clock="virtual"|"real", kind="sleep"|"timeout", task=, at="file:line"}.
-- Printing the list shows one line per timer (for the REPL).
function M.pending()
  local real_now = active and (loop.real_now() - active.real_offset) or loop_now()
  local list = {}
  for _, t in ipairs(loop.timers()) do
    local w = task.waker_of(t.token)
    local owner = type(w) == "table" and w or nil
    list[#list + 1] = { deadline = t.deadline, remaining = t.deadline - (t.virtual and loop_now() or real_now),
      clock = t.virtual and "virtual" or "real", kind = t.holds and "sleep" or "timeout", task = owner,
      at = owner and waiting_at(owner.co), seq = t.seq }
  end
  table.sort(list, function(a, b)
    if a.remaining ~= b.remaining then return a.remaining < b.remaining end
    return a.seq < b.seq
  end)
  return setmetatable(list, Pending)
end

-- ------------------------------------------------------------ test resets

-- Real time back, sleeps waiting again, and every open domino closed: with
-- its checks (`checked`), the first failing one raised after the rest.
local function reset_all(checked)
  if active then active:close() end
  local first
  for futs in pairs(open_dominos) do
    local ok, err = pcall(futs.close, futs, not checked)
    if not ok and first == nil then first = err end
  end
  skip_depth = 0
  task.skip_sleeps(false, true)
  if first ~= nil then error(first, 0) end
end

-- Between tests: dominos closed without their checks (the test that left
-- them open has ended).
function M._test_reset() reset_all(false) end

-- At the end of a test: dominos it left open are closed with their checks,
-- so "not all dominos were retrieved" fails that test.
function M._test_end() reset_all(true) end

require("sonde.lib.test_hooks").add(M)

return M
