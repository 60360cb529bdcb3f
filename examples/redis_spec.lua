-- Shows an API test checking what a service wrote to Redis, one line each:
-- a stub order service stores every order in a hash and appends an event
-- to a stream; the spec reads them back with sonde.redis. Skipped, with
-- the reason, when redis-server is not installed.
local http = require("sonde.http")
local redis = require("sonde.redis")
local server = require("sonde.server")
local task = require("sonde.task")
local servers = require("examples.servers")

describe("an order service that writes to Redis", function()
  local missing = servers.redis_missing()
  local svc, r

  setup(function()
    if missing then return end
    local url = servers.redis().url
    local store = redis.connect(url) -- the service's own connection
    svc = server.serve({ port = 0 }, function(s)
      s:post("/orders", function(req)
        local order = req:json()
        store:hset("order:" .. order.id, { side = order.side, status = "placed" })
        store:xadd("orders:events", "*", { id = order.id, kind = "placed" }, { maxlen = 1000 })
        return { status = 201, json = order }
      end)
    end)
    r = redis.connect(url)
    r:flushdb()
  end)

  -- api(path) -> the service's URL for path; skips the test without redis-server.
  local function api(path)
    if missing then pending(missing) end
    return svc.url .. path
  end

  it("POST /orders stores the order as a hash", function()
    assert.are.equal(201, http.post(api("/orders"), { json = { id = 1, side = "buy" } }).status)
    assert.are.same({ side = "buy", status = "placed" }, r:hgetall("order:1"))
  end)

  it("and appends an event to the stream", function()
    http.post(api("/orders"), { json = { id = 2, side = "sell" } })
    local last = r:xrevrange("orders:events", "+", "-", 1)[1]
    assert.are.same({ id = "2", kind = "placed" }, last.fields)
  end)

  it("a blocking read waits for the event the service appends, without a poll", function()
    local url = api("/orders")
    -- from the last id before the order, not "$": the read may reach Redis
    -- after the service's XADD
    local newest = r:xrevrange("orders:events", "+", "-", 1)[1]
    local after = newest and newest.id or "0"
    local reader = task.spawn(function() return r:xread({ ["orders:events"] = after }, { block = 10 }) end)
    http.post(url, { json = { id = 3, side = "buy" } })
    local got = reader:join(10)
    assert.are.equal("3", got["orders:events"][1].fields.id)
  end)
end)
