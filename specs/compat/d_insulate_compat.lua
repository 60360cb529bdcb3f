-- busted-compat: globals follow busted's contexts; insulate (and each file)
-- restores _G and package.loaded.
package.preload["compat_counter"] = function()
  local m = { n = 0 }
  function m.bump() m.n = m.n + 1 return m.n end
  return m
end

_G.leaky_raw_global = "from d"   -- undone when this file ends
file_level_value = "file"        -- lives in this file's environment

describe("contexts", function()
  before_each(function() shared_by_hook = "hook" end)

  it("sees what its block's before_each assigned", function()
    assert.are.equal("hook", shared_by_hook)
    test_local_value = 1
  end)

  it("does not see what another test assigned", function()
    assert.is_nil(test_local_value)
    assert.are.equal("file", file_level_value)
  end)
end)

insulate("an insulated block", function()
  _G.insulated_raw = true
  local counter = require("compat_counter")
  it("sees its own changes", function()
    assert.is_true(_G.insulated_raw)
    assert.are.equal(1, counter.bump())
    assert.are.equal(2, require("compat_counter").bump())
  end)
end)

it("does not see an insulated block's changes", function()
  assert.is_nil(_G.insulated_raw)
  assert.are.equal(1, require("compat_counter").bump())
end)
