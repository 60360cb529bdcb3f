-- The run's journal (the memory a serial sonde test keeps in a memfd across
-- its restarts) as host/journal.h lays it out, for the fixtures that write
-- over it as a test that corrupts memory might.
local ffi = require("ffi")
ffi.cdef [[
typedef struct {
  uint32_t magic, in_step; uint64_t step, length; uint32_t stops, pad; uint64_t resume_at; char how[512], spare[512];
} fx_head;
typedef struct { uint32_t kind, len; uint64_t step; double duration; uint32_t requests, pad; } fx_record;
]]

local M = {}

-- head() -> the journal's head (an fx_head *), its records right after it
function M.head()
  for line in io.lines("/proc/self/maps") do
    local from = line:match("^(%x+)%-%x+ .*memfd:sonde%-journal")
    if from then return ffi.cast("fx_head *", tonumber(from, 16)) end
  end
  error("no journal is mapped (not a protected serial sonde test run?)")
end

return M
