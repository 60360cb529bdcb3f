-- A run's results survive what a test does: os.exit in a test is that
-- test's error and the run goes on; a run that found no test is no pass.
local support = require("specs.support")

local sonde, fixture, tap = support.sonde, support.fixture, support.tap

describe("os.exit inside a test", function()
  it("is an error of that test at its line, and the tests after it run", function()
    local dir = support.temp_dir()
    local code, out = sonde("test", "-o", "tap", "-o", "json=" .. dir .. "/r.json", fixture("runner/exits.lua"))
    assert.are.equal(1, code)
    local status, order = tap(out)
    assert.are.same({ "exits with 0", "exits with true", "runs after them", "fails after them" }, order)
    assert.are.same({ "not ok", "not ok", "ok", "not ok" }, { status[order[1]], status[order[2]], status[order[3]],
      status[order[4]] })
    assert.matches("exits.lua:3: os.exit%(0%) called while tests run", out)
    local report = require("sonde.json").decode(support.read_file(dir .. "/r.json"))
    assert.are.equal(4, #report.sections)
  end)
end)

describe("a run that finds no test", function()
  it("exits 5 and names the paths it looked in", function()
    local dir = support.temp_dir()
    local code, _, err = sonde("test", dir)
    assert.are.equal(5, code)
    assert.matches("no tests found in " .. dir:gsub("%p", "%%%0") .. " %(0 spec files%)", err)
  end)

  it("exits 5 when the filters match nothing, and names them", function()
    local code, _, err = sonde("test", "--filter", "nothing like this", "--tags", "none", fixture("runner/exits.lua"))
    assert.are.equal(5, code)
    assert.matches("selected by --filter nothing like this --tags none", err, 1, true)
  end)

  it("exits 5 for a spec file that defines no test", function()
    local dir = support.temp_dir()
    support.write_file(dir .. "/empty_spec.lua", "local x = 1\n")
    local code = sonde("test", dir)
    assert.are.equal(5, code)
  end)

  it("passes with --pass-with-no-tests, and an empty shard passes", function()
    local dir = support.temp_dir()
    assert.are.equal(0, (sonde("test", "--pass-with-no-tests", dir)))
    assert.are.equal(0, (sonde("test", "--shard", "1/2", dir)))
  end)
end)

-- ------------------------------------------------- a test that kills its process

local cjson = require("cjson")
local process = require("sonde.process")

-- Under ASan a SIGSEGV would be ASan's report and exit 1: let the signal
-- kill the process as it does without ASan.
local ENV = { env = { ASAN_OPTIONS = "handle_segv=0" .. (os.getenv("ASAN_OPTIONS") and ":" .. os.getenv("ASAN_OPTIONS")
  or "") } }

local read = support.read_file

-- statuses(status, order) -> the statuses of a tap() result in run order.
local function statuses(status, order)
  local list = {}
  for i, name in ipairs(order) do list[i] = status[name] end
  return list
end

-- reports(dir, names, statuses) -> json report, junit text, tap file text:
-- each written whole and valid, each with these results in this order.
local function reports(dir, names, expected)
  local json = cjson.decode(read(dir .. "/r.json"))
  local got = {}
  for i, s in ipairs(json.sections) do got[i] = s.name end
  assert.are.same(names, got)
  local junit = read(dir .. "/r.xml")
  local lint, _, lint_err = process.run { "xmllint", "--noout", dir .. "/r.xml", timeout = 30 }
  assert.are.equal(0, lint, lint_err)
  local _, cases = junit:gsub("<testcase ", "")
  assert.are.equal(#names, cases)
  local tap_text = read(dir .. "/r.tap")
  assert.matches("\n1%.%." .. #names .. "\n", tap_text)
  local status, order = support.tap(tap_text)
  assert.are.same(names, order)
  assert.are.same(expected, statuses(status, order))
  return json, junit, tap
end

-- test_reporting(dir, args...) -> sonde("test", args...), with json, junit
-- and tap reports written in dir.
local function test_reporting(dir, ...)
  return sonde("test", "-o", "json=" .. dir .. "/r.json", "-o", "junit=" .. dir .. "/r.xml", "-o",
    "tap=" .. dir .. "/r.tap", ...)
end

describe("a serial run", function()
  it("goes on past tests that crash, exit from C or cannot be stopped; each is an error saying how", function()
    local dir = support.temp_dir()
    local code, out, err = test_reporting(dir, "-o", "tap", "--timeout", "0.3", fixture("runner/dies/tests.lua"), ENV)
    assert.are.equal(1, code, err)
    local names = { "passes first", "segfaults", "fails after the crash", "exits from C", "passes after the exit",
      "catches its timeout forever", "raises after the stuck test", "loops gsub over 50 MB", "passes last" }
    local expected = { "ok", "not ok", "not ok", "not ok", "ok", "not ok", "not ok", "not ok", "ok" }
    local status, order = tap(out)
    assert.are.same(names, order)
    assert.are.same(expected, statuses(status, order))
    assert.matches("\n# 3 passed, 6 failed, 0 skipped", out)
    local json, junit = reports(dir, names, expected)
    local by_name = {}
    for _, s in ipairs(json.sections) do by_name[s.name] = s end
    assert.are.same({ passed = 3, failed = 6, failures = 1, errors = 5, skipped = 0, flaky = 0 }, json.counts)
    assert.are.equal("the process running this test was killed by SIGSEGV; sonde restarted and the run went on",
      by_name["segfaults"].error)
    assert.are.equal("the process running this test exited with code 3 (_exit() called from C); sonde restarted and "
      .. "the run went on", by_name["exits from C"].error)
    for _, stuck in ipairs({ "catches its timeout forever", "loops gsub over 50 MB" }) do
      assert.matches("^the process running this test was stopped after its 0.3s timeout: it could not be interrupted "
        .. "%(it was in C code", by_name[stuck].error)
      assert.are.equal("error", by_name[stuck].status)
    end
    assert.are.equal("fail", by_name["fails after the crash"].status)
    assert.matches("tests.lua:16: boom", by_name["raises after the stuck test"].error, 1, true)
    assert.matches("<system-out>printed before the crash\n</system-out>", junit, 1, true)
    assert.matches("sonde: test 'catches its timeout forever' %(specs/fixtures/runner/dies/tests.lua:13%) is still "
      .. "running after its 0.3s timeout and cannot be interrupted .*; it is an error, and sonde restarts itself to go "
      .. "on with the run\n", err)
  end)

  it("says how on the human report, with the closing counts line", function()
    local code, out = sonde("test", fixture("runner/dies/quick.lua"), ENV)
    assert.are.equal(1, code)
    assert.matches("two segfaults\n  at specs/fixtures/runner/dies/quick.lua:5\n  the process running this test was "
      .. "killed by SIGSEGV", out)
    assert.matches("\n3 passed, 3 failed\n$", out)
  end)

  it("walks again in the order of the seed with --shuffle --seed N, and of the seed it drew with --shuffle", function()
    local quick = fixture("runner/dies/quick.lua")
    local function listed(seed)
      local code, list = sonde("test", "--list", "--shuffle", "--seed", seed, quick)
      assert.are.equal(0, code)
      local names = {}
      for name in list:gmatch(":%d+: ([^\n]+)") do names[#names + 1] = name end
      return names
    end
    local _, out = sonde("test", "-o", "tap", "--shuffle", "--seed", "7", quick, ENV)
    local status, order = tap(out)
    assert.are.same(listed("7"), order)
    assert.are.same({ "ok", "not ok", "ok", "not ok", "not ok", "ok" }, { status["one passes"], status["two segfaults"],
      status["three passes"], status["four exits from C"], status["five fails"], status["six passes"] })
    local dir = support.temp_dir()
    sonde("test", "--shuffle", "-o", "json=" .. dir .. "/r.json", quick, ENV)
    local json = cjson.decode(read(dir .. "/r.json"))
    local names = {}
    for i, s in ipairs(json.sections) do names[i] = s.name end
    assert.are.same(listed(tostring(json.seed)), names)
  end)

  it("reports each round's deaths under --repeat 2", function()
    local dir = support.temp_dir()
    local code, out = test_reporting(dir, "-o", "tap", "--repeat", "2", fixture("runner/dies/quick.lua"), ENV)
    assert.are.equal(1, code)
    local names, expected = {}, {}
    for round = 1, 2 do
      for _, t in ipairs({ { "one passes", "ok" }, { "two segfaults", "not ok" }, { "three passes", "ok" },
        { "four exits from C", "not ok" }, { "five fails", "not ok" }, { "six passes", "ok" } }) do
        names[#names + 1] = string.format("%s [%d/2]", t[1], round)
        expected[#expected + 1] = t[2]
      end
    end
    local status, order = tap(out)
    assert.are.same(names, order)
    assert.are.same(expected, statuses(status, order))
    local json = reports(dir, names, expected)
    assert.are.equal(2, json.sections[8].iteration)
  end)

  it("stops at a death with --fail-fast, reports written", function()
    local dir = support.temp_dir()
    local code, out = test_reporting(dir, "-o", "tap", "--fail-fast", fixture("runner/dies/quick.lua"), ENV)
    assert.are.equal(1, code)
    local status, order = tap(out)
    assert.are.same({ "one passes", "two segfaults" }, order)
    assert.are.same({ "ok", "not ok" }, statuses(status, order))
    reports(dir, order, { "ok", "not ok" })
  end)

  it("makes a death in a hook or a describe body that hook's or body's error, and sets blocks up again after it",
      function()
    local code, out = sonde("test", "-o", "tap", fixture("runner/dies/hooks.lua"), ENV)
    assert.are.equal(1, code)
    local status, order = tap(out)
    assert.are.same({ "a setup that raises (setup)", "a setup that crashes (setup)", "a before_each that crashes first",
      "a before_each that crashes second", "a teardown that crashes passes before it",
      "a teardown that crashes (teardown)",
      "a describe body that crashes", "a block set up before a crash pends first",
      "a block set up before a crash crashes",
      "a block set up before a crash is set up again after it", "passes at the end" }, order)
    assert.are.same({ "not ok", "not ok", "not ok", "not ok", "ok", "not ok", "not ok", "skip", "not ok", "ok", "ok" },
      statuses(status, order))
    assert.matches('message: "setup: the process running this hook was killed by SIGSEGV', out, 1, true)
    assert.matches('message: "teardown: the process running this hook was killed by SIGSEGV', out, 1, true)
    assert.matches('at: "specs/fixtures/runner/dies/hooks.lua:10"', out, 1, true)
    assert.matches('message: "the process running this describe body was killed by SIGSEGV', out, 1, true)
    assert.not_matches("must not run", out)
  end)

  it("makes a death while a file loads that file's load error; what came before it and the files after it stay",
    function()
      local dir = support.temp_dir()
      local code, out = test_reporting(dir, "-o", "tap", fixture("syntax_error.lua"), fixture("runner/hooks.lua"),
        fixture("runner/dies/loads.lua"), fixture("runner/dies/quick.lua"), ENV)
      assert.are.equal(2, code)
      local status, order = tap(out)
      local names = { fixture("syntax_error.lua"), "outer first", "outer inner second", "outer third",
        fixture("runner/dies/loads.lua"), "one passes", "two segfaults", "three passes", "four exits from C",
        "five fails",
        "six passes" }
      local expected = { "not ok", "ok", "ok", "ok", "not ok", "ok", "not ok", "ok", "not ok", "not ok", "ok" }
      assert.are.same(names, order)
      assert.are.same(expected, statuses(status, order))
      assert.matches("loads.lua: the process loading this file was killed by SIGSEGV", out, 1, true)
      reports(dir, names, expected)
    end)

  it("says so when the spec files define other tests when loaded again after a death", function()
    local dir = support.temp_dir()
    local code, out = test_reporting(dir, "-o", "tap", fixture("runner/dies/changes.lua"),
      { env = { SONDE_FIXTURE_MARK = dir .. "/mark", ASAN_OPTIONS = ENV.env.ASAN_OPTIONS } })
    assert.are.equal(1, code)
    local status, order = tap(out)
    assert.are.equal("not ok", status["(the rest of the run)"], out)
    assert.are.equal("(the rest of the run)", order[#order])
    assert.matches("a runner died in step 4 of the run (it was killed by SIGSEGV), and a new runner loaded the spec "
      .. "files again but never reached that step", out, 1, true)
    assert.are.equal(3, #cjson.decode(read(dir .. "/r.json")).sections)
  end)

  it("stopped by SIGINT after a death exits 130 with its reports written", function()
    local dir = support.temp_dir()
    local p = process.spawn { support.bin, "test", "--no-capture", "-o", "tap", "-o", "json=" .. dir .. "/r.json", "-o",
      "junit=" .. dir .. "/r.xml", "-o", "tap=" .. dir .. "/r.tap", fixture("runner/dies/interrupted.lua"),
      env = ENV.env }
    local ok, err = pcall(function()
      p:wait_output("ready", 30, "stderr")
      p:kill("INT")
      assert.are.equal(130, p:wait(30))
      local status, order = tap(p:stdout())
      assert.are.same({ "passes first", "segfaults", "waits" }, order)
      assert.are.same({ "ok", "not ok", "not ok" }, statuses(status, order))
      assert.matches("cancelled: interrupted", p:stdout())
      reports(dir, order, { "ok", "not ok", "not ok" })
    end)
    p:stop(1)
    assert(ok, err)
  end)

  it("goes on in the same process, stops the dead test's children, closes its files, undoes its directory and alarm",
    function()
      local dir = support.temp_dir()
      local mark = dir .. "/facts"
      local code, out = sonde("test", "-o", "tap", fixture("runner/dies/restart.lua"),
        { env = { SONDE_FIXTURE_MARK = mark, ASAN_OPTIONS = ENV.env.ASAN_OPTIONS } })
      assert.are.equal(1, code, out)
      local status, order = tap(out)
      assert.are.same({ "leaves a child running and segfaults", "changes what an exec keeps and segfaults",
        "prints through C and calls exit()",
        "runs in the same process, in its directory, with no alarm" }, order)
      assert.are.same({ "not ok", "not ok", "not ok", "ok" }, statuses(status, order))
      assert.matches("exited with code 4 (exit() called from C); sonde restarted and the run went on", out, 1, true)
      assert.matches("printed before exit()", out, 1, true)
      local facts = read(mark)
      local pids = {}
      for pid in facts:gmatch("pid (%d+)") do pids[#pids + 1] = pid end
      assert.are.equal(2, #pids, facts)
      assert.are.equal(pids[1], pids[2])
      assert.is_false(support.alive(tonumber(facts:match("child (%d+)"))))
      assert.is_false(support.alive(tonumber(facts:match("popen (%d+)"))))
    end)

  it("ends at a SIGKILL, which leaves nothing to report it (the OOM killer, kill -9)", function()
    local code, out, _, signal = sonde("test", "-o", "tap", fixture("runner/dies/killed.lua"))
    assert.are.equal("KILL", signal, code)
    assert.matches("ok 1 - passes first\n", out, 1, true)
    assert.not_matches("never runs", out)
  end)

  it("with --jobs 2 is still a dead worker's errors", function()
    local code, out = sonde("test", "-o", "tap", "--jobs", "2", fixture("runner/dies/quick.lua"),
      fixture("runner/hooks.lua"), ENV)
    assert.are.equal(1, code)
    local status = tap(out)
    assert.are.same({ "ok", "not ok", "not ok", "ok" }, { status["one passes"], status["two segfaults"],
      status["six passes"], status["outer third"] })
    assert.matches("the worker running this test stopped: its worker was killed by SIGSEGV", out, 1, true)
  end)

  it("ends at a crash with SONDE_SUPERVISE=off, as a run without its protection", function()
    local code, out, _, signal = sonde("test", "-o", "tap", fixture("runner/dies/quick.lua"),
      { env = { SONDE_SUPERVISE = "off", ASAN_OPTIONS = ENV.env.ASAN_OPTIONS } })
    assert.are.equal("SEGV", signal, code)
    assert.matches("ok 1 - one passes\n", out, 1, true)
    assert.not_matches("three passes", out)
  end)

  it("reports what it can of a journal a test wrote over, says what it left out, and journals on (fuzz_journal)",
    function()
      local dir = support.temp_dir()
      local code, _, err = test_reporting(dir, fixture("runner/journal_wrecked.lua"), ENV)
      assert.are.equal(1, code, err)
      local names = { "fails first", "passes", "wrecks the journal and dies", "runs after it", "dies too", "runs last" }
      local json = reports(dir, names, { "not ok", "ok", "not ok", "ok", "not ok", "ok" })
      assert.are.same({ passed = 3, failed = 3, failures = 1, errors = 2, skipped = 0, flaky = 0 }, json.counts)
      assert.matches("the process running this test was killed by SIGSEGV", json.sections[3].error, 1, true)
      assert.matches("^sonde test: 2 record%(s%) of the results journaled before the runner died are damaged "
        .. "%(did the test write over sonde's memory%?%) and are not in the report\n", err)
      -- the runner after the second death reads on past what the first one left out, and says so again
      assert.matches("\nsonde test: 1 record(s) of the results journaled before the runner died are damaged", err, 1,
        true)
    end)

  it("gives a passing result the journal has at a step that is no test the file walked (fuzz_journal)", function()
    local dir = support.temp_dir()
    local file = fixture("runner/journal_misplaced.lua")
    local code, _, err = test_reporting(dir, file, ENV)
    assert.are.equal(1, code, err)
    local json = reports(dir, { "(a test that passed before a runner died)",
      "moves that pass to the file's loading and dies", "runs after it" }, { "ok", "not ok", "ok" })
    assert.are.equal(file, json.sections[1].file)
  end)
end)
