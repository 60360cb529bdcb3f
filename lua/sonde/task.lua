-- sonde.task: tasks (coroutines) on the host loop, and what they wait on.
--
-- C (sonde.c.loop) owns time and I/O and queues completions by token; this
-- module keeps the ready queue, resumes tasks and builds every blocking-looking
-- call (sleep, join, event:wait, channel:recv...) out of one primitive,
-- `suspend`, which always cleans up what the wait registered, however the
-- wait ends (woken, timed out or cancelled). A task is resumed only from the
-- ready queue, and only while it is suspended, so nothing ever resumes a dead
-- coroutine.
local table_new = require("table.new")
local loop = require("sonde.c.loop")
-- sonde's own words, not a test's output: to stderr as it was before any capture
local terminal = require("sonde.c.capture").terminal

local M = {}

local coroutine_create, coroutine_resume, coroutine_yield = coroutine.create, coroutine.resume, coroutine.yield
local coroutine_running = coroutine.running
local select, unpack, type, setmetatable, error, pcall = select, unpack, type, setmetatable, error, pcall
local timer_start, timer_stop = loop.timer_start, loop.timer_stop
local TOKEN_INTERRUPT = loop.TOKEN_INTERRUPT

-- ------------------------------------------------------------------ errors

-- Errors raised by the scheduler are tables with `kind` and `message`, so a
-- caller can tell a timeout from a cancellation without parsing strings.
local SondeError = {}
SondeError.__index = SondeError
SondeError.__tostring = function(e) return e.message end

local function new_error(kind, message, fields)
  local e = fields or {}
  e.kind, e.message = kind, message
  return setmetatable(e, SondeError)
end
M.new_error = new_error

function M.is_cancelled(e) return getmetatable(e) == SondeError and e.kind == "cancelled" end
function M.is_timeout(e) return getmetatable(e) == SondeError and e.kind == "timeout" end

local function pack(...) return { n = select("#", ...), ... } end
M.pack = pack

-- Describes any error value in one string: strings as they are, tables
-- through a protected __tostring or their `message`, other tables as the
-- REPL prints them (busted pretty-prints them too), nil as "nil".
function M.describe(e)
  if type(e) == "string" then return e end
  local mt = type(e) == "table" and getmetatable(e)
  if mt and mt.__tostring then
    local ok, s = pcall(tostring, e)
    if ok and type(s) == "string" then return s end
    return "(error object whose __tostring failed: " .. tostring(s) .. ")"
  end
  if type(e) == "table" and e.message ~= nil then return tostring(e.message) end
  if type(e) == "table" then return require("sonde.lib.pretty").render(e) end
  if e == nil then return "nil (an error was raised with no value)" end
  return tostring(e)
end
local describe = M.describe

-- ------------------------------------------------------------ ready queue

-- The ready queue holds each task with what its wait returns (kind, value),
-- in three arrays rather than fields of the task: a task's table stays small
-- (see task_of) and nothing is allocated per wake. A task started or
-- yielding has no kind: its entries stay nil (unwritten), so the arrays of
-- kinds and values grow only as long as the queue of woken tasks.
local queue, queue_kind, queue_value, head, tail = {}, {}, {}, 1, 0
local current = nil -- the task running now, nil between tasks

-- ready_count() -> how many tasks wait in the ready queue (not counting the
-- running one): sonde.clock lets woken tasks run until this is 0.
function M.ready_count() return tail - head + 1 end

local WAKE, CANCEL, RAISE = 1, 2, 3
local TIMED_OUT = {} -- value a timeout timer wakes a task with

local function enqueue(t, kind, value)
  t.state = "scheduled"
  tail = tail + 1
  queue[tail] = t
  if kind ~= nil then queue_kind[tail], queue_value[tail] = kind, value end
end

-- Makes t runnable with what its wait returns. The first wake wins (a
-- timeout firing in the same turn as the event it guarded changes nothing),
-- except that a cancellation overrides any wake: a task already scheduled
-- (or not yet started) keeps it in `cancelled_by`, which step prefers.
local function schedule(t, kind, value)
  local state = t.state
  if state == "suspended" then
    enqueue(t, kind, value)
  elseif kind == CANCEL and (state == "scheduled" or state == "new") then
    t.cancelled_by = value
  end
end

-- ------------------------------------------------------------------ tokens

-- Completions from C carry a token; wakers[token] is the function(a, b)
-- it calls (timers have tokens of their own: see timer_tasks).
local wakers, next_token = {}, 0

local function new_token(waker)
  next_token = next_token + 1
  wakers[next_token] = waker
  return next_token
end
M.new_token = new_token
function M.drop_token(token) wakers[token] = nil end

