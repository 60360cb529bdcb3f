-- sonde.fixture: real servers in subprocesses, health-polled, never orphaned.
--
-- fixture.server{cmd={...}, env={}, cwd=, port=, health="/health",
-- ready_timeout=20, poll_interval=0.1, grace=10, base_path=""} starts the
-- command ({port} in cmd or env becomes the chosen port), polls health until
-- it answers 200, and returns srv (url, port, pid, logs(), stop()). A server
-- that exits early or never becomes ready raises an error with its exit
-- status and last output lines. fixture.session(name, factory) makes a value
-- once per run and tears it down at exit (pytest's session scope).
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local task = require("sonde.task")
local http = require("sonde.http")
local options = require("sonde.lib.options")

local M = {}

local SERVER_OPTIONS = { cmd = "table", env = "table", cwd = "string", port = "port", health = "string",
  ready_timeout = "seconds", poll_interval = "seconds", grace = "seconds", base_path = "string", host = "string",
  name = "string" }

function M.unused_port(host)
  local port, err = loop.unused_port(host)
  if not port then error("fixture.unused_port: " .. err, 2) end
  return port
end

local function check(opts)
  if type(opts) ~= "table" then error("fixture.server: expected a table of options, got " .. type(opts), 3) end
  options.check("fixture.server", opts, SERVER_OPTIONS, 3)
  if not opts.cmd or type(opts.cmd[1]) ~= "string" then
    error("fixture.server: cmd must be an argv list such as {\"gunicorn\", \"-b\", \"127.0.0.1:{port}\", ...}", 3)
  end
end

local function substitute(s, port)
  if type(s) ~= "string" then return s end
  return (s:gsub("{port}", tostring(port)))
end

local last_lines = process.last_lines -- the last n lines of a text

local Server = {}
Server.__index = Server
Server.__tostring = function(s) return string.format("<server %s at %s>", s.name, s.url) end

function Server:logs()
  return self.process:stdout() .. self.process:stderr()
end

-- stop(): SIGTERM, then SIGKILL after the grace period; returns code, signal.
function Server:stop()
  return self.process:stop(self.grace)
end

function Server:running() return self.process:running() end

local function exit_description(p)
  if p.signal then return "was killed by SIG" .. p.signal end
  return "exited with code " .. tostring(p.code)
end

-- The servers that became ready, by origin ("http://127.0.0.1:8080"): a
-- request to one that cannot connect asks exit_note whether it has exited.
local ready_servers = setmetatable({}, { __mode = "v" })

local function origin_of(url) return url:match("^%a[%w+.-]*://[^/?#]+") end

-- exit_note(url) -> for a request to url that failed: that the fixture
-- server at its origin has exited, with its status and last output; nil
-- when no fixture server was there or it still runs.
function M.exit_note(url)
  local srv = ready_servers[origin_of(url) or ""]
  if not srv or srv:running() then return nil end
  return string.format("the fixture server %s (pid %d) at %s %s; last output:\n%s", srv.name, srv.pid,
    origin_of(srv.url), exit_description(srv.process), last_lines(srv:logs(), 20))
end

-- Polls health until 200; raises with the reason it never got there.
local function wait_ready(srv, opts)
  local health_url = http.join_url(srv.url, opts.health or "/health")
  local deadline = task.now() + (opts.ready_timeout or 20)
  local interval = opts.poll_interval or 0.1
  local last -- what the last health check got
  while true do
    if not srv.process:running() then
      error(string.format("fixture.server: %s %s before becoming ready; last output:\n%s", srv.name,
        exit_description(srv.process), last_lines(srv:logs(), 20)), 0)
    end
    local ok, r = pcall(http.get, health_url, { timeout = math.max(interval, 1) })
    if not ok and task.is_cancelled(r) then error(r, 0) end -- M.server kills the process
    if ok and r.status == 200 then return end
    last = ok and ("GET " .. health_url .. " answered " .. r.status) or tostring(r)
    if task.now() >= deadline then
      srv:stop()
      error(string.format("fixture.server: %s (pid %d) did not become ready within %gs (%s); last output:\n%s",
        srv.name, srv.pid, opts.ready_timeout or 20, last, last_lines(srv:logs(), 20)), 0)
    end
    -- until the next look, or the process's exit if that comes first
    local _, e = pcall(srv.process.wait, srv.process, interval)
    if task.is_cancelled(e) then error(e, 0) end
  end
end

function M.server(opts)
  check(opts)
  local host = opts.host or "127.0.0.1"
  local port = opts.port or M.unused_port(host)
  if opts.port and not loop.unused_port(host, opts.port) then
    error(string.format("fixture.server: port %d on %s is already in use (another server would answer the " ..
      "health checks)", opts.port, host), 2)
  end
  local argv = {}
  for i, a in ipairs(opts.cmd) do argv[i] = substitute(a, port) end
  local env = {}
  for k, v in pairs(opts.env or {}) do env[k] = substitute(v, port) end
  argv.env, argv.cwd = env, opts.cwd
  local ok, p = pcall(process.spawn, argv)
  if not ok then error("fixture.server: " .. tostring(p):gsub("^process%.spawn: ", ""), 2) end
  p.grace = opts.grace or 10 -- also when a test ends with the server left running
  local srv = setmetatable({ process = p, pid = p.pid, port = port, grace = opts.grace or 10,
    name = opts.name or argv[1],
    url = "http://" .. host .. ":" .. port .. (opts.base_path or "") }, Server)
  local ready, err = pcall(wait_ready, srv, opts)
  if not ready then
    if srv:running() then srv.process:kill("KILL") end
    error(err, 2)
  end
  ready_servers[origin_of(srv.url)] = srv
  return srv
end

-- ---------------------------------------------------------------- sessions

local sessions, order = {}, {}

-- session(name, factory) -> the value factory() made the first time this
-- name was asked for in this run. factory may return a second value, a
-- function to tear it down; otherwise a value with :stop() is stopped.
function M.session(name, factory)
  if type(name) ~= "string" then error("fixture.session: expected a name first", 2) end
  local s = sessions[name]
  if s then
    if not s.ready:is_set() then
      if s.maker == task.current() then
        error("fixture.session: '" .. name .. "' is asked for by its own factory", 2)
      end
      s.ready:wait() -- another task is making it
    end
    if s.error then error(s.error, 2) end
    return s.value
  end
  if type(factory) ~= "function" then error("fixture.session: '" .. name .. "' needs a factory function", 2) end
  s = { ready = task.event(), maker = task.current() }
  sessions[name] = s
  -- what the factory starts (a server's process, tasks) lives for the run,
  -- not only for the test that asked first
  local ok, value, teardown = pcall(task.in_scope, task.scope("fixture.session " .. name), factory)
  if not ok then s.error = value end
  s.value, s.teardown = value, teardown
  s.ready:set()
  if not ok then error(value, 2) end
  order[#order + 1] = name
  return value
end

-- teardown_sessions(): stops every session value, newest first. The host
-- and the runner call it when a run ends.
function M.teardown_sessions()
  for i = #order, 1, -1 do
    local s = sessions[order[i]]
    local ok, err = pcall(function()
      if s.teardown then
        s.teardown(s.value)
      elseif type(s.value) == "table" and type(s.value.stop) == "function" then
        s.value:stop()
      end
    end)
    if not ok then io.stderr:write("sonde: tearing down session '", order[i], "': ", task.describe(err), "\n") end
  end
  sessions, order = {}, {}
end

return M
