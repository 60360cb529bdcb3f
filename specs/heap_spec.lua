-- The Lua heap (host/heap.c): blocks of every size class, and of malloc's
-- beyond them, keep their content through growth, moves between classes
-- and reuse after a collection, as with LuaJIT's own allocator.
local support = require("specs.support")

describe("the Lua heap", function()
  it("gives a churning script the same content as LuaJIT's own allocator", function()
    local script = support.fixture("heap_churn.lua")
    local code, out, err = support.sonde("run", script)
    assert.are.equal(0, code, err)
    local lj_code, lj_out, lj_err = support.sonde("run", script, { env = { SONDE_HEAP = "luajit" } })
    assert.are.equal(0, lj_code, lj_err)
    assert.matches("^digest %d+\n$", out)
    assert.are.equal(lj_out, out)
  end)
end)
