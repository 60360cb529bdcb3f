-- sonde.runner.reporters.human: for people at a terminal or reading CI logs.
--
-- On a terminal: a live progress line (counts and the running test), each
-- failure named as it happens, colour unless NO_COLOR is set. Elsewhere:
-- one character per test, flushed now and then (one line per test with
-- --verbose). Then each problem with file:line, message, diff, traceback and
-- captured output, and the closing line "N passed, N failed[, N skipped]".
local loop = require("sonde.c.loop")
local util = require("sonde.lib.report_util")

local M = {}
M.__index = M

local MARK = { pass = ".", fail = "F", error = "E", pending = "-", skip = "-", flaky = "f" }
local WORD = { pass = "ok", fail = "FAIL", error = "ERROR", pending = "pending", skip = "skip", flaky = "FLAKY" }
local COLOUR = { pass = "32", fail = "31", error = "31", pending = "33", skip = "33", flaky = "35", dim = "2" }
local REDRAW, FLUSH = 0.05, 0.5 -- seconds between live redraws / non-terminal flushes

local function wants_colour()
  local no_colour = os.getenv("NO_COLOR")
  return no_colour == nil or no_colour == ""
end

-- new(out, opts, on_stdout): on_stdout when `out` writes where fd 1 did
-- when the run began (the terminal, maybe).
function M.new(out, opts, on_stdout)
  local tty = on_stdout and loop.isatty(1)
  return setmetatable({ out = out, opts = opts, verbose = opts.verbose, listing = opts.list,
    colour = tty and wants_colour(), live = tty and not opts.verbose and not opts.list,
    width = math.max(40, (tonumber(os.getenv("COLUMNS")) or 80) - 1), problems = {}, flaky = {}, pending = {},
    column = 0, counts = { pass = 0, fail = 0, error = 0, pending = 0, skip = 0, flaky = 0 },
    drawn = false, last_draw = 0, last_flush = 0 }, M)
end

function M:paint(status, text)
  if not self.colour then return text end
  return "\27[" .. COLOUR[status] .. "m" .. text .. "\27[0m"
end

-- ------------------------------------------------------------ live line

function M:clear_live()
  if self.drawn then
    self.out:write("\r\27[K")
    self.drawn = false
  end
end

local function total(c)
  return c.pass + c.fail + c.error + c.pending + c.skip + c.flaky
end

function M:draw_live(force)
  local now = loop.real_now()
  if not force and now - self.last_draw < REDRAW then return end
  self.last_draw = now
  local c = self.counts
  if self.live_counts and total(self.live_counts) > total(c) then c = self.live_counts end
  local text = string.format("%d passed, %d failed, %d skipped", c.pass, c.fail + c.error, c.pending + c.skip)
  if c.flaky > 0 then text = text .. string.format(", %d flaky", c.flaky) end
  if self.running then text = text .. "  " .. self.running end
  self.out:write("\r\27[K", self:paint("dim", util.cut(text, self.width)))
  self.out:flush()
  self.drawn = true
end

-- Outside a terminal, dots are flushed at most every FLUSH seconds, so CI
-- logs move without a write per test.
function M:maybe_flush()
  local now = loop.real_now()
  if now - self.last_flush >= FLUSH then
    self.last_flush = now
    self.out:flush()
  end
end

-- ---------------------------------------------------------------- events

function M:suite_start(info)
  if info.seed and not self.listing then
    local replay = (info.opts.interleave and "--interleave --seed " or "--seed ") .. info.seed
    self.out:write(string.format("Randomized with seed %d (replay with %s)\n", info.seed, replay))
  end
end

function M:test_start(r)
  if self.live then
    self.running = r.name
    self:draw_live(false)
  end
end

local function is_problem(r, opts)
  return util.is_failed(r.status, opts) or r.status == "flaky"
end

