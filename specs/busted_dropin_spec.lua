-- busted projects run unchanged: each project below is written to a
-- temporary directory, then Debian's busted and `sonde test` run in its
-- root with the same arguments (none, for most), and must agree on the
-- counts of successes, failures, errors and pending tests, and on the exit
-- code. The projects use what busted users rely on: a .busted file with
-- tasks, a spec/ folder found by default, busted's default lpath
-- (./src), a helper that registers an assertion, a nested describe body
-- reading an outer hook's state, `arg`, io.stdout, file patterns.
local process = require("sonde.process")
local loop = require("sonde.c.loop")
local support = require("specs.support")

local has_busted = process.run { "sh", "-c", "command -v busted" } == 0

-- A project without a .busted file: spec/ and src/, as `busted` alone finds them.
local PLAIN = {
  ["src/stack.lua"] = [[
local Stack = {}
Stack.__index = Stack
function Stack.new() return setmetatable({ items = {} }, Stack) end
function Stack:push(v) self.items[#self.items + 1] = v end
function Stack:pop() return table.remove(self.items) end
function Stack:size() return #self.items end
return Stack
]],
  ["spec/stack_spec.lua"] = [[
local Stack = require("stack")
describe("stack", function()
  local s
  before_each(function() s = Stack.new(); s:push(1) end)
  it("has one item", function() assert.are.equal(1, s:size()) end)
  describe("a nested body", function()
    -- runs when busted reaches this block: after the test above, whose
    -- before_each made s
    local size = s:size()
    it("read the outer hook's object", function() assert.are.equal(1, size) end)
  end)
  it("fails on purpose", function() assert.are.equal(2, s:size()) end)
  it("raises a table", function() error({ code = 42 }) end)
  pending("is pending")
  it("is pending inside", function() pending("not yet") end)
end)
]],
  ["spec/env_spec.lua"] = [[
require("busted.runner")() -- makes the file runnable with plain lua; a no-op under a runner
describe("what busted gives a spec file", function()
  it("arg: the runner at 0, the interpreter at -1", function()
    assert.is_table(arg)
    assert.is_string(arg[0])
    assert.is_string(arg[-1])
  end)
  it("io.stdout and io.stderr are files", function()
    assert.are.equal("file", io.type(io.stdout))
    assert.are.equal("file", io.type(io.stderr))
    assert.is_userdata(io.stdout)
  end)
  it("finds src/ modules by busted's default lpath", function() assert.is_table(require("stack")) end)
  it("has luassert's spies", function()
    local f = spy.new(function() end)
    f(1)
    assert.spy(f).was.called_with(1)
  end)
  insulate("an insulated block", function()
    it("sets a global", function() LEAKED = true end)
  end)
  it("does not see it", function() assert.is_nil(LEAKED) end)
end)
]],
  ["spec/api_spec.lua"] = [[
local busted = require("busted")
busted.describe("require('busted')", function()
  busted.it("gives the DSL and luassert", function() busted.assert.is_function(busted.pending) end)
end)
]],
  ["spec/strict_spec.lua"] = [[
-- a strict _G for this file alone: insulation puts the metatable back
setmetatable(_G, { __index = function(_, k) error("undeclared global '" .. tostring(k) .. "'", 2) end })
it("is strict here", function() assert.has_error(function() return _G.nope end) end)
]],
  ["spec/strict_zz_spec.lua"] = [[
it("is not strict after the strict file", function() assert.is_nil(undefined_thing) end)
]],
  ["spec/unnamed_spec.lua"] = [[
describe(function()
  it(function() end)
end)
]],
  -- busted's default pattern is "_spec" anywhere in the name
  ["spec/shared_spec_helper.lua"] = [[
it("is loaded: its name has _spec in it", function() end)
]],
  ["spec/util.lua"] = [[error("spec/util.lua is no spec file and must not load")]],
  ["spec/.hidden/x_spec.lua"] = [[error("a hidden folder must not load")]],
}

-- A project with a .busted file: tasks, its own root, pattern, lpath and helper.
local CONFIGURED = {
  [".busted"] = [[
return {
  _all = { lpath = "./lib/?.lua" },
  default = { ROOT = { "test" }, pattern = "_test", helper = "test/support/helper.lua", ["exclude-tags"] = "slow" },
  slow = { ROOT = { "test" }, pattern = "_test", tags = "slow", helper = "test/support/helper.lua" },
}
]],
  ["lib/greet.lua"] = [[return { hello = function(n) return "hello " .. n end }]],
  ["test/support/helper.lua"] = [[
local say = require("say")
local assert = require("luassert")
say:set("assertion.greets.positive", "Expected %s to greet")
say:set("assertion.greets.negative", "Expected %s not to greet")
assert:register("assertion", "greets", function(_, args)
  return type(args[1]) == "string" and args[1]:find("^hello") ~= nil
end, "assertion.greets.positive", "assertion.greets.negative")
HELPER_LOADED = true
]],
  ["test/greet_test.lua"] = [[
local greet = require("greet")
describe("greet", function()
  it("uses the helper's global", function() assert.is_true(HELPER_LOADED) end)
  it("uses the helper's assertion", function() assert.greets(greet.hello("x")) end)
  it("fails the helper's assertion", function() assert.greets("bye") end)
  it("is slow #slow", function() assert.is_true(true) end)
  describe("inner", function() error("body broke") end)
  it("runs after the broken body", function() end)
end)
]],
  ["test/all_pass_test.lua"] = [[
describe("passing", function()
  it("one", function() end)
  it("two #slow", function() end)
end)
]],
}

local function write_project(files)
  local dir = support.temp_dir("busted")
  for path, text in pairs(files) do
    local full = dir .. "/" .. path
    process.run { "mkdir", "-p", (full:match("^(.*)/[^/]+$")) }
    support.write_file(full, text)
  end
  return dir
end

-- busted's closing line: "3 successes / 1 failure / 1 error / 0 pending : ..."
local function busted_run(dir, args)
  local argv = { "busted", cwd = dir, timeout = 120 }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local code, out, err = process.run(argv)
  local line = out:match("(%d+ success[^\n]*)")
  assert(line, "no counts line from busted:\n" .. out .. err)
  return { code = code, passed = tonumber(line:match("(%d+) success")),
      failures = tonumber(line:match("(%d+) failure")),
    errors = tonumber(line:match("(%d+) error")), pending = tonumber(line:match("(%d+) pending")) }
end

-- sonde's last two lines: "2 failed: 1 failure, 1 error; ..." and "3 passed, 2 failed[, N skipped]"
local function sonde_run(dir, args)
  local argv = { "test" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = { cwd = dir, timeout = 120 }
  local code, out, err = support.sonde(unpack(argv))
  local passed, _, rest = out:match("\n(%d+) passed, (%d+) failed([^\n]*)\n$")
  assert(passed, "no closing line from sonde test:\n" .. out .. err)
  return { code = code, passed = tonumber(passed), failures = tonumber(out:match("(%d+) failures?[,;\n]") or 0),
    errors = tonumber(out:match("(%d+) errors?[;\n]") or 0), pending = tonumber(rest:match("(%d+) skipped") or 0) },
    out .. err
end

local function same_as_busted(files, args)
  if not has_busted then return pending("busted is not installed (scripts/install-deps installs lua-busted)") end
  local dir = write_project(files)
  local want = busted_run(dir, args)
  local got, out = sonde_run(dir, args)
  assert.are.same(want, got, out)
  return want, out
end

describe("busted projects run unchanged under sonde test", function()
  it("a project without .busted: spec/, src/, hooks seen by a nested body, arg, io.stdout, patterns", function()
    local counts = same_as_busted(PLAIN, {})
    assert.are.same({ code = 1, passed = 13, failures = 1, errors = 1, pending = 2 }, counts)
  end)

  it("a .busted default task: its ROOT, pattern, lpath, helper and excluded tags", function()
    local counts = same_as_busted(CONFIGURED, {})
    assert.are.same({ code = 1, passed = 4, failures = 1, errors = 1, pending = 0 }, counts)
  end)

  it("a .busted task chosen with --run", function()
    local counts = same_as_busted(CONFIGURED, { "--run=slow" })
    assert.are.same({ code = 1, passed = 2, failures = 0, errors = 1, pending = 0 }, counts)
  end)

  it("the command line wins over the task, key by key", function()
    same_as_busted(CONFIGURED, { "--exclude-tags=none", "test/all_pass_test.lua" })
  end)

  for _, args in ipairs({ { "--exclude-pattern=stack" }, { "--filter=nested" }, { "--filter-out=fails" },
    { "-p", "env" }, { "--no-recursive", "spec" } }) do
    it("agrees with " .. table.concat(args, " "), function() same_as_busted(PLAIN, args) end)
  end

  it("puts busted's module paths in front once, however often a host prepares a run", function()
    local busted = require("sonde.runner.busted")
    local path, cpath, saved_arg = package.path, package.cpath, _G.arg
    finally(function() package.path, package.cpath, _G.arg = path, cpath, saved_arg end)
    for _ = 1, 3 do assert(busted.prepare({ lpath = "./lib/?.lua", execute = {}, xhelper = {} })) end
    local _, n = package.path:gsub("%./lib/%?%.lua", "")
    assert.are.equal(1, n)
  end)

  it("says in one line which .busted key it does not know", function()
    local dir = write_project({ [".busted"] = "return { default = { ROOT = { 'spec' }, colour = true } }",
      ["spec/a_spec.lua"] = "it('a', function() end)" })
    local code, out, err = support.sonde("test", { cwd = dir })
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.are.equal("sonde test: .busted (default): unknown key 'colour' (not a busted option sonde knows; "
      .. "see sonde test --help)\n", err)
  end)

  it("names a --run task the file does not have", function()
    local dir = write_project(CONFIGURED)
    local code, _, err = support.sonde("test", "--run", "nightly", { cwd = dir })
    assert.are.equal(2, code)
    assert.are.equal("sonde test: .busted: task 'nightly' not found, or not a table\n", err)
  end)

  it("answers busted's --version", function()
    local code, out = support.sonde("test", "--version")
    assert.are.equal(0, code)
    assert.matches("^sonde %S+", out)
  end)

  it("says which accepted busted flags it ignores", function()
    local dir = write_project({ ["spec/a_spec.lua"] = "it('a', function() end)" })
    local code, _, err = support.sonde("test", "--lua=luajit", "--enable-sound", { cwd = dir })
    assert.are.equal(0, code)
    assert.matches("sonde test: --lua is ignored: sonde runs the specs in its own LuaJIT\n", err, 1, true)
    assert.matches("sonde test: --enable-sound is ignored: sonde plays no sound\n", err, 1, true)
  end)

  it("writes busted's -c coverage as LCOV to lcov.info, of the code under test alone", function()
    local dir = write_project({ ["src/m.lua"] = "local M = {}\nfunction M.f()\n  return 1\nend\nfunction M.g()\n  " ..
        "return 2\nend\nreturn M\n",
      ["spec/a_spec.lua"] = "it('a', function() assert.are.equal(1, require('m').f()) end)" })
    local code, _, err = support.sonde("test", "-c", { cwd = dir })
    assert.are.equal(0, code, err)
    local lcov = support.read_file(dir .. "/lcov.info")
    assert.are.equal("TN:\nSF:src/m.lua\nDA:1,1\nDA:2,1\nDA:3,1\nDA:4,1\nDA:5,1\nDA:6,0\nDA:7,1\nDA:8,1\nLF:8\nLH:7\n"
      .. "end_of_record\n", lcov) -- g's body (line 6) never ran
  end)

  it("gives spec files busted's arg: the runner, the interpreter, the command line", function()
    local dir = write_project({ ["spec/a_spec.lua"] = [[
it("arg", function()
  assert.are.same({ "-v", "spec" }, { arg[1], arg[2] })
  assert.are.equal(arg[0], arg[-1])
  assert.matches("sonde", arg[0])
end)]] })
    local code, out = support.sonde("test", "-v", "spec", { cwd = dir })
    assert.are.equal(0, code, out)
  end)

  it("is the interpreter at arg[-1]: lua's -e and -l, then a script with its arg", function()
    local dir = write_project({
      ["bin/tool.lua"] = "io.write(PREFIX, table.concat(arg, ','), ' ', arg[0], ' ', type(say), ' ', arg[-1]) " ..
          "os.exit(3)",
      ["spec/a_spec.lua"] = [=[
it("runs the tool", function()
  local h = io.popen(arg[-1] .. ' -e "PREFIX=[[x:]]" -l say bin/tool.lua a b; echo " $?"')
  local out = h:read("*a")
  h:close()
  assert.are.equal("x:a,b bin/tool.lua table say 3\n", out)
end)]=] })
    local code, out = support.sonde("test", { cwd = dir })
    assert.are.equal(0, code, out)
  end)

  it("runs -e statements and the helper before the specs, the helper with -Xhelper as its arg", function()
    local dir = write_project({
      ["helper.lua"] = "HELPER_ARG = arg[1]\nSTATEMENT_FIRST = FROM_E",
      ["spec/a_spec.lua"] = [[
it("sees both", function()
  assert.are.equal("x1", HELPER_ARG)
  assert.are.equal(7, STATEMENT_FIRST)
end)]] })
    local code, out = support.sonde("test", "-e", "FROM_E = 7", "--helper=helper.lua", "-Xhelper", "x1", { cwd = dir })
    assert.are.equal(0, code, out)
  end)

  it("-C changes directory before reading .busted", function()
    local dir = write_project(CONFIGURED)
    local code, out = support.sonde("test", "-C", dir, "--run", "slow", { cwd = "/" })
    assert.are.equal(1, code)
    assert.matches("\n2 passed, 1 failed\n$", out)
  end)

  it("writes a junit report where -Xoutput says, as busted's junit handler", function()
    local dir = write_project({ ["spec/a_spec.lua"] = "it('a', function() end)" })
    local code, out = support.sonde("test", "-o", "junit", "-Xoutput", "report.xml", { cwd = dir })
    assert.are.equal(0, code)
    assert.are.equal("file", loop.stat(dir .. "/report.xml"))
    assert.matches("\n1 passed, 0 failed\n$", out) -- every report went to a file: the terminal still gets the count
  end)
end)
