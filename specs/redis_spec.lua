-- sonde.redis against a real redis-server started on an unused loopback
-- port: replies as hiredis types them, errors as one line at the caller's,
-- pipelines, blocking reads on their own connections, pub/sub, passwords
-- and databases, and reconnection after the server went away.
local redis = require("sonde.redis")
local task = require("sonde.task")
local json = require("sonde.json")
local redis_server = require("specs.redis_server")

local missing = redis_server.missing()

-- raised(fn) -> the message of the error fn raises
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err), err
end

describe("redis URLs", function()
  it("parse host, port, database, user and password", function()
    assert.are.same({ host = "127.0.0.1", port = 6380, db = 2 }, redis.parse_url("redis://127.0.0.1:6380/2"))
    assert.are.same({ host = "cache" }, redis.parse_url("redis://cache"))
    assert.are.same({ host = "h", password = "p@ss", port = 1 }, redis.parse_url("redis://:p%40ss@h:1/"))
    assert.are.same({ host = "h", username = "u", password = "pw" }, redis.parse_url("redis://u:pw@h"))
    assert.are.same({ host = "::1", port = 7 }, redis.parse_url("redis://[::1]:7"))
    assert.are.same({ host = "h", db = 3, timeout = 60, connect_timeout = 0.5 },
      redis.parse_url("redis://h/3?timeout=60&connect_timeout=0.5"))
  end)

  it("a malformed URL is one line at the caller's, saying what was expected", function()
    local cases = {
      { "redis//x", "malformed URL 'redis//x': expected redis://%[%[user%]:password@%]host%[:port%]%[/db%]" },
      { "http://h", "unsupported scheme 'http://'" },
      { "rediss://h", "TLS %(rediss://%) is not supported" },
      { "redis://h:99999", "the port must be a number from 1 to 65535, got '99999'" },
      { "redis://h:x", "the port must be a number from 1 to 65535, got 'x'" },
      { "redis://h/zero", "the database must be a number, as /0, got '/zero'" },
      { "redis://", "no host" },
      { "redis://secret@h", "the password goes after a colon" },
      { "redis://h/0?timout=3", "unknown parameter 'timout' %(expected timeout=, connect_timeout=%)" },
      { "redis://h/0?timeout=soon", "timeout must be a number of seconds" },
    }
    for _, c in ipairs(cases) do
      local msg = raised(function() redis.connect(c[1]) end)
      assert.matches("^specs/redis_spec%.lua:%d+: redis%.connect: .*" .. c[2], msg)
      assert.is_nil(msg:find("\n"), msg)
    end
    assert.matches("redis_spec%.lua:%d+: redis%.connect: unknown option 'hots'",
      raised(function() redis.connect { hots = "x" } end))
    assert.matches("redis_spec%.lua:%d+: redis%.connect: expected a redis:// URL or a table of options, got number",
      raised(function() redis.connect(6379) end))
  end)
end)

