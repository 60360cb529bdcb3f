-- Real servers for the examples, each on an unused loopback port through
-- sonde.fixture: httpbin under gunicorn, json-server over a temporary db.json.
local fixture = require("sonde.fixture")
local json = require("sonde.json")
local process = require("sonde.process")

local M = {}

-- httpbin() -> the httpbin server of this run, started on first use and
-- stopped when the run ends (fixture.session is pytest's session scope).
function M.httpbin()
  return fixture.session("examples: httpbin", function()
    -- gthread: one process whose threads serve requests side by side, so a
    -- request left sleeping by a timeout example does not hold up the next;
    -- a short graceful timeout, so stopping does not wait for those sleeps.
    return fixture.server { name = "httpbin", health = "/get",
      cmd = { "gunicorn", "--bind", "127.0.0.1:{port}", "--worker-class", "gthread", "--threads", "8",
        "--graceful-timeout", "1", "--log-level", "warning", "httpbin:app" } }
  end)
end

-- temp_dir() -> the path of a new empty directory; remove_dir(path) deletes it.
function M.temp_dir()
  local code, out, err = process.run { "mktemp", "-d", "-t", "sonde-example.XXXXXX" }
  assert(code == 0, "mktemp -d failed: " .. err)
  return (out:gsub("%s+$", ""))
end

function M.remove_dir(dir)
  assert(dir:match("sonde%-example"), "refusing to remove " .. dir) -- only what temp_dir made
  process.run { "rm", "-rf", dir }
end

local JSON_SERVER = "deps/node/node_modules/.bin/json-server" -- installed by scripts/install-deps

-- json_server_missing() -> why json-server cannot run from here, or nil.
function M.json_server_missing()
  local f = io.open(JSON_SERVER)
  if f then
    f:close()
    return nil
  end
  return "json-server is not installed (no " .. JSON_SERVER .. "; sh scripts/install-deps puts it there)"
end

-- json_server(db) -> srv, dir: json-server 0.17 over a fresh db.json holding
-- `db` (a table) in a new temporary directory. The caller stops srv and
-- removes dir; if the server never becomes ready the directory is removed here.
function M.json_server(db)
  local dir = M.temp_dir()
  local f = assert(io.open(dir .. "/db.json", "w"))
  f:write(json.encode(db))
  f:close()
  local ok, srv = pcall(fixture.server, { name = "json-server", health = "/db",
    cmd = { JSON_SERVER, "--port", "{port}", "--host", "127.0.0.1", "--quiet", dir .. "/db.json" } })
  if not ok then
    M.remove_dir(dir)
    error(srv, 0)
  end
  return srv, dir
end

-- redis_missing() -> why redis-server cannot run here, or nil.
function M.redis_missing()
  local ok, code = pcall(process.run, { "redis-server", "--version", timeout = 10 })
  if ok and code == 0 then return nil end
  return "redis-server is not installed (sh scripts/install-deps installs it)"
end

-- redis() -> {url=, port=}: a redis-server of this run on an unused
-- loopback port, keeping nothing on disk; stopped when the run ends.
function M.redis()
  return fixture.session("examples: redis", function()
    local port = fixture.unused_port()
    local p = process.spawn { "redis-server", "--port", tostring(port), "--bind", "127.0.0.1", "--save", "",
      "--appendonly", "no" }
    local task = require("sonde.task")
    while not p:stdout():find("Ready to accept connections", 1, true) do
      if not p:running() then error("redis-server exited: " .. p:stdout() .. p:stderr(), 0) end
      task.sleep(0.01)
    end
    return { url = "redis://127.0.0.1:" .. port .. "/0", port = port }, function() p:stop(5) end
  end)
end

return M
