-- sonde.spec_dsl: busted's DSL, which only registers blocks.
--
-- Loading a spec file runs it with describe/it/hooks/assert in its
-- environment; describe bodies run at once and build a tree of blocks and
-- tests that sonde.runner executes. Assertions are luassert's, whose raised
-- errors are marked as failures (as busted does), so the runner can tell a
-- failed assertion from any other error.
local task = require("sonde.task")
local trace = require("sonde.trace")
local luassert = require("luassert")
local spy = require("luassert.spy")
local stub = require("luassert.stub")
local mock = require("luassert.mock")
local match = require("luassert.match")

local M = {}

-- ------------------------------------------------------- failures, pending

local Failure = { __tostring = function(e) return tostring(e.message) end }
local Pending = { __tostring = function(e) return "pending: " .. tostring(e.message) end }

function M.is_failure(e) return getmetatable(e) == Failure end
function M.is_pending(e) return getmetatable(e) == Pending end

-- fail(message, level): raises a failure, positioned at the caller's line.
local function fail(msg, level)
  level = level or 1
  local positioned = msg
  if type(msg) == "string" then
    local _
    _, positioned = pcall(error, msg, level + 2)
  end
  error(setmetatable({ message = positioned }, Failure), level + 1)
end
M.fail = fail

-- luassert raises through the global `error` of two __call functions (the
-- module's own, for assert(v), and its assertion states', for assert.x.y);
-- giving each an environment whose `error` is fail marks its errors.
local function bind_error(callable)
  local f = (debug.getmetatable(callable) or {}).__call
  if f and not rawget(getfenv(f), "__sonde_bound") then
    setfenv(f, setmetatable({ error = fail, __sonde_bound = true }, { __index = getfenv(f) }))
  end
end
bind_error(luassert)
bind_error(luassert.is_true)

function M.snapshot() return luassert:snapshot() end

-- ------------------------------------------------------------------- blocks

local current_block -- the block whose body is being loaded
local running_test, finally_list -- the test whose body runs now

local function caller(level)
  local info = debug.getinfo(level + 1, "Sl")
  return info and info.short_src or "?", info and info.currentline or 0
end

local function join_name(parent, name)
  if parent and parent.kind ~= "file" and parent.full_name ~= "" then return parent.full_name .. " " .. name end
  return name
end

