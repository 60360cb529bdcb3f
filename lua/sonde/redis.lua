-- sonde.redis: a Redis client whose every call yields the task, never the
-- loop (hiredis' async connections on sonde's own loop, sonde.c.redis).
--
--   local r = redis.connect("redis://:secret@127.0.0.1:6379/0")
--   r:set("k", "v"); r:get("k")                 --> "v"
--   r:command("HSET", "h", "f", 1)               --> 1
--   r:pipeline(function(p) p:incr("n"); p:get("n") end)  --> {1, "1"}
--   r:subscribe("news", function(message, channel) ... end)
--
-- Replies are as hiredis types them: a status or a bulk string is a string,
-- an integer a number, an array a table (a nil inside it is redis.null),
-- nil is nil, and an error reply is raised with the server's message. A
-- lost connection is reconnected with backoff when the next command needs
-- it; blocking commands (XREAD BLOCK, BLPOP...) run on connections of their
-- own, so they never hold up the others.
local task = require("sonde.task")
local json = require("sonde.json")
local options = require("sonde.lib.options")
local trace = require("sonde.lib.trace")
local credis = require("sonde.c.redis")

local M = { null = json.null }

local CLOSED, PUSHED = 2, 3 -- what sonde.c.redis completions say (1, connected, is not read)

-- ------------------------------------------------------------ errors

-- Where the user's code called in: the first frame outside sonde.
local function user_place()
  for level = 3, 30 do
    local info = debug.getinfo(level, "Sl")
    if not info then return nil end
    if info.currentline > 0 and info.source:sub(1, 1) == "@" and not trace.is_internal(info.source) then
      return info.short_src .. ":" .. info.currentline
    end
  end
end

local RedisError = {}
RedisError.__index = RedisError
RedisError.__tostring = function(e) return e.message end

