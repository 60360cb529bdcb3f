---@meta sonde.json
-- LuaLS definitions of sonde.json (see README "Editors").

local json = {}

---JSON's null: decode gives it for null, encode writes it as null.
---@type lightuserdata
json.null = nil

---JSON text of v; raises "json.encode: $.a.b is a function" for what JSON cannot hold.
---@param v any
---@return string
function json.encode(v) end

---The value of JSON text; raises "json.decode: <what was wrong> at character N".
---@param s string
---@return any
function json.decode(s) end

---Indented JSON text with sorted keys.
---@param v any
---@return string
function json.pretty(v) end

---Marks t to encode as a JSON array even when empty ({} encodes as {}).
---@generic T: table
---@param t T?
---@return T
function json.array(t) end

---True for a table marked by json.array.
---@param t table
---@return boolean
function json.is_array(t) end

return json
