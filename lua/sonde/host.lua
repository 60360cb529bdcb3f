-- sonde.host: what the C host calls (sonde.h's run functions).
--
-- Each entry returns the process exit code: 0 passed, 1 failed, 2 usage or
-- load error. Output for the user is one clear line per mistake.
local task = require("sonde.task")
local trace = require("sonde.trace")

local M = {}

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

-- run_file(path, args): runs a scenario script as the root task.
function M.run_file(path, args)
  local chunk, err = loadfile(path)
  if not chunk then
    io.stderr:write("sonde: cannot load ", trace.load_message(path, err), "\n")
    return 2
  end
  args[0] = path
  _G.arg = args
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
    io.stderr:write("sonde: ", trace.format(t.err, t.traceback), "\n")
    return 1
  end
  return lost and 1 or 0
end

-- run_specs(paths, args): the spec runner; args may also hold paths.
function M.run_specs(paths, args)
  local code = require("sonde.runner").main(paths, args)
  teardown_sessions()
  return code
end

return M
