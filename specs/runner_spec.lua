-- The spec runner, run as a subprocess on fixture spec files: hook order,
-- outcomes (failure vs error vs pending), timeouts, load errors, selection.
local support = require("specs.support")
local process = require("sonde.process")

local sonde, fixture = support.sonde, support.fixture
local tap_results = support.tap


describe("hooks", function()
  it("run in busted's order across nesting, with finally before after_each", function()
    local code, _, err = sonde("test", "-o", "tap", "--no-capture", fixture("runner/hooks.lua")) -- stderr as it goes
    assert.are.equal(0, code)
    local expected = {
      "setup outer",
      "before outer", "it first", "after outer",
      "setup inner",
      "before outer", "before inner", "it second", "finally second", "after inner", "after outer",
      "teardown inner",
      "before outer", "it third", "after outer",
      "teardown outer",
    }
    local got = {}
    for line in err:gmatch("[^\n]+") do got[#got + 1] = line end
    assert.are.same(expected, got)
  end)
end)

describe("outcomes", function()
  local code, out, human
  setup(function()
    code, out = sonde("test", "-o", "tap", fixture("runner/outcomes.lua"))
    local _
    _, human = sonde("test", fixture("runner/outcomes.lua"))
  end)

  it("exit 1 when anything failed", function()
    assert.are.equal(1, code)
  end)

  it("classifies each test", function()
    local status = tap_results(out)
    assert.are.same({
      ["outcomes passes"] = "ok",
      ["outcomes fails an assertion"] = "not ok",
      ["outcomes raises an error"] = "not ok",
      ["outcomes raises a table"] = "not ok",
      ["outcomes is pending inside"] = "skip",
      ["outcomes is pending at load"] = "skip",
      ["outcomes has no body"] = "skip",
      ["outcomes broken before_each never runs its body"] = "not ok",
      ["outcomes broken after_each passes its body"] = "ok",
      ["outcomes broken after_each passes its body (after_each)"] = "not ok",
      ["outcomes fails in finally"] = "not ok",
    }, status)
  end)

  it("tells failures from errors, and hook failures are errors", function()
    assert.matches("severity: \"fail\"\n  at: \"specs/fixtures/runner/outcomes.lua:4\"", out)
    assert.matches("severity: \"error\"\n  at: \"specs/fixtures/runner/outcomes.lua:5\"", out)
    assert.matches("before_each: specs/fixtures/runner/outcomes.lua:%d+: Expected", out)
    assert.matches("after_each: specs/fixtures/runner/outcomes.lua:%d+: after_each broke", out)
    assert.not_matches("must not run", out)
  end)

  it("the human report shows them apart and ends with the counts line", function()
    assert.matches("\nFAIL 1%) outcomes fails an assertion\n  at specs/fixtures/runner/outcomes.lua:4\n", human)
    assert.matches("\nERROR %d%) outcomes raises an error\n", human)
    assert.matches("\n6 failed: 1 failure, 5 errors; 3 skipped %(pending%); [%d.]+ s\n", human)
    assert.matches("\n2 passed, 6 failed, 3 skipped\n$", human)
  end)

  it("an error object that is a table is shown as the REPL shows a table, not as its address", function()
    assert.matches('\nERROR %d%) outcomes raises a table\n  at specs/fixtures/runner/outcomes.lua:6\n  {"code": 7}\n',
        human)
    assert.matches('message: "{\\"code\\": 7}"', out)
    assert.not_matches("table: 0x", human .. out)
  end)
end)

describe("timeouts", function()
  it("a test that waits forever times out with where it waited, and the next test runs", function()
    local out = support.timed_out("0.2", "waits forever", "still runs afterwards", fixture("runner/timeout.lua"))
    assert.matches("timeout: test did not finish within 0.2s", out)
    assert.matches("runner/timeout.lua:3", out)
  end)

  it("a test that yields with a bare coroutine.yield() fails at once, at that line, saying what to use", function()
    local code, out = sonde("test", "-o", "tap", "--timeout", "60", fixture("runner/raw_yield.lua"))
    assert.are.equal(1, code, out)
    local status = tap_results(out)
    assert.are.equal("not ok", status["yields raw"], out)
    assert.are.equal("ok", status["runs next"], out)
    assert.matches("runner/raw_yield.lua:5: coroutine.yield%(%) outside a coroutine of your own suspends this task " ..
      "forever %(sonde resumes a task only when what it waits on completes%); use task.sleep%(0%) to let other " ..
      "tasks run, or wait on a task.event%(%), task.channel%(%) or task.future%(%)", out)
    assert.matches("finally ran", out)
    assert.not_matches("timeout", out)
  end)

  it("a timed-out test that swallows its cancellation is cancelled until it ends, before the next test", function()
    support.timed_out("0.1", "swallows its cancellation", "starts after it has ended",
      fixture("runner/timeout_swallowed.lua"))
  end)
end)

describe("setup errors", function()
  it("become one error, skip their block's tests and let the rest run", function()
    local code, out = sonde("test", "-o", "tap", fixture("runner/setup_error.lua"))
    assert.are.equal(1, code)
    local status, order = tap_results(out)
    assert.are.same({ "broken setup (setup)", "outside still runs" }, order)
    assert.are.equal("not ok", status["broken setup (setup)"])
    assert.matches("setup: specs/fixtures/runner/setup_error.lua:3: setup broke", out)
  end)
end)

describe("load errors", function()
  local dir
  setup(function()
    dir = support.make_temp_dir()
    local files = {
      ["a_spec.lua"] = 'it("a passes", function() end)\n',
      ["b_spec.lua"] = 'it("b never loads", function() end)\nlocal = 1\n',
      ["c_spec.lua"] = 'it("c passes", function() end)\n',
      ["helper.lua"] = 'error("never loaded")\n',
    }
    for name, text in pairs(files) do support.write_file(dir .. "/" .. name, text) end
  end)
  teardown(function() support.remove_dir(dir) end)

  it("count as an error for that file, the other files still run, exit 2", function()
    local code, out = sonde("test", "-o", "tap", dir)
    assert.are.equal(2, code)
    local status, order = tap_results(out)
    assert.are.same({ "a passes", dir .. "/b_spec.lua", "c passes" }, order)
    assert.are.equal("not ok", status[dir .. "/b_spec.lua"])
    assert.matches("b_spec.lua:2: '<name>' expected near '='", out)
  end)

  it("a describe without a function names the file and line", function()
    local code, out = sonde("test", "-o", "tap", fixture("runner/describe_no_fn.lua"))
    assert.are.equal(2, code)
    assert.matches("describe_no_fn.lua:2: describe 'lonely' needs a function as its second argument, got nil", out)
  end)

  it("raised in a helper module are placed at the spec line that called it", function()
    local tmp = support.temp_dir()
    support.write_file(tmp .. "/helper.lua",
        "local M = {}\n\n\n\n\n\nfunction M.boom() error('helper broke') end\nreturn M\n")
    local head = string.format("package.path = %q .. '/?.lua;' .. package.path\n", tmp)
        .. 'local helper = require("helper")\n'
    support.write_file(tmp .. "/d_spec.lua", head .. 'describe("d", function()\n  helper.boom()\nend)\n')
    support.write_file(tmp .. "/f_spec.lua", head .. '\nhelper.boom()\n')
    local _, out = sonde("test", "-o", "tap", tmp .. "/d_spec.lua", tmp .. "/f_spec.lua")
    assert.matches('at: "[^"]*d_spec.lua:4"', out) -- a describe's error
    assert.matches('at: "[^"]*f_spec.lua:4"', out) -- a file's own load error
  end)
end)

describe("selection", function()
  local function names(...)
    local _, out = sonde("test", "-o", "tap", fixture("runner/tags.lua"), ...)
    local _, order = tap_results(out)
    return order
  end

  it("--tags keeps tests with any of the tags, from test or describe names", function()
    assert.are.same({ "api #slow lists users #smoke", "health #smoke" }, names("--tags", "smoke"))
    assert.are.same({ "api #slow lists users #smoke", "api #slow creates users" }, names("--tags", "slow"))
  end)

  it("--exclude-tags drops them", function()
    assert.are.same({ "health #smoke" }, names("--exclude-tags", "slow"))
  end)

  it("--filter and --filter-out match Lua patterns on full names", function()
    assert.are.same({ "api #slow creates users" }, names("--filter", "creates"))
    assert.are.same({ "api #slow lists users #smoke", "api #slow creates users" }, names("--filter-out", "^health"))
  end)

  it("--list prints names with file:line and runs nothing", function()
    local code, out = sonde("test", "--list", fixture("runner/hooks.lua"))
    assert.are.equal(0, code)
    assert.matches("specs/fixtures/runner/hooks.lua:8: outer first\n", out)
    assert.matches("specs/fixtures/runner/hooks.lua:14: outer inner second\n", out)
    assert.not_matches("passed", out)
  end)

  it("--fail-fast stops at the first failure", function()
    local _, out = sonde("test", "-o", "tap", "--fail-fast", fixture("runner/outcomes.lua"))
    local _, order = tap_results(out)
    assert.are.same({ "outcomes passes", "outcomes fails an assertion" }, order)
  end)
end)

describe("reports", function()
  it("TAP is accepted by prove", function()
    local code, out = process.run { "prove", "--exec", support.bin .. " test -o tap", fixture("runner/hooks.lua"),
      timeout = 60 }
    assert.are.equal(0, code, out)
    assert.matches("Result: PASS", out)
  end)

  it("an output file receives the report while human goes to stdout", function()
    local path = os.tmpname()
    local code, out = sonde("test", "-o", "human", "-o", "tap=" .. path, fixture("runner/hooks.lua"))
    assert.are.equal(0, code)
    assert.matches("3 passed, 0 failed\n$", out)
    local tap = support.read_file(path)
    os.remove(path)
    assert.matches("^TAP version 13\n", tap)
    assert.matches("\n1%.%.3\n", tap)
  end)
end)

-- sonde.boot.host runs sonde's own start-up with the JIT compiler off; the
-- user's code runs with it on, under each command.
describe("the JIT compiler", function()
  it("is on while a test runs", function()
    assert.is_true((jit.status()))
  end)

  it("is on for a script, for -e, and in a --jobs worker", function()
    local code, out = sonde("-e", "print(jit.status())")
    assert.are.equal(0, code)
    assert.matches("^true\t", out)
    local script = os.tmpname()
    support.write_file(script, "print((jit.status()))\n")
    code, out = sonde("run", script)
    os.remove(script)
    assert.are.equal(0, code)
    assert.are.equal("true\n", out)
    local dir = support.make_temp_dir("jit")
    for i = 1, 2 do
      support.write_file(dir .. "/j" .. i .. "_spec.lua", 'it("on", function() assert(jit.status()) end)\n')
    end
    code, out = sonde("test", "--jobs", "2", dir)
    support.remove_dir(dir)
    assert.are.equal(0, code, out)
    assert.matches("2 passed, 0 failed\n$", out)
  end)
end)
