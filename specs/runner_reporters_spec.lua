-- Reporters of `sonde test`, checked by their real consumers where there is
-- one: JUnit by xmllint and Debian's junitparser (also merging shard
-- reports), TAP by prove; JSON against the seed suite's schema; human on a
-- real terminal (script(1) gives it a pty) and off one.
local cjson = require("cjson")
local process = require("sonde.process")
local support = require("specs.support")

local sonde, fixture = support.sonde, support.fixture
local PYTHON = "/usr/bin/python3" -- Debian's, which has python3-junitparser

local read = support.read_file

local function tmp()
  local path = os.tmpname()
  finally(function() os.remove(path) end)
  return path
end

-- Counts junitparser reads back, from the cases themselves.
local JUNIT_COUNTS = [[
import sys, json, junitparser
x = junitparser.JUnitXml.fromfile(sys.argv[1])
suites = [x] if isinstance(x, junitparser.TestSuite) else list(x)
c = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "suites": len(suites)}
for s in suites:
    for case in s:
        c["tests"] += 1
        for r in case.result:
            if isinstance(r, junitparser.Failure): c["failures"] += 1
            elif isinstance(r, junitparser.Error): c["errors"] += 1
            elif isinstance(r, junitparser.Skipped): c["skipped"] += 1
print(json.dumps(c))
]]

local function junit_counts(path)
  local code, out, err = process.run { PYTHON, "-c", JUNIT_COUNTS, path, timeout = 60 }
  assert.are.equal(0, code, err)
  return cjson.decode(out)
end

local function json_report(...)
  local path = tmp()
  local args = { "test", "-o", "json=" .. path, ... }
  local code = sonde(unpack(args))
  return cjson.decode(read(path)), code
end

local MIXED = { fixture("runner/outcomes.lua"), fixture("runner/flaky.lua"), fixture("runner/output.lua") }

describe("junit", function()
  it("is well-formed and junitparser reads back the run's counts", function()
    local path = tmp()
    local code, out = sonde("test", "-o", "human", "-o", "junit=" .. path, unpack(MIXED))
    assert.are.equal(1, code)
    local lint_code, _, lint_err = process.run { "xmllint", "--noout", path, timeout = 30 }
    assert.are.equal(0, lint_code, lint_err)
    local c = junit_counts(path)
    local passed, failed, skipped = out:match("\n(%d+) passed, (%d+) failed, (%d+) skipped\n$")
    assert.are.equal(tonumber(passed) + tonumber(failed) + tonumber(skipped), c.tests)
    assert.are.equal(tonumber(failed), c.failures + c.errors)
    assert.are.equal(tonumber(skipped), c.skipped)
    assert.are.equal(3, c.suites)
  end)

  it("has one suite per file and cases with classname, name, time, file and line", function()
    local path = tmp()
    sonde("test", "-o", "junit=" .. path, fixture("runner/outcomes.lua"))
    local xml = read(path)
    assert.matches('<testsuite name="specs/fixtures/runner/outcomes.lua" tests="11" failures="1" errors="5" ' ..
        'skipped="3"',
      xml, 1, true)
    assert.matches('<testcase classname="specs.fixtures.runner.outcomes" name="outcomes fails an assertion" ' ..
        'time="[%d.]+" '
      .. 'file="specs/fixtures/runner/outcomes.lua" line="4">', xml)
    assert.matches('<skipped message="later"/>', xml, 1, true)
    assert.matches('<error message="specs/fixtures/runner/outcomes.lua:5: plain error" type="error">', xml, 1, true)
  end)

  it("keeps captured output and flaky attempts", function()
    local path = tmp()
    sonde("test", "--retries", "1", "-o", "junit=" .. path, fixture("runner/flaky.lua"), fixture("runner/output.lua"))
    local xml = read(path)
    assert.matches("<flakyFailure message=\"specs/fixtures/runner/flaky.lua:7: attempt 1\" type=\"fail\">", xml, 1,
        true)
    assert.matches("<rerunFailure ", xml, 1, true)
    assert.matches("<system%-out>shown for the failure\nwritten 42\nto stdout\n</system%-out>", xml)
    local c = junit_counts(path)
    assert.are.same({ tests = 5, failures = 1, errors = 1, skipped = 0, suites = 2 }, c)
  end)

  it("escapes what XML cannot hold", function()
    local dir = support.temp_dir()
    local spec = dir .. "/odd_spec.lua"
    support.write_file(spec,
      'it("<&\\"quotes\\">", function() print("bell \\7 and bad utf8 \\255\\254") error("x < y & z") end)\n')
    local path = dir .. "/report.xml"
    sonde("test", "-o", "junit=" .. path, spec)
    local code, _, err = process.run { "xmllint", "--noout", path, timeout = 30 }
    assert.are.equal(0, code, err)
    assert.are.same({ tests = 1, failures = 0, errors = 1, skipped = 0, suites = 1 }, junit_counts(path))
  end)

  it("shard reports merged by junitparser give the whole suite's counts", function()
    -- every kind of error a shard could report twice: strict and lazy hook
    -- errors, a describe that fails, a file that does not load
    local files = { fixture("runner/outcomes.lua"), fixture("runner/many.lua"), fixture("runner/setup_error.lua"),
      fixture("runner/tags.lua"), fixture("runner/describe_no_fn.lua"), "specs/compat/b_outcomes_compat.lua" }
    local whole = tmp()
    sonde("test", "-o", "junit=" .. whole, unpack(files))
    local parts = {}
    for k = 1, 3 do
      parts[k] = tmp()
      sonde("test", "--shard", k .. "/3", "-o", "junit=" .. parts[k], unpack(files))
    end
    local merged = tmp()
    local code, _, err = process.run { PYTHON, "-m", "junitparser", "merge", parts[1], parts[2], parts[3], merged,
      timeout = 60 }
    assert.are.equal(0, code, err)
    local a, b = junit_counts(whole), junit_counts(merged)
    a.suites, b.suites = nil, nil
    assert.are.same(a, b)
    assert.is_true(a.tests > 50 and a.errors > 15)
  end)
end)

