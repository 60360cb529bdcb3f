-- sonde.runner: `sonde test`, a busted-compatible spec runner where every
-- `it` is a task.
--
-- The DSL only registers blocks (sonde.runner.dsl); this module selects and
-- executes them and emits events that reporters (sonde.runner.reporters.*)
-- subscribe to: suite_start, file_start, test_start, test_end, file_end,
-- load_error, list, progress, suite_end. With --jobs the same events come
-- from worker processes (sonde.runner.jobs) and are merged in file order.
local task = require("sonde.task")
local trace = require("sonde.lib.trace")
local loop = require("sonde.c.loop")
local watchdog = require("sonde.c.watchdog")
local dsl = require("sonde.runner.dsl")
local options = require("sonde.runner.options")
local busted_config = require("sonde.runner.busted")
local shard = require("sonde.runner.shard")
local util = require("sonde.lib.report_util")
local output = require("sonde.runner.capture")
local journal = require("sonde.runner.journal")
local redact = require("sonde.lib.redact")
local coverage = require("sonde.runner.coverage")

local M = {}

local real_now = loop.real_now

-- ----------------------------------------------------------- per-test resets

-- Modules with per-test state (sonde.lib.test_hooks): _test_reset() runs
-- before each test, _test_end(result, scope) after it (sonde.http counts
-- the test's requests there, sonde.server closes the servers the test
-- started, sonde.process stops its processes, sonde.clock closes a clock
-- and checks dominos left open), _block_end(block) once a block's teardown
-- has run (sonde.process stops what the block's hooks started).
local hooked = require("sonde.lib.test_hooks").modules

-- (On a test's path, a loop that may not run at all sits behind an `if`:
-- LuaJIT abandons a trace that starts at a loop and leaves it at once.)
local function module_hooks(name, result, scope)
  if hooked[1] == nil then return nil end
  local failed
  for i = 1, #hooked do
    local hook = hooked[i][name]
    if hook then
      local ok, err = pcall(hook, result, scope)
      if not ok and failed == nil then failed = err end
    end
  end
  return failed
end

-- ---------------------------------------------------------------- discovery

local function discover_dir(dir, out, matches, recursive)
  local entries, err = loop.scandir(dir)
  if not entries then return nil, dir .. ": " .. err end
  table.sort(entries, function(a, b) return a.name < b.name end)
  for _, e in ipairs(entries) do
    local path = dir .. "/" .. e.name
    if e.name:sub(1, 1) ~= "." then
      if e.dir then
        if recursive then
          local ok, derr = discover_dir(path, out, matches, recursive)
          if not ok then return nil, derr end
        end
      elseif matches(e.name) then
        out[#out + 1] = path
      end
    end
  end
  return out
end

-- discover(paths[, select]) -> files | nil, "path: why". In directories,
-- as busted finds them: .lua files whose name matches any of
-- select.pattern (default "_spec") and none of select.exclude_pattern, in
-- subdirectories too unless select.recursive is false. Files named on the
-- command line are taken as they are.
local function discover(paths, select)
  select = select or {}
  local patterns = select.pattern and #select.pattern > 0 and select.pattern or { "_spec" }
  local excludes = select.exclude_pattern or {}
  local function matches(name)
    if not name:find("%.lua$") then return false end
    for _, pat in ipairs(excludes) do
      if pat ~= "" and name:find(pat) then return false end
    end
    return options.any_matches(name, patterns)
  end
  local files = {}
  for _, path in ipairs(paths) do
    local kind = loop.stat(path)
    if kind == nil then return nil, path .. ": no such file or directory" end
    if kind == "dir" then
      local ok, err = discover_dir((path:gsub("/+$", "")), files, matches, select.recursive ~= false)
      if not ok then return nil, err end
    else
      files[#files + 1] = path
    end
  end
  return files
end

-- ---------------------------------------------------------------- selection

-- By name and tags, as busted: any --filter, no --filter-out, any --tags,
-- no --exclude-tags.
local function wanted(test, opts)
  local name = test.full_name
  if #opts.filter > 0 and not options.any_matches(name, opts.filter) then return false end
  if options.any_matches(name, opts.filter_out) then return false end
  if #opts.tags > 0 then
    local any = false
    for _, tag in ipairs(opts.tags) do any = any or test.tags[tag] end
    if not any then return false end
  end
  for _, tag in ipairs(opts.exclude_tags) do
    if test.tags[tag] then return false end
  end
  return true
end

local close_scope = task.close_scope
local note_first

-- What a step of the run does (see "steps" below): it runs; the walk after
-- a death passes it; or it is the one an earlier image of sonde died in.
local RUN, WALK, DIED = 1, 2, 3

-- ------------------------------------------------------------------ watchdog

-- The scope whose code the watchdog may stop, and what it is, while a test
-- or hook runs under a timeout.
local watched

-- Called from the count hook the watchdog installs once a deadline has
-- passed: raises the timeout in the code that keeps the test from yielding,
-- never inside the scheduler or another task.
watchdog.set_handler(function()
  local w = watched
  if not w then return watchdog.unhook() end
  local t = task.current()
  if t == nil or t.scope ~= w.scope or coroutine.running() == nil then return end
  local info = debug.getinfo(2, "S")
  if info and trace.is_internal(info.source) then return end
  watchdog.unhook()
  error(task.new_error("timeout", string.format(
    "timeout: %s did not finish within %gs (it never yielded; the watchdog stopped it here)", w.what, w.timeout)), 2)
end)

-- ---------------------------------------------------------------- execution

local Run = {}
Run.__index = Run
M.Run = Run

local EVENTS = { "suite_start", "file_start", "plan", "test_start", "test_end", "file_end", "load_error", "list",
  "progress", "suite_end" }

-- Run.new(opts, reporters) -> run: counts, results and event fan-out.
-- The watchdog's first fire comes a little after the timeout, then it
-- refires until the code yields to the hook.
local function watchdog_times(timeout)
  return { first_fire = timeout + math.min(0.5, 0.05 + timeout * 0.1), refire = math.max(0.2, math.min(timeout, 2)) }
end

function Run.new(opts, reporters)
  local run = setmetatable({ opts = opts, reporters = reporters, handlers = {}, load_errors = 0, total = 0,
    counts = { pass = 0, fail = 0, error = 0, pending = 0, skip = 0, flaky = 0 },
    capture = not opts.no_capture and not opts.list and output.ready(),
    started_at = real_now(), iteration = 1, watch = watchdog_times(opts.timeout), listed = 0, steps = 0, epoch = 0,
    in_shard = opts.shard and shard.selector(opts.shard, opts.durations), detail = opts.detail }, Run)
  require("sonde.lib.test_hooks").detail = opts.detail
  for _, event in ipairs(EVENTS) do
    local list = {}
    for _, r in ipairs(reporters) do
      if r[event] then list[#list + 1] = r end
    end
    run.handlers[event] = list
  end
  return run
end

-- Two listeners (a reporter and a serial run's journal, or two reporters)
-- are called without a loop: a loop here, run for every test, leaves the
-- JIT's trace of the test's path and costs a 5000-test run 3-5 ms.
function Run:emit(event, data)
  local list = self.handlers[event]
  local first = list[1]
  if first == nil then return end
  first[event](first, data)
  local second = list[2]
  if second == nil then return end
  second[event](second, data)
  if list[3] == nil then return end
  for i = 3, #list do list[i][event](list[i], data) end
end

-- Where sonde's own words go while tests' output is captured.
local terminal = require("sonde.c.capture").terminal

-- end_suite(summary): the last event, where most reporters write. One that
-- raises is one line naming it and an exit code of 2; the others still
-- write. With --coverage, the LCOV file is written first and the summary
-- carries its figures (the HTML report has a tab of them).
function Run:end_suite(summary)
  if coverage.active() then
    local report = coverage.report()
    summary.coverage = report
    local ok, err = coverage.write(report)
    if not ok then
      summary.report_errors = (summary.report_errors or 0) + 1
      terminal(2):write("sonde test: ", err, "\n")
    end
  end
  for _, r in ipairs(self.handlers.suite_end) do
    local ok, err = xpcall(r.suite_end, debug.traceback, r, summary)
    if not ok then
      summary.report_errors, r.failed = (summary.report_errors or 0) + 1, true
      terminal(2):write("sonde test: the ", r.name or "?", " reporter failed, its report is incomplete: ",
        tostring(err):match("^[^\n]*"), "\n")
    end
  end
end

-- Calls fn under a handler that keeps the traceback of the raising frame.
local raised_tb
local function keep_traceback(e)
  raised_tb = debug.traceback("", 2)
  return e
end

local function protected(fn, ...)
  local ok, err = xpcall(fn, keep_traceback, ...)
  if ok then return true end
  local tb = raised_tb
  raised_tb = nil
  return false, err, tb
end

local function status_of(err)
  if dsl.is_pending(err) then return "pending" end
  if dsl.is_failure(err) then return "fail" end
  return "error"
end

-- A failed comparison shows its diff lines instead of luassert's two
-- dumped tables.
local function message_of(err, prefix)
  local msg = task.describe(err)
  local lines = type(err) == "table" and rawget(err, "diff")
  if lines then msg = (msg:match("^(.-)\nPassed in:\n") or msg) .. "\n" .. table.concat(lines, "\n") end
  return prefix .. msg
end

-- Records the first problem of a test; later ones (a finally failing after
-- the body failed) do not hide it.
local function record(result, err, tb, phase)
  if result.status ~= "pass" then return end
  result.status = status_of(err)
  if result.status == "pending" then
    result.message = tostring(err.message)
    return
  end
  if phase ~= "it" and result.status == "fail" then result.status = "error" end
  result.message = message_of(err, phase ~= "it" and (phase .. ": ") or "")
  result.traceback = trace.trim(type(err) == "table" and rawget(err, "traceback") or tb)
  if task.is_timeout(err) then result.timeout = true end
end

-- The name a result carries: with --repeat, its round too.
function Run:result_name(name)
  if self.opts.repeat_count == 1 then return name end
  return string.format("%s [%d/%d]", name, self.iteration, self.opts.repeat_count)
end

-- A result that starts as a pass; tags are the test's (none for an error
-- of a hook or of loading).
local function new_result(name, file, line, tags, run)
  local r = { name = run:result_name(name), file = file, line = line or 0, tags = tags or {},
    status = "pass", duration = 0, requests = 0 }
  if run.opts.repeat_count > 1 then r.iteration = run.iteration end
  return r
end

-- A node's name in messages: a file has none of its own.
local function block_name(block)
  return block.full_name ~= "" and block.full_name or block.file
end

-- Runs fn() as a task of `scope` under the per-test timeout: the loop's
-- timer stops a task that waits, the watchdog one that never yields.
-- Returns nil, or the timeout error and where the task was.
function Run:run_with_timeout(scope, what, node, fn)
  local timeout = self.opts.timeout
  local w = self.watch
  w.scope, w.what, w.timeout = scope, what, timeout
  watched = w
  watchdog.arm(w.first_fire, w.refire, 3, what, block_name(node), node.file, node.line or 0, timeout)
  local started = real_now()
  local t = task.spawn_now(scope, fn)
  local ok, err = true, nil
  if t.state ~= "done" or t.err ~= nil then -- it waits, or its task failed: join it
    self.running = t
    ok, err = pcall(t.join, t, math.max(0, timeout - (real_now() - started)), true)
    self.running = nil
  end
  watchdog.disarm()
  watched = nil
  if ok then return nil end
  if task.is_timeout(err) and not t:done() then
    local where = t.co and debug.traceback(t.co) or ""
    t:cancel("timed out")
    pcall(t.join, t, 1, true)
    return task.new_error("timeout", string.format("timeout: %s did not finish within %gs", what, timeout)), where
  end
  return err, t.traceback
end

-- Every result is redacted before any reporter, the journal or a --jobs
-- parent sees it (a passing test's only when it printed something).
function Run:finish_result(result)
  local s = result.status
  if s ~= "pass" or result.output ~= nil then redact.result(result) end
  self.counts[s] = (self.counts[s] or 0) + 1
  self.total = self.total + 1
  self:emit("test_end", result)
  if self.opts.fail_fast and util.is_failed(s, self.opts) then self.stopping = true end
end

-- replay_event(ev): an event another process reported (a --jobs worker, a
-- runner that died), as if this run had: counted, and passed on to its
-- reporters. A plan, and a worker's unit_done out of place, are words to
-- the --jobs parent, not to the reporters.
local PASSED_ON = { file_start = true, test_start = true, file_end = true }

function Run:replay_event(ev)
  if ev.e == "test_end" then
    self:finish_result(ev.d)
  elseif ev.e == "load_error" then
    self:record_load_error(ev.d)
  elseif ev.e == "coverage" then -- a --jobs worker's counts of one file
    coverage.merge(ev.d)
  elseif PASSED_ON[ev.e] then
    self:emit(ev.e, ev.d)
  end
end

function Run:record_load_error(result)
  self.load_errors = self.load_errors + 1
  self.counts.error = self.counts.error + 1
  self.total = self.total + 1
  redact.result(result)
  self:emit("load_error", result)
  if self.opts.fail_fast then self.stopping = true end
end

-- owns(file, name): whether this shard reports something that every shard
-- meets (a file that does not load, a failing strict hook), so that the
-- shards' reports add up to the whole suite's.
function Run:owns(file, name)
  return self.in_shard == nil or self.in_shard(file, name)
end

-- An error of its own for a hook that failed outside a test's result
-- (setup, teardown, an after_each after its test was counted). `owner`
-- {file, name} says which shard reports it.
function Run:hook_error(name, hook, err, tb, phase, captured, owner)
  if owner and not self:owns(owner.file, owner.name) then return end
  local result = new_result(name, hook.file, hook.line, nil, self)
  record(result, err, tb, phase)
  result.output = captured
  self:finish_result(result)
end

-- run_hooks(block, list, phase) -> ok: each hook as a task under the
-- timeout; a failing one is one error, and (as busted) the others still run.
-- Each hook is a step of its own (see "steps" below): one that the walk
-- after a death passes failed if it failed in the run walked.
function Run:run_hooks(block, list, phase)
  local ok_all = true
  for _, hook in ipairs(list) do
    local how, n = self:step(phase == "setup" and block.parent or block)
    local err, tb, printed
    if how == RUN then
      err, tb, printed = self:run_hook(block, hook, phase)
    elseif how == DIED then
      err, printed = self:died("the process running this hook"), self.walk.output
    end
    if err ~= nil then
      ok_all = false
      local name = block_name(block) .. " (" .. phase .. ")"
      local owner = { file = block.file, name = name }
      if phase == "lazy_setup" or phase == "lazy_teardown" then -- the shard of the test that needed it
        owner = block.first and { file = block.first.file, name = block.first.full_name } or owner
      end
      if not self.walking then self:hook_error(name, hook, err, tb, phase, printed, owner) end
    end
    if self:step_done(n) then ok_all = false end
  end
  dsl.set_context(nil)
  return ok_all
end

-- run_hook(block, hook, phase) -> nil | err, traceback, and what it printed.
function Run:run_hook(block, hook, phase)
  dsl.set_context(block)
  local holder = {}
  local scope = task.scope(phase)
  scope.block = block -- what it starts may live until the block ends
  local err, tb = self:run_with_timeout(scope, phase, block, function()
    local ok, e, t = protected(hook.fn)
    if not ok then holder.err, holder.tb = e, t end
  end)
  for _, lost in ipairs(close_scope(scope, phase .. " ended")) do
    if err == nil then err, tb = lost.err, lost.traceback end
  end
  local printed = self.capture and output.take() or nil
  if err == nil and holder.err ~= nil then err, tb = holder.err, holder.tb end
  return err, tb, printed
end

-- Blocks from the file down to the test's parent, computed once per block.
local function chain_of(block)
  if not block.chain then
    local chain, b = {}, block
    while b do
      table.insert(chain, 1, b)
      b = b.parent
    end
    block.chain = chain
  end
  return block.chain
end

-- before_each of one block: all run, as in busted; the first failure is the
-- test's, the others are errors of their own.
local function run_before_each(run, block, result)
  dsl.set_context(block)
  for _, hook in ipairs(block.before_each) do
    local ok, err, tb = protected(hook.fn)
    if not ok then
      if result.status == "pass" then
        record(result, err, tb, "before_each")
      else
        run:extra_error(hook, err, tb, "before_each")
      end
    end
  end
  return result.status == "pass"
end

-- A hook error that is not the test's own (kept until the test is counted).
function Run:extra_error(hook, err, tb, phase)
  self.extras = self.extras or {}
  self.extras[#self.extras + 1] = { hook = hook, err = err, tb = tb, phase = phase }
end

-- Whether any block from the file down to `block` has before_each or
-- after_each hooks (computed once: hooks are only added while loading).
local function has_each_hooks(block)
  if block.each_hooks == nil then
    local any = false
    for _, b in ipairs(chain_of(block)) do any = any or #b.before_each > 0 or #b.after_each > 0 end
    block.each_hooks = any
  end
  return block.each_hooks
end

-- The test itself and its finally callbacks.
local function run_test_fn(test, result)
  dsl.set_context(test)
  dsl.enter_test(result)
  local ok, err, tb = protected(test.fn)
  if not ok then record(result, err, tb, "it") end
  local finally = dsl.leave_test()
  if finally[1] == nil then return end
  for _, fn in ipairs(finally) do
    local fok, ferr, ftb = protected(fn)
    if not fok then record(result, ferr, ftb, "finally") end
  end
end

-- The body of a test task: before_each hooks outer to inner, the test, its
-- finally callbacks, then after_each inner to outer for every block whose
-- before_each ran. An after_each failing is an error of its own (busted and
-- pytest count it apart from the test).
local function test_body(run)
  local test, result = run.test, run.result
  if not has_each_hooks(test.parent) then
    run_test_fn(test, result)
    return dsl.set_context(nil)
  end
  local chain, entered = chain_of(test.parent), 0
  for i = 1, #chain do
    entered = i
    if not run_before_each(run, chain[i], result) then break end
  end
  if result.status == "pass" then run_test_fn(test, result) end
  for i = entered, 1, -1 do
    dsl.set_context(chain[i])
    for _, hook in ipairs(chain[i].after_each) do
      local ok, err, tb = protected(hook.fn)
      if not ok then run:extra_error(hook, err, tb, "after_each") end
    end
  end
  dsl.set_context(nil)
end

-- A retry starts from a clean result. A fresh one is left alone: in LuaJIT,
-- assigning nil to a key a table lacks inserts it, and a full table then
-- rehashes (four such nils cost a 5000-test run 1-2 ms).
local function reset_attempt(result)
  result.status = "pass"
  if result.message ~= nil then result.message = nil end
  if result.traceback ~= nil then result.traceback = nil end
  if result.output ~= nil then result.output = nil end
  if result.timeout ~= nil then result.timeout = nil end
end

-- The body of every test's task: the run says which test.
local function body_of_tests(run)
  run.test_body = function() return test_body(run) end
  return run.test_body
end

-- One run of a test with its hooks; errors of hooks that are not the
-- test's own are left in self.extras.
function Run:attempt(test, result)
  reset_attempt(result)
  module_hooks("_test_reset")
  local started = real_now()
  local snapshot = dsl.snapshot()
  local scope = task.scope(test.full_name)
  self.test, self.result, self.extras = test, result, nil
  if test.env ~= nil then test.env = nil end -- globals a test assigns are its own, every attempt afresh
  local err, tb = self:run_with_timeout(scope, "test", test, self.test_body or body_of_tests(self))
  if err ~= nil then
    if task.is_timeout(err) then result.status = "pass" end -- the timeout, not the cancel it caused
    record(result, err, tb, "it")
  end
  local lost_tasks = close_scope(scope, "the test ended")
  if lost_tasks[1] ~= nil then
    for _, lost in ipairs(lost_tasks) do
      record(result, lost.err, lost.traceback, "a task it spawned, " .. tostring(lost))
    end
  end
  local end_err = module_hooks("_test_end", result, scope)
  if end_err ~= nil then record(result, end_err, nil, "at the end of the test") end
  if self.capture then
    local printed = output.take()
    if printed ~= nil then result.output = printed end
  end
  dsl.set_context(nil)
  dsl.revert(snapshot)
  local finished = real_now()
  result.duration = finished - started
  if self.detail then
    result.started = result.started or started
    result.finished = finished
  end
end

local function attempt_record(result)
  return { status = result.status, message = result.message, traceback = result.traceback,
    output = result.output, duration = result.duration }
end

-- path_of(test) -> the names of the blocks from the file down to the
-- test's, then the test's (kept once per block): what a report that draws
-- the tree needs (opts.detail, set by a reporter that asks for it).
local function path_of(test)
  local block = test.parent
  local names = block.names
  if not names then
    names = {}
    for _, b in ipairs(chain_of(block)) do
      if b.kind ~= "file" then names[#names + 1] = tostring(b.name) end
    end
    block.names = names
  end
  local path = { unpack(names) }
  path[#path + 1] = tostring(test.name)
  return path
end

-- Lazy setups from the outermost block in: each block's run once, just
-- before the first test that needs it. A failed one skips its block's tests
-- (busted counts only the hook's error). One that ran in a process that
-- has died since (an earlier epoch) runs again.
function Run:lazy_ready(block)
  local ok = block.lazy_ok
  if ok and block.lazy_epoch == self.epoch then return true end -- its ancestors were ready when it was
  if ok == false then return false end
  if block.parent and not self:lazy_ready(block.parent) then return false end
  block.lazy_ok = #block.lazy_setup == 0 or self:run_hooks(block, block.lazy_setup, "lazy_setup")
  block.lazy_epoch = self.epoch
  return block.lazy_ok
end

function Run:run_test(test)
  if test.pending then
    if self.walking then return end -- its result is in the journal
    local result = new_result(test.full_name, test.file, test.line, test.tag_list, self)
    result.status, result.message = "pending", test.pending_reason
    if self.detail then result.path = path_of(test) end
    self:emit("test_start", result)
    return self:finish_result(result)
  end
  if not self:lazy_ready(test.parent) then return end
  local how, n = self:step(test.parent)
  if how ~= RUN then return self:test_not_run(test, how, n) end
  local result = new_result(test.full_name, test.file, test.line, test.tag_list, self)
  if self.detail then result.path = path_of(test) end
  self:emit("test_start", result)
  self:attempt(test, result)
  if self.opts.retries > 0 then self:retry(test, result) end
  self:finish_result(result) -- its record in the journal ends the step
  local extras = self.extras
  self.test, self.result, self.extras = nil, nil, nil
  if extras == nil then return end
  for _, x in ipairs(extras) do
    self:hook_error(test.full_name .. " (" .. x.phase .. ")", x.hook, x.err, x.tb, x.phase)
  end
end

-- test_not_run(test, how, n): a test the walk after a death passes (it ran
-- in the process that died: its results are in the journal), or the one
-- that process died in (an error saying how).
function Run:test_not_run(test, how, n)
  if how == DIED and not self.walking then
    local result = new_result(test.full_name, test.file, test.line, test.tag_list, self)
    result.status, result.message, result.output = "error", self:died("the process running this test"), self.walk.output
    self:emit("test_start", result)
    self:finish_result(result)
  end
  self.walk.test = test
  self:step_done(n)
end

-- --retries N: a failed test runs again, up to N more times; one that then
-- passes is flaky.
function Run:retry(test, result)
  local retries = self.opts.retries
  for n = 1, retries do
    if (result.status ~= "fail" and result.status ~= "error") or self.stopping then break end
    result.attempts = result.attempts or {}
    result.attempts[n] = attempt_record(result)
    self:attempt(test, result)
  end
  if result.attempts and result.status == "pass" then result.status = "flaky" end
end

-- A describe body that raised is one error, as busted counts it (a
-- failed test of the run, not a file that could not load).
function Run:report_describe_error(block)
  if self.walking or not self:owns(block.file, block.full_name) then return end
  local e = block.load_error
  local result = new_result(block.full_name, block.file, e.line, nil, self)
  result.status, result.message, result.traceback = "error", e.message, e.traceback
  self:emit("test_start", result)
  self:finish_result(result)
end

-- load_block(block) -> ok: runs a describe body when the run reaches its
-- block (busted's order: after the tests before it, with what their hooks
-- left), as a task under the per-test timeout; then marks what it added.
function Run:load_block(block)
  local how, n = self:step(block.parent)
  local err, tb
  if how == DIED then
    err = self:died("the process running this describe body")
  else
    local scope = task.scope("describe " .. block.full_name)
    err, tb = self:run_with_timeout(scope, "describe", block, function() dsl.load_body(block) end)
    for _, lost in ipairs(close_scope(scope, "the describe body ended")) do
      if err == nil then err, tb = lost.err, lost.traceback end
    end
  end
  self:forward_output()
  self:step_done(n)
  self.unloaded = self.unloaded - 1
  if err ~= nil and not block.load_error then dsl.fail_block(block, err, tb) end
  if block.load_error then return false end
  self:mark(block)
  return true
end

-- A block's children in run order: shuffled with --shuffle (or busted's
-- randomize() in the block) by a generator of the seed, the file and the
-- block alone, so the order never depends on what ran before.
function Run:children_of(block)
  if #block.children < 2 then return block.children end
  if not (self.opts.shuffle_tests or block.randomize) then
    if self.opts.sort_tests then return self:sorted_children(block) end
    return block.children
  end
  if not block.shuffled then
    if not self.opts.seed then -- randomize() alone: reported at the end
      self.opts.seed = M.fresh_seed()
      if self.journal then journal.note("seed", self.opts.seed) end
    end
    local seed = self.opts.seed
    local random = shard.seeded_random(seed, block.file .. "\0" .. block.full_name, self.iteration)
    block.shuffled = shard.shuffled(block.children, random)
  end
  return block.shuffled
end

-- busted's --sort-tests: a block's children by name, ties in their order.
function Run:sorted_children(block)
  if not block.sorted then
    local list = {}
    for i, child in ipairs(block.children) do list[i] = { child, i } end
    table.sort(list, function(a, b)
      if a[1].name ~= b[1].name then return tostring(a[1].name) < tostring(b[1].name) end
      return a[2] < b[2]
    end)
    block.sorted = {}
    for i, pair in ipairs(list) do block.sorted[i] = pair[1] end
  end
  return block.sorted
end

-- note_first(block, test): the first test an unsharded run reaches in
-- `block` and each enclosing block without one yet; the shard that owns it
-- reports those blocks' lazy hook errors. Every shard walks every block, so
-- all agree on it by the time a lazy hook runs.
note_first = function(block, test)
  while block and block.first == nil do
    block.first = test
    block = block.parent
  end
end

-- ------------------------------------------------------------------ steps

-- A protected serial run (host/protect.c) numbers its steps, each piece of
-- user code it runs, and journals their results (sonde.runner.journal has
-- the whole story). When a step kills the process, sonde execs itself; the
-- new image (a new runner) walks the same steps without running them
-- (`walking`), replaying each one's results, up to the step the last one
-- died in.

-- step(block) -> RUN, WALK or DIED, and the step's number. After a death
-- (epoch > 0), setups of `block` and the blocks around it that ran in a
-- process that has died since run again first.
function Run:step(block)
  if self.journal == nil then return RUN, 0 end
  if self.epoch > 0 and block then self:catch_up(block) end
  local n = self.steps + 1
  self.steps = n
  if not self.walking then
    journal.start(n)
    return RUN, n
  end
  local walk = self.walk
  walk.test = nil
  if n == walk.at then
    self:end_walk(n)
    return DIED, n
  end
  if walk.deaths[n] then -- an earlier runner died there: what it was is in the journal, not run again
    self.epoch = self.epoch + 1
    return DIED, n
  end
  return WALK, n
end

-- step_done(n) -> when walking, whether step n failed in the run walked.
-- (A record in the journal also ends the step that was running: a test's
-- result does.)
function Run:step_done(n)
  if self.journal == nil then return false end
  if not self.walking then return journal.done() end
  return journal.replay_through(self, self.walk, n, self.walk.pass)
end

-- forward_output(): what a file's top level or a describe body wrote goes
-- on to the terminal; when walking, the terminal has shown it already.
function Run:forward_output()
  if not self.capture then return end
  if self.walking then output.take() else output.forward() end
end

-- died(subject) -> the error of the step a runner died in.
function Run:died(subject)
  return subject .. " " .. self.walk.how .. "; sonde restarted and the run went on"
end

-- The walk: terminal reporters are silent (they showed what the walk
-- replays), reporters that write files hear the replay.
function Run:start_walk()
  local walk = self.walk
  self.walking, walk.unmute = true, journal.mute(self.reporters)
  walk.pass = function(duration, requests) -- a passing test's result, named after the test walked
    -- (a pass at a step that is no test is in a journal a test wrote over: it still has a file, which
    -- every reporter needs)
    local test = walk.test
      or { full_name = "(a test that passed before a runner died)", file = walk.file or "", line = 0 }
    local result = new_result(test.full_name, test.file, test.line, test.tag_list, self)
    result.duration, result.requests = duration, requests
    return result
  end
end

-- end_walk(n): the records up to step n replayed, the run goes on live
-- from there.
function Run:end_walk(n)
  local walk = self.walk
  journal.replay_through(self, walk, n, walk.pass)
  self.walking = false
  walk.unmute()
  if n ~= math.huge then
    self.epoch = self.epoch + 1
    journal.note("died", n)
  end
  if walk.interrupted then self:interrupt() end
end

-- lost_walk(): the walk never met the step a runner died in: the spec
-- files did not define the same steps when loaded again. What the journal
-- holds is reported, and one error says that the rest of the run is lost.
function Run:lost_walk()
  local walk = self.walk
  self:end_walk(math.huge)
  local result = new_result("(the rest of the run)", walk.file or "", 0, nil, self)
  result.status = "error"
  result.message = string.format("a runner died in step %d of the run (it %s), and a new runner loaded the spec files "
    .. "again but never reached that step: they did not define the same tests and hooks again; the tests after it did "
    .. "not run", walk.at, walk.how)
  self:finish_result(result)
end

-- catch_up(block): setups of `block` and its ancestors that ran in a
-- process that has died since run again, outermost first, before the
-- next step inside them.
function Run:catch_up(block)
  local chain = chain_of(block)
  for i = 1, #chain do
    local b = chain[i]
    if b.setup_epoch ~= nil and b.setup_epoch ~= self.epoch then
      b.setup_epoch = self.epoch
      self:run_hooks(b, b.setup, "setup")
    end
  end
end

-- Strict setup and teardown run even when none of the block's tests is
-- selected (busted's strict_), lazy ones only for a test that runs.
function Run:run_block(block)
  if self.stopping then return end
  if block.kind ~= "file" then
    dsl.enter(block)
    if not self:load_block(block) then
      dsl.leave(block)
      return self:report_describe_error(block)
    end
  end
  local ready = self:run_hooks(block, block.setup, "setup")
  block.setup_epoch = self.epoch
  if ready then
    for _, child in ipairs(self:children_of(block)) do
      if self.stopping then break end
      if child.kind == "test" then
        local selected = child.selected
        if selected and block.first == nil and not child.pending then note_first(block, child) end
        if selected == true then self:run_test(child) end
      else
        self:run_block(child)
      end
    end
  end
  -- teardowns run where their setups did: not after a death took the
  -- process, unless a later step in the block set it up again
  if block.lazy_ok ~= nil then
    if block.lazy_epoch == self.epoch then self:run_hooks(block, block.lazy_teardown, "lazy_teardown") end
    block.lazy_ok = nil
  end
  if block.setup_epoch == self.epoch then self:run_hooks(block, block.teardown, "teardown") end
  block.setup_epoch = nil
  module_hooks("_block_end", block)
  if block.kind ~= "file" then dsl.leave(block) end
end

function Run:load(path)
  local how, n = self:step(nil)
  if how == DIED then
    self:step_done(n)
    return nil, { message = path .. ": " .. self:died("the process loading this file"), line = 0 }
  end
  local file, load_err
  local scope = task.scope("loading " .. path)
  local err, tb = self:run_with_timeout(scope, "loading", { file = path, line = 0, full_name = "" }, function()
    file, load_err = dsl.load_file(path)
  end)
  close_scope(scope, "loading ended")
  self:forward_output()
  self:step_done(n)
  if err ~= nil then
    if file then dsl.leave(file) end
    return nil, { message = path .. ": " .. task.describe(err), traceback = trace.trim(tb), line = 0 }
  end
  return file, load_err
end

-- Marks what runs of a block whose body has run: each test child's
-- `selected` (true: this run runs it; "elsewhere": wanted by name and tags,
-- but another shard's; false), and counts the describe children whose
-- bodies are still to run. A --jobs worker's parent learns each block's
-- tests as they become known (plan), to know what a crash took with it.
function Run:mark(block)
  local planned = self.handlers.plan[1] and {}
  for _, child in ipairs(self:children_of(block)) do
    if child.kind == "test" then
      local selected = wanted(child, self.opts) and (self:owns(child.file, child.full_name) or "elsewhere")
      child.selected = selected
      if planned and selected == true then
        planned[#planned + 1] = { name = self:result_name(child.full_name), line = child.line, tags = child.tag_list }
      end
    else
      self.unloaded = self.unloaded + 1
    end
  end
  if planned then self:emit("plan", { name = block.file, tests = planned, open = self.unloaded }) end
end

-- --list: names the selected tests in run order. Describe bodies run as in
-- a run, but no hook and no test does, so a body that needs what an earlier
-- test's hooks set cannot be listed: it is named on stderr instead.
function Run:list_block(block)
  for _, child in ipairs(self:children_of(block)) do
    if child.kind == "test" then
      if child.selected == true then
        self.listed = self.listed + 1
        self:emit("list", child)
      end
    else
      dsl.enter(child)
      if self:load_block(child) then
        self:list_block(child)
      else -- an error of the listing: its exit code says the list is incomplete
        self.counts.error = self.counts.error + 1
        io.stderr:write(string.format("sonde test: %s:%d: describe '%s' raised while listing, its tests are not "
          .. "listed: %s\n", child.file, child.load_error.line, child.full_name, child.load_error.message))
      end
      dsl.leave(child)
    end
  end
end

function Run:run_file(path)
  if self.walking then self.walk.file = path end -- for lost_walk
  if self.opts.coverage then coverage.note_spec(path) end
  local file, load_err = self:load(path)
  if load_err then
    if self.walking or not self:owns(path, "") then return end
    local result = new_result(path, path, load_err.line, nil, self)
    result.status, result.message, result.traceback = "error", load_err.message, load_err.traceback
    return self:record_load_error(result)
  end
  self.unloaded = 0
  if self.opts.list then
    self:mark(file)
    self:list_block(file)
  else
    if not self.walking then self:emit("file_start", { name = path }) end
    self:mark(file)
    self:run_block(file)
    if not self.walking then self:emit("file_end", { name = path }) end
  end
  dsl.leave(file)
end

function Run:summary()
  local c = self.counts
  local flaky_failed = self.opts.fail_on_flaky and c.flaky or 0
  return { passed = c.pass, failed = c.fail + c.error + flaky_failed, failures = c.fail, errors = c.error,
    skipped = c.pending + c.skip, flaky = c.flaky, total = self.total, duration = real_now() - self.started_at,
    load_errors = self.load_errors, interrupted = self.interrupted, seed = self.opts.seed }
end

-- Files in run order: shuffled by the seed when asked.
function M.ordered(files, opts)
  if not opts.shuffle_files then return files end
  return shard.shuffled(files, shard.random(opts.seed))
end

-- On SIGINT/SIGTERM: the running test is cancelled and reported, nothing
-- more starts.
function Run:interrupt()
  if self.walking then self.walk.interrupted = true return end -- once the walk is over
  self.interrupted, self.stopping = true, true
  if self.running then self.running:cancel("interrupted") end
end

function Run:main(files)
  if self.walk then self:start_walk() end
  self:emit("suite_start", { opts = self.opts, seed = self.opts.seed, started_at = self.started_at, workers = 1 })
  local remove = task.on_interrupt(function() self:interrupt() end)
  if self.journal and journal.stops() > 0 then self:interrupt() end -- before this runner could handle it
  for iteration = 1, self.opts.list and 1 or self.opts.repeat_count do -- a list names each test once
    self.iteration = iteration
    for _, path in ipairs(files) do
      if self.stopping then break end
      self:run_file(path)
    end
  end
  remove()
  if self.walking then self:lost_walk() end
  local summary = self:summary()
  self:end_suite(summary)
  return summary
end

-- Exit codes: 0 passed, 1 failed, 2 usage or load errors, 5 no tests
-- found (pytest's code: a run that tested nothing is no pass), 130
-- interrupted.
M.NO_TESTS = 5

function M.exit_code(summary)
  if summary.interrupted then return 130 end
  if summary.load_errors > 0 or (summary.report_errors or 0) > 0 then return 2 end
  if summary.no_tests then return M.NO_TESTS end
  return summary.failed > 0 and 1 or 0
end

-- A run that found no test says where it looked: the files, the paths they
-- came from and the filters. An empty shard is no mistake (a small suite
-- over many machines), nor a run that asked for it.
local function check_found(summary, opts, files, listed)
  if summary.total > 0 or listed > 0 or summary.interrupted or opts.shard or opts.pass_with_no_tests then return end
  summary.no_tests = true
  local used = {}
  for _, k in ipairs({ "filter", "filter_out", "tags", "exclude_tags" }) do
    if #opts[k] > 0 then used[#used + 1] = "--" .. k:gsub("_", "-") .. " " .. table.concat(opts[k], ",") end
  end
  for _, k in ipairs({ "pattern", "exclude_pattern" }) do
    if #opts[k] > 0 then used[#used + 1] = "--" .. k:gsub("_", "-") .. " " .. table.concat(opts[k], ",") end
  end
  io.stderr:write(string.format("sonde test: no tests found in %s (%d spec file%s%s); --pass-with-no-tests "
    .. "allows an empty run\n", table.concat(opts.paths, " "), #files, #files == 1 and "" or "s",
    #used > 0 and ", selected by " .. table.concat(used, " ") or ""))
end

local function usage_error(err)
  io.stderr:write("sonde test: ", err, "\n")
  return 2
end

-- A seed for --shuffle without --seed, printed so the run can be replayed.
function M.fresh_seed()
  local t = real_now()
  return math.floor((t - math.floor(t)) * 1e6 + os.time()) % 1000000
end

-- os.exit while tests run would end the run with the code the test chose
-- and no report (CI would read a pass while later tests never ran): it is
-- an error of the code that called it, as pytest treats SystemExit, and the
-- run goes on. Returns what puts the real os.exit back.
local function forbid_exit()
  local real = os.exit
  os.exit = function(code) -- luacheck: ignore 122 (replaced on purpose while tests run)
    error(string.format("os.exit(%s) called while tests run: an error of this test, the run goes on",
      tostring(code == nil and "" or code)), 2)
  end
  return function() os.exit = real end -- luacheck: ignore 122
end

-- main(paths, args) -> exit code: parses options, discovers, runs, reports.
-- A suite's heap is mostly its tree of tests, which lives to the end, and
-- each test's garbage: collecting at 4x the live size instead of LuaJIT's
-- 2x halves the collections (8-12% of a 5000-test run) for more memory.
local GC_PAUSE = 400

local function wants_help(args)
  for _, a in ipairs(args) do
    if a == "--help" or a == "-h" then return true end
  end
  return false
end

-- --jobs: the workers are forked (sonde.runner.jobs.fork_workers) before
-- the helper runs, one for each file at most, and the run is of the files
-- found then; a run that finds no file forks none, and says so later.
local function fork_workers(opts)
  if opts.jobs == 1 or opts.list then return nil end
  local files = discover(opts.paths, opts)
  if not files or #files == 0 then return nil end
  opts.detail = options.wants_detail(opts) -- the workers' results carry what the reporters will read
  return require("sonde.runner.jobs").fork_workers(opts, M.ordered(files, opts))
end

function M.main(paths, args)
  collectgarbage("setpause", GC_PAUSE)
  if wants_help(args) then
    io.stdout:write(options.help())
    return 0
  end
  local opts, err = busted_config.parse(paths, args)
  if not opts then return usage_error(err) end
  jit.on() -- off while sonde started (sonde.boot.host); from here on user code runs
  -- A protected serial run journals its steps; the image sonde restarts as
  -- after a death walks them again, in the same order (the same seed).
  local journaled = opts.jobs == 1 and not opts.list and not opts.worker and not opts.watch and journal.active()
  local walk = journaled and journal.resumed() or nil
  if walk then -- what the step the last runner died in wrote is in the capture it handed on
    walk.output = output.take()
    opts.seed = walk.notes.seed or opts.seed
  end
  local drawn = opts.seed == nil
  if opts.shuffle and not opts.seed then opts.seed = M.fresh_seed() end
  if opts.interleave then opts.seed = opts.seed or M.fresh_seed(); task.set_interleave(opts.seed) end
  if journaled and drawn and opts.seed then journal.note("seed", opts.seed) end
  local allow_exit = forbid_exit()
  if opts.worker then return require("sonde.runner.jobs").worker_main() end
  if not walk then
    for _, note in ipairs(opts.notes) do io.stderr:write("sonde test: ", note, "\n") end
  end
  local pool, worker_code = fork_workers(opts)
  if worker_code then return worker_code end
  -- A --jobs parent runs no test: what it runs (decoding and reporting
  -- the workers' events) runs too few times for the JIT's compiling, and
  -- its changes to code pages, to pay (a third of its time on 20 files).
  if opts.jobs > 1 and not opts.list then jit.off() end
  local function fail(why)
    if pool then pool:release() end -- the forked workers end with their stdin
    return usage_error(why)
  end
  if opts.coverage and not opts.list then -- on before the helper runs; with --jobs the workers count
    local ok, cerr = coverage.setup(opts, true)
    if not ok then return fail(cerr) end
    if opts.jobs == 1 then coverage.start() end
  end
  local ready, perr = busted_config.prepare(opts)
  if not ready then return fail(perr) end
  local files, derr = discover(opts.paths, opts)
  if not files then return fail(derr) end
  files = pool and pool.files or M.ordered(files, opts)
  if opts.watch then
    local code = require("sonde.runner.watch").main({ Run = Run, discover = discover }, opts, files)
    allow_exit()
    return code
  end
  local reporters, rerr = options.open_reporters(opts, output.stdout(opts))
  if not reporters then return fail(rerr) end
  local run = Run.new(opts, journaled and journal.listening(reporters) or reporters)
  if journaled then journal.attach(run, walk) end
  local root
  if opts.jobs > 1 and not opts.list and #files > 0 then
    root = task.run(function() return require("sonde.runner.jobs").main(run, files, pool) end)
  else
    if run.capture then output.begin() end
    root = task.run(function() return run:main(files) end)
    if run.capture then output.finish() end
  end
  if journaled then journal.done() end -- no step runs any more, however the run ended
  allow_exit()
  local unwritten = options.close_reporters(reporters)
  if root.err ~= nil then
    io.stderr:write("sonde test: internal error: ", trace.format(root.err, root.traceback), "\n")
    return 2
  end
  local summary = root.results[1]
  summary.report_errors = (summary.report_errors or 0) + unwritten
  if summary.coverage and not options.human_on_terminal(reporters) then -- the human reporter prints it itself
    local text = coverage.table_text(summary.coverage)
    if options.to_terminal(reporters) then io.stderr:write(text) else io.stdout:write(text) end
  end
  if not opts.list and not options.to_terminal(reporters) then -- every report went to a file
    local human = require("sonde.runner.reporters.human")
    io.stdout:write(human.details(root.results[1]), "\n", human.closing_line(root.results[1]), "\n")
  end
  check_found(root.results[1], opts, files, run.listed)
  return M.exit_code(root.results[1])
end

return M
