-- Lint: the luacheck std that sonde.luacheck_std gives users' .luacheckrc,
-- and the project's own lint (scripts/lint, run by .ci/run).
local support = require("specs.support")
local process = require("sonde.process")

describe("sonde.luacheck_std", function()
  it("lists exactly the globals the spec DSL gives a spec file", function()
    local listed = {}
    for _, name in ipairs(require("sonde.luacheck_std").read_globals) do listed[#listed + 1] = name end
    table.sort(listed)
    assert.are.same(require("sonde.runner.dsl").NAMES, listed)
  end)

  it("is a std luacheck reads: a spec file using them is clean, an unknown global is not", function()
    if os.execute("command -v luacheck >/dev/null 2>&1") ~= 0 then
      pending("luacheck (Debian: lua-check) is not installed")
      return
    end
    local dir = support.temp_dir("lint")
    support.write_file(dir .. "/.luacheckrc", 'stds.sonde = require("sonde.luacheck_std")\nstd = "luajit+sonde"\n')
    support.write_file(dir .. "/a_spec.lua", 'describe("a", function()\n  it("b", function() fail("x") end)\n'
      .. '  finally(function() end)\nend)\n')
    support.write_file(dir .. "/b_spec.lua",
      'describe("a", function() it("b", function() undefined_thing() end) end)\n')
    local _, root = process.run { "pwd" }
    local code, out = process.run { "luacheck", "--formatter", "plain", "a_spec.lua", "b_spec.lua", cwd = dir,
      env = { LUA_PATH = root:gsub("\n$", "") .. "/lua/?.lua;;" }, timeout = 60 } -- require finds it
    assert.are.equal(1, code, out)
    assert.are.equal("b_spec.lua:1:45: accessing undefined variable 'undefined_thing'\n", out)
  end)
end)

describe("scripts/lint", function()
  it("says in one line that luacheck is missing", function()
    local code, out, err = process.run { "/bin/sh", "scripts/lint", env = { PATH = "/nonexistent" },
      timeout = 60 }
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.equal("scripts/lint: luacheck is not installed (Debian's lua-check: sh scripts/install-deps ci)\n", err)
  end)
end)