describe("json", function()
  it("has the seed suite's schema plus file, line, status and tags per section", function()
    local report, code = json_report(fixture("runner/outcomes.lua"), fixture("runner/tags.lua"))
    assert.are.equal(1, code)
    assert.is_false(report.passed)
    assert.are.equal("number", type(report.total_duration_ms))
    assert.are.equal(0, report.total_requests)
    assert.are.equal(14, #report.sections)
    for _, s in ipairs(report.sections) do
      for _, k in ipairs({ "name", "passed", "duration_ms", "requests", "file", "line", "status", "tags" }) do
        assert.is_not_nil(s[k], k .. " of " .. tostring(s.name))
      end
    end
    local by_name = {}
    for _, s in ipairs(report.sections) do by_name[s.name] = s end
    local failed = by_name["outcomes fails an assertion"]
    assert.are.same({ false, "fail", 4, "specs/fixtures/runner/outcomes.lua" }, { failed.passed, failed.status,
      failed.line, failed.file })
    assert.matches("Expected objects to be equal", failed.error)
    assert.are.equal(cjson.null, by_name["outcomes passes"].error)
    assert.are.same({ "slow", "smoke" }, by_name["api #slow lists users #smoke"].tags)
    assert.are.same({}, by_name["outcomes passes"].tags)
    assert.are.equal("pending", by_name["outcomes is pending inside"].status)
  end)

  it("says passed when everything passed, and counts", function()
    local report, code = json_report(fixture("runner/hooks.lua"))
    assert.are.equal(0, code)
    assert.is_true(report.passed)
    assert.are.same({ passed = 3, failed = 0, failures = 0, errors = 0, skipped = 0, flaky = 0 }, report.counts)
  end)

  it("marks a test that passed on a retry as flaky", function()
    local report = json_report("--retries", "2", fixture("runner/flaky.lua"))
    local s = report.sections[2]
    assert.are.equal("is flaky", s.name)
    assert.are.equal("flaky", s.status)
    assert.is_true(s.passed)
    assert.are.equal(1, #s.attempts)
    assert.matches("^specs/fixtures/runner/flaky.lua:7: attempt 1\n", s.attempts[1])
  end)
end)

describe("table", function()
  it("prints the seed suite's table: section, time, reqs, status, and a total row", function()
    local code, out = sonde("test", "-o", "table", fixture("runner/tags.lua"), fixture("runner/setup_error.lua"))
    assert.are.equal(1, code)
    assert.matches("section%s+time%s+reqs%s+status\n", out)
    assert.matches("\nhealth #smoke%s+[%d.]+ms%s+0%s+✓\n", out)
    assert.matches("\nbroken setup %(setup%)%s+[%d.]+ms%s+0%s+✗ error\n", out)
    assert.matches("\ntotal%s+[%d.]+ms%s+0\n", out)
    assert.matches("\nsome tests failed\n$", out)
  end)
end)

describe("tap", function()
  it("is accepted by prove, flaky tests and all", function()
    local code, out = process.run { "prove", "--exec", support.bin .. " test --retries 1 -o tap",
      fixture("runner/hooks.lua"), timeout = 60 }
    assert.are.equal(0, code, out)
    code, out = process.run { "prove", "--exec", support.bin .. " test --retries 1 -o tap", fixture("runner/flaky.lua"),
      timeout = 60 }
    assert.are.equal(1, code)
    assert.matches("Failed 1/3 subtests", out)
  end)
end)

describe("human", function()
  -- script(1) runs the command on a pseudo-terminal.
  local function on_tty(env, ...)
    local cmd = { support.bin, "test", ... }
    for i, a in ipairs(cmd) do cmd[i] = "'" .. a .. "'" end
    local code, out = process.run { "script", "-qec", table.concat(cmd, " "), "/dev/null", env = env, timeout = 60 }
    return code, out
  end

  it("paints on a terminal and draws a live progress line", function()
    local _, out = on_tty({ NO_COLOR = false }, fixture("runner/outcomes.lua"))
    assert.matches("\27%[31mFAIL\27%[0m outcomes fails an assertion", out)
    assert.matches("\r\27%[K", out)
    assert.matches("%d+ passed, %d+ failed, %d+ skipped", out)
  end)

  it("never paints with NO_COLOR", function()
    local _, out = on_tty({ NO_COLOR = "1" }, fixture("runner/outcomes.lua"))
    assert.not_matches("\27%[3", out)
    assert.matches("FAIL 1%) outcomes fails an assertion", out)
  end)

  it("neither paints nor draws when not on a terminal", function()
    local _, out = sonde("test", fixture("runner/outcomes.lua"), { env = { NO_COLOR = false } })
    assert.not_matches("\27", out)
    assert.matches("^%.FEE%-%-%-E%.EE\n", out)
  end)

  it("shows a table mismatch as path-addressed differences", function()
    local code, out = sonde("test", fixture("runner/diff.lua"))
    assert.are.equal(1, code)
    assert.matches("diff.lua:5: Expected objects to be the same.\n" ..
      "  $.extra: unexpected, got true\n" ..
      "  $.items[3].price: expected 10, got 12\n" ..
      "  $.note: missing (expected \"x\")\n", out, 1, true)
    assert.not_matches("Passed in:\n  %(table", out)
    assert.matches("Passed in:\n  %(number%) 2", out) -- scalars keep luassert's message
  end)

  it("shows a failing test's captured output, keeps a passing one's quiet", function()
    local code, out = sonde("test", fixture("runner/output.lua"))
    assert.are.equal(1, code)
    assert.matches("captured output:\n    shown for the failure\n    written 42\n    to stdout\n", out, 1, true)
    assert.not_matches("quiet when passing", out)
    local _, loud = sonde("test", "--no-capture", fixture("runner/output.lua"))
    assert.matches("quiet when passing", loud)
  end)

  it("lists flaky tests and says how many", function()
    local code, out = sonde("test", "--retries", "1", fixture("runner/flaky.lua"))
    assert.are.equal(1, code)
    assert.matches("FLAKY %d%) is flaky\n  at specs/fixtures/runner/flaky.lua:5\n  passed on attempt 2 after failing:\n"
      .. "  attempt 1: specs/fixtures/runner/flaky.lua:7: attempt 1\n", out)
    assert.matches("1 failed: 1 failure; 1 flaky %(passed on a retry%)", out)
    assert.matches("\n1 passed, 1 failed\n$", out)
  end)
end)
