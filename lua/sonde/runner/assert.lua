-- sonde.runner.assert: the `assert` spec files see. It is luassert's assert
-- with a fast path for the common assertions when they pass.
--
-- luassert builds a state object for every `assert.are.same(a, b)`: it
-- splits the key names into tokens, resolves them against its namespaces,
-- packs the arguments, walks the stack for an error level and formats an
-- internal message, about 6 µs and 3.5 KB of garbage per call, which is
-- most of a trivial test's cost. Here a chain such as `assert.are.same` is
-- resolved once and cached; a call of a known assertion whose arguments
-- pass a plain check (same, equals, truthy, the type checks, ...) returns at
-- once. Anything else, and every failure, goes through luassert itself, so
-- messages, levels, modifiers (`is_not`, `message`, spies) and user
-- assertions behave exactly as in luassert.
local luassert = require("luassert")
local namespaces = require("luassert.namespaces")
local util = require("luassert.util")

local M = {}

-- ------------------------------------------------------------ plain checks

local MAX_DEPTH = 64

-- plain_same(a, b) -> true when luassert's deepcompare surely says equal:
-- tables without metatables, compared key by key. false or nil ("cannot
-- tell": a metatable, a deep or cyclic table) send the call to luassert.
local function plain_same(a, b, depth)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  -- getmetatable is nil exactly when there is no metatable (a __metatable
  -- field cannot hide one behind nil), and unlike debug's it compiles
  if rawequal(a, b) then return getmetatable(a) == nil or nil end
  if getmetatable(a) ~= nil or getmetatable(b) ~= nil or depth > MAX_DEPTH then return nil end
  for k, v in next, a do
    local w = rawget(b, k)
    if w == nil then return false end
    if type(v) == "table" or v ~= w then
      local same = plain_same(v, w, depth + 1)
      if not same then return same end
    end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false end
  end
  return true
end

local function type_check(name)
  return function(n, v) return n >= 1 and type(v) == name end
end

-- Checks by assertion name: (argument count, arguments...) -> passes.
local CHECKS = {
  same = function(n, a, b) return n >= 2 and plain_same(a, b, 1) == true end,
  equals = function(n, a, b) return n >= 2 and rawequal(a, b) end,
  truthy = function(n, v) return n >= 1 and v ~= nil and v ~= false end,
  falsy = function(n, v) return n >= 1 and (v == nil or v == false) end,
  ["true"] = function(n, v) return n >= 1 and v == true end,
  ["false"] = function(n, v) return n >= 1 and v == false end,
}
CHECKS.equal = CHECKS.equals
for _, name in ipairs({ "nil", "boolean", "number", "string", "table", "function", "userdata", "thread" }) do
  CHECKS[name] = type_check(name)
end

-- luassert's callbacks the checks stand for, as registered when a chain is
-- resolved: a user re-registering one of these names turns its check off.
local function current_callback(space, key)
  local entry = namespaces[space][key]
  return entry and entry.callback
end

local IDENTITY = current_callback("modifier", "is")

-- ------------------------------------------------------------------ chains

local Chain = {}
local info = setmetatable({}, { __mode = "k" }) -- chain -> {path, check, keys}

-- resolve(path) -> the check for the chain's assertion, or nil when the
-- chain has a modifier other than is/are/was/has/does, no assertion, or
-- an assertion without a check.
local function resolve(path)
  local tokens = {}
  for _, key in ipairs(path) do
    for token in key:lower():gmatch("[^_]+") do tokens[#tokens + 1] = token end
  end
  local ok, keys = pcall(util.extract_keys, "assertion", tokens)
  if not ok then return nil end
  local assertion
  for _, key in ipairs(keys) do
    if namespaces.assertion[key] then
      assertion = key
    elseif current_callback("modifier", key) ~= IDENTITY then
      return nil
    end
  end
  local check = assertion and CHECKS[assertion]
  if not check then return nil end
  local watched = {}
  for _, key in ipairs(keys) do
    watched[#watched + 1] = { space = namespaces.assertion[key] and "assertion" or "modifier", key = key,
      callback = current_callback(namespaces.assertion[key] and "assertion" or "modifier", key) }
  end
  return check, watched
end

-- Whether the namespaces still hold what the chain was resolved against.
local function unchanged(watched)
  for i = 1, #watched do
    local w = watched[i]
    if current_callback(w.space, w.key) ~= w.callback then return false end
  end
  return true
end

-- The call luassert would have seen: its own state, built by the same keys.
local function through_luassert(path, ...)
  local state = luassert[path[1]]
  for i = 2, #path do state = state[path[i]] end
  return state(...)
end

local function new_chain(parent_path, key)
  local path = {}
  for i = 1, #parent_path do path[i] = parent_path[i] end
  path[#path + 1] = key
  local chain = setmetatable({}, Chain)
  info[chain] = { path = path }
  return chain
end

function Chain.__index(chain, key)
  if type(key) ~= "string" then return nil end
  local child = new_chain(info[chain].path, key)
  rawset(chain, key, child)
  return child
end

-- A passing call returns its arguments, as luassert's does. The common
-- counts are spelled out: LuaJIT compiles no `...` passed on whole.
function Chain.__call(chain, ...)
  local i = info[chain]
  if i.check == nil then
    i.check, i.watched = resolve(i.path)
    if i.check == nil then i.check = false end
  end
  local n = select("#", ...)
  if i.check and n <= 3 then
    local a, b, c = ...
    if unchanged(i.watched) and i.check(n, a, b) then
      if n == 2 then return a, b end
      if n == 3 then return a, b, c end
      return a
    end
  end
  return through_luassert(i.path, ...)
end

Chain.__newindex = function(_, key) error("cannot assign " .. tostring(key) .. " in an assertion chain", 2) end

-- ----------------------------------------------------------------- the front

local front = setmetatable({}, {
  __index = function(self, key)
    local own = rawget(luassert, key)
    if own ~= nil or type(key) ~= "string" then return own end
    local chain = new_chain({}, key)
    rawset(self, key, chain)
    return chain
  end,
  __newindex = function(self, key, value)
    rawset(self, key, nil)
    rawset(luassert, key, value)
  end,
  -- assert(v, message, level, ...): passes v and the rest through.
  __call = function(_, v, ...)
    if v then return v, ... end
    return luassert(v, ...)
  end,
})

M.assert = front
M.plain_same = plain_same

return M
