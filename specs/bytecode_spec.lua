-- sonde.boot.bytecode: bytecode that keeps the keys table constructors reserve
-- (LuaJIT's own string.dump drops them before 2024, LuaJIT issue #1155).
local bytecode = require("sonde.boot.bytecode")

local function keys_of(dump)
  local out = {}
  for _, t in ipairs(bytecode.templates(dump)) do out[#out + 1] = table.concat(t.keys, ",") end
  return out
end

-- Functions with constructors of many shapes, and what to call them with.
local SHAPES = {
  { function(x, y) return { name = x, line = 1, fn = y } end, 1, 2 },
  { function(x, y) return { x, y, 3, "four" } end, "a", false },
  { function(x) return { a = { b = x, c = { d = x } }, [2] = x } end, 7 },
  { function(...) return { n = select("#", ...), ... } end, 1, nil, 3 },
  { function(x) local t = { a = x } t.b, t[1] = x, x return t end, "v" },
  -- luacheck: push ignore 311 (a constructor whose table is dropped: the subject)
  { function(x) local t = { a = x } t = { other = true } t.c = x return t end, 5 },
  -- luacheck: pop
  {
    function(n)
      local out = {}
      for i = 1, n do out[i] = { i = i, sq = i * i, name = "n" .. i } end
      return out
    end,
    20,
  },
  { function(x) local t = setmetatable({ a = x }, { __index = function() return "dflt" end }) return { t.a, t.zz } end,
      3 },
}

describe("sonde.boot.bytecode", function()
  it("loads back to functions that build the same tables as the source", function()
    for i, shape in ipairs(SHAPES) do
      local fn = shape[1]
      local loaded = assert(loadstring(bytecode.dump(fn)))
      assert.are.same({ fn(unpack(shape, 2, 4)) }, { loaded(unpack(shape, 2, 4)) }, "shape " .. i)
    end
  end)

  it("puts back the string keys constructors store, which string.dump drops, and leaves arrays be", function()
    local function build(x, y) return { name = x, line = 1, fn = y, x, y } end
    assert.are.same({ "line" }, keys_of(string.dump(build)))
    assert.are.same({ "fn,line,name" }, keys_of(bytecode.dump(build)))
    assert.are.equal(bytecode.templates(string.dump(build))[1].narray,
        bytecode.templates(bytecode.dump(build))[1].narray)
  end)

  it("keeps what # says of a table with holes", function()
    local function holes(x, y)
      local t = { a = 1, [1] = x, [3] = y }
      local u = { a = x }
      u[2] = x
      return #t, #u
    end
    assert.are.same({ holes(1, 3) }, { assert(loadstring(bytecode.dump(holes)))(1, 3) })
  end)

  it("leaves a dump with nothing to put back as string.dump wrote it", function()
    local function constant(x) return { a = 1, b = "two", 3 }, x end
    assert.are.equal(string.dump(constant), bytecode.dump(constant))
  end)

  it("takes later stores into the same local, and stops where the register is written again", function()
    local function later(x) local t = { a = x } t.b = x return t end
    assert.are.same({ "a,b" }, keys_of(bytecode.dump(later)))
    local function rewritten(x, y) local t = { a = x } t = y t.b = x return t end -- luacheck: ignore 311
    assert.are.same({ "a" }, keys_of(bytecode.dump(rewritten)))
  end)

  it("leaves nested functions' constructors to their own templates", function()
    local function outer(x)
      local inner = function(y) return { deep = y } end
      return { top = x, sub = inner(x) }
    end
    local keys = keys_of(bytecode.dump(outer))
    table.sort(keys)
    assert.are.same({ "deep", "sub,top" }, keys)
    assert.are.same(outer(4), assert(loadstring(bytecode.dump(outer)))(4))
  end)

  it("keeps the chunk name and line information", function()
    local chunk = assert(loadstring("local x = ...\nlocal function boom() error('e') end\nreturn { v = x, err = " ..
        "select(2, pcall(boom)) }", "@named.lua"))
    local loaded = assert(loadstring(bytecode.dump(chunk)))
    assert.are.equal("named.lua:2: e", loaded(1).err)
  end)
end)
