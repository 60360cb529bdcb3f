-- sonde.runner.dsl: busted's DSL, which only registers blocks.
--
-- Loading a spec file runs it with describe/it/hooks/assert in its
-- environment. As in busted, a describe body runs when its block's turn
-- comes in the run (sonde.runner calls load_body), not while the file
-- loads: code in a nested describe body sees what the hooks of earlier
-- tests set. Each body adds blocks and tests to the tree the runner walks. Assertions are luassert's, whose raised
-- errors are marked as failures (as busted does), so the runner can tell a
-- failed assertion from any other error.
--
-- Globals follow busted's contexts: a global assigned in a spec file lands
-- in the environment of the block (or test) running it and is seen by that
-- block's descendants only; hooks assign into their block; `expose` assigns
-- one level further out than its parent; each file and each `insulate` block
-- restore _G and package.loaded when they end, unless an `expose` inside
-- them published its changes.
local task = require("sonde.task")
local trace = require("sonde.lib.trace")
local diff = require("sonde.runner.diff")
local luassert = require("luassert")
local spy = require("luassert.spy")
local stub = require("luassert.stub")
local mock = require("luassert.mock")
local match = require("luassert.match")
local namespaces = require("luassert.namespaces")

local M = {}

-- ------------------------------------------------------- failures, pending

local Failure = { __tostring = function(e) return tostring(e.message) end }
local Pending = { __tostring = function(e) return "pending: " .. tostring(e.message) end }

function M.is_failure(e) return getmetatable(e) == Failure end
function M.is_pending(e) return getmetatable(e) == Pending end

local last_compared -- expected/actual of the `same` or `equal` that just failed

-- fail(message, level): raises a failure, positioned at the caller's line.
-- A failed table comparison carries its structural diff.
local function fail(msg, level)
  level = level or 1
  local positioned = msg
  if type(msg) == "string" then
    local _
    _, positioned = pcall(error, msg, level + 2)
  end
  local e = setmetatable({ message = positioned }, Failure)
  if last_compared then
    local lines = diff.compare(last_compared.expected, last_compared.actual)
    if #lines > 0 then e.diff = lines end
    last_compared = nil
  end
  error(e, level + 1)
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

-- `same` and `equal` keep their raw arguments when they fail, since luassert
-- formats them into text before raising; fail() turns them into a diff.
local function keep_compared(name)
  local entry = namespaces.assertion[name]
  if not entry or rawget(entry, "__sonde_wrapped") then return end
  local callback = entry.callback
  entry.callback = function(state, args, level)
    local expected, actual = args[1], args[2]
    local ok = callback(state, args, (level or 1) + 1)
    if not ok and state.mod and type(expected) == "table" and type(actual) == "table" then
      last_compared = { expected = expected, actual = actual }
    else
      last_compared = nil
    end
    return ok
  end
  entry.__sonde_wrapped = true
end
keep_compared("same")
keep_compared("equals")
keep_compared("equal")

-- snapshot() -> luassert's snapshot (spies, stubs, formatters, parameters)
-- to hand to revert() when the test ends; also forgets a comparison no
-- failure consumed. A snapshot nothing was added to stays open for the next
-- test: reverting it would change nothing, and most tests add nothing.
-- luassert adds through these three functions of luassert.state; wrapped,
-- they say whether anything was added since the open snapshot was taken.
local open_snapshot
local added = false

do
  local astate = require("luassert.state")
  for _, name in ipairs({ "add_formatter", "set_parameter", "add_spy" }) do
    local add = astate[name]
    astate[name] = function(...)
      added = true
      return add(...)
    end
  end
end

local function untouched(s)
  return s == open_snapshot and not added and s.next == nil and getmetatable(s) ~= nil
end

function M.snapshot()
  last_compared = nil
  local s = open_snapshot
  if s and untouched(s) then return s end
  s = luassert:snapshot()
  open_snapshot, added = s, false
  return s
end

function M.revert(s)
  if untouched(s) then return end
  if open_snapshot == s then open_snapshot = nil end
  if getmetatable(s) ~= nil then s:revert() end
end

-- ------------------------------------------------------------- insulation

-- Modules sonde and luassert hold state in; they are never unloaded.
local function kept_module(name)
  return name:find("^sonde") or name:find("^luassert") or name == "say" or name:find("^say%.") or name == "cjson"
end

-- _G's keys, its metatable (a file may make globals strict) and
-- package.loaded, as busted's insulation saves them.
local function save()
  local g, loaded = {}, {}
  for k, v in pairs(_G) do g[k] = v end
  for k, v in pairs(package.loaded) do loaded[k] = v end
  return { g = g, loaded = loaded, meta = getmetatable(_G) }
end

