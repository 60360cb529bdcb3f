-- sonde.reporters.human: for people at a terminal or reading CI logs.
--
-- One character per test (or one line with --verbose), then each failure
-- with file:line, message and traceback, then the closing line
-- "N passed, N failed[, N skipped]". Colour only on a TTY without NO_COLOR.
local loop = require("sonde.c.loop")

local M = {}
M.__index = M

local MARK = { pass = ".", fail = "F", error = "E", pending = "-", skip = "-" }
local WORD = { pass = "ok", fail = "FAIL", error = "ERROR", pending = "pending", skip = "skip" }
local COLOUR = { pass = "32", fail = "31", error = "31", pending = "33", skip = "33" }

function M.new(out, opts)
  local colour = out == io.stdout and loop.isatty(1) and not os.getenv("NO_COLOR")
  return setmetatable({ out = out, verbose = opts.verbose, listing = opts.list, colour = colour, problems = {},
    column = 0 }, M)
end

function M:paint(status, text)
  if not self.colour then return text end
  return "\27[" .. COLOUR[status] .. "m" .. text .. "\27[0m"
end

function M:test_end(r)
  if r.status == "fail" or r.status == "error" then self.problems[#self.problems + 1] = r end
  if self.verbose then
    self.out:write(self:paint(r.status, string.format("%-7s", WORD[r.status])), " ", r.name,
      string.format(" (%.1f ms)", r.duration * 1000), "\n")
  else
    self.out:write(self:paint(r.status, MARK[r.status]))
    self.column = self.column + 1
    if self.column == 80 then
      self.out:write("\n")
      self.column = 0
    end
  end
  self.out:flush()
end

function M:load_error(r)
  self.problems[#self.problems + 1] = r
  if not self.verbose then
    self.out:write(self:paint("error", "E"))
    self.column = self.column + 1
  end
end

function M:list(test)
  self.out:write(test.file, ":", test.line, ": ", test.full_name, "\n")
end

local function indent(text)
  return "  " .. tostring(text):gsub("\n", "\n  ")
end

function M:suite_end(s)
  if self.listing and #self.problems == 0 then return end
  if self.column > 0 then self.out:write("\n") end
  if #s.results == 0 and s.load_errors == 0 then self.out:write("no tests found\n") end
  for i, r in ipairs(self.problems) do
    self.out:write("\n", self:paint(r.status, WORD[r.status]), " ", i, ") ", r.name, "\n")
    self.out:write("  at ", r.file, ":", r.line, "\n", indent(r.message or "?"), "\n")
    if r.traceback and r.traceback ~= "" then self.out:write(indent(r.traceback), "\n") end
  end
  self.out:write(string.format("\n%d failures, %d errors, %d pending in %.3f s%s\n", s.failures, s.errors,
    s.skipped, s.duration, s.interrupted and " (interrupted)" or ""))
  local line = string.format("%d passed, %d failed", s.passed, s.failed)
  if s.skipped > 0 then line = line .. string.format(", %d skipped", s.skipped) end
  self.out:write(line, "\n")
end

return M
