-- sonde.runner.capture: what a test writes, kept for its result.
--
-- From begin to finish, fd 1 and 2 point at a file the host keeps
-- (host/capture.c): print, io.write, io.stderr, C code through the FFI and
-- child processes that inherit the descriptors are captured alike, and
-- io.stdout stays the real file. take() at the end of a test or hook
-- returns what it wrote, for its result (reporters show it for failures,
-- junit as <system-out>); what describe bodies write is forwarded to the
-- terminal. Reporters and sonde's own words reach the terminal through
-- copies of fd 1 and 2 made before (M.stdout). --no-capture turns this off.
local capture = require("sonde.c.capture")

local M = {}

local LIMIT = 1024 * 1024

-- ready() -> whether output can be captured (a run that cannot says why,
-- once, and its tests print to the terminal).
local ready
function M.ready()
  if ready == nil then
    local ok, err = capture.open()
    if not ok then io.stderr:write("sonde test: ", err, "; tests print to the terminal\n") end
    ready = ok or false
  end
  return ready
end

-- stdout(opts) -> where reporters write: the terminal itself when tests'
-- output is captured, else io.stdout (where it keeps its place among what
-- tests print).
function M.stdout(opts)
  if opts.no_capture or not M.ready() then return io.stdout end
  return capture.terminal(1)
end

-- begin(), finish(): around the part of a run that runs tests.
function M.begin() assert(capture.begin()) end
function M.finish() assert(capture.finish()) end

-- forward(): what was written since the last take is no test's (a
-- describe body, a spec file's top level): on to the terminal.
function M.forward() assert(capture.forward()) end

-- take() -> what was written since the last take or forward, its first
-- MiB (the cap when print and io.write were captured in Lua), or nil. A
-- runner after a death takes what the test it died in wrote.
function M.take()
  local out, size = capture.take(LIMIT)
  if size <= LIMIT then return out end
  return out .. string.format("\n[output cut at 1 MiB: %d more bytes]\n", size - LIMIT)
end

return M
