-- busted-compat: luassert's assert, spy, stub, mock and match as busted
-- exports them; spies made in a test are reverted after it.
local target = { greet = function(name) return "hello " .. name end }

describe("luassert", function()
  it("spies on a function", function()
    local s = spy.on(target, "greet")
    assert.are.equal("hello ann", target.greet("ann"))
    assert.spy(s).was.called_with("ann")
    assert.spy(s).was.called(1)
  end)

  it("stubs a function and reverts it", function()
    local s = stub(target, "greet").returns("stubbed")
    assert.are.equal("stubbed", target.greet("bob"))
    s:revert()
    assert.are.equal("hello cy", target.greet("cy"))
  end)

  it("mocks a table", function()
    local m = mock({ f = function() return 1 end })
    m.f()
    assert.stub(m.f).was.called()
  end)

  it("matches arguments", function()
    local s = spy.new(function() end)
    s({ id = 3 }, "x")
    assert.spy(s).was.called_with(match.is_table(), match.is_string())
    assert.is_true(match.is_number()(5))
  end)

  it("checks errors", function()
    assert.has_error(function() error("boom", 0) end, "boom")
    assert.has_no.errors(function() end)
    assert.error_matches(function() error("code 42") end, "code %d+")
  end)

  it("fails a spy expectation", function()
    local s = spy.new(function() end)
    assert.spy(s).was.called()
  end)
end)
