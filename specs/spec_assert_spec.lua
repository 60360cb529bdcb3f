-- sonde.runner.assert: the `assert` of spec files takes a fast path for
-- passing common assertions and must agree with luassert everywhere else.
local spec_assert = require("sonde.runner.assert")
local luassert = require("luassert")
local util = require("luassert.util")
local support = require("specs.support")

local plain_same = spec_assert.plain_same

-- Pairs luassert's deepcompare(a, b, true) sees as equal or not.
local function cases()
  local shared = { 1, 2 }
  local cyc_a, cyc_b = { n = 1 }, { n = 1 }
  cyc_a.self, cyc_b.self = cyc_a, cyc_b
  local eq_mt = { __eq = function() return true end }
  local with_index = setmetatable({}, { __index = function() return 1 end })
  local deep_a, deep_b = {}, {}
  local a, b = deep_a, deep_b
  for _ = 1, 100 do
    a.next, b.next = {}, {}
    a, b = a.next, b.next
  end
  return {
    { 1, 1 }, { 1, 2 }, { "a", "a" }, { "a", "b" }, { true, false }, { nil, false }, { 0 / 0, 0 / 0 },
    { {}, {} }, { { a = 1 }, { a = 1 } }, { { a = 1 }, { a = 2 } }, { { a = 1 }, { a = 1, b = 2 } },
    { { a = 1, b = 2 }, { a = 1 } }, { { 1, 2, 3 }, { 1, 2, 3 } }, { { 1, 2, 3 }, { 1, 2 } },
    { { x = { y = { z = "deep" } } }, { x = { y = { z = "deep" } } } }, { { x = { y = 1 } }, { x = { y = "1" } } },
    { { shared }, { shared } }, { shared, shared }, { { [shared] = 1 }, { [shared] = 1 } },
    { { [{}] = 1 }, { [{}] = 1 } }, { cyc_a, cyc_b }, { deep_a, deep_b },
    { setmetatable({}, eq_mt), setmetatable({ 1 }, eq_mt) }, { with_index, { 1 } }, { { 1 }, with_index },
    { { a = 0 / 0 }, { a = 0 / 0 } }, { {}, "table" }, { { f = print }, { f = print } },
  }
end

describe("sonde.runner.assert", function()
  it("never calls equal what luassert's deepcompare calls different", function()
    for i, c in ipairs(cases()) do
      local fast = plain_same(c[1], c[2], 1)
      local slow = util.deepcompare(c[1], c[2], true)
      if fast == true then assert(slow == true, "case " .. i .. ": fast path passes what luassert fails") end
      if slow ~= true then assert(fast ~= true, "case " .. i) end
    end
  end)

  it("passes and fails the same calls as luassert, for every fast-pathed assertion", function()
    local front = spec_assert.assert
    local calls = {
      { "same", { a = 1 }, { a = 1 } }, { "same", { a = 1 }, { a = 2 } }, { "same", 1, 1 }, { "same", 1 },
      { "equals", 1, 1 }, { "equal", "x", "y" }, { "equals", {}, {} }, { "truthy", 0 }, { "truthy", nil },
      { "falsy", false }, { "falsy", 1 }, { "True", true }, { "true", 1 }, { "false", false }, { "is_nil", nil },
      { "is_nil" }, { "is_number", 1 }, { "is_string", 1 }, { "is_table", {} }, { "is_function", print },
    }
    for _, call in ipairs(calls) do
      local name = call[1]
      local ok_fast = pcall(front.is[name], unpack(call, 2, table.maxn(call)))
      local ok_slow = pcall(luassert.is[name], unpack(call, 2, table.maxn(call)))
      assert(ok_fast == ok_slow, name .. ": " .. tostring(ok_fast) .. " vs luassert " .. tostring(ok_slow))
    end
  end)

  it("returns what luassert returns", function()
    local t = { 1 }
    local a, b, c = assert.are.same(t, { 1 }, "msg")
    assert(a == t and b[1] == 1 and c == "msg")
    assert(select("#", assert.is_true(true)) == 1)
    local v, m = assert(5, "why")
    assert(v == 5 and m == "why")
  end)

  it("leaves modifiers, messages and spies to luassert", function()
    assert.is_not.same({ a = 1 }, { a = 2 })
    assert.has_no.errors(function() end)
    assert.has_error(function() error("boom", 0) end, "boom")
    local ok, err = pcall(function() assert.message("custom words").is_true(false) end)
    assert(not ok and tostring(err):find("custom words", 1, true))
    local s = spy.new(function() end)
    s(1)
    assert.spy(s).was.called_with(1)
    assert.spy(s).was.called(1)
  end)

  it("follows an assertion registered again under a fast-pathed name", function()
    local namespaces = require("luassert.namespaces")
    local saved = namespaces.assertion.truthy
    assert.is.truthy(1) -- resolved and cached with luassert's own truthy
    luassert:register("assertion", "truthy", function() return false end, "assertion.truthy.positive",
      "assertion.truthy.negative")
    local ok = pcall(function() assert.is.truthy(1) end)
    namespaces.assertion.truthy = saved
    assert(not ok, "the cached fast path ignored the new truthy")
  end)
end)

describe("a failing assertion through the fast front", function()
  it("names the spec's own line and keeps luassert's message", function()
    local code, out = support.sonde("test", support.fixture("assert_front_fail.lua"))
    assert.are.equal(1, code)
    assert.matches("assert_front_fail%.lua:4:", out)
    assert.matches("Expected objects to be the same", out)
    assert.matches("assert_front_fail%.lua:7:", out)
    assert.matches("Expected objects to be equal", out)
    assert.matches("%$%.a: expected 1, got 2", out)
    assert.matches("0 passed, 2 failed", out)
  end)
end)

describe("luassert's state between tests", function()
  local target = { greet = function() return "hello" end }

  it("a stub left in place by one test", function()
    stub(target, "greet").returns("stubbed")
    assert:set_parameter("TableFormatLevel", 7)
    assert.are.equal("stubbed", target.greet())
  end)

  it("is gone in the next, with the parameter it set", function()
    assert.are.equal("hello", target.greet())
    assert.are_not.equal(7, assert:get_parameter("TableFormatLevel"))
  end)

  local spied = { f = function() return 1 end }

  it("a spy left on a function by one test", function()
    spy.on(spied, "f")
    assert.are.equal("table", type(spied.f))
  end)

  it("is gone in the next", function()
    assert.are.equal("function", type(spied.f))
  end)

  local function failure_of(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    return tostring(type(err) == "table" and err.message or err)
  end

  it("a formatter added by one test", function()
    assert:add_formatter(function(v) if v == "sentinel" then return "FORMATTED" end end)
    assert.matches("FORMATTED", failure_of(function() assert.are.equal("x", "sentinel") end))
  end)

  it("is not used in the next", function()
    assert.does_not.match("FORMATTED", failure_of(function() assert.are.equal("x", "sentinel") end))
  end)
end)
