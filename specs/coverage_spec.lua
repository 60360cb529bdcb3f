-- sonde test --coverage: LCOV of the code under test, checked against its
-- real consumers, Debian's genhtml and lcov (package lcov). Each test writes
-- a small busted-style project (src/, spec/) into a folder of its own.
local process = require("sonde.process")
local support = require("specs.support")

local sonde, write_file = support.sonde, support.write_file

local CALC = [[
local M = {}

function M.add(a, b)
  return a + b
end

function M.div(a, b)
  if b == 0 then
    return nil, "division by zero"
  end
  return a / b
end

function M.sum(n)
  local s = 0
  for i = 1, n do
    s = s + i
  end
  return s
end

return M
]]

local UNUSED = [[
local M = {}
function M.never()
  return 1
end
return M
]]

local read = support.read_file

local function has_lcov() return process.run { "sh", "-c", "command -v genhtml lcov" } == 0 end
local NO_LCOV = "genhtml and lcov are not installed (scripts/install-deps installs the lcov package)"

-- project() -> a folder with src/calc.lua, src/unused.lua (required by
-- nothing) and two spec files, one of them summing in a hot loop.
local function project()
  local dir = support.temp_dir("cov")
  assert(require("sonde.c.loop").mkdir(dir .. "/src"))
  assert(require("sonde.c.loop").mkdir(dir .. "/spec"))
  write_file(dir .. "/src/calc.lua", CALC)
  write_file(dir .. "/src/unused.lua", UNUSED)
  write_file(dir .. "/spec/calc_spec.lua", [[
local calc = require("calc")
describe("calc", function()
  it("adds", function() assert.are.equal(3, calc.add(1, 2)) end)
  it("divides", function() assert.are.equal(2, calc.div(4, 2)) end)
end)
]])
  write_file(dir .. "/spec/sum_spec.lua", [[
local calc = require("calc")
it("sums", function() assert.are.equal(500500, calc.sum(1000)) end)
]])
  return dir
end

-- records(lcov) -> {[path] = {lines = {[line] = count}, found, hit}}
local function records(text)
  local out, current = {}, nil
  for line in text:gmatch("[^\n]+") do
    local sf = line:match("^SF:(.*)$")
    if sf then
      current = { lines = {} }
      out[sf] = current
    end
    if current then
      local l, n = line:match("^DA:(%d+),(%d+)$")
      if l then current.lines[tonumber(l)] = tonumber(n) end
      current.found = tonumber(line:match("^LF:(%d+)$")) or current.found
      current.hit = tonumber(line:match("^LH:(%d+)$")) or current.hit
    end
  end
  return out
end

-- lines, hit of the "lines......: 93.8% (15 of 16 lines)" line genhtml and lcov print.
local function lcov_totals(out)
  local hit, found = out:match("lines%.+: [%d.]+%% %((%d+) of (%d+) lines%)")
  return tonumber(found), tonumber(hit)
end

