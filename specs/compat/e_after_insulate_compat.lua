-- busted-compat: runs after d_insulate_compat.lua (files run sorted).
it("a file does not leak raw globals to the next", function()
  assert.is_nil(_G.leaky_raw_global)
  assert.is_nil(file_level_value)
end)

it("a module the previous file loaded is loaded afresh", function()
  assert.are.equal(1, require("compat_counter").bump())
end)
