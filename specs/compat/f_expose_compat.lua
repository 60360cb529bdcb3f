-- busted-compat: expose publishes its globals, and everything the file
-- changed so far, to the files after this one.
_G.before_expose = "kept"

expose("an exposed block", function()
  exposed_value = 42
  _G.exposed_raw = "raw"
  it("sees its own changes", function() assert.are.equal(42, exposed_value) end)
end)
