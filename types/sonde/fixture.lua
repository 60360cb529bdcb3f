---@meta sonde.fixture
-- LuaLS definitions of sonde.fixture (see README "Editors").

---The options of fixture.server.
---@class sonde.fixture.ServerOptions
---@field cmd string[] the argv; "{port}" in it (or in env) becomes the chosen port
---@field env table<string, string|number|false>?
---@field cwd string?
---@field host string? (default "127.0.0.1")
---@field port integer? (default: an unused one)
---@field health string? the path polled until it answers 200 (default "/health")
---@field ready_timeout number? seconds (default 20)
---@field poll_interval number? seconds (default 0.1)
---@field grace number? seconds between SIGTERM and SIGKILL on stop (default 10)
---@field base_path string? appended to url
---@field name string? in messages (default cmd[1])

---A server process that answered its health check.
---@class sonde.fixture.Server
---@field url string "http://127.0.0.1:PORT" .. base_path
---@field port integer
---@field pid integer
---@field name string
---@field process sonde.Process
local Server = {}
---What it has written to stdout, then stderr.
---@return string
function Server:logs() end
---SIGTERM, then SIGKILL after the grace period.
---@return integer? code, string? signal
function Server:stop() end
---@return boolean
function Server:running() end

local fixture = {}

---A TCP port nothing listens on now.
---@param host string? (default "127.0.0.1")
---@return integer
function fixture.unused_port(host) end

---Starts the process and polls its health path until it answers 200.
---Failing to become ready raises with the exit status and the last lines of
---its output.
---@param opts sonde.fixture.ServerOptions
---@return sonde.fixture.Server
function fixture.server(opts) end

---The value factory() made the first time `name` was asked for in this run
---(pytest's session scope), torn down when the run ends: factory may return
---a second value, a function that tears it down; otherwise a value with
---:stop() is stopped.
---@generic T
---@param name string
---@param factory fun(): T, fun()?
---@return T
function fixture.session(name, factory) end

---Stops every session value, newest first (the host and the runner call it
---when a run ends).
function fixture.teardown_sessions() end

---For a request to url that failed: that the fixture server at its origin
---has exited, with its status and last output; nil when none was there or
---it still runs (sonde.http adds it to the request's error).
---@param url string
---@return string?
function fixture.exit_note(url) end

return fixture
