-- sonde.runner.reporters.table: the seed API suite's human table, printed when the
-- run ends: one row per test (section, time, reqs, status), a total row,
-- then "all tests passed" or "some tests failed".
local util = require("sonde.lib.report_util")

local M = {}
M.__index = M

local STATUS = { pass = "✓", fail = "✗", error = "✗ error", pending = "- pending", skip = "- skip",
  flaky = "~ flaky" }
local NAME_WIDTH = 60

function M.new(out, opts) return setmetatable({ out = out, opts = opts, rows = {} }, M) end

function M:test_end(r) self.rows[#self.rows + 1] = r end
M.load_error = M.test_end

local function ms(seconds) return string.format("%.1fms", seconds * 1000) end

function M:suite_end(s)
  local out, pad = self.out, util.pad
  local width = 7
  for _, r in ipairs(self.rows) do width = math.max(width, math.min(NAME_WIDTH, #r.name)) end
  local rule = string.rep("─", width + 2 + 10 + 2 + 6 + 2 + 10)
  out:write("test results\n", rule, "\n")
  out:write(pad("section", width), "  ", pad("time", 10, true), "  ", pad("reqs", 6, true), "  status\n", rule, "\n")
  local total, requests = 0, 0
  for _, r in ipairs(self.rows) do
    local status = STATUS[r.status] or r.status
    if r.status == "flaky" and self.opts.fail_on_flaky then status = "✗ flaky" end
    out:write(pad(r.name, width), "  ", pad(ms(r.duration or 0), 10, true), "  ",
      pad(tostring(tonumber(r.requests) or 0), 6, true), "  ", status, "\n")
    total, requests = total + (r.duration or 0), requests + (tonumber(r.requests) or 0)
  end
  out:write(rule, "\n", pad("total", width), "  ", pad(ms(total), 10, true), "  ", pad(tostring(requests), 6, true),
    "\n")
  out:write(s.failed == 0 and s.load_errors == 0 and "\nall tests passed\n" or "\nsome tests failed\n")
end

return M
