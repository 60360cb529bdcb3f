-- sonde.runner.diff: the path-addressed differences shown for table mismatches.
local diff = require("sonde.runner.diff")
local cjson = require("cjson")

describe("diff.compare", function()
  it("addresses nested keys and list items from $", function()
    local expected = { items = { { price = 1 }, { price = 5 }, { price = 10 } } }
    local actual = { items = { { price = 1 }, { price = 5 }, { price = 12 } } }
    assert.are.same({ "$.items[3].price: expected 10, got 12" }, diff.compare(expected, actual))
  end)

  it("says which keys are missing and which were not expected", function()
    assert.are.same({ "$.a: missing (expected 1)", "$.b: unexpected, got \"two\"" },
      diff.compare({ a = 1 }, { b = "two" }))
  end)

  it("names both types when they differ", function()
    assert.are.same({ "$.id: expected number 7, got string \"7\"", "$.tags: expected a list of 2, got string \"a\"" },
      diff.compare({ id = 7, tags = { "a", "b" } }, { id = "7", tags = "a" }))
  end)

  it("quotes keys that are not identifiers and sorts keys the same way every time", function()
    assert.are.same({ "$[2]: expected 2, got 3", "$[\"a b\"]: expected true, got false", "$.z: expected 1, got 2" },
      diff.compare({ 1, 2, z = 1, ["a b"] = true }, { 1, 3, z = 2, ["a b"] = false }))
  end)

  it("shows JSON null as null", function()
    assert.are.same({ "$.x: expected null, got number 1" }, diff.compare({ x = cjson.null }, { x = 1 }))
  end)

  it("uses luassert matchers in the expected value", function()
    local match = require("luassert.match")
    assert.are.same({}, diff.compare({ id = match.is_number() }, { id = 3 }))
    local lines = diff.compare({ id = match.is_number() }, { id = "x" })
    assert.are.equal(1, #lines)
    assert.matches("^%$%.id: expected .*, got \"x\"$", lines[1])
  end)

  it("finds nothing between equal tables, cycles included", function()
    local a, b = { n = 1 }, { n = 1 }
    a.self, b.self = a, b
    assert.are.same({}, diff.compare(a, b))
  end)

  it("stops after MAX_LINES and says how many more there are", function()
    local expected, actual = {}, {}
    for i = 1, diff.MAX_LINES + 5 do expected[i], actual[i] = i, -i end
    local lines = diff.compare(expected, actual)
    assert.are.equal(diff.MAX_LINES + 1, #lines)
    assert.are.equal("... and 5 more differences", lines[#lines])
  end)
end)

describe("a failed assert.are.same on tables", function()
  it("carries the diff in its failure", function()
    local ok, err = pcall(function() assert.are.same({ a = { 1, 2 } }, { a = { 1, 3 } }) end)
    assert.is_false(ok)
    assert.are.same({ "$.a[2]: expected 2, got 3" }, err.diff)
  end)

  it("a passing one leaves nothing behind for the next failure", function()
    assert.are.same({ a = 1 }, { a = 1 })
    local ok, err = pcall(function() assert.are.equal(1, 2) end)
    assert.is_false(ok)
    assert.is_nil(err.diff)
  end)
end)
