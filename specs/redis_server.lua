-- A real redis-server for the specs, on an unused loopback port: nothing is
-- saved (--save '' --appendonly no) unless a directory is given, where an
-- append-only file then keeps the data across kill and start. Without
-- redis-server installed, missing() says why and the specs skip.
local fixture = require("sonde.fixture")
local process = require("sonde.process")

local M = {}

-- missing() -> why redis-server cannot run here, or nil
function M.missing()
  local ok, code = pcall(process.run, { "redis-server", "--version", timeout = 10 })
  if ok and code == 0 then return nil end
  return "redis-server is not installed (scripts/install-deps installs it)"
end

local Server = {}
Server.__index = Server

-- start(): starts redis-server on its port and returns once it accepts
-- connections.
function Server:start()
  local argv = { "redis-server", "--port", tostring(self.port), "--bind", "127.0.0.1", "--save", "",
    "--daemonize", "no", "--loglevel", "notice" }
  if self.dir then
    for _, a in ipairs({ "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always" }) do
      argv[#argv + 1] = a
    end
  else
    argv[#argv + 1], argv[#argv + 2] = "--appendonly", "no"
  end
  if self.password then argv[#argv + 1], argv[#argv + 2] = "--requirepass", self.password end
  self.p = process.spawn(argv)
  self.p:wait_output("Ready to accept connections", 30)
  return self
end

-- kill(): SIGKILL, as a crash; returns once it has exited.
function Server:kill()
  self.p:kill("KILL")
  self.p:wait(10)
end

function Server:stop()
  if self.p and self.p:running() then self.p:stop(5) end
end

-- start{password=, dir=} -> a running server: srv.url, srv.port
function M.start(opts)
  opts = opts or {}
  local port = fixture.unused_port()
  local srv = setmetatable({ port = port, password = opts.password, dir = opts.dir,
    url = "redis://" .. (opts.password and (":" .. opts.password .. "@") or "") .. "127.0.0.1:" .. port .. "/0" },
    Server)
  return srv:start()
end

return M
