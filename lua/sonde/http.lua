-- sonde.http: an httpx-like client on libcurl multi, driven by the loop.
--
-- Each request is a transfer started in C; the calling task waits for its
-- completion token, so many tasks' requests are in flight at once on one
-- loop and connections are reused across them. Transport failures raise an
-- error object {kind=connect|timeout|tls|dns|protocol|closed, url, message};
-- an HTTP error status is a response, not an error.
local chttp = require("sonde.c.http")
local task = require("sonde.task")
local json = require("sonde.json")
local redact = require("sonde.lib.redact")

local M = {}

local CLIENT_OPTIONS = { base_url = "string", timeout = "seconds", connect_timeout = "seconds", headers = "table",
  retries = "count", retry_backoff = "table", verify = "boolean", follow_redirects = "boolean",
  http2 = "boolean", max_body = "count", params = "table" }
local REQUEST_OPTIONS = { params = "table", headers = "table", json = "any", body = "string", form = "table",
  timeout = "seconds", connect_timeout = "seconds", follow_redirects = "boolean", verify = "boolean",
  http2 = "boolean", retries = "count", max_body = "count", tags = "table" }

-- ------------------------------------------------------------- counters

local total_requests = 0 -- this process
local test_requests = 0 -- since the runner's last reset
-- the current test's last request and its response or error, for failure
-- output (three locals: no table built per request)
local last_spec, last_response, last_error = nil, nil, nil
local hooks = require("sonde.lib.test_hooks")
local records = nil -- the current test's requests, when hooks.detail asks for them
local MAX_RECORDS = 200 -- per test; its request count goes on

function M.request_count() return total_requests end

-- The runner calls these between tests (see sonde.runner).
function M._test_reset()
  test_requests, last_spec, last_response, last_error = 0, nil, nil, nil
  if records ~= nil then records = nil end
end

-- With hooks.detail (a report that draws requests, sonde.runner.reporters.html),
-- a result also carries its requests: {target (redacted "METHOD url"),
-- origin, status or error (the kind), timings (curl's, seconds from the
-- start: dns, connect, tls, first_byte, total)}.
function M._test_end(result)
  result.requests = test_requests
  if result.status ~= "pass" then result.last_exchange = M.last_exchange() end
  if records ~= nil then
    result.http, records = records, nil
  end
end

local function origin_of(url)
  return url:match("^(%a[%w+.-]*://[^/?#]+)") or url
end

local function record(spec, r, err)
  records = records or {}
  if #records >= MAX_RECORDS then return end
  local timings = r and r.timings
  records[#records + 1] = { target = redact.text(spec.method .. " " .. spec.url),
    origin = redact.text(origin_of(spec.url)), status = r and r.status, error = err and err.kind,
    timings = timings and { dns = timings.dns, connect = timings.connect, tls = timings.tls,
      first_byte = timings.first_byte, total = timings.total } }
end

-- ------------------------------------------------------------- errors

local HttpError = {}
HttpError.__index = HttpError
HttpError.__tostring = function(e) return e.message end
M.HttpError = HttpError

local function http_error(kind, method, url, detail, fields)
  local e = fields or {}
  e.kind, e.method, e.url = kind, method, url
  e.message = string.format("%s error: %s %s: %s", kind, method, url, detail)
  return setmetatable(e, HttpError)
end

function M.is_error(e) return getmetatable(e) == HttpError end

-- ------------------------------------------------------------- options

local check_options = require("sonde.lib.options").check

-- ---------------------------------------------------------------- URLs

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.escape = escape