-- kind: "redis" (the server's error reply), "connect", "closed", "timeout"
-- or "usage"; the message is one line that starts where the user called.
local function redis_error(kind, what, detail, fields)
  local e = fields or {}
  local place = user_place()
  e.kind, e.command, e.detail = kind, what, detail
  e.message = (place and place .. ": " or "") .. what .. ": " .. detail
  return setmetatable(e, RedisError)
end

function M.is_error(e) return getmetatable(e) == RedisError end

-- An error inside an array reply (a transaction's EXEC): a value, not raised.
local ReplyError = {}
ReplyError.__index = ReplyError
ReplyError.__tostring = function(e) return e.message end
credis.set_error_class(ReplyError)
function M.is_reply_error(v) return getmetatable(v) == ReplyError end

-- ------------------------------------------------------------ URLs

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local URL_SHAPE = "expected redis://[[user]:password@]host[:port][/db][?timeout=S&connect_timeout=S]"
local URL_PARAMS = { timeout = true, connect_timeout = true }

-- The query of a URL: timeout= and connect_timeout=, in seconds.
local function url_params(url, query, o)
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if not k or not URL_PARAMS[k] then
      return nil, "malformed URL '" .. url .. "': unknown parameter '" .. (k or pair) .. "' (expected timeout=, " ..
        "connect_timeout=)"
    end
    local n = tonumber(v)
    if not n or n < 0 then return nil, "malformed URL '" .. url .. "': " .. k .. " must be a number of seconds" end
    o[k] = n
  end
  return o
end

-- parse_url(url) -> {host=, port=, db=, username=, password=, timeout=,
-- connect_timeout=} | nil, why
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "the URL must be a string, got " .. type(url) end
  local query
  url, query = url:match("^([^?]*)%??(.*)$")
  local full = query ~= "" and (url .. "?" .. query) or url
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "malformed URL '" .. url .. "': " .. URL_SHAPE end
  if scheme == "rediss" then return nil, "TLS (rediss://) is not supported: '" .. url .. "'" end
  if scheme ~= "redis" then return nil, "unsupported scheme '" .. scheme .. "://' in '" .. url .. "': " .. URL_SHAPE end
  local authority, path = rest:match("^([^/]*)(.*)$")
  local o = {}
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  if userinfo then
    local user, password = userinfo:match("^([^:]*):(.*)$")
    if not user then
      return nil, "malformed URL '" .. url .. "': the password goes after a colon (redis://:password@host)"
    end
    o.username = user ~= "" and percent_decode(user) or nil
    o.password = percent_decode(password)
  else
    hostport = authority
  end
  local host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = hostport:match("^([^:]*):?(.*)$") end
  if host == "" then return nil, "malformed URL '" .. url .. "': no host; " .. URL_SHAPE end
  o.host = host
  if port ~= "" then
    o.port = tonumber(port:match("^%d+$"))
    if not o.port or o.port < 1 or o.port > 65535 then
      return nil, "malformed URL '" .. url .. "': the port must be a number from 1 to 65535, got '" .. port .. "'"
    end
  end
  if path ~= "" and path ~= "/" then
    local db = path:match("^/(%d+)$")
    if not db then
      return nil, "malformed URL '" .. url .. "': the database must be a number, as /0, got '" .. path .. "'"
    end
    o.db = tonumber(db)
  end
  if query ~= "" then return url_params(full, query, o) end
  return o
end

-- redact(url) -> the URL with its password masked as sonde.lib.redact masks
-- secrets, for messages and logs
function M.redact(url)
  local mark = require("sonde.lib.redact").MARK
  return (tostring(url):gsub("^(%a[%w+.-]*://[^/@]-):[^/@]*@", function(user) return user .. ":" .. mark .. "@" end))
end

-- --------------------------------------------------- one connection

local Conn = {}
Conn.__index = Conn

-- A command's wait: its token wakes the task once every reply of the batch
-- is in; a wait that ends otherwise (cancelled) lets the requests go.
local Batch = {}
Batch.__index = Batch
function Batch:forget()
  for i = 1, #self.reqs do
    local r = self.reqs[i]
    if not r.done then
      task.drop_token(r.token)
      r.req:release()
    end
  end
end

-- exchange(commands, timeouts, holds) -> {{value} | {nil, message, kind}, ...}:
-- sends every command at once (one write: a pipeline) and waits for all.
function Conn:exchange(commands, timeouts, holds)
  if not self.handle then error("redis: exchange on a closed connection", 2) end
  local me = task.need_task("a redis command")
  local batch = setmetatable({ reqs = {}, left = #commands }, Batch)
  for i, args in ipairs(commands) do
    local r = {}
    r.token = task.new_token(function()
      r.done = true
      batch.left = batch.left - 1
      if batch.left == 0 then task.wake(me) end
    end)
    local req, err = self.handle:send(args, r.token, timeouts[i], holds)
    if not req then -- down in C already, though its event is still queued for Lua
      self.down = true
      task.drop_token(r.token)
      r.done, r.failed = true, { nil, err, "closed", unsent = true }
      batch.left = batch.left - 1
    end
    r.req = req
    batch.reqs[i] = r
  end
  if batch.left > 0 then task.wait(batch, nil, "redis command") end
  local results = {}
  for i, r in ipairs(batch.reqs) do
    if r.failed then
      results[i] = r.failed
    else
      results[i] = task.pack(r.req:reply())
      r.req:release()
    end
  end
  return results
end

function Conn:on_event(what)
  if what == PUSHED then
    self.pushed:set()
    return
  end
  if what == CLOSED then self.down = true end
  self.settled:set()
  self.pushed:set() -- a subscriber waiting for messages learns it is down
end

function Conn:close()
  if self.handle then self.handle:close() end
  self.handle, self.down = nil, true
  task.drop_token(self.token)
end

function Conn:why() return self.handle and select(2, self.handle:state()) or "closed" end

-- open_conn(client) -> a connection that is ready (authenticated, on its
-- database) | nil, why. Waits for the connect; the connect timeout is C's.
local function open_conn(client, limit)
  local o = client.opts
  local connect_timeout = o.connect_timeout
  if limit and limit < connect_timeout then connect_timeout = math.max(limit, 0.001) end
  local c = setmetatable({ client = client, settled = task.event(), pushed = task.event() }, Conn)
  c.token = task.persistent_token(function(what) c:on_event(what) end)
  local handle, err = credis.connect { host = o.host, port = o.port, connect_timeout = connect_timeout,
    token = c.token }
  if not handle then
    task.drop_token(c.token)
    return nil, err
  end
  c.handle = handle
  local ok, e = pcall(c.settled.wait, c.settled)
  if not ok then
    c:close()
    error(e, 0)
  end
  if c.down then
    err = c:why()
    c:close()
    return nil, err
  end
  -- PING last: a server still loading its dataset after a restart answers
  -- LOADING, and the connection is tried again later, as one that failed
  local setup, names = {}, {}
  if o.password then
    setup[#setup + 1] = o.username and { "AUTH", o.username, o.password } or { "AUTH", o.password }
    names[#names + 1] = "AUTH"
  end
  if o.db and o.db ~= 0 then
    setup[#setup + 1] = { "SELECT", o.db }
    names[#names + 1] = "SELECT " .. o.db
  end
  setup[#setup + 1], names[#names + 1] = { "PING" }, "PING"
  local timeouts = {}
  for i = 1, #setup do timeouts[i] = o.timeout end
  local results = c:exchange(setup, timeouts, true)
  for i, r in ipairs(results) do
    if r[1] == nil then
      c:close()
      local why = tostring(r[2])
      if why:find("^LOADING") then return nil, why end
      if why:find("^NOAUTH") then return nil, "the server wants a password (redis://:PASSWORD@host): " .. why end
      return nil, names[i] .. " failed: " .. why
    end
  end
  return c
end

-- ------------------------------------------- a connection that comes back

-- A slot holds one connection and brings it back with backoff when it is
-- lost: the main slot runs commands, each blocking command borrows a slot of
-- its own, and the subscriber has one.
local Slot = {}
Slot.__index = Slot

local function new_slot(client) return setmetatable({ client = client, failures = 0 }, Slot) end

local function backoff(o, failures)
  local b = o.backoff
  return math.min(b.min * b.factor ^ (failures - 1), b.max)
end

-- get(what, deadline) -> a ready connection; reconnects (one task at a
-- time, the others wait for it) until `deadline`, then raises.
function Slot:get(what, deadline)
  local client = self.client
  while true do
    if client.closed then error(client:closed_error(what), 0) end
    local c = self.conn
    if c and not c.down then return c end
    if self.connecting then
      local ok, e = pcall(self.connecting.wait, self.connecting, math.max(0, deadline - task.now()))
      if not ok and not task.is_timeout(e) then error(e, 0) end
      if not ok then error(client:connect_error(what, self.last_error), 0) end
    else
      self:attempt(what, deadline)
    end
  end
end

-- One attempt at connecting; after a failure it sleeps its backoff (the
-- other tasks wait for it meanwhile), or raises when that would pass the
-- deadline.
function Slot:attempt(what, deadline)
  self:close()
  local ev = task.event()
  self.connecting = ev
  local ok, conn, err = pcall(open_conn, self.client, deadline - task.now())
  if ok and conn then
    self.conn, self.failures, self.connecting = conn, 0, nil
    ev:set()
    if self.client.closed then self:close() end
    return
  end
  if ok then
    self.last_error = err
    self.failures = self.failures + 1
    local delay = backoff(self.client.opts, self.failures)
    if task.now() + delay >= deadline then
      ok, err = false, self.client:connect_error(what, self.last_error)
    else
      ok, err = pcall(task.sleep, delay)
    end
  else
    err = conn -- cancelled while connecting
  end
  self.connecting = nil
  ev:set()
  if not ok then error(err, 0) end
end

function Slot:close()
  if self.conn then self.conn:close() end
  self.conn = nil
end

-- ------------------------------------------------------------ the client

local Client = {}
M.Client = Client

-- The clients not closed yet, each with the scope that made it: under the
-- spec runner a test's clients are closed when it ends (its setup's when
-- its block does), as its servers are.
local open_clients = setmetatable({}, { __mode = "k" })

local CONNECT_OPTIONS = { url = "string", host = "string", port = "port", db = "count", password = "string",
  username = "string", connect_timeout = "seconds", timeout = "seconds", backoff = "table" }

local function check_connect(arg)
  local o
  if type(arg) == "string" then
    local parsed, why = M.parse_url(arg)
    if not parsed then error("redis.connect: " .. why, 3) end
    o = parsed
  elseif type(arg) == "table" then
    options.check("redis.connect", arg, CONNECT_OPTIONS, 3)
    o = {}
    if arg.url then
      local parsed, why = M.parse_url(arg.url)
      if not parsed then error("redis.connect: " .. why, 3) end
      o = parsed
    end
    for k, v in pairs(arg) do
      if k ~= "url" then o[k] = v end
    end
  elseif arg == nil then
    o = {}
  else
    error("redis.connect: expected a redis:// URL or a table of options, got " .. type(arg), 3)
  end
  o.host, o.port, o.db = o.host or "127.0.0.1", o.port or 6379, o.db or 0
  o.connect_timeout, o.timeout = o.connect_timeout or 5, o.timeout or 10
  local b = o.backoff or {}
  for k, v in pairs(b) do
    if k ~= "min" and k ~= "factor" and k ~= "max" then
      error("redis.connect: unknown backoff option '" .. k .. "'", 3)
    end
    if type(v) ~= "number" or v < 0 then error("redis.connect: backoff." .. k .. " must be a number >= 0", 3) end
  end
  o.backoff = { min = b.min or 0.05, factor = b.factor or 2, max = b.max or 2 }
  return o
end

-- connect(url | {url=, host=, port=, db=, password=, username=,
-- connect_timeout=5, timeout=10, backoff={min=0.05, factor=2, max=2}}) -> r.
-- Connects once before returning: an unreachable server or a refused
-- password is raised here.
function M.connect(arg)
  local o = check_connect(arg)
  local client = setmetatable({ opts = o, pool = {}, scripts = {}, subscriber = false, closed = false,
    closed_at = false, scope = false,
    address = (o.host:find(":", 1, true) and "[" .. o.host .. "]" or o.host) .. ":" .. o.port }, Client)
  client.main = new_slot(client)
  local conn, err = open_conn(client)
  if not conn then error(client:connect_error("redis.connect", err, true), 2) end
  client.main.conn = conn
  client.scope = task.current_scope()
  open_clients[client] = true
  return client
end

function Client:connect_error(what, why, first)
  return redis_error("connect", what, string.format("cannot connect to %s%s: %s", self.address,
    first and "" or " (reconnecting with backoff)", tostring(why or "unknown error")), { address = self.address })
end

function Client:closed_error(what)
  return redis_error("closed", what, "the client was closed" .. (self.closed_at and " at " .. self.closed_at or ""))
end

-- command_name(args) -> the command's name, upper case; raises at the
-- user's line for a command that cannot be sent.
local function command_name(args)
  local name = args[1]
  if type(name) ~= "string" or name == "" then
    error(redis_error("usage", "redis command", "expected the command's name first, got " .. type(name)), 0)
  end
  for i = 2, #args do
    local t = type(args[i])
    if t ~= "string" and t ~= "number" then
      error(redis_error("usage", "redis " .. name:upper(),
        string.format("argument %d must be a string or a number, got %s", i - 1, t)), 0)
    end
  end
  return name:upper()
end

-- How long a blocking command may block, in seconds (0: forever), or nil
-- for a command that does not block.
local BLOCKING_LAST_ARG = { BLPOP = true, BRPOP = true, BRPOPLPUSH = true, BLMOVE = true, BZPOPMIN = true,
  BZPOPMAX = true }
local function blocks_for(name, args)
  if BLOCKING_LAST_ARG[name] then return tonumber(args[#args]) or 0 end
  if name == "BLMPOP" or name == "BZMPOP" then return tonumber(args[2]) or 0 end
  if name == "XREAD" or name == "XREADGROUP" then
    for i = 2, #args - 1 do
      if type(args[i]) == "string" and args[i]:upper() == "BLOCK" then return (tonumber(args[i + 1]) or 0) / 1000 end
    end
  end
  return nil
end

-- The timeout C gives a command: the client's, plus how long it may block.
local function timeout_of(client, block)
  if block == nil then return client.opts.timeout end
  if block == 0 then return 0 end
  return block + client.opts.timeout
end

local function describe(args)
  local name = tostring(args[1]):upper()
  return "redis " .. name
end

-- Raises a failed result as one line.
local function raise(client, what, r)
  local message, kind = r[2], r[3]
  if kind == "closed" then
    message = "connection to " .. client.address .. " lost before the reply (" .. tostring(message) .. ")"
  end
  error(redis_error(kind, what, message), 0)
end

-- run(args, holds) -> the reply: on the main connection, or on a borrowed
-- one for a blocking command.
function Client:run(args, holds)
  local name = command_name(args)
  local what = describe(args)
  local block = blocks_for(name, args)
  local deadline = task.now() + self.opts.timeout
  local slot = self.main
  if block then slot = table.remove(self.pool) or new_slot(self) end
  local ok, results
  for _ = 1, 2 do
    local conn = slot:get(what, deadline)
    ok, results = pcall(conn.exchange, conn, { args }, { timeout_of(self, block) }, holds ~= false)
    if not (ok and results[1].unsent) then break end -- one that was never sent is sent again, reconnected
  end
  if block then
    if ok and not self.closed then self.pool[#self.pool + 1] = slot else slot:close() end
  end
  if not ok then error(results, 0) end
  local r = results[1]
  if r[1] == nil and r[2] ~= nil then raise(self, what, r) end
  return r[1]
end

-- command(name, ...) -> the reply, as hiredis typed it.
function Client:command(...)
  return self:run({ ... })
end

-- pipeline(fn) -> {reply, ...}: fn(p) queues commands (p has the client's
-- methods); they go out in one write and the replies come back in order.
-- The first error reply is raised once every reply is in.
function Client:pipeline(fn)
  if type(fn) ~= "function" then error("r:pipeline: expected a function(p) that queues commands", 2) end
  local p = setmetatable({ commands = {}, converts = {} }, M.Pipeline)
  fn(p)
  if #p.commands == 0 then return {} end
  local deadline = task.now() + self.opts.timeout
  local timeouts = {}
  for i = 1, #p.commands do timeouts[i] = self.opts.timeout end
  local conn = self.main:get("redis pipeline", deadline)
  local results = conn:exchange(p.commands, timeouts, true)
  local out, first = {}, nil
  for i, r in ipairs(results) do
    if r[1] == nil and r[2] ~= nil then
      first = first or i
      out[i] = setmetatable({ message = r[2] }, ReplyError)
    else
      local convert = p.converts[i]
      out[i] = convert and r[1] ~= nil and convert(r[1]) or r[1]
    end
  end
  if first then
    local r = results[first]
    raise(self, string.format("redis pipeline: command %d (%s)", first, describe(p.commands[first]):sub(7)), r)
  end
  return out
end

-- eval(source, keys, args) -> the script's reply: EVALSHA, loading the
-- script first the first time (and again after a server restart).
function Client:eval(source, keys, args)
  keys, args = keys or {}, args or {}
  local sha = self.scripts[source]
  for _ = 1, 2 do
    if not sha then
      sha = self:run({ "SCRIPT", "LOAD", source })
      self.scripts[source] = sha
    end
    local call = { "EVALSHA", sha, #keys }
    for _, k in ipairs(keys) do call[#call + 1] = k end
    for _, a in ipairs(args) do call[#call + 1] = a end
    local ok, v = pcall(self.run, self, call)
    if ok then return v end
    if not (M.is_error(v) and v.kind == "redis" and v.message:find("NOSCRIPT", 1, true)) then error(v, 0) end
    sha = nil
  end
end

-- close(): closes every connection; a command after it raises one line.
function Client:close()
  if self.closed then return end
  open_clients[self] = nil
  self.closed = true
  self.closed_at = user_place() or false
  self.main:close()
  for _, slot in ipairs(self.pool) do slot:close() end
  self.pool = {}
  local sub = self.subscriber
  if sub then
    if sub.task then sub.task:cancel("redis client closed") end
    sub.slot:close()
  end
end

-- ------------------------------------------------------------ pub/sub

-- The subscriber: one connection of its own, and a task that hands each
-- message to the functions subscribed to its channel, in order. When the
-- connection is lost it reconnects and subscribes again (what was published
-- meanwhile is gone: pub/sub keeps nothing).
local function subscriber_of(client)
  local sub = client.subscriber
  if not sub then
    sub = { slot = new_slot(client), channels = {}, patterns = {}, confirmed = {} }
    client.subscriber = sub
  end
  return sub
end

local function deliver(sub, push)
  local kind = push[1]
  if kind == "message" then
    for _, fn in ipairs(sub.channels[push[2]] or {}) do fn(push[3], push[2]) end
  elseif kind == "pmessage" then
    for _, fn in ipairs(sub.patterns[push[2]] or {}) do fn(push[4], push[3], push[2]) end
  elseif kind == "subscribe" or kind == "psubscribe" then
    local ev = sub.confirmed[kind .. "\0" .. push[2]]
    if ev then ev:set() end
  end
end

-- Subscribes the connection to every channel and pattern that has functions.
local function resubscribe(conn, sub)
  local function send(cmd, names)
    local args = { cmd }
    for name, fns in pairs(names) do
      if #fns > 0 then args[#args + 1] = name end
    end
    if #args > 1 then conn.handle:subscribe(args) end -- when it is down, its event follows: subscribed again then
  end
  send("SUBSCRIBE", sub.channels)
  send("PSUBSCRIBE", sub.patterns)
end

local function listen(client, sub)
  while true do
    local conn = sub.slot:get("redis subscribe", math.huge)
    if conn ~= sub.conn then
      sub.conn = conn
      resubscribe(conn, sub)
    end
    conn.pushed:clear()
    local push = conn.handle and conn.handle:take()
    while push do
      deliver(sub, push)
      push = conn.handle and conn.handle:take()
    end
    if not conn.down then conn.pushed:wait() end
    if client.closed then return end
  end
end

-- What subscribe returns: sub:unsubscribe() ends it.
local Subscription = {}
Subscription.__index = Subscription

local function subscribe(client, kind, name, fn, level)
  if type(name) ~= "string" then
    error("r:" .. kind:lower() .. ": expected a channel name, got " .. type(name), level)
  end
  if type(fn) ~= "function" then error("r:" .. kind:lower() .. ": expected a function(message, channel)", level) end
  if client.closed then error(client:closed_error("redis " .. kind), 0) end
  local sub = subscriber_of(client)
  local names = kind == "SUBSCRIBE" and sub.channels or sub.patterns
  names[name] = names[name] or {}
  table.insert(names[name], fn)
  local conn = sub.slot:get("redis " .. kind, task.now() + client.opts.timeout)
  if not sub.task or sub.task:done() then
    sub.conn = conn
    sub.task = task.spawn(listen, client, sub)
  end
  if #names[name] == 1 and sub.conn == conn then
    local key = kind:lower() .. "\0" .. name
    local ev = task.event()
    sub.confirmed[key] = ev
    local sent, why = conn.handle:subscribe({ kind, name })
    if not sent then error(redis_error("closed", "redis " .. kind, "connection to " .. client.address .. " lost (" ..
      tostring(why) .. "); it is subscribed again once reconnected"), 0) end
    local ok, e = pcall(ev.wait, ev, client.opts.timeout)
    sub.confirmed[key] = nil
    if not ok then error(task.is_timeout(e) and redis_error("timeout", "redis " .. kind, "not confirmed") or e, 0) end
  end
  return setmetatable({ client = client, kind = kind, name = name, fn = fn }, Subscription)
end

-- subscribe(channel, fn) -> subscription: fn(message, channel) runs for
-- each message published to channel from the moment this returns.
function Client:subscribe(channel, fn) return subscribe(self, "SUBSCRIBE", channel, fn, 3) end
-- psubscribe(pattern, fn): fn(message, channel, pattern).
function Client:psubscribe(pattern, fn) return subscribe(self, "PSUBSCRIBE", pattern, fn, 3) end

-- unsubscribe(): fn gets no more messages.
function Subscription:unsubscribe()
  local sub = self.client.subscriber
  local names = self.kind == "SUBSCRIBE" and sub.channels or sub.patterns
  local fns = names[self.name] or {}
  for i = #fns, 1, -1 do
    if fns[i] == self.fn then table.remove(fns, i) end
  end
  if #fns == 0 then
    names[self.name] = nil
    local conn = sub.conn
    if conn and not conn.down then conn.handle:subscribe({ self.kind == "SUBSCRIBE" and "UNSUBSCRIBE" or "PUNSUBSCRIBE",
      self.name }) end
  end
end

-- ------------------------------------------------------------ sugar

-- Each common command is a method of the client and of a pipeline; some
-- turn the reply into something handier.
local function pairs_to_map(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function entries_of(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = { id = e[1], fields = pairs_to_map(e[2] or {}) } end
  return out
end

-- xread's reply {{stream, entries}, ...} as {[stream] = entries}
local function streams_of(reply)
  local out = {}
  for _, s in ipairs(reply) do out[s[1]] = entries_of(s[2]) end
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function flatten_fields(args, fields)
  for _, k in ipairs(sorted_keys(fields)) do
    args[#args + 1] = k
    args[#args + 1] = fields[k]
  end
end

-- The arguments of each command with a shape of its own.
local BUILD = {}

-- xadd(key, id, {field=value} | field, value, ..., [{maxlen=, approximate=true}])
function BUILD.xadd(key, id, ...)
  local args, rest = { "XADD", key }, { ... }
  local last = rest[#rest]
  if type(last) == "table" and #rest >= 2 then
    rest[#rest] = nil
    if last.maxlen then
      args[#args + 1] = "MAXLEN"
      if last.approximate ~= false then args[#args + 1] = "~" end
      args[#args + 1] = last.maxlen
    end
  end
  args[#args + 1] = id or "*"
  if type(rest[1]) == "table" then flatten_fields(args, rest[1]) else
    for _, v in ipairs(rest) do args[#args + 1] = v end
  end
  return args
end

-- xread({[stream] = last_id, ...} | {stream, id, stream, id...}, {count=, block=seconds})
function BUILD.xread(streams, opts)
  if type(streams) ~= "table" then error("r:xread: expected {stream = last_id, ...}", 3) end
  local args = { "XREAD" }
  opts = opts or {}
  if opts.count then args[#args + 1], args[#args + 2] = "COUNT", opts.count end
  if opts.block then args[#args + 1], args[#args + 2] = "BLOCK", math.floor(opts.block * 1000 + 0.5) end
  args[#args + 1] = "STREAMS"
  local names, ids = {}, {}
  if #streams > 0 then
    for i = 1, #streams, 2 do names[#names + 1], ids[#ids + 1] = streams[i], streams[i + 1] end
  else
    for _, k in ipairs(sorted_keys(streams)) do names[#names + 1], ids[#ids + 1] = k, streams[k] end
  end
  for _, n in ipairs(names) do args[#args + 1] = n end
  for _, id in ipairs(ids) do args[#args + 1] = id end
  return args
end

function BUILD.hset(key, ...)
  local args = { "HSET", key }
  if type((...)) == "table" then flatten_fields(args, (...)) else
    for _, v in ipairs({ ... }) do args[#args + 1] = v end
  end
  return args
end

function BUILD.xrange(key, start, stop, count)
  local args = { "XRANGE", key, start or "-", stop or "+" }
  if count then args[#args + 1], args[#args + 2] = "COUNT", count end
  return args
end

function BUILD.xrevrange(key, stop, start, count)
  local args = { "XREVRANGE", key, stop or "+", start or "-" }
  if count then args[#args + 1], args[#args + 2] = "COUNT", count end
  return args
end

local CONVERT = { hgetall = pairs_to_map, xread = streams_of, xrange = entries_of, xrevrange = entries_of,
  config_get = pairs_to_map }

local PLAIN = { "get", "set", "del", "exists", "expire", "pexpire", "ttl", "pttl", "incr", "incrby", "decr",
  "decrby", "incrbyfloat", "append", "strlen", "getset", "setnx", "setex", "mget", "mset", "keys", "type",
  "rename", "hget", "hmget", "hgetall", "hdel", "hexists", "hincrby", "hincrbyfloat", "hkeys", "hvals", "hlen",
  "lpush", "rpush", "lpop", "rpop", "lrange", "llen", "lindex", "lrem", "ltrim", "sadd", "srem", "smembers",
  "sismember", "scard", "zadd", "zrem", "zrange", "zrangebyscore", "zscore", "zcard", "zincrby", "publish",
  "xlen", "xtrim", "xdel", "xack", "xgroup", "xreadgroup", "xinfo", "blpop", "brpop", "ping", "echo", "flushdb",
  "flushall", "dbsize", "info", "time", "select", "scan", "unlink", "persist" }

local function build_args(name, ...)
  local build = BUILD[name]
  if build then return build(...) end
  local args = { name:upper(), ... }
  return args
end

local function sugar(name)
  local convert = CONVERT[name]
  Client[name] = function(self, ...)
    local v = self:run(build_args(name, ...))
    if convert and v ~= nil then return convert(v) end
    return v
  end
end
for _, name in ipairs(PLAIN) do sugar(name) end
for name in pairs(BUILD) do sugar(name) end

M.Pipeline = {}
M.Pipeline.__index = M.Pipeline
function M.Pipeline:command(...)
  self.commands[#self.commands + 1] = { ... }
  command_name(self.commands[#self.commands])
  return self
end
for name in pairs(Client) do
  if type(Client[name]) == "function" and (BUILD[name] or CONVERT[name] or name:match("^%l+$")) and
      not ({ run = 1, pipeline = 1, eval = 1, close = 1, subscribe = 1, psubscribe = 1, command = 1 })[name] then
    M.Pipeline[name] = function(self, ...)
      local n = #self.commands + 1
      self.commands[n] = build_args(name, ...)
      self.converts[n] = CONVERT[name]
      return self
    end
  end
end

local client_methods = {}
for k, v in pairs(Client) do client_methods[k] = v end
Client.__index = function(_, key)
  local m = client_methods[key]
  if m then return m end
  if type(key) == "string" and key:match("^%l+$") then
    error(string.format("r:%s: no such method; send any command as r:command(%q, ...)", key, key:upper()), 2)
  end
end
Client.__tostring = function(c) return "<redis client " .. c.address .. "/" .. c.opts.db .. ">" end

local function close_left(owned, owner, when)
  for c in pairs(open_clients) do
    if owned(c, owner) then
      c:close()
      c.closed_at = when
    end
  end
end

function M._test_end(_, scope)
  close_left(function(c) return c.scope == scope end, scope, "the end of the test that connected it")
end

function M._block_end(block)
  close_left(function(c) return c.scope.block == block end, block, "the end of the block whose setup connected it")
end

require("sonde.lib.test_hooks").add(M)

return M