describe("--coverage", function()
  it("counts each line of the code under test, a hot loop exactly, and nothing else", function()
    local dir = project()
    local code, out = sonde("test", "--coverage", { cwd = dir })
    assert.are.equal(0, code)
    local cov = records(read(dir .. "/lcov.info"))
    assert.are.same({ "src/calc.lua" }, (function()
      local paths = {}
      for p in pairs(cov) do paths[#paths + 1] = p end
      return paths
    end)())
    local calc = cov["src/calc.lua"]
    assert.are.equal(1000, calc.lines[17]) -- s = s + i: the JIT is off for covered code
    assert.are.equal(1001, calc.lines[16])
    assert.are.equal(0, calc.lines[9]) -- the division by zero
    assert.is_nil(calc.lines[10]) -- `end` of an if has no code
    assert.are.same({ 16, 15 }, { calc.found, calc.hit })
    assert.matches("\ncoverage %(lcov%.info%):\nfile%s+lines%s+hit%s+%%\nsrc/calc%.lua%s+16%s+15%s+93%.8\n"
      .. "total%s+16%s+15%s+93%.8\n\n[^\n]*\n3 passed, 0 failed\n$", out)
  end)

  it("is read by genhtml, whose totals are sonde's", function()
    if not has_lcov() then return pending(NO_LCOV) end
    local dir = project()
    local code, out = sonde("test", "--coverage=out.info", "--coverage-include", "^src/", { cwd = dir })
    assert.are.equal(0, code)
    local total_found, total_hit = out:match("\ntotal%s+(%d+)%s+(%d+)%s")
    local gcode, gout, gerr = process.run { "genhtml", "-o", dir .. "/html", dir .. "/out.info", cwd = dir,
        timeout = 120 }
    assert.are.equal(0, gcode, gerr)
    local found, hit = lcov_totals(gout)
    assert.are.same({ tonumber(total_found), tonumber(total_hit) }, { found, hit })
    assert.are.same({ 21, 15 }, { found, hit }) -- src/unused.lua is in it, at 0 %
  end)

  it("reports files that match an include and never loaded at 0 %, and leaves out what is excluded", function()
    local dir = project()
    sonde("test", "--coverage", "--coverage-include", "^src/", { cwd = dir })
    local cov = records(read(dir .. "/lcov.info"))
    assert.are.same({ 5, 0 }, { cov["src/unused.lua"].found, cov["src/unused.lua"].hit })
    sonde("test", "--coverage", "--coverage-include", "^src/", "--coverage-exclude", "unused$", { cwd = dir })
    cov = records(read(dir .. "/lcov.info"))
    assert.is_nil(cov["src/unused.lua"])
    assert.is_truthy(cov["src/calc.lua"])
  end)

  it("takes .busted's coverage key and luacov's include and exclude lists", function()
    local dir = project()
    write_file(dir .. "/.busted", 'return { default = { coverage = "from-busted.info" } }\n')
    write_file(dir .. "/.luacov", 'include = { "^src/" }\nexclude = { "calc$" }\n')
    local code = sonde("test", { cwd = dir })
    assert.are.equal(0, code)
    local cov = records(read(dir .. "/from-busted.info"))
    assert.is_truthy(cov["src/unused.lua"])
    assert.is_nil(cov["src/calc.lua"])
  end)

  it("merges the --jobs workers' counts into what a serial run writes", function()
    local dir = project()
    sonde("test", "--coverage=serial.info", "--coverage-include", "^src/", { cwd = dir })
    local code = sonde("test", "--jobs", "2", "--coverage=jobs.info", "--coverage-include", "^src/", { cwd = dir })
    assert.are.equal(0, code)
    assert.are.equal(read(dir .. "/serial.info"), read(dir .. "/jobs.info"))
  end)

  it("of --shard runs merges with lcov -a into the whole run's totals", function()
    if not has_lcov() then return pending(NO_LCOV) end
    local dir = project()
    sonde("test", "--coverage=whole.info", { cwd = dir })
    sonde("test", "--shard", "1/2", "--coverage=s1.info", { cwd = dir })
    sonde("test", "--shard", "2/2", "--coverage=s2.info", { cwd = dir })
    local code, _, err = process.run { "lcov", "-a", "s1.info", "-a", "s2.info", "-o", "merged.info", cwd = dir,
      timeout = 120 }
    assert.are.equal(0, code, err)
    local _, whole = process.run { "lcov", "--summary", "whole.info", cwd = dir, timeout = 120 }
    local _, merged = process.run { "lcov", "--summary", "merged.info", cwd = dir, timeout = 120 }
    assert.are.same({ 16, 15 }, { lcov_totals(whole) })
    assert.are.same({ 16, 15 }, { lcov_totals(merged) })
    assert.are_not.equal(read(dir .. "/s1.info"), read(dir .. "/s2.info")) -- each shard ran part of it
  end)

  it("fills the HTML report's coverage tab", function()
    local dir = project()
    sonde("test", "--coverage", "--coverage-include", "^src/", "-o", "html=report.html", { cwd = dir })
    local html = read(dir .. "/report.html")
    local tab = html:match('<section class="tab" id="coverage">.-</section>')
    assert.is_truthy(tab:find("15 of 21 lines hit (71.4%) in 2 files", 1, true))
    assert.is_truthy(tab:find('<td><a href="#cov-src-calc-lua">src/calc.lua</a></td><td class="r">16</td>'
      .. '<td class="r">15</td><td class="r">93.8</td>', 1, true))
    assert.is_truthy(tab:find('<span class="miss"><i>9</i><b>0</b>    return nil, &quot;division by zero&quot;</span>',
        1,
      true))
    assert.is_truthy(tab:find('<span class="hit"><i>17</i><b>1000</b>    s = s + i</span>', 1, true))
  end)

  it("to a file that cannot be written is one line, before the run or after it with the reports written", function()
    local dir = project()
    local code, out, err = sonde("test", "--coverage=/no/such/dir/lcov.info", { cwd = dir })
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.are.equal("sonde test: cannot write the coverage file: /no/such/dir/lcov.info: No such file or directory\n",
      err)
    code, out, err = sonde("test", "--coverage=/dev/full", "-o", "junit=junit.xml", { cwd = dir })
    assert.are.equal(2, code, out)
    assert.are.equal("sonde test: cannot write the coverage file /dev/full: No space left on device\n", err)
    assert.matches('tests="3"', read(dir .. "/junit.xml"), 1, true)
  end)
end)
