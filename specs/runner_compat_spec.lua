-- busted compatibility: the busted-style files in specs/compat/ run under
-- Debian's busted and under `sonde test`, and both must count the same
-- successes, failures, errors and pending tests, with and without
-- selection. The files check hook order, contexts and insulation with
-- tests of their own, so a difference in behaviour shows as a difference
-- in counts.
local cjson = require("cjson")
local process = require("sonde.process")
local support = require("specs.support")

local COMPAT = "specs/compat"

-- busted's closing line: "29 successes / 4 failures / 13 errors / 4 pending : ..."
local function busted_counts(...)
  local argv = { "busted", "--pattern=_compat", ... }
  argv[#argv + 1] = COMPAT
  argv.timeout = 120
  local _, out, err = process.run(argv)
  local line = out:match("(%d+ success[^\n]*)")
  assert(line, "no counts line from busted:\n" .. out .. err)
  return {
    passed = tonumber(line:match("(%d+) success")),
    failures = tonumber(line:match("(%d+) failure")),
    errors = tonumber(line:match("(%d+) error")),
    pending = tonumber(line:match("(%d+) pending")),
  }
end

local function sonde_counts(...)
  local path = os.tmpname()
  local args = { "test", "--pattern", "_compat", "-o", "json=" .. path, ... }
  args[#args + 1] = COMPAT
  args[#args + 1] = { timeout = 120 }
  support.sonde(unpack(args))
  local report = cjson.decode(support.read_file(path))
  os.remove(path)
  local c = report.counts
  return { passed = c.passed, failures = c.failures, errors = c.errors, pending = c.skipped }
end

describe("busted compatibility", function()
  it("counts the compat suite as busted does", function()
    local busted = busted_counts()
    assert.are.same(busted, sonde_counts())
    assert.is_true(busted.passed > 20 and busted.failures > 0 and busted.errors > 0 and busted.pending > 0)
  end)

  for _, selection in ipairs({ { "--tags=smoke" }, { "--exclude-tags=flaky" }, { "--tags=slow",
      "--exclude-tags=smoke" },
    { "--filter=users" }, { "--filter-out=outcomes" } }) do
    it("counts as busted does with " .. table.concat(selection, " "), function()
      assert.are.same(busted_counts(unpack(selection)), sonde_counts(unpack(selection)))
    end)
  end

  it("runs the hook-order checks green (they are tests in the compat files)", function()
    local code, out = support.sonde("test", "-o", "tap", "--pattern", "_compat", COMPAT .. "/a_hooks_compat.lua")
    assert.are.equal(0, code, out)
    assert.not_matches("not ok", out)
  end)
end)
