-- --jobs N and the busy-loop timeout: results merged in file order, a
-- crashed or stuck worker reported as errors for its tests (never a hang),
-- and a test that never yields stopped by the watchdog at its timeout.
local support = require("specs.support")

local sonde, fixture = support.sonde, support.fixture
local tap = support.tap


local SUITE = { fixture("runner/outcomes.lua"), fixture("runner/hooks.lua"), fixture("runner/many.lua"),
  fixture("runner/tags.lua"), fixture("runner/setup_error.lua"), fixture("runner/output.lua") }

describe("--jobs", function()
  it("reports what a serial run reports, in the same order", function()
    local serial_code, serial = sonde("test", "-o", "tap", unpack(SUITE))
    local jobs_code, jobs = sonde("test", "-o", "tap", "--jobs", "3", unpack(SUITE))
    assert.are.equal(serial_code, jobs_code)
    local s_status, s_order = tap(serial)
    local j_status, j_order = tap(jobs)
    assert.are.same(s_order, j_order)
    assert.are.same(s_status, j_status)
    assert.are.equal(41, #s_order)
  end)

  it("merges into one human report with the closing counts line", function()
    local code, out = sonde("test", "--jobs", "2", unpack(SUITE))
    assert.are.equal(1, code)
    assert.matches("\n30 passed, 8 failed, 3 skipped\n$", out)
    assert.matches("captured output:\n    shown for the failure", out)
  end)

  -- Its death is seen from its exit: the silence limit (twice --timeout,
  -- plus 10 s) is far longer than this spec waits.
  it("a worker that dies mid-file is an error for its tests; the other files still run", function()
    local code, out = sonde("test", "-o", "tap", "--jobs", "2", "--timeout", "600", fixture("runner/crash.lua"),
      fixture("runner/hooks.lua"), { timeout = 60 })
    assert.are.equal(1, code)
    local status, order = tap(out)
    assert.are.same({ "passes first", "kills the process", "is never reached", "outer first", "outer inner second",
      "outer third" }, order)
    assert.are.same({ "ok", "not ok", "not ok" }, { status["passes first"], status["kills the process"],
      status["is never reached"] })
    assert.matches("the worker running this test stopped: its worker was killed by SIGKILL", out)
    assert.matches("not run: the worker running this file stopped during 'kills the process'", out)
  end)

  -- With four files, each of the two workers holds its second file while
  -- it runs its first: the worker that dies in crash.lua had hooks.lua.
  it("a worker that dies holding its next file hands it on: it still runs, in order", function()
    local files = { fixture("runner/crash.lua"), fixture("runner/hooks.lua"), fixture("runner/many.lua"),
      fixture("runner/tags.lua") }
    -- the serial reference leaves crash.lua out: a SIGKILL ends a serial run
    local _, serial = sonde("test", "-o", "tap", files[2], files[3], files[4])
    local code, jobs = sonde("test", "-o", "tap", "--jobs", "2", "--timeout", "600", files[1], files[2], files[3],
      files[4], { timeout = 60 })
    assert.are.equal(1, code)
    local s_status, s_order = tap(serial)
    local j_status, j_order = tap(jobs)
    local crashed = { "passes first", "kills the process", "is never reached" }
    assert.are.same(crashed, { unpack(j_order, 1, 3) })
    assert.are.same(s_order, { unpack(j_order, 4) })
    assert.are.same({ "ok", "not ok", "not ok" }, { j_status[crashed[1]], j_status[crashed[2]], j_status[crashed[3]] })
    for _, name in ipairs(crashed) do j_status[name] = nil end
    assert.are.same(s_status, j_status)
    assert.are.equal("ok", j_status["outer third"])
  end)

  it("drops what a worker wrote that is no event of its tests (fuzz_jobs)", function()
    local dir = support.temp_dir()
    local code, out = sonde("test", "-o", "tap", "-o", "json=" .. dir .. "/r.json", "--jobs", "2",
      fixture("runner/worker_garbage.lua"), fixture("runner/hooks.lua"))
    assert.are.equal(0, code)
    local status, order = tap(out)
    assert.are.same({ "passes before", "writes nonsense into its worker's results", "passes after", "outer first",
      "outer inner second", "outer third" }, order)
    for _, name in ipairs(order) do assert.are.equal("ok", status[name]) end
    local report = require("sonde.json").decode(support.read_file(dir .. "/r.json"))
    assert.are.equal(6, report.counts.passed)
    assert.are.equal(6, #report.sections)
  end)

  it("under --repeat, the tests a dead worker took with it carry their round in the json report", function()
    local dir = support.temp_dir()
    sonde("test", "-o", "json=" .. dir .. "/r.json", "--jobs", "2", "--repeat", "2", fixture("runner/crash.lua"))
    local report = require("sonde.json").decode(support.read_file(dir .. "/r.json"))
    local never = {}
    for _, s in ipairs(report.sections) do
      if s.name:find("is never reached", 1, true) then never[#never + 1] = s.iteration end
    end
    table.sort(never)
    assert.are.same({ 1, 2 }, never)
  end)

  it("a worker stuck where nothing can interrupt it is stopped and reported", function()
    local code, out = sonde("test", "-o", "tap", "--jobs", "2", "--timeout", "0.3", fixture("runner/stuck.lua"),
      fixture("runner/hooks.lua"))
    assert.are.equal(1, code)
    local status = tap(out)
    assert.are.equal("not ok", status["is stuck in compiled code"])
    assert.are.equal("not ok", status["never reached in this file"])
    assert.are.equal("ok", status["outer third"])
    assert.matches("cannot be interrupted", out)
  end)

  it("passes what tests write to stderr on, line by line, with --no-capture", function()
    local _, _, err = sonde("test", "--jobs", "2", "--no-capture", fixture("runner/hooks.lua"),
        fixture("runner/many.lua"))
    assert.matches("setup outer\nbefore outer\nit first\n", err, 1, true)
  end)

  it("an interrupt cancels the workers' running tests, reports what ran and exits 130", function()
    support.interrupt_hang("--jobs", "2", fixture("runner/hang.lua"), fixture("runner/hooks.lua"))
  end)

  it("--fail-fast with --fail-on-flaky stops at a flaky test, as a serial run does", function()
    local code, out = sonde("test", "-o", "tap", "--jobs", "2", "--timeout", "1", "--retries", "1", "--fail-on-flaky",
      "--fail-fast", fixture("runner/flaky.lua"), fixture("runner/hang.lua"))
    assert.are.equal(1, code)
    local _, order = tap(out)
    assert.are.same({ "passes first time", "is flaky" }, order)
  end)

  -- Results come as a stream: reading a results file again and again made
  -- this take minutes (the lines not yet read were matched anew each time).
  it("reports the 3000 tests of one file as a serial run does, in a time a serial run takes", function()
    local dir = support.temp_dir()
    local lines = { 'describe("many", function()\n' }
    for i = 1, 3000 do
      lines[#lines + 1] = string.format('  it("case %d", function() assert.are.equal(%d, %d) end)\n', i, i, i)
    end
    lines[#lines + 1] = "end)\n"
    support.write_file(dir .. "/many_spec.lua", table.concat(lines))
    local code, out = sonde("test", "-o", "tap", "--jobs", "2", dir, { timeout = 20 })
    assert.are.equal(0, code, out)
    local status, order = tap(out)
    assert.are.equal(3000, #order)
    assert.are.equal("many case 3000", order[3000])
    assert.are.equal("ok", status["many case 1"])
  end)

  it("carries a result far longer than the results pipe holds whole", function()
    local dir = support.temp_dir()
    support.write_file(dir .. "/long_spec.lua", 'it("fails at length", function() error(string.rep("y", 3000000) .. '
      .. '" the end", 0) end)\nit("passes after", function() end)\n')
    local code = sonde("test", "-o", "tap=" .. dir .. "/out.tap", "--jobs", "2", dir)
    assert.are.equal(1, code)
    local out = support.read_file(dir .. "/out.tap")
    local status = tap(out)
    assert.are.equal("not ok", status["fails at length"])
    assert.are.equal("ok", status["passes after"])
    assert.is_truthy(out:find(string.rep("y", 3000000) .. " the end", 1, true))
  end)

  it("runs each file's spec in its own process", function()
    local dir = support.temp_dir()
    for i = 1, 2 do
      support.write_file(dir .. "/p" .. i .. "_spec.lua", table.concat({ 'local task = require("sonde.task")\n',
        'it("waits for the other file", function()\n',
        '  local me, other = "' .. dir .. '/' .. i .. '", "' .. dir .. '/' .. (3 - i) .. '"\n',
        '  assert(io.open(me, "w")):close()\n',
        '  for _ = 1, 1500 do\n',
        '    if io.open(other) then return end\n',
        '    task.sleep(0.01)\n',
        '  end\n',
        '  error("the other file never ran alongside")\n',
        'end)\n' }))
    end
    local code, out = sonde("test", "--jobs", "2", dir)
    assert.are.equal(0, code, out)
  end)
end)

describe("a test that never yields", function()
  it("is stopped at its timeout with the line it was looping on, and the next test runs", function()
    local out = support.timed_out("0.3", "spins", "still runs afterwards", fixture("runner/busy.lua"))
    assert.matches("timeout: test did not finish within 0.3s %(it never yielded", out)
    assert.matches("runner/busy.lua:4: in function", out)
  end)

  it("in a hook is stopped too and counted as that test's error", function()
    local out = support.timed_out("0.3", "spinning hook never gets its body run", "outside still runs",
      fixture("runner/busy_hook.lua"))
    assert.matches("before_each: timeout", out)
    assert.not_matches("must not run", out)
  end)

  it("at a file's top level is a load error naming file and line", function()
    local code, out = sonde("test", "-o", "tap", "--timeout", "0.3", fixture("runner/busy_load.lua"),
      fixture("runner/hooks.lua"))
    assert.are.equal(2, code)
    assert.matches("specs/fixtures/runner/busy_load.lua:3: timeout: loading did not finish within 0.3s", out)
    assert.matches("ok %d+ %- outer third", out)
  end)

  it("in compiled code it cannot stop stops its process with one line naming the test; the run goes on", function()
    local code, out, err = sonde("test", "-o", "tap", "--timeout", "0.3", fixture("runner/stuck.lua"))
    assert.are.equal(1, code)
    assert.matches("ok 1 %- passes first\nnot ok 2 %- is stuck in compiled code\n", out)
    assert.matches("ok 3 %- never reached in this file\n", out)
    assert.matches("^sonde: test 'is stuck in compiled code' %(specs/fixtures/runner/stuck.lua:4%) is still running "
      .. "after its 0.3s timeout and cannot be interrupted", err)
  end)
end)
