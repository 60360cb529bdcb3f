-- sonde.process: child processes that a task can wait on, never orphaned.
--
-- process.spawn{"cmd", "arg", env={NAME="v", DROP=false}, cwd=, stdin=,
-- output_limit=} starts argv directly (a shell only if you spawn one). The
-- child leads its own process group, dies with the host (PR_SET_PDEATHSIG)
-- and is stopped when the host exits. stdout and stderr are captured; the
-- last output_limit bytes (default 1 MiB) of each are kept.
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

-- Starts the child a spec describes; raises at level 0.
local function start(what, spec, options)
  local argv = check_spec(what, spec, options)
  local set, unset = split_env(what, spec.env)
  local p = setmetatable({ argv = argv, exit_event = task.event() }, Process)
  local token = task.new_token(function(code, sig)
    p.code = sig == 0 and code or nil
    p.signal = sig ~= 0 and (cproc.signals[sig] or sig) or nil
    p.exit_event:set()
  end)
  local h, err = cproc.spawn { argv = argv, env_set = set, env_unset = unset, cwd = spec.cwd,
    tail = spec.output_limit, token = token }
  if not h then
    task.drop_token(token)
    error(what .. ": " .. err, 0)
  end
  p.handle, p.pid = h, h:pid()
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

-- wait([timeout]) -> code, signal: code is nil when a signal ended it, and
-- signal is its name ("TERM", "KILL"...). Raises a timeout error.
function Process:wait(timeout)
  task.check_timeout(timeout)
  if not self.exit_event:is_set() then
    loop.real_pending(1) -- a real operation: virtual time must not jump past it
    local ok, e = pcall(self.exit_event.wait, self.exit_event, timeout)
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

-- stop([grace=10]): TERM, then KILL after grace seconds; returns code, signal.
function Process:stop(grace)
  if not self:running() then return self.code, self.signal end
  self:kill("TERM")
  local ok, err = pcall(self.wait, self, grace or 10)
  if not ok then
    self:kill("KILL")
    if task.is_cancelled(err) then error(err, 0) end -- stopped, but the caller was cancelled
    self:wait()
  end
  return self.code, self.signal
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

return M
