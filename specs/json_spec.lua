-- sonde.json: lua-cjson underneath, arrays that stay arrays, clear errors.
local json = require("sonde.json")

describe("sonde.json", function()
  it("round-trips objects, arrays, numbers, strings and null", function()
    local v = { name = "sonde", n = 1.5, list = { 1, 2, 3 }, nested = { ok = true }, none = json.null }
    local back = json.decode(json.encode(v))
    assert.are.same(v, back)
    assert.are.equal(json.null, back.none)
  end)

  it("encodes an empty table as {} and json.array({}) as []", function()
    assert.are.equal("{}", json.encode({}))
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.same('[]', json.encode({ items = json.array({}), meta = {} }):match('"items":(%[%])'))
    assert.are.same('{}', json.encode({ items = json.array({}), meta = {} }):match('"meta":({})'))
    assert.are.equal("[1,2]", json.encode(json.array({ 1, 2 })))
    assert.is_true(json.is_array(json.array()))
  end)

  it("a user string that looks like the placeholder stays a string", function()
    local s = json.encode({ json.array(), "sonde:empty-array" })
    assert.are.equal('[[],"sonde:empty-array"]', s)
  end)

  it("pretty prints with sorted keys and indentation", function()
    assert.are.equal('{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": []\n}',
      json.pretty({ b = {}, a = { 1, 2 }, c = json.array() }))
    assert.are.equal('"x"', json.pretty("x"))
  end)

  it("says where encoding fails: functions, sparse arrays, NaN, cycles, odd keys", function()
    local ok, err = pcall(json.encode, { a = { b = { c = print } } })
    assert.is_false(ok)
    assert.matches("json.encode: cannot encode: %$%.a%.b%.c is a function", err)
    ok, err = pcall(json.encode, { list = { [1] = 1, [50] = 2 } })
    assert.matches("%$%.list is a sparse array %(2 items, highest index 50%)", err)
    ok, err = pcall(json.encode, { x = 0 / 0 })
    assert.matches("%$%.x is nan", err)
    local cyc = {}
    cyc.self = cyc
    ok, err = pcall(json.encode, cyc)
    assert.matches("cycle", err)
    ok, err = pcall(json.encode, { [true] = 1 })
    assert.matches("boolean key", err)
    ok, err = pcall(json.pretty, { f = print })
    assert.matches("json.pretty: cannot encode: %$%.f is a function", err)
  end)

  it("says where decoding fails", function()
    local ok, err = pcall(function() local v = json.decode('{"a": [1, 2,, 3]}') return v end)
    assert.is_false(ok)
    assert.matches("^.-json_spec.lua:%d+: json.decode: .* at character 13", err)
    ok, err = pcall(json.decode, nil)
    assert.matches("json.decode: expected a string, got nil", err)
  end)
end)
