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

  it("a string or key holding the placeholders' own marks is written as itself (fuzz_json)", function()
    -- found by fuzz_json: "\0sonde:number:1,2]\0" was written as the raw text 1,2]
    local v = { "\0sonde:number:1,2]\0", "\0sonde:empty-array\0", "\0sonde:1\0", "a/\\/\0sonde:",
      { ["\0sonde:2\0"] = json.array(), n = 123456789012345678 } }
    local s = json.encode(v)
    assert.are.same(v, json.decode(s))
    assert.are.equal('"\\u0000sonde:number:1,2]\\u0000"', s:match('^%[("[^"]*")'))
    assert.matches('"\\u0000sonde:2\\u0000":%[%]', s) -- the member's place among its object's depends on hashing
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
    assert.is_false(ok)
    assert.matches("%$%.list is a sparse array %(2 items, highest index 50%)", err)
    ok, err = pcall(json.encode, { x = 0 / 0 })
    assert.is_false(ok)
    assert.matches("%$%.x is nan", err)
    local cyc = {}
    cyc.self = cyc
    ok, err = pcall(json.encode, cyc)
    assert.is_false(ok)
    assert.matches("cycle", err)
    ok, err = pcall(json.encode, { [true] = 1 })
    assert.is_false(ok)
    assert.matches("boolean key", err)
    ok, err = pcall(json.pretty, { f = print })
    assert.is_false(ok)
    assert.matches("json.pretty: cannot encode: %$%.f is a function", err)
  end)

  it("says where decoding fails", function()
    local ok, err = pcall(function() local v = json.decode('{"a": [1, 2,, 3]}') return v end)
    assert.is_false(ok)
    assert.matches("^.-json_spec.lua:%d+: json.decode: .* at character 13", err)
    ok, err = pcall(json.decode, nil)
    assert.is_false(ok)
    assert.matches("json.decode: expected a string, got nil", err)
  end)
end)

describe("sonde.json numbers", function()
  it("writes numbers cjson would round (over 14 digits) exactly", function()
    assert.are.equal('{"id":9007199254740991}', json.encode({ id = 9007199254740991 }))
    assert.are.equal('{"n":123456789012345}', json.encode(json.decode('{"n": 123456789012345}')))
    assert.are.equal(1 / 3, json.decode(json.encode(1 / 3)))
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal('{\n  "big": 1000000000000001\n}', json.pretty({ big = 1e15 + 1 }))
  end)
end)
