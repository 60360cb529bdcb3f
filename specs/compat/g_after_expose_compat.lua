-- busted-compat: runs after f_expose_compat.lua.
it("sees what an exposed block published", function()
  assert.are.equal(42, exposed_value)
  assert.are.equal("raw", _G.exposed_raw)
  assert.are.equal("kept", _G.before_expose)
end)
