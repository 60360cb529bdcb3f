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
    local report = require("sonde.json").decode(assert(io.open(dir .. "/r.json")):read("*a"))
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
