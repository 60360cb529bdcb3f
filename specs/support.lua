-- Helpers shared by sonde's own specs: run the sonde binary (the one running
-- these specs) as a subprocess and look at what it did.
local loop = require("sonde.c.loop")
local process = require("sonde.process")

local M = {}

-- The sonde binary under test (the one running the suite).
M.bin = loop.exe_path()
M.build_dir = os.getenv("SONDE_BUILD_DIR") or M.bin:match("^(.*)/[^/]+$")
M.fixtures = "specs/fixtures"

-- sonde(args..., {timeout=, env=, stdin=}) -> code, stdout, stderr, signal
function M.sonde(...)
  local argv, opts = { M.bin }, {}
  for _, a in ipairs({ ... }) do
    if type(a) == "table" then opts = a else argv[#argv + 1] = a end
  end
  argv.env, argv.stdin, argv.cwd = opts.env, opts.stdin, opts.cwd
  argv.timeout = opts.timeout or 60
  return process.run(argv)
end

-- fixture(name) -> path of specs/fixtures/name
function M.fixture(name) return M.fixtures .. "/" .. name end

-- make_temp_dir([label]) -> the path of a new empty directory, its name
-- ending in -label when given; the caller removes it with remove_dir.
function M.make_temp_dir(label)
  local dir = os.tmpname()
  os.remove(dir)
  if label then dir = dir .. "-" .. label end
  local ok, err = loop.mkdir(dir)
  if not ok then error("cannot make the directory " .. dir .. ": " .. err, 2) end
  return dir
end

-- remove_dir(path): removes a directory and everything in it.
function M.remove_dir(dir) process.run { "rm", "-rf", dir } end

-- temp_dir([label]) -> make_temp_dir's directory, removed when the running
-- test ends. Call it from a spec file inside an it: `finally` lives in the
-- spec file's environment, not in _G.
function M.temp_dir(label)
  local finally = getfenv(2).finally
  if not finally then error("support.temp_dir: call it from a spec file, inside an it", 2) end
  local dir
  finally(function() if dir then M.remove_dir(dir) end end) -- first: it may refuse (outside an it)
  dir = M.make_temp_dir(label)
  return dir
end

-- read_file(path) -> the file's bytes; a file that cannot be read fails
-- the test.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- write_file(path, text): the file holds text, byte for byte.
function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- die(): this process ends by SIGKILL, as a crash would end it (a
-- sanitizer build turns a segfault into an exit), for fixtures of a --jobs
-- run that must survive a worker's death.
function M.die()
  os.execute("kill -KILL " .. loop.pid())
  while true do end -- SIGKILL is on its way
end

-- segfault(): a null write through the FFI, for fixtures of a serial run
-- that must survive it (sonde restarts itself: host/protect.c); under a
-- sanitizer build run them with ASAN_OPTIONS=handle_segv=0.
function M.segfault()
  local ffi = require("ffi")
  ffi.cast("int *", 0)[0] = 1
end

-- interrupt_hang(...) -> stdout of `sonde test -o tap --no-capture ...`
-- that runs fixtures/runner/hang.lua, interrupted with SIGINT once hang.lua's
-- second test waits (it says so on stderr, which --no-capture lets through):
-- checks the exit code 130, that the first test was reported passed and the
-- waiting one cancelled, and that nothing ran after it.
function M.interrupt_hang(...)
  local p = process.spawn { M.bin, "test", "-o", "tap", "--no-capture", ... }
  local ok, out = pcall(function()
    p:wait_output("ready", 30, "stderr")
    p:kill("INT")
    local assert = require("luassert")
    assert.are.equal(130, p:wait(30))
    local out = p:stdout()
    assert.matches("ok 1 %- passes first\n", out)
    assert.matches("not ok 2 %- hangs\n", out)
    assert.matches("cancelled: interrupted", out)
    assert.not_matches("never reached", out)
    return out
  end)
  p:stop(1)
  if not ok then error(out, 0) end
  return out
end

-- timed_out(timeout, stuck, after, ...) -> the TAP output of `sonde test
-- -o tap --timeout TIMEOUT ...`: checks that it exits 1, that the test
-- named `stuck` failed and the test `after` passed once it was stopped.
function M.timed_out(timeout, stuck, after, ...)
  local assert = require("luassert")
  local code, out = M.sonde("test", "-o", "tap", "--timeout", timeout, ...)
  assert.are.equal(1, code, out)
  local status = M.tap(out)
  assert.are.equal("not ok", status[stuck], out)
  assert.are.equal("ok", status[after], out)
  return out
end

-- alive(pid) -> true while that process runs: `kill -0` succeeds and it is
-- not a zombie (an exited child whose parent has not reaped it yet).
function M.alive(pid)
  local code = process.run { "kill", "-0", tostring(pid), timeout = 5 }
  if code ~= 0 then return false end
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("*a")
  f:close()
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

local markers = 0

-- marker() -> digits that no other process's command line holds: a spec
-- hands it to what it starts, to find (and clean up) what that left behind.
function M.marker()
  markers = markers + 1
  return string.format("%d%04d", loop.pid(), markers)
end

-- leave_escapees(marker) -> p, escapee, scrubbed: starts a child (p) that
-- leaves two grandchildren behind, each in a session of its own (setsid) and
-- reparented away from it: `escapee` keeps the environment, `scrubbed` runs
-- with an empty one. Both sleep with `marker` in their arguments.
function M.leave_escapees(marker)
  local sleep = "exec sleep 1000." .. marker
  local p = process.spawn { "sh", "-c", "(setsid sh -c 'echo escapee $$; " .. sleep .. "' &); " ..
    "(setsid env -i PATH=\"$PATH\" sh -c 'echo scrubbed $$; " .. sleep .. "' &); exec sleep 1000" }
  local escapee = p:wait_output("^escapee (%d+)$", 30)
  local scrubbed = p:wait_output("^scrubbed (%d+)$", 30)
  return p, tonumber(escapee), tonumber(scrubbed)
end

-- kill_marked(marker): SIGKILLs every process whose arguments hold the
-- marker: the cleanup of a spec that may have failed to see them stopped.
function M.kill_marked(marker)
  for _, entry in ipairs(loop.scandir("/proc") or {}) do
    local f = entry.name:match("^%d+$") and io.open("/proc/" .. entry.name .. "/cmdline")
    local cmdline = f and f:read("*a") or ""
    if f then f:close() end
    if cmdline:find("1000%." .. marker .. "[%z']") then process.run { "kill", "-KILL", entry.name, timeout = 30 } end
  end
end

-- tap(out) -> status, order, reasons: status[name] is "ok", "not ok" or
-- "skip"; order lists the names as they came; reasons[name] is a skip's
-- reason. Names are unescaped (TAP writes '#' as '\#').
function M.tap(out)
  local status, order, reasons = {}, {}, {}
  for line in out:gmatch("[^\n]+") do
    local ok, name = line:match("^(n?o?t? ?ok) %d+ %- (.*)$")
    if ok then
      local reason = name:match(" # SKIP (.*)$")
      name = name:gsub(" # SKIP.*$", ""):gsub("\\#", "#")
      status[name] = reason and "skip" or ok
      reasons[name] = reason
      order[#order + 1] = name
    end
  end
  return status, order, reasons
end

return M
