---@meta sonde.server
-- LuaLS definitions of sonde.server (see README "Editors").

---The options of server.new and server.serve.
---@class sonde.server.Options
---@field host string? (default "127.0.0.1": loopback unless told otherwise)
---@field port integer? (default 0: any free port)
---@field max_body integer? bytes of a request body, else 413
---@field max_header_count integer?
---@field max_header_bytes integer?
---@field request_timeout number? seconds to receive a request
---@field idle_timeout number? seconds a kept-alive connection may idle
---@field name string?

---A request, as a handler sees it.
---@class sonde.server.Request
---@field method string
---@field path string without the query
---@field target string the path with its query, as sent
---@field params table<string, string> the {name} parts of the route
---@field query table<string, string|string[]> (repeated names give lists)
---@field headers table<string, string> case-insensitive
---@field body string
---@field server sonde.server.Server
local Request = {}
---The body decoded as JSON; a body that is not JSON raises (the client gets a 500).
---@return any
function Request:json() end

---What a handler returns: a table, a string (200, text/plain) or nil (204).
---@class sonde.server.Response
---@field status integer? (default 200)
---@field headers table<string, string|number>?
---@field json any? encoded as JSON, with Content-Type: application/json
---@field body string?

---@alias sonde.server.Handler fun(req: sonde.server.Request): sonde.server.Response|string|nil

---@class sonde.server.Server
---@field url string? "http://127.0.0.1:PORT" once started
---@field port integer? once started
---@field requests integer requests received
local Server = {}
---Adds a route; pattern segments in braces are params ("/flows/{id}").
---A handler runs as a task; what it raises is a 500 for the client and an
---error of the test that owns the server.
---@param method string "GET", "POST"... or "*"
---@param pattern string
---@param handler sonde.server.Handler
function Server:route(method, pattern, handler) end
---@param pattern string
---@param handler sonde.server.Handler
function Server:get(pattern, handler) end
---@param pattern string
---@param handler sonde.server.Handler
function Server:post(pattern, handler) end
---@param pattern string
---@param handler sonde.server.Handler
function Server:put(pattern, handler) end
---@param pattern string
---@param handler sonde.server.Handler
function Server:patch(pattern, handler) end
---@param pattern string
---@param handler sonde.server.Handler
function Server:delete(pattern, handler) end
---Starts listening; sets url and port.
---@return sonde.server.Server self
function Server:start() end
---Stops accepting, lets requests being handled finish for up to grace
---seconds, then closes every connection. The test that started the server
---closes it when it ends.
---@param grace number? (default 5)
function Server:close(grace) end

local server = {}

---A server, not started: add routes, then :start().
---@param opts sonde.server.Options?
---@return sonde.server.Server
function server.new(opts) end

---new, define(s) adding the routes, and start, in one call.
---@param opts sonde.server.Options?
---@param define fun(s: sonde.server.Server)
---@return sonde.server.Server
function server.serve(opts, define) end

return server
