-- busted-compat: hook order across nesting, strict and lazy setup, finally.
-- Each check is a test of its own, so a runner that orders hooks
-- differently from busted gets a failure here and unequal counts.
local log = {}
local function add(s) log[#log + 1] = s end
local function take()
  local got = log
  log = {}
  return table.concat(got, ",")
end

describe("outer", function()
  setup(function() add("setup outer") end)
  teardown(function() add("teardown outer") end)
  before_each(function() add("before outer") end)
  after_each(function() add("after outer") end)

  it("first", function()
    assert.are.equal("setup outer,before outer", take())
  end)

  describe("inner", function()
    lazy_setup(function() add("lazy inner") end)
    lazy_teardown(function() add("lazy teardown inner") end)
    strict_setup(function() add("strict inner") end)
    strict_teardown(function() add("strict teardown inner") end)
    before_each(function() add("before inner") end)
    after_each(function() add("after inner") end)

    it("second", function()
      finally(function() add("finally second") end)
      assert.are.equal("after outer,strict inner,lazy inner,before outer,before inner", take())
    end)

    it("third", function()
      assert.are.equal("finally second,after inner,after outer,before outer,before inner", take())
    end)
  end)

  it("fourth sees the inner block end: lazy teardown before strict teardown", function()
    assert.are.equal("after inner,after outer,lazy teardown inner,strict teardown inner,before outer", take())
  end)

  describe("lazy setup of a block whose tests are all pending", function()
    lazy_setup(function() add("never") end)
    pending("waits")
  end)

  it("fifth: pending tests need no lazy setup", function()
    assert.are.equal("after outer,before outer", take())
  end)
end)

context("aliases", function()
  spec("spec is it", function() assert.is_true(true) end)
  test("test is it", function() assert.is_true(true) end)
end)

describe "curried describe" (function()
  it "curried it" (function() assert.is_true(true) end)
end)
