---@meta sonde.redis
-- LuaLS definitions of sonde.redis (see README "Editors").

---The options of redis.connect (a redis:// URL gives the same).
---@class sonde.redis.Options
---@field url string? "redis://[:password@]host[:port][/db][?timeout=&connect_timeout=]"
---@field host string? (default "127.0.0.1")
---@field port integer? (default 6379)
---@field db integer? (default 0)
---@field username string?
---@field password string?
---@field connect_timeout number? seconds (default 5)
---@field timeout number? seconds a reply may take, and a reconnect (default 10)
---@field backoff {min: number?, factor: number?, max: number?}? between reconnects (default min 0.05, factor 2, max 2)

---What redis.parse_url finds in a URL.
---@class sonde.redis.Address
---@field host string
---@field port integer
---@field db integer
---@field username string?
---@field password string?
---@field timeout number?
---@field connect_timeout number?

---An error: a reply error ("redis"), a lost connection ("closed"), a reply
---that did not come ("timeout"), a connection refused ("connect").
---@class sonde.redis.Error
---@field kind "redis"|"closed"|"timeout"|"connect"|string
---@field message string

---A subscription (r:subscribe, r:psubscribe).
---@class sonde.redis.Subscription
local Subscription = {}
---fn gets no more messages.
function Subscription:unsubscribe() end

---Queues commands in r:pipeline(fn); it has the client's command methods too.
---@class sonde.redis.Pipeline
local Pipeline = {}
---Queues a command.
---@return sonde.redis.Pipeline self
function Pipeline:command(...) end

---A client: every call yields the task, never the loop. Status and bulk
---replies are strings, integers numbers, nil is nil; an error reply raises.
---Each command has a method of its name in lower case (r:get, r:hset...).
---@class sonde.redis.Client
---@field get fun(self: sonde.redis.Client, ...: any): any GET with these arguments
---@field set fun(self: sonde.redis.Client, ...: any): any SET with these arguments
---@field del fun(self: sonde.redis.Client, ...: any): any DEL with these arguments
---@field exists fun(self: sonde.redis.Client, ...: any): any EXISTS with these arguments
---@field expire fun(self: sonde.redis.Client, ...: any): any EXPIRE with these arguments
---@field pexpire fun(self: sonde.redis.Client, ...: any): any PEXPIRE with these arguments
---@field ttl fun(self: sonde.redis.Client, ...: any): any TTL with these arguments
---@field pttl fun(self: sonde.redis.Client, ...: any): any PTTL with these arguments
---@field incr fun(self: sonde.redis.Client, ...: any): any INCR with these arguments
---@field incrby fun(self: sonde.redis.Client, ...: any): any INCRBY with these arguments
---@field decr fun(self: sonde.redis.Client, ...: any): any DECR with these arguments
---@field decrby fun(self: sonde.redis.Client, ...: any): any DECRBY with these arguments
---@field incrbyfloat fun(self: sonde.redis.Client, ...: any): any INCRBYFLOAT with these arguments
---@field append fun(self: sonde.redis.Client, ...: any): any APPEND with these arguments
---@field strlen fun(self: sonde.redis.Client, ...: any): any STRLEN with these arguments
---@field getset fun(self: sonde.redis.Client, ...: any): any GETSET with these arguments
---@field setnx fun(self: sonde.redis.Client, ...: any): any SETNX with these arguments
---@field setex fun(self: sonde.redis.Client, ...: any): any SETEX with these arguments
---@field mget fun(self: sonde.redis.Client, ...: any): any MGET with these arguments
---@field mset fun(self: sonde.redis.Client, ...: any): any MSET with these arguments
---@field keys fun(self: sonde.redis.Client, ...: any): any KEYS with these arguments
---@field type fun(self: sonde.redis.Client, ...: any): any TYPE with these arguments
---@field rename fun(self: sonde.redis.Client, ...: any): any RENAME with these arguments
---@field hget fun(self: sonde.redis.Client, ...: any): any HGET with these arguments
---@field hmget fun(self: sonde.redis.Client, ...: any): any HMGET with these arguments
---@field hdel fun(self: sonde.redis.Client, ...: any): any HDEL with these arguments
---@field hexists fun(self: sonde.redis.Client, ...: any): any HEXISTS with these arguments
---@field hincrby fun(self: sonde.redis.Client, ...: any): any HINCRBY with these arguments
---@field hincrbyfloat fun(self: sonde.redis.Client, ...: any): any HINCRBYFLOAT with these arguments
---@field hkeys fun(self: sonde.redis.Client, ...: any): any HKEYS with these arguments
---@field hvals fun(self: sonde.redis.Client, ...: any): any HVALS with these arguments
---@field hlen fun(self: sonde.redis.Client, ...: any): any HLEN with these arguments
---@field lpush fun(self: sonde.redis.Client, ...: any): any LPUSH with these arguments
---@field rpush fun(self: sonde.redis.Client, ...: any): any RPUSH with these arguments
---@field lpop fun(self: sonde.redis.Client, ...: any): any LPOP with these arguments
---@field rpop fun(self: sonde.redis.Client, ...: any): any RPOP with these arguments
---@field lrange fun(self: sonde.redis.Client, ...: any): any LRANGE with these arguments
---@field llen fun(self: sonde.redis.Client, ...: any): any LLEN with these arguments
---@field lindex fun(self: sonde.redis.Client, ...: any): any LINDEX with these arguments
---@field lrem fun(self: sonde.redis.Client, ...: any): any LREM with these arguments
---@field ltrim fun(self: sonde.redis.Client, ...: any): any LTRIM with these arguments
---@field sadd fun(self: sonde.redis.Client, ...: any): any SADD with these arguments
---@field srem fun(self: sonde.redis.Client, ...: any): any SREM with these arguments
---@field smembers fun(self: sonde.redis.Client, ...: any): any SMEMBERS with these arguments
---@field sismember fun(self: sonde.redis.Client, ...: any): any SISMEMBER with these arguments
---@field scard fun(self: sonde.redis.Client, ...: any): any SCARD with these arguments
---@field zadd fun(self: sonde.redis.Client, ...: any): any ZADD with these arguments
---@field zrem fun(self: sonde.redis.Client, ...: any): any ZREM with these arguments
---@field zrange fun(self: sonde.redis.Client, ...: any): any ZRANGE with these arguments
---@field zrangebyscore fun(self: sonde.redis.Client, ...: any): any ZRANGEBYSCORE with these arguments
---@field zscore fun(self: sonde.redis.Client, ...: any): any ZSCORE with these arguments
---@field zcard fun(self: sonde.redis.Client, ...: any): any ZCARD with these arguments
---@field zincrby fun(self: sonde.redis.Client, ...: any): any ZINCRBY with these arguments
---@field publish fun(self: sonde.redis.Client, ...: any): any PUBLISH with these arguments
---@field xlen fun(self: sonde.redis.Client, ...: any): any XLEN with these arguments
---@field xtrim fun(self: sonde.redis.Client, ...: any): any XTRIM with these arguments
---@field xdel fun(self: sonde.redis.Client, ...: any): any XDEL with these arguments
---@field xack fun(self: sonde.redis.Client, ...: any): any XACK with these arguments
---@field xgroup fun(self: sonde.redis.Client, ...: any): any XGROUP with these arguments
---@field xreadgroup fun(self: sonde.redis.Client, ...: any): any XREADGROUP with these arguments
---@field xinfo fun(self: sonde.redis.Client, ...: any): any XINFO with these arguments
---@field blpop fun(self: sonde.redis.Client, ...: any): any BLPOP with these arguments
---@field brpop fun(self: sonde.redis.Client, ...: any): any BRPOP with these arguments
---@field ping fun(self: sonde.redis.Client, ...: any): any PING with these arguments
---@field echo fun(self: sonde.redis.Client, ...: any): any ECHO with these arguments
---@field flushdb fun(self: sonde.redis.Client, ...: any): any FLUSHDB with these arguments
---@field flushall fun(self: sonde.redis.Client, ...: any): any FLUSHALL with these arguments
---@field dbsize fun(self: sonde.redis.Client, ...: any): any DBSIZE with these arguments
---@field info fun(self: sonde.redis.Client, ...: any): any INFO with these arguments
---@field time fun(self: sonde.redis.Client, ...: any): any TIME with these arguments
---@field select fun(self: sonde.redis.Client, ...: any): any SELECT with these arguments
---@field scan fun(self: sonde.redis.Client, ...: any): any SCAN with these arguments
---@field unlink fun(self: sonde.redis.Client, ...: any): any UNLINK with these arguments
---@field persist fun(self: sonde.redis.Client, ...: any): any PERSIST with these arguments
---@field config_get fun(self: sonde.redis.Client, ...: any): any CONFIG GET with these arguments
local Client = {}
---Any command, as hiredis sends it: r:command("ZADD", "z", 1, "a").
---@return any reply
function Client:command(...) end
---fn(p) queues commands; they go out in one write and the replies come back
---in order. The first error reply is raised once every reply is in.
---@param fn fun(p: sonde.redis.Pipeline)
---@return any[] replies
function Client:pipeline(fn) end
---The script's reply: EVALSHA, loading the script the first time.
---@param source string
---@param keys string[]?
---@param args any[]?
---@return any
function Client:eval(source, keys, args) end
---fn(message, channel) runs for each message published to channel from the moment this returns.
---@param channel string
---@param fn fun(message: string, channel: string)
---@return sonde.redis.Subscription
function Client:subscribe(channel, fn) end
---fn(message, channel, pattern) for each message to a channel matching pattern.
---@param pattern string
---@param fn fun(message: string, channel: string, pattern: string)
---@return sonde.redis.Subscription
function Client:psubscribe(pattern, fn) end
---Closes every connection; a command after it raises one line saying where it was closed.
function Client:close() end
---HGETALL as a table {field = value}.
---@param key string
---@return table<string, string>
function Client:hgetall(key) end
---HSET key field value ... or HSET key {field = value}.
---@return integer added
function Client:hset(key, ...) end
---XADD key id {field = value} (or field, value, ...), with {maxlen=, approximate=true} last.
---@param key string
---@param id string "*" for a new one
---@return string id
function Client:xadd(key, id, ...) end
---XREAD: {[stream] = last_id} (or stream, id, ...), opts {count=, block=seconds};
---{[stream] = {{id=, fields={...}}, ...}}, or nil when block ran out.
---@param streams table
---@param opts {count: integer?, block: number?}?
---@return table<string, {id: string, fields: table<string, string>}[]>?
function Client:xread(streams, opts) end
---XRANGE key start stop [COUNT count]: {{id=, fields=}, ...}
---@return {id: string, fields: table<string, string>}[]
function Client:xrange(key, start, stop, count) end
---XREVRANGE key stop start [COUNT count]: {{id=, fields=}, ...}
---@return {id: string, fields: table<string, string>}[]
function Client:xrevrange(key, stop, start, count) end

local redis = {}

---A nil inside an array reply (JSON's null).
redis.null = nil
---The class of clients.
redis.Client = Client
---The class of pipelines.
redis.Pipeline = Pipeline

---Connects once before returning: an unreachable server or a refused password raises here.
---@param url_or_opts string|sonde.redis.Options
---@return sonde.redis.Client
function redis.connect(url_or_opts) end

---True for an error sonde.redis raised.
---@param err any
---@return boolean
function redis.is_error(err) end

---True for an error reply inside a transaction's EXEC reply (a value, not raised).
---@param v any
---@return boolean
function redis.is_reply_error(v) end

---The parts of a redis:// URL, or nil and why it is malformed.
---@param url string
---@return sonde.redis.Address?, string? why
function redis.parse_url(url) end

---The URL with its password masked, for messages and logs.
---@param url string
---@return string
function redis.redact(url) end

return redis
