-- Describe bodies run in execution order (busted's): a nested body runs
-- when its block's turn comes, after the tests before it and with what
-- their hooks set; a body that raises is one error of the run (exit 1),
-- not a file that failed to load. --list and --jobs follow the same order.
local support = require("specs.support")

local sonde, fixture, tap = support.sonde, support.fixture, support.tap

describe("describe bodies", function()
  it("run when their block's turn comes, seeing earlier tests' hooks", function()
    local code, out = sonde("test", "-o", "tap", fixture("runner/describe_order.lua"))
    local status, order = tap(out)
    assert.are.same({ "outer first", "outer inner sees the earlier hook's state", "outer inner broken",
      "outer inner runs after a broken sibling", "outer last" }, order)
    assert.are.same({ "ok", "ok", "not ok", "ok", "ok" }, { status[order[1]], status[order[2]], status[order[3]],
      status[order[4]], status[order[5]] })
    assert.matches("describe_order.lua:16: the body broke", out)
    assert.are.equal(1, code) -- an error of a test block, as busted counts it: not exit 2
  end)

  it("that raise count as one error in the human summary", function()
    local _, out = sonde("test", fixture("runner/describe_order.lua"))
    assert.matches("\n4 passed, 1 failed\n$", out)
  end)

  it("run for --list, which names what a body that needs hook state hides", function()
    local code, out, err = sonde("test", "--list", fixture("runner/describe_order.lua"))
    assert.matches("describe_order.lua:11: outer first\n", out, 1, true)
    assert.matches("describe_order.lua:19: outer last\n", out, 1, true)
    assert.is_nil(out:find("inner", 1, true))
    assert.matches("describe_order.lua:14: describe 'outer inner' raised while listing", err, 1, true)
    assert.are.equal(1, code)
  end)

  it("give --jobs the same results as a serial run", function()
    local _, serial = sonde("test", "-o", "tap", fixture("runner/describe_order.lua"))
    local _, jobs = sonde("test", "-o", "tap", "--jobs", "2", fixture("runner/describe_order.lua"),
      fixture("runner/hooks.lua"))
    local s_status, s_order = tap(serial)
    local j_status, j_order = tap(jobs)
    for i, name in ipairs(s_order) do
      assert.are.equal(name, j_order[i])
      assert.are.equal(s_status[name], j_status[name])
    end
  end)

  it("not reached when a --jobs worker dies are one error, after the tests it knew of", function()
    local code, out = sonde("test", "-o", "tap", "--jobs", "2", fixture("runner/crash_nested.lua"))
    assert.are.equal(1, code)
    local status, order = tap(out)
    assert.are.same({ "a passes first", "a b kills the process", "a b is never reached",
      fixture("runner/crash_nested.lua") .. " (not reached)" }, order)
    assert.are.same({ "ok", "not ok", "not ok", "not ok" }, { status[order[1]], status[order[2]], status[order[3]],
      status[order[4]] })
    assert.matches("not run: 1 describe block%(s%) of this file had not started when its worker stopped", out)
  end)
end)
