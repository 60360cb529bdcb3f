-- sonde test --watch, driven through a terminal: script(1) gives it a pty,
-- keys are written to the pty and its screen is read back. Each step waits
-- for what the watch prints (its footer says the watchers are on), never
-- for a time.
local loop = require("sonde.c.loop")
local process = require("sonde.process")
local support = require("specs.support")

local write_file = support.write_file

local CALC = "local M = {}\nfunction M.add(a, b)\n  return a + b\nend\nreturn M\n"

-- A project: src/calc.lua and src/str.lua, each loaded by one spec file.
local function project()
  local dir = support.temp_dir("watch")
  assert(loop.mkdir(dir .. "/src"))
  assert(loop.mkdir(dir .. "/spec"))
  write_file(dir .. "/src/calc.lua", CALC)
  write_file(dir .. "/src/str.lua", "return { up = string.upper }\n")
  write_file(dir .. "/spec/calc_spec.lua",
    'local calc = require("calc")\nit("adds", function() assert.are.equal(3, calc.add(1, 2)) end)\n')
  write_file(dir .. "/spec/str_spec.lua",
    'local str = require("str")\nit("ups", function() assert.are.equal("A", str.up("a")) end)\n')
  return dir
end

-- watch(dir, args...) -> a screen: `sonde test --watch args` on a pty.
local function watch(dir, ...)
  local cmd = { support.bin, "test", "--watch", ... }
  for i, a in ipairs(cmd) do cmd[i] = "'" .. a .. "'" end
  local p = process.spawn { "script", "-qfec", table.concat(cmd, " "), "/dev/null", cwd = dir }
  finally(function() if p:running() then p:stop(5) end end)
  return { p = p }
end

-- expect(screen, text) -> what the screen shows from where the last
-- expect stopped up to the end of the first line that holds text (plain
-- text; carriage returns dropped).
local function expect(screen, text)
  local seen = {}
  for line in screen.p:lines(30) do
    line = line:gsub("\r", "")
    seen[#seen + 1] = line .. "\n"
    if line:find(text, 1, true) then return table.concat(seen) end
  end
  error("the watch ended before it printed " .. text .. "; it printed:\n" .. table.concat(seen), 2)
end

local FOOTER = "a: run all, f: run failures, q: quit"

-- The pids of the processes whose arguments hold `marker`.
local function marked(marker)
  local pids = {}
  for _, entry in ipairs(loop.scandir("/proc") or {}) do
    local f = entry.name:match("^%d+$") and io.open("/proc/" .. entry.name .. "/cmdline")
    local cmdline = f and f:read("*a") or ""
    if f then f:close() end
    if cmdline:find("1000%." .. marker .. "[%z;]") and support.alive(entry.name) then pids[#pids + 1] = entry.name end
  end
  return pids
end

describe("sonde test --watch", function()
  it("runs again only the spec file that loads a changed module; f, a, renames, deletions, q", function()
    local dir = project()
    local screen = watch(dir, "-o", "tap")
    local first = expect(screen, FOOTER)
    assert.is_truthy(first:find("\27[2J\27[3J\27[Hsonde test --watch: running every spec file\n", 1, true))
    assert.is_truthy(first:find("ok 1 - adds\nok 2 - ups\n1..2\n", 1, true))
    assert.is_truthy(first:find("watching 4 files in 2 folders;", 1, true))

    write_file(dir .. "/src/calc.lua", CALC:gsub("a %+ b", "a + b + 1"))
    local seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("\27[Hsonde test --watch: src/calc.lua changed; running spec/calc_spec.lua\n", 1, true))
    assert.is_truthy(seen:find("not ok 1 - adds\n", 1, true))
    assert.is_nil(seen:find("ups", 1, true))

    screen.p:write("f")
    seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("sonde test --watch: running the 1 test that failed\n", 1, true))
    assert.is_truthy(seen:find("not ok 1 - adds\n", 1, true))
    assert.is_truthy(seen:find("\n1..1\n", 1, true))

    write_file(dir .. "/src/calc.lua", CALC:gsub("a %+ b", "a +"))
    seen = expect(screen, FOOTER)
    assert.matches("\27%[Hsonde test %-%-watch: src/calc%.lua:4: unexpected symbol near 'end' %(nothing runs until it "
      .. "compiles%)\n\nwatching", seen)
    assert.is_nil(seen:find("TAP version", 1, true))

    write_file(dir .. "/src/calc.lua", CALC)
    seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("src/calc.lua changed; running spec/calc_spec.lua\n", 1, true))
    assert.is_truthy(seen:find("ok 1 - adds\n1..1\n", 1, true))

    assert(os.rename(dir .. "/spec/str_spec.lua", dir .. "/spec/text_spec.lua"))
    seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("spec/text_spec.lua added, spec/str_spec.lua removed; running spec/text_spec.lua\n", 1,
      true))
    assert.is_truthy(seen:find("ok 1 - ups\n1..1\n", 1, true))

    write_file(dir .. "/src/str.lua", "return { up = string.lower }\n") -- loaded by the renamed file now
    seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("src/str.lua changed; running spec/text_spec.lua\n", 1, true))
    assert.is_truthy(seen:find("not ok 1 - ups\n", 1, true))

    assert(os.remove(dir .. "/spec/text_spec.lua"))
    seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("spec/text_spec.lua removed; nothing to run\n", 1, true))

    screen.p:write("a")
    seen = expect(screen, FOOTER)
    assert.is_truthy(seen:find("sonde test --watch: running every spec file\n", 1, true))
    assert.is_truthy(seen:find("ok 1 - adds\n1..1\n", 1, true))

    screen.p:write("q")
    assert.are.same({ 0 }, { screen.p:wait(30) })
  end)

  for _, how in ipairs({ { "q", "q", 0 }, { "Ctrl-C", "\3", 130 } }) do
    it("ends on " .. how[1] .. " while a test runs, stopping the test and what it started", function()
      local dir = project()
      local marker = support.marker()
      finally(function() support.kill_marked(marker) end)
      write_file(dir .. "/spec/hang_spec.lua", string.format([[
local process = require("sonde.process")
it("waits on a child", function()
  process.spawn({ "sh", "-c", "echo child started > /dev/tty; sleep 1000.%s; exit" }):wait()
end)
]], marker)) -- the child writes past the test's captured output, to the terminal; it does not exec
      -- its sleep, as a process's arguments read empty while it execs: the shell is there to find
      local screen = watch(dir, "spec/hang_spec.lua")
      expect(screen, "child started")
      assert.is_true(#marked(marker) >= 1) -- the shell, and its sleep once started
      screen.p:write(how[2])
      assert.are.same({ how[3] }, { screen.p:wait(60) })
      assert.are.same({}, marked(marker))
    end)
  end

  it("is one line with --jobs, --shard or --coverage, saying what goes with it", function()
    for _, args in ipairs({ { "--jobs", "2" }, { "--shard", "1/2" }, { "--coverage" } }) do
      local code, out, err = support.sonde("test", "--watch", unpack(args))
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.are.equal("sonde test: --watch cannot be combined with " .. args[1] .. ": it runs the spec files in this "
        .. "process, one after another (filters, tags, --output, --retries and --fail-fast go with it)\n", err)
    end
  end)
end)
