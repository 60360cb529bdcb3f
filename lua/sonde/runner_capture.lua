-- sonde.runner_capture: what a test prints, kept for its result.
--
-- While a test runs (between start and stop), print, io.write and
-- io.stdout:write go to a buffer instead of fd 1; stop returns it for the
-- test's result (reporters show it for failures, junit as <system-out>).
-- Code that writes to fd 1 itself (C, child processes) is not captured.
-- --no-capture turns this off.
local M = {}

local CAPTURE_LIMIT = 1024 * 1024
local sink, sink_size
local real_print, real_write, real_stdout

local function keep(s)
  if sink_size > CAPTURE_LIMIT then return end
  sink_size = sink_size + #s
  sink = sink or {}
  sink[#sink + 1] = s
  if sink_size > CAPTURE_LIMIT then sink[#sink + 1] = "\n[output cut at 1 MiB]\n" end
end

local function captured_write(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local t = type(v)
    if t ~= "string" and t ~= "number" then
      error(string.format("bad argument #%d to 'write' (string expected, got %s)", i, t), 2)
    end
    keep(tostring(v))
  end
  return io.stdout
end

local function captured_print(...)
  local n = select("#", ...)
  for i = 1, n do
    keep(tostring((select(i, ...))))
    if i < n then keep("\t") end
  end
  keep("\n")
end

local stdout_proxy = setmetatable({}, {
  __index = function(_, k)
    if k == "write" then return function(_, ...) captured_write(...) return io.stdout end end
    local v = real_stdout[k]
    if type(v) ~= "function" then return v end
    return function(_, ...) return v(real_stdout, ...) end
  end,
  __tostring = function() return tostring(real_stdout) end,
})

function M.start()
  sink, sink_size = nil, 0
  real_print, real_write, real_stdout = _G.print, io.write, io.stdout
  _G.print, io.write, io.stdout = captured_print, captured_write, stdout_proxy
end

function M.stop()
  _G.print, io.write, io.stdout = real_print, real_write, real_stdout
  local out = sink and table.concat(sink) or nil
  sink = nil
  return out
end

return M