local function new_block(kind, name, parent, file, line)
  local b = { kind = kind, name = name, parent = parent, children = {}, before_each = {}, after_each = {},
    setup = {}, teardown = {}, file = file, line = line }
  b.full_name = kind == "file" and "" or join_name(parent, name)
  if parent then parent.children[#parent.children + 1] = b end
  return b
end

local function tags_of(name)
  local set, list = {}, {}
  for tag in name:gmatch("#([%w_%-%.]+)") do
    if not set[tag] then list[#list + 1] = tag end
    set[tag] = true
  end
  return set, list
end

local function need_loading(what)
  if not current_block then
    error(what .. " can only be used while a spec file is loading (at its top level or inside describe)", 3)
  end
end

local function check_name(what, name)
  if type(name) ~= "string" then error(what .. ": expected a name (string) first, got " .. type(name), 3) end
end

local function describe(name, fn)
  need_loading("describe")
  check_name("describe", name)
  if type(fn) ~= "function" then error("describe '" .. name .. "' needs a function as its second argument, got " .. type(fn), 2) end
  local file, line = caller(2)
  local block = new_block("describe", name, current_block, file, line)
  local outer = current_block
  current_block = block
  local ok, err = pcall(fn)
  current_block = outer
  if not ok then error(err, 0) end
end

local function add_test(name, fn, pending_reason)
  local file, line = caller(3)
  local test = { kind = "test", name = name, fn = fn, parent = current_block, file = file, line = line }
  test.full_name = join_name(current_block, name)
  test.tags, test.tag_list = tags_of(test.full_name)
  if pending_reason then test.pending, test.pending_reason = true, pending_reason end
  current_block.children[#current_block.children + 1] = test
end

local function it(name, fn)
  need_loading("it")
  check_name("it", name)
  if fn == nil then return add_test(name, nil, "no test body") end
  if type(fn) ~= "function" then error("it '" .. name .. "' needs a function as its second argument, got " .. type(fn), 2) end
  add_test(name, fn)
end

-- pending(name[, fn]) while loading registers a pending test; pending([msg])
-- inside a running test stops it as pending.
local function pending(name)
  if running_test then error(setmetatable({ message = name or "pending" }, Pending), 2) end
  need_loading("pending")
  check_name("pending", name)
  add_test(name, nil, name)
end

local function hook(list_name)
  return function(fn)
    need_loading(list_name)
    if type(fn) ~= "function" then error(list_name .. " needs a function, got " .. type(fn), 2) end
    local file, line = caller(2)
    local list = current_block[list_name]
    list[#list + 1] = { fn = fn, file = file, line = line }
  end
end

local function finally(fn)
  if not running_test then error("finally can only be used inside a running test (it)", 2) end
  if type(fn) ~= "function" then error("finally needs a function, got " .. type(fn), 2) end
  finally_list[#finally_list + 1] = fn
end

function M.enter_test(result)
  running_test, finally_list = result, {}
end

function M.leave_test()
  local list = finally_list or {}
  running_test, finally_list = nil, nil
  return list
end

local function environment()
  local setup, teardown = hook("setup"), hook("teardown")
  local env = {
    describe = describe, context = describe, insulate = describe, expose = describe,
    it = it, test = it, spec = it, pending = pending, finally = finally,
    before_each = hook("before_each"), after_each = hook("after_each"),
    setup = setup, lazy_setup = setup, strict_setup = setup,
    teardown = teardown, lazy_teardown = teardown, strict_teardown = teardown,
    assert = luassert, spy = spy, stub = stub, mock = mock, match = match, fail = fail,
    randomize = function() end,
  }
  return setmetatable(env, { __index = _G })
end

local function line_of(message)
  return tonumber(tostring(message):match("^[^:\n]+:(%d+):"))
end

-- load_file(path) -> file block | nil, {message, traceback, line}
function M.load_file(path)
  local chunk, err = loadfile(path)
  if not chunk then
    return nil, { message = trace.load_message(path, err), line = line_of(err) }
  end
  local file = new_block("file", path, nil, path, 0)
  setfenv(chunk, environment())
  current_block = file
  local tb
  local ok, lerr = xpcall(chunk, function(e)
    tb = debug.traceback("", 2)
    return e
  end)
  current_block = nil
  if not ok then
    local msg = task.describe(lerr)
    return nil, { message = msg, traceback = trace.trim(tb), line = line_of(msg) }
  end
  return file
end

function M.each_test(block, fn)
  for _, child in ipairs(block.children) do
    if child.kind == "test" then fn(child) else M.each_test(child, fn) end
  end
end

-- ------------------------------------------------------- file insulation

-- Modules sonde and luassert hold state in; they are never unloaded.
local function kept_module(name)
  return name:find("^sonde") or name:find("^luassert") or name == "say" or name:find("^say%.") or name == "cjson"
end

-- snapshot_globals() / restore_globals(s): what a spec file adds to _G or
-- package.loaded is undone after it, as busted insulates each file.
function M.snapshot_globals()
  local g, loaded = {}, {}
  for k, v in pairs(_G) do g[k] = v end
  for k, v in pairs(package.loaded) do loaded[k] = v end
  return { g = g, loaded = loaded }
end

function M.restore_globals(s)
  for k in pairs(_G) do
    if s.g[k] == nil then _G[k] = nil end
  end
  for k, v in pairs(s.g) do
    if rawget(_G, k) ~= v then rawset(_G, k, v) end
  end
  for k in pairs(package.loaded) do
    if s.loaded[k] == nil and not kept_module(k) then package.loaded[k] = nil end
  end
end

return M
