-- sonde.fixture: real servers in subprocesses, and every way they go wrong.
local fixture = require("sonde.fixture")
local http = require("sonde.http")
local task = require("sonde.task")
local clock = require("sonde.clock")
local server = require("sonde.server")
local support = require("specs.support")

-- python3 -c PY_SERVER port status [url]: answers every GET with status;
-- once it listens, it GETs url (if given) to say so.
local PY_SERVER = [[
import http.server, sys, urllib.request
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = int(sys.argv[2])
        self.send_response(status); self.end_headers(); self.wfile.write(b"health %d" % status)
    def log_message(self, *a): print("request", self.path, flush=True)
print("listening on", sys.argv[1], flush=True)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
if len(sys.argv) > 3: urllib.request.urlopen(sys.argv[3]).read()
server.serve_forever()
]]

describe("fixture.server", function()
  it("starts a server, substitutes {port} in cmd and env, and stops it", function()
    local srv = fixture.server { cmd = { "python3", "-c", PY_SERVER, "{port}", "200" },
      env = { SONDE_PORT_SEEN = "{port}" }, health = "/health", poll_interval = 0.05 }
    assert.matches("^http://127%.0%.0%.1:%d+$", srv.url)
    assert.are.equal(200, http.get(srv.url .. "/x").status)
    assert.matches("listening on " .. srv.port, srv:logs())
    assert.is_true(srv:running())
    srv:stop()
    assert.is_false(srv:running())
    assert.is_false(support.alive(srv.pid))
  end)

  it("appends base_path to the url", function()
    local srv = fixture.server { cmd = { "python3", "-c", PY_SERVER, "{port}", "200" }, base_path = "/api" }
    assert.matches(":%d+/api$", srv.url)
    srv:stop()
  end)

  it("unused_port gives a port nothing listens on", function()
    local port = fixture.unused_port()
    assert.is_true(port > 0 and port < 65536)
    local ok, err = pcall(http.get, "http://127.0.0.1:" .. port .. "/")
    assert.is_false(ok)
    assert.are.equal("connect", err.kind)
  end)
end)

-- A server that answers /exit, then prints why and exits with code 3.
local PY_DYING = [[
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"bye"); self.wfile.flush()
        if self.path == "/exit":
            print("fatal: lost the database", flush=True)
            os._exit(3)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
]]

describe("a fixture server that has died", function()
  it("a request to it says so, with its exit status and last output, not only 'connect error'", function()
    local srv = fixture.server { cmd = { "python3", "-c", PY_DYING, "{port}" }, poll_interval = 0.05 }
    pcall(http.get, srv.url .. "/exit")
    srv.process:wait(30)
    local ok, err = pcall(http.get, srv.url .. "/orders")
    assert.is_false(ok)
    assert.are.equal("connect", err.kind)
    assert.matches("^connect error: GET " .. srv.url .. "/orders: [^\n]+\nthe fixture server python3 %(pid " ..
      srv.pid .. "%) at " .. srv.url .. " exited with code 3; last output:\nfatal: lost the database$", err.message)
  end)

  it("a request to a live one that fails says nothing of the fixture", function()
    local srv = fixture.server { cmd = { "python3", "-c", PY_DYING, "{port}" }, poll_interval = 0.05 }
    local ok, err = pcall(http.get, "http://127.0.0.1:" .. fixture.unused_port() .. "/")
    srv:stop()
    assert.is_false(ok)
    assert.not_matches("fixture server", err.message)
  end)
end)