describe("sonde.redis", function()
  local srv
  setup(function()
    if not missing then srv = redis_server.start() end
  end)
  teardown(function()
    if srv then srv:stop() end
  end)

  -- client([opts]) -> a client of the spec's server on a fresh database 0,
  -- closed when the test ends; skips the test without redis-server.
  local function client(opts)
    if missing then pending(missing) end
    opts = opts or {}
    opts.url = opts.url or srv.url
    local r = redis.connect(opts)
    finally(function() r:close() end)
    return r
  end

  it("maps replies as hiredis types them", function()
    local r = client()
    r:flushdb()
    assert.are.equal("OK", r:set("k", "v")) -- status
    assert.are.equal("v", r:get("k")) -- bulk string
    assert.is_nil(r:get("missing")) -- nil
    assert.are.equal(1, r:incr("n")) -- integer
    assert.are.equal("PONG", r:ping())
    assert.are.same({ "v", redis.null, "1" }, r:mget("k", "missing", "n")) -- array, nil inside it
    assert.are.equal(redis.null, json.null)
    assert.are.same({}, r:lrange("nothing", 0, -1)) -- empty array
    assert.are.equal("a\0b", (function()
      r:set("bin", "a\0b")
      return r:get("bin")
    end)()) -- binary safe
    assert.are.same({ f = "1", g = "x" }, (function()
      r:hset("h", { f = 1, g = "x" })
      return r:hgetall("h")
    end)())
    assert.are.equal(2, r:command("HLEN", "h"))
  end)

  it("an error reply is raised with the server's message, one line at the caller's", function()
    local r = client()
    r:set("str", "x")
    local msg, err = raised(function() r:incr("str") end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis INCR: ERR value is not an integer or out of range$", msg)
    assert.are.equal("redis", err.kind)
    assert.is_true(redis.is_error(err))
    assert.matches("redis_spec%.lua:%d+: redis NOSUCHCMD: ERR unknown command 'NOSUCHCMD'",
      raised(function() r:command("NOSUCHCMD", "a") end))
    assert.matches("redis_spec%.lua:%d+: redis SET: argument 2 must be a string or a number, got table",
      raised(function() r:set("k", {}) end))
    assert.matches("redis_spec%.lua:%d+: r:fetch: no such method; send any command as r:command%(\"FETCH\", %.%.%.%)",
      raised(function() r:fetch("k") end))
    assert.are.equal("x", r:get("str"), "the connection goes on after an error reply")
  end)

  it("a pipeline sends its commands in one go and returns the replies in order", function()
    local r = client()
    r:del("p", "h2")
    local out = r:pipeline(function(p)
      for _ = 1, 100 do p:incr("p") end
      p:get("p")
      p:hset("h2", "a", "1")
      p:hgetall("h2")
    end)
    assert.are.equal(103, #out)
    assert.are.equal(1, out[1])
    assert.are.equal(100, out[100])
    assert.are.equal("100", out[101])
    assert.are.same({ a = "1" }, out[103])
    -- the first error is raised once every reply is in; the rest still ran
    local msg = raised(function()
      r:pipeline(function(p)
        p:set("x", "a")
        p:incr("x")
        p:set("after", "ran")
      end)
    end)
    assert.matches("redis_spec%.lua:%d+: redis pipeline: command 2 %(INCR%): ERR value is not an integer", msg)
    assert.are.equal("ran", r:get("after"))
    -- a transaction's errors are values inside EXEC's reply
    local tx = r:pipeline(function(p)
      p:command("MULTI")
      p:incr("p")
      p:incr("x")
      p:command("EXEC")
    end)
    local exec = tx[4]
    assert.are.equal(101, exec[1])
    assert.is_true(redis.is_reply_error(exec[2]))
    assert.matches("^ERR value is not an integer", exec[2].message)
  end)

  it("streams: xadd, xrange and xread with the fields as a table", function()
    local r = client()
    r:del("st")
    local id1 = r:xadd("st", "*", { case = "order", signal = "placed" })
    local id2 = r:xadd("st", "*", "case", "order", "signal", "executed")
    assert.matches("^%d+%-%d+$", id1)
    local all = r:xrange("st")
    assert.are.same({ { id = id1, fields = { case = "order", signal = "placed" } },
      { id = id2, fields = { case = "order", signal = "executed" } } }, all)
    local got = r:xread({ st = id1 }, { count = 10 })
    assert.are.same({ st = { { id = id2, fields = { case = "order", signal = "executed" } } } }, got)
    assert.is_nil(r:xread({ st = id2 }), "nothing after the last id")
    for i = 1, 50 do r:xadd("st", "*", { n = i }, { maxlen = 10, approximate = false }) end
    assert.are.equal(10, r:xlen("st"))
  end)

  it("a blocking read has a connection of its own: other commands go on meanwhile", function()
    local r = client()
    r:del("blk")
    local reader = task.spawn(function() return r:xread({ blk = "$" }, { block = 0 }) end)
    task.sleep(0) -- the reader is blocked on the server now, or about to be
    for i = 1, 20 do assert.are.equal("OK", r:set("side" .. i, i)) end
    local id = r:xadd("blk", "*", { a = "b" })
    local got = reader:join(10)
    assert.are.equal(id, got.blk[1].id)
    assert.are.equal(r:lpush("q", "x"), 1)
    assert.are.same({ "q", "x" }, r:blpop("q", 0))
  end)

  it("a cancelled wait leaves the client usable", function()
    local r = client()
    local reader = task.spawn(function() return r:blpop("never", 0) end)
    task.sleep(0)
    reader:cancel()
    assert.is_true(task.is_cancelled(select(2, pcall(reader.join, reader, 5))))
    r:set("c", "1")
    assert.are.equal("1", r:get("c"))
  end)

  it("subscribe hands each message to the function until unsubscribed", function()
    local r = client()
    local got, arrived = {}, task.event()
    local function record(line)
      got[#got + 1] = line
      if #got == 2 then arrived:set() end
    end
    local sub = r:subscribe("news", function(message, channel) record(channel .. ":" .. message) end)
    local psub = r:psubscribe("new*", function(message, channel, pattern)
      record(pattern .. "/" .. channel .. ":" .. message)
    end)
    assert.are.equal(2, r:publish("news", "one")) -- the channel's subscriber and the pattern's
    arrived:wait(10)
    table.sort(got)
    assert.are.same({ "new*/news:one", "news:one" }, got)
    sub:unsubscribe()
    psub:unsubscribe()
    -- once the server confirms, nobody listens
    local other = client()
    local confirmed = task.event()
    other:subscribe("ping", function() confirmed:set() end)
    r:publish("ping", "x")
    confirmed:wait(10)
    assert.are.equal(0, r:publish("news", "two"))
  end)

  it("eval runs a script by its SHA, loading it the first time", function()
    local r = client()
    r:set("e", "5")
    local script = "return tonumber(redis.call('GET', KEYS[1])) + tonumber(ARGV[1])"
    assert.are.equal(7, r:eval(script, { "e" }, { 2 }))
    r:command("SCRIPT", "FLUSH") -- as after a restart: NOSCRIPT, loaded again
    assert.are.equal(8, r:eval(script, { "e" }, { 3 }))
  end)

  it("databases are apart; a password is checked at connect", function()
    local r0, r1 = client(), client { db = 1 }
    r0:set("where", "zero")
    r1:set("where", "one")
    assert.are.equal("zero", r0:get("where"))
    assert.are.equal("one", r1:get("where"))
    local guarded = redis_server.start { password = "s3cret" }
    finally(function() guarded:stop() end)
    local ok = client { url = guarded.url }
    assert.are.equal("PONG", ok:ping())
    local msg = raised(function() redis.connect("redis://:wrong@127.0.0.1:" .. guarded.port .. "/0") end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis%.connect: cannot connect to 127%.0%.0%.1:%d+: AUTH failed: " ..
      "WRONGPASS invalid username%-password pair", msg)
    assert.is_nil(msg:find("\n"))
    assert.matches("^specs/redis_spec%.lua:%d+: redis%.connect: cannot connect to 127%.0%.0%.1:%d+: "
      .. "the server wants " ..
      "a password %(redis://:PASSWORD@host%): NOAUTH Authentication required%.$",
      raised(function() redis.connect("redis://127.0.0.1:" .. guarded.port .. "/0") end))
  end)

  it("a host name is resolved without blocking the loop", function()
    local r = client { url = "redis://localhost:" .. srv.port .. "/0" }
    assert.are.equal("PONG", r:ping())
    -- (a resolver that does not answer is cut short by the connect timeout)
    local msg, err = raised(function() redis.connect { url = "redis://no-such-host.invalid:6379/0",
        connect_timeout = 2 } end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis%.connect: cannot connect to no%-such%-host%.invalid:6379: ", msg)
    assert.is_truthy(msg:find("cannot resolve the host: ", 1, true) or msg:find("timeout: no connection", 1, true), msg)
    assert.are.equal("connect", err.kind)
  end)

  it("an unreachable server is one line naming the address", function()
    if missing then pending(missing) end
    local port = require("sonde.fixture").unused_port()
    local msg, err = raised(function() redis.connect("redis://127.0.0.1:" .. port) end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis%.connect: cannot connect to 127%.0%.0%.1:" .. port ..
      ": Connection refused$", msg)
    assert.are.equal("connect", err.kind)
  end)

  it("a command on a closed client is one line saying where it was closed", function()
    local r = client()
    r:close()
    local msg, err = raised(function() r:get("k") end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis GET: the client was closed at specs/redis_spec%.lua:%d+$", msg)
    assert.are.equal("closed", err.kind)
  end)
end)

describe("sonde.redis clients a test leaves open", function()
  local srv, left, kept
  setup(function()
    if missing then return end
    srv = redis_server.start()
    kept = redis.connect(srv.url)
  end)
  teardown(function()
    if srv then srv:stop() end
  end)

  it("are closed when the test ends (1: connects)", function()
    if missing then pending(missing) end
    left = redis.connect(srv.url)
    assert.are.equal("PONG", left:ping())
  end)

  it("are closed when the test ends (2: the next test finds it closed; setup's lives on)", function()
    if missing then pending(missing) end
    assert.matches("redis PING: the client was closed at the end of the test that connected it$",
      raised(function() left:ping() end))
    assert.are.equal("PONG", kept:ping())
  end)
end)

describe("sonde.redis when the server goes away", function()
  it("reconnects with backoff: a command waits for the server to come back", function()
    if missing then pending(missing) end
    local srv = redis_server.start()
    finally(function() srv:stop() end)
    local r = redis.connect { url = srv.url, timeout = 20 }
    finally(function() r:close() end)
    r:set("k", "before")
    srv:kill()
    local write = task.spawn(function() return r:set("k", "during") end)
    srv:start()
    assert.are.equal("OK", write:join(20))
    assert.are.equal("during", r:get("k"))
  end)

  it("a command in flight when the connection drops raises, and the next one reconnects", function()
    if missing then pending(missing) end
    local srv = redis_server.start()
    finally(function() srv:stop() end)
    local r = redis.connect { url = srv.url, timeout = 20 }
    finally(function() r:close() end)
    local reader = task.spawn(function() return r:blpop("never", 0) end)
    task.sleep(0)
    r:ping() -- the main connection is up; the reader's too, or it soon will be
    srv:kill()
    local ok, err = pcall(reader.join, reader, 20)
    assert.is_false(ok)
    assert.matches("redis BLPOP: ", tostring(err))
    assert.is_true(err.kind == "closed" or err.kind == "connect", tostring(err))
    srv:start()
    assert.are.equal("PONG", r:ping())
  end)

  it("a server that stops answering times the command out and the connection is given up", function()
    if missing then pending(missing) end
    local srv = redis_server.start()
    finally(function()
      srv.p:kill("CONT")
      srv:stop()
    end)
    local r = redis.connect { url = srv.url, timeout = 0.2 }
    finally(function() r:close() end)
    r:set("k", "v")
    srv.p:kill("STOP")
    local msg, err = raised(function() r:get("k") end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis GET: timeout: no reply within 0%.2s$", msg)
    assert.are.equal("timeout", err.kind)
    srv.p:kill("CONT")
    assert.are.equal("v", r:get("k"))
  end)

  it("gives up reconnecting after its timeout with one line", function()
    if missing then pending(missing) end
    local srv = redis_server.start()
    local r = redis.connect { url = srv.url, timeout = 0.3 }
    finally(function() r:close() end)
    srv:stop()
    local msg, err = raised(function() r:get("k") end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis GET: ", msg)
    assert.is_true(err.kind == "closed" or err.kind == "connect", msg)
    msg, err = raised(function() r:get("k") end)
    assert.matches("^specs/redis_spec%.lua:%d+: redis GET: cannot connect to 127%.0%.0%.1:%d+ %(reconnecting with " ..
      "backoff%): Connection refused$", msg)
    assert.are.equal("connect", err.kind)
  end)
end)
