---@meta sonde.http
-- LuaLS definitions of sonde.http (see README "Editors").

---@class sonde.http.RetryBackoff
---@field min number? seconds before the first retry (default 0.5)
---@field factor number? each next wait is this many times longer (default 1.5)
---@field max number? the longest wait (default 5)

---The options of http.client.
---@class sonde.http.ClientOptions
---@field base_url string? an absolute URL that relative paths join as httpx does
---@field timeout number? seconds for a whole request (default 10)
---@field connect_timeout number? seconds to connect
---@field headers table<string, string|number|false>? sent with every request
---@field params table? query parameters added to every request
---@field retries integer? retries of a connect, timeout, closed or dns error (default 0)
---@field retry_backoff sonde.http.RetryBackoff?
---@field verify boolean? verify TLS certificates (default true)
---@field follow_redirects boolean? (default false)
---@field http2 boolean? (default false)
---@field max_body integer? the most bytes of a response body kept

---The options of one request.
---@class sonde.http.RequestOptions
---@field params table? query parameters: {a=1, b={2,3}} -> a=1&b=2&b=3
---@field headers table<string, string|number|false>? false removes a client header
---@field json any? the body, encoded as JSON (Content-Type: application/json)
---@field body string? the body as it is
---@field form table? the body, form-encoded
---@field timeout number?
---@field connect_timeout number?
---@field follow_redirects boolean?
---@field verify boolean?
---@field http2 boolean?
---@field retries integer?
---@field max_body integer?

---Response headers: h["content-type"] is case-insensitive (repeated ones
---joined with ", ").
---@class sonde.http.Headers
---@field [string] string?
local Headers = {}
---Every value of a repeated header, in order.
---@param name string
---@return string[]
function Headers:get_all(name) end
---name, value pairs as received.
---@return fun(): string, string
function Headers:each() end

---@class sonde.http.Timings
---@field dns number seconds
---@field connect number
---@field tls number
---@field first_byte number
---@field total number
---@field redirect number

---An HTTP response; an error status is a response, not an error.
---@class sonde.http.Response
---@field status integer
---@field ok boolean status is 2xx
---@field headers sonde.http.Headers
---@field status_line string|false e.g. "HTTP/1.1 200 OK"
---@field body string
---@field url string the URL it came from (after redirects)
---@field method string
---@field http_version "HTTP/1.0"|"HTTP/1.1"|"HTTP/2"
---@field elapsed number seconds
---@field timings sonde.http.Timings
---@field new_connections integer connections opened for it (0 when one was reused)
local Response = {}
---The body decoded as JSON; raises one line naming the request when it is not JSON.
---@return any
function Response:json() end
---Raises an error of kind "status" (with .status and .response) for a 4xx or 5xx status.
---@return sonde.http.Response self
function Response:raise_for_status() end

---A transport error (or a status error from raise_for_status).
---@class sonde.http.Error
---@field kind "connect"|"timeout"|"tls"|"dns"|"protocol"|"closed"|"status"
---@field method string
---@field url string
---@field message string "KIND error: METHOD URL: detail"
---@field curl_code integer? libcurl's error code
---@field status integer? for "status"
---@field response sonde.http.Response? for "status"

---@class sonde.http.Client
---@field base_url string?
---@field headers table
---@field request_count integer requests this client made
local Client = {}
---@param method string "GET", "POST"...
---@param path string a path joined to base_url, or an absolute URL
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:request(method, path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:get(path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:post(path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:put(path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:patch(path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:delete(path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:head(path, opts) end
---@param path string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function Client:options(path, opts) end

local http = {}

---The class of clients (http.client's results).
http.Client = Client
---The metatable of transport errors (http.is_error tells them apart).
http.HttpError = {}

---A client with defaults for its requests.
---@param opts sonde.http.ClientOptions?
---@return sonde.http.Client
function http.client(opts) end

---A request without a client (an absolute URL).
---@param method string
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.request(method, url, opts) end

---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.get(url, opts) end
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.post(url, opts) end
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.put(url, opts) end
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.patch(url, opts) end
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.delete(url, opts) end
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.head(url, opts) end
---@param url string
---@param opts sonde.http.RequestOptions?
---@return sonde.http.Response
function http.options(url, opts) end

---True for a transport error raised by a request.
---@param err any
---@return boolean
function http.is_error(err) end

---Requests this process has made.
---@return integer
function http.request_count() end

---The current test's last request and what came back, as curl -v shows
---them, with secrets redacted; nil when it made none.
---@return string?
function http.last_exchange() end

---Headers, query parameters and JSON members whose names contain one of
---these are redacted from every report, as Authorization and names with
---token, secret, password... are.
---@param names string[]
function http.redact(names) end

---Percent-encodes everything but unreserved characters.
---@param s string|number
---@return string
function http.escape(s) end

---Joins as httpx does: "http://h/api" + "/health" -> "http://h/api/health";
---an absolute path wins.
---@param base string?
---@param path string?
---@return string
function http.join_url(base, path) end

---libcurl's version line ("libcurl/7.88.1 OpenSSL/3.0..."); loads libcurl.
---@return string
function http.curl_version() end

return http