describe("fixture.server failures", function()
  it("a command that does not exist is one clear line", function()
    local ok, err = pcall(function()
      local s = fixture.server { cmd = { "sonde-no-such-server", "{port}" } }
      return s
    end)
    assert.is_false(ok)
    assert.matches("fixture_spec.lua:%d+: fixture.server: cannot run 'sonde%-no%-such%-server': no such executable " ..
        "in PATH", err)
  end)

  it("a server that exits early is reported at once with its status and output", function()
    local started = task.now()
    local ok, err = pcall(fixture.server, { cmd = { "sh", "-c", "echo starting; echo 'bad config' >&2; exit 3" },
      ready_timeout = 60 })
    assert.is_false(ok)
    assert.matches("exited with code 3 before becoming ready; last output:\nstarting\nbad config", err)
    assert.is_true(task.now() - started < 30, "waited for the ready timeout instead of noticing the exit")
  end)

  it("a health path that answers 500 forever times out with the last answer, and the server is stopped", function()
    -- ready_timeout runs on a clock moved by hand, only once the server
    -- listens: however long python takes to start, it is not what times out
    local listening = task.event()
    local told = server.serve({}, function(s) s:get("/listening", function() listening:set() end) end)
    local m = clock.mocked { autojump = false }
    local starting = task.spawn(fixture.server, { cmd = { "python3", "-c", PY_SERVER, "{port}", "500",
      told.url .. "/listening" }, ready_timeout = 0.5, poll_interval = 0.05 })
    listening:wait()
    m:add(1)
    local ok, err = pcall(starting.join, starting)
    m:close()
    told:close()
    assert.is_false(ok)
    err = task.describe(err)
    assert.matches("did not become ready within 0%.5s %(GET http://127%.0%.0%.1:%d+/health answered 500%)", err)
    assert.matches("listening on", err)
    local pid = tonumber(err:match("%(pid (%d+)%)"))
    assert.is_truthy(pid, err)
    assert.is_false(support.alive(pid))
  end)

  it("a port already in use is refused before anything starts", function()
    local first = fixture.server { cmd = { "python3", "-c", PY_SERVER, "{port}", "200" } }
    local ok, err = pcall(function()
      local s = fixture.server { port = first.port, cmd = { "python3", "-c", PY_SERVER, "{port}", "200" } }
      return s
    end)
    first:stop()
    assert.is_false(ok)
    assert.matches("fixture_spec.lua:%d+: fixture.server: port " .. first.port ..
      " on 127.0.0.1 is already in use %(another server would answer the health checks%)", err)
  end)

  it("refuses a negative duration and a port out of range at the caller's line", function()
    for _, case in ipairs({
      { { ready_timeout = -1 }, "option 'ready_timeout' must be a number of seconds >= 0, got %-1" },
      { { poll_interval = -0.1 }, "option 'poll_interval' must be a number of seconds >= 0, got %-0.1" },
      { { grace = 0 / 0 }, "option 'grace' must be a number of seconds >= 0, got n?a?n" },
      { { port = 70000 }, "option 'port' must be a whole number from 0 to 65535, got 70000" },
    }) do
      case[1].cmd = { "true" }
      local ok, err = pcall(function() local s = fixture.server(case[1]) return s end)
      assert.is_false(ok)
      assert.matches("^[^:]*fixture_spec.lua:%d+: fixture.server: " .. case[2] .. "$", err)
    end
  end)

  it("rejects unknown options and a missing cmd", function()
    assert.has_error(function() fixture.server { cmd = { "x" }, helth = "/" } end,
      "fixture.server: unknown option 'helth' (expected one of: base_path, cmd, cwd, env, grace, health, host, name, "
      .. "poll_interval, port, ready_timeout)")
    local ok, err = pcall(fixture.server, { health = "/" })
    assert.is_false(ok)
    assert.matches("cmd must be an argv list", err)
  end)
end)

describe("fixture.session", function()
  it("makes the value once and returns it again", function()
    local made = 0
    local a = fixture.session("spec-counter", function() made = made + 1 return { n = made } end)
    local b = fixture.session("spec-counter", function() made = made + 1 return { n = made } end)
    assert.are.equal(a, b)
    assert.are.equal(1, made)
  end)

  it("a failing factory raises every time its name is asked for", function()
    assert.has_error(function() fixture.session("spec-broken", function() error("no database") end) end)
    local ok, err = pcall(fixture.session, "spec-broken", function() return 1 end)
    assert.is_false(ok)
    assert.matches("no database", err)
  end)

  it("a factory asking for its own session is one clear error, not a wait forever", function()
    local ok, err = pcall(fixture.session, "spec-self", function() return fixture.session("spec-self") end)
    assert.is_false(ok)
    assert.matches("fixture.session: 'spec%-self' is asked for by its own factory", err)
  end)

  it("tears sessions down when the run ends (checked in a subprocess)", function()
    local code, out = support.sonde("run", support.fixture("session_teardown.lua"))
    assert.are.equal(0, code)
    assert.are.equal("made\nscript done\ntorn down\n", out)
  end)
end)

describe("fixture.session from several tasks", function()
  it("tasks asking while the value is being made all get it", function()
    local made = 0
    local function factory() made = made + 1 task.sleep(0.02) return { n = made } end
    local a, b = task.gather(function() return fixture.session("spec-concurrent", factory) end,
      function() return fixture.session("spec-concurrent", factory) end)
    assert.are.equal(a, b)
    assert.is_truthy(a)
    assert.are.equal(1, made)
  end)
end)
