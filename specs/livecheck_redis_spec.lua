-- LiveCheck across processes on Redis Streams, against a real redis-server
-- on an unused loopback port: three `sonde live` processes of one app share
-- signals, case state and reports; Redis restarted mid-run loses nothing;
-- bad URLs, passwords and stream entries are one line each.
local livecheck = require("sonde.livecheck")
local redis = require("sonde.redis")
local http = require("sonde.http")
local json = require("sonde.json")
local task = require("sonde.task")
local process = require("sonde.process")
local support = require("specs.support")
local redis_server = require("specs.redis_server")

local missing = redis_server.missing()
local app_count = 0

-- A fresh app id per test, so that tests share no stream or hash.
local function new_app_id()
  app_count = app_count + 1
  return string.format("spec-%d-%d", app_count, math.floor(task.time() * 1000))
end

-- start_process(url, app_id) -> {p=, url=, control=}: one `sonde live`
-- process of the bus fixture, once it serves.
local function start_process(bus_url, app_id)
  local p = process.spawn { support.bin, "live", support.fixture("livecheck/bus_app.lua"), "--bus", bus_url,
    env = { APP_ID = app_id } }
  local url = p:wait_output("serving (http://[%d%.:]+)", 30, "stderr")
  local control = p:wait_output("control (http://[%d%.:]+)", 30, "stderr")
  return { p = p, url = url, control = control }
end

local function stop_all(procs)
  for _, x in ipairs(procs) do
    if x.p:running() then x.p:kill("TERM") end
  end
  for _, x in ipairs(procs) do x.p:wait(30) end
end

-- next_report(r, app_id, after, pred) -> report, id: reads the app's report
-- stream after id `after` until a report matches pred (waits on XREAD
-- BLOCK, up to 60 s).
local function next_report(r, app_id, after, pred)
  local key = "livecheck:" .. app_id .. ":reports"
  local deadline = task.now() + 60
  while task.now() < deadline do
    local got = r:xread({ [key] = after }, { block = 60 })
    for _, e in ipairs(got and got[key] or {}) do
      after = e.id
      local report = json.decode(e.fields.report)
      if pred(report) then return report, after end
    end
  end
  error("no matching report on " .. key .. " within 60 s")
end