-- A timer is known by C's id for it, which its task keeps (t.timer) to
-- stop it; its completion comes with the token -2 - id (below
-- TOKEN_INTERRUPT, apart from new_token's). timer_tasks[id] is the task it
-- wakes. C reuses an id only after the poll that follows its firing, when
-- its completion has been dispatched here.
local timer_tasks = {}

-- The timer `id` of task t is over (fired, popped or stopped).
local function timer_over(id, t)
  t.timer = nil
  timer_tasks[id] = nil
end

-- timer_popped(token): sonde.clock took the timer of `token` out of the
-- loop to raise in its task instead of waking it.
function M.timer_popped(token)
  local id = -2 - token
  timer_over(id, timer_tasks[id])
end

-- persistent_token(fn) -> token whose completions all call fn (a server's
-- "requests are ready" token fires many times); drop_token ends it.
function M.persistent_token(fn)
  local token
  local function again(a, b)
    wakers[token] = again
    fn(a, b)
  end
  token = new_token(again)
  return token
end

local interrupt_handlers = {}

-- waker_of(token) -> the task a timer token wakes, or the function a
-- completion calls (sonde.clock.pending lists timers with their tasks).
function M.waker_of(token)
  if token < TOKEN_INTERRUPT then return timer_tasks[-2 - token] end
  return wakers[token]
end

local function dispatch(token, a, b)
  if token < TOKEN_INTERRUPT then -- a timer
    local id = -2 - token
    local t = timer_tasks[id]
    if t == nil then return end
    timer_over(id, t)
    return schedule(t, WAKE, TIMED_OUT)
  end
  if token == TOKEN_INTERRUPT then
    for i = #interrupt_handlers, 1, -1 do interrupt_handlers[i](a) end
    return
  end
  local w = wakers[token]
  if w == nil then return end
  wakers[token] = nil
  w(a, b)
end

M.dispatch = dispatch

-- Adds fn(count) to run when SIGINT/SIGTERM arrives; returns a remover.
function M.on_interrupt(fn)
  interrupt_handlers[#interrupt_handlers + 1] = fn
  return function()
    for i = #interrupt_handlers, 1, -1 do
      if interrupt_handlers[i] == fn then table.remove(interrupt_handlers, i) end
    end
  end
end

-- ------------------------------------------------------------------ tasks

local Task = {}
Task.__index = Task

-- "file:line" where a task's body is defined (a callable table's __call), the
-- file without its directories: what messages call the task by.
local function body_place(t)
  local fn = t.fn
  if type(fn) == "table" then fn = getmetatable(fn).__call end
  if type(fn) ~= "function" then return type(fn) end
  local info = debug.getinfo(fn, "S")
  if info.what == "C" then return "a C function" end
  local file = info.short_src:match("[^/]*$")
  if info.what == "main" then return file end
  return file .. ":" .. info.linedefined
end

Task.__tostring = function(t) return "task<" .. (t.name or body_place(t)) .. ">" end
M.Task = Task

-- ------------------------------------------------------------ interleaving

-- With --interleave, the task resumed next is drawn at random from the
-- ready ones instead of the first queued, so an order-dependent bug shows
-- up under some seed. The draw is reseeded from the seed and the name of
-- every new scope (each test has one), so a test replays alone under
-- --filter with the same seed. Park-Miller: exact in doubles.
local interleave_seed, draw_state = nil, 1

local function reseed(name)
  local h = interleave_seed % 2147483647
  for i = 1, #name do h = (h * 31 + name:byte(i)) % 2147483647 end
  draw_state = h == 0 and 1 or h
end

-- draw(n) -> 0..n-1
local function draw(n)
  draw_state = draw_state * 48271 % 2147483647
  return math.floor(draw_state / 2147483647 * n)
end

-- set_interleave(seed): resume ready tasks in a seeded random order from
-- now on; nil or false goes back to first-queued-first.
function M.set_interleave(seed)
  if seed and (type(seed) ~= "number" or seed % 1 ~= 0 or seed < 0) then
    error("task.set_interleave: expected a whole number >= 0 as the seed, got " .. tostring(seed), 2)
  end
  interleave_seed = seed or nil
  if seed then reseed("") end
end

local Scope = {}
Scope.__index = Scope

-- A scope owns the tasks spawned under it (a spec test, a script run) so
-- that they can be cancelled together and their lost errors found.
-- Its tasks are an array in start order (ntasks long) where finished ones
-- stay until it reaches compact_at entries and is compacted: as a set, each
-- task cost a hash node (24 bytes and more while it grew) and a removal.
-- Most scopes (a test's) never have a task that waits nor lose one: tasks
-- and lost start as a shared empty table, replaced at the first entry.
local EMPTY = setmetatable({}, { __newindex = function() error("internal: the shared empty set is read-only", 2) end })

function M.scope(name)
  if interleave_seed then reseed(tostring(name)) end
  return setmetatable({ name = name, tasks = EMPTY, ntasks = 0, compact_at = 64, lost = EMPTY }, Scope)
end

local root_scope = M.scope("root")

local serial = 0

-- A task's table is made with the 7 fields every task that sleeps or runs
-- to its end sets (nil ones included): LuaJIT then sizes its hash part at
-- 8 nodes once (192 bytes, where 9 to 16 keys take 384), so that setting
-- them later needs no rehash, and the 8th node is free for one more key:
-- args, or joiners (a join), waiting_on (a wait) or err (a failure). The
-- body may be a callable table: run_bodies calls it, and only a coroutine's
-- own body must be a function. args is the one argument itself
-- (spawn(fn, i): no table for it), or {n, ...} when there are more, or the
-- one is nil or a table.
-- (No function on a test's path defines a closure: LuaJIT 2.1 compiles
-- neither the closure's creation nor the closing of upvalues that then
-- precedes each of the function's returns.)
-- The nil fields are set from a variable, not written `nil`: the embedded
-- bytecode keeps only the template keys that an instruction stores into
-- (sonde.boot.bytecode), and a constant nil is stored by none.
local NONE = nil
local function task_of(scope, fn)
  serial = serial + 1
  return setmetatable({ fn = fn, state = "new", scope = scope, serial = serial, co = NONE, timer = NONE,
    results = NONE }, Task)
end

-- Several arguments are copied into a table of their size, never put in a
-- vararg constructor: the LuaJIT 2.1 of Debian 12 compiles one of several
-- values into a table of ~6 KB (it sizes the array part wrongly), which
-- made a spawn with arguments cost ~9 us in a hot loop instead of ~0.3 us
-- (sonde.server spawned one per request).
local function new_task(scope, fn, ...)
  local t, n = task_of(scope, fn), select("#", ...)
  if n == 0 then return t end
  local first = ...
  if n == 1 and first ~= nil and type(first) ~= "table" then
    t.args = first
    return t
  end
  local args = table_new(n + 1, 0) -- { n, ... }, without the constructor (see above)
  args[1] = n
  for i = 1, n do args[i + 1] = (select(i, ...)) end
  t.args = args
  return t
end

-- Drops the finished tasks from a scope's array, keeping the order of the
-- others; returns how many are left. Next time at twice as many.
local function compact(scope)
  local tasks, kept = scope.tasks, 0
  for i = 1, scope.ntasks do
    local t = tasks[i]
    tasks[i] = nil
    if t.state ~= "done" then
      kept = kept + 1
      tasks[kept] = t
    end
  end
  scope.ntasks, scope.compact_at = kept, 2 * kept + 64
  return kept
end

-- Puts a task among its scope's tasks (close_scope cancels them).
local function track(t)
  local scope = t.scope
  if scope.tasks == EMPTY then scope.tasks = {} end
  local n = scope.ntasks
  if n >= scope.compact_at then n = compact(scope) end
  scope.tasks[n + 1] = t
  scope.ntasks = n + 1
end

local function start(t)
  track(t)
  enqueue(t, nil, nil)
end

function M.current() return current end

-- current_scope() -> the scope that owns what the running task starts: its
-- own, or the one in_scope lends it.
function M.current_scope() return current and (current.lent_scope or current.scope) or root_scope end

-- misuse(message, level): raises message at the user's line that made the
-- call. `level` counts as error's does, from the function calling misuse;
-- sonde's own frames and C frames (pcall) above it are passed over, and a
-- tail call that left no user frame gives no position rather than a line
-- of sonde's.
local function misuse(message, level)
  local is_internal = require("sonde.lib.trace").is_internal
  for l = level + 1, level + 40 do
    local info = debug.getinfo(l, "S")
    if not info then break end
    if info.what ~= "C" and not is_internal(info.source) then error(message, l) end
  end
  error(message, 0)
end

-- check_callable(fn, what[, level=2]): raises at the line that called
-- `what` (level frames above it) unless fn can be a task's body.
local function check_callable(fn, what, level)
  if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
    misuse(what .. ": expected a function, got " .. type(fn), (level or 2) + 1)
  end
end
M.check_callable = check_callable

-- spawn(fn, ...) -> task: runs fn(...) as a new task in the current scope.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then check_callable(fn, "task.spawn") end
  local t = new_task(M.current_scope(), fn, ...)
  start(t)
  return t
end

-- spawn_in(scope, fn, ...): the same under an explicit scope (the runner's).
function M.spawn_in(scope, fn, ...)
  if type(fn) ~= "function" then check_callable(fn, "task.spawn_in") end
  local t = new_task(scope, fn, ...)
  start(t)
  return t
end

local step -- below

-- spawn_now(scope, fn) -> task: runs fn() as a task under `scope` at
-- once, inside the running task, until it returns or first waits (as
-- asyncio's eager tasks). The runner starts each test this way: most tests
-- never wait, and then they cost no trip through the ready queue, no timer
-- for the join and no entry among the scope's tasks (one that waits is
-- put there, for close_scope to cancel).
function M.spawn_now(scope, fn)
  local me = current
  local t = task_of(scope, fn)
  t.state = "scheduled"
  step(t)
  current = me
  if t.state ~= "done" then track(t) end
  return t
end

local function call_done_callbacks(t)
  local cbs = t.done_callbacks
  if not cbs then return end
  t.done_callbacks = nil
  for i = 1, #cbs do
    local ok, e = pcall(cbs[i], t)
    if not ok then terminal(2):write("sonde: error in a done callback: ", describe(e), "\n") end
  end
end

local function finish(t, ok, err)
  t.state = "done"
  t.co = nil
  if not ok then
    t.err = err
    t.traceback = t.traceback or "(no traceback)"
    if not M.is_cancelled(err) and not t.joiners then
      local scope = t.scope
      if scope.lost == EMPTY then scope.lost = {} end
      scope.lost[t] = true
    end
  end
  local joiners = t.joiners
  if joiners then
    t.joiners = nil
    for i = 1, #joiners do
      if joiners[i].waiting_on == t then schedule(joiners[i], WAKE) end
    end
  end
  call_done_callbacks(t)
end

-- Coroutines are reused: a task's body runs inside a small loop that, when
-- the body returns, parks the coroutine to run the next task's body, saving
-- a coroutine (~0.4 us, ~470 bytes) per task. A body that raises ends its
-- coroutine as before. At most MAX_IDLE wait parked. So one coroutine may
-- run several tasks, one after another: per-task data belongs under
-- task.current(), never under coroutine.running().
local idle, idle_count, MAX_IDLE = {}, 0, 64

local handoff -- the task a coroutine starts next, set just before resuming it

local function body_of(t) return t.fn end

-- The arguments of the task handed off, which is forgotten: a parked
-- coroutine's frames hold no task, so that a finished task (its function,
-- upvalues and results) is never kept alive by the pool.
local function take_args()
  local args = handoff.args
  handoff = nil
  if type(args) == "table" then return unpack(args, 2, args[1] + 1) end
  if args ~= nil then return args end
end

local NO_RESULTS = { n = 0 } -- shared by every task that returns nothing

local function results_of(...)
  if select("#", ...) == 0 then return NO_RESULTS end
  return pack(...)
end

-- A coroutine's body: one frame, the only one under a task's body, which
-- it calls with as few slots below as can be. A new coroutine's stack has
-- 40 slots, and a call into C needs 20 free: each slot taken here would
-- make more bodies (and sleeps: task.spawn(task.sleep, s)) grow the stack,
-- to 102 slots, 440 bytes more each.
-- The body is called through body_of(...)(...) so that its frame has no
-- name in tracebacks: a script still shows as "main chunk", a function by
-- its file and line, as when it was the coroutine's own body. It yields
-- the body's results, packed: nothing else a task's coroutine yields to the
-- scheduler carries a value (suspend and yield_now yield none). Packed
-- here rather than by the scheduler after the resume, which runs
-- interpreted, a spawn+join runs half the interpreted instructions
-- (callgrind).
local function run_bodies()
  while true do coroutine_yield(results_of(body_of(handoff)(take_args()))) end
end

-- What a resume returned: the task returned (its packed results), raised
-- (its coroutine is dead) or waits (nothing).
local function after_resume(t, co, ok, results)
  current = nil
  if ok and results ~= nil then
    t.results = results
    if idle_count < MAX_IDLE then
      idle_count = idle_count + 1
      idle[idle_count] = co
    end
    return finish(t, true)
  end
  if ok then return end -- suspended
  t.traceback = debug.traceback(co)
  finish(t, false, results)
end

-- Resumes a scheduled task with what its wait returns (kind, value), unless
-- it was cancelled meanwhile.
function step(t, kind, value)
  if t.state ~= "scheduled" then return end
  local cancelled_by = t.cancelled_by
  if cancelled_by ~= nil then
    t.cancelled_by = nil
    kind, value = CANCEL, cancelled_by
  end
  local co = t.co
  current = t
  t.state = "running"
  if co ~= nil then return after_resume(t, co, coroutine_resume(co, kind, value)) end
  if kind == CANCEL then
    current = nil
    return finish(t, false, value)
  end
  if idle_count > 0 then
    co = idle[idle_count]
    idle[idle_count] = nil
    idle_count = idle_count - 1
  else
    co = coroutine_create(run_bodies)
  end
  t.co = co
  handoff = t
  return after_resume(t, co, coroutine_resume(co))
end

-- Suspends the running task until something schedules it. The caller has
-- registered the task with whatever will wake it (t.waiting_on, t.timer);
-- both are cleaned up here whatever ends the wait. Cancellation and injected
-- errors are raised at the caller's line.
local function suspend(t)
  t.state = "suspended"
  local kind, value = coroutine_yield()
  local id = t.timer
  if id then
    timer_stop(id)
    timer_over(id, t)
  end
  local on = t.waiting_on
  if on then
    t.waiting_on = nil
    if on.forget then on:forget(t) end
  end
  if kind == CANCEL or kind == RAISE then error(value, 0) end
  return value
end

-- The running task, or an error naming the call that needed one.
local function need_task(what)
  local t = current
  if t == nil or coroutine_running() ~= t.co then
    if t == nil then
      error(what .. " must be called inside a task (sonde runs scripts, specs and REPL lines as tasks)", 3)
    end
    error(what .. " was called inside a plain coroutine; use task.spawn instead of coroutine.create", 3)
  end
  return t
end
M.need_task = need_task

-- A bare coroutine.yield() in a task's own code would suspend the task with
-- nothing to resume it, until a timeout if any. It raises at its line
-- instead, so the task unwinds (pcall, finally, after_each) and fails at
-- once. The scheduler yields through its own local; a coroutine the code
-- made itself yields as usual.
local RAW_YIELD = "coroutine.yield() outside a coroutine of your own suspends this task forever (sonde resumes a " ..
  "task only when what it waits on completes); use task.sleep(0) to let other tasks run, or wait on a " ..
  "task.event(), task.channel() or task.future()"

function coroutine.yield(...) -- luacheck: ignore 122 (replaced on purpose: see RAW_YIELD)
  local t = current
  if t ~= nil and coroutine_running() == t.co then misuse(RAW_YIELD, 2) end
  return coroutine_yield(...)
end

-- `holds` marks a sleep: a real operation of its own, which holds virtual
-- time still (sonde.clock) while it runs on the real clock; a timeout only
-- guards another wait and does not.
local function arm_timeout(t, seconds, holds, real)
  if seconds == nil then return end
  local id = timer_start(seconds, holds, real)
  t.timer, timer_tasks[id] = id, t
end

-- seconds_problem(v) -> what is wrong with v as a span of seconds, or nil.
local function seconds_problem(v)
  if type(v) ~= "number" then return "got " .. type(v) end
  if v ~= v then return "got nan" end
  if v < 0 then return "got " .. v end
end

-- check_timeout(timeout): each public call that takes a timeout checks it
-- first, so that a wrong one is reported at the line that called it.
local function check_timeout(timeout)
  local problem = timeout ~= nil and seconds_problem(timeout)
  if problem then misuse("timeout must be a number of seconds >= 0, " .. problem, 3) end
end
M.check_timeout = check_timeout

-- Waits on `obj` (which wakes t through schedule and may define forget(t))
-- for at most `timeout` seconds; returns the wake value or TIMED_OUT.
local function wait_on(t, obj, timeout, real)
  t.waiting_on = obj
  arm_timeout(t, timeout, nil, real)
  return suspend(t)
end

local function timeout_error(what, seconds)
  return new_error("timeout", string.format("timeout: %s did not finish within %gs", what, seconds))
end

-- wait(obj, timeout, what): suspends until obj schedules the task; raises a
-- timeout error naming `what`. For modules that build their own waits.
function M.wait(obj, timeout, what)
  check_timeout(timeout)
  local t = need_task(what or "wait")
  if wait_on(t, obj, timeout) == TIMED_OUT then error(timeout_error(what or "wait", timeout), 2) end
end

-- wake(t, value): makes a task that waits through M.wait runnable.
function M.wake(t, value) schedule(t, WAKE, value) end

-- Gives every other ready task a turn before this one continues.
local function yield_now(t)
  enqueue(t, nil, nil)
  local kind, value = coroutine_yield()
  if kind == CANCEL or kind == RAISE then error(value, 0) end
end

-- While sonde.clock.assert_sleeps_for runs, sleeps do not wait: each adds
-- its seconds to `skipped`, which now() and time() include, and yields.
local skipping, skipped = false, 0

-- sleep(seconds). Its checks are inline, and it arms the timer itself:
-- called as a task's body, it then calls into C low enough on the
-- coroutine's stack that it needs no growing (see run_bodies). Called from
-- a function that is the body, it needs none either while interpreted; a
-- compiled trace through that function and sleep reserves more, and grows
-- the stack to 102 slots. Keeping sleep interpreted (jit.off) avoided that
-- but cost a loop of sleeps 14% more instructions (bench/clock.lua).
function M.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    misuse("task.sleep: expected a number of seconds >= 0, " .. seconds_problem(seconds), 2)
  end
  local t = current
  if t == nil or coroutine_running() ~= t.co then need_task("task.sleep") end
  if skipping then
    if seconds > 0 then skipped = skipped + seconds end
    return yield_now(t)
  end
  if seconds == 0 then return yield_now(t) end
  local id = timer_start(seconds, true)
  t.timer, timer_tasks[id] = id, t
  suspend(t)
end

-- skip_sleeps(on[, reset]) -> seconds skipped so far: turns skipping on or
-- off; reset also drops the skipped seconds from now() and time().
function M.skip_sleeps(on, reset)
  skipping = on and true or false
  if reset then skipped = 0 end
  return skipped
end

local loop_now, loop_time = loop.now, loop.time
function M.now() return loop_now() + skipped end
function M.time() return loop_time() + skipped end

-- -------------------------------------------------------------- task API

function Task:done() return self.state == "done" end
function Task:cancelled() return self.state == "done" and M.is_cancelled(self.err) end

-- Marks the task's error as seen, so it is not reported as lost.
function Task:observe()
  local lost = self.scope.lost
  if lost[self] then lost[self] = nil end
end

function Task:add_done_callback(cb)
  if self.state == "done" then
    cb(self)
  else
    self.done_callbacks = self.done_callbacks or {}
    self.done_callbacks[#self.done_callbacks + 1] = cb
  end
end

-- Re-raises a finished task's error, keeping where it came from.
local function reraise(t, level)
  t:observe()
  local e = t.err
  if type(e) == "table" then
    if rawget(e, "traceback") == nil and getmetatable(e) ~= SondeError then
      pcall(rawset, e, "traceback", t.traceback)
    end
    error(e, level)
  end
  error(new_error("task", describe(e), { traceback = t.traceback, cause = e }), level)
end

-- A joiner whose wait ended otherwise (timeout, cancel) stops being one, so
-- the task's later error is reported as lost if nobody joins it again.
function Task:forget(waiter)
  local joiners = self.joiners
  if not joiners then return end
  for i = #joiners, 1, -1 do
    if joiners[i] == waiter then table.remove(joiners, i) end
  end
  if #joiners == 0 then self.joiners = nil end
end

-- join([timeout[, real]]): with `real`, the timeout runs on real time even
-- under a virtual clock (the runner's per-test timeout).
function Task:join(timeout, real)
  check_timeout(timeout)
  local t = need_task("join")
  if t == self then misuse("join: " .. tostring(self) .. " cannot join itself (it would wait for its own end)", 2) end
  if self.state ~= "done" then
    self.joiners = self.joiners or {}
    self.joiners[#self.joiners + 1] = t
    if wait_on(t, self, timeout, real) == TIMED_OUT and self.state ~= "done" then
      error(timeout_error("join of " .. tostring(self), timeout), 2)
    end
  end
  if self.err ~= nil or (self.results == nil) then reraise(self, 2) end
  self:observe()
  return unpack(self.results, 1, self.results.n)
end

-- cancel([reason]): raises a cancellation inside the task at its current
-- wait (its cleanup runs) or stops it before it starts. Returns true when
-- the task was still running.
function Task:cancel(reason)
  if self.state == "done" then return false end
  local e = new_error("cancelled", "cancelled" .. (reason and (": " .. reason) or ""))
  if self == current then error(e, 2) end
  local was_new = self.state == "new"
  schedule(self, CANCEL, e)
  if was_new then start(self) end
  return true
end

-- raise_in(t, err): makes t's current wait raise err (used for deadlocks).
function M.raise_in(t, err)
  if t.state == "suspended" then schedule(t, RAISE, err) end
end

-- ---------------------------------------------------------------- running

local poll_buf = {}

-- sonde.clock sets this while a mocked clock is open. The turn calls it when
-- no task is ready, before waiting for real events; it fires a due virtual
-- timer (or jumps virtual time to one) and returns true when it did.
local idle_hook = nil
function M.set_idle_hook(fn) idle_hook = fn end

-- poll_now() -> n: dispatches the completions that are there, without
-- waiting (for the idle hook: real events go before virtual time moves).
function M.poll_now()
  local n = loop.poll(poll_buf, false)
  for i = 1, 3 * n, 3 do dispatch(poll_buf[i], poll_buf[i + 1], poll_buf[i + 2]) end
  return n
end

-- A drained queue that grew past this many entries is replaced by empty
-- arrays, so that a burst (100k tasks spawned at once) does not keep 3 MiB
-- of them for the rest of the run. At 16k, an array is 128 KiB: one that
-- big is mapped apart, and given back when freed.
local BIG_QUEUE = 16384

-- Resumes ready tasks until none is left. The queue is compacted once
-- drained so that its indices never grow without bound.
local function run_ready()
  while head <= tail do
    if interleave_seed and tail > head then
      local j = head + draw(tail - head + 1)
      queue[head], queue[j] = queue[j], queue[head]
      queue_kind[head], queue_kind[j] = queue_kind[j], queue_kind[head]
      queue_value[head], queue_value[j] = queue_value[j], queue_value[head]
    end
    local t, kind, value = queue[head], queue_kind[head], nil
    queue[head] = nil
    if kind ~= nil then
      value = queue_value[head]
      queue_kind[head], queue_value[head] = nil, nil
    end
    head = head + 1
    step(t, kind, value)
  end
  if tail > BIG_QUEUE then queue, queue_kind, queue_value = {}, {}, {} end
  head, tail = 1, 0
end

-- One turn of the loop: runs ready tasks, then (unless `until_done` has
-- finished meanwhile) waits for and dispatches the next completions.
-- Returns false when nothing could ever happen again.
local function turn(may_block, until_done)
  run_ready()
  if until_done and until_done.state == "done" then return true end
  if idle_hook and head > tail and idle_hook(may_block) then return true end
  local n = loop.poll(poll_buf, may_block and head > tail)
  if n < 0 then return false end
  for i = 1, 3 * n, 3 do dispatch(poll_buf[i], poll_buf[i + 1], poll_buf[i + 2]) end
  return true
end
M.turn = turn

-- Runs until `t` is done. When every task waits and nothing can wake any of
-- them, t is woken with a deadlock error instead of hanging forever.
function M.run_until_done(t)
  while t.state ~= "done" do
    if not turn(true, t) and head > tail then
      if t.state == "suspended" then
        M.raise_in(t, new_error("deadlock", "deadlock: every task is waiting and nothing can wake them"))
      elseif t.state ~= "scheduled" then
        break
      end
    end
  end
  run_ready()
end

-- run(fn, ...) -> task, lost: runs fn as the root task of a fresh scope;
-- returns it (done) after cancelling what it left running, and the tasks
-- whose errors nobody joined.
function M.run(fn, ...)
  if current then error("task.run cannot be nested inside a task; use task.spawn", 2) end
  local scope = M.scope("run")
  local t = M.spawn_in(scope, fn, ...)
  local remove = M.on_interrupt(function()
    if t.co then t.interrupted_at = debug.traceback(t.co) end
    t:cancel("interrupted")
  end)
  M.run_until_done(t)
  remove()
  t:observe() -- the caller reports the root's own error
  return t, M.close_scope(scope)
end

-- in_scope(scope, fn, ...) -> fn's results: runs fn in the running task,
-- with what it starts (tasks, servers, processes) owned by `scope` rather
-- than by the task's own: a fixture.session outlives the test that asked
-- for it first.
function M.in_scope(scope, fn, ...)
  local t = need_task("task.in_scope")
  local lent = t.lent_scope
  t.lent_scope = scope
  local r = pack(pcall(fn, ...))
  t.lent_scope = lent
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

local function by_serial(a, b) return a.serial < b.serial end

-- close_scope(scope) -> lost: cancels every task still running under it,
-- lets them unwind, and returns the tasks whose errors nobody joined.
function M.close_scope(scope, why)
  -- most scopes (a test's, a hook's) end empty: nothing to cancel or report
  if compact(scope) == 0 and next(scope.lost) == nil then return EMPTY end
  for _ = 1, 100 do
    local any = false
    local tasks = scope.tasks
    for i = 1, scope.ntasks do
      local t = tasks[i]
      if t ~= current and t.state ~= "done" then
        any = true
        t:cancel(why or "its scope ended")
      end
    end
    if not any then break end
    -- let the cancelled tasks unwind: from inside a task by yielding to
    -- them, from outside by running them
    if current then yield_now(current) else turn(false) end
  end
  local lost = {}
  for t in pairs(scope.lost) do lost[#lost + 1] = t end
  table.sort(lost, by_serial)
  scope.lost = EMPTY
  return lost
end

-- --------------------------------------------------------------- combinators

-- gather(fn1, fn2, ...) -> r1, r2, ...: runs the functions concurrently and
-- returns each one's first result; the first error cancels the rest.
function M.gather(...)
  local fns, n = { ... }, select("#", ...)
  need_task("task.gather")
  if n == 0 then return end
  for i = 1, n do check_callable(fns[i], "task.gather: argument " .. i) end
  local tasks, remaining, failed = {}, n, nil
  local all_done = M.event()
  for i = 1, n do
    tasks[i] = M.spawn(fns[i])
    tasks[i]:add_done_callback(function(t)
      remaining = remaining - 1
      if t.err ~= nil and not failed then failed = t end
      t:observe() -- gather raises the first error; later ones are its echo
      if remaining == 0 or failed then all_done:set() end
    end)
  end
  local ok, e = pcall(all_done.wait, all_done)
  if not ok or failed then
    for i = 1, n do tasks[i]:cancel("a sibling in gather failed") end
    if not ok then error(e, 0) end
    reraise(failed, 2)
  end
  local results = {}
  for i = 1, n do results[i] = tasks[i].results[1] end
  return unpack(results, 1, n)
end

-- timeout(seconds, fn, ...) -> fn's results, or raises a timeout error after
-- cancelling fn's task.
function M.timeout(seconds, fn, ...)
  local problem = seconds_problem(seconds)
  if problem then misuse("task.timeout: expected a number of seconds >= 0, " .. problem, 2) end
  check_callable(fn, "task.timeout")
  local me = need_task("task.timeout")
  local inner = M.spawn(fn, ...)
  if inner.state ~= "done" then
    inner.joiners = { me }
    local ok, woke = pcall(wait_on, me, inner, seconds)
    if not ok then
      inner:cancel("the task waiting for it was cancelled")
      error(woke, 0)
    end
    if woke == TIMED_OUT and inner.state ~= "done" then
      inner:cancel("timeout")
      inner:observe()
      error(new_error("timeout", string.format("timeout: did not finish within %gs", seconds)), 2)
    end
  end
  if inner.err ~= nil or inner.results == nil then reraise(inner, 2) end
  return unpack(inner.results, 1, inner.results.n)
end

-- ------------------------------------------------------------------ events

local Event = {}
Event.__index = Event

function M.event() return setmetatable({ flag = false, waiters = {}, live = 0 }, Event) end

function Event:is_set() return self.flag end

function Event:set()
  if self.flag then return end
  self.flag = true
  local waiters = self.waiters
  self.waiters, self.live = {}, 0
  for i = 1, #waiters do
    if waiters[i].waiting_on == self then schedule(waiters[i], WAKE, true) end
  end
end

function Event:clear() self.flag = false end

function Event:forget()
  if self.live > 0 then self.live = self.live - 1 end
  if #self.waiters > 2 * self.live + 16 then -- drop stale entries now and then
    local kept = {}
    for _, w in ipairs(self.waiters) do
      if w.waiting_on == self then kept[#kept + 1] = w end
    end
    self.waiters = kept
  end
end

-- wait([timeout[, real]]) -> true, or raises a timeout error. With `real`
-- the timeout runs on real time even under a virtual clock.
function Event:wait(timeout, real)
  check_timeout(timeout)
  if self.flag then return true end
  local t = need_task("event:wait")
  self.waiters[#self.waiters + 1] = t
  self.live = self.live + 1
  if wait_on(t, self, timeout, real) == TIMED_OUT then error(timeout_error("event:wait", timeout), 2) end
  return true
end

-- ----------------------------------------------------------------- futures

local Future = {}
Future.__index = Future
M.Future = Future

function M.future() return setmetatable({ state = "pending", event = M.event() }, Future) end

local function settle(f, state, value)
  if f.state ~= "pending" then error("future is already done (" .. f.state .. ")", 3) end
  f.state = state
  if state == "result" then f.value = value else f.err = value end
  f.event:set()
  local cbs = f.callbacks
  f.callbacks = nil
  for i = 1, cbs and #cbs or 0 do
    M.spawn(cbs[i], f) -- as asyncio's call_soon: after the current step
  end
end

function Future:set_result(v) settle(self, "result", v) end
function Future:set_exception(e)
  if e == nil then error("set_exception needs an error value", 2) end
  settle(self, "exception", e)
end
function Future:cancel(reason)
  if self.state ~= "pending" then return false end
  settle(self, "cancelled", new_error("cancelled", "cancelled" .. (reason and (": " .. reason) or "")))
  return true
end
function Future:done() return self.state ~= "pending" end
function Future:cancelled() return self.state == "cancelled" end

function Future:result()
  if self.state == "pending" then error("future is not done yet", 2) end
  if self.state ~= "result" then error(self.err, 2) end
  return self.value
end

function Future:exception()
  if self.state == "pending" then error("future is not done yet", 2) end
  if self.state == "cancelled" then error(self.err, 2) end
  return self.err
end

function Future:add_done_callback(cb)
  if self.state ~= "pending" then
    M.spawn(cb, self)
  else
    self.callbacks = self.callbacks or {}
    self.callbacks[#self.callbacks + 1] = cb
  end
end

-- wait([timeout]) -> the result, or raises its exception / a timeout.
function Future:wait(timeout)
  check_timeout(timeout)
  if self.state == "pending" then
    local ok, e = pcall(self.event.wait, self.event, timeout)
    if not ok then
      if M.is_timeout(e) then e = timeout_error("future:wait", timeout) end
      error(e, 2)
    end
  end
  return self:result()
end

-- ---------------------------------------------------------------- channels

local Channel = {}
Channel.__index = Channel

-- channel([capacity]): a FIFO between tasks; unbounded unless capacity is
-- given, in which case send waits while capacity items are buffered.
function M.channel(capacity)
  if capacity ~= nil and (type(capacity) ~= "number" or capacity < 1 or capacity % 1 ~= 0) then
    error("task.channel: capacity must be a whole number >= 1", 2)
  end
  return setmetatable({ capacity = capacity, items = {}, first = 1, last = 0, readers = M.event(),
    writers = M.event(), closed = false }, Channel)
end

function Channel:size() return self.last - self.first + 1 end

function Channel:send(v, timeout)
  check_timeout(timeout)
  if v == nil then error("channel:send: nil cannot be sent (recv returns nil when closed)", 2) end
  while true do
    if self.closed then error("channel:send: the channel is closed", 2) end
    if not self.capacity or self:size() < self.capacity then break end
    self.writers:clear()
    self.writers:wait(timeout)
  end
  self.last = self.last + 1
  self.items[self.last] = v
  self.readers:set()
end

-- recv([timeout]) -> value, or nil once the channel is closed and empty.
function Channel:recv(timeout)
  check_timeout(timeout)
  while self:size() == 0 do
    if self.closed then return nil end
    self.readers:clear()
    self.readers:wait(timeout)
  end
  local v = self.items[self.first]
  self.items[self.first] = nil
  self.first = self.first + 1
  if self:size() == 0 then self.first, self.last = 1, 0 end
  self.writers:set()
  return v
end

function Channel:close()
  self.closed = true
  self.readers:set()
  self.writers:set()
end

-- iter(): for v in ch:iter() do ... end, until the channel is closed.
function Channel:iter()
  return function() return self:recv() end
end

return M