local function sorted_pairs(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local i = 0
  return function()
    i = i + 1
    if keys[i] ~= nil then return keys[i], t[keys[i]] end
  end
end

-- encode_query{a=1, b={2,3}} -> "a=1&b=2&b=3" (keys sorted, lists repeated)
local function encode_query(params)
  local parts = {}
  for k, v in sorted_pairs(params) do
    if type(v) == "table" then
      for _, item in ipairs(v) do parts[#parts + 1] = escape(k) .. "=" .. escape(item) end
    elseif v ~= nil and v ~= false then
      parts[#parts + 1] = escape(k) .. "=" .. escape(v == true and "true" or v)
    end
  end
  return table.concat(parts, "&")
end

-- absolute(url): whether url starts with a scheme and "://", as
-- "^%a[%w+.-]*://" says; byte by byte, which LuaJIT compiles (it runs for
-- every request) where a pattern match is not.
local SCHEME_BYTE = {} -- 1: a letter, 2: a digit, + . or -
for b = 0, 255 do
  local c = string.char(b)
  SCHEME_BYTE[b] = c:match("%a") and 1 or c:match("[%d+.-]") and 2 or false
end

local function absolute(url)
  local colon = url:find("://", 1, true)
  if not colon or colon == 1 or SCHEME_BYTE[url:byte(1)] ~= 1 then return false end
  for i = 2, colon - 1 do
    if not SCHEME_BYTE[url:byte(i)] then return false end
  end
  return true
end

-- join(base, path) as httpx does: "http://h/api" + "/health" -> "http://h/api/health"
local SLASH = 47

function M.join_url(base, path)
  if path == nil or path == "" then return base end
  if base == nil or absolute(path) then return path end
  -- the common case (no slash doubled or missing) without pattern matching
  local base_slash, path_slash = base:byte(-1) == SLASH, path:byte(1) == SLASH
  if base_slash ~= path_slash and path:byte(2) ~= SLASH and base:byte(-2) ~= SLASH then return base .. path end
  return (base:gsub("/+$", "")) .. "/" .. (path:gsub("^/+", ""))
end

local function with_params(url, params)
  if not params or next(params) == nil then return url end
  local q = encode_query(params)
  if q == "" then return url end
  return url .. (url:find("?", 1, true) and "&" or "?") .. q
end

-- -------------------------------------------------------------- headers

local Headers = {}
Headers.__index = function(h, name)
  if type(name) ~= "string" then return nil end
  local method = rawget(Headers, name)
  if method then return method end
  local values = rawget(h, "_values")[name:lower()]
  return values and table.concat(values, ", ") or nil
end

-- get_all(name) -> every value of a repeated header, in order.
function Headers.get_all(h, name)
  local values = rawget(h, "_values")[name:lower()]
  return values and { unpack(values) } or {}
end

-- each() -> iterator over name, value pairs as received
function Headers.each(h)
  local list, i = rawget(h, "_list"), 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

local function parse_headers(raw)
  local h = setmetatable({ _values = {}, _list = {} }, Headers)
  local status_line
  for line in raw:gmatch("[^\r\n]+") do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      local key = name:lower()
      h._values[key] = h._values[key] or {}
      table.insert(h._values[key], value)
      table.insert(h._list, { name, value })
    elseif not status_line then
      status_line = line
    end
  end
  return h, status_line
end

-- ------------------------------------------------------------- response

local Response = {}

-- headers and status_line are parsed from the raw header block on first use.
Response.__index = function(r, key)
  local method = Response[key]
  if method ~= nil then return method end
  if key == "headers" or key == "status_line" then
    local headers, status_line = parse_headers(rawget(r, "raw_headers"))
    rawset(r, "headers", headers)
    rawset(r, "status_line", status_line or false)
    return rawget(r, key)
  end
end

function Response:json()
  local ok, v = pcall(json.decode, self.body)
  if ok then return v end
  local ctype = self.headers["content-type"] or "no content-type"
  error(string.format("response from %s %s is not JSON (%s, %d bytes): %s", self.method, self.url, ctype,
    #self.body, tostring(v):gsub("^json%.decode: ", "")), 2)
end

function Response:raise_for_status()
  if self.status >= 400 then
    error(http_error("status", self.method, self.url, self.status_line or tostring(self.status),
      { status = self.status, response = self }), 2)
  end
  return self
end

Response.__tostring = function(r)
  return string.format("<response %d %s %s>", r.status, r.method, r.url)
end

-- -------------------------------------------------------------- sending

-- A transfer's wait: the waiting task is woken by the completion token;
-- if the wait ends any other way (cancelled), the transfer is stopped.
local Wait = {}
Wait.__index = Wait
function Wait:forget()
  if not self.done then
    self.xfer:cancel()
    task.drop_token(self.token)
  end
end

-- Waits are reused: a closure made per request would stop the trace
-- compiling the request path (LuaJIT does not compile FNEW). One whose wait
-- raised (cancelled) is left to the collector.
local free_waits, free_count = {}, 0
local MAX_FREE_WAITS = 256

local function new_wait()
  local w = setmetatable({}, Wait)
  w.on_done = function()
    w.done = true
    task.wake(w.task)
  end
  return w
end

local function perform(spec)
  local me = task.need_task("sonde.http request")
  local w = free_waits[free_count]
  if w then
    free_waits[free_count], free_count = nil, free_count - 1
  else
    w = new_wait()
  end
  w.task, w.done, w.xfer = me, false, nil
  w.token = task.new_token(w.on_done)
  spec.token = w.token
  local xfer, err = chttp.request(spec)
  if not xfer then
    task.drop_token(w.token)
    error(http_error("protocol", spec.method, spec.url, err), 0)
  end
  w.xfer = xfer
  task.wait(w, nil, "http request")
  w.task, w.xfer = nil, nil
  if free_count < MAX_FREE_WAITS then
    free_count = free_count + 1
    free_waits[free_count] = w
  end
  return xfer
end

-- The exchange as curl -v shows it: request line and headers, status line,
-- response headers, body (cut, or described when binary); redacted.
local function summarize(method, url, req_headers, r, err)
  local lines = { method .. " " .. url }
  for _, line in ipairs(req_headers) do lines[#lines + 1] = "> " .. line end
  if r then
    lines[#lines + 1] = "< " .. (r.status_line or r.status)
    for name, value in r.headers:each() do lines[#lines + 1] = "< " .. name .. ": " .. value end
    local body = r.body
    if #body > 2000 then body = body:sub(1, 2000) .. string.format("... (%d bytes in all)", #r.body) end
    if body:find("[%z\1-\8\14-\31]") then body = string.format("(%d bytes of binary data)", #r.body) end
    lines[#lines + 1] = body
  else
    lines[#lines + 1] = "< " .. tostring(err)
  end
  return redact.text(table.concat(lines, "\n"))
end

-- The observer of every attempt (sonde.load's metrics), or nil.
local observer = nil

-- _observe(fn): fn(spec, response, nil, started) after each attempt that
-- got a response, fn(spec, nil, err, started) after one that failed
-- (spec.tags holds the request's tags= option). nil removes it.
function M._observe(fn) observer = fn end

-- One attempt: a response, or raises the transport error. finish() says
-- how the transfer ended and releases it, in one call.
local function attempt(spec)
  local started = task.now()
  total_requests, test_requests = total_requests + 1, test_requests + 1
  redact.note_request(spec.url, spec.headers)
  local ok, xfer = pcall(perform, spec)
  if not ok then
    if observer and M.is_error(xfer) then observer(spec, nil, xfer, started) end
    if hooks.detail and M.is_error(xfer) then record(spec, nil, xfer) end
    error(xfer, 0)
  end
  local status, raw_headers, body, effective, version, timings, connects, sent, received = xfer:finish()
  if not status then -- raw_headers, body, effective: kind, message, curl code
    local e = http_error(raw_headers, spec.method, spec.url, body, { curl_code = effective })
    if observer then observer(spec, nil, e, started) end
    if hooks.detail then record(spec, nil, e) end
    error(e, 0)
  end
  local r = setmetatable({ status = status, ok = status >= 200 and status < 300, raw_headers = raw_headers,
    body = body, url = effective ~= "" and effective or spec.url, method = spec.method, http_version = version,
    timings = timings, elapsed = task.now() - started, new_connections = connects, bytes_sent = sent,
    bytes_received = received }, Response)
  if observer then observer(spec, r, nil, started) end
  if hooks.detail then record(spec, r) end
  return r
end

local RETRYABLE = { connect = true, timeout = true, closed = true, dns = true }

local function backoff(b, n)
  local delay = (b.min or 0.5) * (b.factor or 1.5) ^ (n - 1)
  return math.min(delay, b.max or 5)
end

-- last_exchange() -> the current test's last request and what came back,
-- with credentials redacted, or nil. Built only when asked for (failures).
function M.last_exchange()
  if not last_spec then return nil end
  return summarize(last_spec.method, last_spec.url, last_spec.headers, last_response, last_error)
end

-- A request that could not connect, or whose connection closed, to a
-- fixture server (sonde.fixture, when loaded) whose process has exited
-- says so: "connect error" alone hides why.
local function explain_failure(e)
  local fixture = package.loaded["sonde.fixture"]
  if not fixture or (e.kind ~= "connect" and e.kind ~= "closed") then return end
  local note = fixture.exit_note(e.url)
  if note then e.message = e.message .. "\n" .. note end
end

local function send(spec, retries, retry_backoff)
  for n = 1, retries + 1 do
    local ok, r = pcall(attempt, spec)
    if ok then
      last_spec, last_response, last_error = spec, r, nil
      return r
    end
    if not M.is_error(r) or not RETRYABLE[r.kind] or n > retries then
      if M.is_error(r) then
        explain_failure(r)
        last_spec, last_response, last_error = spec, nil, r
      end
      error(r, 0)
    end
    task.sleep(backoff(retry_backoff, n))
  end
end

-- ---------------------------------------------------------------- bodies

local NO_HEADERS = {}
local NO_OPTIONS = {} -- a request's options when it gives none; never written

-- Adds the headers of a, then of b (either may be nil), to merged (lower-
-- case name -> {name, value}): a later one replaces an earlier one of the
-- same name in any case.
local function add_headers(merged, a, b)
  for k, v in pairs(a or NO_HEADERS) do
    if type(k) ~= "string" then error("headers must map names to values, got a " .. type(k) .. " name", 0) end
    merged[k:lower()] = { k, v }
  end
  if b then return add_headers(merged, b) end
end

-- The "Name: value" lines of merged headers, sorted by name; a header
-- set to false is left out.
local function header_lines(merged)
  if merged == NO_HEADERS then return NO_HEADERS end -- the usual request
  local order = {}
  for key in pairs(merged) do order[#order + 1] = key end
  table.sort(order)
  local lines = {}
  for _, key in ipairs(order) do
    local name, v = merged[key][1], merged[key][2]
    if v ~= false then
      if type(v) ~= "string" and type(v) ~= "number" then
        error("header '" .. name .. "' must be a string or number, got " .. type(v), 0)
      end
      lines[#lines + 1] = name .. ": " .. tostring(v)
    end
  end
  return lines
end

local function body_of(opts, headers_set)
  local n = (opts.json ~= nil and 1 or 0) + (opts.body and 1 or 0) + (opts.form and 1 or 0)
  if n > 1 then error("give only one of json=, body= and form=", 0) end
  if opts.json ~= nil then
    local ok, s = pcall(json.encode, opts.json)
    if not ok then error((tostring(s):gsub("^.-json%.encode", "json=")), 0) end
    return s, not headers_set["content-type"] and "application/json" or nil
  end
  if opts.form then return encode_query(opts.form), not headers_set["content-type"] and
      "application/x-www-form-urlencoded" or nil end
  return opts.body, nil
end

-- ---------------------------------------------------------------- clients

local Client = {}
Client.__index = Client
M.Client = Client

local CLIENT_DEFAULTS = { timeout = 10, retries = 0, verify = true, follow_redirects = false, http2 = false }
local DEFAULT_BACKOFF = { min = 0.5, factor = 1.5, max = 5 }

-- client{base_url=, timeout=10, connect_timeout=, headers={}, retries=0,
-- retry_backoff={min=0.5, factor=1.5, max=5}, verify=true,
-- follow_redirects=false, http2=false} -> client
function M.client(opts)
  opts = check_options("http.client", opts, CLIENT_OPTIONS, 2)
  if opts.base_url and not absolute(opts.base_url) then
    error("http.client: base_url must be an absolute URL such as http://127.0.0.1:8080/api, got '" ..
      opts.base_url .. "'", 2)
  end
  local c = setmetatable({ request_count = 0, headers = opts.headers or {} }, Client)
  for k, v in pairs(CLIENT_DEFAULTS) do c[k] = v end
  for k, v in pairs(opts) do
    if k ~= "headers" then c[k] = v end
  end
  c.retry_backoff = opts.retry_backoff or DEFAULT_BACKOFF
  return c
end

local function pick(opts, c, key)
  if opts[key] ~= nil then return opts[key] end
  return c[key]
end

-- Checks a request and builds what send() needs. Errors are raised at
-- `level` above prepare (every public entry calls it directly, so that 3 is
-- always the user's line).
local function prepare(self, method, path, opts, level)
  if type(method) ~= "string" then error("request: method must be a string such as \"GET\"", level) end
  if type(path) ~= "string" then
    error(method:lower() .. ": expected a URL or path string, got " .. type(path), level)
  end
  if opts == nil then
    opts = NO_OPTIONS
  else
    opts = check_options(method:lower(), opts, REQUEST_OPTIONS, level)
  end
  local url = M.join_url(self.base_url, path)
  if not absolute(url) then
    error(string.format("%s %s: a relative URL needs a client with base_url (http.client{base_url=...})",
      method:upper(), path), level)
  end
  url = with_params(with_params(url, self.params), opts.params)
  local merged = NO_HEADERS
  if next(self.headers) ~= nil or (opts.headers and next(opts.headers) ~= nil) then
    merged = {}
    local ok, err = pcall(add_headers, merged, self.headers, opts.headers)
    if not ok then error(err, level) end
  end
  local bok, body, ctype = pcall(body_of, opts, merged)
  if not bok then error(body, level) end
  -- inside a LiveCheck execution every request carries the test's headers
  local livecheck = package.loaded["sonde.livecheck"]
  local context = livecheck and livecheck.context_headers()
  if ctype or context then
    if merged == NO_HEADERS then merged = {} end
    add_headers(merged, ctype and { ["Content-Type"] = ctype }, context)
  end
  local ok, lines = pcall(header_lines, merged)
  if not ok then error(lines, level) end
  self.request_count = self.request_count + 1
  return { method = method:upper(), url = url, headers = lines, body = body,
    timeout = pick(opts, self, "timeout"), connect_timeout = pick(opts, self, "connect_timeout"),
    verify = pick(opts, self, "verify"), follow = pick(opts, self, "follow_redirects"),
    http2 = pick(opts, self, "http2"), max_body = pick(opts, self, "max_body"), tags = opts.tags },
    pick(opts, self, "retries")
end

-- request(method, path, opts) -> response
function Client:request(method, path, opts)
  local spec, retries = prepare(self, method, path, opts, 3)
  return send(spec, retries, self.retry_backoff)
end

local default_client = nil

local function default()
  default_client = default_client or M.client()
  return default_client
end

for _, method in ipairs({ "get", "post", "put", "patch", "delete", "head", "options" }) do
  local upper = method:upper()
  Client[method] = function(self, path, opts)
    local spec, retries = prepare(self, upper, path, opts, 3)
    return send(spec, retries, self.retry_backoff)
  end
  M[method] = function(url, opts)
    local c = default()
    local spec, retries = prepare(c, upper, url, opts, 3)
    return send(spec, retries, c.retry_backoff)
  end
end

function M.request(method, url, opts)
  local c = default()
  local spec, retries = prepare(c, method, url, opts, 3)
  return send(spec, retries, c.retry_backoff)
end

function M.curl_version() return chttp.curl_version() end

-- redact{"x-my-header", ...}: headers, query parameters and JSON members
-- whose names contain one of these are redacted from reports, as
-- Authorization and names with token, secret, password... are
-- (sonde.lib.redact).
function M.redact(names) redact.add_names(names, 2) end

hooks.add(M)

return M
