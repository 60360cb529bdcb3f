-- sonde.lib.pretty: how sonde shows a value to a person (the REPL's printer,
-- events' reports, a raised table, diff values).
local pretty = require("sonde.lib.pretty")
local json = require("sonde.json")
-- ------------------------------------------------------------- printing

describe("pretty.show", function()
  it("indents nested tables past the width and keeps short ones on one line", function()
    assert.are.equal('{"a": 1, "b": [1, 2, 3]}', pretty.show({ a = 1, b = { 1, 2, 3 } }))
    local wide = {}
    for i = 1, 8 do wide["key_number_" .. i] = "value " .. i end
    local text = pretty.show(wide)
    assert.matches('^{\n  "key_number_1": "value 1",\n  "key_number_2": "value 2",\n', text)
    assert.matches('\n}$', text)
  end)

  it("marks cycles", function()
    local a = { name = "a" }
    a.me = a
    a.list = { a }
    assert.are.equal('{"list": [<cycle>], "me": <cycle>, "name": "a"}', pretty.show(a))
  end)

  it("shows JSON values: null, empty arrays, numbers", function()
    local v = json.decode('{"n": null, "f": 1.5, "i": 10, "s": "x", "a": [true, false]}')
    assert.are.equal('{"a": [true, false], "f": 1.5, "i": 10, "n": null, "s": "x"}', pretty.show(v))
    assert.are.equal("[]", pretty.show(json.array({})))
    assert.are.equal("{}", pretty.show({}))
  end)

  it("truncates big tables and long strings with a count", function()
    local big = {}
    for i = 1, 100000 do big[i] = i end
    local text = pretty.show(big)
    assert.matches("%.%.%. %(99950 more%)\n%]$", text)
    local _, lines = text:gsub("\n", "")
    assert.is_true(lines < 20)
    local s = pretty.show(string.rep("x", 100000))
    assert.matches('"%.%.%. %(100000 bytes%)$', s)
    assert.is_true(#s < 2100)
    local map = {}
    for i = 1, 20000 do map["k" .. i] = i end
    assert.matches("%.%.%. %(19950 more%)\n}$", pretty.show(map))
  end)

  it("bounds a deep and wide value to a fixed number of lines", function()
    local function tree(depth)
      if depth == 0 then return "leaf" end
      local t = {}
      for i = 1, 10 do t["child" .. i .. string.rep("_", 30)] = tree(depth - 1) end
      return t
    end
    local text = pretty.show(tree(4))
    local _, lines = text:gsub("\n", "")
    assert.is_true(lines <= pretty.LIMITS.lines)
    assert.matches("more lines%)$", text)
  end)

  it("summarizes binary strings and escapes control characters", function()
    assert.are.equal("<4 bytes of binary: 00 01 ff 41>", pretty.show("\0\1\255A"))
    assert.are.equal('"tab\\there \\"quoted\\" é"', pretty.show('tab\there "quoted" é'))
    assert.are.equal("<5 bytes of binary: 1b 5b 32 4a 78>", pretty.show("\27[2Jx"))
  end)

  it("survives __tostring that fails or returns a non-string", function()
    local bad = setmetatable({}, { __tostring = function() error("no way") end })
    assert.matches("^<table: __tostring failed: .*no way>$", pretty.show(bad))
    local odd = setmetatable({}, { __tostring = function() return 42 end })
    assert.matches("^<table: __tostring failed", pretty.show(odd))
    assert.matches("^%[<table: __tostring failed", pretty.show({ bad }))
  end)

  it("shows functions by where they were defined", function()
    assert.are.equal("<function: builtin>", pretty.show(string.format))
    assert.matches("^<function: specs/pretty_spec.lua:%d+>$", pretty.show(function() end))
  end)
end)


describe("pretty.line", function()
  it("puts a table that would be indented on one line, and cuts it at the limit", function()
    local wide = {}
    for i = 1, 30 do wide["key" .. i] = i end
    local text = pretty.line(wide, 60)
    assert.is_nil(text:find("\n"))
    assert.are.equal(63, #text)
    assert.matches('^{"key1": 1, "key10": 10, ', text)
    assert.matches("%.%.%.$", text)
  end)
end)
