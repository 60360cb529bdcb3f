-- sonde.lib.trace: error values and tracebacks made readable for people.
--
-- Tracebacks keep the user's frames: sonde's own modules, luassert and C
-- frames are dropped, so a failure points at the line that failed.
local task = require("sonde.task")

local M = {}

-- Where sonde's own code and luassert's live (a chunk's source or a
-- traceback line naming it), then what else a traceback has that is no
-- user frame.
local INTERNAL_SOURCES = { "lua/sonde/", "/luassert/" }
local INTERNAL = { INTERNAL_SOURCES[1], INTERNAL_SOURCES[2], "^%s*%[C%]:", "%(tail call%)", "^%s*%.%.%.$" }

-- is_internal(source) -> whether a chunk's source is sonde's or luassert's.
function M.is_internal(source)
  for _, s in ipairs(INTERNAL_SOURCES) do
    if source:find(s, 1, true) then return true end
  end
  return false
end

local function internal(line)
  for _, pat in ipairs(INTERNAL) do
    if line:find(pat) then return true end
  end
  return false
end

-- trim(tb) -> the traceback with only user frames, or "" when none is left.
function M.trim(tb)
  if type(tb) ~= "string" then return "" end
  local kept = {}
  for line in tb:gmatch("[^\n]+") do
    if line ~= "stack traceback:" and not internal(line) then kept[#kept + 1] = line end
  end
  if #kept == 0 then return "" end
  return "stack traceback:\n" .. table.concat(kept, "\n")
end

-- format(err, tb) -> the error's message, then its trimmed traceback.
function M.format(err, tb)
  local msg = task.describe(err)
  if type(err) == "table" and type(rawget(err, "traceback")) == "string" then tb = rawget(err, "traceback") end
  local trimmed = M.trim(tb)
  if trimmed == "" then return msg end
  return msg .. "\n" .. trimmed
end

-- load_message(path, err) -> "path: what went wrong", one line.
function M.load_message(path, err)
  err = tostring(err)
  if err:find("^cannot open") then return path .. ": no such file or not readable" end
  if err:find("^cannot read") then return path .. ": cannot read it (a directory?)" end
  if err:find("wrong mode") then
    return path .. ": is LuaJIT bytecode, not Lua source; sonde loads spec files and scripts from source only"
  end
  return err
end

return M
