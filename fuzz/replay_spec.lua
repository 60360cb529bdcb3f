-- fuzz/replay_spec.lua: the spec file that fuzz_journal's new runner walks
-- and replays the fuzzed journal into (fuzz/targets.lua).
describe("replayed", function()
  for i = 1, 3 do
    it("test " .. i .. " #tagged", function() end)
  end
  describe("nested", function()
    it("test 4", function() end)
    pending("test 5")
    it("test 6", function() end)
  end)
end)
