-- busted-compat: #tags in describe and it names, for --tags/--exclude-tags.
describe("api #slow", function()
  it("lists users #smoke", function() end)
  it("creates users", function() end)
  it("breaks on purpose #flaky", function() error("tagged failure") end)
end)
it("health #smoke", function() end)
it("untagged", function() end)
