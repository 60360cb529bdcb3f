-- sonde.boot.host: what the C host calls (sonde.h's run functions).
--
-- Each entry returns the process exit code: 0 passed, 1 failed, 2 usage or
-- load error. Output for the user is one clear line per mistake.

-- sonde's own start-up (loading its modules, reading options) runs once:
-- compiling its loops costs more than it saves (a one-test run compiled
-- about ten traces, 1 ms of its 10). Each entry below turns the compiler
-- on before user code runs; sonde.runner once it has read its options.
jit.off()

-- Each trace LuaJIT compiles mprotects its whole machine-code area twice,
-- and Linux flushes the TLB of a range up to 33 pages page by page, of a
-- larger one at once: on a virtual machine each page's flush traps, and
-- LuaJIT's area of 64 KiB (16 pages) cost 140-170 us an mprotect here, one
-- of 256 KiB (a single flush) 30-45 us. A 5000-test run: 29.5 -> 26.1 ms.
jit.opt.start("sizemcode=256")

local task = require("sonde.task")
local trace = require("sonde.lib.trace")
local chunk_cache = require("sonde.boot.chunk_cache")
local redact = require("sonde.lib.redact")

local M = {}

-- Modules found on package.path (luassert, the user's) load compiled from
-- the cache when their source has not changed.
chunk_cache.install()

-- Stops what fixture.session made during the run, if anything did.
local function teardown_sessions()
  local fixture = package.loaded["sonde.fixture"]
  if fixture then task.run(fixture.teardown_sessions) end
end

local function report_lost(lost)
  for _, t in ipairs(lost) do
    io.stderr:write("sonde: error in a task nobody joined: ", trace.format(t.err, t.traceback), "\n")
  end
  return #lost > 0
end

-- Loads a script and sets the global `arg` for it; nil after saying why.
local function load_script(path, args)
  local chunk, err
  if path then chunk, err = chunk_cache.loadfile(path) else chunk, err = loadfile(nil, "t") end
  if not chunk then
    io.stderr:write("sonde: cannot load ", trace.load_message(path or "stdin", err), "\n")
    return nil
  end
  args[0] = path
  _G.arg = args
  return chunk
end

-- run_file(path, args): runs a scenario script as the root task.
function M.run_file(path, args)
  jit.on()
  local chunk = load_script(path, args)
  if not chunk then return 2 end
  local interrupted = false
  local remove = task.on_interrupt(function() interrupted = true end)
  local t, lost_tasks = task.run(chunk, unpack(args))
  remove()
  teardown_sessions()
  local lost = report_lost(lost_tasks)
  if interrupted then
    local where = trace.trim(t.interrupted_at)
    io.stderr:write("sonde: interrupted", where ~= "" and (" while waiting at\n" .. where) or "", "\n")
    return 130
  end
  if t.err ~= nil then
    io.stderr:write("sonde: ", redact.text(trace.format(t.err, t.traceback)), "\n")
    return 1
  end
  return lost and 1 or 0
end

-- run_live(path, args): `sonde live app.lua [--bus URL]` or `sonde live
-- --reports URL --app ID` (sonde.livecheck.cli); exit 1 when a case is
-- failing at exit, 0 otherwise, 2 for a usage or load error.
function M.run_live(path, args)
  jit.on()
  local cli = require("sonde.livecheck.cli")
  table.insert(args, 1, path)
  local ok, opts = pcall(cli.app_options, args)
  if not ok then
    io.stderr:write(tostring(opts), "\n")
    return 2
  end
  local t
  if opts.reports then
    t = task.run(cli.run_reports, opts, args)
  else
    path = table.remove(args, 1)
    if path == nil then
      io.stderr:write("sonde live: expected the APP.lua that returns a livecheck app\n")
      return 2
    end
    local chunk = load_script(path, args)
    if not chunk then return 2 end
    t = task.run(cli.run_app, chunk, path, args, opts)
  end
  teardown_sessions()
  if t.err ~= nil then
    io.stderr:write("sonde live: ", (redact.text(trace.format(t.err, t.traceback)):gsub("^sonde live: ", "")), "\n")
    return 2
  end
  local failing = t.results[1]
  if #failing > 0 then
    io.stderr:write("sonde live: failing at exit: ", table.concat(failing, ", "), "\n")
    return 1
  end
  return 0
end

-- lua_options(args) -> the statements and modules of lua's -e and -l, in
-- order, and the index of the script | nil, err.
local function lua_options(args)
  local steps, i = {}, 1
  while i <= #args do
    local a = args[i]
    local flag, value = a:match("^%-([el])(.*)$")
    if not flag then break end
    if value == "" then
      i = i + 1
      value = args[i]
      if value == nil then return nil, "-" .. flag .. " expects a value" end
    end
    steps[#steps + 1] = { flag = flag, value = value }
    i = i + 1
  end
  if args[i] == "--" then i = i + 1 end
  return steps, i
end

-- run_lua(args): sonde as the lua interpreter: -e statements and -l
-- modules in order, then the script ("-" or none: stdin) with the rest as
-- its arg, lua's options at arg's negative indices.
function M.run_lua(args)
  jit.on()
  local steps, at = lua_options(args)
  if not steps then
    io.stderr:write("sonde: ", at, "\n")
    return 2
  end
  for _, step in ipairs(steps) do
    local fn, err
    if step.flag == "e" then
      fn, err = loadstring(step.value, "=(command line)")
    else
      fn = function() _G[step.value] = require(step.value) end
    end
    if not fn then
      io.stderr:write("sonde: ", err, "\n")
      return 1
    end
    local t = task.run(fn)
    if t.err ~= nil then
      io.stderr:write("sonde: ", redact.text(trace.format(t.err, t.traceback)), "\n")
      return 1
    end
  end
  local script = args[at]
  if script == nil and #steps > 0 then return 0 end -- as lua -e: the statements were the program
  if script == "-" then script = nil end
  local rest = { [-at] = require("sonde.c.loop").exe_path() }
  for k = 1, #args do rest[k - at] = args[k] end
  rest[0] = nil
  return M.run_file(script, rest)
end

-- run_load(args): `sonde load SCRIPT ...` and `sonde load merge ...`;
-- exit codes as k6's (sonde.load.cli).
function M.run_load(args)
  jit.on()
  local code = require("sonde.load.cli").main(args)
  teardown_sessions()
  return code
end

-- run_specs(paths, args): the spec runner; args may also hold paths.
function M.run_specs(paths, args)
  local code = require("sonde.runner").main(paths, args)
  teardown_sessions()
  return code
end

return M
