-- The sonde command line, run as a subprocess: exit codes and the one clear
-- line each user mistake gets.
local support = require("specs.support")
local process = require("sonde.process")
local task = require("sonde.task")

local sonde, fixture = support.sonde, support.fixture

describe("sonde --version and --help", function()
  it("prints the version", function()
    local code, out = sonde("--version")
    assert.are.equal(0, code)
    assert.matches("^sonde %d+%.%d+%.%d+\n$", out)
  end)

  it("prints usage on --help and exits 0", function()
    local code, out = sonde("--help")
    assert.are.equal(0, code)
    assert.matches("usage: sonde run FILE", out)
  end)

  it("runs the script on stdin when called with no arguments and no terminal", function()
    local code, out = sonde({ stdin = "print('piped')" })
    assert.are.equal(0, code)
    assert.are.equal("piped\n", out)
  end)
end)

describe("sonde run", function()
  it("runs a script with its arguments and exits 0", function()
    local code, out = sonde("run", fixture("args.lua"), "one", "two")
    assert.are.equal(0, code)
    assert.are.equal(fixture("args.lua") .. "\t2\tone\ttwo\n", out)
  end)

  it("accepts FILE.lua without the run command", function()
    local code, out = sonde(fixture("args.lua"), "x")
    assert.are.equal(0, code)
    assert.matches("\t1\tx\n$", out)
  end)

  it("names the file and line of a syntax error, exit 2", function()
    local code, out, err = sonde("run", fixture("syntax_error.lua"))
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("^sonde: cannot load specs/fixtures/syntax_error.lua:3: unexpected symbol near '='\n$", err)
  end)

  it("names a missing file, exit 2", function()
    local code, _, err = sonde("run", "no/such/file.lua")
    assert.are.equal(2, code)
    assert.are.equal("sonde: cannot load no/such/file.lua: no such file or not readable\n", err)
  end)

  it("says which file is expected when run has none, exit 2", function()
    local code, _, err = sonde("run")
    assert.are.equal(2, code)
    assert.are.equal("sonde run: expected a FILE to run\n", err)
  end)

  it("rejects an unknown command, exit 2", function()
    local code, _, err = sonde("frobnicate")
    assert.are.equal(2, code)
    assert.matches("unknown command 'frobnicate'", err)
  end)

  it("reports an error with file, line and a user-only traceback, exit 1", function()
    local code, _, err = sonde("run", fixture("raises.lua"))
    assert.are.equal(1, code)
    assert.matches("^sonde: specs/fixtures/raises.lua:3: scenario went wrong\nstack traceback:\n", err)
    assert.matches("raises.lua:5: in main chunk", err)
    assert.not_matches("lua/sonde/task.lua", err)
  end)

  it("reports a table error through its __tostring and survives a nil error", function()
    local code, _, err = sonde("run", fixture("raise_table.lua"))
    assert.are.equal(1, code)
    assert.matches("^sonde: a table error", err)
  end)

  it("reports an error in a task nobody joined, exit 1", function()
    local code, out, err = sonde("run", fixture("lost_task.lua"))
    assert.are.equal(1, code)
    assert.are.equal("script finished\n", out)
    assert.matches("error in a task nobody joined: specs/fixtures/lost_task.lua:3: nobody joined me", err)
  end)

  for _, sig in ipairs({ "INT", "TERM" }) do
    it("stops on SIG" .. sig .. ", cleans up and exits non-zero", function()
      local p = process.spawn { support.bin, "run", fixture("hang.lua") }
      support.await_output(p, "stdout", "ready")
      p:kill(sig)
      local code = p:wait(30)
      assert.are.equal(130, code)
      assert.matches("interrupted", p:stderr())
    end)
  end
end)

describe("a second interrupt", function()
  it("exits at once, even when the script swallows the first, and stops its children", function()
    local p = process.spawn { support.bin, "run", fixture("stubborn.lua") }
    local child = tonumber(support.await_output(p, "stdout", "ready (%d+)"))
    p:kill("INT")
    task.sleep(0.05) -- let the first one be handled (the script swallows it)
    p:kill("INT")
    assert.are.equal(130, p:wait(30))
    local deadline = task.now() + 30
    while support.alive(child) and task.now() < deadline do task.sleep(0.02) end
    assert.is_false(support.alive(child))
  end)
end)

describe("sonde test usage errors", function()
  it("rejects an unknown option, exit 2", function()
    local code, _, err = sonde("test", "--bogus")
    assert.are.equal(2, code)
    assert.are.equal("sonde test: unknown option '--bogus' (see sonde --help)\n", err)
  end)

  it("names a missing spec path, exit 2", function()
    local code, _, err = sonde("test", "no/such/dir")
    assert.are.equal(2, code)
    assert.are.equal("sonde test: no/such/dir: no such file or directory\n", err)
  end)

  it("rejects an unknown reporter, exit 2", function()
    local code, _, err = sonde("test", "--output", "xml", fixture("runner/tags.lua"))
    assert.are.equal(2, code)
    assert.matches("unknown reporter 'xml' %(expected one of: human, tap", err)
  end)

  it("rejects an unwritable report path, exit 2", function()
    local code, _, err = sonde("test", "--output", "tap=/nonexistent/dir/r.tap", fixture("runner/tags.lua"))
    assert.are.equal(2, code)
    assert.matches("cannot write the tap report: /nonexistent/dir/r.tap", err)
  end)

  it("rejects a bad timeout and a missing option value, exit 2", function()
    local code, _, err = sonde("test", "--timeout", "soon")
    assert.are.equal(2, code)
    assert.matches("--timeout expects a number greater than 0, got 'soon'", err)
    code, _, err = sonde("test", "--filter")
    assert.are.equal(2, code)
    assert.matches("--filter expects a value", err)
  end)
end)

describe("sonde test interrupted", function()
  it("cancels the running test, reports what ran and exits 130", function()
    local out = support.interrupt_hang(support.fixture("runner/hang.lua"))
    assert.matches("\n1%.%.2\n", out)
  end)
end)
