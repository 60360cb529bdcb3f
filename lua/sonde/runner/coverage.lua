-- sonde.runner.coverage: `sonde test --coverage[=FILE]`, line coverage of the code
-- under test, written as LCOV (lcov.info by default) for genhtml and CI
-- services, summed up in a terminal table and the HTML report's tab.
--
-- A line hook in C (sonde.c.coverage) counts the lines run of each chunk
-- that decide() takes: a file's chunk, not a spec file nor the helper, not
-- sonde's own modules, luassert or say unless --coverage-include names
-- them, matching an include pattern when there is one, and no exclude
-- pattern. Patterns are Lua patterns on the path relative to the working
-- directory without ".lua" (luacov's convention: "src/mymod$"); they come
-- from --coverage-include/--coverage-exclude and from luacov's config file
-- (.luacov, or --coverage-config-file), as busted reads it. The JIT is off
-- for what is covered (compiled code runs no hooks).
--
-- Lines found are those with reachable bytecode (LuaJIT's own line info,
-- read with jit.util from a fresh compile of the file), so a file never
-- loaded but matching an include is reported at 0 %. Hit counts are line
-- events: a line entered again after a call returns into it counts again.
-- --jobs workers send what they counted after each file; the parent merges.
local ccov = require("sonde.c.coverage")
local loop = require("sonde.c.loop")
local any_matches = require("sonde.runner.options").any_matches

local M = {}

M.DEFAULT_FILE = "lcov.info"

local state -- while coverage is on: see setup

-- ------------------------------------------------------------------ paths

local cwd_prefix

-- normalize(path) -> path relative to the working directory when inside it.
local function normalize(path)
  path = path:gsub("^%./", ""):gsub("/%./", "/")
  cwd_prefix = cwd_prefix or ((loop.cwd() or "") .. "/")
  if path:sub(1, #cwd_prefix) == cwd_prefix then path = path:sub(#cwd_prefix + 1) end
  return path
end
M.normalize = normalize

-- What sonde brings along: never the code under test unless an include
-- pattern names it.
local function sonde_own(path)
  return path:find("^lua/sonde/") or path:find("/lua/sonde/") or path:find("^luassert/") or path:find("/luassert/")
    or path:find("^say/") or path:find("/say/")
end

-- covers(path) -> whether a file (relative path) is under test.
local function covers(path)
  if state.never[path] then return false end
  local name = path:gsub("%.lua$", "")
  if any_matches(name, state.exclude) then return false end
  if #state.include > 0 then return any_matches(name, state.include) end
  return not sonde_own(path)
end

-- decide(source): the C hook asks once per chunk.
local function decide(source)
  if source:sub(1, 1) ~= "@" then return false end
  local path = normalize(source:sub(2))
  local yes = covers(path)
  if yes then state.paths[source] = path end
  return yes
end

-- ----------------------------------------------------------------- config

-- luacov's config file: a Lua file that returns a table or sets globals.
local function read_luacov(path, required)
  if loop.stat(path) ~= "file" then
    if required then return nil, "--coverage-config-file " .. path .. ": no such file" end
    return {}
  end
  local chunk, err = loadfile(path, "t")
  if not chunk then return nil, "cannot load " .. path .. ": " .. err end
  local env = {}
  setfenv(chunk, env)
  local ok, ret = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(ret) end
  local config = type(ret) == "table" and ret or env
  for _, key in ipairs({ "include", "exclude" }) do
    local v = config[key]
    if v ~= nil and type(v) ~= "table" then
      return nil, string.format("%s: '%s' expects a list of patterns, got %s", path, key, type(v))
    end
  end
  return config
end

-- file_of(opts) -> where the LCOV goes.
function M.file_of(opts)
  return type(opts.coverage) == "string" and opts.coverage or M.DEFAULT_FILE
end

-- writable(path) -> true | nil, err: checked before the run, without
-- truncating what is there.
local function writable(path)
  local existed = loop.stat(path) ~= nil
  local f, err = io.open(path, existed and "r+" or "w")
  if not f then return nil, err end
  f:close()
  if not existed then os.remove(path) end
  return true
end

-- setup(opts[, check_file]) -> true | nil, "one line": reads the patterns
-- and, in the process that writes the file, checks it can.
function M.setup(opts, check_file)
  local config, err = read_luacov(opts.coverage_config_file or ".luacov", opts.coverage_config_file ~= nil)
  if not config then return nil, err end
  local include, exclude = {}, {}
  for _, p in ipairs(opts.coverage_include or {}) do include[#include + 1] = p end
  for _, p in ipairs(config.include or {}) do include[#include + 1] = tostring(p) end
  for _, p in ipairs(opts.coverage_exclude or {}) do exclude[#exclude + 1] = p end
  for _, p in ipairs(config.exclude or {}) do exclude[#exclude + 1] = tostring(p) end
  for _, p in ipairs(include) do
    if not pcall(string.find, "", p) then return nil, "--coverage-include: bad Lua pattern '" .. p .. "'" end
  end
  for _, p in ipairs(exclude) do
    if not pcall(string.find, "", p) then return nil, "--coverage-exclude: bad Lua pattern '" .. p .. "'" end
  end
  local file = M.file_of(opts)
  if check_file then
    local ok, werr = writable(file)
    if not ok then return nil, "cannot write the coverage file: " .. werr end
  end
  state = { include = include, exclude = exclude, never = {}, paths = {}, hits = {}, file = file, on = false }
  if opts.helper then state.never[normalize(opts.helper)] = true end
  return true
end

function M.active() return state ~= nil end

-- start(): the hook is on from here; compiled code is flushed so that the
-- code under test runs in the interpreter.
function M.start()
  jit.flush()
  ccov.start(decide)
  state.on = true
end

-- note_spec(path): a spec file is never under test.
function M.note_spec(path)
  if state then state.never[normalize(path)] = true end
end

-- ---------------------------------------------------------------- counts

local function add(path, lines)
  local into = state.hits[path]
  if not into then
    into = {}
    state.hits[path] = into
  end
  for line, n in pairs(lines) do into[line] = (into[line] or 0) + n end
end

-- collect(): what the hook counted since the last collect, by path.
function M.collect()
  if not state or not state.on then return end
  for source, lines in pairs(ccov.take()) do add(state.paths[source] or normalize(source:sub(2)), lines) end
end

-- take_wire() -> what this process counted since the last call, in a
-- JSON-safe shape ({path = {lines, counts}}): a --jobs worker sends it.
function M.take_wire()
  M.collect()
  local out = {}
  for path, lines in pairs(state.hits) do
    local ls, cs = {}, {}
    for line, n in pairs(lines) do ls[#ls + 1], cs[#cs + 1] = line, n end
    out[path] = { lines = ls, counts = cs }
  end
  state.hits = {}
  return out
end

-- merge(wire): a worker's counts, in the parent.
function M.merge(wire)
  if not state then return end
  for path, t in pairs(wire or {}) do
    local lines = {}
    for i, line in ipairs(t.lines or {}) do lines[line] = t.counts[i] end
    add(path, lines)
  end
end

-- -------------------------------------------------------------- found lines

local bcnames -- jit.vmdef's, when it can be loaded
local RETURNS = { RET = true, RET0 = true, RET1 = true, RETM = true, CALLT = true, CALLMT = true }
local GOTOS = { JMP = true, UCLO = true, ISNEXT = true }
local TESTS = {}
for _, op in ipairs({ "ISLT", "ISGE", "ISLE", "ISGT", "ISEQV", "ISNEV", "ISEQS", "ISNES", "ISEQN", "ISNEN", "ISEQP",
  "ISNEP", "IST", "ISF", "ISTC", "ISFC" }) do TESTS[op] = true end

local function op_name(ins)
  return bcnames:sub(bit.band(ins, 0xff) * 6 + 1, bit.band(ins, 0xff) * 6 + 6):gsub(" +$", "")
end

-- The pcs of fn's bytecode that can run: from the first, along falls,
-- jumps and the two ways out of a test (a return after a return is not).
local function reachable(fn, jutil, size)
  if not bcnames then
    local all = {}
    for pc = 1, size - 1 do all[pc] = true end
    return all
  end
  local seen, todo = {}, { 1 }
  while #todo > 0 do
    local pc = table.remove(todo)
    if pc >= 1 and pc < size and not seen[pc] then
      seen[pc] = true
      local ins, mode = jutil.funcbc(fn, pc)
      local op = op_name(ins)
      local target = bit.band(mode, 15 * 128) == 13 * 128 and (pc + bit.rshift(ins, 16) - 0x7fff) or nil
      if RETURNS[op] then -- luacheck: ignore 542 (nothing follows a return: no successor to queue)
      elseif GOTOS[op] then
        todo[#todo + 1] = target
      elseif TESTS[op] then
        todo[#todo + 1], todo[#todo + 2] = pc + 1, pc + 2
      else
        todo[#todo + 1] = pc + 1
        if target then todo[#todo + 1] = target end
      end
    end
  end
  return seen
end

local function proto_lines(fn, jutil, lines)
  local info = jutil.funcinfo(fn)
  for pc in pairs(reachable(fn, jutil, info.bytecodes)) do
    local line = jutil.funcinfo(fn, pc).currentline
    if line and line > 0 then lines[line] = true end
  end
  local i = -1
  while true do
    local k = jutil.funck(fn, i)
    if k == nil then break end
    if type(k) == "function" or type(k) == "proto" then proto_lines(k, jutil, lines) end
    i = i - 1
  end
end

-- found_lines(path) -> {[line] = true} of the lines with code that can
-- run, or nil when the file does not compile.
function M.found_lines(path)
  if bcnames == nil then
    local ok, vmdef = pcall(require, "jit.vmdef")
    bcnames = ok and vmdef.bcnames or false
  end
  local chunk = loadfile(path)
  if not chunk then return nil end
  local lines = {}
  proto_lines(chunk, require("jit.util"), lines)
  return lines
end

-- Files matching an include that nothing loaded, under the working
-- directory (hidden folders and node_modules skipped).
local function unloaded(found)
  if #state.include == 0 then return end
  local function walk(dir, prefix)
    local entries = loop.scandir(dir)
    if not entries then return end
    for _, e in ipairs(entries) do
      local path = prefix .. e.name
      if e.name:sub(1, 1) ~= "." then
        if e.dir then
          if e.name ~= "node_modules" then walk(dir .. "/" .. e.name, path .. "/") end
        elseif e.name:find("%.lua$") and not state.hits[path] and covers(path) then
          found[path] = true
        end
      end
    end
  end
  walk(".", "")
end

-- ----------------------------------------------------------------- report

-- report() -> {files = {{path, found, hit, lines = {[line] = count}}},
-- found, hit, path}: the lines found of every file under test, counts of
-- 0 for those not run.
function M.report()
  ccov.stop()
  M.collect()
  local extra = {}
  unloaded(extra)
  local paths = {}
  for path in pairs(state.hits) do paths[#paths + 1] = path end
  for path in pairs(extra) do paths[#paths + 1] = path end
  table.sort(paths)
  local files, found_all, hit_all = {}, 0, 0
  for _, path in ipairs(paths) do
    local hits = state.hits[path] or {}
    local lines = {}
    for line in pairs(M.found_lines(path) or hits) do lines[line] = hits[line] or 0 end
    for line, n in pairs(hits) do lines[line] = n end -- a line the file on disk no longer has code on
    local found, hit = 0, 0
    for _, n in pairs(lines) do
      found = found + 1
      if n > 0 then hit = hit + 1 end
    end
    files[#files + 1] = { path = path, found = found, hit = hit, lines = lines }
    found_all, hit_all = found_all + found, hit_all + hit
  end
  state.on = false
  return { files = files, found = found_all, hit = hit_all, path = state.file }
end

-- lcov(report) -> the text of an LCOV tracefile.
function M.lcov(report)
  local out = {}
  for _, f in ipairs(report.files) do
    out[#out + 1] = "TN:\nSF:" .. f.path .. "\n"
    local lines = {}
    for line in pairs(f.lines) do lines[#lines + 1] = line end
    table.sort(lines)
    for _, line in ipairs(lines) do out[#out + 1] = string.format("DA:%d,%d\n", line, f.lines[line]) end
    out[#out + 1] = string.format("LF:%d\nLH:%d\nend_of_record\n", f.found, f.hit)
  end
  return table.concat(out)
end

-- write(report) -> true | nil, "one line".
function M.write(report)
  local f, err = io.open(report.path, "w")
  if not f then return nil, "cannot write the coverage file: " .. err end
  local ok, werr = f:write(M.lcov(report))
  if ok then ok, werr = f:flush() end
  local closed, cerr = f:close()
  if ok then ok, werr = closed, cerr end
  if not ok then return nil, "cannot write the coverage file " .. report.path .. ": " .. tostring(werr) end
  return true
end

local function percent(hit, found)
  if found == 0 then return 100 end
  return hit / found * 100
end
M.percent = percent

-- table_text(report) -> the terminal's summary: file, lines, hit, %.
function M.table_text(report)
  local util = require("sonde.lib.report_util")
  local width = 4
  for _, f in ipairs(report.files) do width = math.max(width, #f.path) end
  width = math.min(width, 60)
  local lines = { string.format("coverage (%s):", report.path),
    util.pad("file", width) .. "   lines     hit       %" }
  local function row(name, found, hit)
    return util.pad(name, width) .. string.format(" %7d %7d %7.1f", found, hit, percent(hit, found))
  end
  for _, f in ipairs(report.files) do lines[#lines + 1] = row(f.path, f.found, f.hit) end
  lines[#lines + 1] = row("total", report.found, report.hit)
  return table.concat(lines, "\n") .. "\n"
end

return M
