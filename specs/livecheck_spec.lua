-- sonde.livecheck: faust's LiveCheck over HTTP, against a stub service
-- written with sonde.server. Outcomes, signals, state transitions, reports,
-- the status page, and the faust quirks we fixed.
local livecheck = require("sonde.livecheck")
local server = require("sonde.server")
local http = require("sonde.http")
local json = require("sonde.json")
local task = require("sonde.task")

local function new_app(opts)
  local reports = {}
  opts = opts or {}
  opts.port = opts.port or 0
  if opts.report == nil then opts.report = function(r) reports[#reports + 1] = r end end
  opts.log = opts.log or function() end
  return livecheck.app(opts), reports
end

describe("livecheck outcomes", function()
  local app, reports, case
  before_each(function()
    app, reports = new_app()
    case = app:case { name = "orders", signals = { "placed" }, max_consecutive_failures = 100 }
    app:start()
  end)
  after_each(function() app:stop(1) end)

  it("a run that returns is PASS with its runtime", function()
    function case:run(n) assert.are.equal(3, n) end
    local report = case:trigger("t1", 3):wait(10)
    assert.are.equal("PASS", report.state)
    assert.are.equal("t1", report.test.id)
    assert.are.same({ 3 }, report.test.args)
    assert.is_true(report.runtime >= 0)
    assert.are.equal("PASS", case.status)
  end)

  it("a failed assertion is FAIL, any other error is ERROR", function()
    function case:run() assert.are.equal(1, 2) end
    assert.are.equal("FAIL", case:trigger():wait(10).state)
    function case:run() assert(false) end
    assert.are.equal("FAIL", case:trigger():wait(10).state)
    function case:run() error("boom") end
    local r = case:trigger():wait(10)
    assert.are.equal("ERROR", r.state)
    assert.matches("livecheck_spec.lua:%d+: boom", r.error)
    assert.matches("livecheck_spec.lua", r.traceback)
    assert.are.equal(3, case.consecutive_failures)
    assert.are.same({ FAIL = 2, ERROR = 1 }, case.total_by_state)
  end)

  it("a signal wait that times out is TIMEOUT, after exactly its timeout", function()
    function case:run() self.signals.placed:wait { timeout = 0.2 } end
    local started = task.now()
    local r = case:trigger():wait(10)
    assert.are.equal("TIMEOUT", r.state)
    assert.are.equal("Timed out waiting for signal placed (0.2s)", r.error)
    assert.is_true(task.now() - started >= 0.2, "the timeout fired early")
  end)

  it("an inactive case and an expired execution are SKIP, without a report", function()
    function case:run() error("must not run") end
    case.active = false
    assert.are.equal("SKIP", case:trigger():wait(10).state)
    case.active = true
    case.test_expires = -1
    assert.are.equal("SKIP", case:trigger():wait(10).state)
    assert.are.equal(0, #reports)
    assert.are.equal("INIT", case.status)
  end)
end)

describe("livecheck signals", function()
  local app, case, stub
  before_each(function()
    app = new_app()
    case = app:case { name = "orders", signals = { "placed", "executed" } }
    app:start()
    -- the system under test: answers, then signals back over HTTP later,
    -- with the key it read from the LiveCheck headers
    stub = server.serve({}, function(s)
      s:post("/order", function(req)
        local x = livecheck.current_test()
        case.signals.placed:send(req:json().side) -- in-process, key from the headers
        task.spawn(function()
          task.sleep(0.01)
          http.post(app.url .. "/signal", { json = { case = "orders", signal = "executed", key = x.id,
            value = { filled = true } } })
        end)
        return { status = 201, json = { test = x.id, name = req.headers["livecheck-test-name"],
          expires = req.headers["livecheck-test-expires"] } }
      end)
    end)
  end)
  after_each(function()
    stub:close()
    app:stop(1)
  end)

  it("requests made inside an execution carry the test's headers and signals come back", function()
    local seen
    function case:run(side)
      seen = http.post(stub.url .. "/order", { json = { side = side } }):json()
      assert.are.equal(side, self.signals.placed:wait { timeout = 10 })
      assert.are.same({ filled = true }, self.signals.executed:wait { timeout = 10 })
    end
    local r = case:trigger("abc", "buy"):wait(10)
    assert.are.equal("PASS", r.state, r.error)
    assert.are.equal("abc", seen.test)
    assert.are.equal("orders", seen.name)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", seen.expires)
    assert.is_true(r.signal_latency.executed >= r.signal_latency.placed)
  end)

  it("a handler that received the headers passes them on in its own requests", function()
    local echo = server.serve({}, function(s)
      s:get("/headers", function(req) return { json = { id = req.headers["livecheck-test-id"],
        ts = req.headers["livecheck-test-timestamp"] } } end)
    end)
    local front = server.serve({}, function(s)
      s:get("/", function() return { json = http.get(echo.url .. "/headers"):json() } end)
    end)
    local seen
    function case:run() seen = http.get(front.url .. "/"):json() end
    local x = case:trigger("passed-on")
    x:wait(10)
    front:close()
    echo:close()
    assert.are.equal("passed-on", seen.id)
    assert.are.equal(livecheck.iso8601(x.timestamp), seen.ts)
  end)

  it("maybe_trigger runs the body with the test current when chosen", function()
    case.probability = 1
    function case:run() end
    local inside
    local x = case:maybe_trigger("m1", function(execution)
      inside = livecheck.current_test()
      return execution
    end)
    assert.are.equal("m1", x.id)
    assert.are.equal(x, inside)
    case.probability = 0
    assert.is_nil(case:maybe_trigger(nil, function(execution) return execution end))
  end)

  it("a signal that arrived before the wait is returned at once", function()
    case.signals.placed:send("early", { key = "k1" })
    function case:run() assert.are.equal("early", self.signals.placed:wait { key = "k1", timeout = 0 }) end
    assert.are.equal("PASS", case:trigger():wait(10).state)
  end)

  it("sending outside a test without a key does nothing, as in faust", function()
    assert.is_false(case.signals.placed:send("lost"))
  end)

  it("resolved signals are dropped once their test expires (faust keeps them forever)", function()
    case.test_expires = 0
    case.signals.placed:send(1, { key = "a" })
    case.signals.placed:send(2, { key = "b" })
    assert.are.equal(0, app:signal_count())
  end)

  it("the signal endpoint refuses bad input with the reason", function()
    local function post(body) return http.post(app.url .. "/signal", { body = body }) end
    local r = post("not json")
    assert.are.equal(400, r.status)
    assert.matches("the body must be JSON", r:json().error)
    r = post(json.encode { case = "orders", signal = "placed" })
    assert.are.equal(400, r.status)
    assert.are.equal("missing field 'key'", r:json().error)
    r = post(json.encode { case = "nope", signal = "placed", key = "k" })
    assert.are.equal(404, r.status)
    assert.are.equal('unknown case "nope"', r:json().error)
    r = post(json.encode { case = "orders", signal = "shipped", key = "k" })
    assert.are.equal(404, r.status)
    assert.are.equal('case "orders" has no signal "shipped"', r:json().error)
  end)

  it("the signal endpoint refuses a key no wait could name, and says why in one line (fuzz_signal)", function()
    local function post(body) return http.post(app.url .. "/signal", { json = body }) end
    local r = post { case = "orders", signal = "placed", key = { id = 1 } }
    assert.are.equal(400, r.status)
    assert.are.equal("field 'key' must be a string or a number, got a table of 1 keys", r:json().error)
    r = post { case = "orders", signal = "placed", key = false }
    assert.are.equal("field 'key' must be a string or a number, got false", r:json().error)
    r = post { case = { "orders" }, signal = "placed", key = "k" }
    assert.are.equal("field 'case' must be a string, got a list of 1", r:json().error)
    r = post { case = "orders", signal = "x-test-id: 1\r\nplaced", key = "k" }
    assert.are.equal(404, r.status)
    assert.are.equal('case "orders" has no signal "x-test-id: 1\\r\\nplaced"', r:json().error)
    r = post { case = "orders", signal = "placed", key = 7, value = "paid" }
    assert.are.equal(202, r.status)
    assert.are.equal("paid", case.signals.placed:wait { key = 7, timeout = 0 })
  end)
end)

describe("livecheck suite state", function()
  it("reaching max_consecutive_failures fails the suite with one report", function()
    local app, reports = new_app()
    local case = app:case { name = "c", max_consecutive_failures = 2, state_transition_delay = 3600 }
    function case:run() error("down") end
    app:start()
    for _ = 1, 4 do case:trigger():wait(10) end
    app:stop(1)
    local suite = {}
    for _, r in ipairs(reports) do
      if r.suite then suite[#suite + 1] = r end
    end
    -- the second failure fails the suite; later ones within the delay only
    -- refresh last_fail, so there is exactly one suite report
    assert.are.equal(1, #suite)
    assert.are.equal("Failed after 2 (max=2)", suite[1].error)
    assert.are.equal("FAIL", case.status)
  end)

  it("recovery to PASS waits for state_transition_delay after the last failure", function()
    local app = new_app()
    local case = app:case { name = "c", state_transition_delay = 3600, max_consecutive_failures = 1 }
    app:start()
    function case:run() error("down") end
    case:trigger():wait(10) -- fails the suite: last_fail is now
    function case:run() end
    case:trigger():wait(10)
    assert.are.equal("FAIL", case.status) -- held: the suite failed too recently
    case.state_transition_delay = 0
    case:trigger():wait(10)
    assert.are.equal("PASS", case.status)
    assert.are.equal(0, case.consecutive_failures)
    app:stop(1)
  end)
end)

describe("livecheck get_url and post_url", function()
  local flaky, calls
  before_each(function()
    calls = 0
    flaky = server.serve({}, function(s)
      s:get("/sometimes", function()
        calls = calls + 1
        return calls < 3 and { status = 503 } or "up"
      end)
      s:get("/never", function() return { status = 500 } end)
      s:post("/echo", function(req) return req.body end)
    end)
  end)
  after_each(function() flaky:close() end)

  it("retries with backoff until the service answers", function()
    local app = new_app()
    local case = app:case { name = "c", url_error_delay_min = 0.01, url_error_delay_max = 0.02 }
    assert.are.equal("up", case:get_url(flaky.url .. "/sometimes"))
    assert.are.equal(3, calls)
    assert.are.equal('{"a":1}', case:post_url(flaky.url .. "/echo", { json = { a = 1 } }))
  end)

  it("fails the suite with ServiceDown when retries run out, and returns nil", function()
    local logs = {}
    local app, reports = new_app { log = function(m) logs[#logs + 1] = m end }
    local case = app:case { name = "c", url_error_retries = 2, url_error_delay_min = 0.01,
      url_error_delay_backoff = 2, url_error_delay_max = 0.03 }
    assert.is_nil(case:get_url(flaky.url .. "/never"))
    assert.are.equal("FAIL", case.status)
    assert.matches("^ServiceDown: Cannot send fake test request: HTTP 500", reports[1].error)
    -- the log names the delay it really waits (faust's is one step behind)
    assert.matches("will retry in 0.01s$", logs[1])
    assert.matches("will retry in 0.02s$", logs[2])
  end)
end)

describe("livecheck reports and status", function()
  it("writes JSON lines to a file", function()
    local path = os.tmpname()
    local app = livecheck.app { port = 0, report = path, log = function() end }
    local case = app:case { name = "c" }
    function case:run() end
    app:start()
    case:trigger("one"):wait(10)
    case:trigger("two"):wait(10)
    app:stop(1)
    local lines = {}
    for line in io.lines(path) do lines[#lines + 1] = json.decode(line) end
    os.remove(path)
    assert.are.equal(2, #lines)
    assert.are.equal("one", lines[1].test.id)
    assert.are.equal("PASS", lines[2].state)
  end)

  it("POSTs reports to a URL", function()
    local got = {}
    local sink = server.serve({}, function(s)
      s:post("/reports", function(req) got[#got + 1] = req:json() return { status = 204 } end)
    end)
    local app = livecheck.app { port = 0, report = sink.url .. "/reports", log = function() end }
    local case = app:case { name = "c" }
    function case:run() end
    app:start()
    case:trigger("x"):wait(10)
    app:stop(1)
    sink:close()
    assert.are.equal(1, #got)
    assert.are.equal("x", got[1].test.id)
  end)

  it("a report sink that fails never stops the checks", function()
    local logs = {}
    local app = livecheck.app { port = 0, report = function() error("sink down") end,
      log = function(m) logs[#logs + 1] = m end }
    local case = app:case { name = "c" }
    function case:run() end
    app:start()
    assert.are.equal("PASS", case:trigger():wait(10).state)
    assert.are.equal("PASS", case:trigger():wait(10).state)
    app:stop(1)
    assert.matches("report not delivered: .*sink down", logs[1])
  end)

  it("serves per-case state as JSON and as an HTML page", function()
    local app = new_app { id = "shop" }
    local case = app:case { name = "orders<b>" }
    function case:run() error("broken") end
    app:start()
    case:trigger():wait(10)
    local status = http.get(app.url .. "/status"):json()
    assert.are.equal("ERROR", status.cases["orders<b>"].state)
    assert.are.equal(1, status.cases["orders<b>"].total_failures)
    local page = http.get(app.url .. "/")
    assert.matches("^text/html", page.headers["content-type"])
    assert.matches("<h1>LiveCheck: shop</h1>", page.body)
    assert.matches("orders&lt;b&gt;", page.body)
    local recent = http.get(app.url .. "/reports"):json()
    assert.are.equal(1, #recent)
    assert.are.equal("ERROR", recent[1].state)
    assert.are.same({}, http.get(app.url .. "/reports", { params = { count = 0 } }):json())
    app:stop(1)
  end)
end)

describe("livecheck bad input", function()
  it("refuses bad cases where they are declared", function()
    local app = new_app()
    app:case { name = "dup" }
    assert.has_error(function() app:case { name = "dup" } end, "app:case: a case named 'dup' already exists")
    assert.has_error(function() app:case { name = "p", probability = 1.5 } end,
      "app:case: probability must be within [0, 1], got 1.5")
    assert.has_error(function() app:case { name = "f", frequency = -1 } end,
      "app:case: frequency must be a positive number of seconds, got -1")
    assert.has_error(function() app:case { name = "x", warn_stalled = 3 } end,
        "app:case: unknown option 'warn_stalled'")
    assert.has_error(function() app:case {} end, "app:case: a case needs a name")
  end)

  it("an app needs its table of options: livecheck.app(nil) is one line at the caller's", function()
    for _, bad in ipairs({ "nil", "string" }) do
      local ok, err = pcall(function() local app = livecheck.app(bad ~= "nil" and "orders" or nil) return app end)
      assert.is_false(ok)
      assert.matches("^[^:]*livecheck_spec.lua:%d+: livecheck.app: expected a table of options {id=, port=, report=}, "
        .. "got " .. bad .. "$", err)
    end
  end)

  it("a case without run cannot be triggered", function()
    local app = new_app()
    local case = app:case { name = "norun" }
    local ok, err = pcall(function() local x = case:trigger() return x end)
    assert.is_false(ok)
    assert.matches("livecheck_spec.lua:%d+: case norun has no run function", err)
  end)

  it("waiting for a signal outside a test needs a key", function()
    local app = new_app()
    local case = app:case { name = "c", signals = { "s" } }
    assert.has_error(function() case.signals.s:wait { timeout = 0 } end)
  end)

  it("a misused signal or maybe_trigger is one line at the caller's", function()
    local app = new_app()
    local case = app:case { name = "c", signals = { "s" } }
    local function raised(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      return err
    end
    assert.matches('livecheck_spec.lua:%d+: signal s:send: expected the options {key=} after the value, got "k"$',
      raised(function() case.signals.s:send(1, "k") end))
    assert.matches("livecheck_spec.lua:%d+: signal s:wait: expected the options {key=, timeout=}, got 2$",
      raised(function() case.signals.s:wait(2) end))
    assert.matches('livecheck_spec.lua:%d+: signal s:wait: timeout must be a number of seconds >= 0, got "2"$',
      raised(function() case.signals.s:wait { key = "k", timeout = "2" } end))
    assert.matches("livecheck_spec.lua:%d+: signal s:wait: timeout must be a number of seconds >= 0, got %-1$",
      raised(function() case.signals.s:wait { key = "k", timeout = -1 } end))
    assert.matches("livecheck_spec.lua:%d+: signal wait: call it as signal:wait%(...%), with a colon$",
      raised(function() case.signals.s.wait { key = "k" } end))
    assert.matches("livecheck_spec.lua:%d+: maybe_trigger: expected fn%(execution%) as the second argument, got nil "
      .. "%(the id comes first: maybe_trigger%(nil, fn%) for a UUID%)$",
      raised(function() case:maybe_trigger(function() end) end))
  end)
end)

describe("sonde live", function()
  local support = require("specs.support")
  local process = require("sonde.process")

  local function start(env)
    local p = process.spawn { support.bin, "live", support.fixture("livecheck/live_app.lua"), env = env }
    return p, p:wait_output("serving (http://[%d%.:]+)", 30, "stderr")
  end

  local function wait_state(url, want)
    local state
    for _ = 1, 2000 do
      state = http.get(url .. "/status"):json().cases.tick.state
      if state == want then return state end
      task.sleep(0.01)
    end
    return state
  end

  it("runs an app until SIGINT, then drains and exits 0 when every case is healthy", function()
    local p, url = start()
    assert.are.equal("PASS", wait_state(url, "PASS"))
    p:kill("INT")
    assert.are.equal(0, p:wait(30))
    assert.matches("stopping: draining executions and flushing reports", p:stderr())
  end)

  it("exits 1 naming the cases that are failing at exit", function()
    local p, url = start { LIVE_FAIL = "1" }
    assert.are.equal("FAIL", wait_state(url, "FAIL"))
    p:kill("TERM")
    assert.are.equal(1, p:wait(30))
    assert.matches("failing at exit: tick", p:stderr())
  end)

  it("a file that does not return an app is one clear line, exit 2", function()
    local code, _, err = support.sonde("live", support.fixture("args.lua"))
    assert.are.equal(2, code)
    assert.matches("expected the file to return a livecheck app", err)
  end)
end)

describe("livecheck on virtual time", function()
  local clock = require("sonde.clock")

  it("a case that receives no tests for warn_stalled_after goes STALL, with a suite report", function()
    clock.virtual(function()
      local app, reports = new_app()
      local case = app:case { name = "quiet", warn_stalled_after = 1800 }
      function case:run() end
      app:start()
      task.sleep(3 * 1800 + 1)
      assert.are.equal("STALL", case.status)
      assert.matches("^Test stalled! Last received %d+s ago %(warn_stalled_after=1800%)%.$", reports[1].error)
      app:stop(1)
    end)
  end)

  it("STALL comes at the first check that finds warn_stalled_after passed, also exactly passed", function()
    clock.virtual(function()
      local stalled_at = {}
      local app = new_app { report = function(r)
        if r.state == "STALL" then stalled_at[#stalled_at + 1] = task.now() end
      end }
      local case = app:case { name = "quiet", warn_stalled_after = 100 }
      function case:run() end
      app:start()
      -- faust's checker starts its clock after one period, then looks every
      -- period: at 200, exactly 100s have passed without a test
      task.sleep(250)
      case:trigger():wait() -- the check at 300 finds it 50s old, the one at 400 150s
      task.sleep(200)
      app:stop(1)
      assert.are.same({ 200, 400 }, stalled_at)
    end)
  end)

  it("fake traffic every `frequency` seconds keeps it out of STALL, with medians of the intervals", function()
    clock.virtual(function()
      local app = new_app()
      local case = app:case { name = "busy", frequency = 60, warn_stalled_after = 300 }
      local runs = 0
      function case:run() runs = runs + 1 task.sleep(2) end
      function case:make_fake_request() self:trigger() end
      app:start()
      task.sleep(3600)
      assert.is_true(runs >= 59, "only " .. runs .. " fake requests in an hour")
      assert.are.equal("PASS", case.status)
      local s = case:status_view()
      assert.are.equal(60, s.frequency_median)
      assert.are.equal(2, s.runtime_median)
      assert.are.equal(0, s.latency_median)
      app:stop(1)
    end)
  end)

  it("recovery waits exactly state_transition_delay after the suite failed", function()
    clock.virtual(function()
      local app = new_app()
      local case = app:case { name = "c", max_consecutive_failures = 1, state_transition_delay = 60 }
      app:start()
      function case:run() error("down") end
      case:trigger():wait()
      function case:run() end
      task.sleep(59)
      case:trigger():wait()
      assert.are.equal("FAIL", case.status)
      task.sleep(2)
      case:trigger():wait()
      assert.are.equal("PASS", case.status)
      app:stop(1)
    end)
  end)

  it("get_url backs off 0.5, 0.75, 1.125 ... capped at 5 seconds", function()
    local never = server.serve({}, function(s) s:get("/", function() return { status = 503 } end) end)
    clock.virtual(function()
      local app = new_app()
      local case = app:case { name = "c" }
      local t0 = task.now()
      assert.is_nil(case:get_url(never.url .. "/"))
      -- 0.5 + 0.75 + 1.125 + 1.6875 + 2.53125 + 3.796875 + 4 x 5 (faust
      -- multiplies before its first sleep and logs one step behind)
      assert.is_true(math.abs(task.now() - t0 - 30.390625) < 1e-6, "slept " .. (task.now() - t0))
    end)
    never:close()
  end)
end)

describe("livecheck stopping", function()
  it("stop() ends fake traffic and nothing it spawned stays behind", function()
    local clock = require("sonde.clock")
    clock.virtual(function()
      local app = new_app()
      local case = app:case { name = "c", frequency = 1 }
      local calls = 0
      function case:run() end
      function case:make_fake_request() calls = calls + 1 self:trigger() end
      app:start()
      task.sleep(10.5)
      app:stop(1)
      local at_stop = calls
      task.sleep(100)
      assert.are.equal(at_stop, calls)
      assert.is_nil(next(app.tasks))
    end)
  end)

  it("execution ids differ between processes (not math.random's fixed sequence)", function()
    local support = require("specs.support")
    local script = 'print(require("sonde.livecheck").uuid4())'
    local _, a = support.sonde({ stdin = script })
    local _, b = support.sonde({ stdin = script })
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+\n$", a)
    assert.are_not.equal(a, b)
  end)
end)
