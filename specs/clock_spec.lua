-- sonde.clock: mocked and virtual time, assert_sleeps_for, dominos, and the
-- seeded interleaving of --interleave. Nothing here measures wall-clock
-- time: "at once" is shown by ordering virtual events before a real timer
-- (or a real HTTP response) that they would otherwise have had to wait for.
local task = require("sonde.task")
local clock = require("sonde.clock")
local loop = require("sonde.c.loop")
local http = require("sonde.http")
local servers = require("specs.servers")
local support = require("specs.support")

-- A real-time guard started before the clock: returns a function that says
-- whether `seconds` of real time have passed (it is a timeout, so it does
-- not hold virtual time) and stops it.
local function real_guard(seconds)
  local never = task.event()
  local fired, armed = false, false
  local guard = task.spawn(function()
    armed = true -- the wait below arms its timer before yielding
    if not pcall(never.wait, never, seconds) then fired = true end
  end)
  repeat task.sleep(0) until armed -- on the real clock, before any mocked one
  return function()
    never:set()
    guard:join()
    return fired
  end
end

-- raised(fn) -> the error fn raised; fails when it returns
local function raised(fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, got none")
  return err
end

describe("clock.mocked", function()
  local m
  after_each(function()
    if m then m:close() end
    m = nil
  end)

  it("seed example: a call 3 s later happens at 3 with no real waiting", function()
    local real_passed = real_guard(5)
    m = clock.mocked()
    assert.are.equal(0, task.now())
    assert.are.equal(0, m:now())
    local event = task.event()
    task.spawn(function()
      task.sleep(3)
      event:set()
    end)
    event:wait()
    assert.are.equal(3, task.now())
    assert.are.same({ 3 }, m.called_times)
    m:close()
    assert.is_false(real_passed(), "the real 5 s guard fired before virtual time reached 3")
  end)

  it("fires timers due in one step in deadline order, then creation order", function()
    -- machinery runs these in registration order (1.0, 1.0, 0.999); the
    -- contract orders them by deadline
    m = clock.mocked { autojump = false }
    local order = {}
    for _, name in ipairs({ "a@1.0", "b@1.0", "c@0.999" }) do
      task.spawn(function()
        task.sleep(tonumber(name:match("@(.*)")))
        order[#order + 1] = name
      end)
    end
    m:add(1)
    assert.are.same({ "c@0.999", "a@1.0", "b@1.0" }, order)
    assert.are.same({ 1, 1, 1 }, m.called_times)
  end)

  it("fires timers started meanwhile within the same add", function()
    m = clock.mocked { autojump = false }
    local seen = {}
    task.spawn(function()
      task.sleep(0.5)
      seen[#seen + 1] = task.now()
      task.spawn(function()
        task.sleep(0.3)
        seen[#seen + 1] = task.now()
      end)
    end)
    m:add(1)
    assert.are.same({ 0.5, 0.8 }, seen)
    assert.are.same({ 0.5, 0.8 }, m.called_times)
    assert.are.equal(1, m:now())
  end)

  it("lets the tasks a timer wakes run to their next wait before the next timer fires", function()
    m = clock.mocked { autojump = false }
    local order = {}
    local relay = task.event()
    task.spawn(function()
      task.sleep(1)
      order[#order + 1] = "first timer"
      relay:set()
      task.sleep(0) -- still runs before the second timer: it never waits on time
      order[#order + 1] = "first, after a yield"
    end)
    task.spawn(function()
      relay:wait()
      order[#order + 1] = "woken by the first"
    end)
    task.spawn(function()
      task.sleep(1)
      order[#order + 1] = "second timer"
    end)
    m:add(1)
    assert.are.same({ "first timer", "woken by the first", "first, after a yield", "second timer" }, order)
  end)

  it("add rounds steps half up: 0.25 at precision 0.1 is 0.3, not banker's 0.2", function()
    m = clock.mocked()
    m:add(0.25)
    assert.are.equal(0.3, m:now())
    m:add(0.15) -- 1.4999999999999998 steps by division
    assert.are.equal(0.5, m:now())
    m:add(0.05)
    assert.are.equal(0.6, m:now())
    m:add(0.04)
    assert.are.equal(0.6, m:now())
    m:add(0)
    assert.are.equal(0.6, m:now())
  end)

  it("moves in steps from start_time: a timer fires at the first step at or after its deadline", function()
    m = clock.mocked { start_time = 100, precision = 0.5 }
    task.sleep(1.2)
    assert.are.equal(101.5, task.now())
    m:close()
    m = clock.mocked()
    task.sleep(2.5)
    assert.are.equal(2.5, task.now())
    assert.are.same({ 2.5 }, m.called_times)
    m:close()
    m = clock.mocked { start_time = 0.1 }
    task.sleep(0.2) -- due at 0.30000000000000004, step 3.0000000000000004: noise, not a step more
    assert.are.equal(0.3, task.now())
    assert.are.same({ 0.3 }, m.called_times)
  end)

  it("without autojump, time moves only through add", function()
    m = clock.mocked { autojump = false }
    local woke = false
    task.spawn(function()
      task.sleep(5)
      woke = true
    end)
    for _ = 1, 10 do task.sleep(0) end
    assert.is_false(woke)
    assert.are.equal(0, task.now())
    m:add(4.9)
    assert.is_false(woke)
    m:add(0.1)
    assert.is_true(woke)
    assert.are.equal(5, task.now())
  end)

  it("runs timeouts of waits and task.timeout on virtual time", function()
    m = clock.mocked()
    local never = task.event()
    local ok, err = pcall(never.wait, never, 30)
    assert.is_false(ok)
    assert.is_true(task.is_timeout(err))
    assert.are.equal(30, task.now())
    ok, err = pcall(task.timeout, 10, task.sleep, 20)
    assert.is_false(ok)
    assert.matches("^timeout", tostring(err))
    assert.are.equal(40, task.now())
  end)

  it("task.time() starts at start_time and moves with virtual time, as task.now() (machinery's time.time())", function()
    m = clock.mocked { start_time = 1000 }
    assert.are.equal(1000, task.time())
    task.sleep(3600)
    assert.are.equal(4600, task.time())
    m:add(2.5)
    assert.are.equal(4602.5, task.time())
    assert.are.equal(task.now(), task.time())
    m:close()
    assert.is_true(task.time() > 1e9) -- the real epoch again
    m = clock.mocked()
    assert.are.equal(0, task.time())
  end)

  it("close brings real time back; a virtual timer still pending keeps its distance on the real clock", function()
    m = clock.mocked { autojump = false }
    local sleeper = task.spawn(task.sleep, 0.01)
    task.sleep(0) -- it has started its sleep
    assert.is_true(loop.is_virtual())
    m:close()
    assert.is_false(loop.is_virtual())
    assert.are.equal(0, m:now()) -- frozen at close
    sleeper:join(5) -- a 10 ms real sleep now
    m:close() -- twice is fine
  end)

  it("is closed at the end of a test that left it open", function()
    local code, out = support.sonde("test", "-o", "tap", support.fixture("clock/left_open.lua"))
    assert.are.equal(0, code, out)
    assert.matches("ok 1 %- leaves a mocked clock open", out)
    assert.matches("ok 2 %- runs on real time again", out)
  end)

  it("bad input: negative or non-number add, precision <= 0, a second clock", function()
    m = clock.mocked()
    local ok, err = pcall(function() m:add(-1) end)
    assert.is_false(ok)
    assert.matches("clock_spec.lua:%d+: clock: add expects a number of seconds >= 0, got %-1", err)
    err = raised(function() m:add("3") end)
    assert.matches("clock_spec.lua:%d+: clock: add expects a number of seconds >= 0, got string", err)
    err = raised(function() m:add(0 / 0) end)
    assert.matches("got nan", err)
    err = raised(function() clock.mocked() end)
    assert.matches("clock_spec.lua:%d+: clock.mocked: a mocked clock is already active %(opened at " ..
        ".*clock_spec.lua:%d+%)",
      err)
    m:close()
    err = raised(function() m:add(1) end)
    assert.matches("clock_spec.lua:%d+: clock: add on a mocked clock that is closed", err)
    err = raised(function() clock.mocked { precision = 0 } end)
    assert.matches("clock_spec.lua:%d+: clock.mocked: precision must be greater than 0, got 0", err)
    err = raised(function() clock.mocked { precision = -0.1 } end)
    assert.matches("precision must be greater than 0, got %-0.1", err)
    err = raised(function() clock.mocked { precison = 1 } end)
    assert.matches("unknown option 'precison'", err)
    err = raised(function() clock.mocked(5) end)
    assert.matches("expected a table of options, got number", err)
    assert.is_false(loop.is_virtual())
  end)
end)

describe("clock.virtual", function()
  it("task.time() goes on from the real epoch at the switch, or starts at start_time", function()
    local before = task.time()
    local t0, t1 = clock.virtual(function()
      local t = task.time()
      task.sleep(3600)
      return t, task.time()
    end)
    assert.is_true(t0 >= before)
    assert.are.equal(3600, t1 - t0)
    assert.are.same({ 50, 60 }, { clock.virtual({ start_time = 50 }, function()
      local t = task.time()
      task.sleep(10)
      return t, task.time()
    end) })
  end)

  it("task.sleep(3600) returns at once with task.now() one hour later", function()
    local real_passed = real_guard(5)
    local t0, t1 = clock.virtual(function()
      local t0 = task.now()
      task.sleep(3600)
      return t0, task.now()
    end)
    assert.are.equal(3600, t1 - t0)
    assert.is_false(real_passed())
    assert.is_false(loop.is_virtual())
  end)

  it("passes arguments, returns results, and restores real time when fn raises", function()
    assert.are.same({ 5, "x" }, { clock.virtual(function(a, b) return a + b, "x" end, 2, 3) })
    local obj = { code = 7 }
    local ok, err = pcall(clock.virtual, function() error(obj) end)
    assert.is_false(ok)
    assert.are.equal(obj, err)
    assert.is_false(loop.is_virtual())
    assert.is_nil(clock.current())
  end)

  it("jumps exactly to each deadline, in order, across tasks", function()
    local seen = {}
    clock.virtual(function()
      local ts = {}
      for _, d in ipairs({ 30, 0.001, 7, 7 }) do
        ts[#ts + 1] = task.spawn(function()
          task.sleep(d)
          seen[#seen + 1] = d .. "@" .. task.now()
        end)
      end
      for _, t in ipairs(ts) do t:join() end
    end)
    assert.are.same({ "0.001@0.001", "7@7", "7@7", "30@30" }, seen)
  end)

  it("a real sleep started before the clock holds virtual time until it ends; a real timeout does not", function()
    local order = {}
    local real_sleeper = task.spawn(function()
      task.sleep(0.05)
      order[#order + 1] = "real sleep done"
    end)
    task.sleep(0) -- its sleep has started, on real time
    local real_passed = real_guard(5) -- a real timeout: does not hold
    clock.virtual(function()
      task.sleep(1)
      order[#order + 1] = "virtual sleep done"
    end)
    real_sleeper:join()
    assert.are.same({ "real sleep done", "virtual sleep done" }, order)
    assert.is_false(real_passed())
  end)

  it("the runaway guard raises in the task that opened the clock", function()
    local ok, err = pcall(clock.virtual, { runaway_limit = 1000 }, function()
      while true do task.sleep(1) end
    end)
    assert.is_false(ok)
    assert.matches("clock: 1000 timers fired on virtual time with nothing real in flight", tostring(err))
    assert.is_false(loop.is_virtual())
    local spinner
    ok, err = pcall(clock.virtual, { runaway_limit = 500 }, function()
      spinner = task.spawn(function() while true do task.sleep(60) end end)
      task.event():wait() -- waits on nothing that could ever come
    end)
    assert.is_false(ok)
    assert.matches("500 timers fired", tostring(err))
    spinner:cancel()
    assert.are.equal(100000, clock.RUNAWAY_LIMIT)
  end)

  it("bad input: nested clock.virtual, a non-function, bad options", function()
    local ok, err = pcall(clock.virtual, function()
      clock.virtual(function() end)
    end)
    assert.is_false(ok)
    assert.matches("clock_spec.lua:%d+: clock.virtual: a mocked clock is already active .*cannot be nested", err)
    err = raised(function() clock.virtual(42) end)
    assert.matches("clock_spec.lua:%d+: clock.virtual: expected a function, got number", err)
    err = raised(function() clock.virtual({ runaway_limit = 0 }, function() end) end)
    assert.matches("clock_spec.lua:%d+: clock.virtual: runaway_limit must be a whole number >= 1, got 0", err)
    assert.is_false(loop.is_virtual())
  end)
end)

describe("exact autojump against a real server", function()
  local bin, c
  setup(function()
    bin = servers.httpbin()
    c = http.client { base_url = bin.url }
  end)

  it("an hour-long sleep, with the server up but nothing in flight, finishes at once", function()
    local real_passed = real_guard(5)
    local status, slept = clock.virtual(function()
      local status = c:get("/get").status -- real I/O, done before the sleep
      local t0 = task.now()
      task.sleep(3600)
      return status, task.now() - t0
    end)
    assert.are.equal(200, status)
    assert.are.equal(3600, slept)
    assert.is_false(real_passed(), "the real 5 s guard fired first: virtual time waited on real time")
  end)

  it("a response that takes a real second is never cut short by a virtual timeout", function()
    local order = {}
    clock.virtual(function()
      local sleeper = task.spawn(function()
        task.sleep(0.2)
        order[#order + 1] = "virtual 0.2 s sleep at " .. task.now()
      end)
      local r = task.timeout(0.5, c.get, c, "/delay/1")
      order[#order + 1] = "response " .. r.status .. " at " .. task.now()
      sleeper:join()
    end)
    -- a clock that jumped while the transfer was in flight would have
    -- fired the sleep (and the 0.5 s timeout) before the response
    assert.are.same({ "response 200 at 0", "virtual 0.2 s sleep at 0.2" }, order)
  end)
end)

describe("clock.assert_sleeps_for", function()
  it("sums the sleeps of every task, which do not wait but still yield", function()
    local order = {}
    local before = task.now()
    clock.assert_sleeps_for(5, function()
      local other = task.spawn(function()
        order[#order + 1] = "other"
        task.sleep(2)
      end)
      task.sleep(3)
      order[#order + 1] = "after my sleep"
      other:join()
    end)
    assert.are.same({ "other", "after my sleep" }, order)
    assert.is_true(task.now() - before >= 5, "task.now() moves by the seconds skipped")
  end)

  it("Prefect's rule: 4.5 s passes for 5 (runtime rounds up to a whole second), 5.5 s does not", function()
    clock.assert_sleeps_for(5, function() task.sleep(4.5) end)
    local ok, err = pcall(clock.assert_sleeps_for, 5, function() task.sleep(5.5) end)
    assert.is_false(ok)
    assert.matches("^slept for 5.5; expected 5 with tolerance of %+%d+, %-0$", tostring(err))
    clock.assert_sleeps_for(5, function() task.sleep(5.5) end, { extra_tolerance = 0.5 })
    clock.assert_sleeps_for(5, function() task.sleep(4.5) end, { extra_tolerance = 0.5 })
  end)

  it("a fractional expectation takes the raw runtime, not a whole second", function()
    -- slept 100, expected 150.5: only 50 s of real runtime could excuse it
    local ok, err = pcall(clock.assert_sleeps_for, 150.5, function() task.sleep(100) end)
    assert.is_false(ok)
    assert.matches("^slept for 100; expected 150.5 with tolerance of %+[%d.e%-]+, %-0$", tostring(err))
    -- with a whole number the runtime becomes at least 1: 99.5 + 1 >= 100.5? no; 100 passes
    clock.assert_sleeps_for(100, function() task.sleep(99.5) end)
  end)

  it("is an assertion failure in a spec, and passes fn's results and errors through", function()
    local ok, err = pcall(clock.assert_sleeps_for, 1, function() task.sleep(3) end)
    assert.is_false(ok)
    assert.is_true(require("sonde.runner.dsl").is_failure(err))
    assert.are.same({ 1, 2 }, { clock.assert_sleeps_for(0, function() return 1, 2 end) })
    ok, err = pcall(clock.assert_sleeps_for, 0, function() error("inner") end)
    assert.is_false(ok)
    assert.matches("inner", err)
    -- sleeps wait again afterwards
    local t = task.spawn(task.sleep, 0.01)
    task.sleep(0)
    assert.is_false(t:done())
    t:join()
  end)

  it("bad input: a non-function, negative seconds, a bad tolerance", function()
    local ok, err = pcall(function() clock.assert_sleeps_for(1, "nope") end)
    assert.is_false(ok)
    assert.matches("clock_spec.lua:%d+: clock.assert_sleeps_for: expected a function as the second argument, got " ..
        "string",
      err)
    err = raised(function() clock.assert_sleeps_for(-1, function() end) end)
    assert.matches("expected a number of seconds >= 0, got %-1", err)
    err = raised(function() clock.assert_sleeps_for(1, function() end, { extra_tolerance = -1 }) end)
    assert.matches("extra_tolerance must be a number >= 0, got %-1", err)
  end)
end)

describe("clock.dominos", function()
  it("seed example: tasks one, two (a generator) and three fall in the listed order", function()
    local futs = clock.dominos { expected = 8 }
    local called = {}
    local function one()
      futs[1]:wait()
      called[#called + 1] = "first"
      futs[2]:wait()
      called[#called + 1] = "second"
      futs[5]:wait()
      called[#called + 1] = "fifth"
      futs[7]:wait()
      called[#called + 1] = "seventh"
    end
    -- an async generator becomes a function that calls `yield` per item
    local function two(yield)
      futs[3]:wait()
      called[#called + 1] = "third"
      local start = 4
      while start <= 6 do
        futs[start]:wait()
        called[#called + 1] = { "gen", start }
        yield({ "genresult", start })
        start = start + 2
      end
    end
    local function three()
      futs[8]:wait()
      called[#called + 1] = "final"
    end
    task.spawn(three)
    task.spawn(one)
    task.spawn(function() two(function(r) called[#called + 1] = r end) end)
    futs:begin()
    futs.finished:wait()
    assert.are.same({
      "first",
      "second",
      "third",
      { "gen", 4 },
      { "genresult", 4 },
      "fifth",
      { "gen", 6 },
      { "genresult", 6 },
      "seventh",
      "final",
    }, called)
    futs:close()
  end)

  it("retrieved in the order 3, 1, 2, they still fall 1, 2, 3", function()
    local futs = clock.dominos { expected = 3 }
    local fell = {}
    local d3, d1, d2 = futs[3], futs[1], futs[2]
    for i, d in ipairs({ d1, d2, d3 }) do d:add_done_callback(function() fell[#fell + 1] = i end) end
    -- what 1 wakes runs to its next wait before 2 falls, though 2 was retrieved long before
    local two_stood
    task.spawn(function()
      d1:wait()
      two_stood = not d2:done()
    end)
    futs:begin()
    futs.finished:wait()
    assert.are.same({ 1, 2, 3 }, fell)
    assert.is_true(two_stood)
    assert.is_true(d1:done() and d2:done() and d3:done())
    futs:close()
  end)

  it("nothing falls before begin; a domino falls only once retrieved", function()
    local futs = clock.dominos { expected = 2 }
    local d1 = futs[1]
    for _ = 1, 5 do task.sleep(0) end
    assert.is_false(d1:done())
    assert.is_false(futs.started:is_set())
    futs:begin()
    d1:wait()
    for _ = 1, 5 do task.sleep(0) end
    assert.is_false(futs.finished:is_set()) -- 2 was never retrieved
    assert.is_true(futs[2]:wait() == nil)
    futs.finished:wait()
    futs:close()
  end)

  it("a domino given an error by hand counts as fallen: the rest still fall, and it raises", function()
    local futs = clock.dominos { expected = 3 }
    local d1, d2, d3 = futs[1], futs[2], futs[3]
    d2:set_exception("broken by hand")
    futs:begin()
    futs.finished:wait()
    assert.is_true(d1:done() and d3:done())
    local ok, err = pcall(d2.wait, d2)
    assert.is_false(ok)
    assert.are.equal("broken by hand", err)
    futs:close()
  end)

  it("close fails for dominos never retrieved, then for dominos that never fell", function()
    local futs = clock.dominos { expected = 4 }
    local _, _ = futs[1], futs[2]
    local ok, err = pcall(futs.close, futs)
    assert.is_false(ok)
    assert.are.equal("not all dominos were retrieved: 3, 4", tostring(err))
    futs = clock.dominos { expected = 3 }
    _, _, _ = futs[1], futs[2], futs[3] -- begin is never called
    ok, err = pcall(futs.close, futs)
    assert.is_false(ok)
    assert.are.equal("not all dominos fell: 1, 2, 3", tostring(err))
  end)

  it("an error while dominos are outstanding propagates at once instead of hanging", function()
    local real_passed = real_guard(5)
    local knocker
    local ok, err = pcall(clock.dominos, { expected = 3 }, function(futs)
      futs:begin()
      futs[1]:wait()
      error("boom while 2 and 3 stand")
    end)
    assert.is_false(ok)
    assert.matches("boom while 2 and 3 stand", err)
    assert.is_false(real_passed())
    -- the scoped form checks at close too
    ok, err = pcall(clock.dominos, { expected = 2 }, function(futs) knocker = futs[1] end)
    assert.is_false(ok)
    assert.matches("not all dominos were retrieved: 2", tostring(err))
    assert.is_false(knocker:done())
  end)

  it("bad input: index 0 or past expected, begin twice, a bad expected", function()
    local futs = clock.dominos { expected = 2 }
    local ok, err = pcall(function() return futs[0] end)
    assert.is_false(ok)
    assert.matches("clock_spec.lua:%d+: clock.dominos: there is no domino 0 %(they are numbered 1..2%)", err)
    err = raised(function() return futs[3] end)
    assert.matches("clock_spec.lua:%d+: clock.dominos: there is no domino 3", err)
    err = raised(function() return futs[1.5] end)
    assert.matches("there is no domino 1.5", err)
    futs:begin()
    err = raised(function() futs:begin() end)
    assert.matches("clock_spec.lua:%d+: clock.dominos: begin was already called %(at .*clock_spec.lua:%d+%)", err)
    err = raised(function() clock.dominos { expected = 0 } end)
    assert.matches("clock_spec.lua:%d+: clock.dominos: expected must be a whole number >= 1, got 0", err)
    err = raised(function() clock.dominos() end)
    assert.matches("expected {expected=N}, got nil", err)
    local _, _ = futs[1], futs[2]
    futs.finished:wait()
    futs:close()
  end)
end)

describe("clock.pending", function()
  it("lists pending timers with their clock, kind, task and where it waits", function()
    clock.virtual(function()
      local sleeper = task.spawn(function()
        task.sleep(60) -- the line pending() points at
      end)
      task.sleep(0)
      local list = clock.pending()
      local mine
      for _, p in ipairs(list) do
        if p.task == sleeper then mine = p end
      end
      assert.is_table(mine)
      assert.are.equal("virtual", mine.clock)
      assert.are.equal("sleep", mine.kind)
      assert.are.equal(60, mine.remaining)
      assert.matches("clock_spec.lua:%d+$", mine.at)
      assert.matches("60.000s%s+virtual sleep", tostring(list))
      sleeper:cancel()
    end)
  end)
end)

describe("--interleave", function()
  local race = support.fixture("clock/race.lua")

  -- exit code and TAP report (which has no timings, so a replay is equal)
  local function run(...)
    local code, out = support.sonde("test", "-o", "tap", race, ...)
    return code, out
  end

  it("finds an order-dependent bug under some seed and replays it under the same seed", function()
    local code = run()
    assert.are.equal(0, code, "first-queued-first order hides the bug")
    local failing, passing
    for seed = 1, 40 do
      local c = run("--interleave", "--seed", tostring(seed))
      if c ~= 0 and not failing then failing = seed end
      if c == 0 and not passing then passing = seed end
      if failing and passing then break end
    end
    assert.is_number(failing, "no seed in 1..40 found the race")
    assert.is_number(passing, "every seed failed: the fixture is not order-dependent")
    local c1, f1 = run("--interleave", "--seed", tostring(failing))
    local c2, f2 = run("--interleave", "--seed", tostring(failing))
    assert.are.equal(1, c1)
    assert.are.equal(1, c2)
    assert.are.equal(f1, f2)
    assert.matches("the subscriber missed the first message", f1)
    assert.are.equal(0, (run("--interleave", "--seed", tostring(passing))))
  end)

  it("set_interleave refuses a seed that is not a whole number", function()
    local ok, err = pcall(function() task.set_interleave(1.5) end)
    assert.is_false(ok)
    assert.matches("clock_spec.lua:%d+: task.set_interleave: expected a whole number >= 0 as the seed, got 1.5", err)
  end)
end)

describe("real timers beside the clock", function()
  it("a real timeout armed after a long stretch without yielding fires while a child keeps the loop busy", function()
    local code, out = support.sonde("test", "-o", "tap", "--timeout", "5", support.fixture("clock/stale_wakeup.lua"),
      { timeout = 30 })
    assert.are.equal(0, code, out)
    assert.matches("ok 1 %- fires a 10 ms timeout", out)
  end)
end)

describe("clock state at the end of a test", function()
  it("dominos left unretrieved fail the test that made them", function()
    local code, out = support.sonde("test", "-o", "tap", support.fixture("clock/dominos_left_open.lua"))
    assert.are.equal(1, code, out)
    assert.matches("not ok 1 %- leaves dominos unretrieved", out)
    assert.matches("not all dominos were retrieved: 3, 4", out)
    assert.matches("\nok 2 %- runs after it on real time", out)
  end)
end)