local function restore(s)
  if getmetatable(_G) ~= s.meta then setmetatable(_G, s.meta) end
  for k in pairs(_G) do
    if s.g[k] == nil then rawset(_G, k, nil) end
  end
  for k, v in pairs(s.g) do
    if rawget(_G, k) ~= v then rawset(_G, k, v) end
  end
  for k in pairs(package.loaded) do
    if s.loaded[k] == nil and not kept_module(k) then package.loaded[k] = nil end
  end
  for k, v in pairs(s.loaded) do package.loaded[k] = v end
end
-- Both run once a file (or insulate block), over a hundred keys or two:
-- compiled, their loops cost a one-test run 0.3 ms more than interpreted.
jit.off(save)
jit.off(restore)

local states = {} -- one entry per entered block: a saved state, or false

-- enter(block): as busted pushes a context, when a file loads and when a
-- describe block's turn comes (before its body runs). An insulating block
-- saves the state.
function M.enter(block)
  states[#states + 1] = block.envmode == "insulate" and save() or false
end

-- leave(block): restores an insulating block's state; an exposed block
-- instead makes its changes part of the enclosing insulating block's state.
function M.leave(block)
  local s = table.remove(states)
  if block.envmode == "expose" and states[#states] then states[#states] = save() end
  if s then restore(s) end
end

-- ------------------------------------------------------------ environment

-- The DSL, and what `expose` at a file's top publishes; then _G.
local root_env = setmetatable({}, { __index = _G })
local context -- node whose environment globals resolve in

function M.set_context(node) context = node end

local function lookup(node, k)
  while node do
    local env = node.env
    if env then
      local v = env[k]
      if v ~= nil then return v end
    end
    node = node.parent
  end
  return root_env[k]
end

-- Until a spec assigns its first global, no block has an environment of
-- its own and every name resolves in root_env: spec_env then indexes it as
-- a table (the VM's fast path, no call per global a spec reads). The first
-- assignment switches to the walk from the running node's block outwards.
local spec_env_mt = { __index = root_env }

-- Where an assignment lands while `node` runs: its own environment, or for
-- `expose` its grandparent's (busted's unwrap by two levels).
local function env_for_writes(node)
  if node == nil then return root_env end
  if node.envmode == "expose" then
    node = node.parent and node.parent.parent
    if node == nil then return root_env end
  end
  local env = node.env
  if not env then
    env = {}
    node.env = env
    spec_env_mt.__index = function(_, k) return lookup(context, k) end
  end
  return env
end

spec_env_mt.__newindex = function(_, k, v) env_for_writes(context)[k] = v end
local spec_env = setmetatable({}, spec_env_mt)

-- ------------------------------------------------------------------ blocks

local current_block -- the block whose body is being loaded
local running_test, finally_list -- the test whose body runs now

-- where(1) -> file, line of the spec code calling the DSL function that
-- asks: the whole path (short_src cuts long ones), without the table
-- debug.getinfo would build per call.
local where = require("sonde.c.debug").where

local function join_name(parent, name)
  if parent and parent.kind ~= "file" and parent.full_name ~= "" then return parent.full_name .. " " .. name end
  return name
end

local function new_block(kind, name, parent, file, line)
  local b = { kind = kind, name = name, parent = parent, children = {}, before_each = {}, after_each = {},
    setup = {}, teardown = {}, lazy_setup = {}, lazy_teardown = {}, file = file, line = line, curries = {} }
  b.full_name = kind == "file" and "" or join_name(parent, name)
  if parent then parent.children[#parent.children + 1] = b end
  return b
end

local NO_TAGS_SET, NO_TAGS = setmetatable({}, { __newindex = error }), setmetatable({}, { __newindex = error })

local function tags_of(name)
  if not name:find("#", 1, true) then return NO_TAGS_SET, NO_TAGS end
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

-- it(fn) and describe(fn) without a name: busted names them after
-- themselves.
local function unnamed(what, name, fn)
  if fn == nil and type(name) == "function" then return what, name end
  return name, fn
end

local function handler_with_traceback(holder)
  return function(e)
    holder.tb = debug.traceback("", 2)
    return e
  end
end

-- load_body(block): runs a describe body with the block as the loading
-- context, once, when the runner reaches the block (inside M.enter). An
-- error in it is busted's "describe error": one error, and the block's tests
-- and hooks do not run.
function M.load_body(block)
  local fn = block.body
  block.body = nil
  local outer = current_block
  current_block, context = block, block
  local holder = {}
  local ok, err = xpcall(fn, handler_with_traceback(holder))
  if ok then ok, err = pcall(M.check_curries, block) end
  current_block, context = outer, outer
  if not ok then M.fail_block(block, err, holder.tb) end
end

-- fail_block(block, err, traceback): the block's body did not finish (it
-- raised, or the runner stopped it at its timeout).
function M.fail_block(block, err, tb)
  local msg = task.describe(err)
  block.children, block.before_each, block.after_each = {}, {}, {}
  block.setup, block.teardown, block.lazy_setup, block.lazy_teardown = {}, {}, {}, {}
  tb = trace.trim(tb)
  block.load_error = { message = msg, traceback = tb, line = M.spec_line(block.file, msg, tb) or block.line }
end

-- `describe "name" (function() ... end)` is busted's curried form: called
-- without a function, describe returns one that takes it. A curry never
-- called is a describe without a function, reported when its block ends.
local function curried(block, name, file, line, register)
  local entry = { name = name, file = file, line = line }
  block.curries[#block.curries + 1] = entry
  return function(fn)
    entry.done = true
    if type(fn) ~= "function" then
      error(string.format("describe '%s' needs a function, got %s", name, type(fn)), 2)
    end
    return register(fn)
  end
end

function M.check_curries(block)
  for _, c in ipairs(block.curries) do
    if not c.done then
      error(string.format("%s:%d: describe '%s' needs a function as its second argument, got nil", c.file, c.line,
        c.name), 0)
    end
  end
  block.curries = {}
end

local function describe_kind(envmode)
  return function(name, fn)
    need_loading("describe")
    name, fn = unnamed("describe", name, fn)
    check_name("describe", name)
    local file, line = where(1)
    local parent = current_block
    local function register(body)
      local block = new_block("describe", name, parent, file, line)
      block.envmode, block.body = envmode, body
    end
    if fn == nil then return curried(parent, name, file, line, register) end
    if type(fn) ~= "function" then
      error("describe '" .. name .. "' needs a function as its second argument, got " .. type(fn), 2)
    end
    register(fn)
  end
end

-- What a test has unless it says otherwise: a suite holds thousands of
-- tests, and a node of seven fields is half the size of one of eleven.
local Test = { __index = { kind = "test", tags = NO_TAGS_SET, tag_list = NO_TAGS } }

-- The caller sets the test's file and line, from where(1) as its last
-- call: LuaJIT compiles the DSL call up to a call into C, not past it here
-- (the spec file's own code is never compiled).
local function add_test(name, fn, pending_reason)
  local full_name = join_name(current_block, name)
  local test = setmetatable({ name = name, fn = fn, parent = current_block, file = "?", line = 0,
    full_name = full_name }, Test)
  local tags, tag_list = tags_of(full_name)
  if tags ~= NO_TAGS_SET then test.tags, test.tag_list = tags, tag_list end
  if pending_reason then test.pending, test.pending_reason = true, pending_reason end
  local children = current_block.children
  children[#children + 1] = test
  return test
end

-- it(name, fn); it(name) alone is pending ("no test body"), unless the
-- curried form `it "name" (fn)` gives the body.
local function body_setter(test)
  return function(body)
    if type(body) ~= "function" then error("it '" .. test.name .. "' needs a function, got " .. type(body), 2) end
    test.fn, test.pending, test.pending_reason = body, nil, nil
  end
end

local function it(name, fn)
  need_loading("it")
  name, fn = unnamed("it", name, fn)
  check_name("it", name)
  if fn ~= nil and type(fn) ~= "function" then
    error("it '" .. name .. "' needs a function as its second argument, got " .. type(fn), 2)
  end
  local test = add_test(name, fn, fn == nil and "no test body" or nil)
  test.file, test.line = where(1)
  if fn == nil then return body_setter(test) end
end

-- pending(name[, fn]) while loading registers a pending test; pending([msg])
-- inside a running test stops it as pending.
local function pending(name)
  if running_test then error(setmetatable({ message = name or "pending" }, Pending), 2) end
  need_loading("pending")
  check_name("pending", name)
  local test = add_test(name, nil, name)
  test.file, test.line = where(1)
  return function() end -- pending "name" (function() ... end): the body never runs
end

local function hook(list_name, kind)
  return function(fn)
    need_loading(kind)
    if type(fn) ~= "function" then error(kind .. " needs a function, got " .. type(fn), 2) end
    local file, line = where(1)
    local list = current_block[list_name]
    list[#list + 1] = { fn = fn, file = file, line = line }
  end
end

local NO_FINALLY = {}

local function finally(fn)
  if not running_test then error("finally can only be used inside a running test (it)", 2) end
  if type(fn) ~= "function" then error("finally needs a function, got " .. type(fn), 2) end
  if finally_list == NO_FINALLY then finally_list = {} end
  finally_list[#finally_list + 1] = fn
end

-- randomize([seed]) inside a describe shuffles that block's children.
local function randomize(...)
  need_loading("randomize")
  local on = select("#", ...) == 0 or (...)
  current_block.randomize = on and true or false
end

function M.enter_test(result)
  running_test, finally_list = result, NO_FINALLY
end

function M.leave_test()
  local list = finally_list or NO_FINALLY
  running_test, finally_list = nil, nil
  return list
end

do
  local api = {
    describe = describe_kind(nil), context = describe_kind(nil),
    insulate = describe_kind("insulate"), expose = describe_kind("expose"),
    it = it, test = it, spec = it, pending = pending, finally = finally,
    before_each = hook("before_each", "before_each"), after_each = hook("after_each", "after_each"),
    setup = hook("setup", "setup"), strict_setup = hook("setup", "strict_setup"),
    teardown = hook("teardown", "teardown"), strict_teardown = hook("teardown", "strict_teardown"),
    lazy_setup = hook("lazy_setup", "lazy_setup"), lazy_teardown = hook("lazy_teardown", "lazy_teardown"),
    assert = require("sonde.runner.assert").assert, spy = spy, stub = stub, mock = mock, match = match, fail = fail,
    randomize = randomize,
  }
  M.NAMES = {} -- the globals a spec file gets, sorted (sonde.luacheck_std lists them for luacheck)
  for k, v in pairs(api) do
    root_env[k] = v
    M.NAMES[#M.NAMES + 1] = k
  end
  table.sort(M.NAMES)
end

local auto_insulate = true

-- configure{lazy=, auto_insulate=}: busted's --lazy (setup and teardown
-- are lazy_setup and lazy_teardown) and --no-auto-insulate (a file's
-- changes to _G and package.loaded outlive it).
function M.configure(o)
  root_env.setup = o.lazy and hook("lazy_setup", "lazy_setup") or hook("setup", "setup")
  root_env.teardown = o.lazy and hook("lazy_teardown", "lazy_teardown") or hook("teardown", "teardown")
  auto_insulate = o.auto_insulate
end

-- busted_module() -> what require("busted") gives a spec file or helper:
-- the DSL and luassert's objects, as busted's API table has them. Its
-- event bus (subscribe, publish) and context walk have no counterpart
-- here: each is one clear error where it is called.
function M.busted_module()
  local t = {}
  for k, v in next, root_env do t[k] = v end
  t.version = "sonde"
  t.monotime, t.sleep = task.now, task.sleep
  t.gettime = require("sonde.c.loop").time
  for _, name in ipairs({ "publish", "subscribe", "unsubscribe", "bindfenv", "parent", "children" }) do
    t[name] = function()
      error("busted." .. name
          .. " is busted's own machinery, which sonde does not have (see README: Moving from busted)", 2)
    end
  end
  return t
end

-- helper_env() -> the environment of busted's --helper: the DSL and
-- luassert's assert to read, _G to write.
function M.helper_env()
  return setmetatable({}, { __index = root_env, __newindex = _G })
end

-- spec_line(path, message, traceback) -> the line of spec file `path` an
-- error is about: the message's own position when it is in that file, else
-- the first frame of that file in the traceback (an error raised in a
-- helper module is reported at the spec line that called it).
function M.spec_line(path, message, traceback)
  local here = path:gsub("%p", "%%%0") .. ":(%d+):"
  return tonumber(tostring(message):match("^" .. here) or (traceback or ""):match(here))
end

local function line_of(message)
  return tonumber(tostring(message):match("^[^:\n]+:(%d+):"))
end

-- load_file(path) -> file block | nil, {message, traceback, line}. A loaded
-- file has been entered (M.enter): the caller leaves it (M.leave) once the
-- file has run, which undoes what it changed in _G and package.loaded.
function M.load_file(path)
  local chunk, err = require("sonde.boot.chunk_cache").loadfile(path)
  if not chunk then
    return nil, { message = trace.load_message(path, err), line = line_of(err) }
  end
  -- Interpreted, so a test that loops without yielding still runs the
  -- watchdog's hook (compiled traces do not run hooks).
  jit.off(chunk, true)
  setfenv(chunk, spec_env)
  local file = new_block("file", path, nil, path, 0)
  file.envmode = auto_insulate and "insulate" or nil
  M.enter(file)
  current_block, context = file, file
  local holder = {}
  local ok, lerr = xpcall(chunk, handler_with_traceback(holder))
  if ok then ok, lerr = pcall(M.check_curries, file) end
  current_block, context = nil, nil
  if not ok then
    M.leave(file)
    local msg, tb = task.describe(lerr), trace.trim(holder.tb)
    local line = M.spec_line(path, msg, tb)
    if not line_of(msg) then -- not positioned (a table, a timeout): where the file was when it raised
      msg = path .. (line and (":" .. line) or "") .. ": " .. msg
    end
    return nil, { message = msg, traceback = tb, line = line }
  end
  return file
end

return M