function M:count(r)
  self.counts[r.status] = (self.counts[r.status] or 0) + 1
  if r.status == "flaky" then self.flaky[#self.flaky + 1] = r end
  if util.is_failed(r.status, self.opts) then self.problems[#self.problems + 1] = r end
  if r.status == "pending" and not self.opts.suppress_pending then self.pending[#self.pending + 1] = r end
end

-- A pending test's reason, when it has one besides its name.
local function reason_of(r)
  local m = r.message
  if m == nil or m == "" then return nil end
  m = tostring(m)
  if r.name:sub(-#m) == m then return nil end -- pending("reason") at a block's level names the test too
  return m
end

function M:test_end(r)
  self:count(r)
  if r.status == "pending" and self.opts.suppress_pending then return end
  if self.verbose then
    local reason = r.status == "pending" and reason_of(r)
    self.out:write(self:paint(r.status, string.format("%-7s", WORD[r.status])), " ", r.name,
      reason and ("  (" .. util.first_line(reason) .. ")") or "", string.format(" (%.1f ms)", r.duration * 1000), "\n")
    self:maybe_flush()
  elseif self.live then
    if is_problem(r, self.opts) then
      self:clear_live()
      self.out:write(self:paint(r.status, WORD[r.status]), " ", r.name, "  ", r.file, ":", r.line, "\n")
    end
    self.running = nil
    self:draw_live(is_problem(r, self.opts))
  else
    self.out:write(self:paint(r.status, MARK[r.status]))
    self.column = self.column + 1
    if self.column == 80 then
      self.out:write("\n")
      self.column = 0
    end
    self:maybe_flush()
  end
end

M.load_error = M.test_end

-- With --jobs, results reach the reporters in file order once a file is
-- done; progress events keep the live line moving meanwhile.
function M:progress(p)
  if not self.live then return end
  self.live_counts = p.counts
  self.running = string.format("(%d workers, %d files left)", p.workers, p.files_left)
  self:draw_live(false)
end

function M:list(test)
  self.out:write(test.file, ":", test.line, ": ", test.full_name, "\n")
end

-- ---------------------------------------------------------------- report

local function indent(text, by)
  by = by or "  "
  return by .. tostring(text):gsub("\n", "\n" .. by)
end

function M:write_problem(i, r)
  local out = self.out
  out:write("\n", self:paint(r.status, WORD[r.status]), " ", i, ") ", r.name, "\n")
  out:write("  at ", r.file, ":", r.line, "\n")
  if r.status == "flaky" then
    out:write(string.format("  passed on attempt %d after failing:\n", #r.attempts + 1))
  else
    out:write(indent(r.message or "?"), "\n")
    if r.traceback and r.traceback ~= "" then out:write(indent(r.traceback), "\n") end
    if r.last_exchange then out:write("  last HTTP exchange:\n", indent(r.last_exchange, "    "), "\n") end
  end
  for n, a in ipairs(r.attempts or {}) do
    out:write(string.format("  attempt %d: %s\n", n, util.first_line(a.message)))
  end
  if r.output and r.output ~= "" then
    out:write("  captured output:\n", indent(r.output:gsub("\n$", ""), "    "), "\n")
  end
end

function M:suite_end(s)
  self:clear_live()
  if self.listing and #self.problems == 0 then return end
  if self.column > 0 then self.out:write("\n") end
  if s.total == 0 then self.out:write("no tests found\n") end
  local listed = {}
  for _, r in ipairs(self.problems) do listed[#listed + 1] = r end
  for _, r in ipairs(self.flaky) do
    if not util.is_failed(r.status, self.opts) then listed[#listed + 1] = r end
  end
  if not self.verbose then self:write_pending() end
  for i, r in ipairs(listed) do self:write_problem(i, r) end
  if s.coverage and not self.owns_out then
    self.out:write("\n", require("sonde.runner.coverage").table_text(s.coverage))
  end
  self.out:write("\n", M.details(s), "\n", M.closing_line(s), "\n")
end

-- Pending tests with their reasons, as busted lists them (not with
-- --verbose, whose lines already say it, nor --suppress-pending).
function M:write_pending()
  if #self.pending == 0 then return end
  self.out:write("\n")
  for _, r in ipairs(self.pending) do
    local reason = reason_of(r)
    self.out:write(self:paint("pending", "pending"), " ", r.name, "  ", r.file, ":", r.line,
      reason and ("\n" .. indent(reason, "    ")) or "", "\n")
  end
end

-- details(summary) -> the line before the closing one: what "failed" and
-- "skipped" are made of (the same numbers, never another count), the time,
-- the seed.
function M.details(s)
  local parts = {}
  if s.failed > 0 then
    local of = {}
    if s.failures > 0 then of[#of + 1] = util.plural(s.failures, "failure") end
    if s.errors > 0 then of[#of + 1] = util.plural(s.errors, "error") end
    local flaky_failed = s.failed - s.failures - s.errors
    if flaky_failed > 0 then of[#of + 1] = flaky_failed .. " flaky" end
    parts[#parts + 1] = s.failed .. " failed: " .. table.concat(of, ", ")
  end
  if s.flaky > 0 and s.failed == s.failures + s.errors then
    parts[#parts + 1] = s.flaky .. " flaky (passed on a retry)"
  end
  if s.skipped > 0 then parts[#parts + 1] = s.skipped .. " skipped (pending)" end
  parts[#parts + 1] = string.format("%.3f s", s.duration)
  if s.seed then parts[#parts + 1] = "seed " .. s.seed end
  if s.interrupted then parts[#parts + 1] = "interrupted" end
  return table.concat(parts, "; ")
end

-- closing_line(summary) -> "N passed, N failed[, N skipped]", the run's
-- last line, where failed counts failures and errors.
function M.closing_line(s)
  local line = string.format("%d passed, %d failed", s.passed, s.failed)
  if s.skipped > 0 then line = line .. string.format(", %d skipped", s.skipped) end
  return line
end

return M
