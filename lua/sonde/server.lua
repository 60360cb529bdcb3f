-- sonde.server: a small HTTP/1.1 server on the loop, for stub services,
-- event sinks and status pages.
--
-- C (sonde.c.server, on nodejs' http-parser) accepts, parses, enforces
-- limits and answers malformed input itself; here a route table picks the
-- handler, and each request's handler runs as a task in the scope that
-- started the server, so an error in a handler fails the test that owns it.
local cserver = require("sonde.c.server")
local task = require("sonde.task")
local json = require("sonde.json")
local options = require("sonde.lib.options")

local M = {}

local OPTIONS = { host = "string", port = "port", max_body = "count", max_header_count = "count",
  max_header_bytes = "count", request_timeout = "seconds", idle_timeout = "seconds", name = "string" }

-- ------------------------------------------------------------- requests

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A query string's key or value: '+' is a space there.
local function unescape(s) return percent_decode((s:gsub("+", " "))) end

-- parse_query("a=1&b=2&b=3") -> {a="1", b={"2","3"}}
local function parse_query(q)
  local out = {}
  if q == "" then return out end -- most requests: no gmatch, which LuaJIT does not compile
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape(k), unescape(v)
    local prev = out[k]
    if prev == nil then
      out[k] = v
    elseif type(prev) == "table" then
      prev[#prev + 1] = v
    else
      out[k] = { prev, v }
    end
  end
  return out
end

-- C hands the headers keyed by their lower-case names; a name in another
-- case is looked up as its lower case.
local Headers = {}
Headers.__index = function(h, name)
  if type(name) ~= "string" then return nil end
  local lower = name:lower()
  if lower ~= name then return rawget(h, lower) end
end

local Request = {}
Request.__index = Request

function Request:json()
  local ok, v = pcall(json.decode, self.body)
  if not ok then error(string.format("request %s %s has no JSON body: %s", self.method, self.path, v), 2) end
  return v
end

-- ---------------------------------------------------------------- routes

local function compile(pattern)
  if type(pattern) ~= "string" or pattern:sub(1, 1) ~= "/" then
    error("route: the path must be a string starting with '/', got " .. tostring(pattern), 3)
  end
  local segments = {}
  for seg in pattern:gmatch("[^/]+") do
    local name = seg:match("^{([%w_]+)}$")
    segments[#segments + 1] = name and { param = name } or { literal = seg }
  end
  return segments
end

local function match_route(route, parts, count)
  local segments = route.segments
  if #segments ~= count then return nil end
  for i = 1, count do
    local literal = segments[i].literal
    if literal and literal ~= parts[i] then return nil end
  end
  local params = {}
  for i = 1, count do
    local name = segments[i].param
    if name then params[name] = percent_decode(parts[i]) end -- in a path '+' is itself
  end
  return params
end

-- "/a//b/" -> {"a", "b"}, 2: the path's non-empty segments (a plain find,
-- which LuaJIT compiles, where gmatch would leave the trace).
local function segments_of(path)
  local parts, count, at, len = {}, 0, 1, #path
  while at <= len do
    local slash = path:find("/", at, true) or len + 1
    if slash > at then
      count = count + 1
      parts[count] = path:sub(at, slash - 1)
    end
    at = slash + 1
  end
  return parts, count
end

-- ------------------------------------------------------------- responses

local function header_block(headers, has)
  local lines = {}
  for k, v in pairs(headers or {}) do
    local lk = tostring(k):lower()
    if lk ~= "content-length" and lk ~= "connection" then
      lines[#lines + 1] = tostring(k) .. ": " .. tostring(v) .. "\r\n"
      has[lk] = true
    end
  end
  return table.concat(lines)
end

-- Turns what a handler returned into status, header lines and body, or
-- raises what is wrong with it, worded to follow "the handler for GET /x".
local function render(res)
  if res == nil then return 204, "", "" end
  if type(res) == "string" then return 200, "Content-Type: text/plain; charset=utf-8\r\n", res end
  if type(res) ~= "table" then
    error("must return a table {status=, headers=, json=|body=}, a string or nil, got " .. type(res), 0)
  end
  local has = {}
  local head = header_block(res.headers, has)
  local body = res.body
  if res.json ~= nil then
    local ok, text = pcall(json.encode, res.json)
    if not ok then
      error("returned json= that cannot be encoded: " .. text:gsub("^json%.encode: cannot encode: ", ""), 0)
    end
    body = text
    if not has["content-type"] then head = head .. "Content-Type: application/json\r\n" end
  end
  if body ~= nil and type(body) ~= "string" then
    error("returned a body that must be a string, got " .. type(body), 0)
  end
  local status = res.status or 200
  if type(status) ~= "number" or status % 1 ~= 0 or status < 100 or status > 999 then
    error("returned a status that must be a whole number from 100 to 999, got " .. tostring(status), 0)
  end
  return status, head, body or ""
end

-- "file:line: the handler for GET /x": where the route's handler is defined.
local function handler_name(route, method)
  local info = debug.getinfo(route.handler, "S")
  return string.format("%s:%d: the handler for %s %s", info.short_src, info.linedefined, method, route.pattern)
end

-- ---------------------------------------------------------------- server

local Server = {}
Server.__index = Server
Server.__tostring = function(s) return "<server " .. (s.url or "not started") .. ">" end

-- A server of opts, checked as `what`'s, `level` frames above this.
local function new_server(opts, what, level)
  opts = options.check(what, opts, OPTIONS, level + 1)
  return setmetatable({ opts = opts, routes = {}, requests = 0 }, Server)
end

function M.new(opts) return new_server(opts, "server.new", 2) end

-- route(method, "/flows/{id}", handler): method is "GET", "POST"... or "*".
function Server:route(method, pattern, handler)
  if type(method) ~= "string" then error("route: method must be a string such as \"GET\"", 2) end
  if type(handler) ~= "function" then error("route: handler must be a function(req), got " .. type(handler), 2) end
  table.insert(self.routes, { method = method:upper(), segments = compile(pattern), pattern = pattern,
      handler = handler })
  return self
end

for _, m in ipairs({ "get", "post", "put", "patch", "delete" }) do
  Server[m] = function(self, pattern, handler) return self:route(m:upper(), pattern, handler) end
end

-- Finds the handler for a request: the route, 405 with Allow, or 404.
function Server:resolve(method, path)
  local parts, count = segments_of(path)
  local routes, allowed = self.routes, nil
  for i = 1, #routes do
    local route = routes[i]
    local params = match_route(route, parts, count)
    if params then
      if route.method == method or route.method == "*" then return route, params end
      allowed = allowed or {}
      allowed[#allowed + 1] = route.method
    end
  end
  if allowed then return nil, 405, table.concat(allowed, ", ") end
  return nil, 404
end

local function error_body(status, message)
  return json.encode({ error = message, status = status })
end

-- A server closed while a handler ran has nobody left to answer.
function Server:answer(id, status, head, body)
  if self.c then self.c:respond(id, status, head, body) end
end

-- RFC 9112 3.2.2: a server must accept a target in absolute-form (what
-- clients send a proxy, "http://host/path?q"): its path names the resource
-- ("/" when empty), and its authority (without userinfo) stands for the
-- Host header. Returns the origin-form target and that authority, if any.
local function origin_form(target)
  if target:byte(1) == 47 then return target end -- "/...": most targets, without a pattern match
  local authority, rest = target:match("^%a[%w+.-]*://([^/?#]*)(.*)$")
  if not authority then return target end
  if rest:sub(1, 1) ~= "/" then rest = "/" .. rest end
  return rest, (authority:gsub("^.*@", ""))
end

-- Runs one request's handler (in a worker's task) and answers it.
function Server:handle(id, method, target, headers, body)
  local origin, authority = origin_form(target)
  local path, query = origin, ""
  if origin:find("?", 1, true) or origin:find("#", 1, true) then path, query = origin:match("^([^?#]*)%??([^#]*)") end
  local route, params_or_status, allow = self:resolve(method, path)
  if not route then
    local status = params_or_status
    local head = "Content-Type: application/json\r\n" .. (allow and ("Allow: " .. allow .. "\r\n") or "")
    local what = status == 405 and ("method " .. method .. " not allowed for " .. path .. " (allowed: " .. allow .. ")")
      or ("no route for " .. method .. " " .. path)
    return self:answer(id, status, head, error_body(status, what))
  end
  setmetatable(headers, Headers)
  if authority then headers.host = authority end
  local req = setmetatable({ method = method, path = path, target = target, params = params_or_status,
    query = parse_query(query), headers = headers, body = body, server = self }, Request)
  local livecheck = package.loaded["sonde.livecheck"]
  if livecheck then livecheck.enter_from_headers(req.headers) end -- faust's middleware
  local ok, res = pcall(route.handler, req)
  if not ok then
    return self:fail(id, res, "handler for " .. method .. " " .. route.pattern .. " failed: " .. task.describe(res))
  end
  local status, head, rbody
  ok, status, head, rbody = pcall(render, res)
  if not ok then
    local err = handler_name(route, method) .. " " .. status
    return self:fail(id, err, err)
  end
  return self:answer(id, status, head, rbody)
end

-- Answers 500 with the first line of `message`, then raises err: the test
-- that owns the server hears of it.
function Server:fail(id, err, message)
  self:answer(id, 500, "Content-Type: application/json\r\n", error_body(500, message:match("[^\n]*")))
  self:dispatch() -- the requests queued behind this one get a worker of their own
  error(err, 0)
end

-- A worker is a task that takes requests from C and runs their handlers
-- one after another, until none is left: a burst of requests costs one
-- task, not one each. self.taker is the worker that takes the next request,
-- if any: while a handler runs it is none, so that when the handler waits
-- the requests that arrive meanwhile get a new worker; the old one goes
-- back to taking once its handler is done, unless another has taken over.
local function work(self)
  local me = task.current()
  while self.c do
    local id, method, target, headers, body = self.c:take()
    if not id then break end
    self.requests = self.requests + 1
    self.taker = nil
    self:handle(id, method, target, headers, body)
    if self.taker then return end
    self.taker = me
  end
  if self.taker == me then self.taker = nil end
end

-- Requests are ready (the token's completion, outside any task).
function Server:dispatch()
  if not self.taker and self.c then self.taker = task.spawn_in(self.scope, work, self) end
end

-- start() -> self, with self.url and self.port set.
function Server:start()
  if self.c then error("server: already started at " .. self.url, 2) end
  self.scope = task.current_scope()
  self.token = task.persistent_token(function() self:dispatch() end)
  local o = self.opts
  local c, err = cserver.listen { host = o.host or "127.0.0.1", port = o.port or 0, token = self.token,
    max_body = o.max_body, max_header_count = o.max_header_count, max_header_bytes = o.max_header_bytes,
    request_timeout = o.request_timeout, idle_timeout = o.idle_timeout }
  if not c then
    task.drop_token(self.token)
    error("server.start: " .. err, 2)
  end
  self.c, self.port = c, c:port()
  local host = o.host or "127.0.0.1"
  self.url = "http://" .. (host:find(":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. self.port
  M._started[self] = true
  return self
end

-- Stops accepting and waits until C says no request is left being handled
-- or answered (shutdown's token), for at most grace seconds of real time:
-- a handler's time is real even under a mocked clock. Returns the error of
-- a cancelled wait.
local function drain(c, grace)
  local drained = task.event()
  local token = task.new_token(function() drained:set() end)
  local e
  if c:shutdown(token) > 0 then
    local _
    _, e = pcall(drained.wait, drained, grace, true)
  end
  task.drop_token(token)
  return task.is_cancelled(e) and e or nil
end

-- close([grace=5]): stops accepting, lets the requests being handled be
-- answered, for up to grace seconds, then closes every connection. Outside
-- a task nothing can wait: it closes at once.
function Server:close(grace)
  local c = self.c
  if not c then return end
  M._started[self] = nil
  local cancelled = task.current() and drain(c, grace or 5)
  c:close()
  task.drop_token(self.token)
  self.c = nil
  if cancelled then error(cancelled, 0) end
end

M._started = setmetatable({}, { __mode = "k" })

-- new + routes + start in one call: server.start{routes...} is not needed;
-- server.serve(opts, function(s) s:get(...) end) reads well in specs. A
-- server without routes answers 404 to everything: a missing define is a
-- mistake (server.new(opts):start() makes one on purpose).
function M.serve(opts, define)
  local s = new_server(opts, "server.serve", 2)
  if type(define) ~= "function" then
    error("server.serve: the second argument must be a function(server) defining the routes, got " .. type(define),
      2)
  end
  define(s)
  return s:start() -- a tail call: start's errors are at serve's caller
end

-- The runner calls this when a test ends: the servers it started close.
function M._test_end(_, scope)
  for s in pairs(M._started) do
    if s.scope == scope then s:close(1) end
  end
end

require("sonde.lib.test_hooks").add(M)

return M
