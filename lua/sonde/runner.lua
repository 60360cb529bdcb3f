-- sonde.runner: `sonde test`, a busted-compatible spec runner where every
-- `it` is a task.
--
-- The DSL only registers blocks (sonde.spec_dsl); this module selects and
-- executes them and emits events that reporters (sonde.reporters.*)
-- subscribe to: suite_start, file_start, test_start, test_end, file_end,
-- load_error, suite_end.
local task = require("sonde.task")
local trace = require("sonde.trace")
local loop = require("sonde.c.loop")
local dsl = require("sonde.spec_dsl")
local options = require("sonde.runner_options")

local M = {}

-- ----------------------------------------------------------- per-test resets

local resets = {}

-- on_reset(fn): fn() runs before every test, so modules can drop per-test
-- state (recorded events, counters, a virtual clock).
function M.on_reset(fn) resets[#resets + 1] = fn end

local function run_resets()
  for i = 1, #resets do resets[i]() end
end

-- ---------------------------------------------------------------- discovery

local function discover_dir(dir, out)
  local entries, err = loop.scandir(dir)
  if not entries then return nil, dir .. ": " .. err end
  table.sort(entries, function(a, b) return a.name < b.name end)
  for _, e in ipairs(entries) do
    local path = dir .. "/" .. e.name
    if e.name:sub(1, 1) ~= "." then
      if e.dir then
        local ok, derr = discover_dir(path, out)
        if not ok then return nil, derr end
      elseif e.name:find("_spec%.lua$") then
        out[#out + 1] = path
      end
    end
  end
  return out
end

-- discover(paths) -> files | nil, "path: why"
function M.discover(paths)
  local files = {}
  for _, path in ipairs(paths) do
    local kind = loop.stat(path)
    if kind == nil then return nil, path .. ": no such file or directory" end
    if kind == "dir" then
      local ok, err = discover_dir((path:gsub("/+$", "")), files)
      if not ok then return nil, err end
    else
      files[#files + 1] = path
    end
  end
  return files
end

-- ---------------------------------------------------------------- selection

local function selected(test, opts)
  local name = test.full_name
  for _, pat in ipairs(opts.filter) do
    if not name:find(pat) then return false end
  end
  for _, pat in ipairs(opts.filter_out) do
    if name:find(pat) then return false end
  end
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

-- Marks each block with how many of its tests run, so hooks of a block with
-- none selected are not run (busted's lazy setup).
local function mark_selected(block, opts)
  local n = 0
  for _, child in ipairs(block.children) do
    if child.kind == "test" then
      child.selected = selected(child, opts)
      if child.selected then n = n + 1 end
    else
      n = n + mark_selected(child, opts)
    end
  end
  block.selected_count = n
  return n
end

-- ---------------------------------------------------------------- execution

local Run = {}
Run.__index = Run

function Run:emit(event, data)
  for _, r in ipairs(self.reporters) do
    local handler = r[event]
    if handler then handler(r, data) end
  end
end

-- Calls fn under a handler that keeps the traceback of the raising frame.
local function capture(fn, ...)
  local tb
  local ok, err = xpcall(fn, function(e)
    tb = debug.traceback("", 2)
    return e
  end, ...)
  return ok, err, tb
end

local function status_of(err)
  if dsl.is_pending(err) then return "pending" end
  if dsl.is_failure(err) then return "fail" end
  return "error"
end

-- Records the first problem of a test; later ones (an after_each failing
-- after the body failed) do not hide it.
local function record(result, err, tb, phase)
  if result.status ~= "pass" then return end
  result.status = status_of(err)
  if result.status == "pending" then
    result.message = err.message
    return
  end
  if phase ~= "it" and result.status == "fail" then result.status = "error" end
  result.error = err
  result.message = (phase ~= "it" and (phase .. ": ") or "") .. task.describe(err)
  result.traceback = trace.trim(type(err) == "table" and rawget(err, "traceback") or tb)
end

local function ancestors(node)
  local chain = {}
  local b = node.parent
  while b do
    table.insert(chain, 1, b)
    b = b.parent
  end
  return chain
end

-- The body of a test task: before_each hooks outer to inner, the test,
-- its finally callbacks, then after_each inner to outer for every block
-- whose before_each ran.
local function test_body(test, result)
  local chain, entered = ancestors(test), 0
  for i, block in ipairs(chain) do
    entered = i
    for _, hook in ipairs(block.before_each) do
      local ok, err, tb = capture(hook.fn)
      if not ok then
        record(result, err, tb, "before_each")
        break
      end
    end
    if result.status ~= "pass" then break end
  end
  if result.status == "pass" then
    dsl.enter_test(result)
    local ok, err, tb = capture(test.fn)
    if not ok then record(result, err, tb, "it") end
    for _, fn in ipairs(dsl.leave_test()) do
      local fok, ferr, ftb = capture(fn)
      if not fok then record(result, ferr, ftb, "finally") end
    end
  end
  for i = entered, 1, -1 do
    for _, hook in ipairs(chain[i].after_each) do
      local ok, err, tb = capture(hook.fn)
      if not ok then record(result, err, tb, "after_each") end
    end
  end
end

-- Runs fn(...) as a task of `scope` with the per-test timeout; returns
-- nil, or an error result {err, tb} when it timed out.
function Run:run_with_timeout(scope, what, fn, ...)
  local t = task.spawn_in(scope, fn, ...)
  self.running = t
  local ok, err = pcall(t.join, t, self.opts.timeout)
  self.running = nil
  if ok then return nil end
  if task.is_timeout(err) and not t:done() then
    local where = t.co and debug.traceback(t.co) or ""
    t:cancel("timed out")
    pcall(t.join, t, 1)
    return task.new_error("timeout", string.format("timeout: %s did not finish within %gs", what, self.opts.timeout)), where
  end
  return err, t.traceback
end

local function new_result(test)
  return { name = test.full_name, file = test.file, line = test.line, tags = test.tag_list,
    status = "pass", duration = 0, requests = 0 }
end

function Run:finish_result(result, started)
  result.duration = loop.real_now() - started
  local s = result.status
  self.counts[s] = (self.counts[s] or 0) + 1
  self.results[#self.results + 1] = result
  self:emit("test_end", result)
  if self.opts.fail_fast and (s == "fail" or s == "error") then self.stopping = true end
end

function Run:run_test(test)
  local result = new_result(test)
  self:emit("test_start", result)
  if test.pending then
    result.status, result.message = "pending", test.pending_reason
    return self:finish_result(result, loop.real_now())
  end
  run_resets()
  local started = loop.real_now()
  local snapshot = dsl.snapshot()
  local scope = task.scope(test.full_name)
  local err, tb = self:run_with_timeout(scope, "test", test_body, test, result)
  if err ~= nil then
    if task.is_timeout(err) then result.status = "pass" end -- the timeout, not the cancel it caused
    record(result, err, tb, "it")
  end
  for _, lost in ipairs(task.close_scope(scope, "the test ended")) do
    record(result, lost.err, lost.traceback, "a task it spawned")
  end
  snapshot:revert()
  self:finish_result(result, started)
end

-- A hook that fails (setup/teardown) becomes one error result of its own.
function Run:run_block_hooks(block, list, phase)
  for _, hook in ipairs(list) do
    local scope = task.scope(phase)
    local err, tb = self:run_with_timeout(scope, phase, function()
      local ok, e, t = capture(hook.fn)
      if not ok then error({ hook_error = e, hook_tb = t }, 0) end
    end)
    task.close_scope(scope, phase .. " ended")
    if err ~= nil then
      if type(err) == "table" and err.hook_error ~= nil then err, tb = err.hook_error, err.hook_tb end
      local result = { name = block.full_name .. " (" .. phase .. ")", file = hook.file, line = hook.line,
        tags = {}, status = "pass", duration = 0, requests = 0 }
      record(result, err, tb, phase)
      self:finish_result(result, loop.real_now())
      return false
    end
  end
  return true
end

function Run:run_block(block)
  if block.selected_count == 0 or self.stopping then return end
  if self:run_block_hooks(block, block.setup, "setup") then
    for _, child in ipairs(block.children) do
      if self.stopping then break end
      if child.kind == "test" then
        if child.selected then self:run_test(child) end
      else
        self:run_block(child)
      end
    end
  end
  self:run_block_hooks(block, block.teardown, "teardown")
end

function Run:run_file(path)
  local file, load_err = dsl.load_file(path)
  if load_err then
    self.load_errors = self.load_errors + 1
    local result = { name = path, file = path, line = load_err.line or 0, tags = {}, status = "error",
      message = load_err.message, traceback = load_err.traceback, duration = 0, requests = 0 }
    self.counts.error = self.counts.error + 1
    self.results[#self.results + 1] = result
    self:emit("load_error", result)
    return
  end
  mark_selected(file, self.opts)
  if self.opts.list then
    dsl.each_test(file, function(test)
      if test.selected then self:emit("list", test) end
    end)
    return
  end
  self:emit("file_start", { name = path })
  local snapshot = dsl.snapshot_globals()
  self:run_block(file)
  dsl.restore_globals(snapshot)
  self:emit("file_end", { name = path })
end

function Run:summary()
  local c = self.counts
  return { passed = c.pass, failed = c.fail + c.error, failures = c.fail, errors = c.error,
    skipped = c.pending + c.skip, duration = loop.real_now() - self.started, results = self.results,
    load_errors = self.load_errors, interrupted = self.interrupted }
end

function Run:main(files)
  self:emit("suite_start", { files = files, opts = self.opts })
  local remove = task.on_interrupt(function()
    self.interrupted, self.stopping = true, true
    if self.running then self.running:cancel("interrupted") end
  end)
  for _, path in ipairs(files) do
    if self.stopping then break end
    self:run_file(path)
  end
  remove()
  local summary = self:summary()
  self:emit("suite_end", summary)
  return summary
end

local function exit_code(summary)
  if summary.interrupted then return 130 end
  if summary.load_errors > 0 then return 2 end
  return summary.failed > 0 and 1 or 0
end

-- main(paths, args) -> exit code: parses options, discovers, runs, reports.
function M.main(paths, args)
  local opts, err = options.parse(paths, args)
  if not opts then
    io.stderr:write("sonde test: ", err, "\n")
    return 2
  end
  local files, derr = M.discover(opts.paths)
  if not files then
    io.stderr:write("sonde test: ", derr, "\n")
    return 2
  end
  local reporters, rerr = options.open_reporters(opts)
  if not reporters then
    io.stderr:write("sonde test: ", rerr, "\n")
    return 2
  end
  local run = setmetatable({ opts = opts, reporters = reporters, results = {}, load_errors = 0,
    counts = { pass = 0, fail = 0, error = 0, pending = 0, skip = 0 }, started = loop.real_now() }, Run)
  local root = task.run(function() return run:main(files) end)
  options.close_reporters(reporters)
  if root.err ~= nil then
    io.stderr:write("sonde test: internal error: ", trace.format(root.err, root.traceback), "\n")
    return 2
  end
  return exit_code(root.results[1])
end

return M
