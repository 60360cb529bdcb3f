-- examples/embed: a C program that links libsonde and adds its own module.
local support = require("specs.support")
local process = require("sonde.process")

describe("the embedding API", function()
  local bin = support.build_dir .. "/embed_example"

  it("runs a scenario that uses the embedder's native module", function()
    local code, out, err = process.run { bin, "examples/embed/scenario.lua", timeout = 60 }
    assert.are.equal(0, code, err)
    assert.are.equal("hello, embedder (from examples/embed/scenario.lua)\n", out)
  end)

  it("returns 1 when the scenario fails and 2 when it cannot load", function()
    local code, _, err = process.run { bin, support.fixture("raises.lua"), timeout = 60 }
    assert.are.equal(1, code)
    assert.matches("scenario went wrong", err)
    code, _, err = process.run { bin, support.fixture("syntax_error.lua"), timeout = 60 }
    assert.are.equal(2, code)
    assert.matches("syntax_error.lua:3:", err)
  end)
end)
