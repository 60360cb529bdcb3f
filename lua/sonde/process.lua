-- sonde.process: child processes that a task can wait on, never orphaned.
--
-- process.spawn{"cmd", "arg", env={NAME="v", DROP=false}, cwd=, stdin=,
-- output_limit=} starts argv directly (a shell only if you spawn one). The
-- child leads its own process group, dies with the host (PR_SET_PDEATHSIG)
-- and is stopped when the host exits, and so is any descendant that left
-- its group (host/orphans.h). stdout and stderr are captured; the
-- last output_limit bytes (default 1 MiB) of each are kept. Under the spec
-- runner, a process still running when the test that started it ends is
-- stopped then (one started by a block's setup, when the block ends), as
-- the servers a test starts are closed.
local cproc = require("sonde.c.process")
local loop = require("sonde.c.loop")
local task = require("sonde.task")
local options_check = require("sonde.options")

local M = { signals = cproc.signals }

local Process = {}
Process.__index = Process
Process.__tostring = function(p) return string.format("process<%s pid %d>", p.argv[1], p.pid) end

-- What a spawn spec may hold besides its argv, and the type of each (env
-- is checked by split_env). process.run also takes a timeout.
local SPAWN_OPTIONS = { env = "table", cwd = "string", stdin = "string", output_limit = "count" }
local RUN_OPTIONS = { timeout = "seconds" }
for k, v in pairs(SPAWN_OPTIONS) do RUN_OPTIONS[k] = v end

-- Checks a spec; returns its argv. Errors are raised at level 0: the
-- public entry re-raises them at its caller's line.
local function check_spec(what, spec, options)
  if type(spec) ~= "table" then error(what .. ": expected a table {\"cmd\", \"arg\", ...}, got " .. type(spec), 0) end
  if type(spec[1]) ~= "string" then error(what .. ": the first array item must be the command (a string)", 0) end
  local argv = {}
  for i = 1, #spec do
    local a = spec[i]
    if type(a) == "number" then a = tostring(a) end
    if type(a) ~= "string" then error(string.format("%s: argument %d must be a string, got %s", what, i, type(a)), 0) end
    argv[i] = a
  end
  for k, v in pairs(spec) do
    if argv[k] == nil then
      local want = options[k]
      if type(k) == "number" then
        error(string.format("%s: argument %s comes after a nil (argv must be a list without holes)", what, tostring(k)), 0)
      elseif k == "timeout" and not want then
        error(what .. ": unknown option 'timeout' (a spawned process has none: give it to p:wait)", 0)
      elseif not want then
        error(string.format("%s: unknown option '%s' (expected one of: %s)", what, tostring(k), options_check.names(options)),
          0)
      end
      options_check.check_value(what, k, v, want, 0)
    end
  end
  return argv
end

local function split_env(what, env)
  if env == nil then return nil, nil end
  local set, unset = {}, {}
  for k, v in pairs(env) do
    if type(k) ~= "string" or k == "" or k:find("=", 1, true) then
      error(what .. ": env names must be non-empty strings without '=', got " .. tostring(k), 0)
    end
    if v == false then
      unset[#unset + 1] = k
    elseif type(v) == "string" or type(v) == "number" then
      set[#set + 1] = k .. "=" .. tostring(v)
    else
      error(what .. ": env." .. k .. " must be a string, number or false, got " .. type(v), 0)
    end
  end
  return set, unset
end

-- The processes running now: each knows the scope that started it, so the
-- runner can stop what a test or a block's hooks left running.
local running = {}

-- Starts the child a spec describes; raises at level 0.
local function start(what, spec, options)
  local argv = check_spec(what, spec, options)
  local set, unset = split_env(what, spec.env)
  local p = setmetatable({ argv = argv, exit_event = task.event(), scope = task.current_scope() }, Process)
  local token = task.new_token(function(code, sig)
    p.code = sig == 0 and code or nil
    p.signal = sig ~= 0 and (cproc.signals[sig] or sig) or nil
    running[p] = nil
    p.exit_event:set()
  end)
  local h, err = cproc.spawn { argv = argv, env_set = set, env_unset = unset, cwd = spec.cwd,
    tail = spec.output_limit, token = token }
  if not h then
    task.drop_token(token)
    error(what .. ": " .. err, 0)
  end
  p.handle, p.pid = h, h:pid()
  running[p] = true
  if spec.stdin then
    h:write(spec.stdin)
    h:close_stdin()
  end
  return p
end

function M.spawn(spec)
  local ok, p = pcall(start, "process.spawn", spec, SPAWN_OPTIONS)
  if not ok then error(p, 2) end
  return p
end

-- wait([timeout[, real]]) -> code, signal: code is nil when a signal ended
-- it, and signal is its name ("TERM", "KILL"...). Raises a timeout error.
-- With `real`, the timeout runs on real time even under a virtual clock.
function Process:wait(timeout, real)
  task.check_timeout(timeout)
  if not self.exit_event:is_set() then
    loop.real_pending(1) -- a real operation: virtual time must not jump past it
    local ok, e = pcall(self.exit_event.wait, self.exit_event, timeout, real)
    loop.real_pending(-1)
    if not ok then
      if task.is_timeout(e) then
        e = task.new_error("timeout", string.format("timeout: %s did not exit within %gs", tostring(self), timeout))
      end
      error(e, 2)
    end
  end
  return self.code, self.signal
end

-- kill([signal="TERM"]): signals the child's process group. Returns true, or
-- false and a reason when the child has already exited.
function Process:kill(sig)
  sig = sig or "TERM"
  local num = type(sig) == "number" and sig or cproc.signals[tostring(sig):upper():gsub("^SIG", "")]
  if not num then error("process:kill: unknown signal " .. tostring(sig), 2) end
  if self.exit_event:is_set() then return false, "already exited" end
  local ok, err = self.handle:signal(num)
  return ok or false, err
end

function Process:running() return not self.exit_event:is_set() end
function Process:stdout() return (self.handle:stdout()) end
function Process:stderr() return (self.handle:stderr()) end

function Process:write(s)
  local ok, err = self.handle:write(s)
  if not ok then error("process:write: " .. err, 2) end
end

function Process:close_stdin() self.handle:close_stdin() end

-- stop([grace=10[, real]]): TERM, then KILL after grace seconds (real ones
-- with `real`); returns code, signal.
function Process:stop(grace, real)
  if not self:running() then return self.code, self.signal end
  self:kill("TERM")
  local ok, err = pcall(self.wait, self, grace or 10, real)
  if not ok then
    self:kill("KILL")
    if task.is_cancelled(err) then error(err, 0) end -- stopped, but the caller was cancelled
    self:wait()
  end
  return self.code, self.signal
end

-- wait_exit(pid[, timeout]): returns once process pid has exited, whether
-- or not this host started it (a daemon's pid, what a child left behind);
-- at once when no such process exists. Raises a timeout error. A zombie
-- counts as exited; no exit status is known for a process not our child.
function M.wait_exit(pid, timeout)
  if type(pid) ~= "number" or pid ~= math.floor(pid) then
    error("process.wait_exit: expected a pid (an integer), got " .. (type(pid) == "number" and pid or type(pid)), 2)
  end
  task.check_timeout(timeout)
  local exited = task.event()
  local token = task.new_token(function() exited:set() end)
  local watch, err = cproc.watch_exit(pid, token)
  if not watch then
    task.drop_token(token)
    if watch == false then return end
    error("process.wait_exit: cannot watch pid " .. pid .. ": " .. err, 2)
  end
  loop.real_pending(1) -- a real operation: virtual time must not jump past it
  local ok, e = pcall(exited.wait, exited, timeout)
  loop.real_pending(-1)
  watch:close()
  task.drop_token(token)
  if not ok then
    if task.is_timeout(e) then
      e = task.new_error("timeout", string.format("timeout: process %d did not exit within %gs", pid, timeout))
    end
    error(e, 2)
  end
end

-- run{"cmd", ...}: spawns, waits (spec.timeout, default none) and returns
-- code, stdout, stderr, signal.
function M.run(spec)
  local started, p = pcall(start, "process.run", spec, RUN_OPTIONS)
  if not started then error(p, 2) end
  local ok, e = pcall(p.wait, p, spec.timeout)
  if not ok then
    p:stop(1)
    error(e, 2)
  end
  return p.code, p:stdout(), p:stderr(), p.signal
end

-- ------------------------------------------------------------ test ends

-- Seconds a process left running by a test gets between TERM and KILL (a
-- fixture.server's own grace when it has one), as servers get at test end.
local LEFT_GRACE = 1

local function started_in(p, scope) return p.scope == scope end
local function started_by_hooks_of(p, block) return p.scope.block == block end
local function by_pid(a, b) return a.pid < b.pid end

-- Stops the running processes p for which owned(p, owner) holds: TERM to
-- every group at once, then each gets its grace on real time (a mocked
-- clock the test left open must not hold the KILL back). Returns them by pid.
local function stop_left(owned, owner)
  local left = {}
  for p in pairs(running) do
    if owned(p, owner) then left[#left + 1] = p end
  end
  table.sort(left, by_pid)
  for _, p in ipairs(left) do p:kill("TERM") end
  for _, p in ipairs(left) do p:stop(p.grace or LEFT_GRACE, true) end
  return left
end

-- The command line in a note: argv's first line, cut short.
local function command_line(p)
  local s = table.concat(p.argv, " "):match("^[^\n]*")
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return s
end

-- The runner calls this when a test ends: what the test (its before_each,
-- after_each, tasks) started and left running is stopped, and its output
-- says so. The test does not fail for it.
function M._test_end(_, scope)
  if next(running) == nil then return end
  for _, p in ipairs(stop_left(started_in, scope)) do
    io.stdout:write(string.format("process '%s' (pid %d) was still running at the end of the test; stopped\n",
      command_line(p), p.pid))
  end
end

-- ... and this once a block's teardown has run: what its setup (or another
-- of its block hooks) started lives until then.
function M._block_end(block)
  if next(running) == nil then return end
  stop_left(started_by_hooks_of, block)
end

require("sonde.test_hooks").add(M)

return M