local function reports_of(r, app_id)
  local out = {}
  for _, e in ipairs(r:xrange("livecheck:" .. app_id .. ":reports")) do out[#out + 1] = json.decode(e.fields.report) end
  return out
end

local function status(x) return http.get(x.url .. "/status"):json() end

-- The cases of a status, without what is relative to the moment it was
-- asked (seconds_since_last_fail) or this process's own (in_flight).
local function shared(st)
  for _, c in pairs(st.cases) do c.seconds_since_last_fail, c.in_flight = nil, nil end
  return st.cases
end

-- esc(s) -> s as a pattern that matches it literally
local function esc(s) return (s:gsub("%p", "%%%0")) end

-- The stderr of `sonde live` without the fixture's "control URL" line.
local function without_control(err) return (err:gsub("^control [^\n]*\n", "")) end

describe("livecheck on a Redis bus across three processes", function()
  local srv, r
  setup(function()
    if missing then return end
    srv = redis_server.start()
    r = redis.connect(srv.url)
  end)
  teardown(function()
    if r then r:close() end
    if srv then srv:stop() end
  end)

  local function deployment(n)
    if missing then pending(missing) end
    local id = new_app_id()
    local procs = {}
    finally(function() stop_all(procs) end)
    for i = 1, n do procs[i] = start_process(srv.url, id) end
    return id, procs
  end

  it("a case triggered on A is signalled from B in Lua and from C over HTTP, and passes", function()
    local id, procs = deployment(3)
    local a, b, c = procs[1], procs[2], procs[3]
    assert.are.equal(202, http.post(a.control .. "/trigger", { json = { id = "t1", side = "buy" } }).status)
    assert.are.equal(202, http.post(b.control .. "/send",
      { json = { signal = "placed", key = "t1", value = { side = "buy" } } }).status)
    assert.are.equal(202, http.post(c.url .. "/signal",
      { json = { case = "order", signal = "executed", key = "t1", value = { side = "buy" } } }).status)
    local report = next_report(r, id, "0", function(rep) return rep.test ~= json.null and rep.test.id == "t1" end)
    assert.are.equal("PASS", report.state, tostring(report.error))
    assert.are.same({ "placed", "executed" }, (function()
      local names = {}
      for name in pairs(report.signal_latency) do names[#names + 1] = name end
      table.sort(names, function(x, y) return x > y end)
      return names
    end)())
    -- every process shows the whole deployment
    local sa, sb, sc = status(a), status(b), status(c)
    assert.are.equal("PASS", sa.cases.order.state)
    assert.are.same({ PASS = 2 }, sa.cases.order.total_by_state) -- the recovery from INIT counts, as in-process
    assert.are.same(shared(sa), shared(sb))
    assert.are.same(shared(sa), shared(sc))
    assert.are.equal(1, sa.reports)
    assert.are.equal(sa.reports, sb.reports)
    assert.are.equal(sa.reports, sc.reports)
    assert.are.equal("redis", sa.bus.kind)
    -- and any of them serves every process's reports
    local served = http.get(c.url .. "/reports"):json()
    assert.are.equal("t1", served[#served].test.id)
  end)

  it("consecutive failures on different processes add up to the suite failure", function()
    local id, procs = deployment(3)
    local after = "0"
    for i, x in ipairs(procs) do
      http.post(x.control .. "/trigger", { json = { id = "f" .. i, side = "sell", fail = true } })
      local report
      report, after = next_report(r, id, after, function(rep)
        return rep.test ~= json.null and rep.test.id == "f" .. i
      end)
      assert.are.equal("ERROR", report.state)
    end
    local suite = next_report(r, id, "0", function(rep) return rep.suite == true end)
    assert.are.equal("Failed after 3 (max=3)", suite.error) -- each process saw one failure: the count is shared
    local sa = status(procs[1])
    assert.are.equal("FAIL", sa.cases.order.state)
    assert.are.equal(3, sa.cases.order.consecutive_failures)
    assert.are.same(shared(sa), shared(status(procs[2])))
    assert.are.same(shared(sa), shared(status(procs[3])))
    local n = 0
    for _, rep in ipairs(reports_of(r, id)) do
      if rep.suite then n = n + 1 end
    end
    assert.are.equal(1, n, "one suite report, from whichever process reached the count")
  end)

  it("a signal sent before the wait starts is not lost", function()
    local id, procs = deployment(2)
    local a, b = procs[1], procs[2]
    http.post(b.url .. "/signal", { json = { case = "order", signal = "placed", key = "early",
        value = { side = "buy" } } })
    http.post(b.url .. "/signal",
      { json = { case = "order", signal = "executed", key = "early", value = { side = "buy" } } })
    -- both are in the stream, so every process has read them or will
    assert.are.equal(2, r:xlen("livecheck:" .. id .. ":signals"))
    http.post(a.control .. "/trigger", { json = { id = "early", side = "buy" } })
    local report = next_report(r, id, "0", function(rep) return rep.test ~= json.null and rep.test.id == "early" end)
    assert.are.equal("PASS", report.state, tostring(report.error))
  end)
end)

describe("sonde live --reports", function()
  it("follows every process's reports as JSON lines and serves them with the deployment's status", function()
    if missing then pending(missing) end
    local srv = redis_server.start()
    finally(function() srv:stop() end)
    local id = new_app_id()
    local procs = {}
    finally(function() stop_all(procs) end)
    procs[1] = start_process(srv.url, id)
    local a = procs[1]
    http.post(a.control .. "/trigger", { json = { id = "v1", side = "buy", fail = true } })
    local viewer = process.spawn { support.bin, "live", "--reports", srv.url, "--app", id }
    procs[2] = { p = viewer }
    local url = viewer:wait_output("serving (http://[%d%.:]+)", 30, "stderr")
    local line = viewer:read_line(30)
    local report = json.decode(line)
    assert.are.equal("v1", report.test.id)
    assert.are.equal("ERROR", report.state)
    local st = http.get(url .. "/status"):json()
    assert.are.equal(id, st.id)
    assert.are.equal("ERROR", st.cases.order.state)
    assert.are.equal(1, st.cases.order.consecutive_failures)
    assert.are.equal(1, st.reports)
    local served = http.get(url .. "/reports"):json()
    assert.are.equal("v1", served[1].test.id)
    viewer:kill("INT")
    assert.are.equal(0, viewer:wait(30))
  end)

  it("without --app, or with an app file too, is one line and exit 2", function()
    local code, _, err = support.sonde("live", "--reports", "redis://127.0.0.1:1/0")
    assert.are.equal(2, code)
    assert.are.equal("sonde live: --reports needs --app ID, the id of the livecheck app\n", err)
    code, _, err = support.sonde("live", "--reports", "redis://127.0.0.1:1/0", "--app", "x", "app.lua")
    assert.are.equal(2, code)
    assert.are.equal("sonde live: --reports takes no app file or other argument, got 'app.lua'\n", err)
    code, _, err = support.sonde("live", "--reports", "nope://h", "--app", "x")
    assert.are.equal(2, code)
    assert.matches("^sonde live: %-%-reports: unsupported scheme 'nope://'", err)
  end)
end)

describe("livecheck on a Redis bus when Redis restarts", function()
  it("processes reconnect and read on from their last id: nothing lost, nothing twice", function()
    if missing then pending(missing) end
    -- an append-only file keeps streams and hashes across the kill, as a
    -- deployment that must not lose its state runs Redis
    local dir = support.temp_dir("redis")
    local srv = redis_server.start { dir = dir }
    finally(function() srv:stop() end)
    local id = new_app_id()
    local procs = {}
    finally(function() stop_all(procs) end)
    for i = 1, 3 do procs[i] = start_process(srv.url, id) end
    local a, b, c = procs[1], procs[2], procs[3]
    local r = redis.connect { url = srv.url, timeout = 60 }
    finally(function() r:close() end)

    http.post(a.control .. "/trigger", { json = { id = "r1", side = "buy" } })
    http.post(b.control .. "/send", { json = { signal = "placed", key = "r1", value = { side = "buy" } } })
    srv:kill()
    -- sent while Redis is down: the sends wait for it to come back
    local posted = task.spawn(function()
      return http.post(c.url .. "/signal",
        { json = { case = "order", signal = "executed", key = "r1", value = { side = "buy" } }, timeout = 60 }).status
    end)
    local sent = task.spawn(function()
      return http.post(b.control .. "/send", { json = { signal = "placed", key = "r2", value = { side = "sell" } },
        timeout = 60 }).status
    end)
    srv:start()
    assert.are.equal(202, posted:join(60))
    assert.are.equal(202, sent:join(60))
    local report = next_report(r, id, "0", function(rep) return rep.test ~= json.null and rep.test.id == "r1" end)
    assert.are.equal("PASS", report.state, tostring(report.error))
    -- r2's signal came during the outage; its test starts after and passes
    http.post(a.control .. "/trigger", { json = { id = "r2", side = "sell" } })
    http.post(c.url .. "/signal", { json = { case = "order", signal = "executed", key = "r2",
        value = { side = "sell" } } })
    report = next_report(r, id, "0", function(rep) return rep.test ~= json.null and rep.test.id == "r2" end)
    assert.are.equal("PASS", report.state, tostring(report.error))
    local count = 0
    for _, rep in ipairs(reports_of(r, id)) do
      assert.are.equal("PASS", rep.state)
      count = count + 1
    end
    assert.are.equal(2, count, "each execution reported once")
    local sa = status(a)
    assert.are.same({ PASS = 3 }, sa.cases.order.total_by_state)
    assert.are.same(shared(sa), shared(status(b)))
    assert.are.same(shared(sa), shared(status(c)))
    stop_all(procs)
    assert.matches("bus: lost redis://127%.0%.0%.1:%d+/0 %(", a.p:stderr())
    assert.matches("bus: reading livecheck:" .. esc(id) .. ":signals again, after %d+%-%d+", a.p:stderr())
  end)
end)

describe("livecheck on a Redis bus: bad input", function()
  it("Redis unreachable at start is one line and exit 2", function()
    local port = require("sonde.fixture").unused_port()
    local code, _, err = support.sonde("live", support.fixture("livecheck/bus_app.lua"), "--bus",
      "redis://127.0.0.1:" .. port .. "/0")
    assert.are.equal(2, code)
    assert.are.equal("sonde live: livecheck: bus redis://127.0.0.1:" .. port .. "/0: cannot connect to 127.0.0.1:" ..
      port .. ": Connection refused\n", without_control(err))
  end)

  it("a malformed bus URL is one line, on the command line and in the app file", function()
    local code, _, err = support.sonde("live", support.fixture("livecheck/bus_app.lua"), "--bus", "redis//nope")
    assert.are.equal(2, code)
    assert.are.equal("sonde live: --bus: malformed URL 'redis//nope': expected " ..
      "redis://[[user]:password@]host[:port][/db][?timeout=S&connect_timeout=S]\n", err)
    local ok, msg = pcall(function() livecheck.app { id = "x", bus = "redis://h:port/0" } end)
    assert.is_false(ok)
    assert.matches("^specs/livecheck_redis_spec%.lua:%d+: livecheck%.app: bus: malformed URL 'redis://h:port/0': " ..
      "the port must be a number", msg)
    ok, msg = pcall(function() livecheck.app { id = "x", bus = 42 } end)
    assert.is_false(ok)
    assert.matches("^specs/livecheck_redis_spec%.lua:%d+: livecheck%.app: bus must be a redis:// URL", msg)
  end)

  it("a wrong password is one line and exit 2", function()
    if missing then pending(missing) end
    local srv = redis_server.start { password = "right" }
    finally(function() srv:stop() end)
    local code, _, err = support.sonde("live", support.fixture("livecheck/bus_app.lua"), "--bus",
      "redis://:wrong@127.0.0.1:" .. srv.port .. "/0")
    assert.are.equal(2, code)
    assert.matches("^sonde live: livecheck: bus redis://:%[redacted%]@127%.0%.0%.1:%d+/0: cannot connect to " ..
      "127%.0%.0%.1:%d+: AUTH failed: WRONGPASS[^\n]*\n$", without_control(err))
    assert.is_nil(err:find("wrong", 1, true), "the password is not shown")
  end)

  it("stream entries another writer left without fields are logged once each and skipped", function()
    if missing then pending(missing) end
    local srv = redis_server.start()
    finally(function() srv:stop() end)
    local logs = {}
    local app = livecheck.app { id = new_app_id(), port = 0, report = false, bus = srv.url,
      log = function(m) logs[#logs + 1] = m end }
    local case = app:case { name = "order", signals = { "placed" } }
    function case:run() return self.signals.placed:wait { timeout = 60 } end
    app:start()
    finally(function() app:stop(1) end)
    local r = redis.connect(srv.url)
    finally(function() r:close() end)
    local key = "livecheck:" .. app.id .. ":signals"
    local x = case:trigger("k1")
    local bad1 = r:xadd(key, "*", { case = "order", key = "k1" })
    local bad2 = r:xadd(key, "*", { case = "order", signal = "placed", key = "k1", value = "{not json" })
    r:xadd(key, "*", { case = "nosuch", signal = "placed", key = "k1", value = "1" })
    r:xadd(key, "*", { case = "order", signal = "placed", key = "k1", value = json.encode({ ok = true }) })
    local report = x:wait(30)
    assert.are.equal("PASS", report.state, tostring(report.error))
    local text = table.concat(logs, "\n")
    assert.matches("bus: skipped entry " .. esc(bad1) .. " of " .. esc(key) .. ": missing field 'signal'", text)
    assert.matches("bus: skipped entry " .. esc(bad2) .. " of " .. esc(key) .. ": the value is not JSON: {not json",
        text)
    assert.matches("signal nosuch%.placed dropped: this app has no such case", text)
    local _, n = text:gsub("skipped entry", "")
    assert.are.equal(2, n)
  end)
end)
