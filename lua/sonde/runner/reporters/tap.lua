-- sonde.runner.reporters.tap: TAP version 13, streamed and flushed per test so a
-- hang shows the last test that finished; failures carry YAML diagnostics,
-- flaky tests a YAML note of their failed attempts.
local util = require("sonde.lib.report_util")

local M = {}
M.__index = M

function M.new(out, opts) return setmetatable({ out = out, opts = opts, n = 0 }, M) end

function M:suite_start(info)
  self.out:write("TAP version 13\n")
  if info.seed then self.out:write("# seed ", info.seed, "\n") end
  self.out:flush()
end

local function yaml_block(lines)
  local parts = { "  ---" }
  for _, kv in ipairs(lines) do
    local k, v = kv[1], util.utf8(tostring(kv[2]))
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

local function attempts_text(r)
  local lines = {}
  for n, a in ipairs(r.attempts or {}) do lines[n] = string.format("%d: %s", n, util.first_line(a.message)) end
  return table.concat(lines, "\n")
end

function M:result(r)
  self.n = self.n + 1
  local name = one_line(r.name):gsub("#", "\\#")
  if r.status == "pending" or r.status == "skip" then
    self.out:write("ok ", self.n, " - ", name, " # SKIP ", one_line(r.message or "pending"), "\n")
  elseif not util.is_failed(r.status, self.opts) then
    self.out:write("ok ", self.n, " - ", name, "\n")
    if r.status == "flaky" then
      self.out:write(yaml_block { { "flaky", "passed on attempt " .. (#r.attempts + 1) },
        { "failed_attempts", attempts_text(r) } })
    end
  else
    self.out:write("not ok ", self.n, " - ", name, "\n")
    local diag = { { "severity", r.status == "fail" and "fail" or r.status == "flaky" and "flaky" or "error" },
      { "at", r.file .. ":" .. r.line }, { "message", util.failure_message(r) },
      { "traceback", r.traceback or "" }, r.last_exchange and { "last_exchange", r.last_exchange } or nil }
    if r.attempts then diag[#diag + 1] = { "failed_attempts", attempts_text(r) } end
    if r.output and r.output ~= "" then diag[#diag + 1] = { "output", r.output } end
    self.out:write(yaml_block(diag))
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
  self.out:write(string.format("# %d passed, %d failed, %d skipped%s\n", s.passed, s.failed, s.skipped,
    s.flaky > 0 and string.format(", %d flaky", s.flaky) or ""))
  self.out:flush()
end

return M
