-- The sonde command links LuaJIT in (CMakeLists.txt) and exports its API:
-- a C module that a script or a spec requires binds to it. lua-filesystem's
-- lfs and lua-term come with busted (scripts/install-deps); luassert loads
-- term under pcall, so only a require of its own would see it fail.
local support = require("specs.support")

describe("C modules", function()
  it("load in a script and call into LuaJIT's API", function()
    local script = os.tmpname()
    support.write_file(script, 'local lfs = require("lfs")\nlocal term = require("term")\n'
      .. 'print(lfs.attributes(".", "mode"), type(term.isatty(io.stdout)))\n')
    local code, out, err = support.sonde("run", script)
    os.remove(script)
    assert.are.equal(0, code, err)
    assert.are.equal("directory\tboolean\n", out)
  end)

  it("load in a test", function()
    local lfs = require("lfs")
    assert.are.equal("directory", lfs.attributes(".", "mode"))
  end)
end)
