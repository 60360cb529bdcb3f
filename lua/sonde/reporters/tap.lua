-- sonde.reporters.tap: TAP version 13, streamed and flushed per test so a
-- hang shows the last test that finished; failures carry YAML diagnostics.
local M = {}
M.__index = M

function M.new(out) return setmetatable({ out = out, n = 0 }, M) end

function M:suite_start()
  self.out:write("TAP version 13\n")
  self.out:flush()
end

local function yaml_block(lines)
  local parts = { "  ---" }
  for _, kv in ipairs(lines) do
    local k, v = kv[1], tostring(kv[2])
    if v:find("\n") then
      parts[#parts + 1] = "  " .. k .. ": |"
      for line in (v .. "\n"):gmatch("(.-)\n") do parts[#parts + 1] = "    " .. line end
    else
      parts[#parts + 1] = "  " .. k .. ": " .. string.format("%q", v):gsub("\\\n", "\\n")
    end
  end
  parts[#parts + 1] = "  ..."
  return table.concat(parts, "\n") .. "\n"
end

local function one_line(s) return (tostring(s):gsub("[\r\n]+", " ")) end

function M:result(r)
  self.n = self.n + 1
  local name = one_line(r.name):gsub("#", "\\#")
  if r.status == "pass" then
    self.out:write("ok ", self.n, " - ", name, "\n")
  elseif r.status == "pending" or r.status == "skip" then
    self.out:write("ok ", self.n, " - ", name, " # SKIP ", one_line(r.message or "pending"), "\n")
  else
    self.out:write("not ok ", self.n, " - ", name, "\n")
    self.out:write(yaml_block { { "severity", r.status == "fail" and "fail" or "error" },
      { "at", r.file .. ":" .. r.line }, { "message", r.message or "?" }, { "traceback", r.traceback or "" } })
  end
  self.out:flush()
end

M.test_end = M.result
M.load_error = M.result

function M:list(test)
  self.out:write("# ", test.file, ":", test.line, ": ", test.full_name, "\n")
end

function M:suite_end(s)
  self.out:write("1..", self.n, "\n")
  self.out:write(string.format("# %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped))
  self.out:flush()
end

return M
